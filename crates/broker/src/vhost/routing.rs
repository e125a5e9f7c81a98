//! Where a publish to a named exchange goes: its bindings, followed through
//! exchange-to-exchange bindings, each queue once.

use std::sync::Arc;
use warren_codec::{FieldTable, ShortString};

use super::VHost;
use crate::exchange::{Destination, Exchange};
use crate::queue::QueueHandle;

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
}
