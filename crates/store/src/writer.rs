//! The writer thread: batches records, writes them with one write and one
//! fdatasync (group commit), then tells publishers; deletes segments whose
//! messages are all acknowledged.

use bytes::Bytes;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

use crate::codec::*;
use crate::messages::{DurableMark, PublishRecord};
use crate::record::frame_with;

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

pub const PUBLISH: u8 = b'P';
pub const ACK: u8 = b'A';

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

/// One segment file and the message ids published in it.
#[derive(Debug)]
pub(crate) struct Segment {
    pub number: u32,
    /// `first_id > last_id` while empty.
    pub first_id: u64,
    pub last_id: u64,
    /// Queue references to its messages not yet acknowledged.
    pub live: u64,
    pub size: u64,
}

impl Segment {
    pub fn new(number: u32) -> Self {
        Segment {
            number,
            first_id: u64::MAX,
            last_id: 0,
            live: 0,
            size: 0,
        }
    }
}

pub(crate) fn segment_path(dir: &std::path::Path, number: u32) -> PathBuf {
    dir.join(format!("{number:010}.seg"))
}

pub(crate) struct WriterState {
    pub dir: PathBuf,
    /// Oldest first; the last one is written to.
    pub segments: Vec<Segment>,
    pub file: File,
}

pub(crate) fn encode_publish(out: &mut Vec<u8>, r: &PublishRecord) {
    frame_with(out, |p| {
        put_u8(p, PUBLISH);
        put_u64(p, r.id);
        put_short(p, &r.vhost);
        put_short(p, &r.exchange);
        put_short(p, &r.routing_key);
        put_u16(p, r.queues.len() as u16);
        for q in &r.queues {
            put_short(p, q);
        }
        put_long(p, &r.header);
        put_long(p, &r.body);
    });
}

pub(crate) fn encode_ack(out: &mut Vec<u8>, vhost: &[u8], queue: &[u8], ids: &[u64]) {
    frame_with(out, |p| {
        put_u8(p, ACK);
        put_short(p, vhost);
        put_short(p, queue);
        put_u32(p, ids.len() as u32);
        for id in ids {
            put_u64(p, *id);
        }
    });
}

pub(crate) fn spawn(
    state: WriterState,
    rx: mpsc::Receiver<Op>,
    failed: Arc<AtomicBool>,
) -> io::Result<()> {
    std::thread::Builder::new()
        .name("warren-store".into())
        .spawn(move || run(state, rx, failed))?;
    Ok(())
}

fn run(mut state: WriterState, mut rx: mpsc::Receiver<Op>, failed: Arc<AtomicBool>) {
    let mut buf = Vec::with_capacity(BATCH_BYTES);
    let mut marks: Vec<(Arc<DurableMark>, u64)> = Vec::new();
    let mut syncs: Vec<oneshot::Sender<bool>> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        if let Err(e) = state.rotate_if_full() {
            tracing::error!("message store: cannot start a new segment: {e}");
        }
        buf.clear();
        let mut next = Some(first);
        while let Some(op) = next.take() {
            state.encode(op, &mut buf, &mut marks, &mut syncs);
            if buf.len() < BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        let ok = match state.commit(&buf) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("message store: write failed, persistent publishes are refused from now on: {e}");
                failed.store(true, Ordering::Relaxed);
                false
            }
        };
        for (mark, seq) in marks.drain(..) {
            mark.advance(seq, ok);
        }
        for sync in syncs.drain(..) {
            let _ = sync.send(ok);
        }
        state.delete_dead_segments();
    }
}

impl WriterState {
    fn active(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("always one segment")
    }

    fn encode(
        &mut self,
        op: Op,
        buf: &mut Vec<u8>,
        marks: &mut Vec<(Arc<DurableMark>, u64)>,
        syncs: &mut Vec<oneshot::Sender<bool>>,
    ) {
        match op {
            Op::Publish { record, mark } => {
                encode_publish(buf, &record);
                let segment = self.active();
                segment.first_id = segment.first_id.min(record.id);
                segment.last_id = segment.last_id.max(record.id);
                segment.live += record.queues.len() as u64;
                marks.extend(mark);
            }
            Op::Ack { vhost, queue, ids } => {
                encode_ack(buf, &vhost, &queue, &ids);
                for id in ids {
                    self.release(id);
                }
            }
            Op::Sync(reply) => syncs.push(reply),
        }
    }

    /// One queue reference to message `id` is gone.
    fn release(&mut self, id: u64) {
        let index = self
            .segments
            .partition_point(|s| s.first_id <= id && s.first_id != u64::MAX);
        if let Some(segment) = index.checked_sub(1).and_then(|i| self.segments.get_mut(i)) {
            if segment.first_id <= id && id <= segment.last_id {
                segment.live = segment.live.saturating_sub(1);
            }
        }
    }

    /// Writes and syncs a batch; on failure the segment is cut back to what
    /// was there before, so no half-written record stays.
    fn commit(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let before = self.active().size;
        let result = self
            .file
            .write_all(buf)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.active().size += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(before);
                Err(e)
            }
        }
    }

    fn rotate_if_full(&mut self) -> io::Result<()> {
        if self.active().size < segment_size() {
            return Ok(());
        }
        let number = self.active().number + 1;
        let file = File::options()
            .create(true)
            .append(true)
            .open(segment_path(&self.dir, number))?;
        sync_dir(&self.dir);
        self.file = file;
        self.segments.push(Segment::new(number));
        Ok(())
    }

    /// Deletes the oldest closed segments whose messages are all acknowledged.
    pub fn delete_dead_segments(&mut self) {
        while self.segments.len() > 1 && self.segments[0].live == 0 {
            let segment = self.segments.remove(0);
            if let Err(e) = std::fs::remove_file(segment_path(&self.dir, segment.number)) {
                tracing::warn!(
                    "message store: cannot delete segment {}: {e}",
                    segment.number
                );
            }
        }
    }
}

/// Makes a new or removed file name durable.
pub(crate) fn sync_dir(dir: &std::path::Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
