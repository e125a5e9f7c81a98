//! The writer thread: batches records, writes them with one write and one
//! fdatasync (group commit), then tells publishers; deletes segments whose
//! messages are all acknowledged.

use bytes::Bytes;
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use crate::durable_fs::sync_dir;
use crate::durable_mark::DurableMark;
use crate::message_record::{encode_ack, encode_publish, PublishRecord};
use crate::record::{FILE_HEADER, RECORD_HEADER};
use crate::segments::{segment_path, Located, Segment, Segments};

/// A segment is closed once it reaches this size.
pub const SEGMENT_SIZE: u64 = 64 * 1024 * 1024;

/// The segment size, or `WARREN_STORE_SEGMENT_BYTES` when set: tests use
/// tiny segments to exercise rotation and deletion.
pub fn segment_size() -> u64 {
    std::env::var("WARREN_STORE_SEGMENT_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEGMENT_SIZE)
}

/// Bytes encoded per group commit at most.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

pub(crate) enum Op {
    Publish {
        record: PublishRecord,
        mark: Option<(Arc<DurableMark>, u64)>,
    },
    Ack {
        vhost: Bytes,
        queue: Bytes,
        ids: Vec<u64>,
    },
    Sync(oneshot::Sender<bool>),
}

pub(crate) struct WriterState {
    pub segments: Arc<Segments>,
    /// The last segment, opened for appending.
    pub file: File,
}

/// What a batch changes in the index once it is on disk.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    /// Publish records: where they sit, and how many queues hold them.
    published: Vec<(Located, u64)>,
    acked: Vec<u64>,
    marks: Vec<(Arc<DurableMark>, u64)>,
    syncs: Vec<oneshot::Sender<bool>>,
}

pub(crate) fn spawn(
    state: WriterState,
    rx: mpsc::Receiver<Op>,
    failed: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("warren-store".into())
        .spawn(move || run(state, rx, failed, commits))?;
    Ok(())
}

fn run(
    mut state: WriterState,
    mut rx: mpsc::Receiver<Op>,
    failed: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
) {
    let mut batch = Batch::default();
    while let Some(first) = rx.blocking_recv() {
        let base = state.active_size();
        let mut next = Some(first);
        while let Some(op) = next.take() {
            batch.add(op, base);
            if batch.buf.len() < BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        let ok = match state.commit(&batch.buf) {
            Ok(()) => {
                if !batch.buf.is_empty() {
                    commits.fetch_add(1, Ordering::Relaxed);
                }
                state.index(&batch);
                true
            }
            Err(e) => {
                tracing::error!("message store: write failed, persistent publishes are refused from now on: {e}");
                failed.store(true, Ordering::Relaxed);
                false
            }
        };
        for (mark, seq) in batch.marks.drain(..) {
            mark.advance(seq, ok);
        }
        // A full segment is closed at once, so that it can be deleted as
        // soon as its last message is acknowledged; a sync answers after
        // that, so that "synced" also means "dead segments are gone".
        if let Err(e) = state.rotate_if_full() {
            tracing::error!("message store: cannot start a new segment: {e}");
        }
        state.delete_dead_segments();
        for sync in batch.syncs.drain(..) {
            let _ = sync.send(ok);
        }
        batch.buf.clear();
        batch.published.clear();
        batch.acked.clear();
    }
}

impl Batch {
    /// Encodes an operation; `base` is the segment's size before this batch.
    fn add(&mut self, op: Op, base: u64) {
        match op {
            Op::Publish { record, mark } => {
                let start = self.buf.len();
                encode_publish(&mut self.buf, &record);
                let located = Located {
                    id: record.id,
                    offset: (base as usize + start + RECORD_HEADER) as u32,
                    len: (self.buf.len() - start - RECORD_HEADER) as u32,
                };
                self.published.push((located, record.queues.len() as u64));
                self.marks.extend(mark);
            }
            Op::Ack { vhost, queue, ids } => {
                encode_ack(&mut self.buf, &vhost, &queue, &ids);
                self.acked.extend(ids);
            }
            Op::Sync(reply) => self.syncs.push(reply),
        }
    }
}

impl WriterState {
    fn active_size(&self) -> u64 {
        self.segments.read_list().last().map_or(0, |s| s.size)
    }

    /// Writes and syncs a batch; on failure the segment is cut back to what
    /// was there before, so no half-written record stays.
    fn commit(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let before = self.active_size();
        let result = self
            .file
            .write_all(buf)
            .and_then(|()| self.file.sync_data());
        if result.is_err() {
            let _ = self.file.set_len(before);
        }
        result
    }

    /// After a commit: the new records join the index (publishes first, so
    /// that an ack in the same batch finds its message), then acks release.
    fn index(&mut self, batch: &Batch) {
        let mut list = self.segments.write_list();
        let active = list.last_mut().expect("always one segment");
        active.size += batch.buf.len() as u64;
        let entries: Vec<Located> = batch.published.iter().map(|(l, _)| *l).collect();
        active.extend(&entries);
        active.live += batch
            .published
            .iter()
            .map(|(_, queues)| queues)
            .sum::<u64>();
        for id in &batch.acked {
            if let Some((i, _)) = Segments::locate_in(&list, *id) {
                list[i].live = list[i].live.saturating_sub(1);
            }
        }
    }

    fn rotate_if_full(&mut self) -> io::Result<()> {
        if self.active_size() < segment_size() {
            return Ok(());
        }
        let number = self.segments.read_list().last().map_or(1, |s| s.number + 1);
        let (file, segment) = create_segment(&self.segments.dir, number)?;
        self.file = file;
        self.segments.write_list().push(segment);
        Ok(())
    }

    /// Deletes the oldest closed segments whose messages are all acknowledged.
    pub fn delete_dead_segments(&mut self) {
        loop {
            let number = {
                let mut list = self.segments.write_list();
                if list.len() < 2 || list[0].live != 0 {
                    return;
                }
                list.remove(0).number
            };
            self.segments.forget_file(number);
            if let Err(e) = std::fs::remove_file(segment_path(&self.segments.dir, number)) {
                tracing::warn!("message store: cannot delete segment {number}: {e}");
            }
        }
    }
}

/// Creates segment `number` with its file header, durably, for appending.
pub(crate) fn create_segment(dir: &std::path::Path, number: u32) -> io::Result<(File, Segment)> {
    let path = segment_path(dir, number);
    let mut file = File::options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    file.write_all(FILE_HEADER)?;
    file.sync_data()?;
    sync_dir(dir);
    let file = File::options().append(true).open(&path)?;
    let mut segment = Segment::new(number);
    segment.size = FILE_HEADER.len() as u64;
    Ok((file, segment))
}
