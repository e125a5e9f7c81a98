//! Where a publish to a named exchange goes: its bindings, followed through
//! exchange-to-exchange bindings, each queue once; and where a dead letter
//! goes.

use std::sync::Arc;
use warren_codec::{FieldTable, ShortString};

use super::VHost;
use crate::exchange::{Destination, Exchange};
use crate::queue::{DeadLetterTargets, QueueHandle};

impl VHost {
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

    /// The queues a dead letter published to `exchange` with `keys` reaches
    /// (the default exchange included, and alternate exchanges, as for any
    /// publish); none if the exchange does not exist.
    pub(crate) fn route_dead_letter(
        &self,
        exchange: &ShortString,
        keys: &[ShortString],
        headers: &FieldTable,
    ) -> DeadLetterTargets {
        let mut queues = Vec::new();
        if exchange.is_empty() {
            queues.extend(keys.iter().filter_map(|k| self.queue(k)));
        } else {
            let (mut scratch, mut more) = (Vec::new(), Vec::new());
            let mut next = self.exchange(exchange);
            let mut visited: smallvec::SmallVec<[ShortString; 4]> = smallvec::smallvec![];
            while let Some(x) = next.take() {
                if visited.contains(&x.name) {
                    break;
                }
                for key in keys {
                    self.route_named(&x, key, Some(headers), &mut scratch, &mut more);
                    queues.append(&mut more);
                }
                if queues.is_empty() {
                    next = x
                        .args
                        .alternate_exchange
                        .as_ref()
                        .and_then(|a| self.exchange(a));
                }
                visited.push(x.name.clone());
            }
        }
        queues.sort_unstable_by_key(|q| Arc::as_ptr(q) as usize);
        queues.dedup_by(|a, b| Arc::ptr_eq(a, b));
        DeadLetterTargets {
            queues,
            store: self
                .storage
                .as_ref()
                .map(|s| (s.messages.clone(), crate::storage::bytes(&self.name))),
        }
    }
}
