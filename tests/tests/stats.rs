//! Statistics kept by queues, connections and channels, read from the
//! broker's registry while stock clients work (nothing asks a queue).

use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::time::{Duration, Instant};
use warren_broker::Registry;
use warren_tests::TestServer;

/// Waits until `check` holds for the registry.
async fn eventually(stats: &Registry, what: &str, check: impl Fn(&Registry) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check(stats) {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn queues_connections_and_channels_count_their_work() {
    let server = TestServer::start().await;
    let stats = server.stats();
    let (conn, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        "counted",
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for _ in 0..5 {
        ch.basic_publish(
            "",
            "counted",
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    eventually(&stats, "5 published and ready", |s| {
        s.queues().iter().any(|q| {
            q.name.as_bytes() == b"counted" && q.read().ready == 5 && q.read().published == 5
        })
    })
    .await;

    ch.basic_qos(3, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            "counted",
            "c",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    use futures_lite::StreamExt;
    let first = consumer.next().await.unwrap().unwrap();
    first.ack(BasicAckOptions::default()).await.unwrap();
    eventually(&stats, "queue: 1 acked, 3 out", |s| {
        s.queues().iter().any(|q| {
            let c = q.read();
            q.name.as_bytes() == b"counted"
                && (c.acked, c.unacked, c.ready, c.consumers) == (1, 3, 1, 1)
        })
    })
    .await;
    eventually(
        &stats,
        "channel: 5 published and confirmed, 4 delivered",
        |s| {
            s.channels().iter().any(|c| {
                let n = c.read();
                (
                    n.published,
                    n.confirmed,
                    n.delivered,
                    n.acked,
                    n.unacked,
                    n.consumers,
                ) == (5, 5, 4, 1, 3, 1)
            })
        },
    )
    .await;
    let listed = stats.connections();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].user.as_str(), listed[0].vhost.as_str()),
        ("guest", "/")
    );
    assert_eq!(listed[0].channels(), 1);
    assert_eq!(stats.connection_counts(listed[0].id).published, 5);

    conn.close(200, "bye").await.unwrap();
    eventually(&stats, "the connection and its channel leave", |s| {
        s.connections().is_empty() && s.channels().is_empty()
    })
    .await;
}
