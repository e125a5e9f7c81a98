//! proptest strategies for the field types; the per-method ones are generated.

use bytes::Bytes;
use proptest::prelude::*;

use crate::table::{FieldArray, FieldTable, FieldValue};
use crate::types::{LongString, ShortString};

pub(crate) fn short_string() -> impl Strategy<Value = ShortString> {
    proptest::collection::vec(any::<u8>(), 0..=255)
        .prop_map(|v| ShortString::try_from(Bytes::from(v)).unwrap())
}

pub(crate) fn long_string() -> impl Strategy<Value = LongString> {
    proptest::collection::vec(any::<u8>(), 0..600).prop_map(LongString::from)
}

pub(crate) fn field_value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        any::<u32>().prop_map(|b| FieldValue::F32(f32::from_bits(b))),
        any::<u64>().prop_map(|b| FieldValue::F64(f64::from_bits(b))),
        (any::<u8>(), any::<u32>()).prop_map(|(scale, value)| FieldValue::Decimal { scale, value }),
        long_string().prop_map(FieldValue::LongString),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
        long_string().prop_map(FieldValue::Bytes),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|v| FieldValue::Array(v.into_iter().collect::<FieldArray>())),
            proptest::collection::vec((short_string(), inner), 0..6)
                .prop_map(|v| FieldValue::Table(v.into_iter().collect::<FieldTable>())),
        ]
    })
}

pub(crate) fn field_entries() -> impl Strategy<Value = Vec<(ShortString, FieldValue)>> {
    proptest::collection::vec((short_string(), field_value()), 0..8)
}

pub(crate) fn field_table() -> impl Strategy<Value = FieldTable> {
    field_entries().prop_map(|entries| entries.into_iter().collect())
}
