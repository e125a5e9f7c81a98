//! Record framing, and scanning a file of records past damage.
//!
//! Format 2 (files that begin with [`FILE_HEADER`]): each record is a magic
//! marker, the payload's length, a CRC32C over the length and the payload,
//! then the payload. A scan that meets a bad record skips to the next
//! marker that starts a valid record, so one damaged byte costs one record,
//! not the rest of the file.
//!
//! Format 1 (files without the header, written before): length, CRC32C of
//! the payload, payload. Still read; a scan resynchronises by trying every
//! offset.

use std::ops::Range;

/// The first bytes of every format-2 file.
pub const FILE_HEADER: &[u8; 8] = b"WARREN2\n";
/// Marks the start of each format-2 record.
pub const MAGIC: [u8; 4] = [0xa5, b'W', b'R', 0x5a];
/// Magic, length and CRC.
pub const RECORD_HEADER: usize = 12;
const V1_RECORD_HEADER: usize = 8;
/// Larger records are taken for corruption, not allocated.
pub const MAX_RECORD: usize = 1 << 30;
/// The payload type of a record that covers damaged bytes already reported.
pub const SKIP: u8 = b'S';

/// How a file's records are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    V1,
    V2,
}

impl Format {
    /// The format of a file, from its first bytes.
    pub fn of(data: &[u8]) -> Format {
        if data.starts_with(FILE_HEADER) {
            Format::V2
        } else {
            Format::V1
        }
    }

    /// Where the first record starts.
    pub fn start(self) -> usize {
        match self {
            Format::V1 => 0,
            Format::V2 => FILE_HEADER.len(),
        }
    }

    fn header(self) -> usize {
        match self {
            Format::V1 => V1_RECORD_HEADER,
            Format::V2 => RECORD_HEADER,
        }
    }
}

fn crc(len: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len.to_be_bytes()), payload)
}

/// Appends a format-2 record whose payload `write` produces, framing it in place.
pub fn frame_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    write(out);
    let len = (out.len() - start - RECORD_HEADER) as u32;
    let crc = crc(len, &out[start + RECORD_HEADER..]);
    out[start..start + 4].copy_from_slice(&MAGIC);
    out[start + 4..start + 8].copy_from_slice(&len.to_be_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_be_bytes());
}

/// The frame header that turns `damaged` (more than a frame header's bytes
/// of a file in `format`) into one valid [`SKIP`] record, with the payload's
/// first byte: written over the damage's first bytes, so that later scans
/// pass over it silently.
pub fn skip_frame(damaged: &[u8], format: Format) -> Option<Vec<u8>> {
    let header = format.header();
    if damaged.len() <= header {
        return None;
    }
    let mut payload = damaged[header..].to_vec();
    payload[0] = SKIP;
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(header + 1);
    match format {
        Format::V2 => {
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&crc(len, &payload).to_be_bytes());
        }
        Format::V1 => {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        }
    }
    out.push(SKIP);
    Some(out)
}

/// A byte range that holds no valid record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub range: Range<usize>,
    /// Records of type `publish_type` it seems to have held: an estimate of
    /// the messages whose records it destroyed (format 2 only).
    pub publishes: usize,
}

/// A file's records and the damage between them.
#[derive(Debug, Default)]
pub struct Scan {
    /// Payload ranges of the valid records, in file order.
    pub records: Vec<Range<usize>>,
    /// Damaged ranges, in file order. The last may run to the end of the
    /// file: a torn tail if the file was being written.
    pub damaged: Vec<Damage>,
}

impl Scan {
    /// Where the readable part ends if the file ends in damage.
    pub fn torn_tail(&self, len: usize) -> Option<usize> {
        self.damaged
            .last()
            .filter(|d| d.range.end == len)
            .map(|d| d.range.start)
    }
}

/// The payload range of a valid record at `at`, if one starts there.
fn record_at(data: &[u8], at: usize, format: Format) -> Option<Range<usize>> {
    let header = data.get(at..at + format.header())?;
    let (len, stored_crc) = match format {
        Format::V2 => {
            if header[..4] != MAGIC {
                return None;
            }
            (&header[4..8], &header[8..12])
        }
        Format::V1 => (&header[..4], &header[4..8]),
    };
    let len = u32::from_be_bytes(len.try_into().unwrap());
    let stored_crc = u32::from_be_bytes(stored_crc.try_into().unwrap());
    // A zero length is never a record: zeroed disk blocks would pass.
    if len == 0 || len as usize > MAX_RECORD {
        return None;
    }
    let body = at + format.header()..at + format.header() + len as usize;
    let payload = data.get(body.clone())?;
    let ok = match format {
        Format::V2 => crc(len, payload) == stored_crc,
        Format::V1 => crc32c::crc32c(payload) == stored_crc,
    };
    ok.then_some(body)
}

/// The next offset after `from` where a valid record starts.
fn resync(data: &[u8], from: usize, format: Format) -> Option<usize> {
    match format {
        Format::V2 => (from..data.len().saturating_sub(RECORD_HEADER - 1))
            .filter(|&at| data[at..at + 4] == MAGIC)
            .find(|&at| record_at(data, at, format).is_some()),
        Format::V1 => (from..data.len()).find(|&at| record_at(data, at, format).is_some()),
    }
}

/// Scans a whole file; `publish_type` is the payload type counted in
/// damaged ranges.
pub fn records(data: &[u8], publish_type: u8) -> Scan {
    let format = Format::of(data);
    let mut scan = Scan::default();
    let mut at = format.start().min(data.len());
    while at < data.len() {
        if let Some(body) = record_at(data, at, format) {
            at = body.end;
            scan.records.push(body);
            continue;
        }
        let end = resync(data, at + 1, format).unwrap_or(data.len());
        // The damage starts where a record should: its type byte is
        // likely intact even if its marker is not. Records after it are
        // counted by their markers.
        let publishes = match format {
            Format::V2 => {
                let first = data.get(at + RECORD_HEADER) == Some(&publish_type);
                let later = (at + 1..end.saturating_sub(RECORD_HEADER))
                    .filter(|&i| data[i..i + 4] == MAGIC && data[i + RECORD_HEADER] == publish_type)
                    .count();
                first as usize + later
            }
            Format::V1 => 0,
        };
        scan.damaged.push(Damage {
            range: at..end,
            publishes,
        });
        at = end;
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut data = FILE_HEADER.to_vec();
        let mut starts = Vec::new();
        for p in payloads {
            starts.push(data.len());
            frame_with(&mut data, |out| out.extend_from_slice(p));
        }
        (data, starts)
    }

    fn payloads<'a>(data: &'a [u8], scan: &Scan) -> Vec<&'a [u8]> {
        scan.records.iter().map(|r| &data[r.clone()]).collect()
    }

    #[test]
    fn frames_round_trip_and_torn_tails_are_found() {
        let (mut data, _) = file(&[b"Pone", b"Ptwo"]);
        let whole = data.len();
        let scan = records(&data, b'P');
        assert_eq!(payloads(&data, &scan), [b"Pone", b"Ptwo"]);
        assert!(scan.damaged.is_empty());
        frame_with(&mut data, |out| out.extend_from_slice(b"Pthree"));
        data.truncate(data.len() - 2);
        let scan = records(&data, b'P');
        assert_eq!(scan.records.len(), 2);
        assert_eq!(scan.torn_tail(data.len()), Some(whole));
    }

    #[test]
    fn one_bad_record_costs_only_itself() {
        let (mut data, starts) = file(&[b"Pone", b"Ptwo", b"Athree", b"Pfour"]);
        for offset in [starts[1], starts[1] + 5, starts[1] + 13, starts[2] - 1] {
            let mut damaged = data.clone();
            damaged[offset] ^= 0x40;
            let scan = records(&damaged, b'P');
            assert_eq!(
                payloads(&damaged, &scan),
                [&b"Pone"[..], b"Athree", b"Pfour"],
                "flip at {offset}"
            );
            assert_eq!(scan.damaged.len(), 1);
            assert_eq!(scan.damaged[0].range, starts[1]..starts[2]);
            assert_eq!(scan.torn_tail(damaged.len()), None);
        }
        // Marked as skipped, the damage reads as a record nobody uses.
        data[starts[1] + 14] ^= 1;
        let scan = records(&data, b'P');
        assert_eq!(scan.damaged[0].publishes, 1);
        let range = scan.damaged[0].range.clone();
        let frame = skip_frame(&data[range.clone()], Format::V2).unwrap();
        data[range.start..range.start + frame.len()].copy_from_slice(&frame);
        let scan = records(&data, b'P');
        assert!(scan.damaged.is_empty());
        assert_eq!(data[scan.records[1].start], SKIP);
    }

    #[test]
    fn zeroed_blocks_are_one_damaged_range_not_empty_records() {
        let (mut data, starts) = file(&[b"Pone", b"Ptwo", b"Pthree"]);
        data[starts[1]..starts[2]].fill(0);
        let scan = records(&data, b'P');
        assert_eq!(payloads(&data, &scan), [&b"Pone"[..], b"Pthree"]);
        assert_eq!(scan.damaged.len(), 1);
        // Format 1 too: a zero length is never a record.
        let zeros = vec![0u8; 4096];
        let scan = records(&zeros, b'P');
        assert!(scan.records.is_empty());
        assert_eq!(scan.damaged.len(), 1);
    }

    #[test]
    fn format_1_files_are_still_read_and_resynchronised() {
        let mut data = Vec::new();
        let mut starts = Vec::new();
        for p in [&b"Pone"[..], b"Ptwo", b"Pthree"] {
            starts.push(data.len());
            data.extend_from_slice(&(p.len() as u32).to_be_bytes());
            data.extend_from_slice(&crc32c::crc32c(p).to_be_bytes());
            data.extend_from_slice(p);
        }
        assert_eq!(Format::of(&data), Format::V1);
        assert_eq!(
            payloads(&data, &records(&data, b'P')),
            [&b"Pone"[..], b"Ptwo", b"Pthree"]
        );
        data[starts[1] + 9] ^= 1;
        let scan = records(&data, b'P');
        assert_eq!(payloads(&data, &scan), [&b"Pone"[..], b"Pthree"]);
        assert_eq!(scan.damaged[0].range, starts[1]..starts[2]);
    }
}
