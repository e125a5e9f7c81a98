//! Queue arguments as RabbitMQ 3.10 checks them (reference §0, §12–14):
//! validation of a new queue's arguments with RabbitMQ's reasons, the
//! arguments of other queue kinds refused, the redeclare equivalence
//! rules, quorum queues' declare rules, and `expiration` on every publish.

use lapin::options::*;
use lapin::types::{AMQPValue, DecimalValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection};
use warren_tests::*;

fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Declares on a fresh channel; the refusal's code and text if refused.
async fn declare(
    c: &Connection,
    name: &str,
    options: QueueDeclareOptions,
    args: &[(&str, AMQPValue)],
) -> Result<Channel, (u16, String)> {
    let ch = c.create_channel().await.unwrap();
    match ch.queue_declare(name, options, table(args)).await {
        Ok(_) => Ok(ch),
        Err(e) => Err((reply_code(&e), reply_text(&e))),
    }
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_invalid_argument_gets_rabbitmqs_reason() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    let long = AMQPValue::LongLongInt;
    let int = AMQPValue::LongInt;
    let decimal = AMQPValue::DecimalValue(DecimalValue { scale: 1, value: 5 });
    for (args, reason) in [
        (
            vec![("x-message-ttl", text("5"))],
            ": \"expected integer, got longstr\"",
        ),
        (
            vec![("x-message-ttl", decimal)],
            ": \"expected integer, got decimal\"",
        ),
        (vec![("x-message-ttl", int(-1))], ": {value_negative,-1}"),
        (
            vec![("x-message-ttl", long(315_360_000_001))],
            ": {value_too_large,315360000001}",
        ),
        (vec![("x-expires", int(0))], ": {value_zero,0}"),
        (vec![("x-expires", int(-5))], ": {value_negative,-5}"),
        (
            vec![("x-expires", text("1"))],
            ": \"expected integer, got longstr\"",
        ),
        (
            vec![("x-expires", long(315_360_000_001))],
            ": {value_too_large,315360000001}",
        ),
        (vec![("x-max-length", int(-1))], ": {value_negative,-1}"),
        (
            vec![("x-max-length", text("1"))],
            ": \"expected integer, got longstr\"",
        ),
        (
            vec![("x-max-length-bytes", int(-1))],
            ": {value_negative,-1}",
        ),
        (vec![("x-overflow", text("foo"))], ": invalid_overflow"),
        (
            vec![("x-overflow", int(1))],
            ": {unacceptable_type,signedint}",
        ),
        (
            vec![("x-max-priority", int(256))],
            ": {max_value_exceeded,256}",
        ),
        (vec![("x-max-priority", int(-1))], ": {value_negative,-1}"),
        (
            vec![("x-max-priority", text("1"))],
            ": \"expected integer, got longstr\"",
        ),
        (
            vec![("x-single-active-consumer", text("true"))],
            ": {unacceptable_type,longstr}",
        ),
        (
            vec![("x-single-active-consumer", int(1))],
            ": {unacceptable_type,signedint}",
        ),
        (
            vec![("x-dead-letter-routing-key", text("k"))],
            ": routing_key_but_no_dlx_defined",
        ),
        (
            vec![("x-queue-mode", text("foo"))],
            ": \"unsupported queue mode 'foo'\"",
        ),
        (
            vec![("x-queue-version", int(3))],
            ": \"unsupported queue version '3'\"",
        ),
        (
            vec![("x-queue-type", text("foo"))],
            ": \"unsupported queue type 'foo'\"",
        ),
        (
            vec![("x-queue-type", int(1))],
            ": {unacceptable_type,signedint}",
        ),
        // RabbitMQ 3.10 crashes with 541 here; Warren refuses it.
        (
            vec![("x-queue-master-locator", text("bogus"))],
            ": \"unsupported queue master locator 'bogus'\"",
        ),
        // Arguments of other kinds.
        (
            vec![("x-delivery-limit", int(5))],
            " of queue type rabbit_classic_queue",
        ),
        (
            vec![("x-dead-letter-strategy", text("at-least-once"))],
            " of queue type rabbit_classic_queue",
        ),
        (
            vec![("x-max-age", text("1D"))],
            " of queue type rabbit_classic_queue",
        ),
        (
            vec![("x-quorum-initial-group-size", int(3))],
            " of queue type rabbit_classic_queue",
        ),
    ] {
        let key = args[0].0;
        let (code, reply) = declare(&c, "q", Default::default(), &args)
            .await
            .unwrap_err();
        assert_eq!(code, 406, "{key}");
        assert_eq!(
            reply,
            format!("PRECONDITION_FAILED - invalid arg '{key}' for queue 'q' in vhost '/'{reason}")
        );
    }
    let (code, reply) = declare(
        &c,
        "q",
        Default::default(),
        &[("x-dead-letter-exchange", int(1))],
    )
    .await
    .unwrap_err();
    assert_eq!((code, reply.as_str()), (406, "PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"));
    // Everything valid at once, and arguments no kind takes.
    let all = [
        ("x-expires", int(60_000)),
        ("x-message-ttl", AMQPValue::ShortShortUInt(0)),
        ("x-dead-letter-exchange", text("dlx")),
        ("x-dead-letter-routing-key", text("dead")),
        ("x-max-length", long(0)),
        ("x-max-length-bytes", AMQPValue::LongUInt(1_000)),
        ("x-max-priority", AMQPValue::ShortShortUInt(255)),
        ("x-overflow", text("reject-publish-dlx")),
        ("x-queue-mode", text("lazy")),
        ("x-queue-version", int(2)),
        ("x-single-active-consumer", AMQPValue::Boolean(false)),
        ("x-queue-type", text("classic")),
        ("x-queue-master-locator", text("min-masters")),
        ("x-foo", AMQPValue::Void),
        ("x-consumer-timeout", int(5)),
        ("x-message-deduplication", AMQPValue::Boolean(true)),
    ];
    declare(&c, "all", Default::default(), &all).await.unwrap();
    // The connection lived through every refusal.
    assert!(c.status().connected());
}

#[tokio::test]
async fn redeclares_compare_what_rabbitmq_compares() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    let int = AMQPValue::LongInt;
    let ttl = |v| vec![("x-message-ttl", v), ("x-foo", text("a"))];
    declare(&c, "e", Default::default(), &ttl(int(1000)))
        .await
        .unwrap();
    let refused = |received: &str, current: &str| {
        Err((406, format!("PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'e' in vhost '/': received {received} but current is {current}")))
    };
    let again = |args: Vec<(&'static str, AMQPValue)>| {
        let c = &c;
        async move { declare(c, "e", Default::default(), &args).await.map(drop) }
    };
    // E1, E2, E3, E8.
    assert_eq!(again(ttl(AMQPValue::LongLongInt(1000))).await, Ok(()));
    assert_eq!(again(ttl(int(2000))).await, refused("'2000'", "'1000'"));
    assert_eq!(
        again(vec![]).await,
        refused("none", "the value '1000' of type 'signedint'")
    );
    assert_eq!(again(ttl(text("1000"))).await, refused("'1000'", "'1000'"));
    // E4, E5: not in the classic kind's list, so not compared (and not
    // validated on a redeclare).
    let mut changed = ttl(int(1000));
    changed[1].1 = text("b");
    changed.push(("x-delivery-limit", int(5)));
    assert_eq!(again(changed).await, Ok(()));
    // No validation on a redeclare either: an invalid value is inequivalent.
    declare(&c, "plain", Default::default(), &[]).await.unwrap();
    assert_eq!(
        declare(&c, "plain", Default::default(), &[("x-message-ttl", int(-5))]).await.map(drop),
        Err((406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'plain' in vhost '/': received the value '-5' of type 'signedint' but current is none".into()))
    );
    // E6: classic is absent; quorum is not.
    let classic = [("x-queue-type", text("classic"))];
    declare(&c, "plain", Default::default(), &classic)
        .await
        .unwrap();
    assert_eq!(
        declare(&c, "plain", durable(), &[("x-queue-type", text("quorum"))]).await.map(drop),
        Err((406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'plain' in vhost '/': received 'true' but current is 'false'".into()))
    );
    assert_eq!(
        declare(&c, "plain", Default::default(), &[("x-queue-type", text("quorum"))]).await.map(drop),
        Err((406, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'plain' in vhost '/': received the value 'quorum' of type 'longstr' but current is none".into()))
    );
    declare(&c, "typed", Default::default(), &classic)
        .await
        .unwrap();
    declare(&c, "typed", Default::default(), &[]).await.unwrap();
    // A passive declare compares nothing.
    let ch = c.create_channel().await.unwrap();
    passive_declare(&ch, "e").await.unwrap();
}

#[tokio::test]
async fn quorum_queues_follow_rabbitmqs_declare_rules() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    let quorum = [("x-queue-type", text("quorum"))];
    let what = "for queue 'qq' in vhost '/'";
    for (options, property) in [
        (
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            "auto-delete",
        ),
        (
            QueueDeclareOptions {
                exclusive: true,
                durable: true,
                ..Default::default()
            },
            "exclusive-owner",
        ),
        (Default::default(), "non-durable"),
    ] {
        assert_eq!(
            declare(&c, "qq", options, &quorum).await.map(drop),
            Err((
                406,
                format!("PRECONDITION_FAILED - invalid property '{property}' {what}")
            ))
        );
    }
    assert_eq!(
        declare(&c, "", durable(), &quorum).await.map(drop),
        Err((406, "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue".into()))
    );
    let priority = [quorum[0].clone(), ("x-max-priority", AMQPValue::LongInt(5))];
    assert_eq!(
        declare(&c, "qq", durable(), &priority).await.map(drop),
        Err((406, format!("PRECONDITION_FAILED - invalid arg 'x-max-priority' {what} of queue type rabbit_quorum_queue")))
    );
    let strategy = [quorum[0].clone(), ("x-dead-letter-strategy", text("maybe"))];
    assert_eq!(
        declare(&c, "qq", durable(), &strategy).await.map(drop),
        Err((406, format!("PRECONDITION_FAILED - invalid arg 'x-dead-letter-strategy' {what}: invalid_dlx_strategy")))
    );
    let own = [
        quorum[0].clone(),
        ("x-delivery-limit", AMQPValue::LongInt(3)),
        ("x-dead-letter-strategy", text("at-least-once")),
        ("x-quorum-initial-group-size", AMQPValue::LongInt(3)),
        ("x-queue-leader-locator", text("balanced")),
        ("x-max-in-memory-length", AMQPValue::LongInt(10)),
    ];
    let ch = declare(&c, "qq", durable(), &own).await.unwrap();
    // It works as a queue.
    publish_n(&ch, "qq", 3).await;
    let mut consumer = consume(&ch, "qq", "t").await;
    for _ in 0..3 {
        next(&mut consumer)
            .await
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
    }
    // Redeclares compare the quorum kind's list.
    // (The rest as declared, so that x-queue-type is the first difference.)
    assert_eq!(
        declare(&c, "qq", durable(), &own[1..]).await.map(drop),
        Err((406, format!("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' {what}: received none but current is the value 'quorum' of type 'longstr'")))
    );
    let mut classic = own.to_vec();
    classic[0].1 = text("classic");
    assert_eq!(
        declare(&c, "qq", durable(), &classic).await.map(drop),
        Err((406, format!("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' {what}: received 'classic' but current is 'quorum'")))
    );
    let mut limit = own.to_vec();
    limit[1].1 = AMQPValue::LongInt(4);
    assert_eq!(
        declare(&c, "qq", durable(), &limit).await.map(drop),
        Err((406, format!("PRECONDITION_FAILED - inequivalent arg 'x-delivery-limit' {what}: received '4' but current is '3'")))
    );
    declare(&c, "qq", durable(), &own).await.unwrap();
    // A channel-wide prefetch is refused by quorum queues: the connection goes.
    let ch = c.create_channel().await.unwrap();
    ch.basic_qos(10, BasicQosOptions { global: true })
        .await
        .unwrap();
    let closed = watch_connection_error(&c);
    let e = ch
        .basic_consume("qq", "g", Default::default(), FieldTable::default())
        .await
        .unwrap_err();
    assert_eq!(
        closed.await,
        (
            540,
            "NOT_IMPLEMENTED - queue 'qq' in vhost '/' does not support global qos".into()
        ),
        "{e}"
    );
}

#[tokio::test]
async fn stream_queues_are_refused_until_warren_has_them() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    assert_eq!(
        declare(&c, "s", durable(), &[("x-queue-type", text("stream"))]).await.map(drop),
        Err((406, "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 's' in vhost '/': \"unsupported queue type 'stream'\"".into()))
    );
}

#[tokio::test]
async fn every_publishs_expiration_is_checked() {
    let server = TestServer::start().await;
    let c = server.connect().await;
    for (expiration, reason) in [
        ("abc", "no_integer"),
        ("", "no_integer"),
        (" 100", "no_integer"),
        ("1.5", "{leftover_string,\".5\"}"),
        ("100 ", "{leftover_string,\" \"}"),
        ("-1", "{value_negative,-1}"),
        ("315360000001", "{value_too_large,315360000001}"),
    ] {
        let ch = c.create_channel().await.unwrap();
        let closed = watch_channel_error(&ch);
        let properties = BasicProperties::default().with_expiration(expiration.into());
        let _ = ch
            .basic_publish("", "nowhere", Default::default(), b"x", properties)
            .await;
        assert_eq!(
            closed.await,
            (
                406,
                format!("PRECONDITION_FAILED - invalid expiration '{expiration}': {reason}")
            )
        );
    }
    let ch = c.create_channel().await.unwrap();
    declare(&c, "ttl", Default::default(), &[]).await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    for expiration in ["0", "007", "+5", "60000"] {
        let properties = BasicProperties::default().with_expiration(expiration.into());
        let confirm = ch
            .basic_publish("", "ttl", Default::default(), b"x", properties)
            .await
            .unwrap();
        assert!(confirm.await.unwrap().is_ack(), "{expiration}");
    }
}

/// Random values of every field type for every documented argument: the
/// answer is declare-ok or a 406 from the validators, never 541 or a
/// dropped connection (over a raw socket, so every type can be sent).
#[tokio::test]
async fn random_argument_values_get_declare_ok_or_406() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    use warren_codec::{
        encode_method_frame, ChannelCloseOk, ChannelOpen, FieldTable, FieldValue, LongString,
        Method, QueueDeclare, ShortString,
    };

    const KEYS: &[&str] = &[
        "x-expires",
        "x-message-ttl",
        "x-dead-letter-exchange",
        "x-dead-letter-routing-key",
        "x-max-length",
        "x-max-length-bytes",
        "x-max-priority",
        "x-overflow",
        "x-queue-mode",
        "x-queue-version",
        "x-single-active-consumer",
        "x-queue-type",
        "x-queue-master-locator",
        "x-dead-letter-strategy",
        "x-max-in-memory-length",
        "x-max-in-memory-bytes",
        "x-quorum-initial-group-size",
        "x-delivery-limit",
        "x-queue-leader-locator",
        "x-max-age",
        "x-stream-max-segment-size-bytes",
        "x-initial-cluster-size",
        "x-foo",
    ];
    let words = prop_oneof![
        Just("classic"),
        Just("quorum"),
        Just("stream"),
        Just("drop-head"),
        Just("reject-publish"),
        Just("reject-publish-dlx"),
        Just("lazy"),
        Just("default"),
        Just("at-least-once"),
        Just("random"),
        Just(""),
        Just("x"),
    ];
    let leaf = prop_oneof![
        1 => any::<bool>().prop_map(FieldValue::Bool),
        1 => any::<i8>().prop_map(FieldValue::I8),
        1 => any::<u8>().prop_map(FieldValue::U8),
        1 => any::<i16>().prop_map(FieldValue::I16),
        1 => any::<u16>().prop_map(FieldValue::U16),
        1 => any::<i32>().prop_map(FieldValue::I32),
        8 => (-3i32..300).prop_map(FieldValue::I32),
        1 => any::<u32>().prop_map(FieldValue::U32),
        1 => any::<i64>().prop_map(FieldValue::I64),
        1 => any::<f32>().prop_map(FieldValue::F32),
        1 => any::<f64>().prop_map(FieldValue::F64),
        1 => (any::<u8>(), any::<u32>()).prop_map(|(scale, value)| FieldValue::Decimal { scale, value }),
        8 => words.prop_map(|w| FieldValue::LongString(LongString::from(w))),
        2 => any::<bool>().prop_map(FieldValue::Bool),
        1 => any::<Vec<u8>>().prop_map(|b| FieldValue::Bytes(LongString::from(b))),
        1 => any::<u64>().prop_map(FieldValue::Timestamp),
        1 => Just(FieldValue::Void),
        1 => Just(FieldValue::Array([FieldValue::I32(1)].into_iter().collect())),
        1 => Just(FieldValue::Table(FieldTable::new().with("k", FieldValue::Bool(true)))),
    ];
    let case = (
        proptest::collection::vec((proptest::sample::select(KEYS), leaf), 1..3),
        any::<bool>(),
    );
    let server = TestServer::start().await;
    let mut raw = RawClient::open(server.addr, 0, true).await;
    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let (mut declared, mut refused) = (0, 0);
    for n in 0..400 {
        let (pairs, durable) = case.new_tree(&mut runner).unwrap().current();
        let arguments = pairs
            .iter()
            .fold(FieldTable::new(), |t, (k, v)| t.with(k, v.clone()));
        let declare = QueueDeclare {
            queue: ShortString::try_from(format!("p{n}").as_str()).unwrap(),
            durable,
            arguments,
            ..Default::default()
        };
        raw.send(1, declare).await;
        match raw.method().await {
            Some((1, Method::QueueDeclareOk(_))) => declared += 1,
            Some((1, Method::ChannelClose(close))) => {
                let text = close.reply_text.to_string();
                assert_eq!(close.reply_code, 406, "{pairs:?}: {text}");
                assert!(
                    ["invalid arg '", "invalid type '", "invalid property '"]
                        .iter()
                        .any(|p| text.starts_with(&format!("PRECONDITION_FAILED - {p}"))),
                    "{pairs:?}: {text}"
                );
                refused += 1;
                // In one write: two small writes wait for a delayed ack.
                let mut frames = bytes::BytesMut::new();
                encode_method_frame(1, &ChannelCloseOk {}.into(), &mut frames);
                encode_method_frame(1, &ChannelOpen::default().into(), &mut frames);
                raw.send_bytes(&frames).await;
                assert!(matches!(
                    raw.method().await,
                    Some((1, Method::ChannelOpenOk(_)))
                ));
            }
            other => panic!("{pairs:?}: {other:?}"),
        }
    }
    // Both answers were exercised.
    assert!(
        declared > 20 && refused > 20,
        "{declared} declared, {refused} refused"
    );
}
