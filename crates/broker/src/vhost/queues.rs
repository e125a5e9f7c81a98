//! Declaring and deleting queues, with RabbitMQ's rules: reserved names,
//! exclusive ownership, the redeclare check, arguments validated once;
//! queues that go with their connection or their last consumer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use warren_codec::{QueueDeclare, ReplyCode, ShortString};
use warren_protocol::AmqpError;
use warren_store::Definition;

use super::VHost;
use crate::args::{self, QueueArgs, QueueShape};
use crate::errors::{self, resource};
use crate::exchange::Destination;
use crate::ids::ConnectionId;
use crate::names;
use crate::queue::{self, DeleteRefused, LeaseEvent, Persistence, QueueConfig, QueueHandle};
use crate::storage::bytes;

impl VHost {
    /// Declares (or checks) a queue; returns it with its ready-message and
    /// consumer counts.
    pub async fn declare_queue(
        &self,
        conn: ConnectionId,
        d: &QueueDeclare,
    ) -> Result<(Arc<QueueHandle>, u32, u32), AmqpError> {
        if d.passive {
            let queue = self
                .queue(&d.queue)
                .ok_or_else(|| errors::no_queue(&d.queue, &self.name))?;
            if queue.owner.is_some_and(|owner| owner != conn) {
                return Err(errors::locked(&d.queue, &self.name));
            }
            let (messages, consumers) = queue.stats().await;
            return Ok((queue, messages, consumers));
        }
        if d.queue.as_bytes().starts_with(b"amq.") {
            return Err(errors::reserved_name("queue", &d.queue));
        }
        let refused = |text: String| AmqpError::new(ReplyCode::PreconditionFailed, text);
        let name = if d.queue.is_empty() {
            // RabbitMQ refuses this before it reads any other argument.
            if let Ok(kind) = args::declared_type(&d.arguments) {
                if kind.refuses_server_names() {
                    return Err(refused(format!(
                        "Cannot declare a server-named queue for type {}",
                        kind.module()
                    )));
                }
            }
            names::queue_name()
        } else {
            d.queue.clone()
        };
        let _ddl = self.ddl.lock().await;
        if let Some(existing) = self.queue(&name) {
            // RabbitMQ's check is strict: the exclusive flag must match too.
            if existing.owner.is_some() != d.exclusive || existing.owner.is_some_and(|o| o != conn)
            {
                return Err(errors::locked(&name, &self.name));
            }
            args::check_queue(
                &resource("queue", &name, &self.name),
                existing.args.queue_type,
                QueueShape {
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    arguments: &d.arguments,
                },
                QueueShape {
                    durable: existing.durable,
                    auto_delete: existing.auto_delete,
                    arguments: &existing.args.table,
                },
            )?;
            let (messages, consumers) = existing.stats().await;
            return Ok((existing, messages, consumers));
        }
        // Only a new queue's arguments are validated, as in RabbitMQ.
        let what = || resource("queue", &name, &self.name);
        let queue_args = QueueArgs::parse(&d.arguments).map_err(|e| refused(e.text(&what())))?;
        let kind = queue_args.queue_type;
        if let Some(property) = kind.refused_property(d.durable, d.exclusive, d.auto_delete) {
            return Err(refused(format!(
                "invalid property '{property}' for {}",
                what()
            )));
        }
        let config = QueueConfig {
            name: name.clone(),
            durable: d.durable,
            auto_delete: d.auto_delete,
            owner: d.exclusive.then_some(conn),
            args: queue_args,
            unused_since: None,
        };
        if config.is_persistent() {
            self.record(
                Definition::Queue {
                    vhost: bytes(&self.name),
                    name: name.to_bytes(),
                    auto_delete: d.auto_delete,
                    arguments: d.arguments.as_bytes().clone(),
                },
                || resource("queue", &name, &self.name),
            )?;
        }
        let queue = self.start_queue(config, Vec::new());
        self.queues.insert(name, queue.clone());
        Ok((queue, 0, 0))
    }

    /// Deletes a queue; a missing queue counts as deleted, as in RabbitMQ.
    pub async fn delete_queue(
        &self,
        conn: ConnectionId,
        name: &ShortString,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<u32, AmqpError> {
        let _ddl = self.ddl.lock().await;
        let Some(queue) = self.queue(name) else {
            return Ok(0);
        };
        if queue.owner.is_some_and(|owner| owner != conn) {
            return Err(errors::locked(name, &self.name));
        }
        match queue.delete(if_unused, if_empty).await {
            Ok(count) => {
                self.forget_queue(&queue)?;
                Ok(count)
            }
            Err(refused) => {
                let why = match refused {
                    DeleteRefused::InUse => "in use",
                    DeleteRefused::NotEmpty => "not empty",
                };
                Err(AmqpError::new(
                    ReplyCode::PreconditionFailed,
                    format!("{} {why}", resource("queue", name, &self.name)),
                ))
            }
        }
    }

    /// Forgets a stopped queue. If its deletion cannot be recorded it is
    /// forgotten all the same (it has stopped), and comes back, empty of
    /// what it lost, at the next start.
    fn forget_queue(&self, queue: &Arc<QueueHandle>) -> Result<(), AmqpError> {
        let recorded = match queue.is_persistent() {
            true => self.record(
                Definition::DeleteQueue {
                    vhost: bytes(&self.name),
                    name: queue.name.to_bytes(),
                },
                || resource("queue", &queue.name, &self.name),
            ),
            false => Ok(()),
        };
        let removed = self
            .queues
            .remove_if(&queue.name, |_, q| Arc::ptr_eq(q, queue));
        if removed.is_some() && queue.admission.is_some() {
            self.refusing_queues.fetch_sub(1, Ordering::Relaxed);
        }
        self.removed();
        self.memory.queue_deleted();
        recorded.and(self.unbind_everywhere(&Destination::Queue(queue.clone())))
    }

    /// Deletes an auto-delete queue whose last consumer went.
    pub async fn auto_delete_queue(&self, queue: &Arc<QueueHandle>) {
        let _ddl = self.ddl.lock().await;
        if queue.delete(true, false).await.is_ok() {
            // Nobody to tell: the store's error is logged.
            let _ = self.forget_queue(queue);
        }
    }

    /// Deletes the connection's exclusive queues.
    pub async fn connection_closed(&self, conn: ConnectionId) {
        let owned: Vec<Arc<QueueHandle>> = self
            .queues
            .iter()
            .filter(|q| q.owner == Some(conn))
            .map(|q| q.clone())
            .collect();
        if owned.is_empty() {
            return;
        }
        let _ddl = self.ddl.lock().await;
        for queue in owned {
            let _ = queue.delete(false, false).await;
            let _ = self.forget_queue(&queue);
        }
    }

    /// Starts a queue of the kind its arguments ask for; durable,
    /// non-exclusive queues write to the store.
    pub(super) fn start_queue(&self, config: QueueConfig, initial: Vec<u64>) -> Arc<QueueHandle> {
        let persistence = match &self.storage {
            Some(storage) if config.is_persistent() => Some(Persistence {
                store: storage.messages.clone(),
                vhost: bytes(&self.name),
                queue: config.name.to_bytes(),
                budget: storage.queue_memory_budget,
            }),
            _ => None,
        };
        let stats = self.stats.add_queue(&self.name, &config.name);
        let me = self.me.clone();
        let on_lease: queue::LeaseHook = Arc::new(move |queue, event| {
            let Some(vhost) = me.upgrade() else { return };
            match event {
                LeaseEvent::Expired => {
                    tokio::spawn(async move { vhost.expire_queue(&queue).await });
                }
                // Written by the queue's own task, so that its leases are
                // stored in order and before its deletion.
                LeaseEvent::Used(since) => vhost.store_lease(&queue, since),
            }
        });
        let me = self.me.clone();
        let dead_letter: queue::DeadLetterRoute = Arc::new(move |exchange, keys, headers| {
            me.upgrade()
                .map(|vhost| vhost.route_dead_letter(exchange, keys, headers))
                .unwrap_or_default()
        });
        let hooks = queue::QueueHooks {
            lease: on_lease,
            dead_letter,
        };
        let queue = queue::start(
            config,
            self.memory.clone(),
            persistence,
            initial,
            stats,
            hooks,
        );
        if queue.admission.is_some() {
            self.refusing_queues.fetch_add(1, Ordering::Relaxed);
        }
        queue
    }

    /// Deletes a queue unused past its `x-expires`, if it still is.
    async fn expire_queue(&self, queue: &Arc<QueueHandle>) {
        let _ddl = self.ddl.lock().await;
        let registered = self
            .queue(&queue.name)
            .is_some_and(|q| Arc::ptr_eq(&q, queue));
        if registered && queue.expire().await {
            // Nobody to tell: the store's error is logged.
            let _ = self.forget_queue(queue);
        }
    }

    /// Stores a durable queue's lease (a failed write is logged by the
    /// store; the lease then restarts with the broker).
    fn store_lease(&self, queue: &QueueHandle, since: u64) {
        let _ = self.record(
            Definition::QueueUsed {
                vhost: bytes(&self.name),
                name: queue.name.to_bytes(),
                since,
            },
            || resource("queue", &queue.name, &self.name),
        );
    }
}
