//! Dead-lettering as RabbitMQ 3.10 does it (reference §2): rejected and
//! expired messages go to the queue's dead-letter exchange with the
//! `x-death` array and `x-first-death-*` headers, counted per queue and
//! reason; `expiration` removed; `CC` kept unless a dead-letter routing key
//! replaces the keys; cycles of expiries dropped; a missing exchange drops.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};
use std::time::Duration;
use warren_tests::*;

fn strings(items: &[&str]) -> AMQPValue {
    AMQPValue::FieldArray(FieldArray::from(
        items.iter().map(|s| text(s)).collect::<Vec<_>>(),
    ))
}

async fn send(ch: &Channel, queue: &str, properties: BasicProperties) {
    ch.basic_publish("", queue, Default::default(), b"body", properties)
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn take(ch: &Channel, queue: &str) -> Option<lapin::message::BasicGetMessage> {
    ch.basic_get(queue, BasicGetOptions { no_ack: false })
        .await
        .unwrap()
}

/// Waits up to a second for a message in `queue`.
async fn arrives(ch: &Channel, queue: &str) -> lapin::message::BasicGetMessage {
    for _ in 0..100 {
        if let Some(m) = take(ch, queue).await {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing arrived in {queue}");
}

fn header<'a>(m: &'a lapin::message::BasicGetMessage, key: &str) -> Option<&'a AMQPValue> {
    m.delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(key))
}

/// The x-death entries, newest first.
fn deaths(m: &lapin::message::BasicGetMessage) -> Vec<FieldTable> {
    match header(m, "x-death") {
        Some(AMQPValue::FieldArray(list)) => list
            .as_slice()
            .iter()
            .map(|v| match v {
                AMQPValue::FieldTable(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("no x-death: {other:?}"),
    }
}

fn field<'a>(t: &'a FieldTable, key: &str) -> &'a AMQPValue {
    t.inner()
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {t:?}"))
}

async fn reject(m: lapin::message::BasicGetMessage) {
    m.delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
}

async fn dead_letter_exchange(ch: &Channel) {
    ch.exchange_declare(
        "dlx",
        ExchangeKind::Topic,
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare_with(ch, "t", &[]).await;
    ch.queue_bind("t", "dlx", "#", Default::default(), FieldTable::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rejected_message_reaches_the_dead_letter_queue_with_x_death() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    dead_letter_exchange(&ch).await;
    // D1.
    declare_with(&ch, "q", &[("x-dead-letter-exchange", text("dlx"))]).await;
    let mut headers = FieldTable::default();
    headers.insert("CC".into(), strings(&["c1"]));
    headers.insert("BCC".into(), strings(&["b1"]));
    let properties = BasicProperties::default()
        .with_headers(headers)
        .with_expiration("60000".into());
    send(&ch, "q", properties).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    reject(take(&ch, "q").await.expect("in q")).await;
    let dead = arrives(&ch, "t").await;
    assert_eq!(dead.delivery.exchange.as_str(), "dlx");
    assert_eq!(dead.delivery.routing_key.as_str(), "q");
    assert!(!dead.delivery.redelivered);
    assert_eq!(dead.delivery.properties.expiration(), &None);
    let d = deaths(&dead);
    assert_eq!(d.len(), 1);
    assert_eq!(field(&d[0], "count"), &AMQPValue::LongLongInt(1));
    assert_eq!(field(&d[0], "reason"), &text("rejected"));
    assert_eq!(field(&d[0], "queue"), &text("q"));
    assert_eq!(field(&d[0], "exchange"), &text(""));
    assert_eq!(field(&d[0], "routing-keys"), &strings(&["q", "c1"]));
    assert_eq!(field(&d[0], "original-expiration"), &text("60000"));
    match field(&d[0], "time") {
        AMQPValue::Timestamp(t) => assert!(t.abs_diff(now) <= 2, "{t} vs {now}"),
        other => panic!("time is {other:?}"),
    }
    assert_eq!(
        header(&dead, "x-first-death-reason"),
        Some(&text("rejected"))
    );
    assert_eq!(header(&dead, "x-first-death-queue"), Some(&text("q")));
    assert_eq!(header(&dead, "x-first-death-exchange"), Some(&text("")));
    assert_eq!(header(&dead, "CC"), Some(&strings(&["c1"])));
    assert_eq!(header(&dead, "BCC"), None);
    dead.delivery.ack(Default::default()).await.unwrap();

    // D2: a dead-letter routing key replaces the keys, and CC goes.
    declare_with(
        &ch,
        "fixed",
        &[
            ("x-dead-letter-exchange", text("dlx")),
            ("x-dead-letter-routing-key", text("fixed.rk")),
        ],
    )
    .await;
    let mut headers = FieldTable::default();
    headers.insert("CC".into(), strings(&["c1"]));
    send(
        &ch,
        "fixed",
        BasicProperties::default().with_headers(headers),
    )
    .await;
    take(&ch, "fixed")
        .await
        .unwrap()
        .delivery
        .nack(BasicNackOptions {
            requeue: false,
            ..Default::default()
        })
        .await
        .unwrap();
    let dead = arrives(&ch, "t").await;
    assert_eq!(dead.delivery.routing_key.as_str(), "fixed.rk");
    assert_eq!(header(&dead, "CC"), None);
    assert_eq!(
        field(&deaths(&dead)[0], "routing-keys"),
        &strings(&["fixed", "c1"])
    );
}

#[tokio::test]
async fn rejections_back_into_the_same_queue_count_up_and_never_stop() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    // D3: the default exchange and the original key lead back to q.
    declare_with(&ch, "q", &[("x-dead-letter-exchange", text(""))]).await;
    send(&ch, "q", BasicProperties::default()).await;
    let first = arrives(&ch, "q").await;
    assert!(header(&first, "x-death").is_none());
    reject(first).await;
    for count in 1..=3 {
        let again = arrives(&ch, "q").await;
        let d = deaths(&again);
        assert_eq!(d.len(), 1);
        assert_eq!(field(&d[0], "count"), &AMQPValue::LongLongInt(count));
        reject(again).await;
    }
}

#[tokio::test]
async fn expired_messages_are_dead_lettered_and_expiry_cycles_are_dropped() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    declare_with(&ch, "dlq", &[]).await;
    // T4: TTL 0 with a dead-letter queue.
    declare_with(
        &ch,
        "zero",
        &[
            ("x-message-ttl", AMQPValue::LongInt(0)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("dlq")),
        ],
    )
    .await;
    send(
        &ch,
        "zero",
        BasicProperties::default().with_expiration("50000".into()),
    )
    .await;
    let dead = arrives(&ch, "dlq").await;
    let d = deaths(&dead);
    assert_eq!(field(&d[0], "reason"), &text("expired"));
    assert_eq!(field(&d[0], "original-expiration"), &text("50000"));
    assert_eq!(dead.delivery.properties.expiration(), &None);
    dead.delivery.ack(Default::default()).await.unwrap();
    // T5: held past its deadline, then put back: dead-lettered as expired.
    declare_with(
        &ch,
        "held",
        &[
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("dlq")),
        ],
    )
    .await;
    send(
        &ch,
        "held",
        BasicProperties::default().with_expiration("400".into()),
    )
    .await;
    let held = take(&ch, "held").await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    held.delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let dead = arrives(&ch, "dlq").await;
    assert_eq!(field(&deaths(&dead)[0], "reason"), &text("expired"));
    assert_eq!(field(&deaths(&dead)[0], "queue"), &text("held"));
    dead.delivery.ack(Default::default()).await.unwrap();
    // D4: a queue expiring into itself drops the message.
    declare_with(
        &ch,
        "self",
        &[
            ("x-message-ttl", AMQPValue::LongInt(50)),
            ("x-dead-letter-exchange", text("")),
            ("x-dead-letter-routing-key", text("self")),
        ],
    )
    .await;
    send(&ch, "self", BasicProperties::default()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        passive_declare(&ch, "self").await.unwrap().message_count(),
        0
    );
    // D5: A expires into B, B into A: dropped when it would enter A again.
    for (name, next) in [("a", "b"), ("b", "a")] {
        declare_with(
            &ch,
            name,
            &[
                ("x-message-ttl", AMQPValue::LongInt(50)),
                ("x-dead-letter-exchange", text("")),
                ("x-dead-letter-routing-key", text(next)),
            ],
        )
        .await;
    }
    send(&ch, "a", BasicProperties::default()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for name in ["a", "b"] {
        assert_eq!(
            passive_declare(&ch, name).await.unwrap().message_count(),
            0,
            "{name}"
        );
    }
    // D7: a dead-letter exchange that does not exist drops the message.
    declare_with(&ch, "lost", &[("x-dead-letter-exchange", text("missing"))]).await;
    send(&ch, "lost", BasicProperties::default()).await;
    reject(take(&ch, "lost").await.unwrap()).await;
    assert_eq!(
        passive_declare(&ch, "lost").await.unwrap().message_count(),
        0
    );
    assert!(ch.status().connected(), "nobody was told of an error");
}
