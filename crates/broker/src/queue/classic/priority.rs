//! Priority queues (`x-max-priority`, reference §4): a message's priority
//! is its `priority` property capped at the queue's maximum (absent: 0);
//! higher priorities go first, in publish order within one, and a message
//! put back returns to its place in its priority. Each priority has its own
//! run (as the plain queue: in order, with put-back messages by id) and a
//! bit per priority says which runs hold messages, so taking the next one
//! costs the same however many priorities there are. A priority queue keeps
//! its messages in memory (its recovered messages are read back at start).

use std::collections::{BTreeMap, VecDeque};

use super::backlog::Entry;
use super::QueueState;

#[derive(Default)]
struct Run {
    ready: VecDeque<Entry>,
    put_back: BTreeMap<u64, Entry>,
}

impl Run {
    fn len(&self) -> usize {
        self.ready.len() + self.put_back.len()
    }

    fn put_back_first(&self) -> bool {
        match (self.put_back.keys().next(), self.ready.front()) {
            (Some(p), Some(r)) => *p < r.id,
            (Some(_), None) => true,
            _ => false,
        }
    }

    fn front(&self) -> Option<&Entry> {
        match self.put_back_first() {
            true => self.put_back.values().next(),
            false => self.ready.front(),
        }
    }

    fn pop(&mut self) -> Option<Entry> {
        match self.put_back_first() {
            true => self.put_back.pop_first().map(|(_, e)| e),
            false => self.ready.pop_front(),
        }
    }
}

/// A priority queue's ready messages.
pub(super) struct Levels {
    max: u8,
    runs: Vec<Run>,
    /// Bit p set: priority p's run holds messages.
    occupied: [u64; 4],
    len: usize,
}

impl Levels {
    pub fn new(max: u8) -> Levels {
        Levels {
            max,
            runs: (0..=max).map(|_| Run::default()).collect(),
            occupied: [0; 4],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    fn highest(&self) -> Option<usize> {
        (0..4).rev().find_map(|w| {
            let bits = self.occupied[w];
            (bits != 0).then(|| w * 64 + 63 - bits.leading_zeros() as usize)
        })
    }

    fn mark(&mut self, priority: usize) {
        let (w, b) = (priority / 64, priority % 64);
        match self.runs[priority].len() {
            0 => self.occupied[w] &= !(1 << b),
            _ => self.occupied[w] |= 1 << b,
        }
    }

    /// A new message, at the end of its priority.
    pub fn push(&mut self, mut entry: Entry) {
        entry.priority = priority_of(&entry.message.header).min(self.max);
        let p = usize::from(entry.priority);
        self.runs[p].ready.push_back(entry);
        self.len += 1;
        self.mark(p);
    }

    /// A message taken earlier, back to its place in its priority.
    pub fn put_back(&mut self, entry: Entry) {
        let p = usize::from(entry.priority);
        self.runs[p].put_back.insert(entry.id, entry);
        self.len += 1;
        self.mark(p);
    }

    pub fn front(&self) -> Option<&Entry> {
        self.runs[self.highest()?].front()
    }

    pub fn pop(&mut self) -> Option<Entry> {
        let p = self.highest()?;
        let entry = self.runs[p].pop();
        self.len -= usize::from(entry.is_some());
        self.mark(p);
        entry
    }

    pub fn take_all(&mut self) -> Vec<Entry> {
        let mut all = Vec::with_capacity(self.len);
        while let Some(entry) = self.pop() {
            all.push(entry);
        }
        all
    }
}

impl QueueState {
    /// Recovered messages of a priority queue, read back and put in order.
    pub(super) fn load_by_priority(&mut self) {
        loop {
            let to_load = self.backlog.to_load(super::READ_AHEAD);
            if !to_load.is_empty() {
                self.page_in(&to_load);
            }
            let mut moved = false;
            while let Some(entry) = self.backlog.pop() {
                moved = true;
                if let Some(levels) = &mut self.by_priority {
                    levels.push(entry);
                }
            }
            if to_load.is_empty() && !moved {
                break;
            }
        }
    }
}

/// The `priority` property of a content header payload (validated when it
/// was published), read in place: the properties before it are two short
/// strings and a table, each skipped by its length.
fn priority_of(header: &[u8]) -> u8 {
    const CONTENT_TYPE: u16 = 1 << 15;
    const CONTENT_ENCODING: u16 = 1 << 14;
    const HEADERS: u16 = 1 << 13;
    const DELIVERY_MODE: u16 = 1 << 12;
    const PRIORITY: u16 = 1 << 11;
    let read = || -> Option<u8> {
        let flags = u16::from_be_bytes(header.get(12..14)?.try_into().ok()?);
        if flags & PRIORITY == 0 {
            return Some(0);
        }
        let mut at = 14;
        for bit in [CONTENT_TYPE, CONTENT_ENCODING] {
            if flags & bit != 0 {
                at += 1 + usize::from(*header.get(at)?);
            }
        }
        if flags & HEADERS != 0 {
            let len = u32::from_be_bytes(header.get(at..at + 4)?.try_into().ok()?);
            at += 4 + len as usize;
        }
        if flags & DELIVERY_MODE != 0 {
            at += 1;
        }
        header.get(at).copied()
    };
    read().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use warren_codec::{BasicProperties, ContentHeader, FieldTable, FieldValue};

    #[test]
    fn the_priority_is_read_in_place_whatever_comes_before_it() {
        let encoded = |properties: BasicProperties| {
            let mut buf = BytesMut::new();
            ContentHeader {
                class_id: 60,
                weight: 0,
                body_size: 1,
                properties,
            }
            .encode(&mut buf);
            buf.freeze()
        };
        assert_eq!(priority_of(&encoded(BasicProperties::default())), 0);
        let full = BasicProperties {
            content_type: Some("text/plain".try_into().unwrap()),
            content_encoding: Some("gzip".try_into().unwrap()),
            headers: Some(FieldTable::new().with("a", FieldValue::I32(7))),
            delivery_mode: Some(2),
            priority: Some(7),
            message_id: Some("m".try_into().unwrap()),
            ..Default::default()
        };
        assert_eq!(priority_of(&encoded(full)), 7);
        let only = BasicProperties {
            priority: Some(200),
            ..Default::default()
        };
        assert_eq!(priority_of(&encoded(only)), 200);
    }

    #[test]
    fn the_highest_occupied_priority_goes_first() {
        let mut levels = Levels::new(255);
        let entry = |id, priority| Entry {
            id,
            message: crate::message::Message {
                exchange: warren_codec::ShortString::from_static(""),
                routing_key: warren_codec::ShortString::from_static("q"),
                header: bytes::Bytes::new(),
                body: bytes::Bytes::new(),
                stored: None,
                expires_at: 0,
            },
            redelivered: false,
            priority,
        };
        for (id, p) in [(0, 3), (1, 200), (2, 3), (3, 64), (4, 63)] {
            levels.put_back(entry(id, p));
        }
        let order: Vec<u64> = levels.take_all().iter().map(|e| e.id).collect();
        assert_eq!(order, [1, 3, 4, 0, 2]);
        assert_eq!(levels.len(), 0);
        assert!(levels.front().is_none());
    }
}
