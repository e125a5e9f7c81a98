//! The process's resident memory against the memory watermark: what the
//! broker counts (messages, transactions, partial bodies) is most of its
//! memory, but not all of it; RSS catches the rest, as RabbitMQ compares
//! its whole VM's memory. What the process held when the broker started
//! (its code, the runtime; a test harness around it) is left out, so that a
//! small watermark still means room for messages.

use std::sync::Arc;
use std::time::Duration;
use warren_broker::MemoryMonitor;

/// How often RSS is read (one small read of /proc).
const INTERVAL: Duration = Duration::from_millis(200);

/// Growth below this is never an alarm on its own: allocator slack, thread
/// stacks and runtime buffers of this size are not a memory problem, and a
/// tiny watermark then means what the broker counts (freed memory that
/// malloc keeps would otherwise hold the alarm on for good).
const RSS_FLOOR: usize = 16 << 20;

/// The resident set size in bytes, from /proc/self/statm.
pub fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * usize::try_from(page).ok()?)
}

pub fn spawn(memory: Arc<MemoryMonitor>) {
    if memory.limit() == 0 || resident_bytes().is_none() {
        return;
    }
    let baseline = resident_bytes().unwrap_or(0);
    tokio::spawn(async move {
        let mut over = false;
        let mut alarm = false;
        let mut samples = 0u64;
        loop {
            samples += 1;
            tokio::time::sleep(INTERVAL).await;
            let Some(rss) = resident_bytes() else {
                continue;
            };
            let now_over = rss.saturating_sub(baseline) >= memory.limit().max(RSS_FLOOR);
            if now_over && !over {
                tracing::warn!(
                    rss,
                    limit = memory.limit(),
                    "memory alarm: resident memory is above the watermark"
                );
            }
            if now_over && memory.used() < memory.limit() && samples.is_multiple_of(5) {
                // What is counted is under the watermark: the rest may be
                // freed memory still in malloc's arenas.
                tokio::task::spawn_blocking(crate::trim::trim);
            }
            memory.set_process_over(now_over);
            over = now_over;
            // The alarm as publishers see it (counted usage or resident
            // memory): logged when it sets and when it clears.
            let alarm_now = memory.is_over();
            if alarm_now != alarm {
                let (used, limit) = (memory.used(), memory.limit());
                if alarm_now {
                    tracing::warn!(used, rss, limit, "memory alarm set: publishers are blocked");
                } else {
                    tracing::info!(
                        used,
                        rss,
                        limit,
                        "memory alarm cleared: publishers are unblocked"
                    );
                }
                alarm = alarm_now;
            }
        }
    });
}
