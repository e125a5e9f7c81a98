//! RabbitMQ's error texts, so that clients (and their users) see the same words.

use warren_codec::{FieldValue, ReplyCode, ShortString};
use warren_protocol::AmqpError;

/// `queue 'q' in vhost '/'`
pub fn resource(kind: &str, name: &ShortString, vhost: &str) -> String {
    format!("{kind} '{name}' in vhost '{vhost}'")
}

pub fn no_queue(name: &ShortString, vhost: &str) -> AmqpError {
    AmqpError::new(
        ReplyCode::NotFound,
        format!("no queue '{name}' in vhost '{vhost}'"),
    )
}

pub fn no_exchange(name: &ShortString, vhost: &str) -> AmqpError {
    AmqpError::new(
        ReplyCode::NotFound,
        format!("no exchange '{name}' in vhost '{vhost}'"),
    )
}

pub fn default_exchange() -> AmqpError {
    AmqpError::new(
        ReplyCode::AccessRefused,
        "operation not permitted on the default exchange",
    )
}

pub fn reserved_name(kind: &str, name: &ShortString) -> AmqpError {
    AmqpError::new(
        ReplyCode::AccessRefused,
        format!("{kind} name '{name}' contains reserved prefix 'amq.*'"),
    )
}

pub fn locked(name: &ShortString, vhost: &str) -> AmqpError {
    AmqpError::new(
        ReplyCode::ResourceLocked,
        format!(
            "cannot obtain exclusive access to locked {}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
            resource("queue", name, vhost)
        ),
    )
}

pub fn in_exclusive_use(name: &ShortString, vhost: &str) -> AmqpError {
    AmqpError::new(
        ReplyCode::AccessRefused,
        format!("{} in exclusive use", resource("queue", name, vhost)),
    )
}

/// How RabbitMQ shows a value in an "inequivalent arg" text when the
/// other side has none: with its type.
pub fn show(value: Option<&FieldValue>) -> String {
    match value {
        None => "none".into(),
        Some(value) => format!(
            "the value '{}' of type '{}'",
            printed(value),
            crate::args::type_name(value)
        ),
    }
}

/// How RabbitMQ shows a value when both sides have one: quoted only.
pub fn quote(value: &FieldValue) -> String {
    format!("'{}'", printed(value))
}

fn printed(value: &FieldValue) -> String {
    match value {
        FieldValue::Bool(b) => b.to_string(),
        FieldValue::I8(v) => v.to_string(),
        FieldValue::U8(v) => v.to_string(),
        FieldValue::I16(v) => v.to_string(),
        FieldValue::U16(v) => v.to_string(),
        FieldValue::I32(v) => v.to_string(),
        FieldValue::U32(v) => v.to_string(),
        FieldValue::I64(v) => v.to_string(),
        FieldValue::F32(v) => v.to_string(),
        FieldValue::F64(v) => v.to_string(),
        FieldValue::Decimal { scale, value } => format!("{{{scale},{value}}}"),
        FieldValue::LongString(s) => s.to_string(),
        FieldValue::Bytes(s) => s.to_string(),
        FieldValue::Timestamp(t) => t.to_string(),
        FieldValue::Array(_) | FieldValue::Table(_) => "[...]".into(),
        FieldValue::Void => "undefined".into(),
    }
}

pub fn inequivalent(arg: &str, what: &str, received: String, current: String) -> AmqpError {
    AmqpError::new(
        ReplyCode::PreconditionFailed,
        format!(
            "inequivalent arg '{arg}' for {what}: received {received} but current is {current}"
        ),
    )
}

pub fn unknown_delivery_tag(tag: u64) -> AmqpError {
    AmqpError::new(
        ReplyCode::PreconditionFailed,
        format!("unknown delivery tag {tag}"),
    )
}
