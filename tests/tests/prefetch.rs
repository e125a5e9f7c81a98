//! Prefetch: per consumer (basic.qos global=false) and per channel
//! (global=true), which holds back every consumer of the channel, no-ack
//! ones too, and shares the room it gives back among the channel's queues.

use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use std::time::Duration;
use warren_tests::{consume, declare, next, nothing_more, publish_n, TestServer};

#[tokio::test]
async fn per_consumer_prefetch_is_honoured() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    declare(&ch, "q").await;
    publish_n(&ch, "q", 10).await;
    ch.basic_qos(3, BasicQosOptions::default()).await.unwrap();
    let mut consumer = consume(&ch, "q", "c").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(next(&mut consumer).await);
    }
    nothing_more(&mut consumer).await;
    held.remove(0)
        .ack(BasicAckOptions::default())
        .await
        .unwrap();
    held.push(next(&mut consumer).await);
    nothing_more(&mut consumer).await;
}

#[tokio::test]
async fn global_prefetch_is_shared_by_the_channels_consumers() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    declare(&ch, "a").await;
    declare(&ch, "b").await;
    publish_n(&ch, "a", 5).await;
    publish_n(&ch, "b", 5).await;
    ch.basic_qos(4, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut ca = consume(&ch, "a", "ca").await;
    let mut cb = consume(&ch, "b", "cb").await;
    // Wait for four deliveries, then make sure no fifth comes.
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got < 4 {
        assert!(tokio::time::Instant::now() < deadline, "{got} deliveries");
        let next = futures_lite::future::or(async { ca.next().await.map(|d| d.is_ok()) }, async {
            cb.next().await.map(|d| d.is_ok())
        });
        if let Ok(Some(true)) = tokio::time::timeout(Duration::from_millis(100), next).await {
            got += 1;
        }
    }
    let fifth = futures_lite::future::or(async { ca.next().await.map(|d| d.is_ok()) }, async {
        cb.next().await.map(|d| d.is_ok())
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), fifth)
            .await
            .is_err(),
        "four unacknowledged deliveries across both consumers, no more"
    );
}

#[tokio::test]
async fn a_reached_channel_limit_holds_back_no_ack_consumers_too() {
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    declare(&ch, "acked").await;
    declare(&ch, "free").await;
    publish_n(&ch, "acked", 1).await;
    ch.basic_qos(1, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut acked = consume(&ch, "acked", "acked").await;
    let held = next(&mut acked).await;
    let mut free = ch
        .basic_consume(
            "free",
            "free",
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish_n(&ch, "free", 3).await;
    nothing_more(&mut free).await;
    held.ack(BasicAckOptions::default()).await.unwrap();
    // Room again: the no-ack consumer is served (it takes no room itself).
    next(&mut free).await;
}

#[tokio::test]
async fn room_given_back_goes_round_the_channels_queues() {
    const QUEUES: usize = 3;
    const DELIVERIES: usize = 60;
    let server = TestServer::start().await;
    let (_c, ch) = server.channel().await;
    for i in 0..QUEUES {
        declare(&ch, &format!("turn-{i}")).await;
        publish_n(&ch, &format!("turn-{i}"), DELIVERIES).await;
    }
    ch.basic_qos(1, BasicQosOptions { global: true })
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    for i in 0..QUEUES {
        let mut consumer = consume(&ch, &format!("turn-{i}"), &format!("c{i}")).await;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                if tx.send((i, delivery)).await.is_err() {
                    break;
                }
            }
        });
    }
    let mut served = [0usize; QUEUES];
    for _ in 0..DELIVERIES {
        let (i, delivery) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a delivery within 5 s")
            .unwrap();
        served[i] += 1;
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert!(
        served.iter().all(|&n| n >= DELIVERIES / QUEUES / 4),
        "deliveries per queue: {served:?}"
    );
}
