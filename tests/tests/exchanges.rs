//! Exchanges: every type routes as RabbitMQ's do, and declarations, deletions
//! and bindings fail with RabbitMQ's codes.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};
use warren_tests::{reply_code, reply_text, watch_channel_error, TestServer};

async fn queue(channel: &Channel) -> String {
    let q = channel
        .queue_declare(
            "",
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    q.name().to_string()
}

async fn publish(
    channel: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    headers: Option<FieldTable>,
) {
    let properties = match headers {
        Some(h) => BasicProperties::default().with_headers(h),
        None => BasicProperties::default(),
    };
    channel
        .basic_publish(
            exchange,
            key,
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// Bodies waiting in `queue`, in order, taken with basic.get.
async fn drain(channel: &Channel, queue: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    while let Some(m) = channel
        .basic_get(queue, BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        bodies.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    bodies
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str, args: FieldTable) {
    channel
        .queue_bind(queue, exchange, key, QueueBindOptions::default(), args)
        .await
        .unwrap();
}

#[tokio::test]
async fn direct_fanout_and_default_exchanges_route() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let a = queue(&ch).await;
    let b = queue(&ch).await;
    bind(&ch, &a, "amq.direct", "red", FieldTable::default()).await;
    bind(&ch, &b, "amq.direct", "blue", FieldTable::default()).await;
    bind(&ch, &a, "amq.fanout", "", FieldTable::default()).await;
    bind(&ch, &b, "amq.fanout", "ignored", FieldTable::default()).await;
    publish(&ch, "amq.direct", "red", b"r", None).await;
    publish(&ch, "amq.direct", "blue", b"b", None).await;
    publish(&ch, "amq.direct", "green", b"g", None).await;
    publish(&ch, "amq.fanout", "anything", b"f", None).await;
    publish(&ch, "", &a, b"default", None).await;
    assert_eq!(drain(&ch, &a).await, ["r", "f", "default"]);
    assert_eq!(drain(&ch, &b).await, ["b", "f"]);
}

#[tokio::test]
async fn topic_exchange_matches_star_and_hash_once_per_queue() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let q = queue(&ch).await;
    let other = queue(&ch).await;
    bind(
        &ch,
        &q,
        "amq.topic",
        "orders.*.created",
        FieldTable::default(),
    )
    .await;
    bind(&ch, &q, "amq.topic", "orders.#", FieldTable::default()).await;
    bind(&ch, &other, "amq.topic", "*.eu.#", FieldTable::default()).await;
    for key in [
        "orders.eu.created",
        "orders",
        "payments.eu",
        "orders.us.shipped.late",
        "x.y",
    ] {
        publish(&ch, "amq.topic", key, key.as_bytes(), None).await;
    }
    assert_eq!(
        drain(&ch, &q).await,
        ["orders.eu.created", "orders", "orders.us.shipped.late"]
    );
    assert_eq!(
        drain(&ch, &other).await,
        ["orders.eu.created", "payments.eu"]
    );
}

#[tokio::test]
async fn headers_exchange_matches_all_and_any() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let all = queue(&ch).await;
    let any = queue(&ch).await;
    let mut args = FieldTable::default();
    args.insert("x-match".into(), AMQPValue::LongString("all".into()));
    args.insert("format".into(), AMQPValue::LongString("pdf".into()));
    args.insert("type".into(), AMQPValue::LongString("report".into()));
    bind(&ch, &all, "amq.headers", "", args.clone()).await;
    args.insert("x-match".into(), AMQPValue::LongString("any".into()));
    bind(&ch, &any, "amq.match", "", args).await;
    let mut both = FieldTable::default();
    both.insert("format".into(), AMQPValue::LongString("pdf".into()));
    both.insert("type".into(), AMQPValue::LongString("report".into()));
    let mut one = FieldTable::default();
    one.insert("format".into(), AMQPValue::LongString("pdf".into()));
    publish(&ch, "amq.headers", "", b"both", Some(both.clone())).await;
    publish(&ch, "amq.headers", "", b"one", Some(one.clone())).await;
    publish(&ch, "amq.headers", "", b"none", None).await;
    publish(&ch, "amq.match", "", b"both", Some(both)).await;
    publish(&ch, "amq.match", "", b"one", Some(one)).await;
    publish(&ch, "amq.match", "", b"none", None).await;
    assert_eq!(drain(&ch, &all).await, ["both"]);
    assert_eq!(drain(&ch, &any).await, ["both", "one"]);
}

#[tokio::test]
async fn exchange_to_exchange_bindings_route_and_loops_are_cut() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for name in ["e1", "e2"] {
        ch.exchange_declare(
            name,
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                auto_delete: false,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    ch.exchange_bind(
        "e2",
        "e1",
        "",
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_bind(
        "e1",
        "e2",
        "",
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = queue(&ch).await;
    bind(&ch, &q, "e2", "", FieldTable::default()).await;
    publish(&ch, "e1", "", b"through e2", None).await;
    assert_eq!(drain(&ch, &q).await, ["through e2"]);
    ch.exchange_unbind(
        "e2",
        "e1",
        "",
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "e1", "", b"lost", None).await;
    assert!(drain(&ch, &q).await.is_empty());
}

#[tokio::test]
async fn passive_declare_of_a_missing_exchange_is_404() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    let e = ch
        .exchange_declare(
            "missing",
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 404);
    assert_eq!(
        reply_text(&e),
        "NOT_FOUND - no exchange 'missing' in vhost '/'"
    );
}

#[tokio::test]
async fn redeclaring_with_another_type_is_406() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.exchange_declare(
        "x",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.exchange_declare(
        "x",
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let e = ch
        .exchange_declare(
            "x",
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 406);
    assert_eq!(
        reply_text(&e),
        "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'"
    );
    let ch = c.create_channel().await.unwrap();
    let e = ch
        .exchange_declare(
            "x",
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 406);
}

#[tokio::test]
async fn reserved_names_and_the_default_exchange_are_403() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    let ch = c.create_channel().await.unwrap();
    let e = ch
        .exchange_declare(
            "amq.custom",
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 403);
    assert_eq!(
        reply_text(&e),
        "ACCESS_REFUSED - exchange name 'amq.custom' contains reserved prefix 'amq.*'"
    );
    let ch = c.create_channel().await.unwrap();
    let e = ch
        .exchange_delete("amq.direct", ExchangeDeleteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 403);
    let ch = c.create_channel().await.unwrap();
    let q = queue(&ch).await;
    let e = ch
        .queue_bind(
            &q,
            "",
            "k",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 403);
    assert_eq!(
        reply_text(&e),
        "ACCESS_REFUSED - operation not permitted on the default exchange"
    );
    let ch = c.create_channel().await.unwrap();
    let e = ch
        .exchange_delete("", ExchangeDeleteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 403);
    let ch = c.create_channel().await.unwrap();
    let e = ch
        .queue_unbind(&q, "", "k", FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 403);
    // Redeclaring amq.direct as it is succeeds, as in RabbitMQ.
    let ch = c.create_channel().await.unwrap();
    ch.exchange_declare(
        "amq.direct",
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn delete_if_unused_is_406_when_bound_and_missing_is_fine() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.exchange_declare(
        "x",
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = queue(&ch).await;
    bind(&ch, &q, "x", "#", FieldTable::default()).await;
    let e = ch
        .exchange_delete(
            "x",
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 406);
    assert_eq!(
        reply_text(&e),
        "PRECONDITION_FAILED - exchange 'x' in vhost '/' in use"
    );
    let ch = c.create_channel().await.unwrap();
    ch.exchange_delete("x", ExchangeDeleteOptions::default())
        .await
        .unwrap();
    ch.exchange_delete("never-existed", ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn publishing_to_an_internal_exchange_is_403_and_to_a_missing_one_404() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.exchange_declare(
        "inside",
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            internal: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let closed = watch_channel_error(&ch);
    ch.basic_publish(
        "inside",
        "",
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let (code, text) = closed.await;
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - cannot publish to internal exchange 'inside' in vhost '/'"
    );
    let ch = c.create_channel().await.unwrap();
    let closed = watch_channel_error(&ch);
    ch.basic_publish(
        "nowhere",
        "",
        BasicPublishOptions::default(),
        b"x",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    let (code, text) = closed.await;
    assert_eq!(code, 404);
    assert_eq!(text, "NOT_FOUND - no exchange 'nowhere' in vhost '/'");
}

#[tokio::test]
async fn unknown_exchange_type_is_406() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    let e = ch
        .exchange_declare(
            "x",
            ExchangeKind::Custom("x-nonsense".into()),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 406);
    assert_eq!(
        reply_text(&e),
        "PRECONDITION_FAILED - unknown exchange type 'x-nonsense'"
    );
}

#[tokio::test]
async fn auto_delete_exchange_goes_with_its_last_binding() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.exchange_declare(
        "temp",
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = queue(&ch).await;
    bind(&ch, &q, "temp", "k", FieldTable::default()).await;
    ch.queue_unbind(&q, "temp", "k", FieldTable::default())
        .await
        .unwrap();
    let e = ch
        .exchange_declare(
            "temp",
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 404);
    drop(c);
}

#[tokio::test]
async fn unbinding_stops_routing() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let q = queue(&ch).await;
    bind(&ch, &q, "amq.direct", "k", FieldTable::default()).await;
    publish(&ch, "amq.direct", "k", b"1", None).await;
    ch.queue_unbind(&q, "amq.direct", "k", FieldTable::default())
        .await
        .unwrap();
    publish(&ch, "amq.direct", "k", b"2", None).await;
    assert_eq!(drain(&ch, &q).await, ["1"]);
}

#[tokio::test]
async fn unbinding_what_is_missing_answers_unbind_ok() {
    // RabbitMQ 3.10: no queue, no exchange or no binding is not an error
    // for queue.unbind and exchange.unbind (teardowns rely on it).
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    let q = queue(&ch).await;
    let none = FieldTable::default;
    ch.queue_unbind(&q, "amq.direct", "never-bound", none())
        .await
        .unwrap();
    ch.queue_unbind("no-such-queue", "amq.direct", "k", none())
        .await
        .unwrap();
    ch.queue_unbind(&q, "no-such-exchange", "k", none())
        .await
        .unwrap();
    ch.exchange_unbind(
        "no-such-exchange",
        "amq.fanout",
        "",
        ExchangeUnbindOptions::default(),
        none(),
    )
    .await
    .unwrap();
    ch.exchange_unbind(
        "amq.topic",
        "no-such-exchange",
        "",
        ExchangeUnbindOptions::default(),
        none(),
    )
    .await
    .unwrap();
    // The channel is still open, and binding to what is missing still fails.
    let e = ch
        .queue_bind(
            &q,
            "no-such-exchange",
            "k",
            QueueBindOptions::default(),
            none(),
        )
        .await
        .unwrap_err();
    assert_eq!(reply_code(&e), 404);
}

#[tokio::test]
async fn an_empty_queue_name_and_routing_key_bind_by_the_queues_name() {
    // The spec's default: queue.bind with both empty means the channel's
    // last declared queue, bound with its own name as the routing key.
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let q = queue(&ch).await;
    ch.queue_bind(
        "",
        "amq.direct",
        "",
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, "amq.direct", &q, b"by-name", None).await;
    publish(&ch, "amq.direct", "", b"empty-key", None).await;
    assert_eq!(drain(&ch, &q).await, ["by-name"]);
}
