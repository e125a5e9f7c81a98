//! The broker's memory alarm. What grows with clients' input is counted:
//! messages in queues (with their fixed cost), publishes held in
//! uncommitted transactions, partly received bodies. Above the high
//! watermark publishers wait (and are told with connection.blocked) until
//! it comes back down. The process's real memory (RSS, sampled by the
//! server) raises the same alarm, as RabbitMQ compares its whole VM's.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use tokio::sync::Notify;

#[derive(Debug)]
pub struct MemoryMonitor {
    used: AtomicUsize,
    /// The highest `used` since the last `take_peak`.
    peak: AtomicUsize,
    /// 0: no limit.
    limit: usize,
    /// The process's resident memory is above `limit`.
    process_over: AtomicBool,
    /// Bytes of publishes one channel's open transaction may hold (0: no limit).
    transaction_limit: AtomicUsize,
    /// Queues deleted so far: after many, memory is worth giving back.
    queues_deleted: AtomicU64,
    below: Notify,
}

impl MemoryMonitor {
    pub fn new(limit: usize) -> Self {
        MemoryMonitor {
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limit,
            process_over: AtomicBool::new(false),
            transaction_limit: AtomicUsize::new(0),
            queues_deleted: AtomicU64::new(0),
            below: Notify::new(),
        }
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn is_over(&self) -> bool {
        self.limit != 0 && (self.used() >= self.limit || self.process_over.load(Ordering::Relaxed))
    }

    /// The server's view of the process's resident memory against the limit.
    pub fn set_process_over(&self, over: bool) {
        let was = self.process_over.swap(over, Ordering::Relaxed);
        if was && !over {
            self.below.notify_waiters();
        }
    }

    pub fn set_transaction_limit(&self, bytes: usize) {
        self.transaction_limit.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn queue_deleted(&self) {
        self.queues_deleted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn queues_deleted(&self) -> u64 {
        self.queues_deleted.load(Ordering::Relaxed)
    }

    pub fn transaction_limit(&self) -> usize {
        self.transaction_limit.load(Ordering::Relaxed)
    }

    /// Counts bytes that input holds (partly received bodies, say).
    pub fn add(&self, bytes: usize) {
        let now = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        // A plain load first: while usage grows this is one more atomic,
        // and none once the peak is above it.
        if now > self.peak.load(Ordering::Relaxed) {
            self.peak.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// The peak since the last call; the next peak starts from `used`.
    pub fn take_peak(&self) -> usize {
        self.peak.swap(self.used(), Ordering::Relaxed)
    }

    /// Uncounts what [`add`](Self::add) counted.
    pub fn sub(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::Relaxed);
        if self.limit != 0 && before >= self.limit && before - bytes < self.limit {
            self.below.notify_waiters();
        }
    }

    /// Returns once usage is below the watermark.
    pub async fn wait_below(&self) {
        loop {
            let below = self.below.notified();
            if !self.is_over() {
                return;
            }
            below.await;
        }
    }
}

/// A fraction (RabbitMQ's classic default: 0.4) of the memory Warren may
/// use: the machine's, or its cgroup's limit when lower.
pub fn default_limit(fraction: f64) -> usize {
    (crate::machine_memory::available() as f64 * fraction) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_peak_is_kept_until_taken() {
        let m = MemoryMonitor::new(0);
        m.add(100);
        m.sub(80);
        assert_eq!(m.take_peak(), 100);
        assert_eq!(
            m.take_peak(),
            20,
            "after taking, the peak restarts from what is used"
        );
    }

    #[tokio::test]
    async fn waiters_wake_when_usage_drops_below() {
        let m = Arc::new(MemoryMonitor::new(100));
        m.add(150);
        assert!(m.is_over());
        let waiter = tokio::spawn({
            let m = m.clone();
            async move { m.wait_below().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        m.sub(60);
        waiter.await.unwrap();
        assert!(!m.is_over());
    }
}
