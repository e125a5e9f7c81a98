//! A vhost: its exchanges and queues, found by name. What can be done to
//! them lives beside this file, one concern each: declaring and deleting
//! exchanges (`exchanges.rs`) and queues (`queues.rs`), binding
//! (`bindings.rs`), routing a publish (`routing.rs`), and writing and
//! restoring durable definitions (`definitions.rs`).

mod bindings;
mod definitions;
mod exchanges;
mod queues;
mod routing;

pub use bindings::{BindingChange, BindingTarget};

use dashmap::DashMap;
use std::sync::Arc;
use warren_codec::ShortString;
use warren_protocol::AmqpError;

use crate::args::ExchangeArgs;
use crate::errors;
use crate::exchange::{Exchange, ExchangeKind};
use crate::ids::ConnectionId;
use crate::memory::MemoryMonitor;
use crate::queue::QueueHandle;
use crate::stats::Registry;
use crate::storage::Storage;

/// The exchanges every vhost starts with (the default exchange is "").
const PREDECLARED: [(&str, ExchangeKind); 6] = [
    ("", ExchangeKind::Direct),
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

pub struct VHost {
    pub name: String,
    exchanges: DashMap<ShortString, Arc<Exchange>>,
    queues: DashMap<ShortString, Arc<QueueHandle>>,
    /// Serialises declarations, bindings and deletions (never publishes), so
    /// that check-then-act sequences on them are atomic.
    ddl: tokio::sync::Mutex<()>,
    memory: Arc<MemoryMonitor>,
    pub(crate) storage: Option<Arc<Storage>>,
    /// Bumped whenever an exchange or queue goes, so that sessions know
    /// their cached lookups may be stale.
    generation: std::sync::atomic::AtomicU64,
    pub(crate) stats: Arc<Registry>,
    /// Itself, for queues that ask to be deleted when they expire.
    me: std::sync::Weak<VHost>,
    /// Queues that refuse publishes when full: while there are none, a
    /// publish does not look for them.
    pub(crate) refusing_queues: std::sync::atomic::AtomicUsize,
}

impl VHost {
    pub fn new(
        name: &str,
        memory: Arc<MemoryMonitor>,
        storage: Option<Arc<Storage>>,
        stats: Arc<Registry>,
    ) -> Arc<VHost> {
        Arc::new_cyclic(|me| VHost::with_self(name, memory, storage, stats, me.clone()))
    }

    fn with_self(
        name: &str,
        memory: Arc<MemoryMonitor>,
        storage: Option<Arc<Storage>>,
        stats: Arc<Registry>,
        me: std::sync::Weak<VHost>,
    ) -> VHost {
        let vhost = VHost {
            name: name.to_string(),
            exchanges: DashMap::new(),
            queues: DashMap::new(),
            ddl: tokio::sync::Mutex::new(()),
            memory,
            storage,
            generation: std::sync::atomic::AtomicU64::new(0),
            stats,
            me,
            refusing_queues: std::sync::atomic::AtomicUsize::new(0),
        };
        for (name, kind) in PREDECLARED {
            let name = ShortString::from_static(name);
            let exchange = Exchange::new(
                name.clone(),
                kind,
                true,
                false,
                false,
                ExchangeArgs::default(),
            );
            vhost.exchanges.insert(name, Arc::new(exchange));
        }
        vhost
    }

    pub(crate) fn memory(&self) -> &Arc<MemoryMonitor> {
        &self.memory
    }

    pub fn exchange(&self, name: &ShortString) -> Option<Arc<Exchange>> {
        self.exchanges.get(name).map(|e| e.clone())
    }

    pub fn queue(&self, name: &ShortString) -> Option<Arc<QueueHandle>> {
        self.queues.get(name).map(|q| q.clone())
    }

    /// Changes whenever an exchange or queue is removed.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn removed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn find_exchange(&self, name: &ShortString) -> Result<Arc<Exchange>, AmqpError> {
        self.exchange(name)
            .ok_or_else(|| errors::no_exchange(name, &self.name))
    }

    /// A queue the connection may use: 404 if missing, 405 if another
    /// connection's exclusive queue.
    pub fn find_queue(
        &self,
        name: &ShortString,
        conn: ConnectionId,
    ) -> Result<Arc<QueueHandle>, AmqpError> {
        let queue = self
            .queue(name)
            .ok_or_else(|| errors::no_queue(name, &self.name))?;
        if queue.owner.is_some_and(|owner| owner != conn) {
            return Err(errors::locked(name, &self.name));
        }
        Ok(queue)
    }
}
