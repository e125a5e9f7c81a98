//! Queues: declaration, exclusivity, auto-delete, purge and deletion, with
//! RabbitMQ's replies and codes.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use std::time::Duration;
use warren_tests::{consume, passive_declare, reply_code, reply_text, TestServer};

async fn publish_to(ch: &lapin::Channel, queue: &str, n: usize) {
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for i in 0..n {
        ch.basic_publish(
            "",
            queue,
            BasicPublishOptions::default(),
            format!("{i}").as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn declare_ok_carries_counts_and_server_names_look_like_rabbitmqs() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    let q = ch
        .queue_declare("", QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let name = q.name().as_str().to_string();
    assert!(name.starts_with("amq.gen-") && name.len() == 30, "{name}");
    publish_to(&ch, &name, 3).await;
    // lapin cancels a consumer when its Consumer is dropped: keep it.
    let _consumer = consume(&ch, &name, "c").await;
    let (_c2, ch2) = server.channel().await;
    let again = passive_declare(&ch2, &name).await.unwrap();
    assert_eq!(again.consumer_count(), 1);
    let q2 = ch2
        .queue_declare(
            "counted",
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!((q2.message_count(), q2.consumer_count()), (0, 0));
    publish_to(&ch2, "counted", 2).await;
    let q2 = ch2
        .queue_declare(
            "counted",
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(q2.message_count(), 2);
}

#[tokio::test]
async fn passive_declare_of_a_missing_queue_is_404() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    let e = passive_declare(&ch, "nope").await.unwrap_err();
    assert_eq!(reply_code(&e), 404);
    assert_eq!(reply_text(&e), "NOT_FOUND - no queue 'nope' in vhost '/'");
}

#[tokio::test]
async fn redeclare_with_other_flags_or_arguments_is_406() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.queue_declare("q", QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    let e = ch
        .queue_declare(
            "q",
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 406);
    assert_eq!(
        reply_text(&e),
        "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'"
    );
    let ch = c.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongLongInt(10));
    let e = ch
        .queue_declare("q", QueueDeclareOptions::default(), args)
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 406);
}

#[tokio::test]
async fn a_new_queues_invalid_arguments_are_406_with_rabbitmqs_reason() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    for (key, value, reason) in [
        (
            "x-message-ttl",
            AMQPValue::LongInt(-1),
            "{value_negative,-1}",
        ),
        ("x-expires", AMQPValue::LongInt(0), "{value_zero,0}"),
        (
            "x-overflow",
            AMQPValue::LongString("foo".into()),
            "invalid_overflow",
        ),
        (
            "x-max-priority",
            AMQPValue::LongInt(256),
            "{max_value_exceeded,256}",
        ),
    ] {
        let ch = c.create_channel().await.unwrap();
        let mut args = FieldTable::default();
        args.insert(key.into(), value);
        let e = ch
            .queue_declare("checked", QueueDeclareOptions::default(), args)
            .await
            .unwrap_err();
        assert_eq!(reply_code(&e), 406);
        assert_eq!(
            reply_text(&e),
            format!("PRECONDITION_FAILED - invalid arg '{key}' for queue 'checked' in vhost '/': {reason}")
        );
    }
    // Nothing was declared; a valid declaration still works.
    let ch = c.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-message-ttl".into(), AMQPValue::LongInt(1000));
    ch.queue_declare("checked", QueueDeclareOptions::default(), args)
        .await
        .unwrap();
}

#[tokio::test]
async fn exclusive_queues_belong_to_their_connection() {
    let server = TestServer::start().await;
    let (owner, ch) = server.channel().await;
    ch.queue_declare(
        "mine",
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let (_other, ch2) = server.channel().await;
    let e = ch2
        .basic_consume(
            "mine",
            "",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 405);
    assert!(reply_text(&e).starts_with(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'mine' in vhost '/'"
    ));
    owner.close(200, "bye").await.unwrap();
    // Gone with its connection (soon after: the close is handled apart).
    let (_c3, ch3) = server.channel().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ch3 = _c3.create_channel().await.unwrap();
        match passive_declare(&ch3, "mine").await {
            Err(e) => {
                assert_eq!(reply_code(&e), 404);
                break;
            }
            Ok(_) => assert!(std::time::Instant::now() < deadline, "still there"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(ch3);
}

#[tokio::test]
async fn auto_delete_queue_goes_when_its_last_consumer_is_cancelled() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.queue_declare(
        "ad",
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let _one = consume(&ch, "ad", "one").await;
    let _two = consume(&ch, "ad", "two").await;
    ch.basic_cancel("one", BasicCancelOptions::default())
        .await
        .unwrap();
    passive_declare(&ch, "ad").await.unwrap();
    ch.basic_cancel("two", BasicCancelOptions::default())
        .await
        .unwrap();
    let e = passive_declare(&ch, "ad").await.unwrap_err();
    assert_eq!(reply_code(&e), 404);
}

#[tokio::test]
async fn purge_returns_the_count() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.queue_declare("p", QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    publish_to(&ch, "p", 5).await;
    assert_eq!(
        ch.queue_purge("p", QueuePurgeOptions::default())
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        ch.queue_purge("p", QueuePurgeOptions::default())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn delete_if_unused_and_if_empty_are_406_and_missing_is_ok() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.queue_declare("d", QueueDeclareOptions::default(), FieldTable::default())
        .await
        .unwrap();
    publish_to(&ch, "d", 2).await;
    let e = ch
        .queue_delete(
            "d",
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 406);
    assert_eq!(
        reply_text(&e),
        "PRECONDITION_FAILED - queue 'd' in vhost '/' not empty"
    );
    let ch = c.create_channel().await.unwrap();
    let _consumer = consume(&ch, "d", "c").await;
    let ch2 = c.create_channel().await.unwrap();
    let e = ch2
        .queue_delete(
            "d",
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 406);
    assert_eq!(
        reply_text(&e),
        "PRECONDITION_FAILED - queue 'd' in vhost '/' in use"
    );
    let ch3 = c.create_channel().await.unwrap();
    ch3.queue_delete("d", QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        ch3.queue_delete("never", QueueDeleteOptions::default())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn reserved_queue_names_are_403() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    let e = ch
        .queue_declare(
            "amq.mine",
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 403);
    assert_eq!(
        reply_text(&e),
        "ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'"
    );
}

#[tokio::test]
async fn line_breaks_leave_names_in_declarations_only() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    let q = ch
        .queue_declare(
            "names\n",
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(q.name().as_str(), "names");
    passive_declare(&ch, "names\r\n").await.unwrap();
    ch.exchange_declare(
        "names-x\r",
        lapin::ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        "names\n",
        "names-x\n",
        "k",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.basic_publish(
        "names-x",
        "k",
        BasicPublishOptions::default(),
        b"m",
        BasicProperties::default(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // basic.get takes the name as it comes: "names\n" is another queue.
    let error = ch
        .basic_get("names\n", BasicGetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&error), 404);
    let (_c, ch) = server.channel().await;
    let got = ch
        .basic_get("names", BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("routed through the stripped names");
    assert_eq!(got.delivery.data, b"m");
    let deleted = ch
        .queue_delete("\nnames", QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted, 0);
    assert_eq!(
        reply_code(&passive_declare(&ch, "names").await.unwrap_err()),
        404
    );
}
