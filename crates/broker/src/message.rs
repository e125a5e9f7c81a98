//! A published message as queues hold it: shared buffers, no copies.

use bytes::Bytes;
use std::num::NonZeroU64;
use warren_codec::ShortString;

/// See [`Message::size`].
const FIXED_COST: usize = std::mem::size_of::<Message>() + 64;

/// Messages up to this size are copied when they have to wait; bigger ones
/// are most of the buffer they live in anyway.
const UNPIN_BELOW: usize = 4096;

/// A message's id in the store, in 8 bytes even as an `Option` (messages
/// are moved between tasks by value, so every byte of them counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreId(NonZeroU64);

impl StoreId {
    pub fn new(id: u64) -> StoreId {
        // Ids count from 0: one more is kept.
        StoreId(NonZeroU64::new(id.wrapping_add(1)).unwrap_or(NonZeroU64::MAX))
    }

    pub fn get(self) -> u64 {
        self.0.get() - 1
    }
}

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
    pub stored: Option<StoreId>,
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
            stored: Some(StoreId::new(stored.id)),
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

    /// Messages travel between tasks by value: a field more is a copy more
    /// per hop (measured: 8 bytes cost the fanout scenario ~3 %).
    #[test]
    fn a_message_stays_small() {
        assert_eq!(std::mem::size_of::<Option<StoreId>>(), 8);
        assert!(
            std::mem::size_of::<Message>() <= 144,
            "{}",
            std::mem::size_of::<Message>()
        );
        assert_eq!(StoreId::new(0).get(), 0);
        assert_eq!(StoreId::new(41).get(), 41);
    }
}
