//! The message store's handle: what publishers, queues and recovery use.

use bytes::Bytes;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use crate::durable_mark::DurableMark;
use crate::message_record::{PublishRecord, StoredMessage};
use crate::recovery::Recovered;
use crate::segments::Segments;
use crate::writer::{self, Op};

/// Records waiting for the writer; past this, publishers wait.
const CHANNEL_CAPACITY: usize = 4096;

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
