//! Consumers, and the delivery round that hands ready messages to those
//! with room, round-robin.

use std::sync::Arc;

use super::backlog::Entry;
use super::unacked::Unacked;
use super::QueueState;
use crate::queue::port::Refused;
use crate::queue::{ConnEvent, ConsumerSpec, Delivery, QueueHandle};

pub(super) struct Consumer {
    pub spec: ConsumerSpec,
    /// Serial number, to find the consumer of an unacknowledged message.
    pub serial: u64,
    pub unacked: u32,
}

impl QueueState {
    /// Hands ready messages to consumers with room, round-robin. A consumer
    /// without prefetch room, or whose connection's port is full, is skipped.
    pub(super) fn deliver(&mut self) {
        self.delivery_round();
        if !self.waiting_for_room.is_empty() {
            let handle = &self.handle;
            self.waiting_for_room
                .retain(|limit| limit.keep_place(handle));
        }
    }

    fn delivery_round(&mut self) {
        if self.consumers.is_empty() || self.ready_count() == 0 {
            return;
        }
        let Some(handle) = self.handle.upgrade() else {
            return;
        };
        if self.choosing.is_some() {
            // Consumer priorities or a single active consumer (choosing.rs).
            return self.chosen_delivery_round(&handle);
        }
        let mut idle_in_a_row = 0;
        while idle_in_a_row < self.consumers.len() && self.ready_count() > 0 {
            let index = self.next_consumer % self.consumers.len();
            self.next_consumer = index + 1;
            match self.offer(index, &handle) {
                Offer::Sent => idle_in_a_row = 0,
                Offer::NoRoom => idle_in_a_row += 1,
                Offer::Gone => {}
                Offer::Empty => break,
            }
        }
    }

    /// Offers the next ready message to consumer `index`.
    #[inline(always)]
    pub(super) fn offer(&mut self, index: usize, handle: &Arc<QueueHandle>) -> Offer {
        let consumer = &mut self.consumers[index];
        let spec = &consumer.spec;
        let per_consumer_room =
            spec.no_ack || spec.prefetch == 0 || consumer.unacked < spec.prefetch;
        let channel_room = if spec.no_ack {
            !spec.channel_limit.is_reached()
        } else {
            per_consumer_room && spec.channel_limit.try_acquire(&self.handle)
        };
        if per_consumer_room && !channel_room && !spec.no_ack {
            let limit = &spec.channel_limit;
            if !self.waiting_for_room.iter().any(|l| Arc::ptr_eq(l, limit)) {
                self.waiting_for_room.push(limit.clone());
            }
        }
        if !per_consumer_room || !channel_room {
            return Offer::NoRoom;
        }
        let Some(entry) = self.pop() else {
            let spec = &self.consumers[index].spec;
            if !spec.no_ack {
                spec.channel_limit.release(1);
            }
            return Offer::Empty;
        };
        let consumer = &mut self.consumers[index];
        let spec = &consumer.spec;
        // A no-ack delivery takes the message itself (no reference
        // counts touched); others leave the entry awaiting its ack.
        let no_ack = spec.no_ack;
        let (id, redelivered, priority) = (entry.id, entry.redelivered, entry.priority);
        let (size, stored) = (entry.message.size(), entry.message.stored);
        let (message, kept) = if no_ack {
            (entry.message, None)
        } else {
            (entry.message.clone(), Some(entry))
        };
        let delivery = ConnEvent::Deliver(Delivery {
            channel: spec.channel,
            consumer_tag: spec.tag.clone(),
            queue: handle.clone(),
            id,
            message,
            redelivered,
            no_ack,
            limit: (!no_ack).then(|| spec.channel_limit.clone()),
        });
        match spec.port.try_send(delivery, &self.wake) {
            Ok(()) => {
                self.counts.delivered += 1;
                self.counts.redelivered += u64::from(redelivered);
                match kept {
                    None => self.forget_parts(size, stored),
                    Some(entry) => {
                        consumer.unacked += 1;
                        let serial = consumer.serial;
                        self.unacked.insert(
                            id,
                            Unacked {
                                entry,
                                consumer: Some(serial),
                            },
                        );
                    }
                }
                Offer::Sent
            }
            Err(refused) => {
                let closed = matches!(refused, Refused::Closed(_));
                if !no_ack {
                    spec.channel_limit.release(1);
                }
                let entry = match (kept, refused.into_event()) {
                    (Some(entry), _) => entry,
                    (None, ConnEvent::Deliver(d)) => Entry {
                        id,
                        message: d.message,
                        redelivered,
                        priority,
                    },
                    (None, ConnEvent::Cancelled { .. }) => unreachable!("a delivery was sent"),
                };
                self.unpop(entry);
                if closed {
                    // The connection is gone; its session cancels the consumer.
                    self.remove_consumer(index);
                    Offer::Gone
                } else {
                    Offer::NoRoom
                }
            }
        }
    }
}

/// What offering a message to a consumer came to.
pub(super) enum Offer {
    Sent,
    /// No prefetch room, or its connection's port is full.
    NoRoom,
    /// Its connection is gone: the consumer was removed.
    Gone,
    /// No ready message left.
    Empty,
}
