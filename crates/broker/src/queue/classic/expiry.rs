//! Message TTL: each ready message's deadline (the lower of its
//! `expiration` and the queue's `x-message-ttl`, fixed when it enters the
//! queue), expiry at the head only, as RabbitMQ 3.10 does; the queue's own
//! expiry (`x-expires`) when unused that long; and the time the queue's one
//! timer is set for. A queue that never sees a deadline never reads the
//! clock for it.

use std::time::Instant;

use super::backlog::{Entry, UNKNOWN};
use super::{Lease, QueueState, READ_AHEAD};
use crate::clock;
use crate::dead_letter::Reason;
use crate::message::Message;
use crate::queue::{LeaseEvent, QueueStart};

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
        self.dead_letter(entry, Reason::Expired);
    }

    /// When the queue's timer must wake it: the head's deadline, or the end
    /// of an unused queue's lease (None: neither).
    pub(super) fn next_deadline(&mut self) -> Option<u64> {
        if self.dead_letters.is_waiting() {
            return Some(self.now_ms() + super::dead_letter::RETRY_MS);
        }
        let lease_end = self.lease_end();
        let head = match self.timed {
            true => self.head_deadline().filter(|d| *d != 0),
            false => None,
        };
        match (head, lease_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Renews an `x-expires` queue's lease (a get, a declaration, the last
    /// consumer leaving).
    pub(super) fn used(&mut self) {
        if self.lease.is_none() {
            return;
        }
        let now = self.now_ms();
        let unused = self.consumers.is_empty();
        let handle = self.handle.upgrade();
        let Some(lease) = &mut self.lease else { return };
        lease.last_used = now;
        lease.reported = false;
        // Stored at most once per interval: a restart then counts the lease
        // from the stored time plus that interval, never early.
        let stale = match lease.stored {
            None | Some(0) => true,
            Some(since) => now.saturating_sub(since) >= store_interval(lease.expires),
        };
        if let (true, true, true, Some(handle)) = (lease.persistent, unused, stale, handle) {
            lease.stored = Some(now);
            (lease.hook)(handle, LeaseEvent::Used(now));
        }
    }

    /// A consumer came: a durable queue stores that it is in use (after a
    /// crash, its lease then starts at the restart).
    pub(super) fn in_use(&mut self) {
        let handle = self.handle.upgrade();
        if let (Some(lease), Some(handle)) = (&mut self.lease, handle) {
            if lease.persistent && lease.stored != Some(0) {
                lease.stored = Some(0);
                (lease.hook)(handle, LeaseEvent::Used(0));
            }
        }
    }

    /// When an unused queue's lease ends (None: in use, or no `x-expires`).
    pub(super) fn lease_end(&self) -> Option<u64> {
        let lease = self.lease.as_ref()?;
        (self.consumers.is_empty() && !lease.reported)
            .then(|| lease.last_used.saturating_add(lease.expires))
    }

    /// Tells the hook once when the lease has run out.
    pub(super) fn check_lease(&mut self) {
        let Some(end) = self.lease_end() else { return };
        if end > self.now_ms() {
            return;
        }
        if let (Some(lease), Some(handle)) = (&mut self.lease, self.handle.upgrade()) {
            lease.reported = true;
            (lease.hook)(handle, LeaseEvent::Expired);
        }
    }

    /// Whether the lease has run out, for [`Command::Expire`](crate::queue::Command).
    pub(super) fn lease_ran_out(&mut self) -> bool {
        let now = self.now_ms();
        let ran_out = self.consumers.is_empty()
            && self
                .lease
                .as_ref()
                .is_some_and(|l| l.last_used.saturating_add(l.expires) <= now);
        if !ran_out {
            if let Some(lease) = &mut self.lease {
                lease.reported = false;
            }
        }
        ran_out
    }

    /// The head's deadline, reading it back from the store if it was
    /// recovered and is not known yet.
    fn head_deadline(&mut self) -> Option<u64> {
        if let Some(levels) = &self.by_priority {
            return levels.front().map(|e| e.message.expires_at);
        }
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

/// How often at most a durable queue's lease is stored while it is renewed.
fn store_interval(expires: u64) -> u64 {
    (expires / 4).max(1000)
}

impl Lease {
    /// A queue's lease at start: a restored one continues from what was
    /// stored (plus the interval renewals may have gone unstored in);
    /// otherwise it starts now.
    pub(super) fn start(expires: u64, start: &QueueStart, persistent: bool) -> Lease {
        let now = clock::epoch_ms(Instant::now());
        let last_used = match start.unused_since {
            Some(since) if since != 0 => since.saturating_add(store_interval(expires)).min(now),
            _ => now,
        };
        Lease {
            expires,
            last_used,
            reported: false,
            hook: start.hooks.lease.clone(),
            persistent,
            stored: start.unused_since,
        }
    }
}
