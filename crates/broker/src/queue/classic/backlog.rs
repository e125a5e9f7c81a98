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
}

/// A message whose body is only in the store.
#[derive(Clone, Copy)]
pub(super) struct Paged {
    pub id: u64,
    pub stored: u64,
    pub redelivered: bool,
}

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
