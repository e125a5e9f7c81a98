//! Consuming: prefetch (basic.qos), consumers started and cancelled,
//! basic.get, and queue deliveries turned into basic.deliver.

use smallvec::smallvec;
use std::sync::Arc;
use warren_codec::*;
use warren_protocol::AmqpError;

use super::channel::Outstanding;
use super::{not_implemented, Outbox, Session};
use crate::args::{self, QueueType};
use crate::errors;
use crate::names;
use crate::queue::{ConnEvent, ConsumeRefused, ConsumerSpec};

impl Session {
    pub(super) fn qos(
        &mut self,
        ch: u16,
        q: BasicQos,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
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
        Ok(())
    }

    pub(super) async fn consume(
        &mut self,
        ch: u16,
        c: BasicConsume,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        let name = self.queue_name(ch, &c.queue)?;
        let queue = self.vhost.find_queue(&name, self.conn)?;
        let priority = args::consumer_priority(&c.arguments).map_err(|e| {
            AmqpError::new(
                ReplyCode::PreconditionFailed,
                e.text(&errors::resource("queue", &name, &self.vhost.name)),
            )
        })?;
        let (conn, port) = (self.conn, self.port.clone());
        let state = self.channel(ch)?;
        if queue.args.queue_type == QueueType::Quorum && state.limit.is_set() {
            return Err(AmqpError::new(
                ReplyCode::NotImplemented,
                format!(
                    "{} does not support global qos",
                    errors::resource("queue", &name, &self.vhost.name)
                ),
            ));
        }
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
            priority,
            channel_limit: state.limit.clone(),
            port,
        };
        match queue.consume(spec).await {
            Some(Ok(())) => {
                // Deliveries wait in this connection's port until this
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

    pub(super) async fn cancel(
        &mut self,
        ch: u16,
        c: BasicCancel,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        let queue = self.channel(ch)?.consumers.remove(&c.consumer_tag);
        if let Some(queue) = queue {
            if queue
                .cancel(self.conn, ch, Some(c.consumer_tag.clone()))
                .await
            {
                self.vhost.auto_delete_queue(&queue).await;
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
        Ok(())
    }

    pub(super) async fn get(
        &mut self,
        ch: u16,
        g: BasicGet,
        out: &mut dyn Outbox,
    ) -> Result<(), AmqpError> {
        let name = self.queue_name(ch, &g.queue)?;
        let queue = self.vhost.find_queue(&name, self.conn)?;
        let settings = &queue.args.settings;
        if queue.args.queue_type == QueueType::Quorum && settings.single_active_consumer {
            return Err(AmqpError::new(
                ReplyCode::ResourceLocked,
                format!(
                    "cannot obtain access to locked {}. basic.get operations are not supported by quorum queues with single active consumer",
                    errors::resource("queue", &name, &self.vhost.name)
                ),
            ));
        }
        let Some(got) = queue.get(g.no_ack).await else {
            out.send_method(ch, BasicGetEmpty::default().into());
            return Ok(());
        };
        let sent = self.now;
        let state = self.channel(ch)?;
        let tag = state.next_tag();
        state.counts.delivered += 1;
        if !g.no_ack {
            state.track(Outstanding {
                tag,
                queue,
                id: got.id,
                counted: false,
                sent,
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
                state.counts.delivered += 1;
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
                        sent: self.now,
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

    /// The connection took queue events out of its port.
    pub fn events_drained(&self) {
        self.port.drained();
    }
}
