//! interop/SCENARIO.md with lapin 2: TLS, properties and every header type,
//! and everything else the scenario asks, through lapin's API.

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Connection, ExchangeKind};
use std::time::Duration;
use warren_interop::lapin_support::*;
use warren_interop::{ensure, env, Report};

#[tokio::main]
async fn main() {
    let mut report = Report::default();
    let conn = match connect().await {
        Ok(conn) => conn,
        Err(e) => {
            println!("FAIL connect tcp: {e}");
            report.finish();
        }
    };
    report
        .check("connect tcp", || async {
            ensure(conn.status().connected(), || "not connected".into())
        })
        .await;

    report
        .check("connect tls", || async {
            let ca = std::fs::read_to_string(env("WARREN_CA")).map_err(err)?;
            let uri = format!(
                "amqps://guest:guest@localhost:{}/%2f",
                env("WARREN_TLS_PORT")
            );
            let tls = lapin::tcp::OwnedTLSConfig {
                identity: None,
                cert_chain: Some(ca),
            };
            let c = Connection::connect_with_config(&uri, properties(), tls)
                .await
                .map_err(err)?;
            let ch = c.create_channel().await.map_err(err)?;
            exclusive_queue(&ch, "").await?;
            c.close(200, "bye").await.map_err(err)
        })
        .await;

    let ch = match confirmed_channel(&conn).await {
        Ok(ch) => ch,
        Err(e) => {
            println!("FAIL open channel: {e}");
            report.finish();
        }
    };

    report
        .check("declare exchanges", || async {
            for (name, kind) in [
                ("x.direct", ExchangeKind::Direct),
                ("x.fanout", ExchangeKind::Fanout),
                ("x.topic", ExchangeKind::Topic),
                ("x.headers", ExchangeKind::Headers),
            ] {
                ch.exchange_declare(name, kind, ExchangeDeclareOptions::default(), no_args())
                    .await
                    .map_err(err)?;
            }
            Ok(())
        })
        .await;

    report
        .check("declare queues", || async {
            declare(
                &ch,
                "q.durable",
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
            )
            .await?;
            exclusive_queue(&ch, "q.exclusive").await?;
            declare(
                &ch,
                "q.autodelete",
                QueueDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
            )
            .await?;
            let named = declare(&ch, "", QueueDeclareOptions::default()).await?;
            ensure(named.starts_with("amq.gen-"), || {
                format!("server-named queue {named}")
            })
        })
        .await;

    report
        .check("route direct", || async {
            let q = exclusive_queue(&ch, "").await?;
            ch.queue_bind(
                &q,
                "x.direct",
                "red",
                QueueBindOptions::default(),
                no_args(),
            )
            .await
            .map_err(err)?;
            publish(&ch, "x.direct", "red", b"r", BasicProperties::default()).await?;
            publish(&ch, "x.direct", "blue", b"b", BasicProperties::default()).await?;
            let got = drain(&ch, &q).await?;
            ensure(got == ["r"], || format!("got {got:?}"))
        })
        .await;

    report
        .check("route fanout", || async {
            let a = exclusive_queue(&ch, "").await?;
            let b = exclusive_queue(&ch, "").await?;
            for q in [&a, &b] {
                ch.queue_bind(q, "x.fanout", "", QueueBindOptions::default(), no_args())
                    .await
                    .map_err(err)?;
            }
            publish(&ch, "x.fanout", "any", b"f", BasicProperties::default()).await?;
            let (ga, gb) = (drain(&ch, &a).await?, drain(&ch, &b).await?);
            ensure(ga == ["f"] && gb == ["f"], || format!("got {ga:?} {gb:?}"))
        })
        .await;

    report
        .check("route topic", || async {
            let star = exclusive_queue(&ch, "").await?;
            let hash = exclusive_queue(&ch, "").await?;
            ch.queue_bind(
                &star,
                "x.topic",
                "a.*.c",
                QueueBindOptions::default(),
                no_args(),
            )
            .await
            .map_err(err)?;
            ch.queue_bind(
                &hash,
                "x.topic",
                "a.#",
                QueueBindOptions::default(),
                no_args(),
            )
            .await
            .map_err(err)?;
            for key in ["a.b.c", "a", "a.b.b.c", "b.b.c"] {
                publish(
                    &ch,
                    "x.topic",
                    key,
                    key.as_bytes(),
                    BasicProperties::default(),
                )
                .await?;
            }
            let (s, h) = (drain(&ch, &star).await?, drain(&ch, &hash).await?);
            ensure(s == ["a.b.c"] && h == ["a.b.c", "a", "a.b.b.c"], || {
                format!("got {s:?} {h:?}")
            })
        })
        .await;

    report
        .check("route headers", || async {
            let all = exclusive_queue(&ch, "").await?;
            let any = exclusive_queue(&ch, "").await?;
            let mut args = FieldTable::default();
            args.insert("format".into(), AMQPValue::LongString("pdf".into()));
            args.insert("type".into(), AMQPValue::LongString("report".into()));
            let mut all_args = args.clone();
            all_args.insert("x-match".into(), AMQPValue::LongString("all".into()));
            let mut any_args = args;
            any_args.insert("x-match".into(), AMQPValue::LongString("any".into()));
            ch.queue_bind(&all, "x.headers", "", QueueBindOptions::default(), all_args)
                .await
                .map_err(err)?;
            ch.queue_bind(&any, "x.headers", "", QueueBindOptions::default(), any_args)
                .await
                .map_err(err)?;
            let mut one = FieldTable::default();
            one.insert("format".into(), AMQPValue::LongString("pdf".into()));
            let mut both = one.clone();
            both.insert("type".into(), AMQPValue::LongString("report".into()));
            publish(
                &ch,
                "x.headers",
                "",
                b"both",
                BasicProperties::default().with_headers(both),
            )
            .await?;
            publish(
                &ch,
                "x.headers",
                "",
                b"one",
                BasicProperties::default().with_headers(one),
            )
            .await?;
            let (a, b) = (drain(&ch, &all).await?, drain(&ch, &any).await?);
            ensure(a == ["both"] && b == ["both", "one"], || {
                format!("got {a:?} {b:?}")
            })
        })
        .await;

    report
        .check("exchange-to-exchange binding", || async {
            for name in ["x.e1", "x.e2"] {
                ch.exchange_declare(
                    name,
                    ExchangeKind::Fanout,
                    ExchangeDeclareOptions::default(),
                    no_args(),
                )
                .await
                .map_err(err)?;
            }
            ch.exchange_bind(
                "x.e2",
                "x.e1",
                "",
                ExchangeBindOptions::default(),
                no_args(),
            )
            .await
            .map_err(err)?;
            let q = exclusive_queue(&ch, "").await?;
            ch.queue_bind(&q, "x.e2", "", QueueBindOptions::default(), no_args())
                .await
                .map_err(err)?;
            publish(&ch, "x.e1", "", b"via e2", BasicProperties::default()).await?;
            let first = drain(&ch, &q).await?;
            ch.exchange_unbind(
                "x.e2",
                "x.e1",
                "",
                ExchangeUnbindOptions::default(),
                no_args(),
            )
            .await
            .map_err(err)?;
            publish(&ch, "x.e1", "", b"lost", BasicProperties::default()).await?;
            let second = drain(&ch, &q).await?;
            ensure(first == ["via e2"] && second.is_empty(), || {
                format!("got {first:?} then {second:?}")
            })
        })
        .await;

    report
        .check("queue unbind", || async {
            let q = exclusive_queue(&ch, "").await?;
            ch.queue_bind(&q, "x.direct", "k", QueueBindOptions::default(), no_args())
                .await
                .map_err(err)?;
            ch.queue_unbind(&q, "x.direct", "k", no_args())
                .await
                .map_err(err)?;
            publish(&ch, "x.direct", "k", b"x", BasicProperties::default()).await?;
            let got = drain(&ch, &q).await?;
            ensure(got.is_empty(), || format!("got {got:?}"))
        })
        .await;

    report
        .check("properties and headers round trip", || async {
            let q = exclusive_queue(&ch, "").await?;
            let props = BasicProperties::default()
                .with_content_type(ShortString::from("application/octet-stream"))
                .with_content_encoding("identity".into())
                .with_headers(all_field_types())
                .with_delivery_mode(2)
                .with_priority(7)
                .with_correlation_id("corr-1".into())
                .with_reply_to("replies".into())
                .with_expiration("60000".into())
                .with_message_id("msg-1".into())
                .with_timestamp(1_700_000_000)
                .with_type("kind".into())
                .with_user_id("guest".into())
                .with_app_id("lapin".into())
                .with_cluster_id("cluster".into());
            let body: Vec<u8> = (0..=255u8).collect();
            publish(&ch, "", &q, &body, props.clone()).await?;
            let got = ch
                .basic_get(&q, BasicGetOptions { no_ack: true })
                .await
                .map_err(err)?
                .ok_or("nothing")?;
            ensure(got.delivery.data == body, || "body differs".into())?;
            ensure(got.delivery.properties == props, || {
                format!("properties differ: {:?}", got.delivery.properties)
            })
        })
        .await;

    report
        .check("prefetch honoured", || async {
            let pc = conn.create_channel().await.map_err(err)?;
            let q = exclusive_queue(&pc, "").await?;
            for i in 0..10 {
                pc.basic_publish(
                    "",
                    &q,
                    BasicPublishOptions::default(),
                    format!("{i}").as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .map_err(err)?;
            }
            pc.basic_qos(3, BasicQosOptions::default())
                .await
                .map_err(err)?;
            let mut consumer = pc
                .basic_consume(&q, "prefetch", BasicConsumeOptions::default(), no_args())
                .await
                .map_err(err)?;
            let mut held = Vec::new();
            while let Ok(Some(Ok(d))) =
                tokio::time::timeout(Duration::from_millis(400), consumer.next()).await
            {
                held.push(d);
            }
            ensure(held.len() == 3, || {
                format!("{} unacknowledged deliveries with prefetch 3", held.len())
            })?;
            held[0].ack(BasicAckOptions::default()).await.map_err(err)?;
            let mut more = 0;
            while let Ok(Some(Ok(_))) =
                tokio::time::timeout(Duration::from_millis(400), consumer.next()).await
            {
                more += 1;
            }
            ensure(more == 1, || format!("{more} more after one ack"))
        })
        .await;

    report
        .check("basic.get", || async {
            let q = exclusive_queue(&ch, "").await?;
            for body in ["first", "second"] {
                publish(&ch, "", &q, body.as_bytes(), BasicProperties::default()).await?;
            }
            let got = ch
                .basic_get(&q, BasicGetOptions { no_ack: true })
                .await
                .map_err(err)?
                .ok_or("get-empty")?;
            ensure(
                got.delivery.data == b"first" && got.message_count == 1,
                || format!("body {:?} count {}", got.delivery.data, got.message_count),
            )
        })
        .await;

    report
        .check("basic.get empty", || async {
            let q = exclusive_queue(&ch, "").await?;
            let got = ch
                .basic_get(&q, BasicGetOptions::default())
                .await
                .map_err(err)?;
            ensure(got.is_none(), || "got a message".into())
        })
        .await;

    for (name, nack) in [("reject requeue", false), ("nack requeue", true)] {
        report
            .check(name, || async {
                let q = exclusive_queue(&ch, "").await?;
                publish(&ch, "", &q, b"again", BasicProperties::default()).await?;
                let got = ch
                    .basic_get(&q, BasicGetOptions::default())
                    .await
                    .map_err(err)?
                    .ok_or("empty")?;
                if nack {
                    got.delivery
                        .nack(BasicNackOptions {
                            requeue: true,
                            multiple: false,
                        })
                        .await
                        .map_err(err)?;
                } else {
                    got.delivery
                        .reject(BasicRejectOptions { requeue: true })
                        .await
                        .map_err(err)?;
                }
                let again = ch
                    .basic_get(&q, BasicGetOptions { no_ack: true })
                    .await
                    .map_err(err)?
                    .ok_or("not requeued")?;
                ensure(
                    again.delivery.redelivered && again.delivery.data == b"again",
                    || "not redelivered".into(),
                )
            })
            .await;
    }

    report
        .check("publisher confirms", || async {
            let q = exclusive_queue(&ch, "").await?;
            let mut confirms = Vec::new();
            for _ in 0..100 {
                confirms.push(
                    ch.basic_publish(
                        "",
                        &q,
                        BasicPublishOptions::default(),
                        b"c",
                        BasicProperties::default(),
                    )
                    .await
                    .map_err(err)?,
                );
            }
            for c in confirms {
                ensure(c.await.map_err(err)?.is_ack(), || "nacked".into())?;
            }
            Ok(())
        })
        .await;

    report
        .check("mandatory return", || async {
            let confirm = ch
                .basic_publish(
                    "amq.direct",
                    "nobody",
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    b"back",
                    BasicProperties::default(),
                )
                .await
                .map_err(err)?
                .await
                .map_err(err)?;
            let returned = confirm.take_message().ok_or("not returned")?;
            ensure(
                returned.reply_code == 312
                    && returned.reply_text.as_str() == "NO_ROUTE"
                    && returned.data == b"back",
                || format!("returned {} {}", returned.reply_code, returned.reply_text),
            )
        })
        .await;

    report
        .check("tx commit", || async {
            let tx = conn.create_channel().await.map_err(err)?;
            let q = exclusive_queue(&tx, "").await?;
            tx.tx_select().await.map_err(err)?;
            tx.basic_publish(
                "",
                &q,
                BasicPublishOptions::default(),
                b"t",
                BasicProperties::default(),
            )
            .await
            .map_err(err)?;
            let before = message_count(&tx, &q).await?;
            tx.tx_commit().await.map_err(err)?;
            let after = message_count(&tx, &q).await?;
            ensure(before == 0 && after == 1, || {
                format!("{before} before commit, {after} after")
            })
        })
        .await;

    report
        .check("tx rollback", || async {
            let tx = conn.create_channel().await.map_err(err)?;
            let q = exclusive_queue(&tx, "").await?;
            tx.tx_select().await.map_err(err)?;
            tx.basic_publish(
                "",
                &q,
                BasicPublishOptions::default(),
                b"t",
                BasicProperties::default(),
            )
            .await
            .map_err(err)?;
            tx.tx_rollback().await.map_err(err)?;
            let n = message_count(&tx, &q).await?;
            ensure(n == 0, || format!("{n} messages after rollback"))
        })
        .await;

    report
        .check("purge", || async {
            let q = exclusive_queue(&ch, "").await?;
            for _ in 0..5 {
                publish(&ch, "", &q, b"p", BasicProperties::default()).await?;
            }
            let n = ch
                .queue_purge(&q, QueuePurgeOptions::default())
                .await
                .map_err(err)?;
            ensure(n == 5, || format!("purge-ok {n}"))
        })
        .await;

    report
        .check("delete if-unused", || async {
            let q = declare(&ch, "q.in-use", QueueDeclareOptions::default()).await?;
            let cc = conn.create_channel().await.map_err(err)?;
            let _consumer = cc
                .basic_consume(&q, "user", BasicConsumeOptions::default(), no_args())
                .await
                .map_err(err)?;
            let dc = conn.create_channel().await.map_err(err)?;
            let e = dc
                .queue_delete(
                    &q,
                    QueueDeleteOptions {
                        if_unused: true,
                        ..Default::default()
                    },
                )
                .await
                .err()
                .ok_or("deleted")?;
            ensure(code(&e) == 406, || format!("got {e}"))
        })
        .await;

    report
        .check("delete if-empty", || async {
            let q = declare(&ch, "q.not-empty", QueueDeclareOptions::default()).await?;
            publish(&ch, "", &q, b"x", BasicProperties::default()).await?;
            let dc = conn.create_channel().await.map_err(err)?;
            let e = dc
                .queue_delete(
                    &q,
                    QueueDeleteOptions {
                        if_empty: true,
                        ..Default::default()
                    },
                )
                .await
                .err()
                .ok_or("deleted")?;
            ensure(code(&e) == 406, || format!("got {e}"))?;
            let dc = conn.create_channel().await.map_err(err)?;
            dc.queue_delete(&q, QueueDeleteOptions::default())
                .await
                .map_err(err)?;
            Ok(())
        })
        .await;

    report
        .check("406 on redeclare then new channel works", || async {
            let c = conn.create_channel().await.map_err(err)?;
            declare(&c, "q.flags", QueueDeclareOptions::default()).await?;
            let e = c
                .queue_declare(
                    "q.flags",
                    QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    },
                    no_args(),
                )
                .await
                .err()
                .ok_or("accepted")?;
            ensure(code(&e) == 406, || format!("got {e}"))?;
            new_channel_works(&conn).await
        })
        .await;

    report
        .check("404 on passive declare then new channel works", || async {
            let c = conn.create_channel().await.map_err(err)?;
            let e = c
                .queue_declare(
                    "q.missing",
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    no_args(),
                )
                .await
                .err()
                .ok_or("found")?;
            ensure(code(&e) == 404, || format!("got {e}"))?;
            new_channel_works(&conn).await
        })
        .await;

    report
        .check(
            "405 on exclusive queue of another connection then new channel works",
            || async {
                let other = connect().await?;
                let oc = other.create_channel().await.map_err(err)?;
                let e = oc
                    .basic_consume("q.exclusive", "", BasicConsumeOptions::default(), no_args())
                    .await
                    .err()
                    .ok_or("consumed")?;
                ensure(code(&e) == 405, || format!("got {e}"))?;
                new_channel_works(&other).await
            },
        )
        .await;

    report
        .check("403 on wrong password then new channel works", || async {
            let uri = format!("amqp://guest:wrong@127.0.0.1:{}/%2f", env("WARREN_PORT"));
            let e = Connection::connect(&uri, properties())
                .await
                .err()
                .ok_or("logged in")?;
            let text = format!("{e:?}");
            ensure(
                text.contains("ACCESS_REFUSED") || text.contains("403"),
                || text.clone(),
            )?;
            new_channel_works(&conn).await
        })
        .await;

    report
        .check("5 MiB message", || async {
            let q = exclusive_queue(&ch, "").await?;
            let body: Vec<u8> = (0..5 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
            publish(&ch, "", &q, &body, BasicProperties::default()).await?;
            let got = ch
                .basic_get(&q, BasicGetOptions { no_ack: true })
                .await
                .map_err(err)?
                .ok_or("empty")?;
            ensure(got.delivery.data == body, || {
                format!("{} bytes back", got.delivery.data.len())
            })
        })
        .await;

    report
        .check("500 channels", || async {
            let c = connect().await?;
            let mut channels = Vec::new();
            for _ in 0..500 {
                channels.push(c.create_channel().await.map_err(err)?);
            }
            for channel in &channels {
                declare(
                    channel,
                    "",
                    QueueDeclareOptions {
                        exclusive: true,
                        ..Default::default()
                    },
                )
                .await?;
            }
            c.close(200, "bye").await.map_err(err)
        })
        .await;

    report
        .check("round-robin consumers", || async {
            let rc = conn.create_channel().await.map_err(err)?;
            let q = exclusive_queue(&rc, "").await?;
            let mut consumers = Vec::new();
            for i in 0..4 {
                consumers.push(
                    rc.basic_consume(
                        &q,
                        &format!("rr{i}"),
                        BasicConsumeOptions {
                            no_ack: true,
                            ..Default::default()
                        },
                        no_args(),
                    )
                    .await
                    .map_err(err)?,
                );
            }
            for i in 0..40 {
                rc.basic_publish(
                    "",
                    &q,
                    BasicPublishOptions::default(),
                    format!("{i}").as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .map_err(err)?;
            }
            let mut counts = Vec::new();
            for consumer in &mut consumers {
                let mut n = 0;
                while let Ok(Some(Ok(_))) =
                    tokio::time::timeout(Duration::from_millis(500), consumer.next()).await
                {
                    n += 1;
                }
                counts.push(n);
            }
            ensure(counts == [10, 10, 10, 10], || format!("counts {counts:?}"))
        })
        .await;

    let _ = conn.close(200, "done").await;
    report.finish();
}
