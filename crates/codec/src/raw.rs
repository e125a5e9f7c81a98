//! The lowest layer of parsing: a run of octets of a claimed length,
//! checked against what is there, and the raw bytes of short and long
//! strings. Strings, tables and methods are parsed on top of it.

use nom::error::{Error, ErrorKind};
use nom::number::complete::{be_u32, be_u8};
use nom::IResult;

pub(crate) type PResult<'a, T> = IResult<&'a [u8], T>;

/// `len` octets, checked against what is there (nothing is allocated from
/// a claimed length). Written out rather than with nom's `take`, whose
/// closure did not inline on the per-frame path.
#[inline]
fn octets(i: &[u8], len: usize) -> PResult<'_, &[u8]> {
    if i.len() < len {
        return Err(nom::Err::Error(Error::new(i, ErrorKind::Eof)));
    }
    let (data, rest) = i.split_at(len);
    Ok((rest, data))
}

/// The raw octets of a short string (length octet, then data).
#[inline]
pub(crate) fn short_raw(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, len) = be_u8(i)?;
    octets(i, len.into())
}

/// The raw octets of a long string (32-bit length, then data).
#[inline]
pub(crate) fn long_raw(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, len) = be_u32(i)?;
    octets(i, len as usize)
}
