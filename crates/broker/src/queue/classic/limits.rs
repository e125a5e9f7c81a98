//! Length limits (`x-max-length`, `x-max-length-bytes`, reference §3):
//! only ready messages count, and only their bodies' bytes. With
//! `drop-head` (the default) the queue takes the message, offers it to its
//! consumers, then drops from the head (dead-lettered `maxlen`) until it is
//! within its limits again, so a waiting consumer still gets a message
//! even at `x-max-length` 0. With `reject-publish(-dlx)` publishers check
//! the queue's `Admission` before handing a message over; this side keeps
//! its count as messages leave and come back.

use super::backlog::Entry;
use super::QueueState;
use crate::dead_letter::Reason;
use crate::message::Message;

/// A drop-head queue's limits.
pub(super) struct Limits {
    pub max_length: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl QueueState {
    /// A message became ready: new (admitted by its publisher already),
    /// or put back.
    // Out of line: the plain queue's hot paths only test a flag.
    #[inline(never)]
    pub(super) fn ready_in(&mut self, body: usize, put_back: bool) {
        if self.limits.is_some() {
            self.ready_body += body as u64;
        }
        if let (true, Some(admission)) = (put_back, &self.admission) {
            admission.came_back(body as u64);
        }
    }

    /// A message stopped being ready.
    #[inline(never)]
    pub(super) fn ready_out(&mut self, body: usize) {
        if self.limits.is_some() {
            // Saturating: recovered messages' bodies were not counted.
            self.ready_body = self.ready_body.saturating_sub(body as u64);
        }
        if let Some(admission) = &self.admission {
            admission.left(1, body as u64);
        }
    }

    /// Drops from the head until within the limits (drop-head).
    pub(super) fn enforce_limits(&mut self) {
        let Some(limits) = &self.limits else { return };
        let (max_length, max_bytes) = (limits.max_length, limits.max_bytes);
        loop {
            let over = max_length.is_some_and(|max| u64::from(self.ready_count()) > max)
                || max_bytes.is_some_and(|max| self.ready_body > max);
            if !over {
                return;
            }
            let Some(entry) = self.pop_head() else { return };
            self.dead_letter(entry, Reason::Maxlen);
        }
    }

    /// Publishes the queue refused when full (`reject-publish-dlx`).
    pub(super) fn dead_letter_refused(&mut self, messages: Vec<Message>) {
        for message in messages {
            self.bytes += message.size();
            let entry = Entry {
                id: self.next_id,
                message,
                redelivered: false,
                priority: 0,
            };
            self.next_id += 1;
            self.dead_letter(entry, Reason::Maxlen);
        }
    }
}
