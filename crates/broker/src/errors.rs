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

/// How RabbitMQ shows a value in an "inequivalent arg" text.
pub fn show(value: Option<&FieldValue>) -> String {
    let Some(value) = value else {
        return "none".into();
    };
    let (text, kind) = match value {
        FieldValue::Bool(b) => (b.to_string(), "bool"),
        FieldValue::I8(v) => (v.to_string(), "byte"),
        FieldValue::U8(v) => (v.to_string(), "unsignedbyte"),
        FieldValue::I16(v) => (v.to_string(), "short"),
        FieldValue::U16(v) => (v.to_string(), "unsignedshort"),
        FieldValue::I32(v) => (v.to_string(), "signedint"),
        FieldValue::U32(v) => (v.to_string(), "unsignedint"),
        FieldValue::I64(v) => (v.to_string(), "long"),
        FieldValue::F32(v) => (v.to_string(), "float"),
        FieldValue::F64(v) => (v.to_string(), "double"),
        FieldValue::Decimal { scale, value } => (format!("{value}e-{scale}"), "decimal"),
        FieldValue::LongString(s) => (s.to_string(), "longstr"),
        FieldValue::Bytes(s) => (s.to_string(), "binary"),
        FieldValue::Timestamp(t) => (t.to_string(), "timestamp"),
        FieldValue::Array(_) => ("[...]".into(), "array"),
        FieldValue::Table(_) => ("[...]".into(), "table"),
        FieldValue::Void => ("".into(), "void"),
    };
    format!("the value '{text}' of type '{kind}'")
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
