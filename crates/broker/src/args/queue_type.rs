//! The kinds of queue a declaration can ask for (`x-queue-type`): the
//! arguments each kind takes (validated on declare, compared on redeclare,
//! refused on the other kinds) and the declare rules of quorum queues.

/// A queue's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
    Stream,
}

/// RabbitMQ 3.10's argument list of each kind (`capabilities()` of its
/// queue modules), in the order a redeclare compares them.
const CLASSIC: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
];

const QUORUM: &[&str] = &[
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-overflow",
    "x-single-active-consumer",
    "x-queue-type",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-message-ttl",
    "x-queue-leader-locator",
];

const STREAM: &[&str] = &[
    "x-max-length-bytes",
    "x-queue-type",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
];

impl QueueType {
    /// The kind's name as RabbitMQ's texts print it (its Erlang module).
    pub fn module(self) -> &'static str {
        match self {
            QueueType::Classic => "rabbit_classic_queue",
            QueueType::Quorum => "rabbit_quorum_queue",
            QueueType::Stream => "rabbit_stream_queue",
        }
    }

    /// The arguments this kind takes.
    pub fn arguments(self) -> &'static [&'static str] {
        match self {
            QueueType::Classic => CLASSIC,
            QueueType::Quorum => QUORUM,
            QueueType::Stream => STREAM,
        }
    }

    pub fn takes(self, key: &str) -> bool {
        self.arguments().contains(&key)
    }

    /// The argument, if it is one that only other kinds take: such a key
    /// is refused on a new queue. (Keys no kind takes are kept, ignored.)
    pub fn foreign(self, key: &str) -> Option<&'static str> {
        if self.takes(key) {
            return None;
        }
        [CLASSIC, QUORUM, STREAM]
            .iter()
            .flat_map(|list| list.iter())
            .find(|k| **k == key)
            .copied()
    }

    /// The declare flags a kind refuses, in RabbitMQ's order (the first
    /// that fails is reported): `invalid property '<p>' for <queue>`.
    pub fn refused_property(
        self,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
    ) -> Option<&'static str> {
        if self != QueueType::Quorum {
            return None;
        }
        if auto_delete {
            Some("auto-delete")
        } else if exclusive {
            Some("exclusive-owner")
        } else if !durable {
            Some("non-durable")
        } else {
            None
        }
    }

    /// Whether a server-chosen name is refused (`Cannot declare a
    /// server-named queue for type <module>`).
    pub fn refuses_server_names(self) -> bool {
        self != QueueType::Classic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_refuses_only_the_other_kinds_arguments() {
        assert_eq!(
            QueueType::Classic.foreign("x-delivery-limit"),
            Some("x-delivery-limit")
        );
        assert_eq!(QueueType::Classic.foreign("x-max-age"), Some("x-max-age"));
        assert_eq!(QueueType::Classic.foreign("x-message-ttl"), None);
        assert_eq!(QueueType::Classic.foreign("x-foo"), None);
        assert_eq!(
            QueueType::Quorum.foreign("x-max-priority"),
            Some("x-max-priority")
        );
        assert_eq!(
            QueueType::Quorum.foreign("x-queue-mode"),
            Some("x-queue-mode")
        );
        assert_eq!(QueueType::Quorum.foreign("x-delivery-limit"), None);
        assert_eq!(QueueType::Quorum.foreign("x-consumer-timeout"), None);
    }

    #[test]
    fn quorum_flags_are_checked_in_rabbitmqs_order() {
        let q = QueueType::Quorum;
        assert_eq!(q.refused_property(false, true, true), Some("auto-delete"));
        assert_eq!(
            q.refused_property(false, true, false),
            Some("exclusive-owner")
        );
        assert_eq!(q.refused_property(false, false, false), Some("non-durable"));
        assert_eq!(q.refused_property(true, false, false), None);
        assert_eq!(QueueType::Classic.refused_property(false, true, true), None);
    }
}
