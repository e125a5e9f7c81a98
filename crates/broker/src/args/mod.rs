//! Queue and exchange arguments: parsed and validated once, at declare,
//! into typed settings; the redeclare equivalence check beside them; and
//! the rule that combines an argument with a policy's value, key by key.

mod consume;
mod equivalence;
mod exchange;
pub mod expiration;
mod queue;
mod queue_type;
mod settings;
mod validators;
mod value;

pub use consume::consumer_priority;
pub use equivalence::{check_exchange, check_queue, ExchangeShape, QueueShape};
pub use exchange::ExchangeArgs;
pub use queue::{declared_type, QueueArgs};
pub use queue_type::QueueType;
pub use settings::{Overflow, QueueSettings};
pub(crate) use value::type_name;

/// Which value is in effect when a queue argument and a policy both set a
/// key (RabbitMQ decides per key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precedence {
    /// The argument, if set; else the policy's.
    Argument,
    /// The policy's, if set; else the argument.
    Policy,
    /// The smaller of the two.
    Minimum,
}

impl Precedence {
    pub fn pick<T: Ord>(self, argument: Option<T>, policy: Option<T>) -> Option<T> {
        match (self, argument, policy) {
            (_, None, p) => p,
            (_, a, None) => a,
            (Precedence::Argument, a, _) => a,
            (Precedence::Policy, _, p) => p,
            (Precedence::Minimum, Some(a), Some(p)) => Some(a.min(p)),
        }
    }
}
