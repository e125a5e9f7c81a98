//! The classic queue without sockets: a queue task driven through its
//! handle, deliveries read from a connection's port as a session would.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use smallvec::smallvec;
use warren_codec::ShortString;

use crate::message::Message;
use crate::queue::test_queue as queue;
use crate::queue::QueueHandle;
use crate::queue::{ChannelLimit, ConnEvent, ConsumerSpec, Delivery, DeliveryPort};
use crate::stats::{QueueCounts, QueueStats, Registry};

async fn publish(queue: &QueueHandle, bodies: &[&'static str]) {
    let messages: Vec<Message> = bodies
        .iter()
        .map(|b| Message {
            exchange: ShortString::from_static(""),
            routing_key: ShortString::from_static("q"),
            header: Bytes::new(),
            body: Bytes::from_static(b.as_bytes()),
            stored: None,
            expires_at: 0,
        })
        .collect();
    queue.count_memory(messages.iter().map(Message::size).sum());
    assert!(queue.publish_many(messages).await.is_empty());
}

fn consumer(tag: &'static str, port: &Arc<DeliveryPort>, prefetch: u32) -> ConsumerSpec {
    ConsumerSpec {
        conn: 1,
        channel: 1,
        tag: ShortString::from_static(tag),
        no_ack: false,
        exclusive: false,
        prefetch,
        priority: 0,
        channel_limit: Arc::new(ChannelLimit::default()),
        port: port.clone(),
    }
}

/// The next `n` deliveries from the port.
async fn deliveries(port: &DeliveryPort, n: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    let mut events = VecDeque::new();
    while got.len() < n {
        tokio::time::timeout(Duration::from_secs(5), port.recv_all(&mut events))
            .await
            .expect("deliveries arrive");
        port.drained();
        got.extend(events.drain(..).filter_map(|e| match e {
            ConnEvent::Deliver(d) => Some(d),
            ConnEvent::Cancelled { .. } => None,
        }));
    }
    got
}

fn body(d: &Delivery) -> &[u8] {
    &d.message.body
}

/// Waits for the queue's next report to show `expected`.
async fn counts_become(stats: &QueueStats, expected: QueueCounts) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while stats.read() != expected {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", stats.read());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn consumers_share_messages_round_robin_in_order() {
    let registry = Arc::new(Registry::default());
    let q = queue(&registry);
    let port = DeliveryPort::new(64);
    assert_eq!(q.consume(consumer("a", &port, 0)).await, Some(Ok(())));
    assert_eq!(q.consume(consumer("b", &port, 0)).await, Some(Ok(())));
    publish(&q, &["1", "2", "3", "4"]).await;
    let got = deliveries(&port, 4).await;
    let order: Vec<(&[u8], &[u8])> = got
        .iter()
        .map(|d| (d.consumer_tag.as_bytes(), body(d)))
        .collect();
    assert_eq!(
        order,
        [
            (&b"a"[..], &b"1"[..]),
            (b"b", b"2"),
            (b"a", b"3"),
            (b"b", b"4")
        ]
    );
}

#[tokio::test]
async fn a_rejected_message_goes_back_to_its_place_redelivered() {
    let registry = Arc::new(Registry::default());
    let q = queue(&registry);
    let port = DeliveryPort::new(64);
    // Prefetch 1: one message out at a time.
    q.consume(consumer("c", &port, 1)).await;
    publish(&q, &["first", "second"]).await;
    let first = deliveries(&port, 1).await.remove(0);
    assert_eq!(body(&first), b"first");
    q.reject(smallvec![first.id], true).await;
    let again = deliveries(&port, 1).await.remove(0);
    assert_eq!((body(&again), again.redelivered), (&b"first"[..], true));
    q.ack(smallvec![again.id]).await;
    let second = deliveries(&port, 1).await.remove(0);
    assert_eq!((body(&second), second.redelivered), (&b"second"[..], false));
}

#[tokio::test]
async fn statistics_are_readable_without_asking_the_queue() {
    let registry = Arc::new(Registry::default());
    let q = queue(&registry);
    let stats = registry.queues().pop().expect("registered at start");
    assert_eq!(stats.name.as_bytes(), b"q");
    publish(&q, &["a", "b", "c"]).await;
    let per_message = Message {
        exchange: ShortString::from_static(""),
        routing_key: ShortString::from_static("q"),
        header: Bytes::new(),
        body: Bytes::from_static(b"a"),
        stored: None,
        expires_at: 0,
    }
    .size() as u64;
    counts_become(
        &stats,
        QueueCounts {
            ready: 3,
            bytes: 3 * per_message,
            published: 3,
            ..Default::default()
        },
    )
    .await;
    let port = DeliveryPort::new(64);
    q.consume(consumer("c", &port, 2)).await;
    let got = deliveries(&port, 2).await;
    q.reject(smallvec![got[1].id], true).await;
    q.ack(smallvec![got[0].id]).await;
    // One acked; the requeued one and the third go out again (prefetch 2).
    deliveries(&port, 2).await;
    counts_become(
        &stats,
        QueueCounts {
            ready: 0,
            unacked: 2,
            bytes: 2 * per_message,
            consumers: 1,
            published: 3,
            delivered: 4,
            acked: 1,
            redelivered: 1,
        },
    )
    .await;
    q.delete(false, false).await.unwrap();
    drop(q);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !registry.queues().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a deleted queue leaves the registry"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
