//! Priority queues as in RabbitMQ 3.10 (reference §4): `priority` capped
//! at `x-max-priority`, higher first, publish order within a priority, and
//! a message put back returns to its place in its priority.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use warren_tests::*;

async fn priority_queue(ch: &Channel, name: &str, max: u8) {
    let mut args = FieldTable::default();
    args.insert("x-max-priority".into(), AMQPValue::ShortShortUInt(max));
    ch.queue_declare(name, QueueDeclareOptions::default(), args)
        .await
        .unwrap();
}

async fn send(ch: &Channel, queue: &str, body: &str, priority: Option<u8>) {
    let mut properties = BasicProperties::default();
    if let Some(p) = priority {
        properties = properties.with_priority(p);
    }
    ch.basic_publish("", queue, Default::default(), body.as_bytes(), properties)
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn get(ch: &Channel, queue: &str, no_ack: bool) -> Option<lapin::message::BasicGetMessage> {
    ch.basic_get(queue, BasicGetOptions { no_ack })
        .await
        .unwrap()
}

fn body(m: &lapin::message::BasicGetMessage) -> String {
    String::from_utf8(m.delivery.data.clone()).unwrap()
}

#[tokio::test]
async fn higher_priorities_first_in_publish_order_within_one() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    priority_queue(&ch, "q", 10).await;
    for (body, priority) in [
        ("p1", Some(1)),
        ("p5a", Some(5)),
        ("p10", Some(10)),
        ("p5b", Some(5)),
        ("p0", Some(0)),
        ("none", None),
        ("p255", Some(255)),
    ] {
        send(&ch, "q", body, priority).await;
    }
    let mut order = Vec::new();
    while let Some(m) = get(&ch, "q", true).await {
        order.push(body(&m));
    }
    // 255 is capped at 10 and comes after the earlier 10; absent is 0.
    assert_eq!(order, ["p10", "p255", "p5a", "p5b", "p1", "p0", "none"]);
}

#[tokio::test]
async fn a_message_put_back_returns_to_its_place_in_its_priority() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    priority_queue(&ch, "q", 5).await;
    send(&ch, "q", "high-1", Some(5)).await;
    send(&ch, "q", "low", Some(1)).await;
    let held = get(&ch, "q", false).await.unwrap();
    assert_eq!(body(&held), "high-1");
    send(&ch, "q", "high-2", Some(5)).await;
    held.delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let first = get(&ch, "q", true).await.unwrap();
    assert_eq!(body(&first), "high-1");
    assert!(first.delivery.redelivered);
    assert_eq!(body(&get(&ch, "q", true).await.unwrap()), "high-2");
    assert_eq!(body(&get(&ch, "q", true).await.unwrap()), "low");
    // A consumer sees the same order.
    for (b, p) in [("c-low", 0), ("c-high", 3)] {
        send(&ch, "q", b, Some(p)).await;
    }
    let mut consumer = consume(&ch, "q", "c").await;
    assert_eq!(next(&mut consumer).await.data, b"c-high");
    assert_eq!(next(&mut consumer).await.data, b"c-low");
}
