//! A consumer that stops reading its socket must not stall anyone else.

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::BasicProperties;
use std::time::Duration;
use warren_codec::*;
use warren_tests::{RawClient, TestServer};

#[tokio::test]
async fn a_consumer_that_never_reads_does_not_stall_others() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    for q in ["shared", "other"] {
        ch.queue_declare(q, QueueDeclareOptions::default(), FieldTable::default())
            .await
            .unwrap();
    }
    // The stalled consumer: consumes without acks and then never reads its socket.
    let mut stalled = RawClient::open(server.addr, 0, true).await;
    stalled
        .send(
            1,
            BasicConsume {
                queue: ShortString::from_static("shared"),
                no_ack: true,
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(
        stalled.method().await,
        Some((1, Method::BasicConsumeOk(_)))
    ));

    let (_c2, consumer_ch) = server.channel().await;
    let mut healthy = consumer_ch
        .basic_consume(
            "shared",
            "healthy",
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut other = consumer_ch
        .basic_consume(
            "other",
            "other",
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();

    // Enough 64 KiB messages to fill the stalled client's socket buffers and
    // the server's outbound budget for it several times over.
    let body = vec![7u8; 64 * 1024];
    let publisher = {
        let (c, ch) = server.channel().await;
        tokio::spawn(async move {
            for _ in 0..1000 {
                ch.basic_publish(
                    "",
                    "shared",
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default(),
                )
                .await
                .unwrap();
            }
            for _ in 0..10 {
                ch.basic_publish(
                    "",
                    "other",
                    BasicPublishOptions::default(),
                    b"o",
                    BasicProperties::default(),
                )
                .await
                .unwrap();
            }
            c
        })
    };
    // Real deliveries only: a closed stream (None) or an error is a failure.
    let mut healthy_count = 0;
    while healthy_count < 500 {
        let d = tokio::time::timeout(Duration::from_secs(10), healthy.next()).await;
        match d {
            Ok(Some(Ok(delivery))) => assert_eq!(delivery.data.len(), 64 * 1024),
            Ok(other) => {
                panic!("the healthy consumer's stream ended after {healthy_count}: {other:?}")
            }
            Err(_) => {
                panic!("the healthy consumer of the same queue stalled after {healthy_count}")
            }
        }
        healthy_count += 1;
    }
    for n in 0..10 {
        let d = tokio::time::timeout(Duration::from_secs(10), other.next()).await;
        match d {
            Ok(Some(Ok(delivery))) => assert_eq!(delivery.data, b"o"),
            Ok(other) => panic!("the other consumer's stream ended after {n}: {other:?}"),
            Err(_) => panic!("the consumer of another queue stalled after {n}"),
        }
    }
    let _ = publisher.await;
    drop(stalled);
}
