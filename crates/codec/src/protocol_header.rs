//! The 8 octets a client opens with.

use bytes::{Buf, BytesMut};

use crate::error::CodecError;

/// `AMQP 0 0 9 1`; also what the server answers a wrong header with.
pub const PROTOCOL_HEADER: [u8; 8] = *b"AMQP\x00\x00\x09\x01";

/// The headers spoken as 0-9-1: its own, and 0-9's `AMQP 1 1 0 9`, which
/// RabbitMQ also reads as 0-9-1 (older clients, Perl's Net::AMQP, send
/// it). The 0-8 headers (`AMQP 1 1 8 0`, `AMQP 1 1 9 1`) are refused.
const ACCEPTED: [[u8; 8]; 2] = [PROTOCOL_HEADER, *b"AMQP\x01\x01\x00\x09"];

/// Consumes the protocol header from `buf`: `Ok(true)` once it has arrived
/// whole, `Ok(false)` while it may still be arriving, and an error as soon as
/// it can no longer be one we speak (the server then sends its own header
/// and closes).
pub fn decode_protocol_header(buf: &mut BytesMut) -> Result<bool, CodecError> {
    let n = buf.len().min(PROTOCOL_HEADER.len());
    if !ACCEPTED.iter().any(|header| buf[..n] == header[..n]) {
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
    fn accepts_0_9_as_0_9_1_in_pieces() {
        let mut buf = BytesMut::from(&b"AMQP\x01"[..]);
        assert_eq!(decode_protocol_header(&mut buf), Ok(false));
        buf.extend_from_slice(b"\x01\x00\x09");
        assert_eq!(decode_protocol_header(&mut buf), Ok(true));
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_0_8_other_versions_and_protocols() {
        for wrong in [
            &b"AMQP\x01\x01\x08\x00"[..],
            b"AMQP\x01\x01\x09\x01",
            b"AMQP\x00\x01\x00\x00",
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
