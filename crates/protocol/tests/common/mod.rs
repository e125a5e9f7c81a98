//! The scripted client the state-machine tests drive the connection with,
//! frame by frame, without sockets.
#![allow(dead_code)]

use bytes::BytesMut;
use std::sync::Arc;
use std::time::Instant;
use warren_codec::*;
use warren_protocol::*;

pub struct Users;

impl Authenticator for Users {
    fn authenticate(&self, c: &Credentials, _loopback: bool) -> bool {
        c.username == "guest" && c.password == "guest"
    }
    fn vhost_access(&self, _user: &str, vhost: &str) -> VhostAccess {
        match vhost {
            "/" => VhostAccess::Granted,
            "private" => VhostAccess::Refused,
            _ => VhostAccess::NoSuchVhost,
        }
    }
}

pub struct Client {
    pub conn: Connection,
    pub input: BytesMut,
    pub now: Instant,
    decoder: FrameDecoder,
    received: BytesMut,
}

impl Client {
    pub fn new() -> Self {
        let config = ConnectionConfig {
            heartbeat: 10,
            ..Default::default()
        };
        let now = Instant::now();
        Client {
            conn: Connection::new(config, Arc::new(Users), now),
            input: BytesMut::new(),
            now,
            decoder: FrameDecoder::new(0),
            received: BytesMut::new(),
        }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.input.extend_from_slice(bytes);
        self.conn.received_bytes(self.now);
        let mut events = Vec::new();
        while let Some(event) = self.conn.next_event(&mut self.input, self.now) {
            events.push(event);
        }
        events
    }

    pub fn send(&mut self, channel: u16, method: impl Into<Method>) -> Vec<Event> {
        let mut buf = BytesMut::new();
        encode_method_frame(channel, &method.into(), &mut buf);
        self.send_bytes(&buf)
    }

    pub fn frames(&mut self) -> Vec<Frame> {
        for chunk in self.conn.output().drain() {
            self.received.extend_from_slice(&chunk);
        }
        let mut frames = Vec::new();
        while let Some(frame) = self.decoder.decode(&mut self.received).unwrap() {
            frames.push(frame);
        }
        frames
    }

    pub fn methods(&mut self) -> Vec<(u16, Method)> {
        self.frames()
            .into_iter()
            .filter_map(|f| match f {
                Frame::Method { channel, method } => Some((channel, method)),
                _ => None,
            })
            .collect()
    }

    pub fn start_ok(user: &str, pass: &str, auth_failure_close: bool) -> ConnectionStartOk {
        let caps = FieldTable::new().with(
            "authentication_failure_close",
            FieldValue::Bool(auth_failure_close),
        );
        ConnectionStartOk {
            client_properties: FieldTable::new().with("capabilities", FieldValue::Table(caps)),
            mechanism: ShortString::from_static("PLAIN"),
            response: LongString::from(format!("\0{user}\0{pass}")),
            locale: ShortString::from_static("en_US"),
        }
    }

    pub fn open() -> Self {
        let mut c = Client::new();
        c.send_bytes(&PROTOCOL_HEADER);
        c.send(0, Client::start_ok("guest", "guest", true));
        c.send(
            0,
            ConnectionTuneOk {
                channel_max: 2047,
                frame_max: 131_072,
                heartbeat: 10,
            },
        );
        let events = c.send(
            0,
            ConnectionOpen {
                virtual_host: ShortString::from_static("/"),
                ..Default::default()
            },
        );
        assert!(
            matches!(&events[..], [Event::Opened { user, vhost }] if user == "guest" && vhost == "/")
        );
        c.frames();
        c
    }

    pub fn open_channel(&mut self, channel: u16) {
        let events = self.send(channel, ChannelOpen::default());
        assert!(matches!(events[..], [Event::ChannelOpened(n)] if n == channel));
        assert!(matches!(
            &self.methods()[..],
            [(_, Method::ChannelOpenOk(_))]
        ));
    }

    /// The code of the connection.close the server sent.
    pub fn connection_close_code(&mut self) -> u16 {
        match self.methods().last() {
            Some((0, Method::ConnectionClose(close))) => close.reply_code,
            other => panic!("expected connection.close, got {other:?}"),
        }
    }

    pub fn channel_close_code(&mut self, channel: u16) -> u16 {
        match self.methods().last() {
            Some((n, Method::ChannelClose(close))) if *n == channel => close.reply_code,
            other => panic!("expected channel.close, got {other:?}"),
        }
    }
}
