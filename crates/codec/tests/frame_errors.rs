//! Every way a frame can be wrong maps to the reply code the server closes with.

use bytes::{BufMut, BytesMut};
use warren_codec::*;

fn raw_frame(kind: u8, channel: u16, payload: &[u8], end: u8) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u8(kind);
    buf.put_u16(channel);
    buf.put_u32(payload.len() as u32);
    buf.put_slice(payload);
    buf.put_u8(end);
    buf
}

fn decode(mut buf: BytesMut, frame_max: u32) -> Result<Option<Frame>, CodecError> {
    FrameDecoder::new(frame_max).decode(&mut buf)
}

fn code(result: Result<Option<Frame>, CodecError>) -> u16 {
    result.expect_err("expected an error").reply_code().code()
}

#[test]
fn bad_frame_end_is_501() {
    let buf = raw_frame(1, 0, b"\x00\x0a\x00\x33", 0xcd);
    assert_eq!(code(decode(buf, 4096)), 501);
}

#[test]
fn oversized_frame_is_refused_from_its_header_alone() {
    let mut header = BytesMut::new();
    header.put_u8(3);
    header.put_u16(1);
    header.put_u32(4097);
    assert_eq!(
        decode(header, 4096),
        Err(CodecError::FrameTooLarge {
            size: 4097,
            frame_max: 4096
        })
    );
}

#[test]
fn payload_up_to_frame_max_is_tolerated_as_rabbitmq_does() {
    // frame_max counts the 8 bytes of overhead; RabbitMQ still accepts a
    // payload of frame_max bytes, because some clients forget the overhead.
    let body = vec![7u8; 4096];
    assert!(matches!(
        decode(raw_frame(3, 1, &body, 0xce), 4096),
        Ok(Some(Frame::Body { .. }))
    ));
    let body = vec![7u8; 4097];
    assert_eq!(code(decode(raw_frame(3, 1, &body, 0xce), 4096)), 501);
}

#[test]
fn huge_claimed_size_allocates_nothing_and_is_refused() {
    let mut header = BytesMut::new();
    header.put_slice(&[1, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(code(decode(header, 131_072)), 501);
}

#[test]
fn unknown_frame_type_is_501() {
    assert_eq!(code(decode(raw_frame(9, 0, b"", 0xce), 4096)), 501);
}

#[test]
fn heartbeat_off_channel_zero_is_505_as_rabbitmq() {
    assert_eq!(code(decode(raw_frame(8, 3, b"", 0xce), 4096)), 505);
    assert!(matches!(
        decode(raw_frame(8, 0, b"", 0xce), 4096),
        Ok(Some(Frame::Heartbeat))
    ));
}

#[test]
fn unknown_class_or_method_is_540() {
    assert_eq!(
        code(decode(raw_frame(1, 1, b"\x00\x3c\x00\x63", 0xce), 4096)),
        540
    );
    assert_eq!(
        code(decode(raw_frame(1, 1, b"\x00\x63\x00\x0a", 0xce), 4096)),
        540
    );
}

#[test]
fn malformed_fields_are_502_naming_the_method() {
    // queue.declare whose queue name claims 200 bytes but has 3.
    let err = decode(
        raw_frame(1, 1, b"\x00\x32\x00\x0a\x00\x00\xc8abc", 0xce),
        4096,
    )
    .unwrap_err();
    assert_eq!(err.reply_code(), ReplyCode::SyntaxError);
    assert_eq!(err.class_method(), (50, 10));
    assert!(err.to_string().contains("queue.declare"), "{err}");
    // Bytes after the last field.
    let err = decode(raw_frame(1, 0, b"\x00\x0a\x00\x33\xff", 0xce), 4096).unwrap_err();
    assert_eq!(err.reply_code(), ReplyCode::SyntaxError);
}

#[test]
fn frames_shorter_than_their_fixed_fields_are_501_naming_the_octets() {
    // Shorter than class and method ids, as RabbitMQ's reader names it.
    let err = decode(raw_frame(1, 0, b"\x00\x0a", 0xce), 4096).unwrap_err();
    assert_eq!(err.reply_code(), ReplyCode::FrameError);
    assert_eq!(
        err.to_string(),
        "type 1, all octets = <<0,10>>: unknown_frame"
    );
    // A content header without its class, weight and body size.
    let err = decode(raw_frame(2, 1, b"\x00\x3c\x00", 0xce), 4096).unwrap_err();
    assert_eq!(err.reply_code(), ReplyCode::FrameError);
    assert_eq!(
        err.to_string(),
        "type 2, all octets = <<0,60,0>>: unknown_frame"
    );
}

#[test]
fn a_content_header_with_a_weight_is_505() {
    let payload = b"\x00\x3c\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00";
    assert_eq!(code(decode(raw_frame(2, 1, payload, 0xce), 4096)), 505);
}

#[test]
fn content_header_of_a_class_without_content_is_505() {
    let payload = b"\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00";
    assert_eq!(code(decode(raw_frame(2, 1, payload, 0xce), 4096)), 505);
}

#[test]
fn content_header_with_unknown_property_flags_is_502() {
    let payload = b"\x00\x3c\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01";
    assert_eq!(code(decode(raw_frame(2, 1, payload, 0xce), 4096)), 502);
}

#[test]
fn a_table_claiming_4_gib_is_502() {
    // queue.declare: ticket, queue "q", flags, then arguments of length 0xffffffff.
    let payload = b"\x00\x32\x00\x0a\x00\x00\x01q\x00\xff\xff\xff\xff";
    assert_eq!(code(decode(raw_frame(1, 1, payload, 0xce), 4096)), 502);
}

#[test]
fn reply_codes_know_hard_from_soft() {
    assert!(ReplyCode::FrameError.is_hard_error());
    assert!(!ReplyCode::NotFound.is_hard_error());
    assert_eq!(ReplyCode::from_code(312), Some(ReplyCode::NoRoute));
    assert_eq!(ReplyCode::PreconditionFailed.name(), "PRECONDITION_FAILED");
}
