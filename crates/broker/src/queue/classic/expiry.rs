//! Message TTL: each ready message's deadline (the lower of its
//! `expiration` and the queue's `x-message-ttl`, fixed when it enters the
//! queue), expiry at the head only, as RabbitMQ 3.10 does, and the time the
//! queue's one timer is set for. A queue that never sees a deadline never
//! reads the clock for it.

use std::time::Instant;

use super::backlog::{Entry, UNKNOWN};
use super::{QueueState, READ_AHEAD};
use crate::clock;
use crate::message::Message;

impl QueueState {
    /// The batch's clock (ms since the epoch), read once per batch.
    pub(super) fn now_ms(&mut self) -> u64 {
        *self
            .batch_ms
            .get_or_insert_with(|| clock::epoch_ms(Instant::now()))
    }

    /// Fixes an entering message's deadline in this queue. `published_at`
    /// is when it was published, if known (messages read back from the
    /// store), else now. A deadline is never before the batch's clock, so
    /// that TTL 0 still lets a consumer with room take it in this round.
    pub(super) fn set_deadline(&mut self, message: &mut Message, published_at: Option<u64>) {
        if self.message_ttl.is_none() && message.expires_at == 0 {
            return;
        }
        let now = self.now_ms();
        if let Some(ttl) = self.message_ttl {
            let queue_deadline = published_at.unwrap_or(now).saturating_add(ttl);
            message.expires_at = match message.expires_at {
                0 => queue_deadline,
                own => own.min(queue_deadline),
            };
        }
        if published_at.is_none() {
            message.expires_at = message.expires_at.max(now);
        }
        self.timed = true;
    }

    /// Whether a message about to be handed out has expired: past its
    /// deadline (one at this very batch's clock is still deliverable).
    pub(super) fn expired(&mut self, entry: &Entry) -> bool {
        let deadline = entry.message.expires_at;
        self.timed && deadline != 0 && deadline < self.now_ms()
    }

    /// Drops the expired messages at the head, deadline now included:
    /// after a delivery round, a TTL-0 message nobody took is gone.
    pub(super) fn expire_heads(&mut self) {
        if !self.timed {
            return;
        }
        let now = self.now_ms();
        while let Some(deadline) = self.head_deadline() {
            if deadline == 0 || deadline > now {
                break;
            }
            let Some(entry) = self.pop_head() else { break };
            self.expire(entry);
        }
    }

    /// A message leaves because it expired.
    pub(super) fn expire(&mut self, entry: Entry) {
        self.forget(&entry);
    }

    /// When the head expires, for the queue's timer (None: no deadline).
    pub(super) fn next_deadline(&mut self) -> Option<u64> {
        if !self.timed {
            return None;
        }
        self.head_deadline().filter(|d| *d != 0)
    }

    /// The head's deadline, reading it back from the store if it was
    /// recovered and is not known yet.
    fn head_deadline(&mut self) -> Option<u64> {
        let requeued_first = match (self.requeued.keys().next(), self.backlog.front_id()) {
            (Some(r), Some(f)) => *r < f,
            (Some(_), None) => true,
            _ => false,
        };
        if requeued_first {
            return self.requeued.values().next().map(|e| e.message.expires_at);
        }
        loop {
            match self.backlog.front_deadline() {
                Some(UNKNOWN) => {
                    let to_load = self.backlog.to_load(READ_AHEAD);
                    if to_load.is_empty() {
                        return None;
                    }
                    self.page_in(&to_load);
                }
                other => return other,
            }
        }
    }
}
