//! Frames recorded from a real client (pika 1.3.2 on Python 3.11), decoded byte for byte.

use bytes::{Bytes, BytesMut};
use warren_codec::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn decode_all(bytes: &[u8]) -> Vec<Frame> {
    let mut buf = BytesMut::from(bytes);
    let mut decoder = FrameDecoder::new(131_072);
    let mut frames = Vec::new();
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        frames.push(frame);
    }
    assert!(buf.is_empty());
    frames
}

fn method(bytes: &[u8]) -> Method {
    match decode_all(bytes).as_slice() {
        [Frame::Method { channel: 0, method }] => method.clone(),
        other => panic!("expected one method frame on channel 0, got {other:?}"),
    }
}

const PIKA_START_OK: &str = "01000000000122000a000b000000fe0770726f64756374530000001a50696b6120507974686f6e20436c69656e74204c69627261727908706c6174666f726d530000000d507974686f6e20332e31312e370c6361706162696c6974696573460000006f1c61757468656e7469636174696f6e5f6661696c7572655f636c6f736574010a62617369632e6e61636b740112636f6e6e656374696f6e2e626c6f636b6564740116636f6e73756d65725f63616e63656c5f6e6f746966797401127075626c69736865725f636f6e6669726d7374010b696e666f726d6174696f6e530000001853656520687474703a2f2f70696b612e727466642e6f72670776657273696f6e5300000005312e332e3205504c41494e0000000c00677565737400677565737405656e5f5553ce";
const PIKA_TUNE_OK: &str = "0100000000000c000a001f07ff00020000003cce";
const PIKA_OPEN: &str = "01000000000008000a0028012f0001ce";
const PIKA_CHANNEL_OPEN: &str = "010001000000050014000a00ce";
const PIKA_PUBLISH: &str = "01000100000023003c0028000009616d712e746f706963116f72646572732e65752e6372656174656400ce02000100000048003c0000000000000000000ab080106170706c69636174696f6e2f6a736f6e000000200772657472696573490000000306736f75726365530000000762696c6c696e6702036d2d31ce0300010000000a7b226964223a2034327dce";

#[test]
fn pika_start_ok_with_capabilities() {
    let Method::ConnectionStartOk(start_ok) = method(&hex(PIKA_START_OK)) else {
        panic!("not a start-ok");
    };
    assert_eq!(start_ok.mechanism, "PLAIN");
    assert_eq!(start_ok.response.as_bytes(), b"\0guest\0guest");
    assert_eq!(start_ok.locale, "en_US");
    let props = &start_ok.client_properties;
    assert_eq!(
        props.get("product"),
        Some(FieldValue::LongString("Pika Python Client Library".into()))
    );
    let Some(FieldValue::Table(capabilities)) = props.get("capabilities") else {
        panic!("no capabilities table");
    };
    let names: Vec<String> = capabilities.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(
        names,
        [
            "authentication_failure_close",
            "basic.nack",
            "connection.blocked",
            "consumer_cancel_notify",
            "publisher_confirms"
        ]
    );
    assert!(capabilities
        .iter()
        .all(|(_, v)| v == FieldValue::Bool(true)));
    assert_reencodes(PIKA_START_OK);
}

#[test]
fn pika_tune_ok_open_and_channel_open() {
    assert_eq!(
        method(&hex(PIKA_TUNE_OK)),
        Method::ConnectionTuneOk(ConnectionTuneOk {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60
        })
    );
    let Method::ConnectionOpen(open) = method(&hex(PIKA_OPEN)) else {
        panic!()
    };
    assert_eq!(open.virtual_host, "/");
    assert!(open.reserved_2, "pika sets the deprecated insist bit");
    let frames = decode_all(&hex(PIKA_CHANNEL_OPEN));
    assert_eq!(
        frames,
        [Frame::Method {
            channel: 1,
            method: Method::ChannelOpen(ChannelOpen::default())
        }]
    );
    for bytes in [PIKA_TUNE_OK, PIKA_OPEN, PIKA_CHANNEL_OPEN] {
        assert_reencodes(bytes);
    }
}

fn check_publish(frames: &[Frame]) {
    let [Frame::Method {
        channel: 1,
        method: Method::BasicPublish(publish),
    }, Frame::Header { channel: 1, header }, Frame::Body {
        channel: 1,
        payload,
    }] = frames
    else {
        panic!("expected publish, header, body on channel 1: {frames:?}");
    };
    assert_eq!(publish.exchange, "amq.topic");
    assert_eq!(publish.routing_key, "orders.eu.created");
    assert!(!publish.mandatory);
    assert_eq!(header.body_size, 10);
    let props = &header.properties;
    assert_eq!(props.content_type.as_ref().unwrap(), "application/json");
    assert_eq!(props.delivery_mode, Some(2));
    assert_eq!(props.message_id.as_ref().unwrap(), "m-1");
    let headers = props.headers.as_ref().unwrap();
    assert_eq!(headers.get("retries"), Some(FieldValue::I32(3)));
    assert_eq!(
        headers.get("source"),
        Some(FieldValue::LongString("billing".into()))
    );
    assert_eq!(&payload[..], b"{\"id\": 42}");
}

#[test]
fn pika_publish_in_one_read() {
    check_publish(&decode_all(&hex(PIKA_PUBLISH)));
    assert_reencodes(PIKA_PUBLISH);
}

#[test]
fn pika_publish_split_across_reads_at_every_point() {
    let bytes = hex(PIKA_PUBLISH);
    for a in 0..bytes.len() {
        for b in a..bytes.len() {
            let mut decoder = FrameDecoder::new(131_072);
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            for piece in [&bytes[..a], &bytes[a..b], &bytes[b..]] {
                buf.extend_from_slice(piece);
                while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                    frames.push(frame);
                }
            }
            check_publish(&frames);
        }
    }
}

#[test]
fn the_body_is_a_slice_of_the_read_buffer() {
    let mut buf = BytesMut::from(&hex(PIKA_PUBLISH)[..]);
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();
    let mut decoder = FrameDecoder::new(131_072);
    let mut slices = 0;
    while let Some(frame) = decoder.decode(&mut buf).unwrap() {
        let inside = |b: &Bytes| (start..end).contains(&(b.as_ptr() as usize));
        match frame {
            Frame::Body { payload, .. } => {
                assert!(inside(&payload));
                slices += 1;
            }
            Frame::Header { header, .. } => {
                let headers = header.properties.headers.unwrap();
                assert!(inside(headers.as_bytes()));
                slices += 1;
            }
            _ => {}
        }
    }
    assert_eq!(slices, 2);
}

/// Decoding then encoding gives back the client's exact bytes.
fn assert_reencodes(hex_frames: &str) {
    let bytes = hex(hex_frames);
    let mut out = BytesMut::new();
    for frame in decode_all(&bytes) {
        frame.encode(&mut out);
    }
    assert_eq!(&out[..], &bytes[..]);
}
