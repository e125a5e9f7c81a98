//! A vhost: its exchanges, queues and bindings, and the rules RabbitMQ
//! applies to declaring, binding and deleting them.

use dashmap::DashMap;
use std::sync::Arc;
use warren_codec::{ExchangeDeclare, FieldTable, FieldValue, QueueDeclare, ReplyCode, ShortString};
use warren_protocol::AmqpError;

use crate::broker::ConnectionId;
use crate::errors::{self, resource};
use crate::exchange::{Binding, Destination, Exchange, ExchangeKind};
use crate::memory::MemoryMonitor;
use crate::names;
use crate::queue::{DeleteRefused, QueueHandle};
use crate::queue::{Persistence, QueueConfig};
use crate::storage::{bytes, Storage};
use warren_store::{BindingDefinition, Definition};

/// The exchanges every vhost starts with (the default exchange is "").
const PREDECLARED: [(&str, ExchangeKind); 6] = [
    ("", ExchangeKind::Direct),
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

pub struct VHost {
    pub name: String,
    exchanges: DashMap<ShortString, Arc<Exchange>>,
    queues: DashMap<ShortString, Arc<QueueHandle>>,
    /// Serialises declarations, bindings and deletions (never publishes), so
    /// that check-then-act sequences on them are atomic.
    ddl: tokio::sync::Mutex<()>,
    memory: Arc<MemoryMonitor>,
    pub(crate) storage: Option<Arc<Storage>>,
    /// Bumped whenever an exchange or queue goes, so that sessions know
    /// their cached lookups may be stale.
    generation: std::sync::atomic::AtomicU64,
}

fn bool_text(b: bool) -> String {
    format!("'{b}'")
}

impl VHost {
    pub fn new(
        name: &str,
        memory: Arc<MemoryMonitor>,
        storage: Option<Arc<Storage>>,
    ) -> Arc<VHost> {
        let vhost = VHost {
            name: name.to_string(),
            exchanges: DashMap::new(),
            queues: DashMap::new(),
            ddl: tokio::sync::Mutex::new(()),
            memory,
            storage,
            generation: std::sync::atomic::AtomicU64::new(0),
        };
        for (name, kind) in PREDECLARED {
            let name = ShortString::from_static(name);
            let exchange = Exchange::new(name.clone(), kind, true, false, false, FieldTable::new());
            vhost.exchanges.insert(name, Arc::new(exchange));
        }
        Arc::new(vhost)
    }

    pub(crate) fn memory(&self) -> &Arc<MemoryMonitor> {
        &self.memory
    }

    pub fn exchange(&self, name: &ShortString) -> Option<Arc<Exchange>> {
        self.exchanges.get(name).map(|e| e.clone())
    }

    pub fn queue(&self, name: &ShortString) -> Option<Arc<QueueHandle>> {
        self.queues.get(name).map(|q| q.clone())
    }

    /// Changes whenever an exchange or queue is removed.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn removed(&self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn find_exchange(&self, name: &ShortString) -> Result<Arc<Exchange>, AmqpError> {
        self.exchange(name)
            .ok_or_else(|| errors::no_exchange(name, &self.name))
    }

    /// A queue the connection may use: 404 if missing, 405 if another
    /// connection's exclusive queue.
    pub fn find_queue(
        &self,
        name: &ShortString,
        conn: ConnectionId,
    ) -> Result<Arc<QueueHandle>, AmqpError> {
        let queue = self
            .queue(name)
            .ok_or_else(|| errors::no_queue(name, &self.name))?;
        if queue.owner.is_some_and(|owner| owner != conn) {
            return Err(errors::locked(name, &self.name));
        }
        Ok(queue)
    }

    // ---- exchanges ---------------------------------------------------------

    pub async fn declare_exchange(&self, d: &ExchangeDeclare) -> Result<(), AmqpError> {
        if d.exchange.is_empty() {
            return Err(errors::default_exchange());
        }
        if d.passive {
            return self.find_exchange(&d.exchange).map(|_| ());
        }
        let Some(kind) = ExchangeKind::parse(d.kind.as_bytes()) else {
            return Err(AmqpError::new(
                ReplyCode::PreconditionFailed,
                format!("unknown exchange type '{}'", d.kind),
            ));
        };
        let _ddl = self.ddl.lock().await;
        if let Some(existing) = self.exchange(&d.exchange) {
            let what = resource("exchange", &d.exchange, &self.name);
            let checks = [
                (
                    "type",
                    format!("'{}'", kind.name()),
                    format!("'{}'", existing.kind.name()),
                ),
                ("durable", bool_text(d.durable), bool_text(existing.durable)),
                (
                    "auto_delete",
                    bool_text(d.auto_delete),
                    bool_text(existing.auto_delete),
                ),
                (
                    "internal",
                    bool_text(d.internal),
                    bool_text(existing.internal),
                ),
            ];
            for (arg, received, current) in checks {
                if received != current {
                    return Err(errors::inequivalent(arg, &what, received, current));
                }
            }
            return compare_arguments(
                &what,
                &d.arguments,
                &existing.arguments,
                &["alternate-exchange"],
            );
        }
        if d.exchange.as_bytes().starts_with(b"amq.") {
            return Err(errors::reserved_name("exchange", &d.exchange));
        }
        if d.durable {
            self.record(
                Definition::Exchange {
                    vhost: bytes(&self.name),
                    name: d.exchange.to_bytes(),
                    kind: bytes(&kind.name()),
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: d.arguments.as_bytes().clone(),
                },
                || resource("exchange", &d.exchange, &self.name),
            )?;
        }
        let exchange = Exchange::new(
            d.exchange.clone(),
            kind,
            d.durable,
            d.auto_delete,
            d.internal,
            d.arguments.clone(),
        );
        self.exchanges
            .insert(d.exchange.clone(), Arc::new(exchange));
        Ok(())
    }

    pub async fn delete_exchange(
        &self,
        name: &ShortString,
        if_unused: bool,
    ) -> Result<(), AmqpError> {
        if name.is_empty() {
            return Err(errors::default_exchange());
        }
        if name.as_bytes().starts_with(b"amq.") {
            return Err(AmqpError::new(
                ReplyCode::AccessRefused,
                format!(
                    "deletion of system {} not allowed",
                    resource("exchange", name, &self.name)
                ),
            ));
        }
        let _ddl = self.ddl.lock().await;
        let Some(exchange) = self.exchange(name) else {
            return Ok(());
        };
        if if_unused && exchange.has_bindings() {
            return Err(AmqpError::new(
                ReplyCode::PreconditionFailed,
                format!("{} in use", resource("exchange", name, &self.name)),
            ));
        }
        self.remove_exchange(&exchange)
    }

    /// Removes an exchange and the bindings that lead to it; a durable one
    /// only once its deletion is recorded.
    fn remove_exchange(&self, exchange: &Exchange) -> Result<(), AmqpError> {
        let name = &exchange.name;
        if exchange.durable {
            self.record(
                Definition::DeleteExchange {
                    vhost: bytes(&self.name),
                    name: name.to_bytes(),
                },
                || resource("exchange", name, &self.name),
            )?;
        }
        if self.exchanges.remove(name).is_some() {
            self.removed();
        }
        self.unbind_everywhere(&Destination::Exchange(name.clone()))
    }

    /// Removes every binding to `destination`; auto-delete exchanges left
    /// without bindings go too, as in RabbitMQ.
    fn unbind_everywhere(&self, destination: &Destination) -> Result<(), AmqpError> {
        let exchanges: Vec<Arc<Exchange>> = self.exchanges.iter().map(|e| e.clone()).collect();
        let mut result = Ok(());
        for exchange in exchanges {
            if exchange.unbind_destination(destination) > 0 {
                result = result.and(self.auto_delete_if_unused(&exchange));
            }
        }
        result
    }

    fn auto_delete_if_unused(&self, exchange: &Exchange) -> Result<(), AmqpError> {
        if exchange.auto_delete && !exchange.has_bindings() {
            return self.remove_exchange(exchange);
        }
        Ok(())
    }

    // ---- queues ------------------------------------------------------------

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
        let name = if d.queue.is_empty() {
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
            let what = resource("queue", &name, &self.name);
            for (arg, received, current) in [
                ("durable", d.durable, existing.durable),
                ("auto_delete", d.auto_delete, existing.auto_delete),
            ] {
                if received != current {
                    return Err(errors::inequivalent(
                        arg,
                        &what,
                        bool_text(received),
                        bool_text(current),
                    ));
                }
            }
            compare_queue_arguments(&what, &d.arguments, &existing.arguments)?;
            let (messages, consumers) = existing.stats().await;
            return Ok((existing, messages, consumers));
        }
        let config = QueueConfig {
            name: name.clone(),
            durable: d.durable,
            auto_delete: d.auto_delete,
            owner: d.exclusive.then_some(conn),
            arguments: d.arguments.clone(),
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
        self.queues
            .remove_if(&queue.name, |_, q| Arc::ptr_eq(q, queue));
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

    // ---- bindings ----------------------------------------------------------

    fn binding_source(&self, name: &ShortString) -> Result<Arc<Exchange>, AmqpError> {
        if name.is_empty() {
            return Err(errors::default_exchange());
        }
        self.find_exchange(name)
    }

    fn check_binding_arguments(
        exchange: &Exchange,
        arguments: &FieldTable,
    ) -> Result<(), AmqpError> {
        if exchange.kind == ExchangeKind::Headers {
            crate::exchange::validate_x_match(arguments)
                .map_err(|text| AmqpError::new(ReplyCode::PreconditionFailed, text))?;
        }
        Ok(())
    }

    pub async fn bind_queue(
        &self,
        conn: ConnectionId,
        queue: &ShortString,
        exchange: &ShortString,
        routing_key: ShortString,
        arguments: FieldTable,
    ) -> Result<(), AmqpError> {
        let _ddl = self.ddl.lock().await;
        let source = self.binding_source(exchange)?;
        let queue = self.find_queue(queue, conn)?;
        Self::check_binding_arguments(&source, &arguments)?;
        let durable = source.durable && queue.is_persistent();
        let binding = Binding {
            destination: Destination::Queue(queue),
            routing_key,
            arguments,
        };
        self.bind_durably(&source, binding, durable)
    }

    pub async fn unbind_queue(
        &self,
        conn: ConnectionId,
        queue: &ShortString,
        exchange: &ShortString,
        routing_key: ShortString,
        arguments: FieldTable,
    ) -> Result<(), AmqpError> {
        let _ddl = self.ddl.lock().await;
        let source = self.binding_source(exchange)?;
        let queue = self.find_queue(queue, conn)?;
        let durable = source.durable && queue.is_persistent();
        let binding = Binding {
            destination: Destination::Queue(queue),
            routing_key,
            arguments,
        };
        self.unbind_durably(&source, binding, durable)
    }

    pub async fn bind_exchange(
        &self,
        destination: &ShortString,
        source: &ShortString,
        routing_key: ShortString,
        arguments: FieldTable,
    ) -> Result<(), AmqpError> {
        let _ddl = self.ddl.lock().await;
        let source_exchange = self.binding_source(source)?;
        if destination.is_empty() {
            return Err(errors::default_exchange());
        }
        let destination_exchange = self.find_exchange(destination)?;
        Self::check_binding_arguments(&source_exchange, &arguments)?;
        let binding = Binding {
            destination: Destination::Exchange(destination.clone()),
            routing_key,
            arguments,
        };
        let durable = source_exchange.durable && destination_exchange.durable;
        self.bind_durably(&source_exchange, binding, durable)
    }

    pub async fn unbind_exchange(
        &self,
        destination: &ShortString,
        source: &ShortString,
        routing_key: ShortString,
        arguments: FieldTable,
    ) -> Result<(), AmqpError> {
        let _ddl = self.ddl.lock().await;
        let source_exchange = self.binding_source(source)?;
        if destination.is_empty() {
            return Err(errors::default_exchange());
        }
        let destination_exchange = self.find_exchange(destination)?;
        let binding = Binding {
            destination: Destination::Exchange(destination.clone()),
            routing_key,
            arguments,
        };
        let durable = source_exchange.durable && destination_exchange.durable;
        self.unbind_durably(&source_exchange, binding, durable)
    }

    /// Adds a binding; a durable one stays only once it is recorded.
    fn bind_durably(
        &self,
        source: &Exchange,
        binding: Binding,
        durable: bool,
    ) -> Result<(), AmqpError> {
        if source.bind(binding.clone()) && durable {
            let recorded = self.record(
                self.binding_definition(&source.name, &binding, true),
                || {
                    format!(
                        "a binding of {}",
                        resource("exchange", &source.name, &self.name)
                    )
                },
            );
            if recorded.is_err() {
                source.unbind(&binding);
            }
            return recorded;
        }
        Ok(())
    }

    /// Removes a binding; a durable one goes only once its removal is recorded.
    fn unbind_durably(
        &self,
        source: &Exchange,
        binding: Binding,
        durable: bool,
    ) -> Result<(), AmqpError> {
        if source.unbind(&binding) {
            if durable {
                let recorded = self.record(
                    self.binding_definition(&source.name, &binding, false),
                    || {
                        format!(
                            "a binding of {}",
                            resource("exchange", &source.name, &self.name)
                        )
                    },
                );
                if recorded.is_err() {
                    source.bind(binding);
                    return recorded;
                }
            }
            return self.auto_delete_if_unused(source);
        }
        Ok(())
    }

    // ---- durability --------------------------------------------------------

    /// Writes a change to the definitions log. A failed write is a broker
    /// failure, as in RabbitMQ: 541 closes the connection, and nothing
    /// changes in memory.
    fn record(
        &self,
        definition: Definition,
        what: impl FnOnce() -> String,
    ) -> Result<(), AmqpError> {
        let Some(storage) = &self.storage else {
            return Ok(());
        };
        storage.record(&definition).map_err(|e| {
            AmqpError::new(
                ReplyCode::InternalError,
                format!("cannot store the definition of {}: {e}", what()),
            )
        })
    }

    fn binding_definition(
        &self,
        source: &ShortString,
        binding: &Binding,
        bind: bool,
    ) -> Definition {
        let (destination, to_exchange) = match &binding.destination {
            Destination::Queue(q) => (q.name.to_bytes(), false),
            Destination::Exchange(e) => (e.to_bytes(), true),
        };
        let stored = BindingDefinition {
            vhost: bytes(&self.name),
            source: source.to_bytes(),
            destination,
            to_exchange,
            routing_key: binding.routing_key.to_bytes(),
            arguments: binding.arguments.as_bytes().clone(),
        };
        if bind {
            Definition::Binding(stored)
        } else {
            Definition::Unbinding(stored)
        }
    }

    /// Starts a queue's task; durable, non-exclusive queues write to the store.
    fn start_queue(&self, config: QueueConfig, initial: Vec<u64>) -> Arc<QueueHandle> {
        let persistence = match &self.storage {
            Some(storage) if config.is_persistent() => Some(Persistence {
                store: storage.messages.clone(),
                vhost: bytes(&self.name),
                queue: config.name.to_bytes(),
                budget: storage.queue_memory_budget,
            }),
            _ => None,
        };
        QueueHandle::start(config, self.memory.clone(), persistence, initial)
    }

    /// A durable exchange from the definitions log.
    pub fn restore_exchange(
        &self,
        name: ShortString,
        kind: ExchangeKind,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) {
        let exchange = Exchange::new(name.clone(), kind, true, auto_delete, internal, arguments);
        self.exchanges.insert(name, Arc::new(exchange));
    }

    /// A durable queue from the definitions log, with the store ids of its messages.
    pub fn restore_queue(
        &self,
        name: ShortString,
        auto_delete: bool,
        arguments: FieldTable,
        messages: Vec<u64>,
    ) {
        let config = QueueConfig {
            name: name.clone(),
            durable: true,
            auto_delete,
            owner: None,
            arguments,
        };
        let queue = self.start_queue(config, messages);
        self.queues.insert(name, queue);
    }

    /// A durable binding from the definitions log; false if either end is missing.
    pub fn restore_binding(
        &self,
        source: &ShortString,
        destination: &ShortString,
        to_exchange: bool,
        routing_key: ShortString,
        arguments: FieldTable,
    ) -> bool {
        let Some(source) = self.exchange(source) else {
            return false;
        };
        let destination = if to_exchange {
            match self.exchange(destination) {
                Some(_) => Destination::Exchange(destination.clone()),
                None => return false,
            }
        } else {
            match self.queue(destination) {
                Some(queue) => Destination::Queue(queue),
                None => return false,
            }
        };
        source.bind(Binding {
            destination,
            routing_key,
            arguments,
        });
        true
    }

    // ---- routing -----------------------------------------------------------

    /// The queues a message published to `exchange` (not the default
    /// exchange, which sessions resolve through their route cache) reaches,
    /// each once, following exchange-to-exchange bindings (loops are cut).
    pub fn route_named(
        &self,
        exchange: &Exchange,
        routing_key: &ShortString,
        headers: Option<&FieldTable>,
        scratch: &mut Vec<Destination>,
        queues: &mut Vec<Arc<QueueHandle>>,
    ) {
        queues.clear();
        scratch.clear();
        exchange.route(routing_key.as_bytes(), headers, scratch);
        let mut visited: smallvec::SmallVec<[ShortString; 4]> =
            smallvec::smallvec![exchange.name.clone()];
        while let Some(destination) = scratch.pop() {
            match destination {
                Destination::Queue(queue) => queues.push(queue),
                Destination::Exchange(name) => {
                    if visited.contains(&name) {
                        continue;
                    }
                    if let Some(next) = self.exchange(&name) {
                        next.route(routing_key.as_bytes(), headers, scratch);
                    }
                    visited.push(name);
                }
            }
        }
        if queues.len() > 1 {
            queues.sort_unstable_by_key(|q| Arc::as_ptr(q) as usize);
            queues.dedup_by(|a, b| Arc::ptr_eq(a, b));
        }
    }
}

/// RabbitMQ's argument equivalence: the listed keys must be equal (absent
/// on both sides counts as equal).
fn compare_arguments(
    what: &str,
    received: &FieldTable,
    current: &FieldTable,
    keys: &[&str],
) -> Result<(), AmqpError> {
    for key in keys {
        let (r, c) = (received.get(key), current.get(key));
        if r != c {
            return Err(errors::inequivalent(
                key,
                what,
                errors::show(r.as_ref()),
                errors::show(c.as_ref()),
            ));
        }
    }
    Ok(())
}

/// Queue arguments: every `x-` argument on either side must match;
/// `x-queue-type` classic equals absent.
fn compare_queue_arguments(
    what: &str,
    received: &FieldTable,
    current: &FieldTable,
) -> Result<(), AmqpError> {
    let mut keys: Vec<String> = received
        .iter()
        .chain(current.iter())
        .filter_map(|(k, _)| {
            k.as_str()
                .filter(|k| k.starts_with("x-"))
                .map(str::to_string)
        })
        .collect();
    keys.sort();
    keys.dedup();
    for key in &keys {
        let normalise = |v: Option<FieldValue>| match v {
            Some(FieldValue::LongString(s)) if key == "x-queue-type" && s == "classic" => None,
            other => other,
        };
        let (r, c) = (normalise(received.get(key)), normalise(current.get(key)));
        if r != c {
            return Err(errors::inequivalent(
                key,
                what,
                errors::show(r.as_ref()),
                errors::show(c.as_ref()),
            ));
        }
    }
    Ok(())
}
