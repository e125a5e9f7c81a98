//! Wall-clock milliseconds since the Unix epoch, for deadlines that must
//! outlive the process (message TTL, queue expiry), read from the
//! monotonic instants the batches already take.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();

/// The wall-clock time of `now`, in ms since the epoch.
pub fn epoch_ms(now: Instant) -> u64 {
    let (at, ms) = *ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        (Instant::now(), wall)
    });
    match now.checked_duration_since(at) {
        Some(after) => ms + after.as_millis() as u64,
        None => ms.saturating_sub(at.duration_since(now).as_millis() as u64),
    }
}

/// The instant of an epoch time (for timers), `now` being the present.
pub fn instant_of(epoch: u64, now: Instant) -> Instant {
    let present = epoch_ms(now);
    now + std::time::Duration::from_millis(epoch.saturating_sub(present))
}
