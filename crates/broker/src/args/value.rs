//! Reading one argument's value the way RabbitMQ's validators do, with the
//! reasons they print (Erlang terms, as Erlang prints them).

use warren_codec::FieldValue;

/// The longest TTL or expiry RabbitMQ takes: ten years in milliseconds.
pub const MAX_MILLIS: u64 = 315_360_000_000;

/// The field type's name as RabbitMQ prints it.
pub fn type_name(value: &FieldValue) -> &'static str {
    match value {
        FieldValue::Bool(_) => "bool",
        FieldValue::I8(_) => "byte",
        FieldValue::U8(_) => "unsignedbyte",
        FieldValue::I16(_) => "short",
        FieldValue::U16(_) => "unsignedshort",
        FieldValue::I32(_) => "signedint",
        FieldValue::U32(_) => "unsignedint",
        FieldValue::I64(_) => "long",
        FieldValue::F32(_) => "float",
        FieldValue::F64(_) => "double",
        FieldValue::Decimal { .. } => "decimal",
        FieldValue::LongString(_) => "longstr",
        FieldValue::Bytes(_) => "binary",
        FieldValue::Timestamp(_) => "timestamp",
        FieldValue::Array(_) => "array",
        FieldValue::Table(_) => "table",
        FieldValue::Void => "void",
    }
}

/// An integer of any of the integer field types.
pub fn integer(value: &FieldValue) -> Result<i64, String> {
    Ok(match value {
        FieldValue::I8(v) => (*v).into(),
        FieldValue::U8(v) => (*v).into(),
        FieldValue::I16(v) => (*v).into(),
        FieldValue::U16(v) => (*v).into(),
        FieldValue::I32(v) => (*v).into(),
        FieldValue::U32(v) => (*v).into(),
        FieldValue::I64(v) => *v,
        other => return Err(format!("\"expected integer, got {}\"", type_name(other))),
    })
}

/// An integer in `min..=max`, with RabbitMQ's reasons for the rest.
pub fn bounded(value: &FieldValue, min: i64, max: Option<u64>) -> Result<u64, String> {
    let v = integer(value)?;
    if v < 0 {
        return Err(format!("{{value_negative,{v}}}"));
    }
    if v == 0 && min > 0 {
        return Err("{value_zero,0}".into());
    }
    let v = v as u64;
    match max {
        Some(max) if v > max => Err(format!("{{value_too_large,{v}}}")),
        _ => Ok(v),
    }
}

/// A long string (RabbitMQ accepts nothing else for names and modes).
pub fn string(value: &FieldValue) -> Result<String, String> {
    match value {
        FieldValue::LongString(s) => Ok(s.to_string()),
        other => Err(unacceptable(other)),
    }
}

pub fn boolean(value: &FieldValue) -> Result<bool, String> {
    match value {
        FieldValue::Bool(b) => Ok(*b),
        other => Err(unacceptable(other)),
    }
}

pub fn unacceptable(value: &FieldValue) -> String {
    format!("{{unacceptable_type,{}}}", type_name(value))
}
