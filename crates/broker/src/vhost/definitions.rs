//! Durable definitions: each change written to the definitions log before
//! it is made, and exchanges, queues and bindings restored from it at
//! startup.

use warren_codec::{FieldTable, ReplyCode, ShortString};
use warren_protocol::AmqpError;
use warren_store::{BindingDefinition, Definition};

use super::{BindingChange, VHost};
use crate::args::{ExchangeArgs, QueueArgs};
use crate::exchange::{Binding, Destination, Exchange, ExchangeKind};
use crate::queue::QueueConfig;
use crate::storage::bytes;
use std::sync::Arc;

impl VHost {
    /// Writes a change to the definitions log. A failed write is a broker
    /// failure, as in RabbitMQ: 541 closes the connection, and nothing
    /// changes in memory.
    pub(super) fn record(
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

    pub(super) fn binding_definition(
        &self,
        source: &ShortString,
        binding: &Binding,
        change: BindingChange,
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
        match change {
            BindingChange::Bind => Definition::Binding(stored),
            BindingChange::Unbind => Definition::Unbinding(stored),
        }
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
        let args = ExchangeArgs::restored(arguments);
        let exchange = Exchange::new(name.clone(), kind, true, auto_delete, internal, args);
        self.exchanges.insert(name, Arc::new(exchange));
    }

    /// A durable queue from the definitions log, with the store ids of its
    /// messages and its stored lease (`x-expires`).
    pub fn restore_queue(
        &self,
        name: ShortString,
        auto_delete: bool,
        arguments: FieldTable,
        messages: Vec<u64>,
        unused_since: Option<u64>,
    ) {
        let config = QueueConfig {
            name: name.clone(),
            durable: true,
            auto_delete,
            owner: None,
            args: QueueArgs::restored(arguments),
            unused_since,
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
}
