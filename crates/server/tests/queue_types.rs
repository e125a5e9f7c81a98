//! Queue kinds and orders across restarts: a quorum queue (served by the
//! durable single-node queue until replicated queues exist) keeps its kind,
//! its arguments and its persistent messages through a kill -9, and a
//! priority queue its order.

mod common;

use common::*;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};

fn quorum() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert("x-delivery-limit".into(), AMQPValue::LongInt(3));
    args
}

#[tokio::test]
async fn a_quorum_queue_keeps_its_kind_and_messages_through_kill_9() {
    let dir = data_dir("quorum");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    {
        let mut warren = Warren::start(&dir);
        let (_c, ch) = warren.channel().await;
        ch.queue_declare("qq", durable, quorum()).await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for i in 0..3 {
            let body = format!("m{i}");
            let confirm = ch
                .basic_publish("", "qq", Default::default(), body.as_bytes(), persistent())
                .await
                .unwrap();
            assert!(confirm.await.unwrap().is_ack());
        }
        warren.kill9();
    }
    let warren = Warren::start(&dir);
    let (c, ch) = warren.channel().await;
    ch.queue_declare("qq", durable, quorum()).await.unwrap();
    let e = ch
        .queue_declare("qq", durable, FieldTable::default())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("inequivalent arg 'x-queue-type' for queue 'qq' in vhost '/': received none but current is the value 'quorum' of type 'longstr'"),
        "{e}"
    );
    let ch = c.create_channel().await.unwrap();
    assert_eq!(
        drain(&ch, "qq").await,
        [b"m0".to_vec(), b"m1".to_vec(), b"m2".to_vec()]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A durable priority queue's messages come back in priority order.
#[tokio::test]
async fn priorities_survive_kill_9() {
    let dir = data_dir("priorities");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut args = FieldTable::default();
    args.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(9));
    {
        let mut warren = Warren::start(&dir);
        let (_c, ch) = warren.channel().await;
        ch.queue_declare("pq", durable, args.clone()).await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        for (body, priority) in [("p2", 2), ("p9", 9), ("p0", 0), ("p9b", 9), ("p5", 5)] {
            let confirm = ch
                .basic_publish(
                    "",
                    "pq",
                    Default::default(),
                    body.as_bytes(),
                    persistent().with_priority(priority),
                )
                .await
                .unwrap();
            assert!(confirm.await.unwrap().is_ack());
        }
        warren.kill9();
    }
    let warren = Warren::start(&dir);
    let (_c, ch) = warren.channel().await;
    ch.queue_declare("pq", durable, args).await.unwrap();
    let bodies: Vec<Vec<u8>> = ["p9", "p9b", "p5", "p2", "p0"]
        .iter()
        .map(|b| b.as_bytes().to_vec())
        .collect();
    assert_eq!(drain(&ch, "pq").await, bodies);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A persistent publish a full durable queue refused is not stored for it:
/// after a restart the queue holds what it took.
#[tokio::test]
async fn a_refused_publish_is_not_stored_for_the_full_queue() {
    let dir = data_dir("refused");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    {
        let mut warren = Warren::start(&dir);
        let (_c, ch) = warren.channel().await;
        ch.queue_declare("full", durable, args.clone())
            .await
            .unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        let mut answers = Vec::new();
        for body in ["kept", "refused"] {
            let confirm = ch
                .basic_publish(
                    "",
                    "full",
                    Default::default(),
                    body.as_bytes(),
                    persistent(),
                )
                .await
                .unwrap();
            answers.push(confirm.await.unwrap().is_ack());
        }
        assert_eq!(answers, [true, false]);
        warren.kill9();
    }
    let warren = Warren::start(&dir);
    let (_c, ch) = warren.channel().await;
    ch.queue_declare("full", durable, args).await.unwrap();
    assert_eq!(drain(&ch, "full").await, [b"kept".to_vec()]);
    let _ = std::fs::remove_dir_all(&dir);
}
