//! The 8 octets a client opens with.

use bytes::{Buf, BytesMut};

use crate::error::CodecError;

/// `AMQP 0 0 9 1`; also what the server answers a wrong header with.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// Consumes the protocol header from `buf`: `Ok(true)` once it has arrived
/// whole, `Ok(false)` while it may still be arriving, and an error as soon as
/// any octet differs (the server then sends its own header and closes).
pub fn decode_protocol_header(buf: &mut BytesMut) -> Result<bool, CodecError> {
    let n = buf.len().min(PROTOCOL_HEADER.len());
    if buf[..n] != PROTOCOL_HEADER[..n] {
        return Err(CodecError::BadProtocolHeader);
    }
    if n < PROTOCOL_HEADER.len() {
        return Ok(false);
    }
    buf.advance(PROTOCOL_HEADER.len());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_0_9_1_in_pieces() {
        let mut buf = BytesMut::from(&b"AMQ"[..]);
        assert_eq!(decode_protocol_header(&mut buf), Ok(false));
        buf.extend_from_slice(b"P\x00\x00\x09\x01\x01");
        assert_eq!(decode_protocol_header(&mut buf), Ok(true));
        assert_eq!(&buf[..], b"\x01", "what follows the header stays");
    }

    #[test]
    fn refuses_other_versions_and_protocols() {
        for wrong in [
            &b"AMQP\x01\x01\x00\x09"[..],
            b"AMQP\x00\x00\x09\x00",
            b"GET / HTTP/1.1\r\n",
        ] {
            let mut buf = BytesMut::from(wrong);
            assert_eq!(
                decode_protocol_header(&mut buf),
                Err(CodecError::BadProtocolHeader)
            );
        }
    }
}
