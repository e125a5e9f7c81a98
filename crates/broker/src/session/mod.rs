//! A connection's broker side: carries out the methods its channels send,
//! routes its publishes, and turns queue deliveries into basic.deliver.

mod channel;
mod outbox;
mod route_cache;

use rustc_hash::FxHashMap;
use smallvec::smallvec;
use std::sync::Arc;
use warren_codec::*;
use warren_protocol::{AmqpError, ClientCapabilities, Publish};

pub use outbox::Outbox;

/// Where a routed message went.
enum Enqueued {
    /// Only memory: confirmable at once.
    InMemory,
    /// Written to the store too: confirmable once synced.
    Stored,
    /// The store refused it (it failed): nobody got it.
    Refused,
}

use crate::broker::ConnectionId;
use crate::errors;
use crate::exchange::{Destination, Exchange};
use crate::message::Message;
use crate::names;
use crate::queue::{ConnEvent, ConsumeRefused, ConsumerSpec, DeliveryPort, QueueHandle};
use crate::storage::bytes;
use crate::vhost::VHost;
use channel::{by_queue, ChannelState, HeldPublish, HeldSettle, Outstanding, Transaction};
use route_cache::RouteCache;
use tokio::sync::Notify;
use warren_store::{DurableMark, PublishRecord};

pub struct Session {
    vhost: Arc<VHost>,
    conn: ConnectionId,
    /// The authenticated user, which a message's user-id must name.
    user: String,
    capabilities: ClientCapabilities,
    port: Arc<DeliveryPort>,
    channels: FxHashMap<u16, ChannelState>,
    /// Reused on every publish so that routing allocates nothing.
    scratch: Vec<Destination>,
    routed: Vec<Arc<QueueHandle>>,
    cache: RouteCache,
    /// Publishes not yet handed to their queues, per queue (keyed by the
    /// handle's address): one inbox send per queue per batch of input
    /// instead of one per message. See [`flush_publishes`](Self::flush_publishes).
    pending: FxHashMap<usize, (Arc<QueueHandle>, Vec<Message>)>,
    /// Shared by the channels' durable marks.
    bell: Arc<Notify>,
}

/// Publishes held for one queue before they are sent on regardless.
const PUBLISH_BATCH: usize = 256;

fn not_implemented(text: &str) -> AmqpError {
    AmqpError::new(ReplyCode::NotImplemented, text)
}

impl Session {
    pub fn new(
        vhost: Arc<VHost>,
        conn: ConnectionId,
        user: String,
        capabilities: ClientCapabilities,
        port: Arc<DeliveryPort>,
    ) -> Self {
        Session {
            vhost,
            conn,
            user,
            capabilities,
            port,
            channels: FxHashMap::default(),
            scratch: Vec::new(),
            routed: Vec::new(),
            bell: Arc::new(Notify::new()),
            pending: FxHashMap::default(),
            cache: RouteCache::default(),
        }
    }

    /// Rung when the store has made some of this connection's publishes
    /// durable: time to call [`flush_confirms`](Self::flush_confirms).
    pub fn bell(&self) -> Arc<Notify> {
        self.bell.clone()
    }

    pub fn vhost(&self) -> &Arc<VHost> {
        &self.vhost
    }

    pub fn channel_opened(&mut self, channel: u16) {
        let mark = Arc::new(DurableMark::new(self.bell.clone()));
        self.channels.insert(channel, ChannelState::new(mark));
    }

    fn channel(&mut self, channel: u16) -> Result<&mut ChannelState, AmqpError> {
        self.channels
            .get_mut(&channel)
            .ok_or_else(|| AmqpError::new(ReplyCode::ChannelError, "expected 'channel.open'"))
    }

    /// An empty queue name means the channel's last declared queue.
    fn queue_name(&mut self, channel: u16, name: &ShortString) -> Result<ShortString, AmqpError> {
        if !name.is_empty() {
            return Ok(name.clone());
        }
        self.channel(channel)?
            .last_queue
            .clone()
            .ok_or_else(|| AmqpError::new(ReplyCode::NotFound, "no previously declared queue"))
    }

    /// Carries out one method; errors name the method, for channel.close.
    pub async fn handle_method(
        &mut self,
        channel: u16,
        method: Method,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        let info = method.info();
        // Whatever the method does to queues comes after the publishes before it.
        self.flush_publishes().await;
        let result = match method {
            // Acknowledgements are frequent: no allocation for them. The
            // rest go through a boxed future, which keeps every
            // connection's own future small (see `dispatch`).
            Method::BasicAck(a) => {
                self.settle_tags(channel, a.delivery_tag, a.multiple, None)
                    .await
            }
            Method::BasicReject(r) => {
                self.settle_tags(channel, r.delivery_tag, false, Some(r.requeue))
                    .await
            }
            Method::BasicNack(n) => {
                self.settle_tags(channel, n.delivery_tag, n.multiple, Some(n.requeue))
                    .await
            }
            method => Box::pin(self.dispatch(channel, method, out)).await,
        };
        result.map_err(|e| e.on(info.class_id, info.method_id))
    }

    async fn settle_tags(
        &mut self,
        ch: u16,
        tag: u64,
        multiple: bool,
        requeue: Option<bool>,
    ) -> Result<(), AmqpError> {
        let entries = self.channel(ch)?.take(tag, multiple)?;
        self.settle(ch, entries, requeue).await
    }

    async fn dispatch(
        &mut self,
        ch: u16,
        method: Method,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        let conn = self.conn;
        let vhost = self.vhost.clone();
        match method {
            Method::ExchangeDeclare(d) => {
                vhost.declare_exchange(&d).await?;
                if !d.no_wait {
                    out.send_method(ch, ExchangeDeclareOk {}.into());
                }
            }
            Method::ExchangeDelete(d) => {
                vhost.delete_exchange(&d.exchange, d.if_unused).await?;
                if !d.no_wait {
                    out.send_method(ch, ExchangeDeleteOk {}.into());
                }
            }
            Method::ExchangeBind(b) => {
                vhost
                    .bind_exchange(&b.destination, &b.source, b.routing_key, b.arguments)
                    .await?;
                if !b.no_wait {
                    out.send_method(ch, ExchangeBindOk {}.into());
                }
            }
            Method::ExchangeUnbind(b) => {
                vhost
                    .unbind_exchange(&b.destination, &b.source, b.routing_key, b.arguments)
                    .await?;
                if !b.no_wait {
                    out.send_method(ch, ExchangeUnbindOk {}.into());
                }
            }
            Method::QueueDeclare(d) => {
                let (queue, message_count, consumer_count) = vhost.declare_queue(conn, &d).await?;
                self.channel(ch)?.last_queue = Some(queue.name.clone());
                if !d.no_wait {
                    let ok = QueueDeclareOk {
                        queue: queue.name.clone(),
                        message_count,
                        consumer_count,
                    };
                    out.send_method(ch, ok.into());
                }
            }
            Method::QueueBind(b) => {
                let queue = self.queue_name(ch, &b.queue)?;
                vhost
                    .bind_queue(conn, &queue, &b.exchange, b.routing_key, b.arguments)
                    .await?;
                if !b.no_wait {
                    out.send_method(ch, QueueBindOk {}.into());
                }
            }
            Method::QueueUnbind(b) => {
                let queue = self.queue_name(ch, &b.queue)?;
                vhost
                    .unbind_queue(conn, &queue, &b.exchange, b.routing_key, b.arguments)
                    .await?;
                out.send_method(ch, QueueUnbindOk {}.into());
            }
            Method::QueuePurge(p) => {
                let name = self.queue_name(ch, &p.queue)?;
                let message_count = vhost.find_queue(&name, conn)?.purge().await;
                if !p.no_wait {
                    out.send_method(ch, QueuePurgeOk { message_count }.into());
                }
            }
            Method::QueueDelete(d) => {
                let name = self.queue_name(ch, &d.queue)?;
                let message_count = vhost
                    .delete_queue(conn, &name, d.if_unused, d.if_empty)
                    .await?;
                if !d.no_wait {
                    out.send_method(ch, QueueDeleteOk { message_count }.into());
                }
            }
            Method::BasicQos(q) => {
                if q.prefetch_size != 0 {
                    return Err(not_implemented(&format!(
                        "prefetch_size!=0 ({})",
                        q.prefetch_size
                    )));
                }
                let state = self.channel(ch)?;
                if q.global {
                    state.limit.set_limit(q.prefetch_count.into());
                    for queue in state.consumed_queues() {
                        queue.wake();
                    }
                } else {
                    state.consumer_prefetch = q.prefetch_count.into();
                }
                out.send_method(ch, BasicQosOk {}.into());
            }
            Method::BasicConsume(c) => self.consume(ch, c, out).await?,
            Method::BasicCancel(c) => {
                let queue = self.channel(ch)?.consumers.remove(&c.consumer_tag);
                if let Some(queue) = queue {
                    if queue.cancel(conn, ch, Some(c.consumer_tag.clone())).await {
                        vhost.auto_delete_queue(&queue).await;
                    }
                }
                if !c.no_wait {
                    out.send_method(
                        ch,
                        BasicCancelOk {
                            consumer_tag: c.consumer_tag,
                        }
                        .into(),
                    );
                }
            }
            Method::BasicGet(g) => self.get(ch, g, out).await?,
            Method::BasicRecoverAsync(r) => self.recover(ch, r.requeue).await?,
            Method::BasicRecover(r) => {
                self.recover(ch, r.requeue).await?;
                out.send_method(ch, BasicRecoverOk {}.into());
            }
            // The answer to a basic.cancel we sent; nothing to do.
            Method::BasicCancelOk(_) => {}
            Method::ConfirmSelect(s) => {
                let state = self.channel(ch)?;
                if state.tx.is_some() {
                    return Err(AmqpError::new(
                        ReplyCode::PreconditionFailed,
                        "cannot switch from tx to confirm mode",
                    ));
                }
                state.confirm.get_or_insert(0);
                if !s.nowait {
                    out.send_method(ch, ConfirmSelectOk {}.into());
                }
            }
            Method::TxSelect(_) => {
                let state = self.channel(ch)?;
                if state.confirm.is_some() {
                    return Err(AmqpError::new(
                        ReplyCode::PreconditionFailed,
                        "cannot switch from confirm to tx mode",
                    ));
                }
                state.tx.get_or_insert_with(Transaction::default);
                out.send_method(ch, TxSelectOk {}.into());
            }
            Method::TxCommit(_) => {
                let mut held = self.transaction(ch)?;
                let mut stored = false;
                for p in std::mem::take(&mut held.publishes) {
                    let outcome = self
                        .route_and_enqueue(
                            ch,
                            &p.exchange,
                            p.message,
                            p.headers.as_ref(),
                            p.mandatory,
                            p.persistent,
                            None,
                            out,
                        )
                        .await;
                    match outcome {
                        Enqueued::InMemory => {}
                        Enqueued::Stored => stored = true,
                        Enqueued::Refused => {
                            return Err(AmqpError::new(
                                ReplyCode::InternalError,
                                "message store unavailable",
                            ));
                        }
                    }
                }
                self.flush_publishes().await;
                for settle in std::mem::take(&mut held.settles) {
                    self.apply_settle(ch, &settle.entries, settle.requeue).await;
                }
                // commit-ok promises the persistent messages are on disk.
                if let (true, Some(storage)) = (stored, &self.vhost.storage) {
                    if !storage.messages.sync().await {
                        return Err(AmqpError::new(
                            ReplyCode::InternalError,
                            "message store unavailable",
                        ));
                    }
                }
                out.send_method(ch, TxCommitOk {}.into());
            }
            Method::TxRollback(_) => {
                let mut held = self.transaction(ch)?;
                let state = self.channel(ch)?;
                for settle in std::mem::take(&mut held.settles) {
                    state.restore(settle.entries);
                }
                out.send_method(ch, TxRollbackOk {}.into());
            }
            other => {
                return Err(AmqpError::new(
                    ReplyCode::CommandInvalid,
                    format!("unimplemented method {}", other.info().name),
                ))
            }
        }
        Ok(())
    }

    /// Takes the channel's held transaction, leaving a fresh one.
    fn transaction(&mut self, ch: u16) -> Result<Transaction, AmqpError> {
        match &mut self.channel(ch)?.tx {
            Some(tx) => Ok(std::mem::take(tx)),
            None => Err(AmqpError::new(
                ReplyCode::PreconditionFailed,
                "channel is not transactional",
            )),
        }
    }

    async fn consume(
        &mut self,
        ch: u16,
        c: BasicConsume,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        let name = self.queue_name(ch, &c.queue)?;
        let queue = self.vhost.find_queue(&name, self.conn)?;
        let (conn, port) = (self.conn, self.port.clone());
        let state = self.channel(ch)?;
        let tag = if c.consumer_tag.is_empty() {
            names::consumer_tag()
        } else {
            c.consumer_tag.clone()
        };
        if state.consumers.contains_key(&tag) {
            return Err(AmqpError::new(
                ReplyCode::NotAllowed,
                format!("attempt to reuse consumer tag '{tag}'"),
            ));
        }
        let spec = ConsumerSpec {
            conn,
            channel: ch,
            tag: tag.clone(),
            no_ack: c.no_ack,
            exclusive: c.exclusive,
            prefetch: state.consumer_prefetch,
            channel_limit: state.limit.clone(),
            port,
        };
        match queue.consume(spec).await {
            Some(Ok(())) => {
                // Deliveries wait in this connection's inbox until this
                // method is done, so consume-ok still goes out first.
                if !c.no_wait {
                    out.send_method(
                        ch,
                        BasicConsumeOk {
                            consumer_tag: tag.clone(),
                        }
                        .into(),
                    );
                }
                self.channel(ch)?.consumers.insert(tag, queue);
                Ok(())
            }
            Some(Err(ConsumeRefused::ExclusiveUse)) => {
                Err(errors::in_exclusive_use(&name, &self.vhost.name))
            }
            None => Err(errors::no_queue(&name, &self.vhost.name)),
        }
    }

    async fn get(&mut self, ch: u16, g: BasicGet, out: &mut dyn Outbox) -> Result<(), AmqpError> {
        let name = self.queue_name(ch, &g.queue)?;
        let queue = self.vhost.find_queue(&name, self.conn)?;
        let Some(got) = queue.get(g.no_ack).await else {
            out.send_method(ch, BasicGetEmpty::default().into());
            return Ok(());
        };
        let state = self.channel(ch)?;
        let tag = state.next_tag();
        if !g.no_ack {
            state.track(Outstanding {
                tag,
                queue,
                id: got.id,
                counted: false,
            });
        }
        let ok = BasicGetOk {
            delivery_tag: tag,
            redelivered: got.redelivered,
            exchange: got.message.exchange.clone(),
            routing_key: got.message.routing_key.clone(),
            message_count: got.remaining,
        };
        out.send_content(ch, ok.into(), &got.message.header, &got.message.body);
        Ok(())
    }

    /// Acks (`requeue` None) or rejects settled deliveries, now or at commit.
    async fn settle(
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

    async fn apply_settle(&mut self, ch: u16, entries: &[Outstanding], requeue: Option<bool>) {
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
                    for queue in state.consumed_queues() {
                        queue.wake();
                    }
                }
            }
        }
    }

    async fn recover(&mut self, ch: u16, requeue: bool) -> Result<(), AmqpError> {
        if !requeue {
            return Err(not_implemented("requeue=false"));
        }
        let entries = self.channel(ch)?.take_all();
        self.apply_settle(ch, &entries, Some(true)).await;
        Ok(())
    }

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
        let persistent = properties.delivery_mode == Some(2);
        let message = Message {
            exchange: method.exchange,
            routing_key: method.routing_key,
            header: header_payload,
            body,
            stored: None,
        };
        let headers = properties.headers;
        // The channels and the vhost borrowed apart: no Arc clone per publish.
        let vhost = &self.vhost;
        let state = self
            .channels
            .get_mut(&ch)
            .ok_or_else(|| AmqpError::new(ReplyCode::ChannelError, "expected 'channel.open'"))?;
        if let Some(tx) = &mut state.tx {
            let mut message = message;
            message.unpin();
            let held = HeldPublish {
                exchange,
                message,
                headers,
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
        let mark = confirm.map(|seq| (state.mark.clone(), seq));
        let outcome = self
            .route_and_enqueue(
                ch,
                &exchange,
                message,
                headers.as_ref(),
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
                Enqueued::Stored => state.pending.push_back((seq, false)),
                Enqueued::Refused => state.pending.push_back((seq, true)),
            }
        }
        Ok(())
    }

    /// Routes a message and hands it to its queues. A persistent message
    /// routed to durable queues is first written to the store (`mark` learns
    /// when it is on disk); if the store refuses it, no queue gets it.
    #[allow(clippy::too_many_arguments)]
    async fn route_and_enqueue(
        &mut self,
        ch: u16,
        exchange: &Exchange,
        mut message: Message,
        headers: Option<&FieldTable>,
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
        let mut outcome = Enqueued::InMemory;
        if let (true, Some(storage)) = (persistent, &self.vhost.storage) {
            let durable: Vec<_> = routed
                .iter()
                .filter(|q| q.is_persistent())
                .map(|q| q.name.to_bytes())
                .collect();
            if !durable.is_empty() {
                let id = storage.messages.next_id();
                let record = PublishRecord {
                    id,
                    vhost: bytes(&self.vhost.name),
                    exchange: message.exchange.to_bytes(),
                    routing_key: message.routing_key.to_bytes(),
                    queues: durable,
                    header: message.header.clone(),
                    body: message.body.clone(),
                };
                if storage.messages.publish(record, mark).await {
                    message.stored = Some(id);
                    outcome = Enqueued::Stored;
                } else {
                    routed.clear();
                    self.routed = routed;
                    return Enqueued::Refused;
                }
            }
        }
        let mut delivered = false;
        for queue in routed.iter() {
            let mut copy = message.clone();
            if !queue.is_persistent() {
                copy.stored = None;
            }
            delivered |= self.enqueue(queue, copy).await;
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

    /// Holds a message for its queue until the end of the input batch (or
    /// until a batch for that queue is full). False if the queue is gone.
    async fn enqueue(&mut self, queue: &Arc<QueueHandle>, message: Message) -> bool {
        if queue.is_gone() {
            if let Some(id) = message.stored {
                self.release_stored(queue, vec![id]).await;
            }
            return false;
        }
        queue.count_memory(message.size());
        let key = Arc::as_ptr(queue) as usize;
        let (_, batch) = self
            .pending
            .entry(key)
            .or_insert_with(|| (queue.clone(), Vec::new()));
        batch.push(message);
        if batch.len() >= PUBLISH_BATCH {
            if let Some((queue, batch)) = self.pending.remove(&key) {
                let refused = queue.publish_many(batch).await;
                self.release_stored(&queue, refused).await;
            }
        }
        true
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

    /// Sends one basic.ack for every publish confirmed since the last call
    /// (`multiple` when it covers several). Call after each batch of input.
    pub fn flush_confirms(&mut self, out: &mut dyn Outbox) {
        for (&ch, state) in self.channels.iter_mut() {
            let Some(seq) = state.confirm else { continue };
            let (synced, failed) = (state.mark.synced(), state.mark.failed());
            // Stored publishes wait for the store; a failed one is nacked,
            // after acknowledging everything before it, so that no tag is
            // settled twice.
            while let Some(&(pending, refused)) = state.pending.front() {
                if !refused && pending <= synced {
                    state.pending.pop_front();
                } else if refused || pending <= failed {
                    state.pending.pop_front();
                    ack_up_to(ch, &mut state.confirmed, pending - 1, out);
                    let nack = BasicNack {
                        delivery_tag: pending,
                        multiple: false,
                        requeue: false,
                    };
                    out.send_method(ch, nack.into());
                    state.confirmed = pending;
                } else {
                    break;
                }
            }
            let upto = state.pending.front().map_or(seq, |&(first, _)| first - 1);
            ack_up_to(ch, &mut state.confirmed, upto, out);
        }
    }

    /// A queue's event for this connection.
    pub async fn queue_event(&mut self, event: ConnEvent, out: &mut dyn Outbox) {
        match event {
            ConnEvent::Deliver(d) => {
                let consuming = self.channels.get_mut(&d.channel).filter(|state| {
                    state
                        .consumers
                        .get(&d.consumer_tag)
                        .is_some_and(|queue| Arc::ptr_eq(queue, &d.queue))
                });
                let Some(state) = consuming else {
                    // Cancelled or closed meanwhile (or the tag now names a
                    // consumer of another queue): the message goes back.
                    if let Some(limit) = &d.limit {
                        limit.release(1);
                        d.queue.reject(smallvec![d.id], true).await;
                    }
                    return;
                };
                let tag = state.next_tag();
                let fields = DeliverFields {
                    consumer_tag: d.consumer_tag.as_bytes(),
                    delivery_tag: tag,
                    redelivered: d.redelivered,
                    exchange: d.message.exchange.as_bytes(),
                    routing_key: d.message.routing_key.as_bytes(),
                };
                out.send_delivery(d.channel, &fields, &d.message.header, &d.message.body);
                if !d.no_ack {
                    state.track(Outstanding {
                        tag,
                        queue: d.queue,
                        id: d.id,
                        counted: true,
                    });
                }
            }
            ConnEvent::Cancelled {
                channel,
                consumer_tag,
            } => {
                let Some(state) = self.channels.get_mut(&channel) else {
                    return;
                };
                if state.consumers.remove(&consumer_tag).is_some()
                    && self.capabilities.consumer_cancel_notify
                {
                    out.send_method(
                        channel,
                        BasicCancel {
                            consumer_tag,
                            no_wait: true,
                        }
                        .into(),
                    );
                }
            }
        }
    }

    /// The connection took queue events out of its inbox.
    pub fn events_drained(&self) {
        self.port.drained();
    }

    /// The channel is gone: its consumers are cancelled and what it had not
    /// acknowledged returns to its queues.
    pub async fn channel_closed(&mut self, ch: u16) {
        self.flush_publishes().await;
        let Some(mut state) = self.channels.remove(&ch) else {
            return;
        };
        for queue in state.consumed_queues() {
            if queue.cancel(self.conn, ch, None).await {
                self.vhost.auto_delete_queue(&queue).await;
            }
        }
        let entries = state.take_all();
        for (queue, ids) in by_queue(&entries) {
            queue.reject(ids, true).await;
        }
    }

    /// The connection is gone: every channel closes and its exclusive queues go.
    pub async fn connection_closed(&mut self) {
        let channels: Vec<u16> = self.channels.keys().copied().collect();
        for ch in channels {
            self.channel_closed(ch).await;
        }
        self.vhost.connection_closed(self.conn).await;
    }
}

/// basic.ack for every publish after `confirmed` up to `upto` (`multiple`
/// when that is several).
fn ack_up_to(ch: u16, confirmed: &mut u64, upto: u64, out: &mut dyn Outbox) {
    if upto > *confirmed {
        let multiple = upto - *confirmed > 1;
        *confirmed = upto;
        out.send_method(
            ch,
            BasicAck {
                delivery_tag: upto,
                multiple,
            }
            .into(),
        );
    }
}

async fn send_settle(queue: &QueueHandle, ids: crate::queue::Ids, requeue: Option<bool>) {
    match requeue {
        None => queue.ack(ids).await,
        Some(requeue) => queue.reject(ids, requeue).await,
    }
}
