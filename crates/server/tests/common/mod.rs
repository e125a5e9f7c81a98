//! The harness of the tests that run the real binary: a broker process on
//! an ephemeral port with its own data directory, its stderr kept (a panic
//! in it fails the test), a small tmpfs for full-disk cases, and a raw AMQP
//! client for what stock clients would not send.

#![allow(dead_code)]

use bytes::BytesMut;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use warren_codec::*;

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

pub struct Warren {
    pub child: Child,
    pub port: u16,
    /// Where the broker's stderr goes.
    pub log: PathBuf,
}

fn log_path() -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("warren-stderr-{}-{n}.log", std::process::id()))
}

/// The port of the broker's "listening" log line.
fn listening_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("listening"))?;
    let at = line.find("127.0.0.1:")? + "127.0.0.1:".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The broker command on `dir`, with tiny segments so that rotation and
/// deletion happen during the tests.
pub fn command(dir: &Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warren"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .env("WARREN_STORE_SEGMENT_BYTES", "20000");
    command
}

impl Warren {
    pub fn start(dir: &Path) -> Warren {
        Self::start_with(dir, &[])
    }

    /// Starts the broker on port 0 and learns its port from its log, so
    /// that tests running side by side never race for a port.
    pub fn start_with(dir: &Path, args: &[&str]) -> Warren {
        start_watchdog();
        let log = log_path();
        let child = command(dir, 0)
            .args(args)
            .env("NO_COLOR", "1")
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Dropping it kills and reaps the child.
        let mut warren = Warren {
            child,
            port: 0,
            log,
        };
        // Restoring thousands of queues on a loaded machine takes a while.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(port) = listening_port(&warren.stderr()) {
                warren.port = port;
                return warren;
            }
            if let Ok(Some(status)) = warren.child.try_wait() {
                panic!("warren exited ({status}): {}", warren.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("warren did not start: {}", warren.stderr());
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn connect(&self) -> Connection {
        let props = ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio);
        Connection::connect(
            &format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port),
            props,
        )
        .await
        .unwrap()
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        let c = self.connect().await;
        let ch = c.create_channel().await.unwrap();
        (c, ch)
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.check_no_panic();
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        self.check_no_panic();
    }

    fn check_no_panic(&self) {
        let stderr = self.stderr();
        if stderr.contains("panicked") && !std::thread::panicking() {
            panic!("the broker panicked:\n{stderr}");
        }
    }
}

impl Drop for Warren {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.check_no_panic();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs the broker on `dir` expecting it to refuse to start; its stderr.
pub fn refused_start(dir: &Path, args: &[&str]) -> String {
    let out = command(dir, 0).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "warren started: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

pub fn data_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("warren-server-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

pub fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

pub async fn message_count(ch: &Channel, queue: &str) -> Result<u32, lapin::Error> {
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(queue, options, FieldTable::default())
        .await
        .map(|q| q.message_count())
}

pub async fn durable_queue(ch: &Channel, queue: &str) {
    let options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare(queue, options, FieldTable::default())
        .await
        .unwrap();
}

/// Every message left in `queue`, taken with no-ack.
pub async fn drain(ch: &Channel, queue: &str) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while let Some(m) = ch
        .basic_get(queue, BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        got.push(m.delivery.data);
    }
    got
}

/// A small tmpfs as the data directory (the tests run as root, as CI does).
pub struct TinyDisk {
    pub dir: PathBuf,
}

impl TinyDisk {
    pub fn mount(name: &str, size: &str) -> TinyDisk {
        let dir = data_dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "mounting a tmpfs needs root, as CI has"
        );
        TinyDisk { dir }
    }

    pub fn grow(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status();
        assert!(status.unwrap().success());
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A blocking AMQP client that sends what stock clients would not.
pub struct Raw {
    pub stream: TcpStream,
    pub buf: BytesMut,
    decoder: FrameDecoder,
}

impl Raw {
    /// Starts a login as `user`; what the broker answers start-ok with
    /// (connection.tune if it took the login, a close if not).
    pub fn login(port: u16, user: &str, password: &str) -> (Raw, Option<(u16, Method)>) {
        Self::start(port, warren_codec::FieldTable::new(), user, password)
    }

    fn start(
        port: u16,
        client_properties: warren_codec::FieldTable,
        user: &str,
        password: &str,
    ) -> (Raw, Option<(u16, Method)>) {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut c = Raw {
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(0),
        };
        c.stream.write_all(&PROTOCOL_HEADER).unwrap();
        c.method();
        c.send(
            0,
            ConnectionStartOk {
                client_properties,
                mechanism: ShortString::from_static("PLAIN"),
                response: LongString::from(format!("\0{user}\0{password}").into_bytes()),
                locale: ShortString::from_static("en_US"),
            },
        );
        let answer = c.method();
        (c, answer)
    }

    pub fn open(port: u16, channels: u16) -> Raw {
        Self::open_named(port, channels, None)
    }

    /// Like [`open`](Self::open), with a `connection_name` client property.
    pub fn open_named(port: u16, channels: u16, name: Option<&'static str>) -> Raw {
        let caps =
            warren_codec::FieldTable::new().with("connection.blocked", FieldValue::Bool(true));
        let mut properties =
            warren_codec::FieldTable::new().with("capabilities", FieldValue::Table(caps));
        if let Some(name) = name {
            properties = properties.with("connection_name", FieldValue::LongString(name.into()));
        }
        let (mut c, answer) = Self::start(port, properties, "guest", "guest");
        let tune = match answer {
            Some((0, Method::ConnectionTune(tune))) => tune,
            other => panic!("no tune: {other:?}"),
        };
        c.send(
            0,
            ConnectionTuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                heartbeat: 0,
            },
        );
        c.decoder.set_frame_max(tune.frame_max);
        c.send(
            0,
            ConnectionOpen {
                virtual_host: ShortString::from_static("/"),
                ..Default::default()
            },
        );
        c.method();
        for ch in 1..=channels {
            c.send(ch, ChannelOpen::default());
            c.method();
        }
        c
    }

    pub fn send(&mut self, channel: u16, method: impl Into<Method>) {
        let mut buf = BytesMut::new();
        encode_method_frame(channel, &method.into(), &mut buf);
        self.stream.write_all(&buf).unwrap();
    }

    pub fn method(&mut self) -> Option<(u16, Method)> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                match frame {
                    Frame::Method { channel, method } => return Some((channel, method)),
                    _ => continue,
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// basic.publish and its header, and `body` (which may be shorter than
    /// `size`: the rest never comes). False once the broker stops reading.
    pub fn publish(&mut self, channel: u16, queue: &str, size: u64, body: &[u8]) -> bool {
        let publish = BasicPublish {
            routing_key: ShortString::try_from(queue).unwrap(),
            ..Default::default()
        };
        let mut buf = BytesMut::new();
        encode_method_frame(channel, &publish.into(), &mut buf);
        let header = ContentHeader {
            class_id: 60,
            weight: 0,
            body_size: size,
            properties: Default::default(),
        };
        encode_header_frame(channel, &header, &mut buf);
        for chunk in body.chunks(128 * 1024 - 8) {
            encode_body_frame(channel, chunk, &mut buf);
        }
        self.stream.write_all(&buf).is_ok()
    }
}

/// The broker's resident memory in bytes.
pub fn rss(warren: &Warren) -> usize {
    proc_status_bytes(warren, "VmRSS:")
}

/// The most resident memory the broker has had, in bytes.
pub fn peak_rss(warren: &Warren) -> usize {
    proc_status_bytes(warren, "VmHWM:")
}

fn proc_status_bytes(warren: &Warren, field: &str) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", warren.child.id())).unwrap();
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}
