//! One channel's broker-side state: consumers, delivery tags and the
//! messages awaiting acknowledgement, prefetch, confirms and transactions.

use rustc_hash::FxHashMap;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::sync::Arc;
use warren_codec::{FieldTable, ShortString};
use warren_protocol::AmqpError;

use crate::errors;
use crate::exchange::Exchange;
use crate::memory::MemoryMonitor;
use crate::message::Message;
use crate::queue::{ChannelLimit, QueueHandle};
use crate::safekeeping::{Awaited, Marks};
use crate::stats::{ChannelCounts, ChannelStats, Registered};

/// A delivery (or get-ok) that awaits acknowledgement.
#[derive(Clone)]
pub struct Outstanding {
    pub tag: u64,
    pub queue: Arc<QueueHandle>,
    pub id: u64,
    /// Counts against the channel's prefetch (consumer deliveries do, gets do not).
    pub counted: bool,
    /// When it was sent (the input or delivery batch's clock), for the
    /// consumer acknowledgement timeout.
    pub sent: std::time::Instant,
}

/// A publish held until tx.commit.
pub struct HeldPublish {
    pub exchange: Arc<Exchange>,
    pub message: Message,
    pub headers: Option<FieldTable>,
    /// Routing keys from its `CC` and `BCC` headers.
    pub cc: Vec<ShortString>,
    pub mandatory: bool,
    pub persistent: bool,
}

/// An acknowledgement held until tx.commit: `None` acks, `Some(requeue)` rejects.
pub struct HeldSettle {
    pub entries: Vec<Outstanding>,
    pub requeue: Option<bool>,
}

/// What tx.commit will carry out. Its publishes count against the memory
/// alarm until the transaction ends (committed, rolled back or dropped with
/// its channel).
#[derive(Default)]
pub struct Transaction {
    pub publishes: Vec<HeldPublish>,
    pub settles: Vec<HeldSettle>,
    held_bytes: usize,
    memory: Option<Arc<MemoryMonitor>>,
}

impl Transaction {
    /// Holds a publish; the bytes now held, or the limit it would exceed.
    pub fn hold(&mut self, publish: HeldPublish, memory: &Arc<MemoryMonitor>) -> Result<(), usize> {
        let size = publish.message.size();
        let limit = memory.transaction_limit();
        if limit != 0 && self.held_bytes + size > limit {
            return Err(limit);
        }
        memory.add(size);
        self.memory.get_or_insert_with(|| memory.clone());
        self.held_bytes += size;
        self.publishes.push(publish);
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if let Some(memory) = &self.memory {
            memory.sub(self.held_bytes);
        }
    }
}

pub struct OpenChannel {
    next_tag: u64,
    unacked: VecDeque<Outstanding>,
    /// Consumer tag → the queue it consumes from.
    pub consumers: FxHashMap<ShortString, Arc<QueueHandle>>,
    /// basic.qos global=false: prefetch for consumers started from now on.
    pub consumer_prefetch: u32,
    pub limit: Arc<ChannelLimit>,
    /// confirm.select: the sequence number of the last publish.
    pub confirm: Option<u64>,
    /// The last sequence number acknowledged to the client.
    pub confirmed: u64,
    /// Publishes waiting for their keepers before their confirm, in order.
    pub awaited: VecDeque<Awaited>,
    /// How far each keeper has made this channel's publishes safe.
    pub marks: Marks,
    pub tx: Option<Transaction>,
    /// The queue an empty queue name stands for.
    pub last_queue: Option<ShortString>,
    /// Counted as the channel works; copied out by [`report`](Self::report).
    pub counts: ChannelCounts,
    stats: Registered<ChannelStats>,
}

impl OpenChannel {
    pub fn new(marks: Marks, stats: Registered<ChannelStats>) -> Self {
        OpenChannel {
            counts: ChannelCounts::default(),
            stats,
            awaited: VecDeque::new(),
            marks,
            next_tag: 0,
            unacked: VecDeque::new(),
            consumers: FxHashMap::default(),
            consumer_prefetch: 0,
            limit: Arc::new(ChannelLimit::default()),
            confirm: None,
            confirmed: 0,
            tx: None,
            last_queue: None,
        }
    }

    /// Copies the channel's counts out for readers of the statistics.
    pub fn report(&mut self) {
        self.counts.confirmed = self.confirmed;
        self.counts.unacked = self.unacked.len() as u64;
        self.counts.consumers = self.consumers.len() as u64;
        self.stats.stats.write(&self.counts);
    }

    pub fn next_tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    pub fn track(&mut self, entry: Outstanding) {
        self.unacked.push_back(entry);
    }

    /// When the oldest delivery still awaiting its acknowledgement was sent.
    pub fn oldest_unacked(&self) -> Option<std::time::Instant> {
        self.unacked.front().map(|o| o.sent)
    }

    /// Takes the deliveries an ack/nack/reject names; 406 for a tag that is
    /// not outstanding (`multiple` with tag 0 takes everything).
    pub fn take(&mut self, tag: u64, multiple: bool) -> Result<Vec<Outstanding>, AmqpError> {
        if multiple && tag == 0 {
            return Ok(self.unacked.drain(..).collect());
        }
        let index = self
            .unacked
            .binary_search_by_key(&tag, |o| o.tag)
            .map_err(|_| errors::unknown_delivery_tag(tag))?;
        if multiple {
            Ok(self.unacked.drain(..=index).collect())
        } else {
            Ok(self.unacked.remove(index).into_iter().collect())
        }
    }

    pub fn take_all(&mut self) -> Vec<Outstanding> {
        self.unacked.drain(..).collect()
    }

    /// Every delivery not settled for good: the unacknowledged, and those
    /// whose ack or reject an uncommitted transaction holds (a channel
    /// closing with them requeues them, as RabbitMQ does).
    pub fn take_unsettled(&mut self) -> Vec<Outstanding> {
        let mut entries = self.take_all();
        if let Some(tx) = &mut self.tx {
            for settle in tx.settles.drain(..) {
                entries.extend(settle.entries);
            }
        }
        entries
    }

    /// Puts back deliveries whose acknowledgement a rollback undid.
    pub fn restore(&mut self, entries: Vec<Outstanding>) {
        self.unacked.extend(entries);
        self.unacked.make_contiguous().sort_by_key(|o| o.tag);
    }

    /// The queues this channel's consumers read from, each once.
    pub fn consumed_queues(&self) -> Vec<Arc<QueueHandle>> {
        let mut queues: Vec<Arc<QueueHandle>> = self.consumers.values().cloned().collect();
        queues.sort_unstable_by_key(|q| Arc::as_ptr(q) as usize);
        queues.dedup_by(|a, b| Arc::ptr_eq(a, b));
        queues
    }
}

/// Groups entries by queue, keeping each queue's ids in order.
pub fn by_queue(entries: &[Outstanding]) -> Vec<(Arc<QueueHandle>, SmallVec<[u64; 4]>)> {
    let mut groups: Vec<(Arc<QueueHandle>, SmallVec<[u64; 4]>)> = Vec::new();
    for entry in entries {
        match groups
            .iter_mut()
            .find(|(q, _)| Arc::ptr_eq(q, &entry.queue))
        {
            Some((_, ids)) => ids.push(entry.id),
            None => groups.push((entry.queue.clone(), smallvec::smallvec![entry.id])),
        }
    }
    groups
}
