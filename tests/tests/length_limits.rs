//! Length limits as RabbitMQ 3.10 applies them (reference §3): only ready
//! messages and their bodies count; `drop-head` drops (dead-letters
//! `maxlen`) from the head, `reject-publish` nacks confirming publishers
//! and drops silently otherwise, `reject-publish-dlx` also dead-letters.

use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};
use warren_tests::*;

/// Publishes with confirms; whether it was acked.
async fn acked(
    ch: &Channel,
    exchange: &str,
    key: &str,
    body: &[u8],
    properties: BasicProperties,
) -> bool {
    ch.basic_publish(
        exchange,
        key,
        BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        },
        body,
        properties,
    )
    .await
    .unwrap()
    .await
    .unwrap()
    .is_ack()
}

async fn bodies(ch: &Channel, queue: &str) -> Vec<String> {
    let mut got = Vec::new();
    while let Some(m) = ch
        .basic_get(queue, BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        got.push(String::from_utf8(m.delivery.data.clone()).unwrap());
    }
    got
}

fn max_length(n: i32) -> (&'static str, AMQPValue) {
    ("x-max-length", AMQPValue::LongInt(n))
}

#[tokio::test]
async fn reject_publish_nacks_what_a_full_queue_cannot_take() {
    let server = TestServer::start().await;
    let (c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    // L1.
    declare_with(
        &ch,
        "q",
        &[max_length(2), ("x-overflow", text("reject-publish"))],
    )
    .await;
    let mut answers = Vec::new();
    for i in 0..4 {
        answers.push(acked(&ch, "", "q", format!("{i}").as_bytes(), Default::default()).await);
    }
    assert_eq!(answers, [true, true, false, false]);
    assert_eq!(bodies(&ch, "q").await, ["0", "1"]);
    assert!(
        acked(&ch, "", "q", b"again", Default::default()).await,
        "room again"
    );
    // Unacknowledged messages do not count.
    let held = ch
        .basic_get("q", BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .unwrap();
    assert!(acked(&ch, "", "q", b"a", Default::default()).await);
    assert!(acked(&ch, "", "q", b"b", Default::default()).await);
    assert!(!acked(&ch, "", "q", b"c", Default::default()).await);
    held.delivery.ack(Default::default()).await.unwrap();
    // L2: without confirms, silently dropped; the channel stays open.
    declare_with(
        &ch,
        "quiet",
        &[max_length(1), ("x-overflow", text("reject-publish"))],
    )
    .await;
    let plain = c.create_channel().await.unwrap();
    for i in 0..3 {
        plain
            .basic_publish(
                "",
                "quiet",
                Default::default(),
                format!("{i}").as_bytes(),
                Default::default(),
            )
            .await
            .unwrap();
    }
    assert_eq!(bodies(&ch, "quiet").await, ["0"]);
    assert!(plain.status().connected());
    // L3: max 0 refuses everything, with no basic.return for mandatory.
    declare_with(
        &ch,
        "none",
        &[max_length(0), ("x-overflow", text("reject-publish"))],
    )
    .await;
    assert!(!acked(&ch, "", "none", b"x", Default::default()).await);
    // L4: a fanout nack even though the other queue took it.
    ch.exchange_declare(
        "fan",
        ExchangeKind::Fanout,
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare_with(&ch, "other", &[]).await;
    for q in ["none", "other"] {
        ch.queue_bind(q, "fan", "", Default::default(), FieldTable::default())
            .await
            .unwrap();
    }
    assert!(!acked(&ch, "fan", "", b"f", Default::default()).await);
    assert_eq!(bodies(&ch, "other").await, ["f"]);
    // L7: only body bytes count.
    declare_with(
        &ch,
        "bytes",
        &[
            ("x-max-length-bytes", AMQPValue::LongInt(10)),
            ("x-overflow", text("reject-publish")),
        ],
    )
    .await;
    let mut headers = FieldTable::default();
    headers.insert("big".into(), text(&"h".repeat(1024)));
    assert!(
        acked(
            &ch,
            "",
            "bytes",
            b"0123456789",
            BasicProperties::default().with_headers(headers)
        )
        .await
    );
    assert!(!acked(&ch, "", "bytes", b"x", Default::default()).await);
}

#[tokio::test]
async fn drop_head_and_reject_publish_dlx_dead_letter_as_maxlen() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    declare_with(&ch, "dlq", &[]).await;
    let to_dlq = [
        ("x-dead-letter-exchange", text("")),
        ("x-dead-letter-routing-key", text("dlq")),
    ];
    // L6: drop-head keeps the newest.
    declare_with(
        &ch,
        "head",
        &[max_length(2), to_dlq[0].clone(), to_dlq[1].clone()],
    )
    .await;
    for i in 0..4 {
        assert!(
            acked(
                &ch,
                "",
                "head",
                format!("{i}").as_bytes(),
                Default::default()
            )
            .await
        );
    }
    assert_eq!(bodies(&ch, "head").await, ["2", "3"]);
    let dead = ch
        .basic_get("dlq", BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    let reason = dead
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-first-death-reason").cloned());
    assert_eq!(reason, Some(text("maxlen")));
    assert_eq!(bodies(&ch, "dlq").await, ["1"]);
    // L5: reject-publish-dlx nacks and dead-letters.
    declare_with(
        &ch,
        "dlx",
        &[
            max_length(1),
            ("x-overflow", text("reject-publish-dlx")),
            to_dlq[0].clone(),
            to_dlq[1].clone(),
        ],
    )
    .await;
    let mut answers = Vec::new();
    for i in 0..3 {
        answers.push(
            acked(
                &ch,
                "",
                "dlx",
                format!("{i}").as_bytes(),
                Default::default(),
            )
            .await,
        );
    }
    assert_eq!(answers, [true, false, false]);
    assert_eq!(bodies(&ch, "dlx").await, ["0"]);
    for _ in 0..100 {
        if passive_declare(&ch, "dlq").await.unwrap().message_count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(bodies(&ch, "dlq").await, ["1", "2"]);
    // A priority queue drops its highest priorities first.
    declare_with(
        &ch,
        "prio",
        &[max_length(2), ("x-max-priority", AMQPValue::LongInt(5))],
    )
    .await;
    for (body, priority) in [("a", 1), ("b", 5), ("c", 1)] {
        let properties = BasicProperties::default().with_priority(priority);
        assert!(acked(&ch, "", "prio", body.as_bytes(), properties).await);
    }
    assert_eq!(bodies(&ch, "prio").await, ["a", "c"]);
    // Drop-head with max 0 still hands a waiting consumer its message.
    declare_with(&ch, "zero", &[max_length(0)]).await;
    let mut consumer = consume(&ch, "zero", "c").await;
    assert!(acked(&ch, "", "zero", b"z", Default::default()).await);
    assert_eq!(next(&mut consumer).await.data, b"z");
}
