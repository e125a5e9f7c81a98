//! Messages delivered and awaiting their acknowledgement.

use super::backlog::Entry;
use super::QueueState;

pub(super) struct Unacked {
    pub entry: Entry,
    /// The consumer it went to; `None` for basic.get.
    pub consumer: Option<u64>,
}

impl QueueState {
    /// Removes an unacknowledged message, returning it; frees its consumer's slot.
    pub(super) fn settle(&mut self, id: u64) -> Option<Entry> {
        let Unacked { entry, consumer } = self.unacked.remove(&id)?;
        if let Some(serial) = consumer {
            if let Some(c) = self.consumers.iter_mut().find(|c| c.serial == serial) {
                c.unacked = c.unacked.saturating_sub(1);
            }
        }
        Some(entry)
    }
}
