//! Warren's broker core: vhosts, exchanges and their bindings, queues (each
//! a task that owns its messages), consumers and acknowledgements, and the
//! per-connection session that carries out AMQP methods against them.
//!
//! Publishing takes no global lock: a vhost's exchanges and queues live in
//! sharded maps, an exchange's bindings behind its own read-write lock, and
//! a queue's state in its own task.

mod args;
mod blocking;
mod broker;
mod clock;
mod dead_letter;
mod errors;
mod exchange;
mod flow;
mod ids;
mod log_text;
mod machine_memory;
mod memory;
mod message;
mod names;
mod queue;
mod safekeeping;
mod session;
mod stats;
mod storage;
mod vhost;

pub use args::{ExchangeArgs, Overflow, QueueArgs, QueueSettings, QueueType};
pub use broker::Broker;
pub use exchange::{Binding, Destination, Exchange, ExchangeKind};
pub use flow::{FlowChange, PublisherFlow};
pub use ids::ConnectionId;
pub use log_text::Escaped;
pub use memory::{default_limit as default_memory_limit, MemoryMonitor};
pub use message::Message;
pub use queue::{ConnEvent, DeliveryPort, QueueHandle};
pub use session::{Outbox, Session};
pub use stats::{
    ChannelCounts, ChannelStats, ConnectionStats, QueueCounts, QueueStats, Registered, Registry,
};
pub use storage::{Restored, Storage};
pub use vhost::{BindingChange, BindingTarget, VHost};
