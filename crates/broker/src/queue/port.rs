//! How queues reach a consumer's connection: a bounded inbox per connection,
//! and the per-channel prefetch shared by every queue a channel consumes from.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};
use warren_codec::ShortString;

use super::QueueHandle;
use crate::message::Message;

/// What a queue sends to a connection.
#[derive(Debug)]
pub enum ConnEvent {
    Deliver(Delivery),
    /// The queue went away under the consumer (basic.cancel to the client,
    /// if it understands it).
    Cancelled {
        channel: u16,
        consumer_tag: ShortString,
    },
}

#[derive(Debug)]
pub struct Delivery {
    pub channel: u16,
    pub consumer_tag: ShortString,
    pub queue: Arc<QueueHandle>,
    /// The queue's id for the message, to acknowledge it by.
    pub id: u64,
    pub message: Message,
    pub redelivered: bool,
    /// No acknowledgement will come (no-ack consumer).
    pub no_ack: bool,
    /// The channel prefetch slot the delivery took (none for no-ack), given
    /// back if the delivery finds its consumer gone.
    pub limit: Option<Arc<ChannelLimit>>,
}

/// What became of an event handed to a connection.
pub(crate) enum Sent {
    Yes,
    /// The inbox is full.
    Full,
    /// The connection is gone.
    Closed,
}

/// A connection's inbox for deliveries. Bounded: a queue that finds it full
/// skips the consumer and waits to be woken when the connection has drained it.
#[derive(Debug)]
pub struct DeliveryPort {
    tx: mpsc::Sender<ConnEvent>,
    /// Queues that found the inbox full.
    waiting: Mutex<Vec<Arc<Notify>>>,
}

impl DeliveryPort {
    pub fn new(capacity: usize) -> (Arc<DeliveryPort>, mpsc::Receiver<ConnEvent>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Arc::new(DeliveryPort {
                tx,
                waiting: Mutex::new(Vec::new()),
            }),
            rx,
        )
    }

    /// Hands an event over without waiting; if the inbox is full, asks for
    /// `wake` when it drains.
    pub(crate) fn try_send(&self, event: ConnEvent, wake: &Arc<Notify>) -> Sent {
        match self.tx.try_send(event) {
            Ok(()) => Sent::Yes,
            Err(mpsc::error::TrySendError::Closed(_)) => Sent::Closed,
            Err(mpsc::error::TrySendError::Full(event)) => {
                {
                    let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                    if !waiting.iter().any(|w| Arc::ptr_eq(w, wake)) {
                        waiting.push(wake.clone());
                    }
                }
                // The connection may have drained between the two steps.
                match self.tx.try_send(event) {
                    Ok(()) => Sent::Yes,
                    Err(mpsc::error::TrySendError::Closed(_)) => Sent::Closed,
                    Err(mpsc::error::TrySendError::Full(_)) => Sent::Full,
                }
            }
        }
    }

    /// Sends an event that must not be lost (cancel notifications) even
    /// when the inbox is full, from a task of its own.
    pub(crate) fn send_later(&self, event: ConnEvent) {
        if let Err(mpsc::error::TrySendError::Full(event)) = self.tx.try_send(event) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(event).await;
            });
        }
    }

    /// The connection took events out: wake the queues that were waiting.
    pub fn drained(&self) {
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        for wake in waiting {
            wake.notify_one();
        }
    }
}

/// A channel's prefetch shared across its consumers (basic.qos global=true)
/// and the count of its unacknowledged consumer deliveries.
#[derive(Debug, Default)]
pub struct ChannelLimit {
    /// 0: no limit.
    limit: AtomicU32,
    unacked: AtomicU32,
}

impl ChannelLimit {
    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Takes one slot if the channel has room.
    pub fn try_acquire(&self) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        self.unacked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (limit == 0 || n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn release(&self, count: u32) {
        let _ = self
            .unacked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(count))
            });
    }

    pub fn is_limited(&self) -> bool {
        self.limit.load(Ordering::Relaxed) != 0
    }
}
