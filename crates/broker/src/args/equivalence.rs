//! RabbitMQ's redeclare check: declaring what exists must ask for the same
//! thing, or the channel is closed with 406 `inequivalent arg`.

use warren_codec::{FieldTable, FieldValue};
use warren_protocol::AmqpError;

use super::queue_type::QueueType;
use super::value;
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

/// What a queue redeclare compares: durable and auto_delete, then the
/// arguments the queue's kind takes, in that kind's order; every other
/// argument is ignored. An absent `x-queue-type` equals `classic`.
pub fn check_queue(
    what: &str,
    queue_type: QueueType,
    received: QueueShape,
    current: QueueShape,
) -> Result<(), AmqpError> {
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
    for key in queue_type.arguments() {
        let (r, c) = (received.arguments.get(key), current.arguments.get(key));
        let classic =
            |v: &Option<FieldValue>| matches!(v, Some(FieldValue::LongString(s)) if s == "classic");
        if *key == "x-queue-type" && (r.is_none() && classic(&c) || c.is_none() && classic(&r)) {
            continue;
        }
        same(what, key, r, c)?;
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

/// RabbitMQ's rule for one key: both absent, or the same type class
/// (every integer type and decimal; float and double) and the same value.
fn same(
    what: &str,
    key: &str,
    received: Option<FieldValue>,
    current: Option<FieldValue>,
) -> Result<(), AmqpError> {
    let (received_text, current_text) = match (&received, &current) {
        (None, None) => return Ok(()),
        (Some(r), Some(c)) => {
            if equivalent(r, c) {
                return Ok(());
            }
            (errors::quote(r), errors::quote(c))
        }
        _ => (
            errors::show(received.as_ref()),
            errors::show(current.as_ref()),
        ),
    };
    Err(errors::inequivalent(key, what, received_text, current_text))
}

fn equivalent(a: &FieldValue, b: &FieldValue) -> bool {
    match (value::integer(a), value::integer(b)) {
        (Ok(a), Ok(b)) => return a == b,
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => return false,
        _ => {}
    }
    match (a, b) {
        (FieldValue::F32(x), FieldValue::F64(y)) | (FieldValue::F64(y), FieldValue::F32(x)) => {
            f64::from(*x) == *y
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_codec::LongString;

    const WHAT: &str = "queue 'q' in vhost '/'";

    fn table(pairs: &[(&'static str, FieldValue)]) -> FieldTable {
        pairs
            .iter()
            .fold(FieldTable::new(), |t, (k, v)| t.with(k, v.clone()))
    }

    fn text(s: &str) -> FieldValue {
        FieldValue::LongString(LongString::from(s))
    }

    /// The reply text of redeclaring `received` over `current`, if refused.
    fn redeclare(
        queue_type: QueueType,
        received: &[(&'static str, FieldValue)],
        current: &[(&'static str, FieldValue)],
    ) -> Option<String> {
        let (r, c) = (table(received), table(current));
        let shape = |arguments| QueueShape {
            durable: true,
            auto_delete: false,
            arguments,
        };
        check_queue(WHAT, queue_type, shape(&r), shape(&c))
            .err()
            .map(|e| e.text)
    }

    #[test]
    fn redeclares_compare_by_rabbitmqs_rules() {
        use FieldValue::*;
        let classic = QueueType::Classic;
        let ttl = |v| vec![("x-message-ttl", v)];
        let refused = |r: &str, c: &str| {
            Some(format!(
                "inequivalent arg 'x-message-ttl' for {WHAT}: received {r} but current is {c}"
            ))
        };
        // E1: integer types are one class.
        assert_eq!(redeclare(classic, &ttl(I64(1000)), &ttl(I32(1000))), None);
        assert_eq!(
            redeclare(classic, &ttl(U16(1000)), &ttl(U8(232))),
            refused("'1000'", "'232'")
        );
        let decimal = || {
            ttl(Decimal {
                scale: 0,
                value: 1000,
            })
        };
        assert_eq!(redeclare(classic, &decimal(), &decimal()), None);
        // E2, E3, and the other way round.
        assert_eq!(
            redeclare(classic, &ttl(I32(2000)), &ttl(I32(1000))),
            refused("'2000'", "'1000'")
        );
        assert_eq!(
            redeclare(classic, &[], &ttl(I32(1000))),
            refused("none", "the value '1000' of type 'signedint'")
        );
        assert_eq!(
            redeclare(classic, &ttl(I32(-5)), &[]),
            refused("the value '-5' of type 'signedint'", "none")
        );
        // E8: same printed value, another type class.
        assert_eq!(
            redeclare(classic, &ttl(text("1000")), &ttl(I32(1000))),
            refused("'1000'", "'1000'")
        );
        // E4, E5: arguments outside the kind's list are not compared.
        assert_eq!(
            redeclare(classic, &[("x-foo", I32(2))], &[("x-foo", I32(1))]),
            None
        );
        assert_eq!(
            redeclare(classic, &[("x-delivery-limit", I32(5))], &[]),
            None
        );
        // E6: classic equals absent, nothing else does.
        assert_eq!(
            redeclare(classic, &[("x-queue-type", text("classic"))], &[]),
            None
        );
        assert_eq!(
            redeclare(classic, &[], &[("x-queue-type", text("classic"))]),
            None
        );
        assert_eq!(
            redeclare(classic, &[("x-queue-type", text("quorum"))], &[]),
            Some(format!("inequivalent arg 'x-queue-type' for {WHAT}: received the value 'quorum' of type 'longstr' but current is none"))
        );
        let quorum = [("x-queue-type", text("quorum"))];
        assert_eq!(
            redeclare(QueueType::Quorum, &[], &quorum),
            Some(format!("inequivalent arg 'x-queue-type' for {WHAT}: received none but current is the value 'quorum' of type 'longstr'"))
        );
        assert_eq!(
            redeclare(QueueType::Quorum, &[("x-queue-type", text("classic"))], &quorum),
            Some(format!("inequivalent arg 'x-queue-type' for {WHAT}: received 'classic' but current is 'quorum'"))
        );
        // Floats are one class.
        assert_eq!(
            redeclare(
                classic,
                &[("x-expires", F32(1.5))],
                &[("x-expires", F64(1.5))]
            ),
            None
        );
    }
}
