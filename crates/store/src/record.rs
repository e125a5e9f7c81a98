//! Record framing: length, CRC32C, payload. A record that is cut short or
//! fails its CRC ends the readable part of a file.

/// Length and CRC.
pub const FRAME_HEADER: usize = 8;
/// Larger records are taken for corruption, not allocated.
pub const MAX_RECORD: usize = 1 << 30;

/// Appends a record whose payload `write` produces, framing it in place.
pub fn frame_with(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    write(out);
    let payload = &out[start + FRAME_HEADER..];
    let len = (payload.len() as u32).to_be_bytes();
    let crc = crc32c::crc32c(payload).to_be_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// Why reading stopped before the end of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Torn {
    /// The file ends inside a record.
    Truncated,
    /// A record's CRC does not match (or its length is absurd).
    Corrupt,
}

/// The payload ranges of a file's records and, if the file does not end on a
/// record boundary, where the readable part ends and why.
pub struct Scan {
    pub records: Vec<std::ops::Range<usize>>,
    pub torn: Option<(usize, Torn)>,
}

pub fn records(data: &[u8]) -> Scan {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let Some(header) = data.get(at..at + FRAME_HEADER) else {
            return Scan {
                records: out,
                torn: Some((at, Torn::Truncated)),
            };
        };
        let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
        let crc = u32::from_be_bytes(header[4..].try_into().unwrap());
        if len > MAX_RECORD {
            return Scan {
                records: out,
                torn: Some((at, Torn::Corrupt)),
            };
        }
        let body = at + FRAME_HEADER..at + FRAME_HEADER + len;
        let Some(payload) = data.get(body.clone()) else {
            return Scan {
                records: out,
                torn: Some((at, Torn::Truncated)),
            };
        };
        if crc32c::crc32c(payload) != crc {
            return Scan {
                records: out,
                torn: Some((at, Torn::Corrupt)),
            };
        }
        out.push(body.clone());
        at = body.end;
    }
    Scan {
        records: out,
        torn: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_torn_tails_are_found() {
        let mut data = Vec::new();
        frame_with(&mut data, |out| out.extend_from_slice(b"one"));
        frame_with(&mut data, |out| out.extend_from_slice(b"two"));
        let whole = data.len();
        let scan = records(&data);
        assert_eq!(scan.records.len(), 2);
        assert_eq!(&data[scan.records[1].clone()], b"two");
        assert_eq!(scan.torn, None);
        frame_with(&mut data, |out| out.extend_from_slice(b"three"));
        data.truncate(data.len() - 2);
        let scan = records(&data);
        assert_eq!(scan.records.len(), 2);
        assert_eq!(scan.torn, Some((whole, Torn::Truncated)));
        let mut flipped = data[..whole].to_vec();
        flipped[whole - 1] ^= 1;
        assert_eq!(records(&flipped).torn.map(|(_, t)| t), Some(Torn::Corrupt));
    }
}
