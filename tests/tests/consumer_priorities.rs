//! Consumer priorities and single active consumer as in RabbitMQ 3.10
//! (reference §5): the highest priorities with room are served first,
//! round-robin among equals; on a single-active-consumer queue only the
//! first consumer receives, and when it goes the waiting one of highest
//! priority takes over.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection};
use warren_tests::*;

fn with_priority(priority: i32) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-priority".into(), AMQPValue::LongInt(priority));
    args
}

async fn consumer_on(
    c: &Connection,
    queue: &str,
    tag: &str,
    prefetch: u16,
    args: FieldTable,
) -> (Channel, lapin::Consumer) {
    let ch = c.create_channel().await.unwrap();
    if prefetch > 0 {
        ch.basic_qos(prefetch, Default::default()).await.unwrap();
    }
    let consumer = ch
        .basic_consume(queue, tag, BasicConsumeOptions::default(), args)
        .await
        .unwrap();
    (ch, consumer)
}

fn body(d: &lapin::message::Delivery) -> String {
    String::from_utf8(d.data.clone()).unwrap()
}

async fn publish(ch: &Channel, queue: &str, bodies: impl IntoIterator<Item = String>) {
    for b in bodies {
        ch.basic_publish(
            "",
            queue,
            Default::default(),
            b.as_bytes(),
            Default::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

async fn sac_queue(ch: &Channel, name: &str) {
    let mut args = FieldTable::default();
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    ch.queue_declare(name, QueueDeclareOptions::default(), args)
        .await
        .unwrap();
}

#[tokio::test]
async fn higher_priorities_are_served_first_round_robin_among_equals() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    declare(&ch, "q").await;
    // C1.
    let (_h1, mut hi) = consumer_on(&c, "q", "hi", 2, with_priority(10)).await;
    let (_h2, mut hi2) = consumer_on(&c, "q", "hi2", 2, with_priority(10)).await;
    let (_l, mut lo) = consumer_on(&c, "q", "lo", 2, with_priority(1)).await;
    publish(&ch, "q", (0..8).map(|i| i.to_string())).await;
    let mut got = Vec::new();
    for consumer in [&mut hi, &mut hi2, &mut lo] {
        let a = next(consumer).await;
        let b = next(consumer).await;
        got.push([body(&a), body(&b)]);
        nothing_more(consumer).await;
    }
    assert_eq!(
        got,
        [["0", "2"], ["1", "3"], ["4", "5"]].map(|p| p.map(String::from))
    );
    assert_eq!(passive_declare(&ch, "q").await.unwrap().message_count(), 2);
}

#[tokio::test]
async fn consume_arguments_are_checked() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    declare(&ch, "q").await;
    // C2.
    for (key, value, reason) in [
        (
            "x-priority",
            AMQPValue::LongString(LongString::from("high")),
            "\"expected integer, got longstr\"",
        ),
        (
            "x-cancel-on-ha-failover",
            AMQPValue::LongString(LongString::from("yes")),
            "{unacceptable_type,longstr}",
        ),
    ] {
        let ch = c.create_channel().await.unwrap();
        let mut args = FieldTable::default();
        args.insert(key.into(), value);
        let e = ch
            .basic_consume("q", "c", Default::default(), args)
            .await
            .unwrap_err();
        assert_eq!(reply_code(&e), 406);
        assert_eq!(
            reply_text(&e),
            format!(
                "PRECONDITION_FAILED - invalid arg '{key}' for queue 'q' in vhost '/': {reason}"
            )
        );
    }
    // Negative and 64-bit priorities are fine.
    let ch = c.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-priority".into(), AMQPValue::LongLongInt(-(1 << 40)));
    ch.basic_consume("q", "neg", Default::default(), args)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_single_active_consumer_gets_everything_until_it_goes() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    sac_queue(&ch, "q").await;
    // S1: the first consumer is active, whatever the second's priority.
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let c1_ch = c.create_channel().await.unwrap();
    let mut c1 = c1_ch
        .basic_consume("q", "c1", no_ack, FieldTable::default())
        .await
        .unwrap();
    let c2_conn = server.connect().await;
    let c2_ch = c2_conn.create_channel().await.unwrap();
    let mut c2 = c2_ch
        .basic_consume("q", "c2", no_ack, with_priority(10))
        .await
        .unwrap();
    let c3_ch = c.create_channel().await.unwrap();
    let mut c3 = c3_ch
        .basic_consume("q", "c3", no_ack, with_priority(5))
        .await
        .unwrap();
    publish(&ch, "q", (0..4).map(|i| format!("a{i}"))).await;
    for i in 0..4 {
        assert_eq!(body(&next(&mut c1).await), format!("a{i}"));
    }
    nothing_more(&mut c2).await;
    assert_eq!(passive_declare(&ch, "q").await.unwrap().consumer_count(), 3);
    // S2: c1 cancelled: the waiting one of highest priority (c2) takes over.
    c1_ch.basic_cancel("c1", Default::default()).await.unwrap();
    publish(&ch, "q", ["b0".to_string(), "b1".to_string()]).await;
    assert_eq!(body(&next(&mut c2).await), "b0");
    assert_eq!(body(&next(&mut c2).await), "b1");
    nothing_more(&mut c3).await;
    // S3: c2's connection closes: c3 takes over.
    c2_conn.close(200, "bye").await.unwrap();
    publish(&ch, "q", ["c0".to_string(), "c1".to_string()]).await;
    assert_eq!(body(&next(&mut c3).await), "c0");
    assert_eq!(body(&next(&mut c3).await), "c1");
    // S4: an exclusive consumer is refused.
    let ex = c.create_channel().await.unwrap();
    let e = ex
        .basic_consume(
            "q",
            "ex",
            BasicConsumeOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 403);
    assert_eq!(
        reply_text(&e),
        "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use"
    );
}

#[tokio::test]
async fn quorum_single_active_consumer_queues_refuse_basic_get() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    let mut args = FieldTable::default();
    args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("qq", durable, args).await.unwrap();
    // S5.
    let e = ch.basic_get("qq", Default::default()).await.unwrap_err();
    assert_eq!(reply_code(&e), 405);
    assert_eq!(
        reply_text(&e),
        "RESOURCE_LOCKED - cannot obtain access to locked queue 'qq' in vhost '/'. basic.get operations are not supported by quorum queues with single active consumer"
    );
}

/// When the active consumer goes, a classic queue picks the waiting one of
/// highest priority, a quorum queue the earliest (3.10).
#[tokio::test]
async fn failover_picks_by_priority_on_classic_and_by_age_on_quorum() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    for (queue, kind, expected) in [
        ("classic", "classic", "late-high"),
        ("quorum", "quorum", "early-low"),
    ] {
        let mut args = FieldTable::default();
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        args.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(queue, durable, args).await.unwrap();
        let no_ack = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let first = c.create_channel().await.unwrap();
        let _f = first
            .basic_consume(queue, "first", no_ack, FieldTable::default())
            .await
            .unwrap();
        let mut waiting = Vec::new();
        for (tag, priority) in [("early-low", 0), ("late-high", 10)] {
            let w = c.create_channel().await.unwrap();
            let consumer = w
                .basic_consume(queue, tag, no_ack, with_priority(priority))
                .await
                .unwrap();
            waiting.push((w, tag, consumer));
        }
        first
            .basic_cancel("first", Default::default())
            .await
            .unwrap();
        publish(&ch, queue, ["m".to_string()]).await;
        for (_ch, tag, consumer) in &mut waiting {
            if *tag == expected {
                assert_eq!(body(&next(consumer).await), "m", "{queue}");
            } else {
                nothing_more(consumer).await;
            }
        }
    }
}
