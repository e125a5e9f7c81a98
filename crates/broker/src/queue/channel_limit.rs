//! A channel's prefetch shared by all its consumers (basic.qos
//! global=true): the count of its unacknowledged deliveries, and the line
//! of queues waiting for room, so that room given back goes round them
//! instead of to whichever queue happens to run first (RabbitMQ's limiter
//! resumes its blocked queues in a varying order for the same reason).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Weak};

use super::QueueHandle;

#[derive(Debug, Default)]
pub struct ChannelLimit {
    /// 0: no limit.
    limit: AtomicU32,
    unacked: AtomicU32,
    /// Queues refused room, in the order they were refused. Only used
    /// while there is a limit.
    line: Mutex<VecDeque<Weak<QueueHandle>>>,
}

impl ChannelLimit {
    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Whether a channel-wide (global) prefetch is set.
    pub fn is_set(&self) -> bool {
        self.limit.load(Ordering::Relaxed) > 0
    }

    /// Takes one slot for a delivery from `queue` if the channel has room
    /// and no queue refused before it is still waiting; otherwise `queue`
    /// joins the line (once) and is refused.
    pub fn try_acquire(&self, queue: &Weak<QueueHandle>) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == 0 {
            self.unacked.fetch_add(1, Ordering::AcqRel);
            return true;
        }
        let mut line = self.lock_line();
        line.retain(|q| q.strong_count() > 0);
        let first = line.front().is_none_or(|q| q.ptr_eq(queue));
        if first && self.unacked.load(Ordering::Acquire) < limit {
            self.unacked.fetch_add(1, Ordering::AcqRel);
            if !line.is_empty() {
                line.pop_front();
            }
            return true;
        }
        if !line.iter().any(|q| q.ptr_eq(queue)) {
            line.push_back(queue.clone());
        }
        false
    }

    /// Called by a queue in the line after a delivery round: false once it
    /// is out of the line. A queue first in line that left room unused
    /// (nothing to deliver, or no consumer left) steps out, and the next
    /// in line is woken to take the room.
    pub fn keep_place(&self, queue: &Weak<QueueHandle>) -> bool {
        let mut line = self.lock_line();
        let Some(at) = line.iter().position(|q| q.ptr_eq(queue)) else {
            return false;
        };
        let room = self.unacked.load(Ordering::Acquire) < self.limit.load(Ordering::Relaxed);
        if at != 0 || !room {
            return true;
        }
        line.pop_front();
        Self::wake_first(&mut line);
        false
    }

    /// Gives slots back, and wakes the first queue in line.
    pub fn release(&self, count: u32) {
        let _ = self
            .unacked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(count))
            });
        if self.is_limited() {
            Self::wake_first(&mut self.lock_line());
        }
    }

    pub fn is_limited(&self) -> bool {
        self.limit.load(Ordering::Relaxed) != 0
    }

    /// Whether the channel is at its limit: then even no-ack consumers,
    /// which take no slot, wait (as RabbitMQ's limiter has them do).
    pub fn is_reached(&self) -> bool {
        let limit = self.limit.load(Ordering::Relaxed);
        limit != 0 && self.unacked.load(Ordering::Acquire) >= limit
    }

    fn wake_first(line: &mut VecDeque<Weak<QueueHandle>>) {
        while let Some(first) = line.front() {
            match first.upgrade() {
                Some(queue) => return queue.wake(),
                None => {
                    line.pop_front();
                }
            }
        }
    }

    fn lock_line(&self) -> std::sync::MutexGuard<'_, VecDeque<Weak<QueueHandle>>> {
        self.line.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Registry;
    use std::sync::Arc;

    fn queues(n: usize) -> Vec<Arc<QueueHandle>> {
        let registry = Arc::new(Registry::default());
        (0..n)
            .map(|_| super::super::test_queue(&registry))
            .collect()
    }

    #[tokio::test]
    async fn room_given_back_goes_to_the_queue_refused_first() {
        let limit = ChannelLimit::default();
        limit.set_limit(1);
        let queues = queues(3);
        let [a, b, c] = [0, 1, 2].map(|i| Arc::downgrade(&queues[i]));
        assert!(limit.try_acquire(&a));
        assert!(!limit.try_acquire(&b));
        assert!(!limit.try_acquire(&c));
        assert!(!limit.try_acquire(&a), "a waits behind b and c");
        limit.release(1);
        assert!(!limit.try_acquire(&a), "b was refused first");
        assert!(!limit.try_acquire(&c));
        assert!(limit.try_acquire(&b));
        limit.release(1);
        assert!(!limit.try_acquire(&a), "then c");
        assert!(limit.try_acquire(&c));
        limit.release(1);
        assert!(limit.try_acquire(&a), "then a");
    }

    #[tokio::test]
    async fn a_first_queue_that_leaves_room_unused_steps_out() {
        let limit = ChannelLimit::default();
        limit.set_limit(1);
        let queues = queues(3);
        let [a, b, c] = [0, 1, 2].map(|i| Arc::downgrade(&queues[i]));
        assert!(limit.try_acquire(&a));
        assert!(!limit.try_acquire(&b));
        assert!(!limit.try_acquire(&c));
        assert!(limit.keep_place(&c), "not first: c keeps its place");
        limit.release(1);
        assert!(!limit.keep_place(&b), "b had room and did not take it");
        assert!(limit.try_acquire(&c), "so c's turn comes");
    }

    #[test]
    fn without_a_limit_nobody_waits() {
        let limit = ChannelLimit::default();
        let nobody = Weak::new();
        assert!((0..1000).all(|_| limit.try_acquire(&nobody)));
        assert!(!limit.is_reached());
    }
}
