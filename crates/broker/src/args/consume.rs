//! The arguments of basic.consume, checked as RabbitMQ 3.10 checks them
//! (`consume_args()`): `x-priority` any integer (negative too), and
//! `x-cancel-on-ha-failover` a bool; others are ignored.

use warren_codec::FieldTable;

use super::queue::ArgError;
use super::value;

/// The consumer's `x-priority` (0 when absent).
pub fn consumer_priority(arguments: &FieldTable) -> Result<i64, ArgError> {
    let invalid = |key| move |reason| ArgError::Invalid { key, reason };
    if let Some(v) = arguments.get("x-cancel-on-ha-failover") {
        value::boolean(&v).map_err(invalid("x-cancel-on-ha-failover"))?;
    }
    match arguments.get("x-priority") {
        None => Ok(0),
        Some(v) => value::integer(&v).map_err(invalid("x-priority")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_codec::{FieldValue, LongString};

    #[test]
    fn priorities_are_any_integer() {
        let with = |v| FieldTable::new().with("x-priority", v);
        assert_eq!(consumer_priority(&FieldTable::new()), Ok(0));
        assert_eq!(consumer_priority(&with(FieldValue::I8(-3))), Ok(-3));
        assert_eq!(
            consumer_priority(&with(FieldValue::I64(1 << 40))),
            Ok(1 << 40)
        );
        let text = FieldValue::LongString(LongString::from("high"));
        assert_eq!(
            consumer_priority(&with(text.clone())).unwrap_err().text("queue 'q' in vhost '/'"),
            "invalid arg 'x-priority' for queue 'q' in vhost '/': \"expected integer, got longstr\""
        );
        let failover = FieldTable::new().with("x-cancel-on-ha-failover", text);
        assert_eq!(
            consumer_priority(&failover).unwrap_err().text("queue 'q' in vhost '/'"),
            "invalid arg 'x-cancel-on-ha-failover' for queue 'q' in vhost '/': {unacceptable_type,longstr}"
        );
    }
}
