//! A session's memory of where it last published: most publishers send to
//! one exchange (often the default one, to one queue) over and over, and the
//! vhost's maps need not be searched each time.

use std::sync::Arc;
use warren_codec::ShortString;

use crate::exchange::Exchange;
use crate::queue::QueueHandle;
use crate::vhost::VHost;

#[derive(Default)]
pub(super) struct RouteCache {
    /// The vhost generation the entries are valid for: any exchange or
    /// queue removal clears them.
    generation: u64,
    exchange: Option<Arc<Exchange>>,
    queue: Option<Arc<QueueHandle>>,
}

impl RouteCache {
    fn check(&mut self, vhost: &VHost) {
        let generation = vhost.generation();
        if generation != self.generation {
            *self = RouteCache {
                generation,
                ..Default::default()
            };
        }
    }

    /// The named exchange, lent out: give it back with [`put_exchange`](Self::put_exchange).
    pub fn take_exchange(&mut self, vhost: &VHost, name: &ShortString) -> Option<Arc<Exchange>> {
        self.check(vhost);
        match self.exchange.take() {
            Some(exchange) if exchange.name == *name => Some(exchange),
            _ => vhost.exchange(name),
        }
    }

    pub fn put_exchange(&mut self, exchange: Arc<Exchange>) {
        self.exchange = Some(exchange);
    }

    /// The queue the default exchange routes `routing_key` to.
    pub fn default_route(
        &mut self,
        vhost: &VHost,
        routing_key: &ShortString,
    ) -> Option<Arc<QueueHandle>> {
        self.check(vhost);
        match &self.queue {
            Some(queue) if queue.name == *routing_key => Some(queue.clone()),
            _ => {
                let queue = vhost.queue(routing_key)?;
                self.queue = Some(queue.clone());
                Some(queue)
            }
        }
    }
}
