//! A consumer: one channel consuming one or more queues; every frame already
//! read is handled before the next read, and acks go out once per read.

use crate::client::{Client, Error};
use crate::plan::{Plan, Topology};
use crate::stats::{Shared, STAMP_LEN};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use warren_codec::*;

pub struct Consumer {
    /// Queue indexes this consumer consumes from (the consumer tag is the index).
    pub queues: Vec<usize>,
}

/// End-to-end latency in nanoseconds.
pub type Latency = Histogram<u64>;

pub fn new_latency() -> Latency {
    Histogram::new_with_bounds(1_000, 600_000_000_000, 3).expect("valid bounds")
}

impl Consumer {
    /// Which queues consumer `index` of `consumers` takes: its share when there
    /// are more queues than consumers, otherwise one queue shared with others.
    pub fn assign(index: usize, consumers: usize, queues: usize) -> Self {
        let queues = if consumers <= queues {
            (index..queues).step_by(consumers).collect()
        } else {
            vec![index % queues]
        };
        Consumer { queues }
    }

    /// Subscribes; the returned future consumes until told to stop.
    pub async fn start(
        self,
        plan: &Plan,
        topology: &Topology,
        mut client: Client,
    ) -> Result<Subscribed, Error> {
        if plan.prefetch > 0 {
            let qos = BasicQos {
                prefetch_count: plan.prefetch,
                ..Default::default()
            };
            client.call(qos, "basic.qos-ok").await?;
        }
        for &q in &self.queues {
            let consume = BasicConsume {
                queue: ShortString::try_from(topology.queues[q].as_str())?,
                consumer_tag: ShortString::try_from(q.to_string().as_str())?,
                no_ack: !plan.ack,
                ..Default::default()
            };
            client.call(consume, "basic.consume-ok").await?;
        }
        Ok(Subscribed { client })
    }
}

pub struct Subscribed {
    client: Client,
}

impl Subscribed {
    pub async fn run(self, plan: Arc<Plan>, shared: Arc<Shared>) -> Result<Latency, Error> {
        let mut latency = new_latency();
        let (mut reader, mut writer) = self.client.split();
        let stop = shared.stop_consumers.notified();
        tokio::pin!(stop);
        stop.as_mut().enable();
        let mut acks = BytesMut::new();
        let mut queue = 0usize;
        let mut last_tag = 0u64;
        let mut unacked = 0u32;
        // The next body frame starts a message (its stamp is in front).
        let mut body_starts = false;
        loop {
            let mut fresh = 0u64;
            let mut repeats = 0u64;
            let now = shared.now_ns();
            // Frames are read in place and the buffer advanced once: no
            // per-frame buffer splitting or method decoding on this path.
            let buf = &reader.buf[..];
            let mut pos = 0;
            while let Some((kind, payload)) = next_frame(&buf[pos..])? {
                pos += payload.len() + 8;
                match kind {
                    1 => match deliver_fields(payload) {
                        Some((tag, delivery_tag)) => {
                            queue = parse_index(tag);
                            last_tag = delivery_tag;
                            body_starts = true;
                        }
                        None => {
                            let method = Method::decode(&bytes::Bytes::copy_from_slice(payload))?;
                            if let Method::ConnectionClose(c) = &method {
                                return Err(format!(
                                    "broker closed the connection: {} {}",
                                    c.reply_code, c.reply_text
                                )
                                .into());
                            }
                            if let Method::ChannelClose(c) = &method {
                                return Err(format!(
                                    "broker closed the channel: {} {}",
                                    c.reply_code, c.reply_text
                                )
                                .into());
                            }
                        }
                    },
                    3 if body_starts => {
                        body_starts = false;
                        let stamp = payload
                            .get(..STAMP_LEN)
                            .ok_or("a body shorter than the 16-byte stamp")?;
                        let id = u64::from_be_bytes(stamp[..8].try_into().expect("8 bytes"));
                        let sent = u64::from_be_bytes(stamp[8..].try_into().expect("8 bytes"));
                        let _ = latency.record(now.saturating_sub(sent).max(1_000));
                        let seen = &shared.seen[queue.min(shared.seen.len() - 1)];
                        if seen.lock().expect("not poisoned").insert(id) {
                            fresh += 1;
                        } else {
                            repeats += 1;
                        }
                        if plan.ack {
                            unacked += 1;
                            if unacked >= plan.multi_ack.max(1) {
                                ack(&mut acks, last_tag, plan.multi_ack > 1);
                                unacked = 0;
                            }
                        }
                    }
                    _ => {}
                }
            }
            bytes::Buf::advance(&mut reader.buf, pos);
            if fresh + repeats > 0 {
                shared.delivered.fetch_add(fresh, Relaxed);
                shared.duplicates.fetch_add(repeats, Relaxed);
                shared.last_delivery_ns.fetch_max(now, Relaxed);
                shared.progress.notify_waiters();
            }
            if !acks.is_empty() {
                writer.write_all(&acks).await?;
                acks.clear();
            }
            tokio::select! {
                biased;
                _ = &mut stop => break,
                more = reader.fill() => if !more? {
                    return Err("the broker closed the consumer's connection".into());
                },
            }
        }
        if unacked > 0 {
            ack(&mut acks, last_tag, true);
        }
        let method = ConnectionClose {
            reply_code: 200,
            reply_text: ShortString::from_static("done"),
            ..Default::default()
        };
        encode_method_frame(0, &method.into(), &mut acks);
        writer.write_all(&acks).await?;
        // Wait for close-ok: closing the socket first could reset it before
        // the broker has read the last acks.
        let close_ok = async {
            loop {
                while let Some((kind, payload)) = next_frame(&reader.buf)? {
                    let len = payload.len();
                    let done = kind == 1 && payload.get(..4) == Some(&[0, 10, 0, 51][..]);
                    bytes::Buf::advance(&mut reader.buf, len + 8);
                    if done {
                        return Ok::<(), Error>(());
                    }
                }
                if !reader.fill().await? {
                    return Ok(());
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), close_ok)
            .await
            .map_err(|_| "no close-ok within 10 s")??;
        Ok(latency)
    }
}

fn ack(out: &mut BytesMut, delivery_tag: u64, multiple: bool) {
    let method = BasicAck {
        delivery_tag,
        multiple,
    };
    encode_method_frame(1, &method.into(), out);
}

fn parse_index(tag: &[u8]) -> usize {
    tag.iter()
        .fold(0usize, |n, d| n * 10 + d.wrapping_sub(b'0') as usize)
}

/// The frame at the start of `buf`: its type and payload, `None` if it is
/// not all there yet.
fn next_frame(buf: &[u8]) -> Result<Option<(u8, &[u8])>, Error> {
    let Some(header) = buf.get(..7) else {
        return Ok(None);
    };
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    let Some(end) = buf.get(7 + size) else {
        return Ok(None);
    };
    if *end != 0xCE {
        return Err("frame end octet missing: the stream is corrupt".into());
    }
    Ok(Some((header[0], &buf[7..7 + size])))
}

/// A basic.deliver's consumer tag and delivery tag; `None` for other methods.
fn deliver_fields(payload: &[u8]) -> Option<(&[u8], u64)> {
    if payload.get(..4)? != [0, 60, 0, 60] {
        return None;
    }
    let tag_len = *payload.get(4)? as usize;
    let tag = payload.get(5..5 + tag_len)?;
    let delivery_tag = u64::from_be_bytes(payload.get(5 + tag_len..13 + tag_len)?.try_into().ok()?);
    Some((tag, delivery_tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_deliveries_are_read_in_place() {
        let mut buf = BytesMut::new();
        let deliver = BasicDeliver {
            consumer_tag: ShortString::from_static("17"),
            delivery_tag: 99,
            ..Default::default()
        };
        encode_method_frame(1, &deliver.into(), &mut buf);
        encode_body_frame(1, b"0123456789abcdef", &mut buf);
        let (kind, payload) = next_frame(&buf).unwrap().unwrap();
        assert_eq!(kind, 1);
        assert_eq!(deliver_fields(payload), Some((&b"17"[..], 99)));
        assert_eq!(parse_index(b"17"), 17);
        let rest = &buf[payload.len() + 8..];
        let (kind, body) = next_frame(rest).unwrap().unwrap();
        assert_eq!((kind, body), (3, &b"0123456789abcdef"[..]));
        assert_eq!(next_frame(&rest[..10]).unwrap(), None);
        let mut corrupt = rest.to_vec();
        *corrupt.last_mut().unwrap() = 0;
        assert!(next_frame(&corrupt).is_err());
        let ack: Method = BasicAck::default().into();
        let mut other = BytesMut::new();
        ack.encode(&mut other);
        assert_eq!(deliver_fields(&other), None);
    }
}
