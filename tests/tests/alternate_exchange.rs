//! Alternate exchanges (RabbitMQ's `alternate-exchange` argument): what an
//! exchange's bindings route nowhere goes to its alternate, along chains,
//! each exchange once; routed that way counts as routed for `mandatory`.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};
use warren_tests::{declare, TestServer};

async fn exchange(ch: &Channel, name: &str, kind: ExchangeKind, alternate: Option<&str>) {
    let mut args = FieldTable::default();
    if let Some(alternate) = alternate {
        args.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString(alternate.into()),
        );
    }
    ch.exchange_declare(name, kind, ExchangeDeclareOptions::default(), args)
        .await
        .unwrap();
}

async fn bound(ch: &Channel, queue: &str, exchange: &str) {
    declare(ch, queue).await;
    ch.queue_bind(
        queue,
        exchange,
        "",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
}

/// Publishes mandatory with confirms; whether it came back (basic.return).
async fn returned(ch: &Channel, exchange: &str, key: &str) -> bool {
    let confirm = ch
        .basic_publish(
            exchange,
            key,
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    confirm.take_message().is_some()
}

async fn count(ch: &Channel, queue: &str) -> u32 {
    ch.queue_declare(
        queue,
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap()
    .message_count()
}

#[tokio::test]
async fn unroutable_messages_go_to_the_alternate_and_count_as_routed() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    exchange(&ch, "ae", ExchangeKind::Fanout, None).await;
    exchange(&ch, "x", ExchangeKind::Direct, Some("ae")).await;
    bound(&ch, "aeq", "ae").await;
    // A1: routed by the alternate, no return.
    assert!(!returned(&ch, "x", "unbound").await);
    assert_eq!(count(&ch, "aeq").await, 1);
    // A4: a chain, the first alternate routing nowhere.
    exchange(&ch, "ae2", ExchangeKind::Fanout, None).await;
    exchange(&ch, "ae1", ExchangeKind::Direct, Some("ae2")).await;
    exchange(&ch, "y", ExchangeKind::Direct, Some("ae1")).await;
    bound(&ch, "ae2q", "ae2").await;
    assert!(!returned(&ch, "y", "unbound").await);
    assert_eq!(count(&ch, "ae2q").await, 1);
}

#[tokio::test]
async fn an_alternate_that_routes_nowhere_or_is_missing_returns_the_message() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    // A2: the alternate has no bindings.
    exchange(&ch, "empty-ae", ExchangeKind::Fanout, None).await;
    exchange(&ch, "x", ExchangeKind::Direct, Some("empty-ae")).await;
    assert!(returned(&ch, "x", "k").await);
    // A3: the alternate does not exist.
    exchange(&ch, "z", ExchangeKind::Direct, Some("never-declared")).await;
    assert!(returned(&ch, "z", "k").await);
    // A5: a loop with nothing bound ends, returned once.
    exchange(&ch, "l2", ExchangeKind::Direct, Some("l1")).await;
    exchange(&ch, "l1", ExchangeKind::Direct, Some("l2")).await;
    assert!(returned(&ch, "l1", "k").await);
}

#[tokio::test]
async fn a_non_string_alternate_is_406() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    let mut args = FieldTable::default();
    args.insert("alternate-exchange".into(), AMQPValue::LongInt(1));
    let error = ch
        .exchange_declare(
            "bad-ae",
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            args,
        )
        .await
        .unwrap_err();
    assert_eq!(warren_tests::reply_code(&error), 406);
    assert_eq!(
        warren_tests::reply_text(&error),
        "PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in exchange 'bad-ae' in vhost '/'"
    );
}

/// E7: a redeclare compares `alternate-exchange` and no other argument.
#[tokio::test]
async fn redeclares_compare_the_alternate_exchange_only() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    let again = |alternate: Option<&'static str>, foo: &'static str| {
        let c = &c;
        async move {
            let ch = c.create_channel().await.unwrap();
            let mut args = FieldTable::default();
            args.insert("x-foo".into(), AMQPValue::LongString(foo.into()));
            if let Some(alternate) = alternate {
                args.insert(
                    "alternate-exchange".into(),
                    AMQPValue::LongString(alternate.into()),
                );
            }
            ch.exchange_declare(
                "x",
                ExchangeKind::Direct,
                ExchangeDeclareOptions::default(),
                args,
            )
            .await
            .map_err(|e| (warren_tests::reply_code(&e), warren_tests::reply_text(&e)))
        }
    };
    again(Some("a"), "1").await.unwrap();
    assert_eq!(again(Some("a"), "2").await, Ok(()));
    let refused = |received: &str, current: &str| {
        Err((406, format!("PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received {received} but current is {current}")))
    };
    assert_eq!(again(Some("b"), "1").await, refused("'b'", "'a'"));
    assert_eq!(
        again(None, "1").await,
        refused("none", "the value 'a' of type 'longstr'")
    );
}
