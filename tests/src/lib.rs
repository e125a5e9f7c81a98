//! The harness of Warren's integration tests: a server on an ephemeral
//! port, lapin connections to it, and a raw AMQP socket for malformed input.

use bytes::BytesMut;
use lapin::{Channel, Connection, ConnectionProperties};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warren::{Config, Server};
use warren_codec::*;

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A data directory of its own for each test server.
pub fn fresh_data_dir() -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("warren-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A test binary that runs this long has a test that hangs: it fails now,
/// with a message, instead of at CI's limit.
pub fn start_watchdog() {
    static WATCHDOG: std::sync::Once = std::sync::Once::new();
    WATCHDOG.call_once(|| {
        let secs = std::env::var("WARREN_TEST_WATCHDOG_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300);
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(secs));
            eprintln!("watchdog: this test binary has run for {secs} s, so a test hangs");
            std::process::exit(101);
        });
    });
}

/// A Warren server for one test.
pub struct TestServer {
    pub addr: SocketAddr,
    data_dir: std::path::PathBuf,
    /// The first TLS listener, if the test configured one.
    pub tls_addr: Option<SocketAddr>,
    server: Option<Server>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        start_watchdog();
        let mut config = Config::default();
        config.listeners.tcp = vec!["127.0.0.1:0".parse().unwrap()];
        config.data_dir = fresh_data_dir();
        configure(&mut config);
        let server = Server::start(&config).await.expect("server starts");
        TestServer {
            data_dir: config.data_dir.clone(),
            addr: server.tcp_addrs[0],
            tls_addr: server.tls_addrs.first().copied(),
            server: Some(server),
        }
    }

    /// The broker's statistics registry.
    pub fn stats(&self) -> std::sync::Arc<warren_broker::Registry> {
        self.server.as_ref().expect("running").stats().clone()
    }

    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.addr)
    }

    pub async fn connect(&self) -> Connection {
        connect(&self.uri()).await.expect("connects")
    }

    /// A connection and a channel on it.
    pub async fn channel(&self) -> (Connection, Channel) {
        let conn = self.connect().await;
        let channel = conn.create_channel().await.expect("channel opens");
        (conn, channel)
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

pub async fn connect(uri: &str) -> lapin::Result<Connection> {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    Connection::connect(uri, properties).await
}

/// basic.consume with manual acks. lapin cancels the consumer when the
/// returned `Consumer` is dropped: keep it.
pub async fn consume(channel: &Channel, queue: &str, tag: &str) -> lapin::Consumer {
    let options = lapin::options::BasicConsumeOptions::default();
    channel
        .basic_consume(queue, tag, options, lapin::types::FieldTable::default())
        .await
        .expect("consume")
}

/// Declares a plain queue.
pub async fn declare(ch: &Channel, name: &str) {
    use lapin::options::QueueDeclareOptions;
    ch.queue_declare(
        name,
        QueueDeclareOptions::default(),
        lapin::types::FieldTable::default(),
    )
    .await
    .unwrap();
}

/// Declares a plain (non-durable) queue with these arguments.
pub async fn declare_with(ch: &Channel, name: &str, args: &[(&str, lapin::types::AMQPValue)]) {
    use lapin::options::QueueDeclareOptions;
    let mut table = lapin::types::FieldTable::default();
    for (key, value) in args {
        table.insert((*key).into(), value.clone());
    }
    ch.queue_declare(name, QueueDeclareOptions::default(), table)
        .await
        .unwrap();
}

/// A long-string argument value.
pub fn text(s: &str) -> lapin::types::AMQPValue {
    lapin::types::AMQPValue::LongString(s.into())
}

/// Publishes `n` messages, bodies "0", "1", …, to `queue`, and returns once
/// they have all arrived.
pub async fn publish_n(ch: &Channel, queue: &str, n: usize) {
    for i in 0..n {
        ch.basic_publish(
            "",
            queue,
            lapin::options::BasicPublishOptions::default(),
            format!("{i}").as_bytes(),
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    // A synchronous round trip after the publishes: they have all arrived.
    passive_declare(ch, queue).await.unwrap();
}

/// The consumer's next delivery, within 5 s.
pub async fn next(consumer: &mut lapin::Consumer) -> lapin::message::Delivery {
    use futures_lite::StreamExt;
    tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .expect("a delivery within 5 s")
        .unwrap()
        .unwrap()
}

/// No delivery within 200 ms.
pub async fn nothing_more(consumer: &mut lapin::Consumer) {
    use futures_lite::StreamExt;
    assert!(
        tokio::time::timeout(Duration::from_millis(200), consumer.next())
            .await
            .is_err(),
        "no more deliveries"
    );
}

/// queue.declare with passive set: the queue's counts, or 404/405.
pub async fn passive_declare(channel: &Channel, queue: &str) -> lapin::Result<lapin::Queue> {
    let options = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue, options, lapin::types::FieldTable::default())
        .await
}

/// The reply code of a lapin error that closed a channel or connection.
pub fn reply_code(error: &lapin::Error) -> u16 {
    match error {
        lapin::Error::ProtocolError(e) => e.get_id(),
        other => panic!("not a protocol error: {other:?}"),
    }
}

/// The reply text of a lapin error.
pub fn reply_text(error: &lapin::Error) -> String {
    match error {
        lapin::Error::ProtocolError(e) => e.get_message().to_string(),
        other => panic!("not a protocol error: {other:?}"),
    }
}

/// Watches a channel for the error that closes it: for methods without a
/// reply (publish, ack), whose error arrives asynchronously.
pub fn watch_channel_error(channel: &Channel) -> impl std::future::Future<Output = (u16, String)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    channel.on_error(move |error| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(error);
        }
    });
    async move {
        let error = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("the channel closes within 5 s")
            .expect("an error");
        (reply_code(&error), reply_text(&error))
    }
}

/// Watches a connection for the error that closes it (hard errors).
pub fn watch_connection_error(
    connection: &Connection,
) -> impl std::future::Future<Output = (u16, String)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    connection.on_error(move |error| {
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(error);
        }
    });
    async move {
        let error = tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("the connection closes within 5 s")
            .expect("an error");
        (reply_code(&error), reply_text(&error))
    }
}

/// A hand-driven AMQP client for what stock clients cannot send.
pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(0),
        }
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// basic.publish with a header and body, on `channel`.
    pub async fn publish(&mut self, channel: u16, exchange: &str, routing_key: &str, body: &[u8]) {
        let publish = BasicPublish {
            exchange: ShortString::try_from(exchange).unwrap(),
            routing_key: ShortString::try_from(routing_key).unwrap(),
            ..Default::default()
        };
        let header = ContentHeader {
            class_id: 60,
            weight: 0,
            body_size: body.len() as u64,
            properties: Default::default(),
        };
        let mut buf = BytesMut::new();
        encode_content(channel, &publish.into(), &header, body, 131_072, &mut buf);
        self.send_bytes(&buf).await;
    }

    pub async fn send(&mut self, channel: u16, method: impl Into<Method>) {
        let mut buf = BytesMut::new();
        encode_method_frame(channel, &method.into(), &mut buf);
        self.send_bytes(&buf).await;
    }

    /// The next frame, `None` when the server closed the socket.
    pub async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(frame);
            }
            let read =
                tokio::time::timeout(Duration::from_secs(5), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("server answers within 5 s");
            if read.unwrap_or(0) == 0 {
                return None;
            }
        }
    }

    /// The next method frame, skipping heartbeats.
    pub async fn method(&mut self) -> Option<(u16, Method)> {
        loop {
            match self.frame().await? {
                Frame::Method { channel, method } => return Some((channel, method)),
                Frame::Heartbeat => continue,
                other => panic!("expected a method frame, got {other:?}"),
            }
        }
    }

    /// Everything the server sends until it closes the socket.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut out = self.buf.split().to_vec();
        let _ =
            tokio::time::timeout(Duration::from_secs(5), self.stream.read_to_end(&mut out)).await;
        out
    }

    /// Handshake as guest with the given heartbeat; channel 1 opened if asked.
    pub async fn open(addr: SocketAddr, heartbeat: u16, open_channel: bool) -> RawClient {
        let all = [
            "authentication_failure_close",
            "consumer_cancel_notify",
            "connection.blocked",
        ];
        Self::open_with_capabilities(addr, heartbeat, open_channel, &all).await
    }

    /// Like [`open`](Self::open), announcing only `capabilities`.
    pub async fn open_with_capabilities(
        addr: SocketAddr,
        heartbeat: u16,
        open_channel: bool,
        capabilities: &[&'static str],
    ) -> RawClient {
        Self::open_after_header(addr, PROTOCOL_HEADER, heartbeat, open_channel, capabilities).await
    }

    /// Like [`open`](Self::open), opening with the protocol header given.
    pub async fn open_after_header(
        addr: SocketAddr,
        header: [u8; 8],
        heartbeat: u16,
        open_channel: bool,
        capabilities: &[&'static str],
    ) -> RawClient {
        let mut c = RawClient::connect(addr).await;
        c.send_bytes(&header).await;
        let Some((0, Method::ConnectionStart(_))) = c.method().await else {
            panic!("no start")
        };
        let caps = capabilities.iter().fold(FieldTable::new(), |t, cap| {
            t.with(cap, FieldValue::Bool(true))
        });
        c.send(
            0,
            ConnectionStartOk {
                client_properties: FieldTable::new().with("capabilities", FieldValue::Table(caps)),
                mechanism: ShortString::from_static("PLAIN"),
                response: LongString::from("\0guest\0guest"),
                locale: ShortString::from_static("en_US"),
            },
        )
        .await;
        let Some((0, Method::ConnectionTune(tune))) = c.method().await else {
            panic!("no tune")
        };
        c.send(
            0,
            ConnectionTuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                heartbeat,
            },
        )
        .await;
        c.decoder.set_frame_max(tune.frame_max);
        c.send(
            0,
            ConnectionOpen {
                virtual_host: ShortString::from_static("/"),
                ..Default::default()
            },
        )
        .await;
        let Some((0, Method::ConnectionOpenOk(_))) = c.method().await else {
            panic!("no open-ok")
        };
        if open_channel {
            c.send(1, ChannelOpen::default()).await;
            let Some((1, Method::ChannelOpenOk(_))) = c.method().await else {
                panic!("no channel open-ok")
            };
        }
        c
    }

    /// The connection.close the server sent: code and text.
    pub async fn expect_connection_close(&mut self) -> (u16, String) {
        loop {
            match self.method().await {
                Some((0, Method::ConnectionClose(close))) => {
                    return (close.reply_code, close.reply_text.to_string());
                }
                Some(_) => continue,
                None => panic!("socket closed without connection.close"),
            }
        }
    }
}
