//! Settling deliveries: basic.ack, reject and nack (now, or at commit in a
//! transaction), basic.recover, and the prefetch room they give back.

use smallvec::smallvec;
use warren_protocol::AmqpError;

use super::channel::{by_queue, HeldSettle, Outstanding};
use super::{not_implemented, Session};
use crate::queue::QueueHandle;

impl Session {
    pub(super) async fn settle_tags(
        &mut self,
        ch: u16,
        tag: u64,
        multiple: bool,
        requeue: Option<bool>,
    ) -> Result<(), AmqpError> {
        let state = self.channel(ch)?;
        let entries = state.take(tag, multiple)?;
        if requeue.is_none() {
            state.counts.acked += entries.len() as u64;
        }
        self.settle(ch, entries, requeue).await
    }

    /// Acks (`requeue` None) or rejects settled deliveries, now or at commit.
    pub(super) async fn settle(
        &mut self,
        ch: u16,
        entries: Vec<Outstanding>,
        requeue: Option<bool>,
    ) -> Result<(), AmqpError> {
        let state = self.channel(ch)?;
        if let Some(tx) = &mut state.tx {
            tx.settles.push(HeldSettle { entries, requeue });
            return Ok(());
        }
        self.apply_settle(ch, &entries, requeue).await;
        Ok(())
    }

    pub(super) async fn apply_settle(
        &mut self,
        ch: u16,
        entries: &[Outstanding],
        requeue: Option<bool>,
    ) {
        match entries {
            [] => {}
            [one] => send_settle(&one.queue, smallvec![one.id], requeue).await,
            many => {
                for (queue, ids) in by_queue(many) {
                    send_settle(&queue, ids, requeue).await;
                }
            }
        }
        let counted = entries.iter().filter(|e| e.counted).count() as u32;
        if let Some(state) = self.channels.get(&ch) {
            if counted > 0 {
                state.limit.release(counted);
                if state.limit.is_limited() {
                    // Queues waiting in the limit's line are woken by it in
                    // turn; these wakes resume no-ack consumers, which wait
                    // while the limit is reached but take no room.
                    let queues = state.consumed_queues();
                    for queue in queues {
                        queue.wake();
                    }
                }
            }
        }
    }

    pub(super) async fn recover(&mut self, ch: u16, requeue: bool) -> Result<(), AmqpError> {
        if !requeue {
            return Err(not_implemented("requeue=false"));
        }
        let entries = self.channel(ch)?.take_all();
        self.apply_settle(ch, &entries, Some(true)).await;
        Ok(())
    }
}

async fn send_settle(queue: &QueueHandle, ids: crate::queue::Ids, requeue: Option<bool>) {
    match requeue {
        None => queue.ack(ids).await,
        Some(requeue) => queue.reject(ids, requeue).await,
    }
}
