//! Durable queues over their memory budget keep persistent messages on disk
//! only and read them back in order for delivery.

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::time::Duration;
use warren_tests::TestServer;

#[tokio::test]
async fn a_backlog_larger_than_the_queue_budget_is_delivered_whole_and_in_order() {
    let server = TestServer::start_with(|c| c.limits.queue_memory_bytes = 20_000).await;
    let (_c, ch) = server.channel().await;
    ch.queue_declare(
        "big",
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let persistent = BasicProperties::default().with_delivery_mode(2);
    let mut confirms = Vec::new();
    for i in 0..3000u32 {
        let mut body = format!("{i:06}").into_bytes();
        body.resize(1024, b'.');
        confirms.push(
            ch.basic_publish(
                "",
                "big",
                BasicPublishOptions::default(),
                &body,
                persistent.clone(),
            )
            .await
            .unwrap(),
        );
    }
    for c in confirms {
        assert!(c.await.unwrap().is_ack());
    }
    // Transient messages in the same queue stay in memory, in their place.
    ch.basic_publish(
        "",
        "big",
        BasicPublishOptions::default(),
        b"transient",
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    ch.basic_qos(100, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            "big",
            "c",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    for i in 0..3000u32 {
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            &d.data[..6],
            format!("{i:06}").as_bytes(),
            "message {i} out of order or lost"
        );
        assert_eq!(d.data.len(), 1024);
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    let last = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(last.data, b"transient");
}
