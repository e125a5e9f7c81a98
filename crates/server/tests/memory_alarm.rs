//! The memory alarm against clients that try to get around it, with the
//! real binary, a 64 MiB watermark and 16 MiB messages: uncommitted
//! transactions, many partly sent bodies, tiny messages each in its own read
//! buffer, and empty messages. In each case the broker's RSS stays within
//! 1.5 times the watermark and the publisher is blocked (or, for an
//! oversized transaction, its channel closed). One connection's partly sent
//! bodies are bounded even below the watermark. And memory comes back
//! after many queues are deleted.

mod common;

use bytes::BytesMut;
use common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use warren_codec::*;

const WATERMARK: usize = 64 * 1024 * 1024;

fn config(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.with_extension("toml");
    std::fs::write(
        &path,
        format!(
            "[limits]\nvm_memory_high_watermark.absolute = {WATERMARK}\nmax_message_size = 16777216\n"
        ),
    )
    .unwrap();
    path
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
    let (peak, log) = under_attack("tx", 8, |port| {
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
    let (peak, log) = under_attack("partial", 8, |port| {
        // Five connections (each stops being read past its own bound of two
        // maximum messages, 32 MiB): together past the watermark. Each has
        // 30 channels with 16 MiB announced and 15 MiB sent.
        let part = std::sync::Arc::new(vec![3u8; 15 * 1024 * 1024]);
        let attackers: Vec<_> = (0..5)
            .map(|_| {
                let part = part.clone();
                std::thread::spawn(move || {
                    let mut c = Raw::open(port, 30);
                    for ch in 1..=30 {
                        if !c.publish(ch, "q", 16 * 1024 * 1024, &part) {
                            return;
                        }
                    }
                })
            })
            .collect();
        for a in attackers {
            let _ = a.join();
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
fn one_connections_partial_bodies_are_bounded_below_the_alarm() {
    // A watermark far away: only the connection's own bound (two maximum
    // messages, 2 MiB here) stops the reading.
    let dir = data_dir("partial-bound");
    let path = dir.with_extension("toml");
    std::fs::write(
        &path,
        "[limits]\nvm_memory_high_watermark.absolute = 4294967296\nmax_message_size = 1048576\n",
    )
    .unwrap();
    let warren = Warren::start_with(&dir, &["--config", path.to_str().unwrap()]);
    let before = rss(&warren);
    let mut c = Raw::open(warren.port, 100);
    c.stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // 100 channels, 1 MiB announced and 1,000,000 bytes sent on each.
    let part = vec![5u8; 1_000_000];
    let sent = (1..=100u16)
        .take_while(|&ch| c.publish(ch, "q", 1 << 20, &part))
        .count();
    let grown = rss(&warren).saturating_sub(before);
    let log = warren.stderr();
    assert!(sent < 100, "all 100 MB were read");
    assert!(
        log.contains("exceed the connection's bound"),
        "no stall logged:\n{log}"
    );
    assert!(!log.contains("memory alarm"), "{log}");
    // The bound, a read buffer and the socket's buffers: not 100 MB.
    assert!(grown < 24 << 20, "RSS grew {} MiB", grown >> 20);
    drop(warren);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tiny_messages_do_not_pin_read_buffers() {
    let (peak, log) = under_attack("tiny", 15, |port| {
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
    let (peak, log) = under_attack("empty", 10, |port| {
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

#[test]
fn memory_comes_back_after_mass_queue_deletion() {
    const QUEUES: usize = 20_000;
    let dir = data_dir("mass-delete");
    let warren = Warren::start(&dir);
    let before = rss(&warren);
    let mut c = Raw::open(warren.port, 1);
    let name = |i: usize| ShortString::try_from(format!("mass-{i:06}").as_str()).unwrap();
    let mut buf = BytesMut::new();
    for i in 0..QUEUES {
        let declare = QueueDeclare {
            queue: name(i),
            no_wait: true,
            ..Default::default()
        };
        encode_method_frame(1, &declare.into(), &mut buf);
    }
    c.stream.write_all(&buf).unwrap();
    // A last declare with an answer: every one before it is done.
    declare(&mut c, "mass-last");
    let full = rss(&warren);
    assert!(
        full > before + 10 * 1024 * 1024,
        "{} -> {} MiB",
        before >> 20,
        full >> 20
    );
    buf.clear();
    for i in 0..QUEUES {
        let delete = QueueDelete {
            queue: name(i),
            no_wait: true,
            ..Default::default()
        };
        encode_method_frame(1, &delete.into(), &mut buf);
    }
    c.stream.write_all(&buf).unwrap();
    declare(&mut c, "mass-last");
    // The trimmer looks every 5 s.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = rss(&warren);
        if now < before + (full - before) / 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RSS still {} MiB (before {}, with the queues {})",
            now >> 20,
            before >> 20,
            full >> 20
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(warren);
    let _ = std::fs::remove_dir_all(&dir);
}
