//! Reading the segments back at startup: what each queue still holds, torn
//! tails cut off, reference counts rebuilt.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::path::Path;

use crate::codec::Reader;
use crate::messages::{Recovered, StoredMessage};
use crate::record::{records, Torn};
use crate::writer::{segment_path, segment_size, Segment, WriterState, ACK, PUBLISH};

type QueueKey = (Bytes, Bytes);

fn segment_numbers(dir: &Path) -> io::Result<Vec<u32>> {
    let mut numbers: Vec<u32> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".seg")?.parse().ok())
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// Returns what the queues hold, the writer's state, and the next message id.
pub(crate) fn recover(dir: &Path) -> io::Result<(Recovered, WriterState, u64)> {
    let numbers = segment_numbers(dir)?;
    let mut messages: HashMap<u64, (StoredMessage, usize)> = HashMap::new();
    let mut queues: HashMap<QueueKey, BTreeMap<u64, ()>> = HashMap::new();
    let mut segments = Vec::new();
    let mut dropped_bytes = 0;
    let mut max_id = 0;
    for (index, &number) in numbers.iter().enumerate() {
        let path = segment_path(dir, number);
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
        for range in scan.records {
            let payload = data.slice(range);
            let Some(record) = parse(&payload) else {
                tracing::warn!("message store: segment {number}: unreadable record skipped");
                continue;
            };
            match record {
                Parsed::Publish {
                    message,
                    vhost,
                    queues: names,
                } => {
                    max_id = max_id.max(message.id);
                    segment.first_id = segment.first_id.min(message.id);
                    segment.last_id = segment.last_id.max(message.id);
                    for name in names {
                        queues
                            .entry((vhost.clone(), name))
                            .or_default()
                            .insert(message.id, ());
                    }
                    messages.insert(message.id, (message, segments.len()));
                }
                Parsed::Ack { vhost, queue, ids } => {
                    if let Some(held) = queues.get_mut(&(vhost, queue)) {
                        for id in ids {
                            held.remove(&id);
                        }
                    }
                }
            }
        }
        segments.push(segment);
    }

    let mut recovered = Recovered {
        dropped_bytes,
        ..Default::default()
    };
    for (key, ids) in queues {
        if ids.is_empty() {
            continue;
        }
        let list = ids
            .keys()
            .filter_map(|id| messages.get(id))
            .map(|(message, segment)| {
                segments[*segment].live += 1;
                message.clone()
            })
            .collect();
        recovered.queues.insert(key, list);
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
    let active = segments.last().expect("one segment");
    let file = File::options()
        .create(true)
        .append(true)
        .open(segment_path(dir, active.number))?;
    crate::writer::sync_dir(dir);
    let mut state = WriterState {
        dir: dir.to_path_buf(),
        segments,
        file,
    };
    state.delete_dead_segments();
    Ok(state)
}

enum Parsed {
    Publish {
        message: StoredMessage,
        vhost: Bytes,
        queues: Vec<Bytes>,
    },
    Ack {
        vhost: Bytes,
        queue: Bytes,
        ids: Vec<u64>,
    },
}

/// Decodes a record; strings and bodies are slices of the segment's buffer.
fn parse(payload: &Bytes) -> Option<Parsed> {
    let mut r = Reader::new(payload);
    let slice = |s: &[u8]| payload.slice_ref(s);
    match r.u8()? {
        PUBLISH => {
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
            let message = StoredMessage {
                id,
                exchange,
                routing_key,
                header,
                body,
            };
            Some(Parsed::Publish {
                message,
                vhost,
                queues,
            })
        }
        ACK => {
            let vhost = slice(r.short()?);
            let queue = slice(r.short()?);
            let count = r.u32()?;
            let ids = (0..count).map(|_| r.u64()).collect::<Option<Vec<_>>>()?;
            Some(Parsed::Ack { vhost, queue, ids })
        }
        _ => None,
    }
}
