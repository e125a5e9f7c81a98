//! A connection's broker side: carries out the methods its channels send.
//! This file holds the session's state and dispatches each method to the
//! file of its concern: declarations, publish, confirms, consume, settle,
//! transactions.

mod ack_timeout;
mod alternate;
mod channel;
mod confirms;
mod consume;
mod declarations;
mod outbox;
mod publish;
mod route_cache;
mod sender_selected;
mod settle;
mod transactions;

use rustc_hash::FxHashMap;
use std::sync::Arc;
use tokio::sync::Notify;
use warren_codec::*;
use warren_protocol::{AmqpError, ClientCapabilities};
use warren_store::DurableMark;

pub use outbox::Outbox;

use crate::exchange::Destination;
use crate::ids::ConnectionId;
use crate::message::Message;
use crate::queue::{ConnEvent, DeliveryPort, QueueHandle};
use crate::safekeeping::Marks;
use crate::stats::{ConnectionStats, Registered};
use crate::vhost::{BindingChange, VHost};
use channel::{by_queue, OpenChannel};
use route_cache::RouteCache;

pub struct Session {
    vhost: Arc<VHost>,
    conn: ConnectionId,
    /// The authenticated user, which a message's user-id must name.
    user: String,
    capabilities: ClientCapabilities,
    port: Arc<DeliveryPort>,
    channels: FxHashMap<u16, OpenChannel>,
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
    /// Lists the connection in the broker's statistics while it lives.
    _listed: Registered<ConnectionStats>,
    /// The clock of the batch being handled (see [`set_clock`](Self::set_clock)).
    now: std::time::Instant,
    /// How long a delivery may wait for its acknowledgement (None: forever).
    consumer_timeout: Option<std::time::Duration>,
}

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
        let listed = vhost.stats.add_connection(conn, &vhost.name, &user);
        Session {
            _listed: listed,
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
            now: std::time::Instant::now(),
            consumer_timeout: None,
        }
    }

    /// Rung when the store has made some of this connection's publishes
    /// durable: time to call [`flush_confirms`](Self::flush_confirms).
    pub fn bell(&self) -> Arc<Notify> {
        self.bell.clone()
    }

    pub fn channel_opened(&mut self, channel: u16) {
        let marks = Marks {
            store: Arc::new(DurableMark::new(self.bell.clone())),
        };
        let stats = self.vhost.stats.add_channel(self.conn, channel);
        self.channels
            .insert(channel, OpenChannel::new(marks, stats));
    }

    fn channel(&mut self, channel: u16) -> Result<&mut OpenChannel, AmqpError> {
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

    /// Every method but acknowledgements and publishes: one line each, to
    /// the file of its concern.
    async fn dispatch(
        &mut self,
        ch: u16,
        method: Method,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        use BindingChange::{Bind, Unbind};
        match method {
            Method::ExchangeDeclare(d) => self.exchange_declare(ch, d, out).await,
            Method::ExchangeDelete(d) => self.exchange_delete(ch, d, out).await,
            Method::ExchangeBind(b) => {
                self.exchange_binding(Bind, b.source, b.destination, b.routing_key, b.arguments)
                    .await?;
                if !b.no_wait {
                    out.send_method(ch, ExchangeBindOk {}.into());
                }
                Ok(())
            }
            Method::ExchangeUnbind(b) => {
                self.exchange_binding(Unbind, b.source, b.destination, b.routing_key, b.arguments)
                    .await?;
                if !b.no_wait {
                    out.send_method(ch, ExchangeUnbindOk {}.into());
                }
                Ok(())
            }
            Method::QueueDeclare(d) => self.queue_declare(ch, d, out).await,
            Method::QueueBind(b) => {
                self.queue_binding(ch, Bind, b.queue, b.exchange, b.routing_key, b.arguments)
                    .await?;
                if !b.no_wait {
                    out.send_method(ch, QueueBindOk {}.into());
                }
                Ok(())
            }
            Method::QueueUnbind(b) => {
                self.queue_binding(ch, Unbind, b.queue, b.exchange, b.routing_key, b.arguments)
                    .await?;
                out.send_method(ch, QueueUnbindOk {}.into());
                Ok(())
            }
            Method::QueuePurge(p) => self.queue_purge(ch, p, out).await,
            Method::QueueDelete(d) => self.queue_delete(ch, d, out).await,
            Method::BasicQos(q) => self.qos(ch, q, out),
            Method::BasicConsume(c) => self.consume(ch, c, out).await,
            Method::BasicCancel(c) => self.cancel(ch, c, out).await,
            Method::BasicGet(g) => self.get(ch, g, out).await,
            Method::BasicRecoverAsync(r) => self.recover(ch, r.requeue).await,
            Method::BasicRecover(r) => {
                self.recover(ch, r.requeue).await?;
                out.send_method(ch, BasicRecoverOk {}.into());
                Ok(())
            }
            // The answer to a basic.cancel we sent; nothing to do.
            Method::BasicCancelOk(_) => Ok(()),
            Method::ConfirmSelect(s) => self.confirm_select(ch, s, out),
            Method::TxSelect(_) => self.tx_select(ch, out),
            Method::TxCommit(_) => self.tx_commit(ch, out).await,
            Method::TxRollback(_) => self.tx_rollback(ch, out),
            other => Err(AmqpError::new(
                ReplyCode::CommandInvalid,
                format!("unimplemented method {}", other.info().name),
            )),
        }
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
        let entries = state.take_unsettled();
        for (queue, ids) in by_queue(&entries) {
            queue.reject(ids, true).await;
        }
    }

    /// The connection is gone: every channel closes, its exclusive queues
    /// go, and deliveries that never left its port go back to their queues.
    pub async fn connection_closed(&mut self) {
        let channels: Vec<u16> = self.channels.keys().copied().collect();
        for ch in channels {
            self.channel_closed(ch).await;
        }
        self.vhost.connection_closed(self.conn).await;
        for event in self.port.close() {
            if let ConnEvent::Deliver(d) = event {
                if !d.no_ack {
                    d.queue.reject(smallvec::smallvec![d.id], true).await;
                }
            }
        }
    }
}
