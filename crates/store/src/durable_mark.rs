//! How far a publisher's records are durable: the writer thread (or another
//! keeper) raises it, the connection that published reads it to send its
//! confirms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// How far a publisher's records are durable. One per channel: the writer
/// raises `synced` (or `failed`) to the channel's sequence numbers after
/// each group commit and rings the connection's bell.
#[derive(Debug)]
pub struct DurableMark {
    synced: AtomicU64,
    failed: AtomicU64,
    bell: Arc<Notify>,
}

impl DurableMark {
    pub fn new(bell: Arc<Notify>) -> Self {
        DurableMark {
            synced: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bell,
        }
    }

    /// Every record up to this sequence number is on disk.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Records up to this sequence number could not be written.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Acquire)
    }

    /// Raised by whoever keeps the records (the store's writer; any other
    /// keeper of a broker's queue kind): up to `seq`, safe or failed.
    pub fn advance(&self, seq: u64, ok: bool) {
        let counter = if ok { &self.synced } else { &self.failed };
        counter.fetch_max(seq, Ordering::AcqRel);
        self.bell.notify_one();
    }
}
