//! What producers and consumers share during a run: counters, the stop
//! signals, and per-queue sets of the messages seen (for loss and duplicates).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;
use tokio::sync::Notify;

/// Each message carries `id` (producer << 48 | sequence) and the send time in
/// its first 16 body bytes.
pub const STAMP_LEN: usize = 16;
const SEQ_BITS: u32 = 48;

pub fn message_id(producer: u16, seq: u64) -> u64 {
    (producer as u64) << SEQ_BITS | seq
}

pub fn split_id(id: u64) -> (u16, u64) {
    ((id >> SEQ_BITS) as u16, id & ((1 << SEQ_BITS) - 1))
}

pub struct Shared {
    pub start: Instant,
    pub published: AtomicU64,
    pub confirmed: AtomicU64,
    pub nacked: AtomicU64,
    /// Deliveries the published messages should cause (a fanout to ten queues counts ten).
    pub routed: AtomicU64,
    /// Distinct deliveries seen by consumers.
    pub delivered: AtomicU64,
    pub duplicates: AtomicU64,
    /// Nanoseconds since `start` of the latest delivery and publish.
    pub last_delivery_ns: AtomicU64,
    pub last_publish_ns: AtomicU64,
    /// Consumers made progress: producers held by the in-flight cap look again.
    pub progress: Notify,
    pub stop_consumers: Notify,
    pub seen: Vec<Mutex<Seen>>,
}

impl Shared {
    pub fn new(queues: usize) -> Self {
        Shared {
            start: Instant::now(),
            published: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            nacked: AtomicU64::new(0),
            routed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            last_delivery_ns: AtomicU64::new(0),
            last_publish_ns: AtomicU64::new(0),
            progress: Notify::new(),
            stop_consumers: Notify::new(),
            seen: (0..queues).map(|_| Mutex::new(Seen::default())).collect(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn in_flight(&self) -> u64 {
        self.routed
            .load(Relaxed)
            .saturating_sub(self.delivered.load(Relaxed))
    }
}

/// The message ids one queue has delivered, a bit per (producer, sequence).
#[derive(Default)]
pub struct Seen {
    per_producer: Vec<Vec<u64>>,
    pub distinct: u64,
}

impl Seen {
    /// `false` if the message was seen before.
    pub fn insert(&mut self, id: u64) -> bool {
        let (producer, seq) = split_id(id);
        let producer = producer as usize;
        if self.per_producer.len() <= producer {
            self.per_producer.resize_with(producer + 1, Vec::new);
        }
        let bits = &mut self.per_producer[producer];
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if bits.len() <= word {
            bits.resize((word + 1).next_power_of_two(), 0);
        }
        let fresh = bits[word] & (1 << bit) == 0;
        bits[word] |= 1 << bit;
        self.distinct += fresh as u64;
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_counts_distinct_ids_and_flags_repeats() {
        let mut seen = Seen::default();
        assert!(seen.insert(message_id(0, 0)));
        assert!(seen.insert(message_id(3, 1_000_000)));
        assert!(!seen.insert(message_id(3, 1_000_000)));
        assert!(seen.insert(message_id(3, 999_999)));
        assert_eq!(seen.distinct, 3);
        assert_eq!(split_id(message_id(999, 12345)), (999, 12345));
    }
}
