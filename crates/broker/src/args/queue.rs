//! A queue's arguments: read and validated once, at declare, into typed
//! settings that the queue acts on (queues never read field tables).

use warren_codec::{FieldTable, FieldValue, ShortString};

use super::value::{self, MAX_MILLIS};
use super::Precedence;

/// The kinds of queue a declaration can ask for (`x-queue-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
    Stream,
}

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

/// A queue's arguments as declared (kept for the definitions log and the
/// redeclare check) and the settings read from them.
#[derive(Debug, Clone, Default)]
pub struct QueueArgs {
    pub table: FieldTable,
    pub queue_type: QueueType,
    pub settings: QueueSettings,
}

/// Why a declaration's arguments were refused: RabbitMQ's reason text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgError {
    /// `invalid arg '<key>' for <queue>: <reason>`
    Invalid { key: &'static str, reason: String },
    /// `invalid type '<type>' for arg '<key>' in <queue>` (checked before the rest)
    Type {
        key: &'static str,
        kind: &'static str,
    },
}

impl ArgError {
    /// The reply text for `what` (`queue 'q' in vhost '/'`).
    pub fn text(&self, what: &str) -> String {
        match self {
            ArgError::Invalid { key, reason } => {
                format!("invalid arg '{key}' for {what}: {reason}")
            }
            ArgError::Type { key, kind } => {
                format!("invalid type '{kind}' for arg '{key}' in {what}")
            }
        }
    }
}

fn invalid(key: &'static str) -> impl FnOnce(String) -> ArgError {
    move |reason| ArgError::Invalid { key, reason }
}

impl QueueArgs {
    /// Reads a new queue's arguments, in the order RabbitMQ checks them.
    /// Arguments no queue acts on are kept in the table and otherwise
    /// ignored, as RabbitMQ does.
    pub fn parse(table: &FieldTable) -> Result<QueueArgs, ArgError> {
        let mut s = QueueSettings::default();
        let get = |key: &str| table.get(key);
        if let Some(v) = get("x-dead-letter-exchange") {
            let FieldValue::LongString(name) = &v else {
                return Err(ArgError::Type {
                    key: "x-dead-letter-exchange",
                    kind: value::type_name(&v),
                });
            };
            s.dead_letter_exchange = Some(short(name.as_bytes()));
        }
        let queue_type = match get("x-queue-type") {
            None => QueueType::Classic,
            Some(v) => match value::string(&v).map_err(invalid("x-queue-type"))?.as_str() {
                "classic" => QueueType::Classic,
                "quorum" => QueueType::Quorum,
                "stream" => QueueType::Stream,
                other => {
                    return Err(invalid("x-queue-type")(format!(
                        "\"unsupported queue type '{other}'\""
                    )))
                }
            },
        };
        if let Some(v) = get("x-expires") {
            s.expires =
                Some(value::bounded(&v, 1, Some(MAX_MILLIS)).map_err(invalid("x-expires"))?);
        }
        if let Some(v) = get("x-message-ttl") {
            s.message_ttl =
                Some(value::bounded(&v, 0, Some(MAX_MILLIS)).map_err(invalid("x-message-ttl"))?);
        }
        if let Some(v) = get("x-dead-letter-routing-key") {
            let key = value::string(&v).map_err(invalid("x-dead-letter-routing-key"))?;
            if s.dead_letter_exchange.is_none() {
                return Err(invalid("x-dead-letter-routing-key")(
                    "routing_key_but_no_dlx_defined".into(),
                ));
            }
            s.dead_letter_routing_key = Some(short(key.as_bytes()));
        }
        if let Some(v) = get("x-max-length") {
            s.max_length = Some(value::bounded(&v, 0, None).map_err(invalid("x-max-length"))?);
        }
        if let Some(v) = get("x-max-length-bytes") {
            s.max_length_bytes =
                Some(value::bounded(&v, 0, None).map_err(invalid("x-max-length-bytes"))?);
        }
        if let Some(v) = get("x-max-priority") {
            let n = value::bounded(&v, 0, None).map_err(invalid("x-max-priority"))?;
            let n = u8::try_from(n)
                .map_err(|_| invalid("x-max-priority")(format!("{{max_value_exceeded,{n}}}")))?;
            s.max_priority = Some(n);
        }
        if let Some(v) = get("x-overflow") {
            s.overflow = Some(
                match value::string(&v).map_err(invalid("x-overflow"))?.as_str() {
                    "drop-head" => Overflow::DropHead,
                    "reject-publish" => Overflow::RejectPublish,
                    "reject-publish-dlx" => Overflow::RejectPublishDlx,
                    _ => return Err(invalid("x-overflow")("invalid_overflow".into())),
                },
            );
        }
        if let Some(v) = get("x-queue-mode") {
            let mode = value::string(&v).map_err(invalid("x-queue-mode"))?;
            if mode != "default" && mode != "lazy" {
                return Err(invalid("x-queue-mode")(format!(
                    "\"unsupported queue mode '{mode}'\""
                )));
            }
        }
        if let Some(v) = get("x-queue-version") {
            let version = value::integer(&v).map_err(invalid("x-queue-version"))?;
            if version != 1 && version != 2 {
                return Err(invalid("x-queue-version")(format!(
                    "\"unsupported queue version '{version}'\""
                )));
            }
        }
        if let Some(v) = get("x-single-active-consumer") {
            s.single_active_consumer =
                value::boolean(&v).map_err(invalid("x-single-active-consumer"))?;
        }
        if let Some(v) = get("x-queue-master-locator") {
            // RabbitMQ 3.10 crashes the declare (541) on other values.
            let locator = value::string(&v).map_err(invalid("x-queue-master-locator"))?;
            if !["client-local", "min-masters", "random"].contains(&locator.as_str()) {
                return Err(invalid("x-queue-master-locator")(format!(
                    "\"unsupported queue master locator '{locator}'\""
                )));
            }
        }
        // Not validated by RabbitMQ 3.10; read when it is a count.
        s.delivery_limit = get("x-delivery-limit")
            .and_then(|v| value::integer(&v).ok())
            .and_then(|n| u64::try_from(n).ok());
        Ok(QueueArgs {
            table: table.clone(),
            queue_type,
            settings: s,
        })
    }
}

impl QueueArgs {
    /// Arguments read back from the definitions log: they were valid when
    /// declared; should one no longer be, it stays in the table and
    /// otherwise counts as unset, so that a stored queue always comes back.
    pub fn restored(table: FieldTable) -> QueueArgs {
        QueueArgs::parse(&table).unwrap_or(QueueArgs {
            table,
            ..Default::default()
        })
    }
}

fn short(bytes: &[u8]) -> ShortString {
    // Longer names cannot name an exchange; cut, as nothing can match them.
    ShortString::try_from(&bytes[..bytes.len().min(255)]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_codec::LongString;

    fn table(pairs: &[(&'static str, FieldValue)]) -> FieldTable {
        pairs
            .iter()
            .fold(FieldTable::new(), |t, (k, v)| t.with(k, v.clone()))
    }

    fn reason(pairs: &[(&'static str, FieldValue)]) -> String {
        QueueArgs::parse(&table(pairs))
            .unwrap_err()
            .text("queue 'q' in vhost '/'")
    }

    fn text(s: &str) -> FieldValue {
        FieldValue::LongString(LongString::from(s))
    }

    #[test]
    fn valid_arguments_become_settings() {
        let args = QueueArgs::parse(&table(&[
            ("x-message-ttl", FieldValue::I32(5000)),
            ("x-expires", FieldValue::U16(1)),
            ("x-dead-letter-exchange", text("dlx")),
            ("x-dead-letter-routing-key", text("dead")),
            ("x-max-length", FieldValue::I64(0)),
            ("x-overflow", text("reject-publish")),
            ("x-max-priority", FieldValue::U8(10)),
            ("x-single-active-consumer", FieldValue::Bool(true)),
            ("x-queue-type", text("quorum")),
            ("x-delivery-limit", FieldValue::I32(3)),
            ("x-foo", text("kept, ignored")),
        ]))
        .unwrap();
        let s = &args.settings;
        assert_eq!(args.queue_type, QueueType::Quorum);
        assert_eq!(
            (s.message_ttl, s.expires, s.max_length),
            (Some(5000), Some(1), Some(0))
        );
        assert_eq!(s.dead_letter_exchange.as_ref().unwrap().as_bytes(), b"dlx");
        assert_eq!(
            s.dead_letter_routing_key.as_ref().unwrap().as_bytes(),
            b"dead"
        );
        assert_eq!(s.overflow, Some(Overflow::RejectPublish));
        assert_eq!(s.max_priority, Some(10));
        assert!(s.single_active_consumer);
        assert_eq!(s.delivery_limit, Some(3));
        assert!(args.table.get("x-foo").is_some());
    }

    #[test]
    fn invalid_arguments_get_rabbitmqs_reasons() {
        let q = "for queue 'q' in vhost '/'";
        for (pairs, expected) in [
            (vec![("x-message-ttl", FieldValue::I32(-1))], format!("invalid arg 'x-message-ttl' {q}: {{value_negative,-1}}")),
            (vec![("x-message-ttl", FieldValue::I64(315_360_000_001))], format!("invalid arg 'x-message-ttl' {q}: {{value_too_large,315360000001}}")),
            (vec![("x-message-ttl", text("5"))], format!("invalid arg 'x-message-ttl' {q}: \"expected integer, got longstr\"")),
            (vec![("x-expires", FieldValue::I32(0))], format!("invalid arg 'x-expires' {q}: {{value_zero,0}}")),
            (vec![("x-max-length", FieldValue::I32(-1))], format!("invalid arg 'x-max-length' {q}: {{value_negative,-1}}")),
            (vec![("x-overflow", text("foo"))], format!("invalid arg 'x-overflow' {q}: invalid_overflow")),
            (vec![("x-overflow", FieldValue::I32(1))], format!("invalid arg 'x-overflow' {q}: {{unacceptable_type,signedint}}")),
            (vec![("x-max-priority", FieldValue::I32(256))], format!("invalid arg 'x-max-priority' {q}: {{max_value_exceeded,256}}")),
            (vec![("x-single-active-consumer", FieldValue::I32(1))], format!("invalid arg 'x-single-active-consumer' {q}: {{unacceptable_type,signedint}}")),
            (vec![("x-dead-letter-routing-key", text("k"))], format!("invalid arg 'x-dead-letter-routing-key' {q}: routing_key_but_no_dlx_defined")),
            (vec![("x-queue-type", text("foo"))], format!("invalid arg 'x-queue-type' {q}: \"unsupported queue type 'foo'\"")),
            (vec![("x-queue-mode", text("foo"))], format!("invalid arg 'x-queue-mode' {q}: \"unsupported queue mode 'foo'\"")),
            (vec![("x-queue-version", FieldValue::I32(3))], format!("invalid arg 'x-queue-version' {q}: \"unsupported queue version '3'\"")),
            (vec![("x-dead-letter-exchange", FieldValue::I32(1))], "invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'".to_string()),
        ] {
            assert_eq!(reason(&pairs), expected);
        }
    }

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
