//! RabbitMQ 3.10's validator for each queue argument, in the order it runs
//! them, each reading a valid value into the queue's settings.

use warren_codec::{FieldTable, FieldValue, ShortString};

use super::settings::{Overflow, QueueSettings};
use super::value::{self, MAX_MILLIS};

/// Reads one argument into the settings, or says why it is refused.
pub(super) type Validator = fn(&FieldValue, &FieldTable, &mut QueueSettings) -> Result<(), String>;

/// RabbitMQ 3.10's validators in the order it runs them (`declare_args()`);
/// each runs only when the queue's kind takes the argument.
pub(super) const VALIDATORS: &[(&str, Validator)] = &[
    ("x-expires", |v, _, s| {
        s.expires = Some(value::bounded(v, 1, Some(MAX_MILLIS))?);
        Ok(())
    }),
    ("x-message-ttl", |v, _, s| {
        s.message_ttl = Some(value::bounded(v, 0, Some(MAX_MILLIS))?);
        Ok(())
    }),
    ("x-dead-letter-exchange", |v, _, s| {
        s.dead_letter_exchange = Some(short(value::string(v)?.as_bytes()));
        Ok(())
    }),
    ("x-dead-letter-routing-key", |v, table, s| {
        let key = value::string(v)?;
        if table.get("x-dead-letter-exchange").is_none() {
            return Err("routing_key_but_no_dlx_defined".into());
        }
        s.dead_letter_routing_key = Some(short(key.as_bytes()));
        Ok(())
    }),
    ("x-dead-letter-strategy", |v, _, _| {
        one_of(v, &["at-most-once", "at-least-once"], |_| {
            "invalid_dlx_strategy".into()
        })
    }),
    ("x-max-length", |v, _, s| {
        s.max_length = Some(value::bounded(v, 0, None)?);
        Ok(())
    }),
    ("x-max-length-bytes", |v, _, s| {
        s.max_length_bytes = Some(value::bounded(v, 0, None)?);
        Ok(())
    }),
    ("x-max-in-memory-length", |v, _, _| {
        value::bounded(v, 0, None).map(drop)
    }),
    ("x-max-in-memory-bytes", |v, _, _| {
        value::bounded(v, 0, None).map(drop)
    }),
    ("x-max-priority", |v, _, s| {
        let n = value::bounded(v, 0, None)?;
        let n = u8::try_from(n).map_err(|_| format!("{{max_value_exceeded,{n}}}"))?;
        s.max_priority = Some(n);
        Ok(())
    }),
    ("x-overflow", |v, _, s| {
        s.overflow = Some(match value::string(v)?.as_str() {
            "drop-head" => Overflow::DropHead,
            "reject-publish" => Overflow::RejectPublish,
            "reject-publish-dlx" => Overflow::RejectPublishDlx,
            _ => return Err("invalid_overflow".into()),
        });
        Ok(())
    }),
    ("x-queue-mode", |v, _, _| {
        one_of(v, &["default", "lazy"], |mode| {
            format!("\"unsupported queue mode '{mode}'\"")
        })
    }),
    ("x-queue-version", |v, _, _| match value::integer(v)? {
        1 | 2 => Ok(()),
        version => Err(format!("\"unsupported queue version '{version}'\"")),
    }),
    ("x-single-active-consumer", |v, _, s| {
        s.single_active_consumer = value::boolean(v)?;
        Ok(())
    }),
    ("x-quorum-initial-group-size", |v, _, _| {
        value::bounded(v, 1, None).map(drop)
    }),
    // Not validated by RabbitMQ 3.10; read when it is a count.
    ("x-delivery-limit", |v, _, s| {
        s.delivery_limit = value::integer(v).ok().and_then(|n| u64::try_from(n).ok());
        Ok(())
    }),
    ("x-queue-leader-locator", |v, _, _| {
        one_of(
            v,
            &["client-local", "balanced", "random", "least-leaders"],
            |_| "invalid_queue_locator_arg".into(),
        )
    }),
    // RabbitMQ 3.10 crashes the declare (541) on other values; Warren
    // refuses them like any other invalid argument.
    ("x-queue-master-locator", |v, _, _| {
        one_of(v, &["client-local", "min-masters", "random"], |locator| {
            format!("\"unsupported queue master locator '{locator}'\"")
        })
    }),
];

/// A long string that must be one of `allowed`.
fn one_of(
    value: &FieldValue,
    allowed: &[&str],
    reason: impl FnOnce(&str) -> String,
) -> Result<(), String> {
    let text = value::string(value)?;
    match allowed.contains(&text.as_str()) {
        true => Ok(()),
        false => Err(reason(&text)),
    }
}

fn short(bytes: &[u8]) -> ShortString {
    // Longer names cannot name an exchange; cut, as nothing can match them.
    ShortString::try_from(&bytes[..bytes.len().min(255)]).unwrap_or_default()
}
