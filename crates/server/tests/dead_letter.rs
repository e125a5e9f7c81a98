//! Dead-lettering is crash-safe: a persistent message dead-lettered from a
//! durable queue to a durable queue is stored for its new queue before its
//! old queue lets go of it, so after a kill -9 at any moment it is in one
//! of the two (or both), never in neither.

mod common;

use common::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use std::collections::HashSet;
use std::time::Duration;

const MESSAGES: usize = 300;

#[tokio::test]
async fn a_kill_9_while_dead_lettering_loses_nothing() {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString("dst".into()),
    );
    for (round, kill_after_ms) in [2u64, 15, 40].into_iter().enumerate() {
        let dir = data_dir(&format!("dead-letter-{round}"));
        {
            let mut warren = Warren::start(&dir);
            let (c, ch) = warren.channel().await;
            ch.queue_declare("dst", durable, FieldTable::default())
                .await
                .unwrap();
            ch.queue_declare("src", durable, args.clone())
                .await
                .unwrap();
            ch.confirm_select(Default::default()).await.unwrap();
            for i in 0..MESSAGES {
                let confirm = ch
                    .basic_publish(
                        "",
                        "src",
                        Default::default(),
                        format!("{i}").as_bytes(),
                        persistent(),
                    )
                    .await
                    .unwrap();
                assert!(confirm.await.unwrap().is_ack());
            }
            // A consumer rejects everything; the broker dies meanwhile.
            let consumer_ch = c.create_channel().await.unwrap();
            let mut consumer = consumer_ch
                .basic_consume("src", "r", Default::default(), FieldTable::default())
                .await
                .unwrap();
            let rejecting = tokio::spawn(async move {
                while let Some(Ok(d)) = consumer.next().await {
                    let _ = d.reject(BasicRejectOptions { requeue: false }).await;
                }
            });
            tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
            warren.kill9();
            rejecting.abort();
        }
        let warren = Warren::start(&dir);
        let (_c, ch) = warren.channel().await;
        let mut seen = HashSet::new();
        let mut moved = 0;
        for queue in ["src", "dst"] {
            for body in drain(&ch, queue).await {
                moved += usize::from(queue == "dst");
                seen.insert(String::from_utf8(body).unwrap());
            }
        }
        if kill_after_ms >= 40 {
            assert!(
                moved > 0,
                "round {round}: the kill came before any dead-lettering"
            );
        }
        let missing: Vec<usize> = (0..MESSAGES)
            .filter(|i| !seen.contains(&i.to_string()))
            .collect();
        assert!(missing.is_empty(), "round {round}: lost {missing:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
