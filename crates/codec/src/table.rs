//! Field tables and arrays with RabbitMQ's type codes.
//!
//! A table keeps its encoded octets and is read lazily: decoding only checks
//! that the octets are well-formed (no allocation), forwarding re-emits them
//! byte for byte, and lookups walk the entries.

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

use crate::raw::{long_raw, short_raw};
use crate::types::{LongString, ShortString};

/// Tables nested deeper than this are refused, so that validation's
/// recursion is bounded whatever the peer sends.
pub const MAX_NESTING: usize = 128;

/// One value of a field table or array, by RabbitMQ's type codes.
#[derive(Debug, Clone)]
pub enum FieldValue {
    /// `t`
    Bool(bool),
    /// `b`
    I8(i8),
    /// `B`
    U8(u8),
    /// `s` (RabbitMQ's code; the 0-9-1 spec's `s` is a short string, which nobody sends)
    I16(i16),
    /// `u`
    U16(u16),
    /// `I`
    I32(i32),
    /// `i`
    U32(u32),
    /// `l`
    I64(i64),
    /// `f`
    F32(f32),
    /// `d`
    F64(f64),
    /// `D`: value × 10^-scale
    Decimal { scale: u8, value: u32 },
    /// `S`
    LongString(LongString),
    /// `A`
    Array(FieldArray),
    /// `T`: seconds since the epoch
    Timestamp(u64),
    /// `F`
    Table(FieldTable),
    /// `V`
    Void,
    /// `x`
    Bytes(LongString),
}

impl PartialEq for FieldValue {
    /// Floats compare by bits, so that a NaN equals itself after a round trip.
    fn eq(&self, other: &Self) -> bool {
        use FieldValue::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a == b,
            (I8(a), I8(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (I16(a), I16(b)) => a == b,
            (U16(a), U16(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (U32(a), U32(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (F32(a), F32(b)) => a.to_bits() == b.to_bits(),
            (F64(a), F64(b)) => a.to_bits() == b.to_bits(),
            (
                Decimal {
                    scale: s1,
                    value: v1,
                },
                Decimal {
                    scale: s2,
                    value: v2,
                },
            ) => s1 == s2 && v1 == v2,
            (LongString(a), LongString(b)) | (Bytes(a), Bytes(b)) => a == b,
            (Array(a), Array(b)) => a == b,
            (Timestamp(a), Timestamp(b)) => a == b,
            (Table(a), Table(b)) => a == b,
            (Void, Void) => true,
            _ => false,
        }
    }
}

impl FieldValue {
    pub fn encode(&self, buf: &mut BytesMut) {
        use FieldValue::*;
        match self {
            Bool(v) => buf.put_slice(&[b't', *v as u8]),
            I8(v) => buf.put_slice(&[b'b', *v as u8]),
            U8(v) => buf.put_slice(&[b'B', *v]),
            I16(v) => {
                buf.put_u8(b's');
                buf.put_i16(*v);
            }
            U16(v) => {
                buf.put_u8(b'u');
                buf.put_u16(*v);
            }
            I32(v) => {
                buf.put_u8(b'I');
                buf.put_i32(*v);
            }
            U32(v) => {
                buf.put_u8(b'i');
                buf.put_u32(*v);
            }
            I64(v) => {
                buf.put_u8(b'l');
                buf.put_i64(*v);
            }
            F32(v) => {
                buf.put_u8(b'f');
                buf.put_u32(v.to_bits());
            }
            F64(v) => {
                buf.put_u8(b'd');
                buf.put_u64(v.to_bits());
            }
            Decimal { scale, value } => {
                buf.put_u8(b'D');
                buf.put_u8(*scale);
                buf.put_u32(*value);
            }
            LongString(s) => put_long(buf, b'S', s.as_bytes()),
            Array(a) => put_long(buf, b'A', &a.raw),
            Timestamp(v) => {
                buf.put_u8(b'T');
                buf.put_u64(*v);
            }
            Table(t) => put_long(buf, b'F', &t.raw),
            Void => buf.put_u8(b'V'),
            Bytes(s) => put_long(buf, b'x', s.as_bytes()),
        }
    }

    /// Reads one value whose octets were validated; `None` only on octets
    /// that `skip_value` would have refused.
    fn parse<'a>(base: &Bytes, i: &'a [u8]) -> Option<(FieldValue, &'a [u8])> {
        use FieldValue::*;
        let (&tag, i) = i.split_first()?;
        let fixed = |n: usize| i.get(..n).map(|v| (v, &i[n..]));
        let (value, rest) = match tag {
            b't' => fixed(1).map(|(v, r)| (Bool(v[0] != 0), r))?,
            b'b' => fixed(1).map(|(v, r)| (I8(v[0] as i8), r))?,
            b'B' => fixed(1).map(|(v, r)| (U8(v[0]), r))?,
            b's' => fixed(2).map(|(v, r)| (I16(i16::from_be_bytes([v[0], v[1]])), r))?,
            b'u' => fixed(2).map(|(v, r)| (U16(u16::from_be_bytes([v[0], v[1]])), r))?,
            b'I' => fixed(4).map(|(v, r)| (I32(i32::from_be_bytes(array(v))), r))?,
            b'i' => fixed(4).map(|(v, r)| (U32(u32::from_be_bytes(array(v))), r))?,
            b'f' => fixed(4).map(|(v, r)| (F32(f32::from_be_bytes(array(v))), r))?,
            // 'L' too, as RabbitMQ reads it: a signed 64-bit value (the
            // 0-9-1 errata; rabbitmq-c writes unsigned 64-bit values so).
            b'l' | b'L' => fixed(8).map(|(v, r)| (I64(i64::from_be_bytes(array(v))), r))?,
            b'd' => fixed(8).map(|(v, r)| (F64(f64::from_be_bytes(array(v))), r))?,
            b'T' => fixed(8).map(|(v, r)| (Timestamp(u64::from_be_bytes(array(v))), r))?,
            b'D' => fixed(5).map(|(v, r)| {
                let value = u32::from_be_bytes([v[1], v[2], v[3], v[4]]);
                (Decimal { scale: v[0], value }, r)
            })?,
            b'V' => (Void, i),
            b'S' | b'x' | b'A' | b'F' => {
                let (rest, raw) = long_raw(i).ok()?;
                let raw = base.slice_ref(raw);
                let value = match tag {
                    b'S' => LongString(raw.into()),
                    b'x' => Bytes(raw.into()),
                    b'A' => Array(FieldArray { raw }),
                    _ => Table(FieldTable { raw }),
                };
                (value, rest)
            }
            _ => return None,
        };
        Some((value, rest))
    }
}

fn array<const N: usize>(v: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&v[..N]);
    out
}

fn put_long(buf: &mut BytesMut, tag: u8, data: &[u8]) {
    buf.put_u8(tag);
    buf.put_u32(data.len() as u32);
    buf.put_slice(data);
}

/// The octets after one well-formed value, or `None`.
fn skip_value(i: &[u8], depth: usize) -> Option<&[u8]> {
    let (&tag, i) = i.split_first()?;
    match tag {
        b't' | b'b' | b'B' => i.get(1..),
        b's' | b'u' => i.get(2..),
        b'I' | b'i' | b'f' => i.get(4..),
        b'l' | b'L' | b'd' | b'T' => i.get(8..),
        b'D' => i.get(5..),
        b'V' => Some(i),
        b'S' | b'x' => long_raw(i).ok().map(|(rest, _)| rest),
        b'F' | b'A' if depth < MAX_NESTING => {
            let (rest, raw) = long_raw(i).ok()?;
            let valid = if tag == b'F' {
                valid_entries(raw, depth + 1)
            } else {
                valid_values(raw, depth + 1)
            };
            valid.then_some(rest)
        }
        _ => None,
    }
}

fn valid_entries(mut i: &[u8], depth: usize) -> bool {
    while !i.is_empty() {
        let Ok((rest, _key)) = short_raw(i) else {
            return false;
        };
        match skip_value(rest, depth) {
            Some(rest) => i = rest,
            None => return false,
        }
    }
    true
}

fn valid_values(mut i: &[u8], depth: usize) -> bool {
    while !i.is_empty() {
        match skip_value(i, depth) {
            Some(rest) => i = rest,
            None => return false,
        }
    }
    true
}

/// Whether `raw` (a table's octets without its length) is a well-formed table.
pub(crate) fn is_valid_table(raw: &[u8]) -> bool {
    valid_entries(raw, 0)
}

/// A field table: its encoded entries, read lazily.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldTable {
    raw: Bytes,
}

impl FieldTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn from_validated(raw: Bytes) -> Self {
        FieldTable { raw }
    }

    /// A table from its encoded entries (without the 32-bit length), if well-formed.
    pub fn from_encoded(raw: Bytes) -> Option<Self> {
        is_valid_table(&raw).then_some(FieldTable { raw })
    }

    /// The encoded entries, without the 32-bit length.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Appends an entry; re-encodes the table, so build big tables with `collect`.
    pub fn push(&mut self, key: ShortString, value: FieldValue) {
        let mut buf = BytesMut::with_capacity(self.raw.len() + key.len() + 16);
        buf.put_slice(&self.raw);
        put_entry(&mut buf, &key, &value);
        self.raw = buf.freeze();
    }

    /// Builder form of [`push`](Self::push).
    pub fn with(mut self, key: &'static str, value: FieldValue) -> Self {
        self.push(ShortString::from_static(key), value);
        self
    }

    pub fn iter(&self) -> TableIter<'_> {
        TableIter {
            base: &self.raw,
            rest: &self.raw,
        }
    }

    /// The first value under `key` (RabbitMQ's lookup also takes the first).
    pub fn get(&self, key: &str) -> Option<FieldValue> {
        self.iter()
            .find(|(k, _)| k.as_bytes() == key.as_bytes())
            .map(|(_, v)| v)
    }
}

fn put_entry(buf: &mut BytesMut, key: &ShortString, value: &FieldValue) {
    buf.put_u8(key.len() as u8);
    buf.put_slice(key.as_bytes());
    value.encode(buf);
}

impl FromIterator<(ShortString, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (ShortString, FieldValue)>>(entries: I) -> Self {
        let mut buf = BytesMut::new();
        for (key, value) in entries {
            put_entry(&mut buf, &key, &value);
        }
        FieldTable { raw: buf.freeze() }
    }
}

impl fmt::Debug for FieldTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

pub struct TableIter<'a> {
    base: &'a Bytes,
    rest: &'a [u8],
}

impl Iterator for TableIter<'_> {
    type Item = (ShortString, FieldValue);

    fn next(&mut self) -> Option<Self::Item> {
        let (rest, key) = short_raw(self.rest).ok()?;
        let (value, rest) = FieldValue::parse(self.base, rest)?;
        self.rest = rest;
        Some((
            ShortString::from_bytes_unchecked(self.base.slice_ref(key)),
            value,
        ))
    }
}

/// A field array: its encoded values, read lazily.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldArray {
    raw: Bytes,
}

impl FieldArray {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    pub fn iter(&self) -> ArrayIter<'_> {
        ArrayIter {
            base: &self.raw,
            rest: &self.raw,
        }
    }
}

impl FromIterator<FieldValue> for FieldArray {
    fn from_iter<I: IntoIterator<Item = FieldValue>>(values: I) -> Self {
        let mut buf = BytesMut::new();
        for value in values {
            value.encode(&mut buf);
        }
        FieldArray { raw: buf.freeze() }
    }
}

impl fmt::Debug for FieldArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

pub struct ArrayIter<'a> {
    base: &'a Bytes,
    rest: &'a [u8],
}

impl Iterator for ArrayIter<'_> {
    type Item = FieldValue;

    fn next(&mut self) -> Option<FieldValue> {
        let (value, rest) = FieldValue::parse(self.base, self.rest)?;
        self.rest = rest;
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_takes_the_first_entry() {
        let table = FieldTable::new()
            .with("x-match", FieldValue::LongString("all".into()))
            .with("x-match", FieldValue::LongString("any".into()));
        assert_eq!(
            table.get("x-match"),
            Some(FieldValue::LongString("all".into()))
        );
        assert_eq!(table.get("missing"), None);
    }

    #[test]
    fn an_upper_case_l_is_read_as_a_signed_64_bit_value_as_rabbitmq_does() {
        let raw = Bytes::from_static(b"\x01kL\xff\xff\xff\xff\xff\xff\xff\xfe");
        let table = FieldTable::from_encoded(raw).expect("accepted");
        assert!(matches!(table.get("k"), Some(FieldValue::I64(-2))));
    }

    #[test]
    fn unknown_type_codes_are_refused() {
        assert!(FieldTable::from_encoded(Bytes::from_static(b"\x01kQ")).is_none());
    }

    #[test]
    fn a_table_claiming_4_gib_is_refused_without_allocating() {
        let raw = Bytes::from_static(b"\x01kF\xff\xff\xff\xff");
        assert!(FieldTable::from_encoded(raw).is_none());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut value = FieldValue::Void;
        for _ in 0..=MAX_NESTING {
            value = FieldValue::Table(FieldTable::new().with("k", value));
        }
        let table = FieldTable::new().with("k", value);
        assert!(FieldTable::from_encoded(table.as_bytes().clone()).is_none());
    }
}
