//! Sender-selected distribution: `CC` and `BCC` headers route a message by
//! more keys, each queue gets it once, and `BCC` never reaches a consumer.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString};
use lapin::{BasicProperties, Channel, ExchangeKind};
use warren_tests::{reply_code, reply_text, TestServer};

fn keys(keys: &[&str]) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(
        keys.iter()
            .map(|k| AMQPValue::LongString(LongString::from(k.to_string())))
            .collect::<Vec<_>>(),
    ))
}

async fn bound_queue(ch: &Channel, exchange: &str, key: &str) -> String {
    let queue = format!("cc-{exchange}-{key}");
    ch.queue_declare(
        &queue,
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    if !exchange.is_empty() {
        ch.queue_bind(
            &queue,
            exchange,
            key,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    queue
}

async fn publish(ch: &Channel, exchange: &str, key: &str, headers: FieldTable) {
    ch.basic_publish(
        exchange,
        key,
        BasicPublishOptions::default(),
        b"m",
        BasicProperties::default().with_headers(headers),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Every message in `queue`, as its headers.
async fn drain(ch: &Channel, queue: &str) -> Vec<FieldTable> {
    let mut all = Vec::new();
    while let Some(got) = ch
        .basic_get(queue, BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        all.push(
            got.delivery
                .properties
                .headers()
                .clone()
                .unwrap_or_default(),
        );
    }
    all
}

#[tokio::test]
async fn cc_and_bcc_route_by_more_keys_each_queue_once() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.exchange_declare(
        "cc-x",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let (a, b, c) = (
        bound_queue(&ch, "cc-x", "a").await,
        bound_queue(&ch, "cc-x", "b").await,
        bound_queue(&ch, "cc-x", "c").await,
    );
    let mut headers = FieldTable::default();
    headers.insert("CC".into(), keys(&["b", "a", "b"]));
    headers.insert("BCC".into(), keys(&["c"]));
    headers.insert("app".into(), AMQPValue::LongString("kept".into()));
    publish(&ch, "cc-x", "a", headers).await;
    for queue in [&a, &b, &c] {
        let got = drain(&ch, queue).await;
        assert_eq!(got.len(), 1, "{queue} gets the message once");
        let headers = got[0].inner();
        assert!(!headers.contains_key("BCC"), "{queue}: BCC is removed");
        assert_eq!(headers.get("CC"), Some(&keys(&["b", "a", "b"])));
        assert!(headers.contains_key("app"));
    }

    // Through the default exchange: CC names queues.
    let mut headers = FieldTable::default();
    headers.insert("CC".into(), keys(&[&b]));
    publish(&ch, "", &a, headers).await;
    assert_eq!(drain(&ch, &a).await.len(), 1);
    assert_eq!(drain(&ch, &b).await.len(), 1);
}

#[tokio::test]
async fn a_cc_or_bcc_that_is_not_an_array_closes_the_channel_with_406() {
    let server = TestServer::start().await;
    for (header, value, text) in [
        (
            "CC",
            AMQPValue::LongString("a".into()),
            r#"PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",longstr}"#,
        ),
        (
            "BCC",
            AMQPValue::LongInt(1),
            r#"PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"BCC",signedint}"#,
        ),
    ] {
        let (_c, ch) = server.channel().await;
        let mut headers = FieldTable::default();
        headers.insert(header.into(), value);
        ch.basic_publish(
            "",
            "anywhere",
            BasicPublishOptions::default(),
            b"m",
            BasicProperties::default().with_headers(headers),
        )
        .await
        .unwrap();
        let error = ch
            .queue_declare(
                "after",
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(reply_code(&error), 406);
        assert_eq!(reply_text(&error), text);
    }
}
