//! The broker: its vhosts, connection ids, memory alarm and statistics.

use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::ids::ConnectionId;
use crate::memory::MemoryMonitor;
use crate::stats::Registry;
use crate::storage::Storage;
use crate::vhost::VHost;

pub struct Broker {
    vhosts: DashMap<String, Arc<VHost>>,
    next_connection: AtomicU64,
    pub memory: Arc<MemoryMonitor>,
    /// The data directory; `None` keeps everything in memory.
    pub storage: Option<Arc<Storage>>,
    /// Every queue's, connection's and channel's statistics.
    pub stats: Arc<Registry>,
}

impl Broker {
    /// A broker whose queues may hold `memory_limit` bytes of messages
    /// before publishers are held back (0: no limit).
    pub fn new(memory_limit: usize, storage: Option<Arc<Storage>>) -> Arc<Broker> {
        Arc::new(Broker {
            vhosts: DashMap::new(),
            next_connection: AtomicU64::new(0),
            memory: Arc::new(MemoryMonitor::new(memory_limit)),
            storage,
            stats: Arc::default(),
        })
    }

    /// Adds a vhost with its predeclared exchanges; keeps an existing one.
    pub fn add_vhost(&self, name: &str) -> Arc<VHost> {
        self.vhosts
            .entry(name.to_string())
            .or_insert_with(|| {
                VHost::new(
                    name,
                    self.memory.clone(),
                    self.storage.clone(),
                    self.stats.clone(),
                )
            })
            .clone()
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.get(name).map(|v| v.clone())
    }

    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }
}
