//! The consumer acknowledgement timeout (`limits.consumer_timeout`, as
//! RabbitMQ 3.10's `consumer_timeout`): a channel whose oldest delivery has
//! waited too long for its ack is closed with 406, and its deliveries go
//! back; no-ack consumers are never affected.

use lapin::options::*;
use lapin::types::FieldTable;
use std::time::Duration;
use warren_tests::{consume, declare, next, publish_n, watch_channel_error, TestServer};

const TIMED_OUT: &str = "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. \
     Timeout value used: 500 ms. This timeout value can be configured, see consumers doc guide to learn more";

async fn server() -> TestServer {
    TestServer::start_with(|c| c.limits.consumer_timeout = 500).await
}

#[tokio::test]
async fn an_unacknowledged_delivery_closes_its_channel_and_comes_back() {
    let server = server().await;
    let (c, ch) = server.channel().await;
    declare(&ch, "slow").await;
    publish_n(&ch, "slow", 1).await;
    let closed = watch_channel_error(&ch);
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut consumer = consume(&ch, "slow", "never-acks").await;
    next(&mut consumer).await;
    let (code, text) = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("closed within 5 s");
    assert_eq!((code, text.as_str()), (406, TIMED_OUT));
    let ch2 = c.create_channel().await.unwrap();
    let got = ch2
        .basic_get("slow", BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("back in its queue");
    assert!(got.delivery.redelivered);
}

#[tokio::test]
async fn an_unacknowledged_get_times_out_too() {
    let server = server().await;
    let (_c, ch) = server.channel().await;
    declare(&ch, "got").await;
    publish_n(&ch, "got", 1).await;
    let closed = watch_channel_error(&ch);
    ch.basic_get("got", BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("a message");
    let (code, text) = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("closed within 5 s");
    assert_eq!((code, text.as_str()), (406, TIMED_OUT));
}

#[tokio::test]
async fn no_ack_consumers_and_prompt_acks_keep_the_channel() {
    let server = server().await;
    let (_c, ch) = server.channel().await;
    declare(&ch, "fast").await;
    let mut free = ch
        .basic_consume(
            "fast",
            "free",
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish_n(&ch, "fast", 1).await;
    next(&mut free).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // Still open: a synchronous method works.
    declare(&ch, "still-open").await;
}

#[tokio::test]
async fn one_slow_consumer_closes_the_whole_channel() {
    let server = server().await;
    let (_c, ch) = server.channel().await;
    declare(&ch, "prompt").await;
    declare(&ch, "held").await;
    let closed = watch_channel_error(&ch);
    let mut prompt = consume(&ch, "prompt", "prompt").await;
    let mut held = consume(&ch, "held", "held").await;
    publish_n(&ch, "held", 1).await;
    next(&mut held).await;
    for _ in 0..3 {
        publish_n(&ch, "prompt", 1).await;
        let d = next(&mut prompt).await;
        d.ack(BasicAckOptions::default()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, _) = tokio::time::timeout(Duration::from_secs(5), closed)
        .await
        .expect("closed within 5 s");
    assert_eq!(code, 406, "the channel of the prompt consumer too");
}
