//! The message store's handle: what publishers, queues and recovery use.

use bytes::Bytes;
use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::segments::Segments;
use crate::writer::{self, Op};

/// Records waiting for the writer; past this, publishers wait.
const CHANNEL_CAPACITY: usize = 4096;

/// A persistent message for the log, with the durable queues it went to.
pub struct PublishRecord {
    pub id: u64,
    pub vhost: Bytes,
    pub exchange: Bytes,
    pub routing_key: Bytes,
    pub queues: Vec<Bytes>,
    pub header: Bytes,
    pub body: Bytes,
}

/// A message read back at startup.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: u64,
    pub exchange: Bytes,
    pub routing_key: Bytes,
    pub header: Bytes,
    pub body: Bytes,
}

/// What the log held at startup.
#[derive(Debug, Default)]
pub struct Recovered {
    /// The ids of the messages each (vhost, queue) holds, in publish order.
    /// The messages stay on disk; [`MessageStore::read`] brings them back.
    pub queues: HashMap<(Bytes, Bytes), Vec<u64>>,
    /// Bytes of a torn record cut off the newest segment's end.
    pub dropped_bytes: u64,
    /// Damage found (and reported) for the first time.
    pub damage: Vec<DamageReport>,
}

/// Damaged bytes in a segment, skipped at recovery.
#[derive(Debug, Clone)]
pub struct DamageReport {
    pub segment: u32,
    pub range: std::ops::Range<usize>,
    /// Publish records that were in it, as far as can be told.
    pub messages_lost: usize,
}

/// How far a publisher's records are durable. One per channel: the writer
/// raises `synced` (or `failed`) to the channel's sequence numbers after
/// each group commit and rings the connection's bell.
#[derive(Debug)]
pub struct DurableMark {
    synced: AtomicU64,
    failed: AtomicU64,
    bell: Arc<Notify>,
}

impl DurableMark {
    pub fn new(bell: Arc<Notify>) -> Self {
        DurableMark {
            synced: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            bell,
        }
    }

    /// Every record up to this sequence number is on disk.
    pub fn synced(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Records up to this sequence number could not be written.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Acquire)
    }

    pub(crate) fn advance(&self, seq: u64, ok: bool) {
        let counter = if ok { &self.synced } else { &self.failed };
        counter.fetch_max(seq, Ordering::AcqRel);
        self.bell.notify_one();
    }
}

pub struct MessageStore {
    tx: mpsc::Sender<Op>,
    segments: Arc<Segments>,
    next_id: AtomicU64,
    failed: Arc<AtomicBool>,
    /// Group commits (one write and one fdatasync each) so far.
    commits: Arc<AtomicU64>,
}

impl MessageStore {
    /// Recovers `dir/messages` and starts the writer thread.
    pub fn open(dir: &Path) -> io::Result<(Arc<MessageStore>, Recovered)> {
        let segments = dir.join("messages");
        std::fs::create_dir_all(&segments)?;
        let (recovered, state, next_id) = crate::recovery::recover(&segments)?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let failed = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        let segments = state.segments.clone();
        writer::spawn(state, rx, failed.clone(), commits.clone())?;
        let store = MessageStore {
            tx,
            segments,
            next_id: AtomicU64::new(next_id),
            failed,
            commits,
        };
        Ok((Arc::new(store), recovered))
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Group commits so far: each is one write and one fdatasync, shared by
    /// every record that arrived while the previous one ran.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Segment files on disk now.
    pub fn segment_count(&self) -> usize {
        self.segments.read_list().len()
    }

    /// A write failed (disk full, say); publishes are refused until restart.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Queues the record; `mark` learns when it is durable. False if the
    /// store has failed or stopped.
    pub async fn publish(
        &self,
        record: PublishRecord,
        mark: Option<(Arc<DurableMark>, u64)>,
    ) -> bool {
        !self.is_failed() && self.tx.send(Op::Publish { record, mark }).await.is_ok()
    }

    /// These messages left the queue for good.
    pub async fn ack(&self, vhost: Bytes, queue: Bytes, ids: Vec<u64>) {
        if !ids.is_empty() {
            let _ = self.tx.send(Op::Ack { vhost, queue, ids }).await;
        }
    }

    /// Reads messages back from disk, in the order given (neighbours with
    /// one read); `None` for ids not written yet or unreadable.
    pub fn read(&self, ids: &[u64]) -> Vec<Option<StoredMessage>> {
        self.segments.read(ids)
    }

    /// Whether message `id` is on disk and indexed, so that a queue may
    /// drop its copy and read it back later.
    pub fn is_written(&self, id: u64) -> bool {
        Segments::locate_in(&self.segments.read_list(), id).is_some()
    }

    /// Returns once everything queued before is on disk (false if it could not be).
    pub async fn sync(&self) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Op::Sync(tx)).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }
}
