//! A queue's arguments: read and validated once, at declare, into typed
//! settings that the queue acts on (queues never read field tables).

use warren_codec::{FieldTable, FieldValue};

use super::queue_type::QueueType;
use super::settings::{Overflow, QueueSettings};
use super::validators::VALIDATORS;
use super::value;

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
    /// `invalid arg '<key>' for <queue> of queue type <module>`: an
    /// argument only other kinds take.
    Foreign {
        key: &'static str,
        queue_type: QueueType,
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
            ArgError::Foreign { key, queue_type } => {
                format!(
                    "invalid arg '{key}' for {what} of queue type {}",
                    queue_type.module()
                )
            }
        }
    }
}

fn invalid(key: &'static str) -> impl FnOnce(String) -> ArgError {
    move |reason| ArgError::Invalid { key, reason }
}

impl QueueArgs {
    /// Reads a new queue's arguments, in the order RabbitMQ checks them:
    /// the dead-letter exchange's type, the queue's kind, the arguments of
    /// that kind, then those only other kinds take (refused). Arguments no
    /// kind takes are kept in the table and otherwise ignored.
    pub fn parse(table: &FieldTable) -> Result<QueueArgs, ArgError> {
        if let Some(v) = table.get("x-dead-letter-exchange") {
            if !matches!(v, FieldValue::LongString(_)) {
                return Err(ArgError::Type {
                    key: "x-dead-letter-exchange",
                    kind: value::type_name(&v),
                });
            }
        }
        let queue_type = declared_type(table)?;
        if queue_type == QueueType::Stream {
            // Until streams exist: refused as RabbitMQ refuses a kind it lacks.
            return Err(invalid("x-queue-type")(
                "\"unsupported queue type 'stream'\"".into(),
            ));
        }
        let mut settings = QueueSettings::default();
        for (key, validate) in VALIDATORS {
            if !queue_type.takes(key) {
                continue;
            }
            if let Some(v) = table.get(key) {
                validate(&v, table, &mut settings).map_err(invalid(key))?;
            }
        }
        if let Some(key) = table
            .iter()
            .find_map(|(k, _)| k.as_str().and_then(|k| queue_type.foreign(k)))
        {
            return Err(ArgError::Foreign { key, queue_type });
        }
        if queue_type == QueueType::Quorum && settings.overflow == Some(Overflow::RejectPublishDlx)
        {
            // As RabbitMQ 3.10 does (with a warning in its log).
            tracing::warn!("x-overflow reject-publish-dlx is drop-head on a quorum queue");
            settings.overflow = Some(Overflow::DropHead);
        }
        Ok(QueueArgs {
            table: table.clone(),
            queue_type,
            settings,
        })
    }
}

/// The kind a declaration asks for (`x-queue-type`, classic when absent).
pub fn declared_type(table: &FieldTable) -> Result<QueueType, ArgError> {
    let Some(v) = table.get("x-queue-type") else {
        return Ok(QueueType::Classic);
    };
    match value::string(&v).map_err(invalid("x-queue-type"))?.as_str() {
        "classic" => Ok(QueueType::Classic),
        "quorum" => Ok(QueueType::Quorum),
        "stream" => Ok(QueueType::Stream),
        other => Err(invalid("x-queue-type")(format!(
            "\"unsupported queue type '{other}'\""
        ))),
    }
}

impl QueueArgs {
    /// Arguments read back from the definitions log: they were valid when
    /// declared; should one no longer be, it stays in the table and
    /// otherwise counts as unset, so that a stored queue always comes back.
    pub fn restored(table: FieldTable) -> QueueArgs {
        if let Ok(args) = QueueArgs::parse(&table) {
            return args;
        }
        // Declared under older rules: read what still reads, key by key.
        let queue_type = match declared_type(&table) {
            Ok(QueueType::Quorum) => QueueType::Quorum,
            _ => QueueType::Classic,
        };
        let mut settings = QueueSettings::default();
        for (key, validate) in VALIDATORS {
            if let (true, Some(v)) = (queue_type.takes(key), table.get(key)) {
                let mut one = settings.clone();
                if validate(&v, &table, &mut one).is_ok() {
                    settings = one;
                }
            }
        }
        QueueArgs {
            table,
            queue_type,
            settings,
        }
    }
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
            ("x-queue-type", text("classic")),
            ("x-foo", text("kept, ignored")),
        ]))
        .unwrap();
        let s = &args.settings;
        assert_eq!(args.queue_type, QueueType::Classic);
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
        assert!(args.table.get("x-foo").is_some());
    }

    #[test]
    fn arguments_stored_under_older_rules_come_back_as_far_as_they_read() {
        let args = QueueArgs::restored(table(&[
            ("x-message-ttl", FieldValue::I32(500)),
            ("x-delivery-limit", FieldValue::I32(5)),
            ("x-max-length", FieldValue::I32(-1)),
        ]));
        assert_eq!(args.queue_type, QueueType::Classic);
        assert_eq!(args.settings.message_ttl, Some(500));
        assert_eq!(args.settings.max_length, None);
        assert_eq!(args.table.iter().count(), 3);
        let stream = QueueArgs::restored(table(&[("x-queue-type", text("stream"))]));
        assert_eq!(stream.queue_type, QueueType::Classic);
    }

    #[test]
    fn quorum_queues_take_their_own_arguments() {
        let args = QueueArgs::parse(&table(&[
            ("x-queue-type", text("quorum")),
            ("x-delivery-limit", FieldValue::I32(3)),
            ("x-dead-letter-strategy", text("at-least-once")),
            ("x-overflow", text("reject-publish-dlx")),
            ("x-quorum-initial-group-size", FieldValue::I32(3)),
        ]))
        .unwrap();
        assert_eq!(args.queue_type, QueueType::Quorum);
        assert_eq!(args.settings.delivery_limit, Some(3));
        assert_eq!(args.settings.overflow, Some(Overflow::DropHead));
        let q = "for queue 'q' in vhost '/'";
        for (pairs, expected) in [
            (
                vec![
                    ("x-queue-type", text("quorum")),
                    ("x-max-priority", FieldValue::I32(300)),
                ],
                format!("invalid arg 'x-max-priority' {q} of queue type rabbit_quorum_queue"),
            ),
            (
                vec![
                    ("x-queue-type", text("quorum")),
                    ("x-dead-letter-strategy", text("x")),
                ],
                format!("invalid arg 'x-dead-letter-strategy' {q}: invalid_dlx_strategy"),
            ),
            (
                vec![("x-delivery-limit", FieldValue::I32(5))],
                format!("invalid arg 'x-delivery-limit' {q} of queue type rabbit_classic_queue"),
            ),
            (
                vec![("x-max-age", text("1D"))],
                format!("invalid arg 'x-max-age' {q} of queue type rabbit_classic_queue"),
            ),
            (
                vec![("x-queue-type", text("stream"))],
                format!("invalid arg 'x-queue-type' {q}: \"unsupported queue type 'stream'\""),
            ),
        ] {
            assert_eq!(reason(&pairs), expected);
        }
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
}
