//! Admission to a queue that refuses publishes when full (`x-overflow`
//! `reject-publish` or `reject-publish-dlx`, reference §3): its ready
//! messages and their body bytes, counted when a publisher hands one over
//! (so that publishers on many connections never overshoot together) and
//! uncounted when one leaves the ready list. Put-back messages count again
//! without being refused, so a queue may overshoot by them, as RabbitMQ's
//! does.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::args::{Overflow, QueueSettings};

#[derive(Debug)]
pub struct Admission {
    max_length: Option<u64>,
    max_bytes: Option<u64>,
    /// Refused messages are dead-lettered (`reject-publish-dlx`).
    pub dead_letters: bool,
    ready: AtomicU64,
    bytes: AtomicU64,
}

impl Admission {
    /// For a queue whose settings ask for one.
    pub fn of(settings: &QueueSettings) -> Option<Admission> {
        let dead_letters = match settings.overflow? {
            Overflow::RejectPublish => false,
            Overflow::RejectPublishDlx => true,
            Overflow::DropHead => return None,
        };
        if settings.max_length.is_none() && settings.max_length_bytes.is_none() {
            return None;
        }
        Some(Admission {
            max_length: settings.max_length,
            max_bytes: settings.max_length_bytes,
            dead_letters,
            ready: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    /// Takes room for a message of `body` bytes; false (nothing taken) if
    /// the queue is full.
    pub fn admit(&self, body: u64) -> bool {
        let ready = self.ready.fetch_add(1, Ordering::AcqRel);
        let bytes = self.bytes.fetch_add(body, Ordering::AcqRel);
        let full = self.max_length.is_some_and(|max| ready + 1 > max)
            || self.max_bytes.is_some_and(|max| bytes + body > max);
        if full {
            self.left(1, body);
        }
        !full
    }

    /// Ready messages left (delivered, dropped, purged). Saturating: the
    /// bytes of messages recovered at start were not counted.
    pub fn left(&self, messages: u64, body: u64) {
        let less = |by: u64| move |n: u64| Some(n.saturating_sub(by));
        let _ = self
            .ready
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, less(messages));
        let _ = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, less(body));
    }

    /// A message is ready again (put back): counted, never refused.
    pub fn came_back(&self, body: u64) {
        self.ready.fetch_add(1, Ordering::AcqRel);
        self.bytes.fetch_add(body, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_until_room_comes_back() {
        let settings = QueueSettings {
            max_length: Some(2),
            max_length_bytes: Some(10),
            overflow: Some(Overflow::RejectPublish),
            ..Default::default()
        };
        let a = Admission::of(&settings).unwrap();
        assert!(a.admit(4));
        assert!(a.admit(4));
        assert!(!a.admit(0), "two messages is the length limit");
        a.left(1, 4);
        assert!(!a.admit(7), "4 + 7 bytes would pass 10");
        assert!(a.admit(2));
        a.came_back(4);
        assert!(!a.admit(0), "put back: over, and refusing");
        let drop_head = QueueSettings {
            overflow: Some(Overflow::DropHead),
            ..settings
        };
        assert!(Admission::of(&drop_head).is_none());
    }
}
