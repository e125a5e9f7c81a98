//! Deadlines are absolute times: message TTLs of persistent messages in
//! durable queues run on through a kill -9 and the time the broker is down.

mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use std::time::Duration;

#[tokio::test]
async fn message_ttls_count_the_time_the_broker_was_down() {
    let dir = data_dir("expiry");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut ttl = FieldTable::default();
    ttl.insert("x-message-ttl".into(), AMQPValue::LongInt(1500));
    {
        let mut warren = Warren::start(&dir);
        let (_c, ch) = warren.channel().await;
        ch.queue_declare("ttl", durable, ttl.clone()).await.unwrap();
        ch.queue_declare("exp", durable, FieldTable::default())
            .await
            .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for (queue, body, expiration) in [
            ("ttl", "a", None),
            ("exp", "b", Some("1500")),
            ("exp", "c", Some("600000")),
        ] {
            let mut properties = persistent();
            if let Some(expiration) = expiration {
                properties = properties.with_expiration(expiration.into());
            }
            let confirm = ch
                .basic_publish("", queue, Default::default(), body.as_bytes(), properties)
                .await
                .unwrap();
            assert!(confirm.await.unwrap().is_ack());
        }
        warren.kill9();
    }
    // Down for longer than the short TTLs, then back.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let warren = Warren::start(&dir);
    let (_c, ch) = warren.channel().await;
    ch.queue_declare("ttl", durable, ttl).await.unwrap();
    assert_eq!(message_count(&ch, "ttl").await.unwrap(), 0);
    assert_eq!(message_count(&ch, "exp").await.unwrap(), 1);
    assert_eq!(drain(&ch, "exp").await, [b"c".to_vec()]);
    let _ = std::fs::remove_dir_all(&dir);
}

fn expires(ms: i32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(ms));
    args
}

/// `x-expires` leases are stored: a durable queue unused before a crash
/// and while the broker is down expires at its time, not a lease after
/// the restart; one in use at the crash gets a whole lease from the restart.
#[tokio::test]
async fn queue_leases_run_on_through_a_restart() {
    let dir = data_dir("leases");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    {
        let mut warren = Warren::start(&dir);
        let (c, ch) = warren.channel().await;
        ch.queue_declare("unused", durable, expires(1500))
            .await
            .unwrap();
        ch.queue_declare("consumed", durable, expires(1500))
            .await
            .unwrap();
        ch.queue_declare("long", durable, expires(60_000))
            .await
            .unwrap();
        let consumer = c.create_channel().await.unwrap();
        let _consumer = consumer
            .basic_consume("consumed", "c", Default::default(), FieldTable::default())
            .await
            .unwrap();
        // The leases are written by the queues after they answer.
        tokio::time::sleep(Duration::from_millis(300)).await;
        warren.kill9();
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let warren = Warren::start(&dir);
    let (c, _ch) = warren.channel().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gone = |name: &'static str| {
        let c = &c;
        async move {
            let ch = c.create_channel().await.unwrap();
            message_count(&ch, name).await.is_err()
        }
    };
    assert!(
        gone("unused").await,
        "its lease ran out while the broker was down"
    );
    assert!(!gone("consumed").await, "in use at the crash: a new lease");
    assert!(!gone("long").await);
    let _ = std::fs::remove_dir_all(&dir);
}
