//! Message TTL as RabbitMQ 3.10 applies it (reference §1): the lower of a
//! message's `expiration` and the queue's `x-message-ttl`, fixed when the
//! message enters the queue; expiry at the head only; TTL 0 delivered only
//! to a consumer with room at once; requeued messages keep their deadline.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use std::time::Duration;
use warren_tests::*;

async fn queue_with(ch: &Channel, name: &str, ttl: Option<i32>) {
    let mut args = FieldTable::default();
    if let Some(ttl) = ttl {
        args.insert("x-message-ttl".into(), AMQPValue::LongInt(ttl));
    }
    ch.queue_declare(name, QueueDeclareOptions::default(), args)
        .await
        .unwrap();
}

async fn send(ch: &Channel, queue: &str, body: &str, expiration: Option<&str>) {
    let mut properties = BasicProperties::default();
    if let Some(expiration) = expiration {
        properties = properties.with_expiration(expiration.into());
    }
    ch.basic_publish("", queue, Default::default(), body.as_bytes(), properties)
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn count(ch: &Channel, queue: &str) -> u32 {
    passive_declare(ch, queue).await.unwrap().message_count()
}

async fn get(ch: &Channel, queue: &str, no_ack: bool) -> Option<lapin::message::BasicGetMessage> {
    ch.basic_get(queue, BasicGetOptions { no_ack })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_expired_message_behind_a_live_one_waits_for_the_head() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    queue_with(&ch, "q", None).await;
    // T1: A lives 5 s, B 100 ms behind it.
    send(&ch, "q", "A", Some("5000")).await;
    send(&ch, "q", "B", Some("100")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&ch, "q").await, 2);
    // T2: taking A brings B to the head, where it expires at once.
    let a = get(&ch, "q", true).await.expect("A");
    assert_eq!(a.delivery.data, b"A");
    assert_eq!(a.message_count, 0);
    assert_eq!(count(&ch, "q").await, 0);
}

#[tokio::test]
async fn the_lower_of_message_and_queue_ttl_wins() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    // T3.
    queue_with(&ch, "q", Some(300)).await;
    send(&ch, "q", "long", Some("10000")).await;
    send(&ch, "q", "short", Some("100")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(&ch, "q").await, 2, "the head lives 300 ms");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&ch, "q").await, 0);
    // Without a consumer or a look, the queue's timer removes them.
    queue_with(&ch, "timer", Some(100)).await;
    send(&ch, "timer", "x", None).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stats = server.stats();
    let ready = stats
        .queues()
        .into_iter()
        .find(|q| q.name.as_bytes() == b"timer")
        .map(|q| q.read().ready);
    assert_eq!(ready, Some(0), "expired by the timer, not by a look");
    // A message without a TTL in a queue without one stays.
    queue_with(&ch, "plain", None).await;
    send(&ch, "plain", "x", None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(&ch, "plain").await, 1);
}

#[tokio::test]
async fn ttl_zero_reaches_only_a_consumer_with_room_at_once() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    queue_with(&ch, "zero", Some(0)).await;
    // Nobody to take it: gone.
    send(&ch, "zero", "lost", None).await;
    assert_eq!(count(&ch, "zero").await, 0);
    // A consumer with prefetch 1 takes the first; the second finds no room.
    let consumer_ch = server.connect().await.create_channel().await.unwrap();
    consumer_ch.basic_qos(1, Default::default()).await.unwrap();
    let mut consumer = consume(&consumer_ch, "zero", "c").await;
    send(&ch, "zero", "first", None).await;
    send(&ch, "zero", "second", None).await;
    let first = next(&mut consumer).await;
    assert_eq!(first.data, b"first");
    first.ack(Default::default()).await.unwrap();
    nothing_more(&mut consumer).await;
    assert_eq!(count(&ch, "zero").await, 0);
    // expiration "0" is the same.
    queue_with(&ch, "plain", None).await;
    send(&ch, "plain", "x", Some("0")).await;
    assert_eq!(count(&ch, "plain").await, 0);
}

#[tokio::test]
async fn a_requeued_message_keeps_its_deadline() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    queue_with(&ch, "q", None).await;
    send(&ch, "q", "x", Some("400")).await;
    // Held unacknowledged past its deadline, it does not expire...
    let held = get(&ch, "q", false).await.expect("x");
    tokio::time::sleep(Duration::from_millis(600)).await;
    // ...but put back, it is already expired and goes.
    held.delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(count(&ch, "q").await, 0);
    // One put back before its deadline is delivered again.
    send(&ch, "q", "y", Some("5000")).await;
    let held = get(&ch, "q", false).await.expect("y");
    held.delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let again = get(&ch, "q", true).await.expect("y again");
    assert!(again.delivery.redelivered);
}

async fn expiring_queue(ch: &Channel, name: &str, expires: i32) {
    let mut args = FieldTable::default();
    args.insert("x-expires".into(), AMQPValue::LongInt(expires));
    ch.queue_declare(name, QueueDeclareOptions::default(), args)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unused_queue_expires_and_publishing_does_not_keep_it() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    // T8: published to every 150 ms, unused otherwise: gone after 400 ms.
    expiring_queue(&ch, "q", 400).await;
    for _ in 0..6 {
        send(&ch, "q", "x", None).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let probe = c.create_channel().await.unwrap();
    let e = passive_declare(&probe, "q").await.unwrap_err();
    assert_eq!(reply_code(&e), 404);
    assert_eq!(reply_text(&e), "NOT_FOUND - no queue 'q' in vhost '/'");
}

#[tokio::test]
async fn gets_declarations_and_consumers_keep_a_queue_alive() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    // basic.get and passive declarations every 150 ms keep a 400 ms queue.
    expiring_queue(&ch, "looked-at", 400).await;
    for i in 0..8 {
        if i % 2 == 0 {
            get(&ch, "looked-at", true).await;
        } else {
            passive_declare(&ch, "looked-at").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    passive_declare(&ch, "looked-at").await.unwrap();
    // A consumer keeps it however long it stays; the lease restarts when
    // the last consumer goes.
    expiring_queue(&ch, "consumed", 300).await;
    let consumer_ch = c.create_channel().await.unwrap();
    let _consumer = consume(&consumer_ch, "consumed", "c").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    passive_declare(&ch, "consumed").await.unwrap();
    consumer_ch
        .basic_cancel("c", Default::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    passive_declare(&ch, "consumed").await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let probe = c.create_channel().await.unwrap();
    assert_eq!(
        reply_code(&passive_declare(&probe, "consumed").await.unwrap_err()),
        404
    );
}
