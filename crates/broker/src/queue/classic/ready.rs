//! The queue's ready messages in queue order: taken in, handed out,
//! put back in their place when requeued, and let go for good.

use super::backlog::Entry;
use super::priority::Levels;
use super::{QueueState, READ_AHEAD};
use crate::message::Message;

impl QueueState {
    pub(super) fn enqueue(&mut self, mut message: Message) {
        // A message no consumer can take is copied out of its read buffer.
        // With consumers it is not: the copy would cost every busy queue an
        // allocation per message (a quarter more CPU in the throughput
        // scenario), and the resident-memory alarm bounds what slow
        // consumers leave pinned. Rejected messages put back are copied
        // too (actor.rs): they wait for another consumer.
        if self.consumers.is_empty() {
            message.unpin();
        }
        self.set_deadline(&mut message, None);
        let id = self.next_id;
        self.next_id += 1;
        self.counts.published += 1;
        // Counted against the watermark by the sender already.
        self.bytes += message.size();
        // Before the entry is built: built, it would be copied once more.
        if self.counts_ready {
            self.ready_in(message.body.len(), false);
        }
        let entry = Entry {
            id,
            message,
            redelivered: false,
            priority: 0,
        };
        match &mut self.by_priority {
            None => self.backlog.push(entry),
            Some(levels) => levels.push(entry),
        }
    }

    pub(super) fn ready_count(&self) -> u32 {
        let by_priority = self.by_priority.as_ref().map_or(0, Levels::len);
        (self.backlog.len() + self.requeued.len() + by_priority) as u32
    }

    /// The next message to hand out: expired ones at the head are dropped.
    pub(super) fn pop(&mut self) -> Option<Entry> {
        loop {
            let entry = self.pop_head()?;
            if !self.expired(&entry) {
                return Some(entry);
            }
            self.expire(entry);
        }
    }

    /// The next message in queue order, no longer ready.
    pub(super) fn pop_head(&mut self) -> Option<Entry> {
        // Returned straight on when nothing counts (no copy kept aside).
        if !self.counts_ready {
            return self.take_head();
        }
        let entry = self.take_head();
        if let Some(e) = &entry {
            self.ready_out(e.message.body.len());
        }
        entry
    }

    /// The next message in queue order: requeued ones keep their place.
    // Inlined into `pop_head`: an entry returned through one more call
    // would be copied once more.
    #[inline(always)]
    fn take_head(&mut self) -> Option<Entry> {
        if let Some(levels) = &mut self.by_priority {
            return levels.pop();
        }
        let requeued_first = match (self.requeued.keys().next(), self.backlog.front_id()) {
            (Some(r), Some(f)) => *r < f,
            (Some(_), None) => true,
            _ => false,
        };
        if requeued_first {
            return self.requeued.pop_first().map(|(_, e)| e);
        }
        loop {
            let to_load = self.backlog.to_load(READ_AHEAD);
            if to_load.is_empty() {
                return self.backlog.pop();
            }
            self.page_in(&to_load);
        }
    }

    pub(super) fn unpop(&mut self, entry: Entry) {
        let in_order = self.by_priority.is_none() && !entry.redelivered;
        if in_order && self.backlog.front_id().is_none_or(|f| entry.id < f) {
            if self.limits.is_some() || self.admission.is_some() {
                self.ready_in(entry.message.body.len(), true);
            }
            self.backlog.push_front(entry);
        } else {
            self.put_back(entry);
        }
    }

    /// A message goes back to its place (in its priority, in a priority
    /// queue).
    pub(super) fn put_back(&mut self, entry: Entry) {
        if self.limits.is_some() || self.admission.is_some() {
            self.ready_in(entry.message.body.len(), true);
        }
        match &mut self.by_priority {
            None => {
                self.requeued.insert(entry.id, entry);
            }
            Some(levels) => levels.put_back(entry),
        }
    }

    /// Every ready message leaves (purge, delete).
    pub(super) fn forget_ready(&mut self) {
        let (mut loaded, paged) = self.backlog.take_all();
        if let Some(levels) = &mut self.by_priority {
            loaded.extend(levels.take_all());
        }
        let requeued = std::mem::take(&mut self.requeued);
        if let Some(admission) = &self.admission {
            let count = loaded.len() + requeued.len() + paged.len();
            let bytes = loaded
                .iter()
                .chain(requeued.values())
                .map(|e| e.message.body.len() as u64)
                .sum();
            admission.left(count as u64, bytes);
        }
        self.ready_body = 0;
        for entry in loaded.iter().chain(requeued.values()) {
            self.forget(entry);
        }
        self.stored_gone.extend(paged.iter().map(|p| p.stored));
    }

    /// A message leaves the queue for good.
    pub(super) fn forget(&mut self, entry: &Entry) {
        self.forget_parts(entry.message.size(), entry.message.stored);
    }

    pub(super) fn forget_parts(&mut self, size: usize, stored: Option<u64>) {
        self.bytes -= size;
        self.memory.sub(size);
        if let (Some(id), Some(_)) = (stored, &self.persistence) {
            self.stored_gone.push(id);
        }
    }
}
