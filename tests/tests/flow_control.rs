//! The memory alarm: past the high watermark, publishers are told
//! (connection.blocked) and no longer read; consumers bring it back.

use lapin::options::*;
use lapin::types::FieldTable;
use std::time::Duration;
use warren_codec::*;
use warren_tests::{passive_declare, RawClient, TestServer};

#[tokio::test]
async fn publishers_are_blocked_above_the_watermark_and_unblocked_below() {
    let server =
        TestServer::start_with(|c| c.limits.vm_memory_high_watermark.absolute = 100_000).await;
    let (_c, ch) = server.channel().await;
    ch.queue_declare(
        "backlog",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();

    let mut publisher = RawClient::open(server.addr, 1, true).await;
    let body = vec![1u8; 10_000];
    for _ in 0..15 {
        publisher.publish(1, "", "backlog", &body).await;
    }
    // The publish that finds the alarm on is held, and the client told.
    let blocked = publisher.method().await;
    assert!(
        matches!(blocked, Some((0, Method::ConnectionBlocked(ref b))) if b.reason == "low on memory"),
        "{blocked:?}"
    );
    let q = passive_declare(&ch, "backlog").await.unwrap();
    assert!(
        q.message_count() >= 10 && q.message_count() < 15,
        "{} queued",
        q.message_count()
    );

    // Blocked for longer than two heartbeat intervals: the server keeps
    // sending heartbeats and does not take the unread client for dead.
    let start = std::time::Instant::now();
    let mut heartbeats = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        match tokio::time::timeout(Duration::from_millis(600), publisher.frame()).await {
            Ok(Some(Frame::Heartbeat)) => heartbeats += 1,
            Ok(other) => panic!("unexpected while blocked: {other:?}"),
            Err(_) => {}
        }
    }
    assert!(heartbeats >= 2, "{heartbeats} heartbeats while blocked");

    // Draining the queue clears the alarm: the rest goes through.
    ch.queue_purge("backlog", QueuePurgeOptions::default())
        .await
        .unwrap();
    let unblocked = publisher.method().await;
    assert!(
        matches!(unblocked, Some((0, Method::ConnectionUnblocked(_)))),
        "{unblocked:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while passive_declare(&ch, "backlog")
        .await
        .unwrap()
        .message_count()
        < 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "held publishes arrive after the alarm"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
