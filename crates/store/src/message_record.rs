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
