//! Publishing: basic.publish checked, routed (through the route cache for
//! the default exchange), written to the store when persistent and bound
//! for durable queues, and handed to its queues in one batch per queue
//! per read of input; unroutable mandatory messages returned.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use warren_codec::*;
use warren_protocol::{AmqpError, Publish};
use warren_store::{DurableMark, PublishRecord};

use super::channel::HeldPublish;
use super::{not_implemented, sender_selected, Outbox, Session};
use crate::args;
use crate::clock;
use crate::errors;
use crate::exchange::Exchange;
use crate::message::Message;
use crate::queue::QueueHandle;
use crate::safekeeping::{Awaited, Keeper, Keepers};
use crate::storage::bytes;

/// What holding a message for its queue came to.
enum Held {
    Kept,
    /// The queue's batch is full: send it (the key of `pending`).
    Full(usize),
    /// The queue is gone; these store ids are to be released.
    Gone(Vec<u64>),
}

/// Where a routed message went.
pub(super) enum Enqueued {
    /// Only memory: confirmable at once.
    InMemory,
    /// Taken by keepers too: confirmable once each has made it safe.
    Kept(Keepers),
    /// A keeper refused it (it failed): nobody got it.
    Refused,
}

/// Publishes held for one queue before they are sent on regardless.
const PUBLISH_BATCH: usize = 256;

impl Session {
    /// basic.publish, assembled. Unroutable mandatory messages come back as
    /// basic.return before their confirm.
    pub async fn publish(
        &mut self,
        publish: Publish,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        let Publish {
            channel: ch,
            method,
            properties,
            header_payload,
            body,
        } = publish;
        let on = |e: AmqpError| e.on(BasicPublish::CLASS_ID, BasicPublish::METHOD_ID);
        if method.immediate {
            return Err(on(not_implemented("immediate=true")));
        }
        let exchange = self
            .cache
            .take_exchange(&self.vhost, &method.exchange)
            .ok_or_else(|| on(errors::no_exchange(&method.exchange, &self.vhost.name)))?;
        if exchange.internal {
            return Err(on(AmqpError::new(
                ReplyCode::AccessRefused,
                format!(
                    "cannot publish to internal {}",
                    errors::resource("exchange", &exchange.name, &self.vhost.name)
                ),
            )));
        }
        if let Some(user_id) = &properties.user_id {
            if user_id.as_bytes() != self.user.as_bytes() {
                return Err(on(AmqpError::new(
                    ReplyCode::PreconditionFailed,
                    format!(
                        "user_id property set to '{user_id}' but authenticated user was '{}'",
                        self.user
                    ),
                )));
            }
        }
        let expires_at = match &properties.expiration {
            Some(expiration) => self.deadline(expiration).map_err(on)?,
            None => 0,
        };
        let persistent = properties.delivery_mode == Some(2);
        let mut headers = properties.headers;
        let mut header_payload = header_payload;
        let mut cc = Vec::new();
        if let Some(table) = &headers {
            if let Some(selected) = sender_selected::read(table, &header_payload).map_err(on)? {
                cc = selected.keys;
                if let Some((kept, payload)) = selected.without_bcc {
                    headers = Some(kept);
                    header_payload = payload;
                }
            }
        }
        let message = Message {
            exchange: method.exchange,
            routing_key: method.routing_key,
            header: header_payload,
            body,
            stored: None,
            expires_at,
        };
        // The channels and the vhost borrowed apart: no Arc clone per publish.
        let vhost = &self.vhost;
        let state = self
            .channels
            .get_mut(&ch)
            .ok_or_else(|| AmqpError::new(ReplyCode::ChannelError, "expected 'channel.open'"))?;
        state.counts.published += 1;
        if let Some(tx) = &mut state.tx {
            let mut message = message;
            message.unpin();
            let held = HeldPublish {
                exchange,
                message,
                headers,
                cc,
                mandatory: method.mandatory,
                persistent,
            };
            return tx.hold(held, vhost.memory()).map_err(|limit| {
                AmqpError::new(
                    ReplyCode::PreconditionFailed,
                    format!(
                        "uncommitted publishes on this channel exceed {limit} bytes (limits.max_transaction_bytes)"
                    ),
                )
                .on(BasicPublish::CLASS_ID, BasicPublish::METHOD_ID)
            });
        }
        let confirm = state.confirm.as_mut().map(|seq| {
            *seq += 1;
            *seq
        });
        let mark = confirm.map(|seq| (state.marks.store.clone(), seq));
        let outcome = self
            .route_and_enqueue(
                ch,
                &exchange,
                message,
                headers.as_ref(),
                &cc,
                method.mandatory,
                persistent,
                mark,
                out,
            )
            .await;
        self.cache.put_exchange(exchange);
        if let Some(seq) = confirm {
            let state = self.channel(ch)?;
            match outcome {
                Enqueued::InMemory => {}
                Enqueued::Kept(keepers) => state.awaited.push_back(Awaited::on(seq, keepers)),
                Enqueued::Refused => state.awaited.push_back(Awaited::refused(seq)),
            }
        }
        Ok(())
    }

    /// Routes a message and hands it to its queues. A persistent message
    /// routed to queues whose keeper is the store is first written to it,
    /// once for all of them (`mark` learns when it is on disk); if the store
    /// refuses it, no queue gets it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn route_and_enqueue(
        &mut self,
        ch: u16,
        exchange: &Exchange,
        mut message: Message,
        headers: Option<&FieldTable>,
        cc: &[ShortString],
        mandatory: bool,
        persistent: bool,
        mark: Option<(Arc<DurableMark>, u64)>,
        out: &mut dyn Outbox,
    ) -> Enqueued {
        let mut routed = std::mem::take(&mut self.routed);
        if exchange.name.is_empty() {
            routed.clear();
            routed.extend(self.cache.default_route(&self.vhost, &message.routing_key));
        } else {
            self.vhost.route_named(
                exchange,
                &message.routing_key,
                headers,
                &mut self.scratch,
                &mut routed,
            );
        }
        if !cc.is_empty() {
            self.route_cc(exchange, cc, headers, &mut routed);
        }
        if routed.is_empty() && exchange.args.alternate_exchange.is_some() {
            self.route_alternates(exchange, &message.routing_key, cc, headers, &mut routed);
        }
        // Queues that refuse publishes when full take this one only if they
        // have room; a refusal nacks the publish (the rare path, boxed).
        let any_refusing = self.vhost.refusing_queues.load(Ordering::Relaxed) > 0;
        let refused_when_full = match any_refusing && routed.iter().any(|q| q.admission.is_some()) {
            true => Box::pin(refuse_when_full(&message, &mut routed)).await,
            false => false,
        };
        let mut outcome = Enqueued::InMemory;
        if let (true, Some(storage)) = (persistent, &self.vhost.storage) {
            let mut timed = message.expires_at != 0;
            let durable: Vec<_> = routed
                .iter()
                .filter(|q| q.keeper() == Some(Keeper::Store))
                .inspect(|q| timed |= q.args.settings.message_ttl.is_some())
                .map(|q| q.name.to_bytes())
                .collect();
            if !durable.is_empty() {
                // The publish time is kept only where a TTL will need it
                // again after a restart.
                let published_at = if timed { clock::epoch_ms(self.now) } else { 0 };
                let id = storage.messages.next_id();
                let record = PublishRecord {
                    id,
                    vhost: bytes(&self.vhost.name),
                    exchange: message.exchange.to_bytes(),
                    routing_key: message.routing_key.to_bytes(),
                    queues: durable,
                    header: message.header.clone(),
                    body: message.body.clone(),
                    published_at,
                    expires_at: message.expires_at,
                };
                if storage.messages.publish(record, mark).await {
                    message.stored = Some(id);
                    outcome = Enqueued::Kept(Keepers::default().with(Keeper::Store));
                } else {
                    routed.clear();
                    self.routed = routed;
                    return Enqueued::Refused;
                }
            }
        }
        if refused_when_full {
            outcome = Enqueued::Refused;
        }
        // Routed, even if refused: no basic.return.
        let mut delivered = refused_when_full;
        for queue in routed.iter() {
            let mut copy = message.clone();
            if queue.keeper() != Some(Keeper::Store) {
                copy.stored = None;
            }
            // Awaited only when a batch is full or the queue is gone: no
            // future per message and queue.
            // (The rare paths boxed: the publish future, moved once per
            // publish, stays small.)
            delivered |= match self.hold(queue, copy) {
                Held::Kept => true,
                Held::Full(key) => {
                    Box::pin(self.send_batch(key)).await;
                    true
                }
                Held::Gone(stored) => {
                    Box::pin(self.release_stored(queue, stored)).await;
                    false
                }
            };
        }
        if !delivered && mandatory {
            let ret = BasicReturn {
                reply_code: ReplyCode::NoRoute.code(),
                reply_text: ShortString::from_static("NO_ROUTE"),
                exchange: message.exchange.clone(),
                routing_key: message.routing_key.clone(),
            };
            out.send_content(ch, ret.into(), &message.header, &message.body);
        }
        routed.clear();
        self.routed = routed;
        outcome
    }

    /// Adds the queues the `CC` and `BCC` keys reach; each queue stays once.
    pub(super) fn route_cc(
        &mut self,
        exchange: &Exchange,
        cc: &[ShortString],
        headers: Option<&FieldTable>,
        routed: &mut Vec<Arc<QueueHandle>>,
    ) {
        let mut more = Vec::new();
        for key in cc {
            if exchange.name.is_empty() {
                routed.extend(self.cache.default_route(&self.vhost, key));
            } else {
                self.vhost
                    .route_named(exchange, key, headers, &mut self.scratch, &mut more);
                routed.append(&mut more);
            }
        }
        routed.sort_unstable_by_key(|q| Arc::as_ptr(q) as usize);
        routed.dedup_by(|a, b| Arc::ptr_eq(a, b));
    }

    /// When a message with this `expiration` expires (ms since the epoch).
    #[cold]
    fn deadline(&self, expiration: &ShortString) -> Result<u64, AmqpError> {
        let ttl = args::expiration::parse(expiration.as_bytes()).map_err(|reason| {
            AmqpError::new(
                ReplyCode::PreconditionFailed,
                format!("invalid expiration '{expiration}': {reason}"),
            )
        })?;
        Ok(clock::epoch_ms(self.now) + ttl)
    }

    /// Holds a message for its queue until the end of the input batch (or
    /// until a batch for that queue is full).
    fn hold(&mut self, queue: &Arc<QueueHandle>, message: Message) -> Held {
        if queue.is_gone() {
            return Held::Gone(message.stored.into_iter().collect());
        }
        queue.count_memory(message.size());
        let key = Arc::as_ptr(queue) as usize;
        let (_, batch) = self
            .pending
            .entry(key)
            .or_insert_with(|| (queue.clone(), Vec::new()));
        batch.push(message);
        match batch.len() >= PUBLISH_BATCH {
            true => Held::Full(key),
            false => Held::Kept,
        }
    }

    /// Sends a full batch on to its queue.
    async fn send_batch(&mut self, key: usize) {
        if let Some((queue, batch)) = self.pending.remove(&key) {
            let refused = queue.publish_many(batch).await;
            self.release_stored(&queue, refused).await;
        }
    }

    /// Stored messages a deleted queue never took: their store records are
    /// released, so that they neither stay on disk nor look orphaned later.
    async fn release_stored(&self, queue: &QueueHandle, ids: Vec<u64>) {
        if let (false, Some(storage)) = (ids.is_empty(), &self.vhost.storage) {
            storage
                .messages
                .ack(bytes(&self.vhost.name), queue.name.to_bytes(), ids)
                .await;
        }
    }

    /// Hands every held publish to its queue. The server calls this after
    /// each batch of input, before confirms and replies go out; the session
    /// calls it before anything else that touches queues.
    pub async fn flush_publishes(&mut self) {
        let pending: Vec<_> = self.pending.drain().map(|(_, held)| held).collect();
        for (queue, batch) in pending {
            let refused = queue.publish_many(batch).await;
            self.release_stored(&queue, refused).await;
        }
    }
}

/// Takes the full queues that refuse publishes out of `routed`; the ones
/// that dead-letter what they refuse get it. Whether any refused.
async fn refuse_when_full(message: &Message, routed: &mut Vec<Arc<QueueHandle>>) -> bool {
    let body = message.body.len() as u64;
    let mut refused = Vec::new();
    routed.retain(|q| match &q.admission {
        Some(admission) if !admission.admit(body) => {
            refused.push(q.clone());
            false
        }
        _ => true,
    });
    for queue in &refused {
        if queue.admission.as_ref().is_some_and(|a| a.dead_letters) {
            let mut copy = message.clone();
            copy.stored = None;
            queue.dead_letter_refused(vec![copy]).await;
        }
    }
    !refused.is_empty()
}
