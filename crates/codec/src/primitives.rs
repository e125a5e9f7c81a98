//! nom parsers and writers for the AMQP field types. Parsers take the frame's
//! `Bytes` as `base` so that strings and tables become slices of it.

use bytes::{BufMut, Bytes, BytesMut};
use nom::error::{Error, ErrorKind};
use nom::number::complete::{be_u16, be_u32, be_u64, be_u8};

use crate::error::{CodecError, Snippet};
pub(crate) use crate::raw::{long_raw, short_raw, PResult};
use crate::table::{self, FieldTable};
use crate::types::{LongString, ShortString};

pub(crate) fn invalid(i: &[u8]) -> nom::Err<Error<&[u8]>> {
    nom::Err::Error(Error::new(i, ErrorKind::Verify))
}

pub(crate) fn octet(i: &[u8]) -> PResult<'_, u8> {
    be_u8(i)
}

pub(crate) fn short(i: &[u8]) -> PResult<'_, u16> {
    be_u16(i)
}

pub(crate) fn long(i: &[u8]) -> PResult<'_, u32> {
    be_u32(i)
}

pub(crate) fn longlong(i: &[u8]) -> PResult<'_, u64> {
    be_u64(i)
}

pub(crate) fn short_string<'a>(base: &Bytes, i: &'a [u8]) -> PResult<'a, ShortString> {
    let (i, s) = short_raw(i)?;
    Ok((i, ShortString::from_bytes_unchecked(base.slice_ref(s))))
}

pub(crate) fn long_string<'a>(base: &Bytes, i: &'a [u8]) -> PResult<'a, LongString> {
    let (i, s) = long_raw(i)?;
    Ok((i, LongString::from(base.slice_ref(s))))
}

pub(crate) fn field_table<'a>(base: &Bytes, i: &'a [u8]) -> PResult<'a, FieldTable> {
    let (i, raw) = long_raw(i)?;
    if !table::is_valid_table(raw) {
        return Err(invalid(raw));
    }
    Ok((i, FieldTable::from_validated(base.slice_ref(raw))))
}

pub(crate) fn put_short_string(buf: &mut BytesMut, s: &ShortString) {
    buf.put_u8(s.len() as u8);
    buf.put_slice(s.as_bytes());
}

pub(crate) fn put_long_string(buf: &mut BytesMut, s: &LongString) {
    buf.put_u32(s.len() as u32);
    buf.put_slice(s.as_bytes());
}

pub(crate) fn put_field_table(buf: &mut BytesMut, t: &FieldTable) {
    buf.put_u32(t.as_bytes().len() as u32);
    buf.put_slice(t.as_bytes());
}

/// Splits a method payload into class id, method id and the fields.
pub(crate) fn method_ids(payload: &[u8]) -> Result<(u16, u16, &[u8]), CodecError> {
    match payload {
        [c1, c2, m1, m2, fields @ ..] => Ok((
            u16::from_be_bytes([*c1, *c2]),
            u16::from_be_bytes([*m1, *m2]),
            fields,
        )),
        _ => Err(CodecError::Truncated(Snippet::method(payload))),
    }
}

/// A parse of a whole payload: every byte used, nothing missing.
pub(crate) fn complete<T>(
    parsed: PResult<'_, T>,
    class_id: u16,
    method_id: u16,
) -> Result<T, CodecError> {
    let reason = match parsed {
        Ok(([], value)) => return Ok(value),
        Ok(_) => "bytes left over after the last field",
        Err(_) => "fields are truncated or invalid",
    };
    Err(CodecError::Syntax {
        class_id,
        method_id,
        reason,
    })
}
