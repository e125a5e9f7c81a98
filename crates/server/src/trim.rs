//! Gives memory back to the system after a burst of messages has gone.
//! glibc's malloc keeps freed memory in its arenas; without this the
//! broker's RSS would stay at its peak long after the queues emptied.

use std::sync::Arc;
use std::time::Duration;
use warren_broker::MemoryMonitor;

/// Every few seconds, if queued message memory has fallen well below its
/// peak since the last look, asks malloc to release its free pages.
pub fn spawn(memory: Arc<MemoryMonitor>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            if memory.take_peak() > memory.used() + 64 * 1024 * 1024 {
                tokio::task::spawn_blocking(trim);
            }
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks glibc's own free lists; it takes no
    // pointers from us and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
