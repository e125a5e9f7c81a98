//! Reading the segments back at startup: which messages each queue still
//! holds (ids only: bodies stay on disk until a queue needs them), torn
//! tails cut off, the index and reference counts rebuilt.

use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::codec::Reader;
use crate::messages::{Recovered, StoredMessage};
use crate::record::{records, Torn};
use crate::segments::{segment_path, Located, Segment, Segments};
use crate::writer::{segment_size, WriterState, ACK, PUBLISH};

type QueueKey = (Bytes, Bytes);

fn segment_numbers(dir: &Path) -> io::Result<Vec<u32>> {
    let mut numbers: Vec<u32> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// What a queue's records say: ids published to it, ids acknowledged.
#[derive(Default)]
struct QueueLog {
    published: Vec<u64>,
    acked: HashSet<u64>,
}

/// Returns what the queues hold, the writer's state, and the next message id.
pub(crate) fn recover(dir: &Path) -> io::Result<(Recovered, WriterState, u64)> {
    let numbers = segment_numbers(dir)?;
    let mut queues: HashMap<QueueKey, QueueLog> = HashMap::new();
    let mut segments = Vec::new();
    let mut dropped_bytes = 0;
    let mut max_id = 0;
    for (index, &number) in numbers.iter().enumerate() {
        let path = segment_path(dir, number);
        // One segment in memory at a time.
        let data = Bytes::from(std::fs::read(&path)?);
        let scan = records(&data);
        let mut segment = Segment::new(number);
        segment.size = data.len() as u64;
        if let Some((at, why)) = scan.torn {
            let lost = data.len() - at;
            dropped_bytes += lost as u64;
            let last = index + 1 == numbers.len();
            tracing::warn!(
                "message store: segment {number}: {} record at byte {at}, {lost} bytes dropped{}",
                if why == Torn::Truncated {
                    "torn"
                } else {
                    "corrupt"
                },
                if last {
                    " (the write the crash interrupted)"
                } else {
                    ""
                }
            );
            File::options()
                .write(true)
                .open(&path)?
                .set_len(at as u64)?;
            segment.size = at as u64;
        }
        let mut entries = Vec::new();
        for range in scan.records {
            let (offset, len) = (range.start as u32, range.len() as u32);
            let payload = data.slice(range);
            match payload.first() {
                Some(&PUBLISH) => {
                    let Some((message, vhost, names)) = parse_publish(&payload) else {
                        continue;
                    };
                    max_id = max_id.max(message.id);
                    entries.push(Located {
                        id: message.id,
                        offset,
                        len,
                    });
                    for name in names {
                        queues
                            .entry((vhost.clone(), name))
                            .or_default()
                            .published
                            .push(message.id);
                    }
                }
                Some(&ACK) => {
                    let Some((vhost, queue, ids)) = parse_ack(&payload) else {
                        continue;
                    };
                    queues.entry((vhost, queue)).or_default().acked.extend(ids);
                }
                _ => tracing::warn!("message store: segment {number}: unreadable record skipped"),
            }
        }
        segment.extend(&entries);
        segments.push(segment);
    }

    let mut recovered = Recovered {
        dropped_bytes,
        ..Default::default()
    };
    for (key, log) in queues {
        let mut ids: Vec<u64> = log
            .published
            .into_iter()
            .filter(|id| !log.acked.contains(id))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for id in &ids {
            if let Some((i, _)) = Segments::locate_in(&segments, *id) {
                segments[i].live += 1;
            }
        }
        if !ids.is_empty() {
            recovered.queues.insert(key, ids);
        }
    }

    let writer = open_writer(dir, segments)?;
    Ok((recovered, writer, max_id + 1))
}

/// Appends to the last segment if it has room, else starts a new one.
fn open_writer(dir: &Path, mut segments: Vec<Segment>) -> io::Result<WriterState> {
    let reuse = segments.last().is_some_and(|s| s.size < segment_size());
    if !reuse {
        let number = segments.last().map_or(1, |s| s.number + 1);
        segments.push(Segment::new(number));
    }
    let active = segments.last().expect("one segment").number;
    let file = File::options()
        .create(true)
        .append(true)
        .open(segment_path(dir, active))?;
    crate::writer::sync_dir(dir);
    let mut state = WriterState {
        segments: Arc::new(Segments::new(dir.to_path_buf(), segments)),
        file,
    };
    state.delete_dead_segments();
    Ok(state)
}

/// Decodes a publish record; strings and the body are slices of `payload`.
pub(crate) fn parse_publish(payload: &Bytes) -> Option<(StoredMessage, Bytes, Vec<Bytes>)> {
    let mut r = Reader::new(payload);
    let slice = |s: &[u8]| payload.slice_ref(s);
    if r.u8()? != PUBLISH {
        return None;
    }
    let id = r.u64()?;
    let vhost = slice(r.short()?);
    let exchange = slice(r.short()?);
    let routing_key = slice(r.short()?);
    let count = r.u16()?;
    let queues = (0..count)
        .map(|_| r.short().map(slice))
        .collect::<Option<Vec<_>>>()?;
    let header = slice(r.long()?);
    let body = slice(r.long()?);
    Some((
        StoredMessage {
            id,
            exchange,
            routing_key,
            header,
            body,
        },
        vhost,
        queues,
    ))
}

fn parse_ack(payload: &Bytes) -> Option<(Bytes, Bytes, Vec<u64>)> {
    let mut r = Reader::new(payload);
    let slice = |s: &[u8]| payload.slice_ref(s);
    if r.u8()? != ACK {
        return None;
    }
    let vhost = slice(r.short()?);
    let queue = slice(r.short()?);
    let count = r.u32()?;
    let ids = (0..count).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
    Some((vhost, queue, ids))
}
