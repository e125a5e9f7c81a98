//! A pipelined publisher written with warren-codec: frames are batched into
//! large writes and confirms are read by a second task, so the broker, not
//! the client, is what gets measured.

use bytes::BytesMut;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use warren_codec::*;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `amqp://user:pass@host:port/vhost` → (host:port, user, pass, vhost).
fn parse_url(url: &str) -> Result<(String, String, String, String), Error> {
    let rest = url.strip_prefix("amqp://").ok_or("only amqp:// URLs")?;
    let (auth, rest) = rest.split_once('@').unwrap_or(("guest:guest", rest));
    let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
    let (addr, vhost) = rest.split_once('/').unwrap_or((rest, ""));
    let vhost = match vhost {
        "" | "%2f" | "%2F" => "/".to_string(),
        v => v.to_string(),
    };
    Ok((addr.to_string(), user.to_string(), pass.to_string(), vhost))
}

struct Client {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl Client {
    async fn send(&mut self, channel: u16, method: impl Into<Method>) -> Result<(), Error> {
        let mut out = BytesMut::new();
        encode_method_frame(channel, &method.into(), &mut out);
        self.stream.write_all(&out).await?;
        Ok(())
    }

    async fn method(&mut self) -> Result<Method, Error> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf)? {
                match frame {
                    Frame::Method { method, .. } => return Ok(method),
                    _ => continue,
                }
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err("connection closed".into());
            }
        }
    }
}

/// Publishes `count` messages of `size` bytes and waits for every confirm.
pub async fn publish(
    url: &str,
    queue: &str,
    count: u64,
    size: usize,
    persistent: bool,
    window: usize,
) -> Result<Duration, Error> {
    let (addr, user, pass, vhost) = parse_url(url)?;
    let mut c = Client {
        stream: TcpStream::connect(&addr).await?,
        buf: BytesMut::new(),
        decoder: FrameDecoder::new(0),
    };
    c.stream.set_nodelay(true)?;
    c.stream.write_all(&PROTOCOL_HEADER).await?;
    c.method().await?;
    let start_ok = ConnectionStartOk {
        mechanism: ShortString::from_static("PLAIN"),
        response: LongString::from(format!("\0{user}\0{pass}")),
        locale: ShortString::from_static("en_US"),
        ..Default::default()
    };
    c.send(0, start_ok).await?;
    let Method::ConnectionTune(tune) = c.method().await? else {
        return Err("no tune".into());
    };
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
            virtual_host: ShortString::try_from(vhost.as_str())?,
            ..Default::default()
        },
    )
    .await?;
    c.method().await?;
    c.send(1, ChannelOpen::default()).await?;
    c.method().await?;
    c.send(
        1,
        QueueDeclare {
            queue: ShortString::try_from(queue)?,
            durable: persistent,
            ..Default::default()
        },
    )
    .await?;
    c.method().await?;
    c.send(1, ConfirmSelect { nowait: false }).await?;
    c.method().await?;

    let (mut reader, mut writer) = c.stream.into_split();
    let window = Arc::new(Semaphore::new(window.max(1)));
    let confirms = {
        let window = window.clone();
        let (mut buf, mut decoder) = (c.buf, c.decoder);
        tokio::spawn(async move {
            let mut confirmed = 0u64;
            while confirmed < count {
                while let Some(frame) = decoder.decode(&mut buf)? {
                    if let Frame::Method {
                        method: Method::BasicAck(ack),
                        ..
                    } = frame
                    {
                        let newly = if ack.multiple {
                            ack.delivery_tag - confirmed
                        } else {
                            1
                        };
                        confirmed = if ack.multiple {
                            ack.delivery_tag
                        } else {
                            confirmed + 1
                        };
                        window.add_permits(newly as usize);
                    } else if let Frame::Method { method, .. } = frame {
                        return Err(format!("unexpected {}", method.info().name).into());
                    }
                }
                if confirmed >= count {
                    break;
                }
                if reader.read_buf(&mut buf).await? == 0 {
                    return Err::<(), Error>("connection closed".into());
                }
            }
            Ok(())
        })
    };
    let publish: Method = BasicPublish {
        routing_key: ShortString::try_from(queue)?,
        ..Default::default()
    }
    .into();
    let properties = BasicProperties {
        delivery_mode: persistent.then_some(2),
        ..Default::default()
    };
    let header = ContentHeader {
        class_id: class_id::BASIC,
        weight: 0,
        body_size: size as u64,
        properties,
    };
    let body = vec![b'x'; size];
    let started = Instant::now();
    let mut out = BytesMut::with_capacity(256 * 1024);
    let mut sent = 0u64;
    while sent < count {
        // Take what the window allows, up to a batch, and write it at once.
        let want = (count - sent).min(512) as u32;
        let permit = window
            .acquire_many(want.min(window.available_permits().max(1) as u32))
            .await?;
        let n = permit.num_permits() as u64;
        permit.forget();
        for _ in 0..n {
            encode_content(1, &publish, &header, &body, tune.frame_max, &mut out);
        }
        writer.write_all(&out).await?;
        out.clear();
        sent += n;
    }
    confirms.await??;
    Ok(started.elapsed())
}
