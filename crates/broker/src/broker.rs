//! The broker: its vhosts, and connection ids.

use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::vhost::VHost;

/// Identifies a connection to the queues it owns (exclusive) or consumes from.
pub type ConnectionId = u64;

#[derive(Default)]
pub struct Broker {
    vhosts: DashMap<String, Arc<VHost>>,
    next_connection: AtomicU64,
}

impl Broker {
    pub fn new() -> Arc<Broker> {
        Arc::new(Broker::default())
    }

    /// Adds a vhost with its predeclared exchanges; keeps an existing one.
    pub fn add_vhost(&self, name: &str) -> Arc<VHost> {
        self.vhosts
            .entry(name.to_string())
            .or_insert_with(|| VHost::new(name))
            .clone()
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.get(name).map(|v| v.clone())
    }

    pub fn next_connection_id(&self) -> ConnectionId {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }
}
