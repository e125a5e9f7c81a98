//! Declaring and deleting exchanges, with RabbitMQ's rules: reserved
//! names, the redeclare check, auto-delete once the last binding goes.

use std::sync::Arc;
use warren_codec::{ExchangeDeclare, ReplyCode, ShortString};
use warren_protocol::AmqpError;
use warren_store::Definition;

use super::VHost;
use crate::args::{self, ExchangeArgs, ExchangeShape};
use crate::errors::{self, resource};
use crate::exchange::{Destination, Exchange, ExchangeKind};
use crate::storage::bytes;

impl VHost {
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
            return args::check_exchange(
                &resource("exchange", &d.exchange, &self.name),
                ExchangeShape {
                    kind: kind.name(),
                    durable: d.durable,
                    auto_delete: d.auto_delete,
                    internal: d.internal,
                    arguments: &d.arguments,
                },
                ExchangeShape {
                    kind: existing.kind.name(),
                    durable: existing.durable,
                    auto_delete: existing.auto_delete,
                    internal: existing.internal,
                    arguments: &existing.args.table,
                },
            );
        }
        if d.exchange.as_bytes().starts_with(b"amq.") {
            return Err(errors::reserved_name("exchange", &d.exchange));
        }
        let exchange_args = ExchangeArgs::parse(&d.arguments).map_err(|e| {
            AmqpError::new(
                ReplyCode::PreconditionFailed,
                e.text(&resource("exchange", &d.exchange, &self.name)),
            )
        })?;
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
            exchange_args,
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
    pub(super) fn unbind_everywhere(&self, destination: &Destination) -> Result<(), AmqpError> {
        let exchanges: Vec<Arc<Exchange>> = self.exchanges.iter().map(|e| e.clone()).collect();
        let mut result = Ok(());
        for exchange in exchanges {
            if exchange.unbind_destination(destination) > 0 {
                result = result.and(self.auto_delete_if_unused(&exchange));
            }
        }
        result
    }

    pub(super) fn auto_delete_if_unused(&self, exchange: &Exchange) -> Result<(), AmqpError> {
        if exchange.auto_delete && !exchange.has_bindings() {
            return self.remove_exchange(exchange);
        }
        Ok(())
    }
}
