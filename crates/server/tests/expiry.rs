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
