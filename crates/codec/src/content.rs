//! The content header frame's payload.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::CodecError;
use crate::generated::{class_id, BasicProperties};
use crate::primitives::{self as p, PResult};

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
        let (i, (class, weight, body_size)) = header(payload).map_err(|_| CodecError::Syntax {
            class_id: class_id::BASIC,
            method_id: 0,
            reason: "content header shorter than 12 bytes",
        })?;
        if class != class_id::BASIC {
            return Err(CodecError::ContentClass(class));
        }
        let properties = p::complete(BasicProperties::decode(payload, i), class, 0)?;
        Ok(ContentHeader {
            class_id: class,
            weight,
            body_size,
            properties,
        })
    }

    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_u16(self.class_id);
        buf.put_u16(self.weight);
        buf.put_u64(self.body_size);
        self.properties.encode(buf);
    }
}
