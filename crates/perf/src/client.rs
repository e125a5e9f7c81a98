//! A minimal AMQP client on warren-codec: the handshake and request/response
//! methods for setup, then the raw socket halves for pipelined traffic.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use warren_codec::*;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where and as whom to connect, from `amqp://user:pass@host:port/vhost`.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: String,
    pub user: String,
    pub pass: String,
    pub vhost: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, Error> {
        let rest = url
            .strip_prefix("amqp://")
            .ok_or("only amqp:// URLs are supported")?;
        let (auth, rest) = rest.split_once('@').unwrap_or(("guest:guest", rest));
        let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
        let (addr, vhost) = rest.split_once('/').unwrap_or((rest, ""));
        let addr = if addr.contains(':') {
            addr.to_string()
        } else {
            format!("{addr}:5672")
        };
        let vhost = match vhost {
            "" => "/".to_string(),
            v => v.replace("%2f", "/").replace("%2F", "/"),
        };
        Ok(Target {
            addr,
            user: user.to_string(),
            pass: pass.to_string(),
            vhost,
        })
    }
}

/// An open connection with channel 1 open.
pub struct Client {
    stream: TcpStream,
    pub buf: BytesMut,
    pub decoder: FrameDecoder,
    pub frame_max: u32,
}

impl Client {
    /// Connects and opens channel 1; gives up after 30 s (a broker out of
    /// file descriptors stops accepting without refusing).
    pub async fn connect(target: &Target) -> Result<Self, Error> {
        tokio::time::timeout(std::time::Duration::from_secs(30), Self::open(target))
            .await
            .map_err(|_| format!("connecting to {} timed out after 30 s", target.addr))?
    }

    async fn open(target: &Target) -> Result<Self, Error> {
        let stream = TcpStream::connect(&target.addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Client {
            stream,
            buf: BytesMut::with_capacity(4096),
            decoder: FrameDecoder::new(0),
            frame_max: 0,
        };
        c.stream.write_all(&PROTOCOL_HEADER).await?;
        c.expect("connection.start").await?;
        let start_ok = ConnectionStartOk {
            mechanism: ShortString::from_static("PLAIN"),
            response: LongString::from(format!("\0{}\0{}", target.user, target.pass)),
            locale: ShortString::from_static("en_US"),
            ..Default::default()
        };
        c.send(0, start_ok).await?;
        let Method::ConnectionTune(tune) = c.expect("connection.tune").await? else {
            unreachable!()
        };
        c.frame_max = tune.frame_max;
        c.send(
            0,
            ConnectionTuneOk {
                channel_max: tune.channel_max,
                frame_max: tune.frame_max,
                heartbeat: 0,
            },
        )
        .await?;
        c.send(
            0,
            ConnectionOpen {
                virtual_host: ShortString::try_from(target.vhost.as_str())?,
                ..Default::default()
            },
        )
        .await?;
        c.expect("connection.open-ok").await?;
        c.call(ChannelOpen::default(), "channel.open-ok").await?;
        Ok(c)
    }

    pub async fn send(&mut self, channel: u16, method: impl Into<Method>) -> Result<(), Error> {
        let mut out = BytesMut::new();
        encode_method_frame(channel, &method.into(), &mut out);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// Sends a method on channel 1 and waits for its reply.
    pub async fn call(&mut self, method: impl Into<Method>, reply: &str) -> Result<Method, Error> {
        self.send(1, method).await?;
        self.expect(reply).await
    }

    /// The next method, which must be `name`; a close is reported as an error.
    pub async fn expect(&mut self, name: &str) -> Result<Method, Error> {
        loop {
            if let Some(Frame::Method { method, .. }) = self.decoder.decode(&mut self.buf)? {
                return match method {
                    m if m.info().name == name => Ok(m),
                    Method::ConnectionClose(c) => {
                        Err(format!("connection closed: {} {}", c.reply_code, c.reply_text).into())
                    }
                    Method::ChannelClose(c) => {
                        Err(format!("channel closed: {} {}", c.reply_code, c.reply_text).into())
                    }
                    m => Err(format!("expected {name}, got {}", m.info().name).into()),
                };
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err("connection closed by the broker".into());
            }
        }
    }

    /// Closes politely; errors are ignored, the run is over.
    pub async fn close(mut self) {
        let close = ConnectionClose {
            reply_code: 200,
            reply_text: ShortString::from_static("done"),
            ..Default::default()
        };
        if self.send(0, close).await.is_ok() {
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                self.expect("connection.close-ok"),
            )
            .await;
        }
    }

    /// The socket halves plus whatever was read past the last setup reply.
    pub fn split(self) -> (Reader, OwnedWriteHalf) {
        let (read, write) = self.stream.into_split();
        let reader = Reader {
            read,
            buf: self.buf,
            decoder: self.decoder,
        };
        (reader, write)
    }
}

pub struct Reader {
    read: OwnedReadHalf,
    pub buf: BytesMut,
    pub decoder: FrameDecoder,
}

impl Reader {
    /// Reads more bytes; `false` when the broker closed the socket.
    pub async fn fill(&mut self) -> Result<bool, Error> {
        if self.buf.capacity() - self.buf.len() < 64 * 1024 {
            self.buf.reserve(256 * 1024);
        }
        Ok(self.read.read_buf(&mut self.buf).await? > 0)
    }

    /// The next whole frame already in the buffer.
    pub fn frame(&mut self) -> Result<Option<RawFrame>, Error> {
        Ok(self.decoder.decode_raw(&mut self.buf)?)
    }
}
