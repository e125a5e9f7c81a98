//! The task that owns one queue: ready messages in order, messages out with
//! consumers awaiting acknowledgement, and the consumers, served round-robin.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, Notify, Semaphore};

use super::backlog::{Backlog, Entry, Paged};
use super::port::Refused;
use super::Persistence;
use super::{
    Command, ConnEvent, ConsumeRefused, ConsumerSpec, DeleteRefused, Delivery, GetOk, QueueHandle,
};
use crate::memory::MemoryMonitor;
use crate::message::Message;

/// Commands handled between two delivery rounds, so that a busy inbox does
/// not starve consumers.
const BATCH: usize = 256;
/// Paged messages read back from the store at once.
const READ_AHEAD: usize = 256;

struct Consumer {
    spec: ConsumerSpec,
    /// Serial number, to find the consumer of an unacknowledged message.
    serial: u64,
    unacked: u32,
}

struct Unacked {
    entry: Entry,
    /// The consumer it went to; `None` for basic.get.
    consumer: Option<u64>,
}

struct QueueState {
    handle: Weak<QueueHandle>,
    wake: Arc<Notify>,
    /// Inbox room for published messages, given back as they are taken in.
    room: Arc<Semaphore>,
    memory: Arc<MemoryMonitor>,
    /// Bytes of the messages held (ready, requeued, unacknowledged).
    bytes: usize,
    /// Set for durable queues when the broker has a store.
    persistence: Option<Persistence>,
    /// Store ids of messages that left, for the next ack record.
    stored_gone: Vec<u64>,
    /// Ready messages in order, some only on disk.
    backlog: Backlog,
    /// Rejected or recovered messages, to go out again before later ones
    /// (RabbitMQ puts them back in their original place).
    requeued: BTreeMap<u64, Entry>,
    unacked: HashMap<u64, Unacked>,
    consumers: Vec<Consumer>,
    /// Where round-robin resumes.
    next_consumer: usize,
    next_id: u64,
    next_serial: u64,
    had_consumers: bool,
    deleted: bool,
}

pub(super) fn spawn(
    handle: Weak<QueueHandle>,
    wake: Arc<Notify>,
    room: Arc<Semaphore>,
    memory: Arc<MemoryMonitor>,
    persistence: Option<Persistence>,
    initial: Vec<u64>,
    inbox: mpsc::Receiver<Command>,
) {
    // Recovered messages stay on disk until delivery needs them.
    let next_id = initial.len() as u64;
    let mut backlog = Backlog::default();
    for (id, stored) in initial.into_iter().enumerate() {
        backlog.push_paged(Paged {
            id: id as u64,
            stored,
            redelivered: true,
        });
    }
    let state = QueueState {
        handle,
        wake,
        room,
        memory,
        bytes: 0,
        persistence,
        stored_gone: Vec::new(),
        backlog,
        requeued: BTreeMap::new(),
        unacked: HashMap::new(),
        consumers: Vec::new(),
        next_consumer: 0,
        next_id,
        next_serial: 0,
        had_consumers: false,
        deleted: false,
    };
    tokio::spawn(state.run(inbox));
}

impl QueueState {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        let wake = self.wake.clone();
        loop {
            tokio::select! {
                biased;
                command = inbox.recv() => match command {
                    Some(command) => self.handle(command),
                    None => break,
                },
                _ = wake.notified() => {}
            }
            for _ in 0..BATCH {
                match inbox.try_recv() {
                    Ok(command) => self.handle(command),
                    Err(_) => break,
                }
            }
            self.page_out();
            self.write_acks().await;
            if self.deleted {
                break;
            }
            self.deliver();
            self.write_acks().await;
        }
        // Publishes still in the inbox of a deleted queue are dropped, and
        // publishers waiting for room learn the queue is gone.
        self.room.close();
        inbox.close();
        while let Ok(command) = inbox.try_recv() {
            if let Command::PublishMany(messages) = command {
                for message in messages {
                    self.memory.sub(message.size());
                    self.stored_gone.extend(message.stored);
                }
            }
        }
        // Their store records are released too.
        self.write_acks().await;
    }

    /// Tells the store which stored messages left this queue for good.
    async fn write_acks(&mut self) {
        if let Some(p) = &self.persistence {
            if !self.stored_gone.is_empty() {
                let ids = std::mem::take(&mut self.stored_gone);
                p.store.ack(p.vhost.clone(), p.queue.clone(), ids).await;
            }
        }
    }

    fn enqueue(&mut self, mut message: Message) {
        // A message no consumer can take is copied out of its read buffer.
        // With consumers it is not: the copy would cost every busy queue an
        // allocation per message (a quarter more CPU in the throughput
        // scenario), and the resident-memory alarm bounds what slow
        // consumers leave pinned.
        if self.consumers.is_empty() {
            message.unpin();
        }
        let id = self.next_id;
        self.next_id += 1;
        // Counted against the watermark by the sender already.
        self.bytes += message.size();
        self.backlog.push(Entry {
            id,
            message,
            redelivered: false,
        });
    }

    fn ready_count(&self) -> u32 {
        (self.backlog.len() + self.requeued.len()) as u32
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::PublishMany(messages) => {
                let count = messages.len().min(super::INBOX_MESSAGES);
                for message in messages {
                    self.enqueue(message);
                }
                self.room.add_permits(count);
            }
            Command::Consume(spec, reply) => {
                let exclusive_held = self.consumers.iter().any(|c| c.spec.exclusive);
                if exclusive_held || (spec.exclusive && !self.consumers.is_empty()) {
                    let _ = reply.send(Err(ConsumeRefused::ExclusiveUse));
                    return;
                }
                self.next_serial += 1;
                self.consumers.push(Consumer {
                    spec,
                    serial: self.next_serial,
                    unacked: 0,
                });
                self.had_consumers = true;
                let _ = reply.send(Ok(()));
            }
            Command::Cancel {
                conn,
                channel,
                tag,
                reply,
            } => {
                self.consumers.retain(|c| {
                    let s = &c.spec;
                    !(s.conn == conn
                        && s.channel == channel
                        && tag.as_ref().is_none_or(|t| *t == s.tag))
                });
                self.next_consumer = 0;
                let handle = self.handle.upgrade();
                let unused = self.had_consumers
                    && self.consumers.is_empty()
                    && handle.is_some_and(|h| h.auto_delete);
                let _ = reply.send(unused);
            }
            Command::Ack(ids) => {
                for id in ids {
                    if let Some(entry) = self.settle(id) {
                        self.forget(&entry);
                    }
                }
            }
            Command::Reject { ids, requeue } => {
                for id in ids {
                    if let Some(mut entry) = self.settle(id) {
                        if requeue {
                            entry.redelivered = true;
                            self.requeued.insert(entry.id, entry);
                        } else {
                            self.forget(&entry);
                        }
                    }
                }
            }
            Command::Get { no_ack, reply } => {
                let got = self.pop().map(|entry| {
                    let remaining = self.ready_count();
                    let ok = GetOk {
                        id: entry.id,
                        message: entry.message.clone(),
                        redelivered: entry.redelivered,
                        remaining,
                    };
                    if no_ack {
                        self.forget(&entry);
                    } else {
                        self.unacked.insert(
                            entry.id,
                            Unacked {
                                entry,
                                consumer: None,
                            },
                        );
                    }
                    ok
                });
                let _ = reply.send(got);
            }
            Command::Purge(reply) => {
                let count = self.ready_count();
                self.forget_ready();
                let _ = reply.send(count);
            }
            Command::Stats(reply) => {
                let _ = reply.send((self.ready_count(), self.consumers.len() as u32));
            }
            Command::Delete {
                if_unused,
                if_empty,
                reply,
            } => {
                if if_unused && !self.consumers.is_empty() {
                    let _ = reply.send(Err(DeleteRefused::InUse));
                    return;
                }
                if if_empty && self.ready_count() > 0 {
                    let _ = reply.send(Err(DeleteRefused::NotEmpty));
                    return;
                }
                for consumer in self.consumers.drain(..) {
                    consumer.spec.port.send_later(ConnEvent::Cancelled {
                        channel: consumer.spec.channel,
                        consumer_tag: consumer.spec.tag,
                    });
                }
                let count = self.ready_count();
                self.forget_ready();
                let unacked: Vec<Unacked> = self.unacked.drain().map(|(_, u)| u).collect();
                for u in unacked {
                    self.forget(&u.entry);
                }
                self.deleted = true;
                let _ = reply.send(Ok(count));
            }
        }
    }

    /// Every ready message leaves (purge, delete).
    fn forget_ready(&mut self) {
        let (loaded, paged) = self.backlog.take_all();
        let requeued = std::mem::take(&mut self.requeued);
        for entry in loaded.iter().chain(requeued.values()) {
            self.forget(entry);
        }
        self.stored_gone.extend(paged.iter().map(|p| p.stored));
    }

    /// A message leaves the queue for good.
    fn forget(&mut self, entry: &Entry) {
        self.forget_parts(entry.message.size(), entry.message.stored);
    }

    fn forget_parts(&mut self, size: usize, stored: Option<u64>) {
        self.bytes -= size;
        self.memory.sub(size);
        if let (Some(id), Some(_)) = (stored, &self.persistence) {
            self.stored_gone.push(id);
        }
    }

    /// Removes an unacknowledged message, returning it; frees its consumer's slot.
    fn settle(&mut self, id: u64) -> Option<Entry> {
        let Unacked { entry, consumer } = self.unacked.remove(&id)?;
        if let Some(serial) = consumer {
            if let Some(c) = self.consumers.iter_mut().find(|c| c.serial == serial) {
                c.unacked = c.unacked.saturating_sub(1);
            }
        }
        Some(entry)
    }

    /// The next message in queue order: requeued ones keep their place.
    fn pop(&mut self) -> Option<Entry> {
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

    /// Reads paged messages back from the store.
    fn page_in(&mut self, paged: &[Paged]) {
        let read = match &self.persistence {
            Some(p) => p
                .store
                .read(&paged.iter().map(|p| p.stored).collect::<Vec<_>>()),
            None => Vec::new(),
        };
        let mut loaded = Vec::with_capacity(paged.len());
        for (p, stored) in paged.iter().zip(read) {
            let Some(message) = stored.and_then(Message::from_stored) else {
                break;
            };
            self.bytes += message.size();
            self.memory.add(message.size());
            loaded.push(Entry {
                id: p.id,
                message,
                redelivered: p.redelivered,
            });
        }
        let complete = loaded.len() == paged.len();
        self.backlog.loaded(loaded);
        if !complete {
            // Unreadable: say so, and let its segment go.
            if let Some(lost) = self.backlog.skip_paged() {
                tracing::error!(
                    "queue: stored message {} could not be read back; dropped",
                    lost.stored
                );
                self.stored_gone.push(lost.stored);
            }
        }
    }

    /// Over its memory budget, a persistent queue keeps stored messages on
    /// disk only.
    fn page_out(&mut self) {
        let Some(p) = &self.persistence else { return };
        if self.bytes <= p.budget {
            return;
        }
        let store = p.store.clone();
        let free = self.bytes - p.budget * 3 / 4;
        let freed = self.backlog.page_out(free, |id| store.is_written(id));
        self.bytes -= freed;
        self.memory.sub(freed);
    }

    fn unpop(&mut self, entry: Entry) {
        if !entry.redelivered && self.backlog.front_id().is_none_or(|f| entry.id < f) {
            self.backlog.push_front(entry);
        } else {
            self.requeued.insert(entry.id, entry);
        }
    }

    /// Hands ready messages to consumers with room, round-robin. A consumer
    /// without prefetch room, or whose connection's inbox is full, is skipped.
    fn deliver(&mut self) {
        if self.consumers.is_empty() || self.ready_count() == 0 {
            return;
        }
        let Some(handle) = self.handle.upgrade() else {
            return;
        };
        let mut idle_in_a_row = 0;
        while idle_in_a_row < self.consumers.len() && self.ready_count() > 0 {
            let index = self.next_consumer % self.consumers.len();
            self.next_consumer = index + 1;
            let consumer = &mut self.consumers[index];
            let spec = &consumer.spec;
            let per_consumer_room =
                spec.no_ack || spec.prefetch == 0 || consumer.unacked < spec.prefetch;
            if !per_consumer_room || (!spec.no_ack && !spec.channel_limit.try_acquire()) {
                idle_in_a_row += 1;
                continue;
            }
            let Some(entry) = self.pop() else { break };
            let consumer = &mut self.consumers[index];
            let spec = &consumer.spec;
            // A no-ack delivery takes the message itself (no reference
            // counts touched); others leave the entry awaiting its ack.
            let no_ack = spec.no_ack;
            let (id, redelivered) = (entry.id, entry.redelivered);
            let (size, stored) = (entry.message.size(), entry.message.stored);
            let (message, kept) = if no_ack {
                (entry.message, None)
            } else {
                (entry.message.clone(), Some(entry))
            };
            let delivery = ConnEvent::Deliver(Delivery {
                channel: spec.channel,
                consumer_tag: spec.tag.clone(),
                queue: handle.clone(),
                id,
                message,
                redelivered,
                no_ack,
                limit: (!no_ack).then(|| spec.channel_limit.clone()),
            });
            match spec.port.try_send(delivery, &self.wake) {
                Ok(()) => {
                    idle_in_a_row = 0;
                    match kept {
                        None => self.forget_parts(size, stored),
                        Some(entry) => {
                            consumer.unacked += 1;
                            let serial = consumer.serial;
                            self.unacked.insert(
                                id,
                                Unacked {
                                    entry,
                                    consumer: Some(serial),
                                },
                            );
                        }
                    }
                }
                Err(refused) => {
                    let closed = matches!(refused, Refused::Closed(_));
                    if !no_ack {
                        spec.channel_limit.release(1);
                    }
                    if closed {
                        // The connection is gone; its session cancels the consumer.
                        self.consumers.remove(index);
                    } else {
                        idle_in_a_row += 1;
                    }
                    let entry = match (kept, refused.into_event()) {
                        (Some(entry), _) => entry,
                        (None, ConnEvent::Deliver(d)) => Entry {
                            id,
                            message: d.message,
                            redelivered,
                        },
                        (None, ConnEvent::Cancelled { .. }) => unreachable!("a delivery was sent"),
                    };
                    self.unpop(entry);
                }
            }
        }
    }
}
