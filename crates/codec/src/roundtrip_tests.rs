//! Property tests: everything the codec writes it reads back identically,
//! in whatever pieces the bytes arrive, and no input makes it panic.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::generated_strategies::{any_basic_properties, any_method};
use crate::strategies::{field_entries, long_string, short_string};
use crate::*;

/// Feeds `bytes` to a decoder in two pieces split at `split`, collecting
/// frames and how many bytes were left over.
fn decode_split(bytes: &[u8], split: usize) -> Result<(Vec<Frame>, usize), CodecError> {
    let mut decoder = FrameDecoder::new(0);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let split = split.min(bytes.len());
    for piece in [&bytes[..split], &bytes[split..]] {
        buf.extend_from_slice(piece);
        while let Some(frame) = decoder.decode(&mut buf)? {
            frames.push(frame);
        }
    }
    Ok((frames, buf.len()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_method_round_trips(method in any_method(), channel: u16, split: usize) {
        let mut buf = BytesMut::new();
        encode_method_frame(channel, &method, &mut buf);
        let encoded = buf.clone().freeze();
        let (frames, left) = decode_split(&encoded, split % (encoded.len() + 1)).unwrap();
        prop_assert_eq!(left, 0);
        prop_assert_eq!(&frames, &vec![Frame::Method { channel, method }]);
        let mut again = BytesMut::new();
        frames[0].encode(&mut again);
        prop_assert_eq!(again.freeze(), encoded);
    }

    #[test]
    fn content_round_trips(
        properties in any_basic_properties(),
        body in proptest::collection::vec(any::<u8>(), 0..3000),
        frame_max in 4096u32..9000,
    ) {
        let header = ContentHeader {
            class_id: class_id::BASIC,
            weight: 0,
            body_size: body.len() as u64,
            properties,
        };
        let publish = Method::BasicPublish(BasicPublish::default());
        let mut buf = BytesMut::new();
        encode_content(3, &publish, &header, &body, frame_max, &mut buf);
        // Random properties may not fit frame_max; only body frames are split to fit.
        let mut decoder = FrameDecoder::new(0);
        let mut received = Vec::new();
        let mut frames = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            if let Frame::Body { payload, .. } = &frame {
                prop_assert!(payload.len() + FRAME_OVERHEAD <= frame_max as usize);
                received.extend_from_slice(payload);
            }
            frames.push(frame);
        }
        prop_assert_eq!(&frames[0], &Frame::Method { channel: 3, method: publish });
        prop_assert_eq!(&frames[1], &Frame::Header { channel: 3, header });
        prop_assert_eq!(received, body);
    }

    #[test]
    fn deliver_frames_encode_like_the_method(
        consumer_tag in short_string(),
        delivery_tag: u64,
        redelivered: bool,
        exchange in short_string(),
        routing_key in short_string(),
        channel: u16,
    ) {
        let d = BasicDeliver { consumer_tag, delivery_tag, redelivered, exchange, routing_key };
        let mut expected = BytesMut::new();
        encode_method_frame(channel, &d.clone().into(), &mut expected);
        let mut direct = BytesMut::new();
        let fields = DeliverFields {
            consumer_tag: d.consumer_tag.as_bytes(),
            delivery_tag: d.delivery_tag,
            redelivered: d.redelivered,
            exchange: d.exchange.as_bytes(),
            routing_key: d.routing_key.as_bytes(),
        };
        encode_deliver_frame(channel, &fields, &mut direct);
        prop_assert_eq!(direct, expected);
    }

    /// The summary agrees with the full decode on valid headers and fails
    /// exactly when it fails on corrupted ones.
    #[test]
    fn header_summary_agrees_with_decode(
        properties in any_basic_properties(),
        body_size: u64,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    ) {
        let header = ContentHeader { class_id: class_id::BASIC, weight: 0, body_size, properties };
        let mut buf = BytesMut::new();
        header.encode(&mut buf);
        let len = buf.len();
        for (at, value) in flips {
            buf[at % len] = value;
        }
        let payload = buf.freeze();
        match (ContentHeader::decode(&payload), ContentHeader::summarize(&payload)) {
            (Ok(full), Ok(summary)) => {
                prop_assert_eq!(summary.body_size, full.body_size);
                prop_assert_eq!(summary.delivery_mode, full.properties.delivery_mode);
                prop_assert_eq!(summary.priority, full.properties.priority);
                prop_assert_eq!(summary.expiration, full.properties.expiration);
                prop_assert_eq!(summary.user_id, full.properties.user_id);
                prop_assert_eq!(summary.headers, full.properties.headers);
            }
            (Err(a), Err(b)) => prop_assert_eq!(a, b),
            (a, b) => prop_assert!(false, "decode {:?} but summarize {:?}", a, b),
        }
    }

    #[test]
    fn field_tables_round_trip(entries in field_entries()) {
        let table: FieldTable = entries.iter().cloned().collect();
        let method = Method::QueueDeclare(QueueDeclare { arguments: table.clone(), ..Default::default() });
        let mut buf = BytesMut::new();
        method.encode(&mut buf);
        let Method::QueueDeclare(decoded) = Method::decode(&buf.freeze()).unwrap() else {
            panic!("decoded another method");
        };
        prop_assert_eq!(&decoded.arguments, &table);
        prop_assert_eq!(decoded.arguments.iter().collect::<Vec<_>>(), entries);
    }

    #[test]
    fn long_strings_round_trip(s in long_string()) {
        let method = Method::ConnectionSecure(ConnectionSecure { challenge: s.clone() });
        let mut buf = BytesMut::new();
        method.encode(&mut buf);
        prop_assert_eq!(Method::decode(&buf.freeze()).unwrap(), method);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), split: usize) {
        let _ = decode_split(&bytes, split % (bytes.len() + 1));
        let _ = Method::decode(&Bytes::from(bytes.clone()));
        let _ = ContentHeader::decode(&Bytes::from(bytes));
    }

    /// Valid frames with a few octets flipped: the decoder errs or decodes, never panics.
    #[test]
    fn corrupted_frames_never_panic(
        method in any_method(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut buf = BytesMut::new();
        encode_method_frame(1, &method, &mut buf);
        let len = buf.len();
        for (at, value) in flips {
            buf[at % len] = value;
        }
        let _ = decode_split(&buf, len / 2);
    }
}

#[test]
fn the_generated_table_matches_the_xml() {
    let count = |xml: &str| xml.matches("<method ").count();
    let in_xml = count(include_str!("../spec/amqp0-9-1-rabbit.xml"))
        + count(include_str!("../spec/warren-extensions.xml"));
    assert_eq!(METHODS.len(), in_xml);
    for info in METHODS {
        assert_eq!(method_info(info.class_id, info.method_id), Some(info));
    }
}
