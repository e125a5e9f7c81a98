//! RabbitMQ's redeclare check: declaring what exists must ask for the same
//! thing, or the channel is closed with 406 `inequivalent arg`.

use warren_codec::{FieldTable, FieldValue};
use warren_protocol::AmqpError;

use crate::errors;

fn bool_text(b: bool) -> String {
    format!("'{b}'")
}

/// The flags, then the arguments every key of which must match (an
/// argument absent on both sides counts as equal).
fn flags(what: &str, pairs: &[(&str, String, String)]) -> Result<(), AmqpError> {
    for (arg, received, current) in pairs {
        if received != current {
            return Err(errors::inequivalent(
                arg,
                what,
                received.clone(),
                current.clone(),
            ));
        }
    }
    Ok(())
}

/// An exchange as a redeclare compares it.
pub struct ExchangeShape<'a> {
    pub kind: &'a str,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: &'a FieldTable,
}

/// A queue as a redeclare compares it.
pub struct QueueShape<'a> {
    pub durable: bool,
    pub auto_delete: bool,
    pub arguments: &'a FieldTable,
}

/// What an exchange redeclare compares: type, the three flags, and among
/// the arguments only `alternate-exchange`.
pub fn check_exchange(
    what: &str,
    received: ExchangeShape,
    current: ExchangeShape,
) -> Result<(), AmqpError> {
    let (r, c) = (&received, &current);
    flags(
        what,
        &[
            ("type", format!("'{}'", r.kind), format!("'{}'", c.kind)),
            ("durable", bool_text(r.durable), bool_text(c.durable)),
            (
                "auto_delete",
                bool_text(r.auto_delete),
                bool_text(c.auto_delete),
            ),
            ("internal", bool_text(r.internal), bool_text(c.internal)),
        ],
    )?;
    compare(what, r.arguments, c.arguments, &["alternate-exchange"])
}

/// What a queue redeclare compares: durable and auto_delete, then every
/// `x-` argument on either side; `x-queue-type` classic equals absent.
pub fn check_queue(what: &str, received: QueueShape, current: QueueShape) -> Result<(), AmqpError> {
    flags(
        what,
        &[
            (
                "durable",
                bool_text(received.durable),
                bool_text(current.durable),
            ),
            (
                "auto_delete",
                bool_text(received.auto_delete),
                bool_text(current.auto_delete),
            ),
        ],
    )?;
    let (received, current) = (received.arguments, current.arguments);
    let mut keys: Vec<String> = received
        .iter()
        .chain(current.iter())
        .filter_map(|(k, _)| {
            k.as_str()
                .filter(|k| k.starts_with("x-"))
                .map(str::to_string)
        })
        .collect();
    keys.sort();
    keys.dedup();
    for key in &keys {
        let normalise = |v: Option<FieldValue>| match v {
            Some(FieldValue::LongString(s)) if key == "x-queue-type" && s == "classic" => None,
            other => other,
        };
        same(
            what,
            key,
            normalise(received.get(key)),
            normalise(current.get(key)),
        )?;
    }
    Ok(())
}

/// The listed keys must be equal.
fn compare(
    what: &str,
    received: &FieldTable,
    current: &FieldTable,
    keys: &[&str],
) -> Result<(), AmqpError> {
    for key in keys {
        same(what, key, received.get(key), current.get(key))?;
    }
    Ok(())
}

fn same(
    what: &str,
    key: &str,
    received: Option<FieldValue>,
    current: Option<FieldValue>,
) -> Result<(), AmqpError> {
    if received == current {
        return Ok(());
    }
    Err(errors::inequivalent(
        key,
        what,
        errors::show(received.as_ref()),
        errors::show(current.as_ref()),
    ))
}
