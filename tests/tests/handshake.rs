//! The handshake and malformed input, over raw sockets: exact close codes.

use bytes::{BufMut, BytesMut};
use std::time::Duration;
use warren_codec::*;
use warren_tests::{RawClient, TestServer};

#[tokio::test]
async fn connection_start_announces_rabbitmqs_capabilities() {
    let server = TestServer::start().await;
    let mut c = RawClient::connect(server.addr).await;
    c.send_bytes(&PROTOCOL_HEADER).await;
    let Some((0, Method::ConnectionStart(start))) = c.method().await else {
        panic!()
    };
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    assert_eq!(start.mechanisms, "PLAIN AMQPLAIN");
    assert_eq!(start.locales, "en_US");
    let props = &start.server_properties;
    for key in [
        "product",
        "version",
        "platform",
        "copyright",
        "information",
        "cluster_name",
    ] {
        assert!(props.get(key).is_some(), "server property {key}");
    }
    let Some(FieldValue::Table(caps)) = props.get("capabilities") else {
        panic!()
    };
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "connection.blocked",
        "authentication_failure_close",
        "per_consumer_qos",
    ] {
        assert_eq!(
            caps.get(cap),
            Some(FieldValue::Bool(true)),
            "capability {cap}"
        );
    }
}

#[tokio::test]
async fn the_0_9_header_opens_a_0_9_1_connection() {
    let server = TestServer::start().await;
    let mut c =
        RawClient::open_after_header(server.addr, *b"AMQP\x01\x01\x00\x09", 0, true, &[]).await;
    c.send(
        1,
        QueueDeclare {
            queue: ShortString::from_static("from-0-9"),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(
        c.method().await,
        Some((1, Method::QueueDeclareOk(_)))
    ));
}

#[tokio::test]
async fn wrong_protocol_header_gets_amqp_0_9_1_back_and_a_close() {
    let server = TestServer::start().await;
    for header in [b"AMQP\x01\x01\x08\x00", b"AMQP\x01\x01\x09\x01"] {
        let mut c = RawClient::connect(server.addr).await;
        c.send_bytes(header).await;
        assert_eq!(c.read_to_end().await, PROTOCOL_HEADER, "0-8 is refused");
    }
    let mut c = RawClient::connect(server.addr).await;
    c.send_bytes(b"GET / HTTP/1.1\r\n\r\n").await;
    // The socket closes at once (RabbitMQ does not wait either); the
    // linger for a finished connection's last frames is a second.
    let started = std::time::Instant::now();
    assert_eq!(c.read_to_end().await, PROTOCOL_HEADER);
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn bad_frame_end_is_501() {
    let server = TestServer::start().await;
    let mut c = RawClient::open(server.addr, 0, true).await;
    let mut buf = BytesMut::new();
    encode_method_frame(1, &BasicQos::default().into(), &mut buf);
    let last = buf.len() - 1;
    buf[last] = 0xAB;
    c.send_bytes(&buf).await;
    assert_eq!(c.expect_connection_close().await.0, 501);
}

#[tokio::test]
async fn oversized_frame_is_501_from_its_header() {
    let server = TestServer::start().await;
    let mut c = RawClient::open(server.addr, 0, true).await;
    let mut header = BytesMut::new();
    header.put_u8(3);
    header.put_u16(1);
    header.put_u32(1_000_000);
    // Only the 7-byte header is sent: the server must not wait for the rest.
    c.send_bytes(&header).await;
    assert_eq!(c.expect_connection_close().await.0, 501);
}

#[tokio::test]
async fn body_without_header_is_505() {
    let server = TestServer::start().await;
    let mut c = RawClient::open(server.addr, 0, true).await;
    let mut buf = BytesMut::new();
    encode_method_frame(1, &BasicPublish::default().into(), &mut buf);
    encode_body_frame(1, b"no header", &mut buf);
    c.send_bytes(&buf).await;
    assert_eq!(c.expect_connection_close().await.0, 505);
}

#[tokio::test]
async fn unknown_method_is_540() {
    let server = TestServer::start().await;
    let mut c = RawClient::open(server.addr, 0, true).await;
    c.send_bytes(&[1, 0, 1, 0, 0, 0, 4, 0, 60, 0, 99, 0xCE])
        .await;
    assert_eq!(c.expect_connection_close().await.0, 540);
}

#[tokio::test]
async fn frame_max_below_4096_is_530() {
    let server = TestServer::start().await;
    let mut c = RawClient::connect(server.addr).await;
    c.send_bytes(&PROTOCOL_HEADER).await;
    c.method().await;
    c.send(
        0,
        ConnectionStartOk {
            mechanism: ShortString::from_static("PLAIN"),
            response: LongString::from("\0guest\0guest"),
            locale: ShortString::from_static("en_US"),
            ..Default::default()
        },
    )
    .await;
    c.method().await;
    c.send(
        0,
        ConnectionTuneOk {
            channel_max: 2047,
            frame_max: 4095,
            heartbeat: 0,
        },
    )
    .await;
    let (code, text) = c.expect_connection_close().await;
    assert_eq!(code, 530);
    assert_eq!(
        text,
        "NOT_ALLOWED - negotiated frame_max = 4095 is lower than the minimum allowed value (4096)"
    );
}

#[tokio::test]
async fn a_client_at_the_spec_minimum_frame_max_works() {
    use lapin::options::*;
    let server = TestServer::start().await;
    let conn = warren_tests::connect(&format!("{}?frame_max=4096", server.uri()))
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_declare(
        "small-frames",
        QueueDeclareOptions::default(),
        Default::default(),
    )
    .await
    .unwrap();
    let body = vec![7u8; 10_000];
    ch.basic_publish(
        "",
        "small-frames",
        BasicPublishOptions::default(),
        &body,
        lapin::BasicProperties::default(),
    )
    .await
    .unwrap();
    let got = loop {
        if let Some(got) = ch
            .basic_get("small-frames", BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            break got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(
        got.delivery.data, body,
        "a body split into 4 KiB frames both ways"
    );
}

#[tokio::test]
async fn second_channel_open_is_504_and_any_channel_number_opens() {
    let server = TestServer::start().await;
    let mut c = RawClient::open(server.addr, 0, true).await;
    c.send(1, ChannelOpen::default()).await;
    assert_eq!(c.expect_connection_close().await.0, 504);
    // channel_max (2047) bounds how many are open, not their numbers.
    let mut c = RawClient::open(server.addr, 0, false).await;
    c.send(65535, ChannelOpen::default()).await;
    assert!(
        matches!(c.method().await, Some((65535, Method::ChannelOpenOk(_)))),
        "channel 65535 opens"
    );
}

#[tokio::test]
async fn channel_flow_active_false_is_540() {
    let server = TestServer::start().await;
    let mut c = RawClient::open(server.addr, 0, true).await;
    c.send(1, ChannelFlow { active: true }).await;
    assert!(matches!(
        c.method().await,
        Some((1, Method::ChannelFlowOk(ChannelFlowOk { active: true })))
    ));
    c.send(1, ChannelFlow { active: false }).await;
    assert_eq!(c.expect_connection_close().await.0, 540);
}

#[tokio::test]
async fn heartbeats_flow_on_an_idle_connection_and_silence_disconnects() {
    let server = TestServer::start().await;
    let mut c = RawClient::open(server.addr, 1, false).await;
    // Heartbeat 1 s: the server sends one within about half a second.
    let frame = tokio::time::timeout(Duration::from_secs(2), c.frame())
        .await
        .unwrap();
    assert_eq!(frame, Some(Frame::Heartbeat));
    // A client silent for two intervals is disconnected.
    let start = std::time::Instant::now();
    while c.frame().await.is_some() {}
    assert!(start.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn wrong_password_is_403_for_clients_that_ask() {
    let server = TestServer::start().await;
    let error = warren_tests::connect(&format!("amqp://guest:wrong@{}/%2f", server.addr))
        .await
        .unwrap_err();
    let text = format!("{error:?}");
    assert!(
        text.contains("403") || text.contains("ACCESS_REFUSED"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_vhost_is_530() {
    let server = TestServer::start().await;
    let error = warren_tests::connect(&format!("amqp://guest:guest@{}/nope", server.addr))
        .await
        .unwrap_err();
    let text = format!("{error:?}");
    assert!(
        text.contains("530") || text.contains("NOT_ALLOWED"),
        "{text}"
    );
}

#[tokio::test]
async fn guest_is_refused_from_a_non_loopback_address() {
    // The server cannot be reached from a non-loopback address in a test,
    // so the rule is checked where it lives: in the user store.
    use warren_protocol::{Authenticator, Credentials};
    let users = warren::users::PeerAuth {
        users: std::sync::Arc::new(warren::users::Users::from_config(&warren::Config::default())),
        peer: "192.0.2.1:40000".parse().unwrap(),
    };
    let guest = Credentials {
        mechanism: "PLAIN",
        username: "guest".into(),
        password: "guest".into(),
    };
    assert!(!users.authenticate(&guest, false));
}

#[tokio::test]
async fn guest_may_use_an_ipv6_listener_from_ipv4_loopback() {
    // A client of 127.0.0.1 reaches `[::]` as ::ffff:127.0.0.1.
    let server =
        TestServer::start_with(|c| c.listeners.tcp = vec!["[::]:0".parse().unwrap()]).await;
    let uri = format!("amqp://guest:guest@127.0.0.1:{}/%2f", server.addr.port());
    let conn = warren_tests::connect(&uri).await.expect("guest is let in");
    conn.close(200, "bye").await.unwrap();
}

#[tokio::test]
async fn wrong_password_just_closes_the_socket_for_clients_that_do_not_ask() {
    let server = TestServer::start().await;
    let mut c = RawClient::connect(server.addr).await;
    c.send_bytes(&PROTOCOL_HEADER).await;
    c.method().await;
    c.send(
        0,
        ConnectionStartOk {
            mechanism: ShortString::from_static("PLAIN"),
            response: LongString::from("\0guest\0wrong"),
            locale: ShortString::from_static("en_US"),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        c.read_to_end().await,
        b"",
        "no frame, just the end of the stream"
    );
}

#[tokio::test]
async fn the_handshake_timeout_is_in_milliseconds() {
    let server = TestServer::start_with(|c| c.limits.handshake_timeout = 300).await;
    let mut c = RawClient::connect(server.addr).await;
    c.send_bytes(&PROTOCOL_HEADER).await;
    let started = std::time::Instant::now();
    // connection.start arrives, then nothing more is sent: the server hangs up.
    let _ = c.read_to_end().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
}
