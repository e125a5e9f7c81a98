//! A published message as queues hold it: shared buffers, no copies.

use bytes::Bytes;
use warren_codec::ShortString;

/// See [`Message::size`].
const FIXED_COST: usize = std::mem::size_of::<Message>() + 64;

/// Messages up to this size are copied when they have to wait; bigger ones
/// are most of the buffer they live in anyway.
const UNPIN_BELOW: usize = 4096;

/// Cloning a message (for each queue it is routed to) clones four `Bytes`
/// handles; the octets are shared.
#[derive(Debug, Clone)]
pub struct Message {
    pub exchange: ShortString,
    pub routing_key: ShortString,
    /// The content header's payload as published, sent on unchanged.
    pub header: Bytes,
    pub body: Bytes,
    /// Its id in the message store, for the copies held by durable queues
    /// (which write an ack record when it leaves them).
    pub stored: Option<u64>,
    /// When it expires (ms since the epoch; 0: never): from its
    /// `expiration` when published, then, in a queue, the lower of that
    /// and the queue's message TTL.
    pub expires_at: u64,
}

impl Message {
    /// A message read back from the store (its deadline as published;
    /// the queue applies its own TTL).
    pub fn from_stored(stored: warren_store::StoredMessage) -> Option<Message> {
        Some(Message {
            expires_at: stored.expires_at,
            exchange: ShortString::try_from(stored.exchange).ok()?,
            routing_key: ShortString::try_from(stored.routing_key).ok()?,
            header: stored.header,
            body: stored.body,
            stored: Some(stored.id),
        })
    }

    /// What holding the message costs, for memory accounting: its bytes
    /// and its fixed cost (the message, its place in a queue, the buffers'
    /// bookkeeping), so that a flood of empty messages counts too.
    pub fn size(&self) -> usize {
        FIXED_COST + self.header.len() + self.body.len()
    }

    /// Copies names, header and body out of the buffers they are slices of, so
    /// that a small message waiting in a queue does not keep a whole read
    /// buffer alive.
    pub fn unpin(&mut self) {
        if self.header.len() + self.body.len() <= UNPIN_BELOW {
            let copy = |s: &ShortString| {
                ShortString::try_from(Bytes::copy_from_slice(s.as_bytes())).expect("still short")
            };
            self.exchange = copy(&self.exchange);
            self.routing_key = copy(&self.routing_key);
            self.header = Bytes::copy_from_slice(&self.header);
            self.body = Bytes::copy_from_slice(&self.body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Messages travel between tasks by value: every field is copied at
    /// every hop, so a new field needs a reason (and a callgrind figure).
    #[test]
    fn a_message_stays_small() {
        assert!(
            std::mem::size_of::<Message>() <= 152,
            "{}",
            std::mem::size_of::<Message>()
        );
    }
}
