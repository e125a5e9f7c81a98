//! Routing that a hostile client makes expensive: it must never stall the
//! broker. One binding with many `#` words used to take exponential time;
//! a huge trie still takes long, and must run off the runtime's threads.

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::Channel;
use std::time::{Duration, Instant};
use warren_tests::{RawClient, TestServer};

async fn bound_queue(channel: &Channel, exchange: &str, patterns: &[String]) -> String {
    channel
        .exchange_declare(
            exchange,
            lapin::ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let queue = channel
        .queue_declare("", QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap()
        .name()
        .to_string();
    for pattern in patterns {
        channel
            .queue_bind(
                &queue,
                exchange,
                pattern,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    queue
}

async fn message_count(channel: &Channel, queue: &str) -> u32 {
    warren_tests::passive_declare(channel, queue)
        .await
        .unwrap()
        .message_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_hashes_and_a_long_key_route_at_once() {
    let server = TestServer::start().await;
    let (_conn, channel) = server.channel().await;
    let pattern = "#.#.#.#.#.#.#.#.#.#.#.#.x".to_string();
    let queue = bound_queue(&channel, "hashes", &[pattern]).await;
    let key = vec!["w"; 100].join(".");
    let mut raw = RawClient::open(server.addr, 0, true).await;
    raw.publish(1, "hashes", &key, b"no match").await;
    raw.publish(1, "hashes", &format!("{key}.x"), b"match")
        .await;
    // Tens of seconds at full CPU before: the matcher was exponential.
    let deadline = Instant::now() + Duration::from_secs(10);
    while message_count(&channel, &queue).await < 1 {
        assert!(Instant::now() < deadline, "the match never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(message_count(&channel, &queue).await, 1);
}

/// Patterns over `*`, `#` and `w`: nearly every trie node matches a key of
/// `w`s at nearly every position.
fn patterns(count: usize, words: usize) -> Vec<String> {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    (0..count)
        .map(|_| {
            (0..words)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ["*", "#", "w", "w"][(seed % 4) as usize]
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_routes_do_not_stall_other_connections() {
    let server = TestServer::start().await;
    let (_conn, channel) = server.channel().await;
    let queue = bound_queue(&channel, "huge", &patterns(600, 30)).await;
    let key = vec!["w"; 100].join(".");
    // As many publishers as runtime threads, each routing without pause.
    let mut publishers = Vec::new();
    for _ in 0..2 {
        let mut raw = RawClient::open(server.addr, 0, true).await;
        let key = key.clone();
        publishers.push(tokio::spawn(async move {
            for _ in 0..4 {
                raw.publish(1, "huge", &key, b"slow").await;
            }
            raw
        }));
    }
    // Wait until routing is under way: one message has arrived.
    let started = Instant::now();
    while message_count(&channel, &queue).await < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "nothing routed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let one_route = started.elapsed();
    // Another client: a new connection and twenty round trips.
    let before = Instant::now();
    let (_other, other) = server.channel().await;
    for _ in 0..20 {
        warren_tests::passive_declare(&other, &queue).await.unwrap();
    }
    let took = before.elapsed();
    let routed = message_count(&channel, &queue).await;
    assert!(
        routed < 8,
        "routing finished before the other client was served ({routed} routed)"
    );
    assert!(
        took < Duration::from_secs(2),
        "another client waited {took:?} (one route takes about {one_route:?})"
    );
    for publisher in publishers {
        publisher.abort();
    }
}
