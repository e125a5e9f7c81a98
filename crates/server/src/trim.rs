//! Gives memory back to the system after a burst of messages or of
//! connections has gone. glibc's malloc keeps freed memory in its arenas;
//! without this the broker's RSS would stay at its peak long after the
//! queues emptied or the clients left.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use warren_broker::MemoryMonitor;

/// Connections closed since the last look that make a trim worthwhile
/// (each held about 14 KiB).
const CLOSED_CONNECTIONS: u64 = 1000;
/// The same for deleted queues (a task, its maps and bindings each).
const DELETED_QUEUES: u64 = 1000;

/// Every few seconds, if queued message memory has fallen well below its
/// peak since the last look, or many connections have closed or queues
/// been deleted, asks malloc to release its free pages.
pub fn spawn(memory: Arc<MemoryMonitor>, closed_connections: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let (mut closed_before, mut deleted_before) = (0, 0);
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let closed = closed_connections.load(Ordering::Relaxed);
            let deleted = memory.queues_deleted();
            let messages_gone = memory.take_peak() > memory.used() + 64 * 1024 * 1024;
            if messages_gone
                || closed - closed_before >= CLOSED_CONNECTIONS
                || deleted - deleted_before >= DELETED_QUEUES
            {
                tokio::task::spawn_blocking(trim);
            }
            (closed_before, deleted_before) = (closed, deleted);
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn trim() {
    // SAFETY: malloc_trim only walks glibc's own free lists; it takes no
    // pointers from us and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn trim() {}
