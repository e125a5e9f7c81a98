//! A queue's settings, typed: what its arguments (and, later, a policy)
//! ask of it, and RabbitMQ's rule for combining the two, key by key.

use warren_codec::ShortString;

use super::queue_type::QueueType;
use super::Precedence;

/// What `x-overflow` asks for once a length limit is reached. (Ordered
/// only so that [`Precedence::pick`] takes it like any other value.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Overflow {
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

/// A queue's settings, typed. From its arguments, or (later) from a
/// policy; [`QueueSettings::merge`] combines the two by RabbitMQ's rule
/// for each key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// `x-expires`: ms unused before the queue is deleted.
    pub expires: Option<u64>,
    /// `x-message-ttl`: ms a message may wait.
    pub message_ttl: Option<u64>,
    pub dead_letter_exchange: Option<ShortString>,
    pub dead_letter_routing_key: Option<ShortString>,
    pub max_length: Option<u64>,
    pub max_length_bytes: Option<u64>,
    pub overflow: Option<Overflow>,
    /// `x-max-priority`: 0..=255 (arguments only).
    pub max_priority: Option<u8>,
    /// `x-single-active-consumer` (arguments only).
    pub single_active_consumer: bool,
    /// `x-delivery-limit`: deliveries before a message is dead-lettered.
    pub delivery_limit: Option<u64>,
}

impl QueueSettings {
    /// The settings in effect when both the queue's arguments and a policy
    /// set some: RabbitMQ's rule per key, which for two keys depends on the
    /// queue's type.
    pub fn merge(
        queue_type: QueueType,
        arguments: &QueueSettings,
        policy: &QueueSettings,
    ) -> QueueSettings {
        use Precedence::*;
        let (expires, overflow) = match queue_type {
            QueueType::Quorum => (Policy, Policy),
            QueueType::Classic | QueueType::Stream => (Minimum, Argument),
        };
        QueueSettings {
            expires: expires.pick(arguments.expires, policy.expires),
            message_ttl: Minimum.pick(arguments.message_ttl, policy.message_ttl),
            dead_letter_exchange: Argument.pick(
                arguments.dead_letter_exchange.clone(),
                policy.dead_letter_exchange.clone(),
            ),
            dead_letter_routing_key: Argument.pick(
                arguments.dead_letter_routing_key.clone(),
                policy.dead_letter_routing_key.clone(),
            ),
            max_length: Minimum.pick(arguments.max_length, policy.max_length),
            max_length_bytes: Minimum.pick(arguments.max_length_bytes, policy.max_length_bytes),
            overflow: overflow.pick(arguments.overflow, policy.overflow),
            max_priority: arguments.max_priority,
            single_active_consumer: arguments.single_active_consumer,
            delivery_limit: Minimum.pick(arguments.delivery_limit, policy.delivery_limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_merge_by_rabbitmqs_rule_per_key() {
        let arguments = QueueSettings {
            message_ttl: Some(1000),
            max_length: Some(50),
            overflow: Some(Overflow::DropHead),
            max_priority: Some(5),
            ..Default::default()
        };
        let policy = QueueSettings {
            message_ttl: Some(500),
            max_length: Some(100),
            expires: Some(60_000),
            overflow: Some(Overflow::RejectPublish),
            dead_letter_exchange: Some(ShortString::from_static("dlx")),
            max_priority: Some(9),
            ..Default::default()
        };
        let merged = QueueSettings::merge(QueueType::Classic, &arguments, &policy);
        assert_eq!(merged.message_ttl, Some(500), "the smaller TTL");
        assert_eq!(merged.max_length, Some(50), "the smaller limit");
        assert_eq!(merged.expires, Some(60_000), "set by one side only");
        assert_eq!(
            merged.overflow,
            Some(Overflow::DropHead),
            "the argument wins"
        );
        assert_eq!(merged.dead_letter_exchange.unwrap().as_bytes(), b"dlx");
        assert_eq!(merged.max_priority, Some(5), "arguments only");
        let quorum = QueueSettings::merge(QueueType::Quorum, &arguments, &policy);
        assert_eq!(
            quorum.overflow,
            Some(Overflow::RejectPublish),
            "the policy wins"
        );
        assert_eq!(quorum.message_ttl, Some(500));
    }
}
