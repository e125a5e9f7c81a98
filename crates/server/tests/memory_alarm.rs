//! The memory alarm against clients that try to get around it, with the
//! real binary, a 64 MiB watermark and 16 MiB messages: uncommitted
//! transactions, many partly sent bodies, tiny messages each in its own read
//! buffer, and empty messages. In each case the broker's RSS stays within
//! 1.5 times the watermark and the publisher is blocked (or, for an
//! oversized transaction, its channel closed).

mod common;

use bytes::BytesMut;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use warren_codec::*;

const WATERMARK: usize = 64 * 1024 * 1024;

/// A blocking AMQP client that sends what stock clients would not.
struct Raw {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl Raw {
    fn open(port: u16, channels: u16) -> Raw {
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
        let caps = FieldTable::new().with("connection.blocked", FieldValue::Bool(true));
        c.send(
            0,
            ConnectionStartOk {
                client_properties: FieldTable::new().with("capabilities", FieldValue::Table(caps)),
                mechanism: ShortString::from_static("PLAIN"),
                response: LongString::from("\0guest\0guest"),
                locale: ShortString::from_static("en_US"),
            },
        );
        let Some((0, Method::ConnectionTune(tune))) = c.method() else {
            panic!("no tune")
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

    fn send(&mut self, channel: u16, method: impl Into<Method>) {
        let mut buf = BytesMut::new();
        encode_method_frame(channel, &method.into(), &mut buf);
        self.stream.write_all(&buf).unwrap();
    }

    fn method(&mut self) -> Option<(u16, Method)> {
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
    fn publish(&mut self, channel: u16, queue: &str, size: u64, body: &[u8]) -> bool {
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

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.with_extension("toml");
    std::fs::write(
        &path,
        format!(
            "[limits]\nmemory_high_watermark_bytes = {WATERMARK}\nmax_message_size = 16777216\n"
        ),
    )
    .unwrap();
    path
}

fn rss(warren: &Warren) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", warren.child.id())).unwrap();
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

/// Runs `attack` in a thread for `seconds`, watching the broker's RSS; its
/// peak, and whether the broker said it was blocked.
fn under_attack(
    name: &str,
    seconds: u64,
    attack: impl FnOnce(u16) + Send + 'static,
) -> (usize, String) {
    let dir = data_dir(name);
    let config = config(&dir);
    let warren = Warren::start_with(&dir, &["--config", config.to_str().unwrap()]);
    let port = warren.port;
    let attacker = std::thread::spawn(move || attack(port));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut peak = 0;
    while Instant::now() < deadline && !attacker.is_finished() {
        peak = peak.max(rss(&warren));
        std::thread::sleep(Duration::from_millis(50));
    }
    peak = peak.max(rss(&warren));
    let log = warren.stderr();
    drop(warren);
    let _ = attacker.join();
    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_dir_all(&dir);
    (peak, log)
}

fn assert_bounded(name: &str, peak: usize, log: &str, blocked: &str) {
    eprintln!("{name}: peak RSS {} MiB", peak >> 20);
    assert!(
        peak <= WATERMARK * 3 / 2,
        "{name}: peak RSS {} MiB over 1.5 x the {} MiB watermark",
        peak >> 20,
        WATERMARK >> 20
    );
    assert!(
        log.contains(blocked),
        "{name}: {blocked:?} not logged:\n{log}"
    );
}

fn declare(c: &mut Raw, queue: &str) {
    c.send(
        1,
        QueueDeclare {
            queue: ShortString::try_from(queue).unwrap(),
            ..Default::default()
        },
    );
    c.method();
}

#[test]
fn uncommitted_transactions_count_and_are_bounded() {
    let (peak, log) = under_attack("tx", 20, |port| {
        // Four channels, each with a transaction never committed.
        let mut c = Raw::open(port, 4);
        declare(&mut c, "q");
        for ch in 1..=4 {
            c.send(ch, TxSelect {});
            c.method();
        }
        let body = vec![7u8; 4 * 1024 * 1024];
        for i in 0..200 {
            if !c.publish(1 + (i % 4) as u16, "q", body.len() as u64, &body) {
                return;
            }
        }
    });
    assert_bounded("transactions", peak, &log, "memory alarm");
}

#[test]
fn one_channels_transaction_beyond_its_limit_closes_the_channel() {
    let dir = data_dir("tx-limit");
    let path = dir.with_extension("toml");
    std::fs::write(&path, "[limits]\nmax_transaction_bytes = 1000000\n").unwrap();
    let warren = Warren::start_with(&dir, &["--config", path.to_str().unwrap()]);
    let mut c = Raw::open(warren.port, 1);
    declare(&mut c, "q");
    c.send(1, TxSelect {});
    c.method();
    let body = vec![1u8; 100_000];
    let close = loop {
        assert!(c.publish(1, "q", body.len() as u64, &body));
        c.stream
            .set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let mut chunk = [0u8; 4096];
        if let Ok(n) = c.stream.read(&mut chunk) {
            c.buf.extend_from_slice(&chunk[..n]);
            c.stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            break c.method();
        }
    };
    let Some((1, Method::ChannelClose(close))) = close else {
        panic!("expected channel.close, got {close:?}")
    };
    assert_eq!(close.reply_code, 406);
    assert!(
        close
            .reply_text
            .to_string()
            .contains("limits.max_transaction_bytes"),
        "{}",
        close.reply_text
    );
    drop(warren);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn partly_sent_bodies_count_and_stop_the_reading() {
    let (peak, log) = under_attack("partial", 20, |port| {
        // 150 channels, each with 16 MiB announced and 15 MiB sent.
        let mut c = Raw::open(port, 150);
        let part = vec![3u8; 15 * 1024 * 1024];
        for ch in 1..=150 {
            if !c.publish(ch, "q", 16 * 1024 * 1024, &part) {
                return;
            }
        }
    });
    assert_bounded(
        "partial bodies",
        peak,
        &log,
        "memory alarm: publisher blocked",
    );
}

#[test]
fn tiny_messages_do_not_pin_read_buffers() {
    let (peak, log) = under_attack("tiny", 25, |port| {
        let mut c = Raw::open(port, 1);
        declare(&mut c, "q");
        // One 1-byte message per write, with a 60 KiB neighbour read first
        // into the same buffer, so that each read buffer is large.
        let filler = vec![0u8; 60 * 1024];
        for _ in 0..30_000 {
            if !c.publish(1, "filler-nowhere", filler.len() as u64, &filler) {
                return;
            }
            if !c.publish(1, "q", 1, b"x") {
                return;
            }
        }
    });
    assert_bounded("tiny messages", peak, &log, "");
}

#[test]
fn empty_messages_count_their_fixed_cost() {
    let (peak, log) = under_attack("empty", 40, |port| {
        let mut c = Raw::open(port, 1);
        declare(&mut c, "q");
        let mut batch = Vec::new();
        for _ in 0..1000 {
            let publish = BasicPublish {
                routing_key: ShortString::from_static("q"),
                ..Default::default()
            };
            let mut buf = BytesMut::new();
            encode_method_frame(1, &publish.into(), &mut buf);
            let header = ContentHeader {
                class_id: 60,
                weight: 0,
                body_size: 0,
                properties: Default::default(),
            };
            encode_header_frame(1, &header, &mut buf);
            batch.extend_from_slice(&buf);
        }
        for _ in 0..2_000 {
            if c.stream.write_all(&batch).is_err() {
                return;
            }
        }
    });
    assert_bounded(
        "empty messages",
        peak,
        &log,
        "memory alarm: publisher blocked",
    );
}
