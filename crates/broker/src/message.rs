//! A published message as queues hold it: shared buffers, no copies.

use bytes::Bytes;
use warren_codec::ShortString;

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
}

impl Message {
    /// A message read back from the store.
    pub fn from_stored(stored: warren_store::StoredMessage) -> Option<Message> {
        Some(Message {
            exchange: ShortString::try_from(stored.exchange).ok()?,
            routing_key: ShortString::try_from(stored.routing_key).ok()?,
            header: stored.header,
            body: stored.body,
            stored: Some(stored.id),
        })
    }

    /// What holding the message costs, for memory accounting.
    pub fn size(&self) -> usize {
        self.header.len() + self.body.len()
    }
}
