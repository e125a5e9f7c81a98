//! Binding and unbinding, queue or exchange as the destination: one path
//! for all four methods, with RabbitMQ's order of checks (unbinding what is
//! missing succeeds), and a durable binding changed only once its record is
//! written.

use warren_codec::{FieldTable, ReplyCode, ShortString};
use warren_protocol::AmqpError;

use super::VHost;
use crate::errors::{self, resource};
use crate::exchange::{Binding, Destination, Exchange, ExchangeKind};
use crate::ids::ConnectionId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingChange {
    Bind,
    Unbind,
}

/// The destination of queue.bind (a queue this connection may use) or of
/// exchange.bind.
#[derive(Debug, Clone, Copy)]
pub enum BindingTarget<'a> {
    Queue(&'a ShortString, ConnectionId),
    Exchange(&'a ShortString),
}

impl VHost {
    pub async fn change_binding(
        &self,
        change: BindingChange,
        source: &ShortString,
        target: BindingTarget<'_>,
        routing_key: ShortString,
        arguments: FieldTable,
    ) -> Result<(), AmqpError> {
        let _ddl = self.ddl.lock().await;
        if source.is_empty() {
            return Err(errors::default_exchange());
        }
        // Unbinding what is not there is done, as in RabbitMQ 3.10: a
        // missing exchange or queue (or binding) answers unbind-ok.
        let unbind = change == BindingChange::Unbind;
        let source = match self.exchange(source) {
            Some(source) => source,
            None if unbind => return Ok(()),
            None => return Err(errors::no_exchange(source, &self.name)),
        };
        let (destination, durable) = match target {
            BindingTarget::Queue(name, _) if unbind && self.queue(name).is_none() => return Ok(()),
            BindingTarget::Queue(name, conn) => {
                let queue = self.find_queue(name, conn)?;
                let durable = source.durable && queue.is_persistent();
                (Destination::Queue(queue), durable)
            }
            BindingTarget::Exchange(name) => {
                if name.is_empty() {
                    return Err(errors::default_exchange());
                }
                let durable = match self.exchange(name) {
                    Some(destination) => source.durable && destination.durable,
                    None if unbind => return Ok(()),
                    None => return Err(errors::no_exchange(name, &self.name)),
                };
                (Destination::Exchange(name.clone()), durable)
            }
        };
        if change == BindingChange::Bind && source.kind == ExchangeKind::Headers {
            crate::exchange::validate_x_match(&arguments)
                .map_err(|text| AmqpError::new(ReplyCode::PreconditionFailed, text))?;
        }
        let binding = Binding {
            destination,
            routing_key,
            arguments,
        };
        match change {
            BindingChange::Bind => self.bind_durably(&source, binding, durable),
            BindingChange::Unbind => self.unbind_durably(&source, binding, durable),
        }
    }

    /// Adds a binding; a durable one stays only once it is recorded.
    fn bind_durably(
        &self,
        source: &Exchange,
        binding: Binding,
        durable: bool,
    ) -> Result<(), AmqpError> {
        if source.bind(binding.clone()) && durable {
            let recorded = self.record_binding(source, &binding, BindingChange::Bind);
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
                let recorded = self.record_binding(source, &binding, BindingChange::Unbind);
                if recorded.is_err() {
                    source.bind(binding);
                    return recorded;
                }
            }
            return self.auto_delete_if_unused(source);
        }
        Ok(())
    }

    fn record_binding(
        &self,
        source: &Exchange,
        binding: &Binding,
        change: BindingChange,
    ) -> Result<(), AmqpError> {
        self.record(
            self.binding_definition(&source.name, binding, change),
            || {
                format!(
                    "a binding of {}",
                    resource("exchange", &source.name, &self.name)
                )
            },
        )
    }
}
