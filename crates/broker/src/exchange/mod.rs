//! Exchanges and their bindings. Each exchange type keeps an index built
//! for its kind of routing, so that a publish never scans every binding
//! (headers exchanges excepted: they compare tables, as RabbitMQ's do).

mod direct;
mod fanout;
mod headers;
mod topic;

pub use headers::validate_x_match;

use std::sync::{Arc, RwLock};
use warren_codec::{FieldTable, ShortString};

use crate::args::ExchangeArgs;
use crate::queue::QueueHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    pub fn parse(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"direct" => Self::Direct,
            b"fanout" => Self::Fanout,
            b"topic" => Self::Topic,
            b"headers" => Self::Headers,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
        }
    }
}

/// Where a binding sends messages.
#[derive(Clone)]
pub enum Destination {
    Queue(Arc<QueueHandle>),
    /// Exchange-to-exchange binding, resolved by name when routing.
    Exchange(ShortString),
}

impl Destination {
    /// Same queue or exchange, by name.
    pub fn same(&self, other: &Destination) -> bool {
        match (self, other) {
            (Destination::Queue(a), Destination::Queue(b)) => a.name == b.name,
            (Destination::Exchange(a), Destination::Exchange(b)) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Queue(q) => write!(f, "queue {:?}", q.name),
            Destination::Exchange(e) => write!(f, "exchange {e:?}"),
        }
    }
}

/// A binding is identified by destination, key and arguments together.
#[derive(Clone, Debug)]
pub struct Binding {
    pub destination: Destination,
    pub routing_key: ShortString,
    pub arguments: FieldTable,
}

impl Binding {
    fn same(&self, other: &Binding) -> bool {
        self.destination.same(&other.destination)
            && self.routing_key == other.routing_key
            && self.arguments == other.arguments
    }
}

/// A routing key of 255 bytes has at most this many words.
const MAX_WORDS: usize = 128;

/// Routes that may visit more (node, position) pairs than this leave the
/// runtime's threads: about a millisecond of work.
const LONG_ROUTE: usize = 1 << 16;

/// An exchange type's binding index.
enum Router {
    Direct(direct::DirectRouter),
    Fanout(fanout::BindingList),
    Topic(topic::TopicRouter),
    Headers(headers::HeadersRouter),
}

pub struct Exchange {
    pub name: ShortString,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub args: ExchangeArgs,
    /// Publishers take it to read; only bind and unbind write. Per exchange,
    /// so publishers to different exchanges never meet.
    router: RwLock<Router>,
}

impl Exchange {
    pub fn new(
        name: ShortString,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        args: ExchangeArgs,
    ) -> Self {
        let router = match kind {
            ExchangeKind::Direct => Router::Direct(Default::default()),
            ExchangeKind::Fanout => Router::Fanout(Default::default()),
            ExchangeKind::Topic => Router::Topic(Default::default()),
            ExchangeKind::Headers => Router::Headers(Default::default()),
        };
        Exchange {
            name,
            kind,
            durable,
            auto_delete,
            internal,
            args,
            router: RwLock::new(router),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Router> {
        self.router.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Router> {
        self.router.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a binding; false if it already existed.
    pub fn bind(&self, binding: Binding) -> bool {
        match &mut *self.write() {
            Router::Direct(r) => r.bind(binding),
            Router::Fanout(r) => r.bind(binding),
            Router::Topic(r) => r.bind(binding),
            Router::Headers(r) => r.bind(binding),
        }
    }

    /// Removes a binding; false if there was none.
    pub fn unbind(&self, binding: &Binding) -> bool {
        match &mut *self.write() {
            Router::Direct(r) => r.unbind(binding),
            Router::Fanout(r) => r.unbind(binding),
            Router::Topic(r) => r.unbind(binding),
            Router::Headers(r) => r.unbind(binding),
        }
    }

    /// Removes every binding to `destination` (a deleted queue or exchange).
    pub fn unbind_destination(&self, destination: &Destination) -> usize {
        let bindings: Vec<Binding> = self
            .bindings()
            .into_iter()
            .filter(|b| b.destination.same(destination))
            .collect();
        bindings.iter().filter(|b| self.unbind(b)).count()
    }

    pub fn bindings(&self) -> Vec<Binding> {
        match &*self.read() {
            Router::Direct(r) => r.bindings(),
            Router::Fanout(r) => r.bindings.clone(),
            Router::Topic(r) => r.bindings(),
            Router::Headers(r) => r.bindings(),
        }
    }

    pub fn has_bindings(&self) -> bool {
        match &*self.read() {
            Router::Direct(r) => !r.is_empty(),
            Router::Fanout(r) => !r.bindings.is_empty(),
            Router::Topic(r) => !r.is_empty(),
            Router::Headers(r) => !r.is_empty(),
        }
    }

    /// Appends the destinations a message goes to (duplicates possible).
    /// Routes that may take long (a topic trie of many thousand nodes) run
    /// off the runtime's worker threads, so that they never stall the other
    /// connections those threads serve.
    pub fn route(
        &self,
        routing_key: &[u8],
        headers: Option<&FieldTable>,
        out: &mut Vec<Destination>,
    ) {
        match &*self.read() {
            Router::Direct(r) => r.route(routing_key, out),
            Router::Fanout(r) => out.extend(r.bindings.iter().map(|b| b.destination.clone())),
            // Small tries answer without reading the key.
            Router::Topic(r)
                if r.nodes() * MAX_WORDS >= LONG_ROUTE
                    && r.cost_bound(routing_key) >= LONG_ROUTE =>
            {
                crate::blocking::off_runtime(|| r.route(routing_key, out))
            }
            Router::Topic(r) => r.route(routing_key, out),
            Router::Headers(r) => r.route(headers, out),
        }
    }
}
