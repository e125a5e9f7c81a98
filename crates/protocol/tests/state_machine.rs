//! The state machine driven by a scripted client, frame by frame.

use bytes::BytesMut;
use std::time::Duration;
use warren_codec::*;
use warren_protocol::*;

mod common;
use common::*;

fn publish_frames(channel: u16, body: &[u8], frame_max: u32) -> BytesMut {
    let header = ContentHeader {
        class_id: 60,
        weight: 0,
        body_size: body.len() as u64,
        properties: Default::default(),
    };
    let mut buf = BytesMut::new();
    encode_content(
        channel,
        &BasicPublish::default().into(),
        &header,
        body,
        frame_max,
        &mut buf,
    );
    buf
}

#[test]
fn handshake_offers_what_rabbitmq_offers() {
    let mut c = Client::new();
    c.send_bytes(&PROTOCOL_HEADER);
    let Some((0, Method::ConnectionStart(start))) = c.methods().pop() else {
        panic!()
    };
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    assert_eq!(start.mechanisms, "PLAIN AMQPLAIN");
    assert_eq!(start.locales, "en_US");
    c.send(0, Client::start_ok("guest", "guest", true));
    let Some((0, Method::ConnectionTune(tune))) = c.methods().pop() else {
        panic!()
    };
    assert_eq!(
        (tune.channel_max, tune.frame_max, tune.heartbeat),
        (2047, 131_072, 10)
    );
    c.send(
        0,
        ConnectionTuneOk {
            channel_max: 100,
            frame_max: 65_536,
            heartbeat: 5,
        },
    );
    c.send(
        0,
        ConnectionOpen {
            virtual_host: ShortString::from_static("/"),
            ..Default::default()
        },
    );
    assert!(matches!(
        c.methods()[..],
        [(0, Method::ConnectionOpenOk(_))]
    ));
    assert_eq!(
        c.conn.tuning(),
        Tuning {
            channel_max: 100,
            frame_max: 65_536,
            heartbeat: 5
        }
    );
    assert!(c.conn.is_open());
}

#[test]
fn the_0_9_header_is_answered_as_0_9_1() {
    let mut c = Client::new();
    c.send_bytes(b"AMQP\x01\x01\x00\x09");
    assert!(matches!(c.methods()[..], [(0, Method::ConnectionStart(_))]));
}

#[test]
fn wrong_protocol_header_gets_ours_back_and_a_close() {
    let mut c = Client::new();
    c.send_bytes(b"AMQP\x01\x01\x08\x00");
    assert!(c.conn.is_closed());
    let out: Vec<u8> = c.conn.output().drain().flat_map(|b| b.to_vec()).collect();
    assert_eq!(out, PROTOCOL_HEADER);
}

#[test]
fn bad_password_is_403_for_clients_that_understand_it() {
    let mut c = Client::new();
    c.send_bytes(&PROTOCOL_HEADER);
    c.send(0, Client::start_ok("guest", "wrong", true));
    assert_eq!(c.connection_close_code(), 403);
}

#[test]
fn bad_password_just_closes_the_socket_for_older_clients() {
    let mut c = Client::new();
    c.send_bytes(&PROTOCOL_HEADER);
    c.frames();
    c.send(0, Client::start_ok("guest", "wrong", false));
    assert!(c.frames().is_empty());
    assert!(c.conn.is_closed());
}

#[test]
fn frame_max_below_4096_or_above_the_server_is_530() {
    for (frame_max, channel_max, text) in [
        (
            4095,
            10,
            "negotiated frame_max = 4095 is lower than the minimum allowed value (4096)",
        ),
        (
            262_144,
            10,
            "negotiated frame_max = 262144 is higher than the maximum allowed value (131072)",
        ),
        (
            0,
            10,
            "negotiated frame_max = 0 is higher than the maximum allowed value (131072)",
        ),
        (
            8192,
            0,
            "negotiated channel_max = 0 (no limit) is higher than the maximum allowed value (2047)",
        ),
    ] {
        let mut c = Client::new();
        c.send_bytes(&PROTOCOL_HEADER);
        c.send(0, Client::start_ok("guest", "guest", true));
        c.send(
            0,
            ConnectionTuneOk {
                channel_max,
                frame_max,
                heartbeat: 0,
            },
        );
        let Some((0, Method::ConnectionClose(close))) = c.methods().pop() else {
            panic!()
        };
        assert_eq!(close.reply_code, 530);
        assert_eq!(
            close.reply_text.to_string(),
            format!("NOT_ALLOWED - {text}")
        );
        assert_eq!((close.class_id, close.method_id), (10, 30));
    }
}

#[test]
fn frame_max_of_exactly_4096_is_accepted() {
    // The spec's minimum frame size; RabbitMQ accepts it.
    let mut c = Client::new();
    c.send_bytes(&PROTOCOL_HEADER);
    c.send(0, Client::start_ok("guest", "guest", true));
    c.send(
        0,
        ConnectionTuneOk {
            channel_max: 1,
            frame_max: 4096,
            heartbeat: 0,
        },
    );
    c.send(
        0,
        ConnectionOpen {
            virtual_host: ShortString::from_static("/"),
            ..Default::default()
        },
    );
    assert!(c.conn.is_open());
}

#[test]
fn unknown_or_refused_vhost_is_530() {
    for (vhost, text) in [
        ("nope", "NOT_ALLOWED - vhost nope not found"),
        (
            "private",
            "NOT_ALLOWED - access to vhost 'private' refused for user 'guest'",
        ),
    ] {
        let mut c = Client::new();
        c.send_bytes(&PROTOCOL_HEADER);
        c.send(0, Client::start_ok("guest", "guest", true));
        c.send(
            0,
            ConnectionTuneOk {
                channel_max: 10,
                frame_max: 131_072,
                heartbeat: 0,
            },
        );
        c.send(
            0,
            ConnectionOpen {
                virtual_host: ShortString::try_from(vhost).unwrap(),
                ..Default::default()
            },
        );
        let Some((0, Method::ConnectionClose(close))) = c.methods().pop() else {
            panic!()
        };
        assert_eq!(
            (close.reply_code, close.reply_text.to_string()),
            (530, text.to_string())
        );
    }
}

#[test]
fn second_channel_open_is_504() {
    let mut c = Client::open();
    c.open_channel(1);
    c.send(1, ChannelOpen::default());
    assert_eq!(c.connection_close_code(), 504);
}

#[test]
fn channel_max_counts_open_channels_and_any_number_may_be_used() {
    let mut c = Client::new();
    c.send_bytes(&PROTOCOL_HEADER);
    c.send(0, Client::start_ok("guest", "guest", true));
    c.send(
        0,
        ConnectionTuneOk {
            channel_max: 2,
            frame_max: 131_072,
            heartbeat: 0,
        },
    );
    c.send(
        0,
        ConnectionOpen {
            virtual_host: ShortString::from_static("/"),
            ..Default::default()
        },
    );
    c.frames();
    // Numbers above channel_max are fine (aiormq opens channel 65535).
    c.open_channel(65535);
    c.open_channel(7);
    c.send(9, ChannelOpen::default());
    let Some((0, Method::ConnectionClose(close))) = c.methods().pop() else {
        panic!("a third channel is refused")
    };
    assert_eq!(close.reply_code, 530);
    assert_eq!(
        close.reply_text.to_string(),
        "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"
    );
    assert_eq!((close.class_id, close.method_id), (20, 10));
}

#[test]
fn a_method_on_a_channel_not_opened_is_504() {
    let mut c = Client::open();
    c.send(3, QueueDeclare::default());
    assert_eq!(c.connection_close_code(), 504);
}

#[test]
fn flow_active_false_is_540_and_true_is_acknowledged() {
    let mut c = Client::open();
    c.open_channel(1);
    c.send(1, ChannelFlow { active: true });
    assert!(matches!(
        c.methods()[..],
        [(1, Method::ChannelFlowOk(ChannelFlowOk { active: true }))]
    ));
    c.send(1, ChannelFlow { active: false });
    assert_eq!(c.connection_close_code(), 540);
}

#[test]
fn content_is_assembled_across_frames() {
    let mut c = Client::open();
    c.open_channel(1);
    let body: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    let events = c.send_bytes(&publish_frames(1, &body, 8192));
    let [Event::Publish(publish)] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(publish.channel, 1);
    assert_eq!(&publish.body[..], &body[..]);
    assert_eq!(publish.properties.body_size, 20_000);
}

#[test]
fn empty_body_completes_at_the_header() {
    let mut c = Client::open();
    c.open_channel(1);
    let events = c.send_bytes(&publish_frames(1, b"", 8192));
    assert!(matches!(&events[..], [Event::Publish(p)] if p.body.is_empty()));
}

#[test]
fn body_without_header_is_505() {
    let mut c = Client::open();
    c.open_channel(1);
    let mut buf = BytesMut::new();
    encode_body_frame(1, b"stray", &mut buf);
    c.send_bytes(&buf);
    assert_eq!(c.connection_close_code(), 505);
}

#[test]
fn method_between_header_and_body_is_505() {
    let mut c = Client::open();
    c.open_channel(1);
    let mut frames = publish_frames(1, b"hello", 8192);
    frames.truncate(frames.len() - (8 + 5));
    c.send_bytes(&frames);
    c.send(1, BasicQos::default());
    assert_eq!(c.connection_close_code(), 505);
}

#[test]
fn oversized_message_is_406_and_the_channel_can_be_reopened() {
    let mut c = Client::open();
    c.open_channel(1);
    let mut buf = BytesMut::new();
    encode_method_frame(1, &BasicPublish::default().into(), &mut buf);
    let header = ContentHeader {
        class_id: 60,
        weight: 0,
        body_size: 129 * 1024 * 1024,
        properties: Default::default(),
    };
    encode_header_frame(1, &header, &mut buf);
    encode_body_frame(1, &[0; 1000], &mut buf);
    let events = c.send_bytes(&buf);
    assert!(
        matches!(&events[..], [Event::ChannelClosed { channel: 1, error: Some(e) }] if e.code == ReplyCode::PreconditionFailed)
    );
    assert_eq!(c.channel_close_code(1), 406);
    // The rest of the body is dropped until close-ok; then channel 1 is free again.
    c.send_bytes(&buf[buf.len() - 1008..]);
    c.send(1, ChannelCloseOk {});
    c.open_channel(1);
}

#[test]
fn broker_methods_are_passed_on() {
    let mut c = Client::open();
    c.open_channel(5);
    let events = c.send(
        5,
        QueueDeclare {
            queue: ShortString::from_static("q"),
            ..Default::default()
        },
    );
    assert!(matches!(
        &events[..],
        [Event::Method {
            channel: 5,
            method: Method::QueueDeclare(_)
        }]
    ));
}

#[test]
fn server_only_methods_from_a_client_are_503() {
    let mut c = Client::open();
    c.open_channel(1);
    c.send(1, QueueDeclareOk::default());
    assert_eq!(c.connection_close_code(), 503);
}

#[test]
fn channel_errors_close_only_the_channel() {
    let mut c = Client::open();
    c.open_channel(1);
    c.open_channel(2);
    let now = c.now;
    c.conn.channel_error(
        1,
        AmqpError::new(ReplyCode::NotFound, "no queue 'q' in vhost '/'").on(50, 10),
        now,
    );
    let methods = c.methods();
    let [(1, Method::ChannelClose(close))] = &methods[..] else {
        panic!("{methods:?}")
    };
    assert_eq!(close.reply_text, "NOT_FOUND - no queue 'q' in vhost '/'");
    assert_eq!((close.class_id, close.method_id), (50, 10));
    assert!(c.conn.is_channel_open(2));
    assert!(c.conn.is_open());
}

#[test]
fn channel_close_is_answered_with_close_ok_and_frees_the_number() {
    let mut c = Client::open();
    c.open_channel(1);
    let events = c.send(
        1,
        ChannelClose {
            reply_code: 200,
            ..Default::default()
        },
    );
    assert!(matches!(
        &events[..],
        [Event::ChannelClosed {
            channel: 1,
            error: None
        }]
    ));
    assert!(matches!(c.methods()[..], [(1, Method::ChannelCloseOk(_))]));
    c.open_channel(1);
}

#[test]
fn client_close_is_answered_with_close_ok() {
    let mut c = Client::open();
    let events = c.send(
        0,
        ConnectionClose {
            reply_code: 200,
            ..Default::default()
        },
    );
    assert!(matches!(
        &events[..],
        [Event::ConnectionClosing { error: None }]
    ));
    assert!(matches!(
        c.methods()[..],
        [(0, Method::ConnectionCloseOk(_))]
    ));
    assert!(c.conn.is_closed());
}

#[test]
fn heartbeats_are_sent_when_idle_and_silence_is_fatal() {
    let mut c = Client::open();
    assert_eq!(c.conn.next_timeout(), Some(c.now + Duration::from_secs(5)));
    c.now += Duration::from_secs(5);
    let now = c.now;
    c.conn.handle_timeout(now);
    assert_eq!(c.frames(), [Frame::Heartbeat]);
    c.now += Duration::from_secs(15);
    let now = c.now;
    c.conn.handle_timeout(now);
    assert!(c.conn.is_closed());
}

#[test]
fn frame_errors_close_with_501() {
    let mut c = Client::open();
    c.send_bytes(&[1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 51, 0xAB]);
    assert_eq!(c.connection_close_code(), 501);
}
