//! A queue's ready messages, in order, some of them only on disk.
//!
//! Three runs, oldest first: `ready` (in memory), `paged` (stored messages
//! whose bodies were dropped: 24 bytes each), `tail` (in memory, newer than
//! the paged run). A queue over its memory budget moves stored messages into
//! the paged run from the runs' meeting points; delivery reads the paged run
//! back from the front, several at a time.

use std::collections::VecDeque;

use crate::message::Message;

pub(super) struct Entry {
    pub id: u64,
    pub message: Message,
    pub redelivered: bool,
    /// Its priority in a priority queue (0 elsewhere).
    pub priority: u8,
}

/// A message whose body is only in the store.
#[derive(Clone, Copy)]
pub(super) struct Paged {
    pub id: u64,
    pub stored: u64,
    pub redelivered: bool,
    /// Its deadline as the entry had it ([`UNKNOWN`] until read back, for
    /// messages recovered at startup).
    pub expires_at: u64,
}

/// The deadline of a recovered message not yet read back.
pub(super) const UNKNOWN: u64 = u64::MAX;

#[derive(Default)]
pub(super) struct Backlog {
    ready: VecDeque<Entry>,
    paged: VecDeque<Paged>,
    tail: VecDeque<Entry>,
}

impl Backlog {
    pub fn len(&self) -> usize {
        self.ready.len() + self.paged.len() + self.tail.len()
    }

    pub fn push(&mut self, entry: Entry) {
        if self.paged.is_empty() {
            self.ready.push_back(entry);
        } else {
            self.tail.push_back(entry);
        }
    }

    /// Messages recovered from the store start paged.
    pub fn push_paged(&mut self, paged: Paged) {
        self.paged.push_back(paged);
    }

    /// Puts back a message just taken (its consumer had no room).
    pub fn push_front(&mut self, entry: Entry) {
        self.ready.push_front(entry);
    }

    /// The paged messages that must be read before the next `pop`, if any.
    pub fn to_load(&self, at_most: usize) -> Vec<Paged> {
        if !self.ready.is_empty() {
            return Vec::new();
        }
        self.paged.iter().take(at_most).copied().collect()
    }

    /// Replaces the first paged messages with what was read back.
    pub fn loaded(&mut self, entries: impl IntoIterator<Item = Entry>) {
        for entry in entries {
            self.paged.pop_front();
            self.ready.push_back(entry);
        }
        if self.paged.is_empty() {
            self.ready.append(&mut self.tail);
        }
    }

    /// Drops the first paged message (it could not be read).
    pub fn skip_paged(&mut self) -> Option<Paged> {
        let skipped = self.paged.pop_front();
        if self.paged.is_empty() {
            self.ready.append(&mut self.tail);
        }
        skipped
    }

    /// The id of the next message, without loading it.
    pub fn front_id(&self) -> Option<u64> {
        self.ready
            .front()
            .map(|e| e.id)
            .or_else(|| self.paged.front().map(|p| p.id))
            .or_else(|| self.tail.front().map(|e| e.id))
    }

    /// The next message's deadline, without loading it.
    pub fn front_deadline(&self) -> Option<u64> {
        self.ready
            .front()
            .map(|e| e.message.expires_at)
            .or_else(|| self.paged.front().map(|p| p.expires_at))
            .or_else(|| self.tail.front().map(|e| e.message.expires_at))
    }

    /// The next message, if it is in memory (call `to_load`/`loaded` first).
    pub fn pop(&mut self) -> Option<Entry> {
        if self.ready.is_empty() && self.paged.is_empty() {
            self.ready.append(&mut self.tail);
        }
        self.ready.pop_front()
    }

    /// Moves stored messages to disk only, nearest the paged run first,
    /// until `free` bytes are released or nothing more can go; returns the
    /// bytes released. `written` says whether a stored id is on disk yet.
    pub fn page_out(&mut self, free: usize, written: impl Fn(u64) -> bool) -> usize {
        let mut freed = 0;
        let pageable = |e: &Entry| e.message.stored.filter(|s| written(*s));
        // The tail's oldest go to the end of the paged run.
        while freed < free {
            let Some(stored) = self.tail.front().and_then(pageable) else {
                break;
            };
            let e = self.tail.pop_front().expect("front exists");
            freed += e.message.size();
            self.paged.push_back(Paged {
                id: e.id,
                stored,
                redelivered: e.redelivered,
                expires_at: e.message.expires_at,
            });
        }
        if !self.tail.is_empty() {
            return freed;
        }
        // Then the ready run's newest go to the front of the paged run.
        while freed < free {
            let Some(stored) = self.ready.back().and_then(pageable) else {
                break;
            };
            let e = self.ready.pop_back().expect("back exists");
            freed += e.message.size();
            self.paged.push_front(Paged {
                id: e.id,
                stored,
                redelivered: e.redelivered,
                expires_at: e.message.expires_at,
            });
        }
        freed
    }

    /// Everything, for purge and delete.
    pub fn take_all(&mut self) -> (Vec<Entry>, Vec<Paged>) {
        let mut loaded: Vec<Entry> = self.ready.drain(..).collect();
        loaded.extend(self.tail.drain(..));
        (loaded, self.paged.drain(..).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use warren_codec::ShortString;

    fn entry(id: u64) -> Entry {
        Entry {
            id,
            message: Message {
                exchange: ShortString::from_static(""),
                routing_key: ShortString::from_static("q"),
                header: Bytes::new(),
                body: Bytes::from(vec![0u8; 100]),
                stored: Some(1000 + id),
                expires_at: 0,
            },
            redelivered: false,
            priority: 0,
        }
    }

    /// Pops everything, reading paged messages back as the queue does.
    fn drain(b: &mut Backlog) -> Vec<u64> {
        let mut ids = Vec::new();
        loop {
            let to_load = b.to_load(2);
            if !to_load.is_empty() {
                b.loaded(to_load.iter().map(|p| entry(p.id)));
                continue;
            }
            match b.pop() {
                Some(e) => ids.push(e.id),
                None => return ids,
            }
        }
    }

    #[test]
    fn paging_out_and_back_keeps_queue_order() {
        let mut b = Backlog::default();
        for id in 0..6 {
            b.push(entry(id));
        }
        // Page out the newest half: ready 0..3, paged 3..6.
        let freed = b.page_out(3 * entry(0).message.size(), |_| true);
        assert_eq!(freed, 3 * entry(0).message.size());
        // Arrivals while messages are paged go to the tail, behind them.
        b.push(entry(6));
        b.push(entry(7));
        assert_eq!(b.len(), 8);
        assert_eq!(b.front_id(), Some(0));
        assert_eq!(drain(&mut b), (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn only_messages_on_disk_are_paged_out() {
        let mut b = Backlog::default();
        for id in 0..4 {
            b.push(entry(id));
        }
        // Ids 2 and 3 (stored 1002, 1003) are not written yet: the newest
        // stay, so nothing behind them can go either.
        assert_eq!(b.page_out(usize::MAX, |stored| stored < 1002), 0);
        assert_eq!(drain(&mut b), vec![0, 1, 2, 3]);
    }

    #[test]
    fn an_unreadable_paged_message_is_skipped_and_order_resumes() {
        let mut b = Backlog::default();
        for id in 0..3 {
            b.push_paged(Paged {
                id,
                stored: 1000 + id,
                redelivered: true,
                expires_at: 0,
            });
        }
        b.push(entry(3));
        assert_eq!(b.skip_paged().map(|p| p.id), Some(0));
        assert_eq!(drain(&mut b), vec![1, 2, 3]);
    }
}
