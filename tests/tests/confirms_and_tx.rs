//! Publisher confirms and transactions.

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::time::Duration;
use warren_tests::{
    consume, declare, passive_declare, publish_n, reply_code, reply_text, TestServer,
};

#[tokio::test]
async fn every_publish_is_confirmed() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.queue_declare("q", QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let mut pending = Vec::new();
    for i in 0..1000 {
        let routing_key = if i % 2 == 0 { "q" } else { "nowhere" };
        pending.push(
            ch.basic_publish(
                "",
                routing_key,
                BasicPublishOptions::default(),
                b"x",
                BasicProperties::default(),
            )
            .await
            .unwrap(),
        );
    }
    for confirm in pending {
        assert!(matches!(confirm.await.unwrap(), Confirmation::Ack(None)));
    }
    let q = passive_declare(&ch, "q").await.unwrap();
    assert_eq!(q.message_count(), 500);
}

#[tokio::test]
async fn tx_commit_publishes_and_rollback_discards() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.queue_declare("q", QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    ch.tx_select().await.unwrap();
    ch.basic_publish(
        "",
        "q",
        BasicPublishOptions::default(),
        b"kept",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let q = passive_declare(&ch, "q").await.unwrap();
    assert_eq!(q.message_count(), 0, "held until commit");
    ch.tx_commit().await.unwrap();
    ch.basic_publish(
        "",
        "q",
        BasicPublishOptions::default(),
        b"dropped",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    ch.tx_rollback().await.unwrap();
    let q = passive_declare(&ch, "q").await.unwrap();
    assert_eq!(q.message_count(), 1);
}

#[tokio::test]
async fn tx_acks_apply_at_commit_and_rollback_keeps_them_unacknowledged() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.queue_declare("q", QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    for i in 0..2 {
        ch.basic_publish(
            "",
            "q",
            BasicPublishOptions::default(),
            format!("{i}").as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    ch.tx_select().await.unwrap();
    let mut consumer = consume(&ch, "q", "c").await;
    let first = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    first.ack(BasicAckOptions::default()).await.unwrap();
    ch.tx_commit().await.unwrap();
    second.ack(BasicAckOptions::default()).await.unwrap();
    ch.tx_rollback().await.unwrap();
    // The rolled-back ack left "1" unacknowledged: closing the channel returns it.
    ch.close(200, "bye").await.unwrap();
    let ch2 = c.create_channel().await.unwrap();
    let got = ch2
        .basic_get("q", BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.delivery.data, b"1");
    assert!(ch2
        .basic_get("q", BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn acks_a_transaction_never_committed_are_undone_when_its_channel_closes() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    declare(&ch, "q").await;
    publish_n(&ch, "q", 3).await;
    ch.tx_select().await.unwrap();
    let mut tags = Vec::new();
    for _ in 0..3 {
        let got = ch
            .basic_get("q", BasicGetOptions::default())
            .await
            .unwrap()
            .unwrap();
        tags.push(got.delivery.delivery_tag);
    }
    ch.basic_ack(tags[0], BasicAckOptions::default())
        .await
        .unwrap();
    ch.basic_reject(tags[1], BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    // Uncommitted: the ack and the reject die with the channel, and all
    // three messages come back, in order, redelivered.
    ch.close(200, "bye").await.unwrap();
    let ch2 = c.create_channel().await.unwrap();
    for expected in ["0", "1", "2"] {
        let got = ch2
            .basic_get("q", BasicGetOptions { no_ack: true })
            .await
            .unwrap()
            .expect("requeued");
        assert_eq!(got.delivery.data, expected.as_bytes());
        assert!(got.delivery.redelivered);
    }
}

#[tokio::test]
async fn mixing_tx_and_confirms_is_406() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.tx_select().await.unwrap();
    let e = ch
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 406);
    assert_eq!(
        reply_text(&e),
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode"
    );
    let ch = c.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let e = ch.tx_select().await.unwrap_err();
    assert_eq!(reply_code(&e), 406);
    assert_eq!(
        reply_text(&e),
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode"
    );
    let ch = c.create_channel().await.unwrap();
    let e = ch.tx_commit().await.unwrap_err();
    assert_eq!(
        reply_text(&e),
        "PRECONDITION_FAILED - channel is not transactional"
    );
}
