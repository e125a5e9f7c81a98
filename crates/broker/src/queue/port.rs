//! How queues reach a consumer's connection: a bounded port per connection,
//! and the per-channel prefetch shared by every queue a channel consumes from.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use warren_codec::ShortString;

use super::channel_limit::ChannelLimit;
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

/// Why a connection did not take an event, with the event back.
pub(crate) enum Refused {
    /// The port is full.
    Full(ConnEvent),
    /// The connection is gone.
    Closed(ConnEvent),
}

impl Refused {
    pub(crate) fn into_event(self) -> ConnEvent {
        match self {
            Refused::Full(e) | Refused::Closed(e) => e,
        }
    }
}

/// A connection's port for deliveries. Bounded: a queue that finds it full
/// skips the consumer and waits to be woken when the connection has drained it.
///
/// A locked deque rather than a channel: it holds no memory while idle (an
/// idle connection costs nothing here), and the connection takes everything
/// waiting with one lock.
#[derive(Debug)]
pub struct DeliveryPort {
    state: Mutex<PortState>,
    capacity: usize,
    /// Rung when events arrive in an empty port.
    ready: Notify,
}

#[derive(Debug, Default)]
struct PortState {
    events: VecDeque<ConnEvent>,
    closed: bool,
    /// Queues that found the port full.
    waiting: Vec<Arc<Notify>>,
}

impl DeliveryPort {
    pub fn new(capacity: usize) -> Arc<DeliveryPort> {
        Arc::new(DeliveryPort {
            state: Mutex::new(PortState::default()),
            capacity,
            ready: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PortState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands an event over without waiting; if the port is full, asks for
    /// `wake` when it drains.
    // The event comes back by value when refused: boxing it would cost an
    // allocation per delivery.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_send(&self, event: ConnEvent, wake: &Arc<Notify>) -> Result<(), Refused> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refused::Closed(event));
        }
        if state.events.len() >= self.capacity {
            if !state.waiting.iter().any(|w| Arc::ptr_eq(w, wake)) {
                state.waiting.push(wake.clone());
            }
            return Err(Refused::Full(event));
        }
        state.events.push_back(event);
        if state.events.len() == 1 {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// Sends an event that must not be lost (cancel notifications) even
    /// when the port is full.
    pub(crate) fn send_later(&self, event: ConnEvent) {
        let mut state = self.lock();
        if !state.closed {
            state.events.push_back(event);
            self.ready.notify_one();
        }
    }

    /// Waits for events and moves all of them into `into` (which should be
    /// empty; its allocation is swapped in for the next ones).
    pub async fn recv_all(&self, into: &mut VecDeque<ConnEvent>) {
        loop {
            {
                let mut state = self.lock();
                if !state.events.is_empty() {
                    std::mem::swap(&mut state.events, into);
                    return;
                }
            }
            self.ready.notified().await;
        }
    }

    /// No more events are taken; returns those still waiting.
    pub fn close(&self) -> VecDeque<ConnEvent> {
        let mut state = self.lock();
        state.closed = true;
        std::mem::take(&mut state.events)
    }

    /// The connection took events out: wake the queues that were waiting.
    pub fn drained(&self) {
        let waiting = std::mem::take(&mut self.lock().waiting);
        for wake in waiting {
            wake.notify_one();
        }
    }
}
