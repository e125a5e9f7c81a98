//! Whatever a client sends after a valid handshake, the state machine
//! answers or closes; it never panics.

use bytes::BytesMut;
use proptest::prelude::*;
use std::sync::Arc;
use std::time::Instant;
use warren_codec::*;
use warren_protocol::*;

struct Anyone;

impl Authenticator for Anyone {
    fn authenticate(&self, _: &Credentials, _: bool) -> bool {
        true
    }
    fn vhost_access(&self, _: &str, _: &str) -> VhostAccess {
        VhostAccess::Granted
    }
}

fn handshake() -> BytesMut {
    let mut buf = BytesMut::from(&PROTOCOL_HEADER[..]);
    let methods: [Method; 3] = [
        ConnectionStartOk {
            mechanism: ShortString::from_static("PLAIN"),
            response: LongString::from("\0u\0p"),
            ..Default::default()
        }
        .into(),
        ConnectionTuneOk {
            channel_max: 3,
            frame_max: 8192,
            heartbeat: 0,
        }
        .into(),
        ConnectionOpen {
            virtual_host: ShortString::from_static("/"),
            ..Default::default()
        }
        .into(),
    ];
    for m in &methods {
        encode_method_frame(0, m, &mut buf);
    }
    buf
}

/// Frames a client could send, valid or not in context.
fn any_frame() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        Just(Method::from(ChannelOpen::default())),
        Just(Method::from(ChannelClose::default())),
        Just(Method::from(ChannelCloseOk {})),
        any::<bool>().prop_map(|active| Method::from(ChannelFlow { active })),
        Just(Method::from(BasicPublish::default())),
        Just(Method::from(QueueDeclare::default())),
        Just(Method::from(BasicQos::default())),
        Just(Method::from(QueueDeclareOk::default())),
        Just(Method::from(ConnectionClose::default())),
        Just(Method::from(ConnectionCloseOk {})),
        Just(Method::from(ConnectionTuneOk::default())),
        Just(Method::from(ConnectionUpdateSecret::default())),
        Just(Method::from(BasicDeliver::default())),
    ];
    prop_oneof![
        (0u16..5, method).prop_map(|(channel, m)| {
            let mut buf = BytesMut::new();
            encode_method_frame(channel, &m, &mut buf);
            buf.to_vec()
        }),
        (0u16..5, 0u64..20_000).prop_map(|(channel, size)| {
            let header = ContentHeader {
                class_id: 60,
                weight: 0,
                body_size: size,
                properties: Default::default(),
            };
            let mut buf = BytesMut::new();
            encode_header_frame(channel, &header, &mut buf);
            buf.to_vec()
        }),
        (0u16..5, proptest::collection::vec(any::<u8>(), 0..9000)).prop_map(|(channel, body)| {
            let mut buf = BytesMut::new();
            encode_body_frame(channel, &body, &mut buf);
            buf.to_vec()
        }),
        Just(vec![8, 0, 0, 0, 0, 0, 0, 0xCE]),
        proptest::collection::vec(any::<u8>(), 1..16),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn no_frame_sequence_panics(frames in proptest::collection::vec(any_frame(), 0..24), split in any::<usize>()) {
        let now = Instant::now();
        let mut conn = Connection::new(ConnectionConfig::default(), Arc::new(Anyone), now);
        let mut bytes = handshake().to_vec();
        for f in frames {
            bytes.extend(f);
        }
        let split = split % (bytes.len() + 1);
        let mut input = BytesMut::new();
        for piece in [&bytes[..split], &bytes[split..]] {
            input.extend_from_slice(piece);
            while let Some(event) = conn.next_event(&mut input, now) {
                // The broker's answers go through the same paths.
                if let Event::Method { channel, .. } = event {
                    conn.send_method(channel, QueueDeclareOk::default().into(), now);
                }
            }
        }
        conn.handle_timeout(now + std::time::Duration::from_secs(100));
        let _ = conn.output().drain().count();
    }
}
