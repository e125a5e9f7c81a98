//! Frames in the wrong place or too short for their fixed fields: the reply
//! codes and texts RabbitMQ 3.10's reader and command assembler send.

use bytes::{BufMut, BytesMut};
use warren_codec::*;
use warren_tests::{RawClient, TestServer};

fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_u8(kind);
    buf.put_u16(channel);
    buf.put_u32(payload.len() as u32);
    buf.put_slice(payload);
    buf.put_u8(FRAME_END);
    buf.to_vec()
}

/// Opens a connection with channel 1, sends `bytes`, returns the close.
async fn close_after(bytes: &[u8]) -> (u16, String) {
    let server = TestServer::start().await;
    let mut c = RawClient::open(server.addr, 0, true).await;
    c.send_bytes(bytes).await;
    c.expect_connection_close().await
}

/// A content header payload: class, weight, body size, no properties.
fn header_payload(class: u16, weight: u16, body_size: u64) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&class.to_be_bytes());
    p.extend_from_slice(&weight.to_be_bytes());
    p.extend_from_slice(&body_size.to_be_bytes());
    p.extend_from_slice(&0u16.to_be_bytes());
    p
}

fn publish_then(header: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_method_frame(1, &BasicPublish::default().into(), &mut buf);
    let mut bytes = buf.to_vec();
    bytes.extend(frame(FRAME_HEADER, 1, header));
    bytes
}

#[tokio::test]
async fn content_frames_on_channel_0_are_505_naming_the_frame() {
    let (code, text) = close_after(&frame(FRAME_BODY, 0, b"abc")).await;
    assert_eq!(code, 505);
    assert_eq!(text, r#"UNEXPECTED_FRAME - type 3, all octets = <<"abc">>"#);
    let (code, text) = close_after(&frame(FRAME_HEADER, 0, &header_payload(60, 0, 1))).await;
    assert_eq!(code, 505);
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,1,0,0>>"
    );
}

#[tokio::test]
async fn a_content_header_with_a_weight_is_505() {
    let (code, text) = close_after(&publish_then(&header_payload(60, 1, 0))).await;
    assert_eq!(code, 505);
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead"
    );
}

#[tokio::test]
async fn a_content_header_of_another_class_is_505() {
    let (code, text) = close_after(&publish_then(&header_payload(50, 0, 0))).await;
    assert_eq!(code, 505);
    assert_eq!(
        text,
        "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead"
    );
}

#[tokio::test]
async fn frames_too_short_for_their_fixed_fields_are_501() {
    let (code, text) = close_after(&frame(FRAME_METHOD, 1, &[0, 60])).await;
    assert_eq!(code, 501);
    assert_eq!(
        text,
        "FRAME_ERROR - type 1, all octets = <<0,60>>: unknown_frame"
    );
    let (code, text) = close_after(&publish_then(&[0, 60, 0, 0, 0])).await;
    assert_eq!(code, 501);
    assert_eq!(
        text,
        "FRAME_ERROR - type 2, all octets = <<0,60,0,0,0>>: unknown_frame"
    );
}
