//! Dead-lettering from a classic queue (reference §2): a message rejected
//! without requeue or expired is rewritten (`x-death`), routed by the
//! queue's dead-letter exchange, and handed to the queues it reaches —
//! stored first for durable ones, before this queue's ack record, so that
//! a crash never loses it. Handing over never waits: what a full queue
//! cannot take yet stays here (still counted) and is tried again shortly.

use std::collections::VecDeque;
use std::sync::Arc;
use warren_codec::ShortString;
use warren_store::{MessageStore, PublishRecord};

use super::backlog::Entry;
use super::QueueState;
use crate::dead_letter::{self, Death, Reason};
use crate::message::Message;
use crate::queue::{DeadLetterRoute, QueueHandle};

/// How long dead letters wait before a full queue is tried again.
pub(super) const RETRY_MS: u64 = 10;

pub(super) struct DeadLetterTo {
    pub exchange: ShortString,
    pub routing_key: Option<ShortString>,
    pub route: DeadLetterRoute,
}

#[derive(Default)]
pub(super) struct DeadLetters {
    /// Store records of dead letters for durable queues, to write before
    /// this queue's acks.
    records: Vec<(Arc<MessageStore>, PublishRecord)>,
    /// Dead letters not handed over yet, in order.
    pending: VecDeque<(Arc<QueueHandle>, Message)>,
    /// The store (and vhost) dead letters for durable queues were kept in.
    store: Option<(Arc<MessageStore>, bytes::Bytes)>,
    /// A cycle was reported (once per queue, as RabbitMQ does).
    cycle_reported: bool,
}

impl DeadLetters {
    pub fn is_waiting(&self) -> bool {
        !self.pending.is_empty()
    }
}

impl QueueState {
    /// A message leaves for `reason`: to the dead-letter exchange's queues,
    /// or, without one (or a route), for good.
    pub(super) fn dead_letter(&mut self, entry: Entry, reason: Reason) {
        if self.dead_letter.is_none() {
            self.forget(&entry);
            return;
        }
        let time = self.now_ms() / 1000;
        let Some(to) = &self.dead_letter else { return };
        let Some(name) = self.handle.upgrade().map(|h| h.name.clone()) else {
            self.forget(&entry);
            return;
        };
        let message = &entry.message;
        let death = Death {
            queue: &name,
            reason,
            exchange: &message.exchange,
            routing_key: &message.routing_key,
            time,
            dead_letter_routing_key: to.routing_key.as_ref(),
        };
        let Some(rewritten) = dead_letter::rewrite(&message.header, &death) else {
            self.forget(&entry);
            return;
        };
        let mut targets = (to.route)(&to.exchange, &rewritten.routing_keys, &rewritten.headers);
        let before = targets.queues.len();
        targets
            .queues
            .retain(|q| !dead_letter::is_cycle(&rewritten.headers, reason, &q.name));
        if targets.queues.len() < before && !self.dead_letters.cycle_reported {
            self.dead_letters.cycle_reported = true;
            tracing::warn!(
                queue = %name,
                "message dropped: dead-letter queues cycle detected (not reported again for this queue)"
            );
        }
        // A full queue that refuses publishes refuses dead letters too.
        let body = message.body.len() as u64;
        targets
            .queues
            .retain(|q| q.admission.as_ref().is_none_or(|a| a.admit(body)));
        if targets.queues.is_empty() {
            // No dead-letter exchange, or it routes nowhere: dropped, as in RabbitMQ.
            self.forget(&entry);
            return;
        }
        let mut dead = Message {
            exchange: to.exchange.clone(),
            routing_key: rewritten.routing_keys[0].clone(),
            header: rewritten.header,
            body: message.body.clone(),
            stored: None,
            expires_at: 0,
        };
        let durable: Vec<_> = targets
            .queues
            .iter()
            .filter(|q| q.keeper().is_some())
            .map(|q| q.name.to_bytes())
            .collect();
        if let (true, false, Some((store, vhost))) =
            (rewritten.persistent, durable.is_empty(), &targets.store)
        {
            let id = store.next_id();
            let record = PublishRecord {
                id,
                vhost: vhost.clone(),
                exchange: dead.exchange.to_bytes(),
                routing_key: dead.routing_key.to_bytes(),
                queues: durable,
                header: dead.header.clone(),
                body: dead.body.clone(),
                published_at: 0,
                expires_at: 0,
            };
            self.dead_letters.records.push((store.clone(), record));
            dead.stored = Some(id);
            self.dead_letters.store = targets.store.clone();
        }
        for queue in targets.queues {
            let mut copy = dead.clone();
            if queue.keeper().is_none() {
                copy.stored = None;
            }
            queue.count_memory(copy.size());
            self.dead_letters.pending.push_back((queue, copy));
        }
        self.forget(&entry);
    }

    /// Writes the dead letters' store records, then hands dead letters to
    /// their queues, in order, as far as they have room.
    pub(super) async fn send_dead_letters(&mut self) {
        for (store, record) in self.dead_letters.records.drain(..) {
            // A failed store refuses it; the queue still gets the message.
            store.publish(record, None).await;
        }
        while let Some((queue, _)) = self.dead_letters.pending.front() {
            let queue = queue.clone();
            let mut batch = Vec::new();
            while let Some((q, _)) = self.dead_letters.pending.front() {
                if !Arc::ptr_eq(q, &queue) {
                    break;
                }
                let (_, message) = self.dead_letters.pending.pop_front().expect("front");
                batch.push(message);
            }
            match queue.try_publish_many(batch) {
                Ok(()) => {}
                Err((batch, false)) => {
                    // Full: the rest waits, in order, for the retry.
                    for message in batch.into_iter().rev() {
                        self.dead_letters
                            .pending
                            .push_front((queue.clone(), message));
                    }
                    return;
                }
                Err((batch, true)) => self.let_go(&queue, batch).await,
            }
        }
    }

    /// Dead letters for a queue that went: uncounted, their records released.
    async fn let_go(&mut self, queue: &QueueHandle, batch: Vec<Message>) {
        let ids: Vec<u64> = batch.iter().filter_map(|m| m.stored).collect();
        self.memory.sub(batch.iter().map(Message::size).sum());
        if let (false, Some((store, vhost))) = (ids.is_empty(), &self.dead_letters.store) {
            store.ack(vhost.clone(), queue.name.to_bytes(), ids).await;
        }
    }
}
