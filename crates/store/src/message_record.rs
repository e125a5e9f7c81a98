//! The payloads of the message log's records: a publish (the message and
//! the durable queues it went to) and an ack (ids a queue is done with),
//! written by the writer thread and read back at recovery.

use bytes::Bytes;

use crate::fields::*;
use crate::record::frame_with;

pub const PUBLISH: u8 = b'P';
pub const ACK: u8 = b'A';

/// A persistent message for the log, with the durable queues it went to.
pub struct PublishRecord {
    pub id: u64,
    pub vhost: Bytes,
    pub exchange: Bytes,
    pub routing_key: Bytes,
    pub queues: Vec<Bytes>,
    pub header: Bytes,
    pub body: Bytes,
    /// When it was published and when it expires (ms since the epoch), for
    /// queues with a message TTL and messages with an `expiration`; both
    /// 0 when neither applies, and then not written.
    pub published_at: u64,
    pub expires_at: u64,
}

/// A message read back at startup.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub id: u64,
    pub exchange: Bytes,
    pub routing_key: Bytes,
    pub header: Bytes,
    pub body: Bytes,
    /// As written (0: not recorded, as in records of older Warrens).
    pub published_at: u64,
    pub expires_at: u64,
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
        // Optional, after the body: readers that do not know them stop
        // before them, so the format stays 2.
        if r.published_at != 0 || r.expires_at != 0 {
            put_u64(p, r.published_at);
            put_u64(p, r.expires_at);
        }
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

pub(crate) fn publish_id(payload: &[u8]) -> Option<u64> {
    let mut r = Reader::new(payload);
    (r.u8()? == PUBLISH).then_some(())?;
    r.u64()
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
    let (published_at, expires_at) = match (r.u64(), r.u64()) {
        (Some(p), Some(e)) => (p, e),
        _ => (0, 0),
    };
    Some((
        StoredMessage {
            id,
            exchange,
            routing_key,
            header,
            body,
            published_at,
            expires_at,
        },
        vhost,
        queues,
    ))
}

pub(crate) fn parse_ack(payload: &Bytes) -> Option<(Bytes, Bytes, Vec<u64>)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RECORD_HEADER;

    fn record(published_at: u64, expires_at: u64) -> PublishRecord {
        PublishRecord {
            id: 7,
            vhost: Bytes::from_static(b"/"),
            exchange: Bytes::new(),
            routing_key: Bytes::from_static(b"q"),
            queues: vec![Bytes::from_static(b"q")],
            header: Bytes::from_static(b"\x00\x3c\x00\x00"),
            body: Bytes::from_static(b"body"),
            published_at,
            expires_at,
        }
    }

    fn round_trip(r: &PublishRecord) -> (StoredMessage, usize) {
        let mut out = Vec::new();
        encode_publish(&mut out, r);
        let payload = Bytes::from(out[RECORD_HEADER..].to_vec());
        let (message, _, _) = parse_publish(&payload).unwrap();
        (message, payload.len())
    }

    #[test]
    fn publish_times_are_kept_only_when_set() {
        let (timed, timed_len) = round_trip(&record(1_700_000_000_000, 1_700_000_060_000));
        assert_eq!(
            (timed.published_at, timed.expires_at),
            (1_700_000_000_000, 1_700_000_060_000)
        );
        let (plain, plain_len) = round_trip(&record(0, 0));
        assert_eq!((plain.published_at, plain.expires_at), (0, 0));
        assert_eq!(plain.body.as_ref(), b"body");
        // A plain record is what older Warrens wrote, byte for byte.
        assert_eq!(timed_len, plain_len + 16);
    }
}
