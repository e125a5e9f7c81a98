//! A publisher: frames for a batch of messages are encoded into one buffer
//! and written at once; confirms are read by a second task.

use crate::client::{Client, Error, Reader};
use crate::plan::{Plan, Topology};
use crate::stats::{message_id, Shared, STAMP_LEN};
use bytes::BytesMut;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use warren_codec::*;

const BATCH: u64 = 256;

/// Confirm progress of one producer's channel.
#[derive(Default)]
struct Confirms {
    /// How many publishes are settled (acked or nacked).
    settled: AtomicU64,
    changed: Notify,
}

pub struct Producer {
    pub index: u16,
    /// How many messages this producer publishes at most.
    pub quota: u64,
}

/// Deliveries this producer's messages should cause, per queue.
pub type Expected = Vec<u64>;

impl Producer {
    pub async fn run(
        self,
        plan: Arc<Plan>,
        topology: Arc<Topology>,
        shared: Arc<Shared>,
        mut client: Client,
        go: Arc<tokio::sync::Barrier>,
    ) -> Result<Expected, Error> {
        if plan.confirm > 0 {
            client
                .call(ConfirmSelect { nowait: false }, "confirm.select-ok")
                .await?;
        }
        let frame_max = client.frame_max;
        let (reader, mut writer) = client.split();
        let confirms = Arc::new(Confirms::default());
        // Always read: confirms, errors, and at the end close-ok, which must
        // arrive before the socket closes (a reset would make the broker
        // drop publishes it has not read yet).
        let reader_task = tokio::spawn(read_confirms(reader, confirms.clone(), shared.clone()));

        let mut expected = vec![0u64; topology.queues.len()];
        let mut out = BytesMut::with_capacity(256 * 1024);
        let mut body = vec![0u8; plan.size.max(STAMP_LEN)];
        let chunk = match frame_max as usize {
            0 => usize::MAX,
            max => max - 8,
        };
        let targets = topology.targets.len();
        go.wait().await;
        // Rate-limited producers start spread over one interval, not in step.
        let mut started = tokio::time::Instant::now();
        if plan.rate > 0.0 && plan.producers > 1 {
            let offset = self.index as f64 / plan.producers as f64 / plan.rate;
            started += Duration::from_secs_f64(offset);
            tokio::time::sleep_until(started).await;
        }
        let mut sent = 0u64;
        let deadline = started + Duration::from_secs_f64(plan.seconds);
        while sent < self.quota && tokio::time::Instant::now() < deadline {
            let mut batch = BATCH.min(self.quota - sent);
            if plan.rate > 0.0 {
                let due = (started.elapsed().as_secs_f64() * plan.rate) as u64 + 1;
                if due <= sent {
                    let next = Duration::from_secs_f64(sent as f64 / plan.rate);
                    tokio::time::sleep_until((started + next).min(deadline)).await;
                    continue;
                }
                batch = batch.min(due - sent);
            }
            if plan.confirm > 0 {
                let window = plan.confirm as u64;
                let room = window.saturating_sub(sent - confirms.settled.load(Relaxed));
                if room == 0 {
                    let changed = confirms.changed.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    if sent - confirms.settled.load(Relaxed) >= window {
                        changed.await;
                    }
                    continue;
                }
                batch = batch.min(room);
            }
            if plan.max_in_flight > 0 && !plan.consume_after_publish {
                let room = plan.max_in_flight.saturating_sub(shared.in_flight());
                if room == 0 {
                    let progress = shared.progress.notified();
                    tokio::pin!(progress);
                    progress.as_mut().enable();
                    if shared.in_flight() >= plan.max_in_flight {
                        // Also time out: the consumers may all have gone.
                        let _ = tokio::time::timeout(Duration::from_millis(100), progress).await;
                    }
                    continue;
                }
                batch = batch.min(room);
            }
            let stamp = shared.now_ns();
            let mut routed = 0u64;
            for _ in 0..batch {
                let target = &topology.targets[(self.index as usize + sent as usize) % targets];
                out.extend_from_slice(&target.frames);
                body[..8].copy_from_slice(&message_id(self.index, sent).to_be_bytes());
                body[8..16].copy_from_slice(&stamp.to_be_bytes());
                for piece in body[..plan.size].chunks(chunk) {
                    encode_body_frame(1, piece, &mut out);
                }
                for &q in &target.queues {
                    expected[q] += 1;
                }
                routed += target.queues.len() as u64;
                sent += 1;
            }
            shared.routed.fetch_add(routed, Relaxed);
            shared.published.fetch_add(batch, Relaxed);
            writer.write_all(&out).await?;
            shared.last_publish_ns.fetch_max(shared.now_ns(), Relaxed);
            out.clear();
        }
        if plan.confirm > 0 {
            // Every publish is settled before the producer counts as done.
            let wait = async {
                while confirms.settled.load(Relaxed) < sent {
                    let changed = confirms.changed.notified();
                    tokio::pin!(changed);
                    changed.as_mut().enable();
                    if confirms.settled.load(Relaxed) < sent {
                        changed.await;
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(60), wait)
                .await
                .is_err()
            {
                return Err(format!(
                    "producer {}: {} publishes unconfirmed after 60 s",
                    self.index,
                    sent - confirms.settled.load(Relaxed)
                )
                .into());
            }
        }
        let mut close = BytesMut::new();
        let method = ConnectionClose {
            reply_code: 200,
            reply_text: ShortString::from_static("done"),
            ..Default::default()
        };
        encode_method_frame(0, &method.into(), &mut close);
        writer.write_all(&close).await?;
        match tokio::time::timeout(Duration::from_secs(10), reader_task).await {
            Ok(Ok(Ok(()))) => Ok(expected),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(format!("producer {}: no close-ok within 10 s", self.index).into()),
        }
    }
}

async fn read_confirms(
    mut reader: Reader,
    confirms: Arc<Confirms>,
    shared: Arc<Shared>,
) -> Result<(), Error> {
    let mut settled = Settled::default();
    loop {
        let before = settled.count();
        while let Some(frame) = reader.frame()? {
            if frame.kind != 1 {
                continue;
            }
            let (tag, multiple, acked) = match Method::decode(&frame.payload)? {
                Method::BasicAck(a) => (a.delivery_tag, a.multiple, true),
                Method::BasicNack(n) => (n.delivery_tag, n.multiple, false),
                Method::ConnectionClose(c) => {
                    return Err(format!("broker closed: {} {}", c.reply_code, c.reply_text).into())
                }
                Method::ChannelClose(c) => {
                    return Err(format!("channel closed: {} {}", c.reply_code, c.reply_text).into())
                }
                Method::ConnectionCloseOk(_) => return Ok(()),
                _ => continue,
            };
            let newly = settled.settle(tag, multiple);
            if acked {
                shared.confirmed.fetch_add(newly, Relaxed);
            } else {
                shared.nacked.fetch_add(newly, Relaxed);
            }
        }
        if settled.count() != before {
            confirms.settled.store(settled.count(), Relaxed);
            confirms.changed.notify_waiters();
        }
        if !reader.fill().await? {
            return Ok(());
        }
    }
}

/// Which publishes are confirmed: every tag up to `floor`, plus single tags
/// above it (RabbitMQ may confirm single tags out of order).
#[derive(Default)]
struct Settled {
    floor: u64,
    above: std::collections::BTreeSet<u64>,
}

impl Settled {
    /// Records an ack or nack; returns how many publishes it settled.
    fn settle(&mut self, tag: u64, multiple: bool) -> u64 {
        if tag <= self.floor {
            return 0;
        }
        if multiple {
            let singles = self.above.range(..=tag).count() as u64;
            self.above = self.above.split_off(&(tag + 1));
            let newly = tag - self.floor - singles;
            self.floor = tag;
            return newly;
        }
        if !self.above.insert(tag) {
            return 0;
        }
        while self.above.first() == Some(&(self.floor + 1)) {
            self.above.pop_first();
            self.floor += 1;
        }
        1
    }

    fn count(&self) -> u64 {
        self.floor + self.above.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::Settled;

    #[test]
    fn multiple_and_single_confirms_in_any_order_count_once() {
        let mut s = Settled::default();
        assert_eq!(s.settle(3, false), 1);
        assert_eq!(s.settle(1, false), 1);
        assert_eq!(s.count(), 2);
        assert_eq!(s.settle(5, true), 3); // 2, 4, 5; 1 and 3 were settled
        assert_eq!(s.count(), 5);
        assert_eq!(s.settle(4, false), 0);
        assert_eq!(s.settle(5, true), 0);
        assert_eq!(s.settle(6, false), 1);
        assert_eq!(s.count(), 6);
    }
}
