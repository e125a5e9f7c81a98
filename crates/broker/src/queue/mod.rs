//! Queues. Each queue is a task that owns its messages and consumers; the
//! [`QueueHandle`] sends it commands through one bounded inbox, so that a
//! channel's publishes, acknowledgements and gets reach it in order, and a
//! full queue inbox slows publishers down.

mod admission;
mod channel_limit;
mod classic;
#[cfg(test)]
mod test_queue;
#[cfg(test)]
pub(crate) use test_queue::test_queue;
mod port;

use smallvec::SmallVec;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use warren_codec::{FieldTable, ShortString};

pub use admission::Admission;
pub use channel_limit::ChannelLimit;
pub use port::{ConnEvent, Delivery, DeliveryPort};

use crate::args::{QueueArgs, QueueType};
use crate::ids::ConnectionId;
use crate::memory::MemoryMonitor;
use crate::message::Message;
use crate::safekeeping::Keeper;
use crate::stats::{QueueStats, Registered};
use bytes::Bytes;
use warren_store::MessageStore;

/// How many commands a queue's inbox holds before senders wait.
const INBOX_CAPACITY: usize = 1024;
/// How many published messages may wait in a queue's inbox: publishes
/// come in batches, so the command count alone would not bound them.
const INBOX_MESSAGES: usize = 1024;

/// Message ids in one acknowledgement; most acknowledge one.
pub type Ids = SmallVec<[u64; 4]>;

/// What basic.consume asks of a queue.
pub struct ConsumerSpec {
    pub conn: ConnectionId,
    pub channel: u16,
    pub tag: ShortString,
    pub no_ack: bool,
    pub exclusive: bool,
    /// Per-consumer prefetch (basic.qos global=false); 0: none.
    pub prefetch: u32,
    /// `x-priority` (0 by default): higher ones are served first.
    pub priority: i64,
    pub channel_limit: Arc<ChannelLimit>,
    pub port: Arc<DeliveryPort>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeRefused {
    /// The queue has an exclusive consumer, or consumers when one asked to be exclusive.
    ExclusiveUse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteRefused {
    InUse,
    NotEmpty,
}

pub struct GetOk {
    pub id: u64,
    pub message: Message,
    pub redelivered: bool,
    /// Messages still ready after this one.
    pub remaining: u32,
}

pub(crate) enum Command {
    /// Publishes from one batch of a connection's input, in order.
    PublishMany(Vec<Message>),
    Consume(ConsumerSpec, oneshot::Sender<Result<(), ConsumeRefused>>),
    /// Cancels one consumer (`tag`) or all of a channel's (`None`). Replies
    /// whether the queue is now unused and auto-delete.
    Cancel {
        conn: ConnectionId,
        channel: u16,
        tag: Option<ShortString>,
        reply: oneshot::Sender<bool>,
    },
    Ack(Ids),
    Reject {
        ids: Ids,
        requeue: bool,
    },
    Get {
        no_ack: bool,
        reply: oneshot::Sender<Option<GetOk>>,
    },
    Purge(oneshot::Sender<u32>),
    /// Ready messages and consumers.
    Stats(oneshot::Sender<(u32, u32)>),
    Delete {
        if_unused: bool,
        if_empty: bool,
        reply: oneshot::Sender<Result<u32, DeleteRefused>>,
    },
    /// Deletes the queue if it is still unused past its `x-expires`.
    Expire(oneshot::Sender<bool>),
    /// Publishes this full queue refused, to dead-letter (`reject-publish-dlx`);
    /// counted against the watermark already.
    DeadLetterRefused(Vec<Message>),
}

/// What an `x-expires` queue tells whoever holds its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEvent {
    /// Unused past its `x-expires`: delete it (with [`QueueHandle::expire`]).
    Expired,
    /// A durable queue's lease to keep across restarts: unused since this
    /// time (ms since the epoch), or in use (0).
    Used(u64),
}

pub type LeaseHook = Arc<dyn Fn(Arc<QueueHandle>, LeaseEvent) + Send + Sync>;

/// Where a queue's dead letters go: the queues that `x-dead-letter-exchange`
/// routes them to with these keys and headers (none if it does not exist).
pub type DeadLetterRoute =
    Arc<dyn Fn(&ShortString, &[ShortString], &FieldTable) -> DeadLetterTargets + Send + Sync>;

/// The queues a dead letter goes to, and the store durable ones keep it in
/// (with the vhost's name, as records carry it).
#[derive(Default)]
pub struct DeadLetterTargets {
    pub queues: Vec<Arc<QueueHandle>>,
    pub store: Option<(Arc<MessageStore>, Bytes)>,
}

/// What a queue asks of whoever holds its registry.
#[derive(Clone)]
pub struct QueueHooks {
    pub lease: LeaseHook,
    pub dead_letter: DeadLetterRoute,
}

/// A queue's hooks, and what was stored of its lease.
pub(crate) struct QueueStart {
    pub hooks: QueueHooks,
    pub unused_since: Option<u64>,
}

/// What a queue is, as declared.
pub struct QueueConfig {
    pub name: ShortString,
    pub durable: bool,
    pub auto_delete: bool,
    /// The connection of an exclusive queue.
    pub owner: Option<ConnectionId>,
    pub args: QueueArgs,
    /// A restored `x-expires` queue's lease, as last stored (see
    /// [`LeaseEvent::Used`]); None for a new queue.
    pub unused_since: Option<u64>,
}

impl QueueConfig {
    /// Durable and not exclusive: kept across restarts (exclusive queues go
    /// with their connection anyway).
    pub fn is_persistent(&self) -> bool {
        self.durable && self.owner.is_none()
    }
}

/// Where a persistent queue writes the ack records of stored messages, and
/// how much of its stored messages it keeps in memory.
pub struct Persistence {
    pub store: Arc<MessageStore>,
    pub vhost: Bytes,
    /// The queue's name, as its ack records carry it.
    pub queue: Bytes,
    /// Past this many bytes in memory, stored messages are read back from
    /// disk when needed instead of being held.
    pub budget: usize,
}

/// Starts a queue of the kind its arguments ask for. Every kind is served
/// through the same [`QueueHandle`], so sessions and exchanges never know
/// which one they hold.
pub fn start(
    config: QueueConfig,
    memory: Arc<MemoryMonitor>,
    persistence: Option<Persistence>,
    initial: Vec<u64>,
    stats: Registered<QueueStats>,
    hooks: QueueHooks,
) -> Arc<QueueHandle> {
    match config.args.queue_type {
        // A quorum queue is the durable classic queue until the replicated
        // kind exists; streams are refused at declare (docs/compatibility.md),
        // and one restored from an older data directory is classic.
        QueueType::Classic | QueueType::Quorum | QueueType::Stream => {
            QueueHandle::start_classic(config, memory, persistence, initial, stats, hooks)
        }
    }
}

/// A queue's identity and its inbox.
pub struct QueueHandle {
    pub name: ShortString,
    pub durable: bool,
    pub auto_delete: bool,
    /// The connection of an exclusive queue.
    pub owner: Option<ConnectionId>,
    pub args: QueueArgs,
    /// Who makes its persistent messages safe (none: kept in memory only).
    keeper: Option<Keeper>,
    tx: mpsc::Sender<Command>,
    /// Rung when a consumer may have room again.
    wake: Arc<Notify>,
    /// Messages count against the memory watermark from the moment they are
    /// handed over, so the alarm sees every publish, not the queue's lag.
    memory: Arc<MemoryMonitor>,
    /// Room for published messages in the inbox; the queue gives it back
    /// as it takes them in.
    room: Arc<Semaphore>,
    /// For queues that refuse publishes when full: their ready count, as
    /// publishers check it.
    pub(crate) admission: Option<Arc<Admission>>,
}

impl std::fmt::Debug for QueueHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QueueHandle({:?})", self.name)
    }
}

impl QueueHandle {
    /// Creates a classic queue, with `initial` messages (store ids of recovered
    /// messages, marked redelivered and read back when needed), and starts
    /// its task.
    fn start_classic(
        config: QueueConfig,
        memory: Arc<MemoryMonitor>,
        persistence: Option<Persistence>,
        initial: Vec<u64>,
        stats: Registered<QueueStats>,
        hooks: QueueHooks,
    ) -> Arc<QueueHandle> {
        let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
        let QueueConfig {
            name,
            durable,
            auto_delete,
            owner,
            args,
            unused_since,
        } = config;
        let admission = Admission::of(&args.settings).map(Arc::new);
        let handle = Arc::new(QueueHandle {
            name,
            durable,
            auto_delete,
            owner,
            args,
            keeper: persistence.as_ref().map(|_| Keeper::Store),
            tx,
            wake: Arc::new(Notify::new()),
            memory: memory.clone(),
            room: Arc::new(Semaphore::new(INBOX_MESSAGES)),
            admission,
        });
        let start = QueueStart {
            hooks,
            unused_since,
        };
        classic::spawn(&handle, memory, persistence, initial, rx, stats, start);
        handle
    }

    /// Durable and not exclusive: its messages and definition are stored.
    pub fn is_persistent(&self) -> bool {
        self.durable && self.owner.is_none()
    }

    /// Who makes this queue's persistent messages safe before they are
    /// confirmed.
    pub fn keeper(&self) -> Option<Keeper> {
        self.keeper
    }

    /// Wakes the queue to try its consumers again.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn send(&self, command: Command) -> bool {
        self.tx.send(command).await.is_ok()
    }

    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        if !self.send(command(reply)).await {
            return None;
        }
        answer.await.ok()
    }

    /// Whether the queue's task has ended (the queue was deleted).
    pub(crate) fn is_gone(&self) -> bool {
        self.tx.is_closed()
    }

    /// Counts a message against the memory watermark as it is taken for
    /// this queue, before [`publish_many`](Self::publish_many) hands it over.
    pub(crate) fn count_memory(&self, bytes: usize) {
        self.memory.add(bytes);
    }

    /// Enqueues messages already counted with [`count_memory`](Self::count_memory);
    /// waits while the inbox is full. If the queue is gone, returns the
    /// store ids of the messages it did not take (the caller releases them).
    pub(crate) async fn publish_many(&self, messages: Vec<Message>) -> Vec<u64> {
        let size: usize = messages.iter().map(Message::size).sum();
        let count = messages.len().min(INBOX_MESSAGES) as u32;
        let refused = match self.room.acquire_many(count).await {
            Ok(permit) => {
                permit.forget();
                match self.tx.send(Command::PublishMany(messages)).await {
                    Ok(()) => return Vec::new(),
                    Err(mpsc::error::SendError(Command::PublishMany(messages))) => messages,
                    Err(_) => unreachable!("the command sent"),
                }
            }
            Err(_) => messages,
        };
        self.memory.sub(size);
        refused.iter().filter_map(|m| m.stored).collect()
    }

    /// Like [`publish_many`](Self::publish_many), for a queue task handing
    /// dead letters on: never waits (two queues dead-lettering into each
    /// other must not wait for each other). Gives the messages back if the
    /// inbox is full, with whether the queue is gone.
    pub(crate) fn try_publish_many(
        &self,
        messages: Vec<Message>,
    ) -> Result<(), (Vec<Message>, bool)> {
        let count = messages.len().min(INBOX_MESSAGES) as u32;
        let permit = match self.room.try_acquire_many(count) {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::NoPermits) => return Err((messages, false)),
            Err(tokio::sync::TryAcquireError::Closed) => return Err((messages, true)),
        };
        match self.tx.try_send(Command::PublishMany(messages)) {
            Ok(()) => {
                permit.forget();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(Command::PublishMany(m))) => Err((m, false)),
            Err(mpsc::error::TrySendError::Closed(Command::PublishMany(m))) => Err((m, true)),
            Err(_) => unreachable!("the command sent"),
        }
    }

    /// Hands over publishes it refused (`reject-publish-dlx`) to be
    /// dead-lettered with reason `maxlen`.
    pub(crate) async fn dead_letter_refused(&self, messages: Vec<Message>) {
        let size: usize = messages.iter().map(Message::size).sum();
        self.memory.add(size);
        if !self.send(Command::DeadLetterRefused(messages)).await {
            self.memory.sub(size);
        }
    }

    /// `None` if the queue is gone.
    pub async fn consume(&self, spec: ConsumerSpec) -> Option<Result<(), ConsumeRefused>> {
        self.ask(|reply| Command::Consume(spec, reply)).await
    }

    /// Whether the queue is now unused and auto-delete.
    pub async fn cancel(&self, conn: ConnectionId, channel: u16, tag: Option<ShortString>) -> bool {
        self.ask(|reply| Command::Cancel {
            conn,
            channel,
            tag,
            reply,
        })
        .await
        .unwrap_or(false)
    }

    pub async fn ack(&self, ids: Ids) {
        self.send(Command::Ack(ids)).await;
    }

    pub async fn reject(&self, ids: Ids, requeue: bool) {
        self.send(Command::Reject { ids, requeue }).await;
    }

    pub async fn get(&self, no_ack: bool) -> Option<GetOk> {
        self.ask(|reply| Command::Get { no_ack, reply })
            .await
            .flatten()
    }

    pub async fn purge(&self) -> u32 {
        self.ask(Command::Purge).await.unwrap_or(0)
    }

    /// Ready messages and consumers; zeros if the queue is gone.
    pub async fn stats(&self) -> (u32, u32) {
        self.ask(Command::Stats).await.unwrap_or((0, 0))
    }

    /// Stops the queue; its consumers are told. Returns the messages dropped.
    pub async fn delete(&self, if_unused: bool, if_empty: bool) -> Result<u32, DeleteRefused> {
        self.ask(|reply| Command::Delete {
            if_unused,
            if_empty,
            reply,
        })
        .await
        .unwrap_or(Ok(0))
    }

    /// Stops the queue if it is still unused past its `x-expires` (a
    /// consumer, get or declare may have come since it said so).
    pub async fn expire(&self) -> bool {
        self.ask(Command::Expire).await.unwrap_or(false)
    }
}
