//! The content header frame's payload.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{CodecError, Snippet};
use crate::generated::{class_id, BasicProperties};
use crate::primitives::{self as p, PResult};
use crate::{FieldTable, ShortString};

/// Announces a message's body size and carries its properties. Only class
/// `basic` has content in 0-9-1.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContentHeader {
    pub class_id: u16,
    /// Unused; always 0.
    pub weight: u16,
    pub body_size: u64,
    pub properties: BasicProperties,
}

impl ContentHeader {
    #[inline]
    pub fn decode(payload: &Bytes) -> Result<Self, CodecError> {
        let header = |i| -> PResult<'_, (u16, u16, u64)> {
            let (i, class_id) = p::short(i)?;
            let (i, weight) = p::short(i)?;
            let (i, body_size) = p::longlong(i)?;
            Ok((i, (class_id, weight, body_size)))
        };
        let (i, (class, weight, body_size)) =
            header(payload).map_err(|_| CodecError::Truncated(Snippet::header(payload)))?;
        if class != class_id::BASIC {
            return Err(CodecError::ContentClass(class));
        }
        if weight != 0 {
            return Err(CodecError::ContentWeight);
        }
        let properties = p::complete(BasicProperties::decode(payload, i), class, 0)?;
        Ok(ContentHeader {
            class_id: class,
            weight,
            body_size,
            properties,
        })
    }

    /// Checks a content header as thoroughly as [`decode`](Self::decode)
    /// (same errors) but keeps only what a broker acts on, so a publish
    /// does not carry fourteen decoded properties through the broker.
    #[inline]
    pub fn summarize(payload: &Bytes) -> Result<HeaderSummary, CodecError> {
        // The fixed fields are parsed as in `decode`, not through a shared
        // helper: sharing it cost `decode` 3-4% in the codec bench.
        let header = |i| -> PResult<'_, (u16, u16, u64)> {
            let (i, class_id) = p::short(i)?;
            let (i, weight) = p::short(i)?;
            let (i, body_size) = p::longlong(i)?;
            Ok((i, (class_id, weight, body_size)))
        };
        let (i, (class, weight, body_size)) =
            header(payload).map_err(|_| CodecError::Truncated(Snippet::header(payload)))?;
        if class != class_id::BASIC {
            return Err(CodecError::ContentClass(class));
        }
        if weight != 0 {
            return Err(CodecError::ContentWeight);
        }
        let mut summary = p::complete(summarize_properties(payload, i), class, 0)?;
        summary.body_size = body_size;
        Ok(summary)
    }

    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.class_id);
        buf.put_u16(self.weight);
        buf.put_u64(self.body_size);
        self.properties.encode(buf);
    }
}

/// What the broker needs from a message's properties; the properties
/// themselves travel on as the header payload they arrived in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderSummary {
    pub body_size: u64,
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub expiration: Option<ShortString>,
    pub user_id: Option<ShortString>,
    pub headers: Option<FieldTable>,
}

/// Walks the property list in flag order (as the generated
/// `BasicProperties::decode` does), validating every field.
fn summarize_properties<'a>(base: &Bytes, i: &'a [u8]) -> PResult<'a, HeaderSummary> {
    let (mut i, flags) = p::short(i)?;
    if flags & BasicProperties::UNKNOWN_FLAGS != 0 {
        return Err(p::invalid(i));
    }
    let mut summary = HeaderSummary::default();
    for bit in (2..16).rev() {
        if flags & (1 << bit) == 0 {
            continue;
        }
        i = match bit {
            // headers
            13 => {
                let (i, table) = p::field_table(base, i)?;
                summary.headers = Some(table);
                i
            }
            // delivery-mode, priority
            12 | 11 => {
                let (i, octet) = p::octet(i)?;
                if bit == 12 {
                    summary.delivery_mode = Some(octet);
                } else {
                    summary.priority = Some(octet);
                }
                i
            }
            // timestamp
            6 => p::longlong(i)?.0,
            // expiration, user-id
            8 | 4 => {
                let (i, s) = p::short_string(base, i)?;
                if bit == 8 {
                    summary.expiration = Some(s);
                } else {
                    summary.user_id = Some(s);
                }
                i
            }
            // content-type, content-encoding, correlation-id, reply-to,
            // message-id, type, app-id, cluster-id: short strings
            _ => p::short_raw(i)?.0,
        };
    }
    Ok((i, summary))
}
