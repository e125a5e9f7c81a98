//! The classic queue: one task owns the queue's ready messages (in order,
//! some only on disk), the messages out with consumers awaiting their
//! acknowledgement, and the consumers, served round-robin.
//!
//! The task's state is defined here; its parts live beside it: the command
//! loop (`actor.rs`), the ready messages (`ready.rs`, over `backlog.rs`),
//! consumers and delivery (`consumers.rs`; priorities and a single active
//! consumer in `choosing.rs`), unacknowledged messages
//! (`unacked.rs`), priority queues (`priority.rs`), message TTL and queue
//! expiry (`expiry.rs`),
//! dead-lettering (`dead_letter.rs`) and the store side (`paging.rs`).

mod actor;
mod backlog;
mod choosing;
mod consumers;
mod dead_letter;
mod expiry;
mod limits;
mod paging;
mod priority;
mod ready;
mod unacked;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, Notify, Semaphore};

use super::{Admission, ChannelLimit, Command, LeaseHook, Persistence, QueueHandle, QueueStart};
use crate::memory::MemoryMonitor;
use crate::stats::{QueueCounts, QueueStats, Registered};
use backlog::{Backlog, Entry, Paged};
use choosing::Choosing;
use consumers::Consumer;
use dead_letter::{DeadLetterTo, DeadLetters};
use limits::Limits;
use priority::Levels;
use unacked::Unacked;

/// Commands handled between two delivery rounds, so that a busy inbox does
/// not starve consumers.
const BATCH: usize = 256;
/// Paged messages read back from the store at once.
const READ_AHEAD: usize = 256;

pub(super) struct QueueState {
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
    /// A priority queue's ready messages (priority.rs); its backlog and
    /// `requeued` stay empty.
    by_priority: Option<Levels>,
    /// A drop-head queue's length limits, and its ready messages' body
    /// bytes (limits.rs).
    limits: Option<Limits>,
    ready_body: u64,
    /// A reject-publish queue's count, shared with its publishers.
    admission: Option<Arc<Admission>>,
    /// `limits` or `admission` is set: ready messages are counted.
    counts_ready: bool,
    unacked: HashMap<u64, Unacked>,
    /// In priority order (highest first), then in the order they came.
    consumers: Vec<Consumer>,
    /// Where round-robin resumes.
    next_consumer: usize,
    /// `x-single-active-consumer`.
    single_active: bool,
    /// A quorum queue (its single active consumer's failover rule).
    quorum: bool,
    /// Set while consumers are not alike (priorities differ, or a single
    /// one is active): see choosing.rs.
    choosing: Option<Choosing>,
    /// Channel limits (global prefetch) this queue waits in line for.
    waiting_for_room: Vec<Arc<ChannelLimit>>,
    next_id: u64,
    next_serial: u64,
    had_consumers: bool,
    deleted: bool,
    /// `x-message-ttl`, ms.
    message_ttl: Option<u64>,
    /// Whether a ready message may have a deadline: until then the queue
    /// never reads the clock for TTL.
    timed: bool,
    /// The clock of the batch being handled, read when first needed.
    batch_ms: Option<u64>,
    /// For queues with `x-expires`: when the queue was last used.
    lease: Option<Lease>,
    /// For queues with `x-dead-letter-exchange`: where dead letters go.
    dead_letter: Option<DeadLetterTo>,
    /// Dead letters on their way.
    dead_letters: DeadLetters,
    /// This queue's statistics: counted here, copied out once per batch.
    counts: QueueCounts,
    stats: Registered<QueueStats>,
}

/// An `x-expires` queue's lease on life: renewed by consumers, basic.get
/// and declarations (not by publishes).
struct Lease {
    expires: u64,
    last_used: u64,
    /// Whether the hook was told it expired (once, until renewed).
    reported: bool,
    hook: LeaseHook,
    /// Durable: the lease is stored, to run on across restarts.
    persistent: bool,
    /// What was last handed to the hook to store (see `LeaseEvent::Used`).
    stored: Option<u64>,
}

/// A drop-head queue's limits (reject-publish queues use their admission).
fn limits_of(settings: &crate::args::QueueSettings) -> Option<Limits> {
    let drop_head = matches!(
        settings.overflow,
        None | Some(crate::args::Overflow::DropHead)
    );
    let limited = settings.max_length.is_some() || settings.max_length_bytes.is_some();
    (drop_head && limited).then_some(Limits {
        max_length: settings.max_length,
        max_bytes: settings.max_length_bytes,
    })
}

/// Starts the task that serves `handle`.
pub(in crate::queue) fn spawn(
    handle: &Arc<QueueHandle>,
    memory: Arc<MemoryMonitor>,
    persistence: Option<Persistence>,
    initial: Vec<u64>,
    inbox: mpsc::Receiver<Command>,
    stats: Registered<QueueStats>,
    start: QueueStart,
) {
    // Recovered messages stay on disk until delivery needs them.
    let next_id = initial.len() as u64;
    let message_ttl = handle.args.settings.message_ttl;
    let timed = message_ttl.is_some() || !initial.is_empty();
    let lease = handle
        .args
        .settings
        .expires
        .map(|expires| Lease::start(expires, &start, handle.is_persistent()));
    let settings = &handle.args.settings;
    let dead_letter = settings
        .dead_letter_exchange
        .clone()
        .map(|exchange| DeadLetterTo {
            exchange,
            routing_key: settings.dead_letter_routing_key.clone(),
            route: start.hooks.dead_letter.clone(),
        });
    let mut backlog = Backlog::default();
    for (id, stored) in initial.into_iter().enumerate() {
        backlog.push_paged(Paged {
            id: id as u64,
            stored,
            redelivered: true,
            expires_at: backlog::UNKNOWN,
        });
    }
    let state = QueueState {
        handle: Arc::downgrade(handle),
        wake: handle.wake.clone(),
        room: handle.room.clone(),
        memory,
        bytes: 0,
        persistence,
        stored_gone: Vec::new(),
        backlog,
        requeued: BTreeMap::new(),
        by_priority: handle.args.settings.max_priority.map(Levels::new),
        limits: limits_of(&handle.args.settings),
        ready_body: 0,
        admission: handle.admission.clone(),
        counts_ready: false,
        unacked: HashMap::new(),
        consumers: Vec::new(),
        next_consumer: 0,
        single_active: handle.args.settings.single_active_consumer,
        quorum: handle.args.queue_type == crate::args::QueueType::Quorum,
        choosing: None,
        waiting_for_room: Vec::new(),
        next_id,
        next_serial: 0,
        had_consumers: false,
        deleted: false,
        message_ttl,
        timed,
        batch_ms: None,
        lease,
        dead_letter,
        dead_letters: DeadLetters::default(),
        counts: QueueCounts::default(),
        stats,
    };
    let mut state = state;
    state.counts_ready = state.limits.is_some() || state.admission.is_some();
    if state.by_priority.is_some() {
        state.load_by_priority();
    }
    if let Some(admission) = &state.admission {
        // Recovered messages count (their bytes as they are read back).
        for _ in 0..state.ready_count() {
            admission.came_back(0);
        }
    }
    tokio::spawn(state.run(inbox));
}

impl QueueState {
    /// Copies the counts out for readers of the statistics.
    fn report(&mut self) {
        let ready = u64::from(self.ready_count());
        let c = &mut self.counts;
        c.ready = ready;
        c.unacked = self.unacked.len() as u64;
        c.bytes = self.bytes as u64;
        c.consumers = self.consumers.len() as u64;
        self.stats.stats.write(c);
    }
}
