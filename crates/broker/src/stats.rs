//! Statistics kept where the work happens, readable without asking anyone.
//!
//! Each queue task, and each session for its connection and channels,
//! counts in plain integers as it works and copies them into its own
//! atomics once per batch (one relaxed store each: no lock, no allocation,
//! no shared cache line per message). Each set of atomics is registered in
//! the broker's [`Registry`] while its owner lives; a reader (the
//! management API, metrics) walks the registry and reads the atomics,
//! never sending a command to a queue. The hot path never touches the
//! registry: only creating and ending a queue, connection or channel does.

use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use warren_codec::ShortString;

use crate::ids::ConnectionId;

/// A queue's gauges and counters, as plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Ready to deliver (in memory or paged out).
    pub ready: u64,
    /// Delivered, awaiting acknowledgement.
    pub unacked: u64,
    /// Bytes of the messages held in memory.
    pub bytes: u64,
    pub consumers: u64,
    pub published: u64,
    pub delivered: u64,
    pub acked: u64,
    pub redelivered: u64,
}

/// A channel's (or, summed, a connection's) counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    pub published: u64,
    pub confirmed: u64,
    pub delivered: u64,
    pub acked: u64,
    /// Deliveries awaiting acknowledgement.
    pub unacked: u64,
    pub consumers: u64,
}

/// Atomics holding a copy of `N` plain numbers, written by one owner.
#[derive(Debug)]
struct Cells<const N: usize>([AtomicU64; N]);

impl<const N: usize> Default for Cells<N> {
    fn default() -> Self {
        Cells(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl<const N: usize> Cells<N> {
    fn store(&self, values: [u64; N]) {
        for (cell, value) in self.0.iter().zip(values) {
            cell.store(value, Ordering::Relaxed);
        }
    }

    fn load(&self) -> [u64; N] {
        std::array::from_fn(|i| self.0[i].load(Ordering::Relaxed))
    }
}

/// A queue's statistics, shared by its task (the writer) and readers.
#[derive(Debug)]
pub struct QueueStats {
    pub vhost: String,
    pub name: ShortString,
    cells: Cells<8>,
}

impl QueueStats {
    pub fn read(&self) -> QueueCounts {
        let [ready, unacked, bytes, consumers, published, delivered, acked, redelivered] =
            self.cells.load();
        QueueCounts {
            ready,
            unacked,
            bytes,
            consumers,
            published,
            delivered,
            acked,
            redelivered,
        }
    }

    pub(crate) fn write(&self, c: &QueueCounts) {
        self.cells.store([
            c.ready,
            c.unacked,
            c.bytes,
            c.consumers,
            c.published,
            c.delivered,
            c.acked,
            c.redelivered,
        ]);
    }
}

/// A channel's statistics, written by its connection's session.
#[derive(Debug)]
pub struct ChannelStats {
    pub connection: ConnectionId,
    pub channel: u16,
    cells: Cells<6>,
}

impl ChannelStats {
    pub fn read(&self) -> ChannelCounts {
        let [published, confirmed, delivered, acked, unacked, consumers] = self.cells.load();
        ChannelCounts {
            published,
            confirmed,
            delivered,
            acked,
            unacked,
            consumers,
        }
    }

    pub(crate) fn write(&self, c: &ChannelCounts) {
        self.cells.store([
            c.published,
            c.confirmed,
            c.delivered,
            c.acked,
            c.unacked,
            c.consumers,
        ]);
    }
}

/// A connection as the registry lists it; its counts are its channels'.
#[derive(Debug)]
pub struct ConnectionStats {
    pub id: ConnectionId,
    pub vhost: String,
    pub user: String,
    /// Channels open now.
    channels: AtomicU64,
}

impl ConnectionStats {
    pub fn channels(&self) -> u64 {
        self.channels.load(Ordering::Relaxed)
    }
}

/// Every live queue's, connection's and channel's statistics.
#[derive(Debug, Default)]
pub struct Registry {
    next: AtomicU64,
    queues: DashMap<u64, Arc<QueueStats>>,
    connections: DashMap<ConnectionId, Arc<ConnectionStats>>,
    channels: DashMap<(ConnectionId, u16), Arc<ChannelStats>>,
}

/// Keeps statistics registered while it lives.
#[derive(Debug)]
pub struct Registered<T> {
    pub stats: Arc<T>,
    registry: Arc<Registry>,
    key: Key,
}

#[derive(Debug, Clone, Copy)]
enum Key {
    Queue(u64),
    Connection(ConnectionId),
    Channel(ConnectionId, u16),
}

impl<T> Drop for Registered<T> {
    fn drop(&mut self) {
        match self.key {
            Key::Queue(id) => {
                self.registry.queues.remove(&id);
            }
            Key::Connection(id) => {
                self.registry.connections.remove(&id);
            }
            Key::Channel(conn, ch) => {
                self.registry.channels.remove(&(conn, ch));
                if let Some(c) = self.registry.connections.get(&conn) {
                    c.channels.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Registry {
    pub(crate) fn add_queue(
        self: &Arc<Self>,
        vhost: &str,
        name: &ShortString,
    ) -> Registered<QueueStats> {
        // Keyed by a serial: a queue deleted and declared again under its
        // name is two entries until the first task has ended.
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let stats = Arc::new(QueueStats {
            vhost: vhost.to_string(),
            name: name.clone(),
            cells: Cells::default(),
        });
        self.queues.insert(id, stats.clone());
        Registered {
            stats,
            registry: self.clone(),
            key: Key::Queue(id),
        }
    }

    pub(crate) fn add_connection(
        self: &Arc<Self>,
        id: ConnectionId,
        vhost: &str,
        user: &str,
    ) -> Registered<ConnectionStats> {
        let stats = Arc::new(ConnectionStats {
            id,
            vhost: vhost.to_string(),
            user: user.to_string(),
            channels: AtomicU64::new(0),
        });
        self.connections.insert(id, stats.clone());
        Registered {
            stats,
            registry: self.clone(),
            key: Key::Connection(id),
        }
    }

    pub(crate) fn add_channel(
        self: &Arc<Self>,
        conn: ConnectionId,
        channel: u16,
    ) -> Registered<ChannelStats> {
        let stats = Arc::new(ChannelStats {
            connection: conn,
            channel,
            cells: Cells::default(),
        });
        self.channels.insert((conn, channel), stats.clone());
        if let Some(c) = self.connections.get(&conn) {
            c.channels.fetch_add(1, Ordering::Relaxed);
        }
        Registered {
            stats,
            registry: self.clone(),
            key: Key::Channel(conn, channel),
        }
    }

    /// Every live queue's statistics (in no particular order).
    pub fn queues(&self) -> Vec<Arc<QueueStats>> {
        self.queues.iter().map(|q| q.clone()).collect()
    }

    pub fn connections(&self) -> Vec<Arc<ConnectionStats>> {
        self.connections.iter().map(|c| c.clone()).collect()
    }

    pub fn channels(&self) -> Vec<Arc<ChannelStats>> {
        self.channels.iter().map(|c| c.clone()).collect()
    }

    /// A connection's counts: the sum of its open channels'.
    pub fn connection_counts(&self, conn: ConnectionId) -> ChannelCounts {
        let mut sum = ChannelCounts::default();
        for ch in self.channels.iter().filter(|c| c.key().0 == conn) {
            let c = ch.read();
            sum.published += c.published;
            sum.confirmed += c.confirmed;
            sum.delivered += c.delivered;
            sum.acked += c.acked;
            sum.unacked += c.unacked;
            sum.consumers += c.consumers;
        }
        sum
    }
}
