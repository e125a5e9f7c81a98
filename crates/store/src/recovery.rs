//! Reading the segments back at startup: which messages each queue still
//! holds (ids only: bodies stay on disk until a queue needs them), the index
//! and reference counts rebuilt. A torn tail of the newest segment (the
//! write a crash interrupted) is cut off; damage anywhere else is skipped,
//! reported once and marked so that the next start passes over it.

use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::message_record::{parse_ack, parse_publish, publish_id, ACK, PUBLISH};
use crate::record::{records, skip_frame, Format, FILE_HEADER, SKIP};
use crate::segments::{segment_path, Located, Segment, Segments};
use crate::writer::{segment_size, WriterState};

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

fn with_path(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Returns what the queues hold, the writer's state, and the next message id.
pub(crate) fn recover(dir: &Path) -> io::Result<(Recovered, WriterState, u64)> {
    let numbers = segment_numbers(dir)?;
    let mut queues: HashMap<QueueKey, QueueLog> = HashMap::new();
    let mut segments = Vec::new();
    let mut recovered = Recovered::default();
    let mut max_id = 0;
    let mut damages: Vec<Found> = Vec::new();
    let mut last_id = None;
    // Whether the newest segment can take more records (format 2, whole header).
    let mut appendable = false;
    for (index, &number) in numbers.iter().enumerate() {
        let path = segment_path(dir, number);
        // One segment in memory at a time.
        let data = Bytes::from(std::fs::read(&path).map_err(|e| with_path(&path, e))?);
        let newest = index + 1 == numbers.len();
        let mut segment = Segment::new(number);
        segment.size = data.len() as u64;
        // A segment created just before a crash may hold part of its header.
        if data.len() < FILE_HEADER.len() && FILE_HEADER.starts_with(&data) {
            segments.push(segment);
            appendable = false;
            continue;
        }
        let format = Format::of(&data);
        let mut scan = records(&data, PUBLISH);
        if let (true, Some(at)) = (newest, scan.torn_tail(data.len())) {
            let lost = data.len() - at;
            recovered.dropped_bytes += lost as u64;
            tracing::warn!(
                "message store: segment {number}: {lost} bytes of a torn record cut off at byte {at} (the write the crash interrupted)"
            );
            File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(at as u64))
                .map_err(|e| with_path(&path, e))?;
            segment.size = at as u64;
            scan.damaged.pop();
        }
        for damage in &scan.damaged {
            let marked = mark_skipped(&path, &data, damage.range.clone(), format);
            // The publish ids just before it, from this segment or older ones.
            let before = scan
                .records
                .iter()
                .rev()
                .filter(|r| r.end <= damage.range.start)
                .find_map(|r| publish_id(&data[r.clone()]))
                .or(last_id);
            damages.push(Found {
                path: path.clone(),
                report: DamageReport {
                    segment: number,
                    range: damage.range.clone(),
                    messages_lost: damage.publishes,
                },
                marked,
                before,
                after: scan
                    .records
                    .iter()
                    .filter(|r| r.start >= damage.range.end)
                    .find_map(|r| publish_id(&data[r.clone()])),
            });
        }
        let mut entries = Vec::new();
        for range in scan.records {
            let (offset, len) = (range.start as u32, range.len() as u32);
            let payload = data.slice(range);
            match payload.first() {
                Some(&PUBLISH) => {
                    let Some((message, vhost, names)) = parse_publish(&payload) else {
                        tracing::warn!("message store: segment {number}: unreadable publish record at byte {offset} skipped");
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
                        tracing::warn!("message store: segment {number}: unreadable ack record at byte {offset} skipped");
                        continue;
                    };
                    queues.entry((vhost, queue)).or_default().acked.extend(ids);
                }
                Some(&SKIP) => {}
                _ => tracing::warn!(
                    "message store: segment {number}: record of unknown type at byte {offset} skipped"
                ),
            }
        }
        appendable = format == Format::V2;
        // A damage at a segment's end: the next publish is in a newer one.
        if let Some(first) = entries.first() {
            for found in damages
                .iter_mut()
                .filter(|f| f.after.is_none() && f.report.segment != number)
            {
                found.after = Some(first.id);
            }
        }
        last_id = entries.last().map(|e| e.id).or(last_id);
        segment.extend(&entries);
        segments.push(segment);
    }

    for found in damages {
        report(&segments, found, max_id, &mut recovered);
    }

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

    let writer = open_writer(dir, segments, appendable)?;
    Ok((recovered, writer, max_id + 1))
}

/// Damage found in a scan, with the publish ids around it.
struct Found {
    path: std::path::PathBuf,
    report: DamageReport,
    marked: bool,
    before: Option<u64>,
    after: Option<u64>,
}

/// Logs damage once, counting the messages lost: ids are handed out in
/// order, so the ids between its neighbours that no record holds were in
/// it (the markers it still shows, if that says more).
fn report(segments: &[Segment], mut found: Found, max_id: u64, recovered: &mut Recovered) {
    // Without a publish before it, older ids may be in deleted segments.
    let missing = found.before.map_or(0, |before| {
        let high = found.after.unwrap_or(max_id + 1);
        (before + 1..high)
            .filter(|id| Segments::locate_in(segments, *id).is_none())
            .count()
    });
    let report = &mut found.report;
    report.messages_lost = report.messages_lost.max(missing);
    tracing::error!(
        "message store: {}: bytes {}..{} are damaged and were skipped; {} persistent messages in them are lost{}",
        found.path.display(),
        report.range.start,
        report.range.end,
        report.messages_lost,
        if found.marked {
            "; marked, so this is not reported again"
        } else {
            ""
        }
    );
    recovered.damage.push(found.report);
}

/// Writes a skip record over damaged bytes; false if it could not.
fn mark_skipped(path: &Path, data: &[u8], range: std::ops::Range<usize>, format: Format) -> bool {
    let Some(frame) = skip_frame(&data[range.clone()], format) else {
        return false;
    };
    let written = File::options().write(true).open(path).and_then(|file| {
        file.write_all_at(&frame, range.start as u64)?;
        file.sync_data()
    });
    match written {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("message store: {}: cannot mark damage: {e}", path.display());
            false
        }
    }
}

/// Appends to the last segment if it is in today's format and has room,
/// else starts a new one.
fn open_writer(
    dir: &Path,
    mut segments: Vec<Segment>,
    appendable: bool,
) -> io::Result<WriterState> {
    let reuse = appendable && segments.last().is_some_and(|s| s.size < segment_size());
    let file = if reuse {
        let active = segments.last().expect("one segment").number;
        File::options()
            .append(true)
            .open(segment_path(dir, active))?
    } else {
        let number = segments.last().map_or(1, |s| s.number + 1);
        let (file, segment) = crate::writer::create_segment(dir, number)?;
        segments.push(segment);
        file
    };
    let mut state = WriterState {
        segments: Arc::new(Segments::new(dir.to_path_buf(), segments)),
        file,
    };
    state.delete_dead_segments();
    Ok(state)
}
