//! Closes from both sides in every order: channel.close and close-ok, and
//! connection.close and close-ok, crossing on the wire. Every close
//! completes, and the connection's other channels never notice.

use warren_codec::*;
use warren_protocol::*;

mod common;
use common::*;

fn client_close() -> ChannelClose {
    ChannelClose {
        reply_code: 200,
        reply_text: ShortString::from_static("bye"),
        class_id: 0,
        method_id: 0,
    }
}

fn connection_close() -> ConnectionClose {
    ConnectionClose {
        reply_code: 200,
        reply_text: ShortString::from_static("bye"),
        class_id: 0,
        method_id: 0,
    }
}

/// The broker's error for channel 1, as after a publish to a missing exchange.
fn server_closes_channel_1(c: &mut Client) {
    let error = AmqpError::new(ReplyCode::NotFound, "no exchange 'x' in vhost '/'");
    c.conn.channel_error(1, error, c.now);
    assert_eq!(c.channel_close_code(1), 404);
}

/// Channel 2 answers, and channel 1 opens again.
fn both_channels_work(c: &mut Client) {
    c.send(2, ChannelFlow { active: true });
    assert!(matches!(&c.methods()[..], [(2, Method::ChannelFlowOk(_))]));
    c.open_channel(1);
    assert!(c.conn.is_open());
}

fn two_channels() -> Client {
    let mut c = Client::open();
    c.open_channel(1);
    c.open_channel(2);
    c
}

#[test]
fn server_close_then_client_close_ok() {
    let mut c = two_channels();
    server_closes_channel_1(&mut c);
    c.send(1, ChannelCloseOk {});
    assert!(c.methods().is_empty());
    both_channels_work(&mut c);
}

#[test]
fn server_close_crossing_client_close_then_client_close_ok() {
    let mut c = two_channels();
    server_closes_channel_1(&mut c);
    c.send(1, client_close());
    assert!(matches!(&c.methods()[..], [(1, Method::ChannelCloseOk(_))]));
    // The client answers our close too (the Go client does).
    c.send(1, ChannelCloseOk {});
    assert!(c.methods().is_empty());
    both_channels_work(&mut c);
}

#[test]
fn server_close_crossing_client_close_then_reopen_without_close_ok() {
    let mut c = two_channels();
    server_closes_channel_1(&mut c);
    c.send(1, client_close());
    c.methods();
    both_channels_work(&mut c);
}

#[test]
fn frames_in_flight_on_a_closing_channel_are_dropped() {
    let mut c = two_channels();
    server_closes_channel_1(&mut c);
    let mut buf = bytes::BytesMut::new();
    let header = ContentHeader {
        class_id: 60,
        weight: 0,
        body_size: 3,
        properties: Default::default(),
    };
    encode_content(
        1,
        &BasicPublish::default().into(),
        &header,
        b"abc",
        4096,
        &mut buf,
    );
    let events = c.send_bytes(&buf);
    assert!(
        !events.iter().any(|e| matches!(e, Event::Publish(_))),
        "{events:?}"
    );
    assert!(c.methods().is_empty());
    c.send(1, ChannelCloseOk {});
    both_channels_work(&mut c);
}

#[test]
fn client_close_then_a_late_server_error_for_it() {
    let mut c = two_channels();
    c.send(1, client_close());
    assert!(matches!(&c.methods()[..], [(1, Method::ChannelCloseOk(_))]));
    // The broker's answer to something sent before the close comes late.
    let error = AmqpError::new(ReplyCode::NotFound, "no queue 'q' in vhost '/'");
    c.conn.channel_error(1, error, c.now);
    assert!(
        c.methods().is_empty(),
        "nothing is sent for a closed channel"
    );
    both_channels_work(&mut c);
}

#[test]
fn server_connection_close_crossing_client_connection_close() {
    let mut c = two_channels();
    c.conn.close(ReplyCode::ConnectionForced, "shutdown", c.now);
    assert_eq!(c.connection_close_code(), 320);
    c.send(0, connection_close());
    assert!(matches!(
        &c.methods()[..],
        [(0, Method::ConnectionCloseOk(_))]
    ));
    assert!(c.conn.is_closed());
}

#[test]
fn server_connection_close_then_client_close_ok_with_channel_frames_between() {
    let mut c = two_channels();
    c.conn.close(ReplyCode::ConnectionForced, "shutdown", c.now);
    assert_eq!(c.connection_close_code(), 320);
    // What the client sent before it saw our close is dropped.
    c.send(1, client_close());
    c.send(2, ChannelFlow { active: true });
    assert!(c.methods().is_empty());
    c.send(0, ConnectionCloseOk {});
    assert!(c.conn.is_closed());
}

#[test]
fn client_connection_close_while_a_channel_close_is_in_flight() {
    let mut c = two_channels();
    server_closes_channel_1(&mut c);
    c.send(0, connection_close());
    assert!(matches!(
        &c.methods()[..],
        [(0, Method::ConnectionCloseOk(_))]
    ));
    assert!(c.conn.is_closed());
}

#[test]
fn client_connection_close_crossing_a_server_connection_close() {
    let mut c = two_channels();
    c.send(0, connection_close());
    assert!(matches!(
        &c.methods()[..],
        [(0, Method::ConnectionCloseOk(_))]
    ));
    // Our own close, decided before theirs arrived, is not sent after it.
    c.conn.close(ReplyCode::ConnectionForced, "shutdown", c.now);
    assert!(c.methods().is_empty());
    assert!(c.conn.is_closed());
}
