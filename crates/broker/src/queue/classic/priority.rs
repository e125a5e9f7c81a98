//! Priority queues (`x-max-priority`, reference §4): a message's priority
//! is its `priority` property capped at the queue's maximum (absent: 0);
//! higher priorities go first, in publish order within one, and a message
//! put back returns to its place in its priority. The messages are kept in
//! one ordered map keyed by (priority, id), so the cost per message does
//! not depend on how many priorities there are. A priority queue keeps its
//! messages in memory (its recovered messages are read back at start).

use warren_codec::ContentHeader;

use super::backlog::Entry;
use super::QueueState;

/// Ids below this fit beside the priority in one key.
const ID_BITS: u32 = 56;

impl QueueState {
    pub(super) fn enqueue_by_priority(&mut self, mut entry: Entry, max: u8) {
        entry.priority = priority_of(&entry, max);
        self.put_back(entry);
    }

    /// Where a ready message stands in the queue's order: its id, or, in a
    /// priority queue, its priority (highest first) and then its id.
    pub(super) fn order_key(&self, entry: &Entry) -> u64 {
        match self.max_priority {
            None => entry.id,
            Some(_) => (u64::from(255 - entry.priority) << ID_BITS) | entry.id,
        }
    }

    /// Recovered messages of a priority queue, read back and put in order.
    pub(super) fn load_by_priority(&mut self, max: u8) {
        loop {
            let to_load = self.backlog.to_load(super::READ_AHEAD);
            if to_load.is_empty() {
                break;
            }
            self.page_in(&to_load);
            while let Some(entry) = self.backlog.pop() {
                self.enqueue_by_priority(entry, max);
            }
        }
        while let Some(entry) = self.backlog.pop() {
            self.enqueue_by_priority(entry, max);
        }
    }
}

fn priority_of(entry: &Entry, max: u8) -> u8 {
    ContentHeader::summarize(&entry.message.header)
        .ok()
        .and_then(|s| s.priority)
        .unwrap_or(0)
        .min(max)
}
