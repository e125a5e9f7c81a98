//! The connection state machine: handshake, tuning, channels, heartbeats,
//! content assembly and closing, with every protocol error mapped to the
//! reply code RabbitMQ uses.

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warren_codec::{
    class_id, decode_protocol_header, encode_deliver_frame, encode_heartbeat_frame,
    encode_method_frame, encode_raw_header_frame, BasicPublish, ChannelCloseOk, ChannelFlowOk,
    ChannelOpenOk, ConnectionBlocked, ConnectionClose, ConnectionCloseOk, ConnectionOpen,
    ConnectionOpenOk, ConnectionStart, ConnectionTune, ConnectionUnblocked,
    ConnectionUpdateSecretOk, ContentHeader, DeliverFields, FieldTable, FrameDecoder,
    HeaderSummary, LongString, Method, RawFrame, ReplyCode, ShortString, FRAME_BODY, FRAME_HEADER,
    FRAME_HEARTBEAT, FRAME_METHOD, FRAME_OVERHEAD, PROTOCOL_HEADER,
};

use crate::auth::{parse_sasl_response, Authenticator, VhostAccess};
use crate::channel::{Assembly, BodyBuilder, ChannelState, PartialMessage};
use crate::config::{ClientCapabilities, ConnectionConfig, Tuning};
use crate::error::AmqpError;
use crate::output::Output;

/// The smallest frame_max a client may ask for in tune-ok.
const MIN_FRAME_MAX: u32 = 8192;

/// RabbitMQ's check of a tune-ok value against the server's limit (0 = none).
fn negotiate(name: &str, client: u32, min: u32, server: u32) -> Result<(), AmqpError> {
    let (relation, limit) = if client != 0 && client < min {
        ("lower than the minimum", min)
    } else if server != 0 && (client == 0 || client > server) {
        ("higher than the maximum", server)
    } else {
        return Ok(());
    };
    let no_limit = if client == 0 && name == "channel_max" {
        " (no limit)"
    } else {
        ""
    };
    Err(AmqpError::new(
        ReplyCode::NotAllowed,
        format!("negotiated {name} = {client}{no_limit} is {relation} allowed value ({limit})"),
    ))
}

/// What the broker has to act on.
// Publish carries a ~400-byte content header; boxing it would cost an
// allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// Handshake done: the user is logged in to the vhost.
    Opened {
        user: String,
        vhost: String,
    },
    ChannelOpened(u16),
    /// A method for the broker (exchange, queue, basic, tx, confirm classes)
    /// on an open channel. Everything but basic.publish, which comes whole
    /// as [`Event::Publish`].
    Method {
        channel: u16,
        method: Method,
    },
    Publish(Publish),
    /// The channel is gone, closed by the client or by an error: its
    /// consumers go and its unacknowledged messages return to their queues.
    ChannelClosed {
        channel: u16,
        error: Option<AmqpError>,
    },
    /// The connection is closing: stop all work for it. `error` is what the
    /// server closed it with, `None` when the client closed it.
    ConnectionClosing {
        error: Option<AmqpError>,
    },
}

/// A basic.publish with its content, assembled.
#[derive(Debug)]
pub struct Publish {
    pub channel: u16,
    pub method: BasicPublish,
    /// The properties the broker acts on; the rest stay in `header_payload`.
    pub properties: HeaderSummary,
    /// The content header's payload as it arrived, to send on unchanged.
    pub header_payload: Bytes,
    pub body: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingProtocolHeader,
    AwaitingStartOk,
    AwaitingTuneOk,
    AwaitingOpen,
    Open,
    /// connection.close sent; waiting for close-ok.
    Closing,
    /// Nothing more to read; flush the output and close the socket.
    Closed,
}

impl Phase {
    /// RabbitMQ's names for the handshake states, used in error texts.
    fn name(self) -> &'static str {
        match self {
            Phase::AwaitingProtocolHeader | Phase::AwaitingStartOk => "starting",
            Phase::AwaitingTuneOk => "tuning",
            Phase::AwaitingOpen => "opening",
            Phase::Open => "running",
            Phase::Closing | Phase::Closed => "closing",
        }
    }
}

pub struct Connection {
    config: ConnectionConfig,
    auth: Arc<dyn Authenticator>,
    phase: Phase,
    decoder: FrameDecoder,
    tuning: Tuning,
    capabilities: ClientCapabilities,
    client_properties: FieldTable,
    user: Option<String>,
    channels: FxHashMap<u16, ChannelState>,
    /// The last message's assembly box, reused for the next.
    spare: Option<Box<PartialMessage>>,
    output: Output,
    events: VecDeque<Event>,
    last_received: Instant,
    last_sent: Instant,
    /// Handshake or close-ok deadline.
    deadline: Option<Instant>,
    /// A framing error left the input unparseable; it is discarded.
    input_broken: bool,
}

impl Connection {
    pub fn new(config: ConnectionConfig, auth: Arc<dyn Authenticator>, now: Instant) -> Self {
        let tuning = Tuning {
            channel_max: config.channel_max,
            frame_max: config.frame_max,
            heartbeat: 0,
        };
        Connection {
            deadline: Some(now + config.handshake_timeout),
            config,
            auth,
            phase: Phase::AwaitingProtocolHeader,
            decoder: FrameDecoder::default(),
            tuning,
            capabilities: ClientCapabilities::default(),
            client_properties: FieldTable::new(),
            user: None,
            channels: FxHashMap::default(),
            spare: None,
            output: Output::default(),
            events: VecDeque::new(),
            last_received: now,
            last_sent: now,
            input_broken: false,
        }
    }

    pub fn tuning(&self) -> Tuning {
        self.tuning
    }

    pub fn capabilities(&self) -> ClientCapabilities {
        self.capabilities
    }

    /// Handshake done and not closing: the broker's work may go on.
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Write what is in the output, then close the socket.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Bytes of message bodies received but not yet complete, over all
    /// channels: input the memory alarm must count.
    pub fn partial_body_bytes(&self) -> u64 {
        self.channels
            .values()
            .map(|c| match c {
                ChannelState::Open(Assembly::AwaitingBody(partial)) => partial.body.received(),
                _ => 0,
            })
            .sum()
    }

    pub fn is_channel_open(&self, channel: u16) -> bool {
        matches!(self.channels.get(&channel), Some(ChannelState::Open(_)))
    }

    pub fn output(&mut self) -> &mut Output {
        &mut self.output
    }

    /// Call whenever bytes arrive, even part of a frame: any traffic counts
    /// as a heartbeat.
    pub fn received_bytes(&mut self, now: Instant) {
        self.last_received = now;
    }

    /// The next event from `input`, consuming the frames it used; `None`
    /// when more bytes are needed or the connection is closed.
    pub fn next_event(&mut self, input: &mut BytesMut, now: Instant) -> Option<Event> {
        loop {
            if let Some(event) = self.events.pop_front() {
                return Some(event);
            }
            if self.phase == Phase::Closed {
                input.clear();
                return None;
            }
            if self.input_broken {
                input.clear();
                return None;
            }
            if self.phase == Phase::AwaitingProtocolHeader {
                match decode_protocol_header(input) {
                    Ok(false) => return None,
                    Ok(true) => self.send_start(now),
                    Err(_) => {
                        // Answer with the version we speak, then hang up.
                        self.output.buf().extend_from_slice(&PROTOCOL_HEADER);
                        self.phase = Phase::Closed;
                        input.clear();
                    }
                }
                continue;
            }
            match self.decoder.decode_raw(input) {
                Ok(None) => return None,
                Ok(Some(frame)) => {
                    if let Err(error) = self.handle_frame(frame, now) {
                        self.connection_error(error, now);
                    }
                }
                Err(error) => {
                    self.input_broken = true;
                    self.connection_error(error.into(), now);
                }
            }
        }
    }

    fn handle_frame(&mut self, frame: RawFrame, now: Instant) -> Result<(), AmqpError> {
        if frame.kind == FRAME_HEARTBEAT {
            // Validates the channel and empty payload; nothing else to do.
            frame.parse()?;
            return Ok(());
        }
        match self.phase {
            Phase::Open => self.handle_open_frame(frame, now),
            Phase::Closing => self.handle_closing_frame(frame, now),
            Phase::AwaitingStartOk | Phase::AwaitingTuneOk | Phase::AwaitingOpen => {
                self.handle_handshake_frame(frame, now)
            }
            Phase::AwaitingProtocolHeader | Phase::Closed => Ok(()),
        }
    }

    // ---- handshake -------------------------------------------------------

    fn send_start(&mut self, now: Instant) {
        self.phase = Phase::AwaitingStartOk;
        let start = ConnectionStart {
            version_major: 0,
            version_minor: 9,
            server_properties: self.config.server_properties.clone(),
            mechanisms: LongString::from_static("PLAIN AMQPLAIN"),
            locales: LongString::from_static("en_US"),
        };
        self.send_method(0, start.into(), now);
    }

    fn handle_handshake_frame(&mut self, frame: RawFrame, now: Instant) -> Result<(), AmqpError> {
        let method = match frame.parse()? {
            warren_codec::Frame::Method { channel: 0, method } => method,
            _ => {
                return Err(AmqpError::new(
                    ReplyCode::UnexpectedFrame,
                    format!(
                        "non-method frame on channel 0 in connection state {}",
                        self.phase.name()
                    ),
                ))
            }
        };
        match (self.phase, method) {
            (_, Method::ConnectionClose(_)) => {
                self.send_method(0, ConnectionCloseOk {}.into(), now);
                self.phase = Phase::Closed;
                Ok(())
            }
            (Phase::AwaitingStartOk, Method::ConnectionStartOk(start_ok)) => {
                self.capabilities =
                    ClientCapabilities::from_client_properties(&start_ok.client_properties);
                self.client_properties = start_ok.client_properties;
                let credentials = parse_sasl_response(
                    start_ok.mechanism.as_bytes(),
                    start_ok.response.as_bytes(),
                );
                match credentials {
                    Some(c) if self.auth.authenticate(&c, self.config.peer_is_loopback) => {
                        self.user = Some(c.username);
                        self.phase = Phase::AwaitingTuneOk;
                        let tune = ConnectionTune {
                            channel_max: self.config.channel_max,
                            frame_max: self.config.frame_max,
                            heartbeat: self.config.heartbeat,
                        };
                        self.send_method(0, tune.into(), now);
                        Ok(())
                    }
                    _ => {
                        let mechanism = start_ok.mechanism.to_string();
                        let error = AmqpError::new(
                            ReplyCode::AccessRefused,
                            format!("Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."),
                        );
                        if self.capabilities.authentication_failure_close {
                            self.connection_error(error, now);
                        } else {
                            // Older clients expect the socket to just close.
                            self.events
                                .push_back(Event::ConnectionClosing { error: Some(error) });
                            self.phase = Phase::Closed;
                        }
                        Ok(())
                    }
                }
            }
            (Phase::AwaitingTuneOk, Method::ConnectionTuneOk(tune_ok)) => {
                let method = (ConnectionTune::CLASS_ID, ConnectionTune::METHOD_ID);
                negotiate(
                    "frame_max",
                    tune_ok.frame_max,
                    MIN_FRAME_MAX,
                    self.config.frame_max,
                )
                .map_err(|e| e.on(method.0, method.1))?;
                negotiate(
                    "channel_max",
                    tune_ok.channel_max.into(),
                    1,
                    self.config.channel_max.into(),
                )
                .map_err(|e| e.on(method.0, method.1))?;
                self.tuning = Tuning {
                    channel_max: tune_ok.channel_max,
                    frame_max: tune_ok.frame_max,
                    heartbeat: tune_ok.heartbeat,
                };
                self.decoder.set_frame_max(tune_ok.frame_max);
                self.phase = Phase::AwaitingOpen;
                Ok(())
            }
            (Phase::AwaitingOpen, Method::ConnectionOpen(open)) => {
                let user = self.user.clone().unwrap_or_default();
                let vhost = open.virtual_host.to_string();
                let refused = match self.auth.vhost_access(&user, &vhost) {
                    VhostAccess::Granted => None,
                    VhostAccess::NoSuchVhost => Some(format!("vhost {vhost} not found")),
                    VhostAccess::Refused => Some(format!(
                        "access to vhost '{vhost}' refused for user '{user}'"
                    )),
                };
                if let Some(text) = refused {
                    return Err(AmqpError::new(ReplyCode::NotAllowed, text)
                        .on(ConnectionOpen::CLASS_ID, ConnectionOpen::METHOD_ID));
                }
                self.send_method(0, ConnectionOpenOk::default().into(), now);
                self.phase = Phase::Open;
                self.deadline = None;
                self.events.push_back(Event::Opened { user, vhost });
                Ok(())
            }
            (phase, method) => Err(AmqpError::new(
                ReplyCode::ChannelError,
                format!("unexpected method in connection state {}", phase.name()),
            )
            .on(method.info().class_id, method.info().method_id)),
        }
    }

    // ---- running ---------------------------------------------------------

    fn handle_open_frame(&mut self, frame: RawFrame, now: Instant) -> Result<(), AmqpError> {
        let channel = frame.channel;
        if channel == 0 {
            return self.handle_channel_zero(frame, now);
        }
        if channel > self.tuning.channel_max {
            return Err(AmqpError::new(
                ReplyCode::NotAllowed,
                format!(
                    "channel number {channel} is above the negotiated channel_max ({})",
                    self.tuning.channel_max
                ),
            ));
        }
        match self.channels.get_mut(&channel) {
            None => {
                let RawFrame {
                    kind: FRAME_METHOD,
                    payload,
                    ..
                } = frame
                else {
                    return Err(AmqpError::new(
                        ReplyCode::ChannelError,
                        "expected 'channel.open'",
                    ));
                };
                match Method::decode(&payload)? {
                    Method::ChannelOpen(_) => {
                        self.channels
                            .insert(channel, ChannelState::Open(Assembly::Idle));
                        self.send_method(channel, ChannelOpenOk::default().into(), now);
                        self.events.push_back(Event::ChannelOpened(channel));
                        Ok(())
                    }
                    other => Err(AmqpError::new(
                        ReplyCode::ChannelError,
                        "expected 'channel.open'",
                    )
                    .on(other.info().class_id, other.info().method_id)),
                }
            }
            Some(ChannelState::Closing) => {
                if frame.kind == FRAME_METHOD {
                    match Method::decode(&frame.payload)? {
                        Method::ChannelCloseOk(_) => {
                            self.channels.remove(&channel);
                        }
                        Method::ChannelClose(_) => {
                            // Both sides closed at once: the channel is not open, answer anyway.
                            encode_method_frame(
                                channel,
                                &ChannelCloseOk {}.into(),
                                self.output.buf(),
                            );
                            self.last_sent = now;
                            self.channels.remove(&channel);
                        }
                        _ => {}
                    }
                }
                Ok(())
            }
            Some(ChannelState::Open(assembly)) => {
                let assembly = std::mem::replace(assembly, Assembly::Idle);
                self.handle_channel_frame(channel, assembly, frame, now)
            }
        }
    }

    fn handle_channel_zero(&mut self, frame: RawFrame, now: Instant) -> Result<(), AmqpError> {
        if frame.kind != FRAME_METHOD {
            return Err(AmqpError::new(
                ReplyCode::UnexpectedFrame,
                "content frame on channel 0",
            ));
        }
        match Method::decode(&frame.payload)? {
            Method::ConnectionClose(_) => {
                self.send_method(0, ConnectionCloseOk {}.into(), now);
                self.phase = Phase::Closed;
                self.events
                    .push_back(Event::ConnectionClosing { error: None });
                Ok(())
            }
            Method::ConnectionUpdateSecret(_) => {
                // Passwords do not expire here; accept, as RabbitMQ's internal backend does.
                self.send_method(0, ConnectionUpdateSecretOk {}.into(), now);
                Ok(())
            }
            other => {
                let info = other.info();
                let text = if info.class_id == class_id::CONNECTION {
                    format!(
                        "unexpected method {} on channel 0 in connection state running",
                        info.name
                    )
                } else {
                    format!("method {} is not allowed on channel 0", info.name)
                };
                Err(AmqpError::new(ReplyCode::CommandInvalid, text)
                    .on(info.class_id, info.method_id))
            }
        }
    }

    fn handle_channel_frame(
        &mut self,
        channel: u16,
        assembly: Assembly,
        frame: RawFrame,
        now: Instant,
    ) -> Result<(), AmqpError> {
        let next = match (assembly, frame.kind) {
            (Assembly::Idle, FRAME_METHOD) => {
                self.handle_channel_method(channel, Method::decode(&frame.payload)?, now)?
            }
            (Assembly::Idle, _) => {
                return Err(AmqpError::new(
                    ReplyCode::UnexpectedFrame,
                    "expected method frame, got non method frame instead",
                ))
            }
            (Assembly::AwaitingHeader(publish), FRAME_HEADER) => {
                let properties = ContentHeader::summarize(&frame.payload)?;
                if properties.body_size > self.config.max_message_size {
                    let error = AmqpError::new(
                        ReplyCode::PreconditionFailed,
                        format!(
                            "message size {} is larger than configured max size {}",
                            properties.body_size, self.config.max_message_size
                        ),
                    )
                    .on(BasicPublish::CLASS_ID, BasicPublish::METHOD_ID);
                    self.channel_error(channel, error, now);
                    return Ok(());
                }
                if properties.body_size == 0 {
                    self.emit_publish(channel, publish, properties, frame.payload, Bytes::new());
                    Assembly::Idle
                } else {
                    let partial = PartialMessage {
                        publish,
                        body: BodyBuilder::new(properties.body_size),
                        properties,
                        header_payload: frame.payload,
                    };
                    Assembly::AwaitingBody(match self.spare.take() {
                        Some(mut spare) => {
                            *spare = partial;
                            spare
                        }
                        None => Box::new(partial),
                    })
                }
            }
            (Assembly::AwaitingBody(mut partial), FRAME_BODY) => {
                match partial.body.push(frame.payload)? {
                    Some(body) => {
                        let publish = std::mem::take(&mut partial.publish);
                        let properties = std::mem::take(&mut partial.properties);
                        let header_payload = std::mem::take(&mut partial.header_payload);
                        self.spare = Some(partial);
                        self.emit_publish(channel, publish, properties, header_payload, body);
                        Assembly::Idle
                    }
                    None => Assembly::AwaitingBody(partial),
                }
            }
            (Assembly::AwaitingHeader(_), _) => {
                return Err(AmqpError::new(
                    ReplyCode::UnexpectedFrame,
                    "expected content header for class 60, got non content header frame instead",
                ))
            }
            (Assembly::AwaitingBody(_), _) => {
                return Err(AmqpError::new(
                    ReplyCode::UnexpectedFrame,
                    "expected content body, got non content body frame instead",
                ))
            }
        };
        if let Some(ChannelState::Open(assembly)) = self.channels.get_mut(&channel) {
            *assembly = next;
        }
        Ok(())
    }

    fn emit_publish(
        &mut self,
        channel: u16,
        method: BasicPublish,
        properties: HeaderSummary,
        header_payload: Bytes,
        body: Bytes,
    ) {
        self.events.push_back(Event::Publish(Publish {
            channel,
            method,
            properties,
            header_payload,
            body,
        }));
    }

    /// A method on an open, idle channel; returns the channel's next assembly state.
    fn handle_channel_method(
        &mut self,
        channel: u16,
        method: Method,
        now: Instant,
    ) -> Result<Assembly, AmqpError> {
        let info = method.info();
        match method {
            Method::BasicPublish(publish) => return Ok(Assembly::AwaitingHeader(publish)),
            Method::ChannelOpen(_) => {
                return Err(
                    AmqpError::new(ReplyCode::ChannelError, "second 'channel.open' seen")
                        .on(info.class_id, info.method_id),
                )
            }
            Method::ChannelClose(_) => {
                self.send_method(channel, ChannelCloseOk {}.into(), now);
                self.channels.remove(&channel);
                self.events.push_back(Event::ChannelClosed {
                    channel,
                    error: None,
                });
            }
            // We never close a channel without waiting in Closing; a stray close-ok is ignored.
            Method::ChannelCloseOk(_) => {}
            Method::ChannelFlow(flow) if flow.active => {
                self.send_method(channel, ChannelFlowOk { active: true }.into(), now);
            }
            Method::ChannelFlow(_) => {
                return Err(AmqpError::new(ReplyCode::NotImplemented, "active=false")
                    .on(info.class_id, info.method_id))
            }
            Method::ChannelFlowOk(_) => {}
            _ if info.class_id == class_id::CONNECTION => {
                return Err(AmqpError::new(
                    ReplyCode::CommandInvalid,
                    format!("method {} is only allowed on channel 0", info.name),
                )
                .on(info.class_id, info.method_id))
            }
            _ if !info.server_receives => {
                return Err(
                    AmqpError::new(ReplyCode::CommandInvalid, "unimplemented method")
                        .on(info.class_id, info.method_id),
                )
            }
            method => self.events.push_back(Event::Method { channel, method }),
        }
        Ok(Assembly::Idle)
    }

    // ---- closing ---------------------------------------------------------

    fn handle_closing_frame(&mut self, frame: RawFrame, now: Instant) -> Result<(), AmqpError> {
        if frame.kind == FRAME_METHOD && frame.channel == 0 {
            match Method::decode(&frame.payload)? {
                Method::ConnectionCloseOk(_) => self.phase = Phase::Closed,
                Method::ConnectionClose(_) => {
                    self.send_method(0, ConnectionCloseOk {}.into(), now);
                    self.phase = Phase::Closed;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Closes the connection with a hard error (or any error, as RabbitMQ
    /// does for errors on channel 0).
    fn connection_error(&mut self, error: AmqpError, now: Instant) {
        if matches!(self.phase, Phase::Closing | Phase::Closed) {
            return;
        }
        let close = ConnectionClose {
            reply_code: error.code.code(),
            reply_text: error.reply_text(),
            class_id: error.class_id,
            method_id: error.method_id,
        };
        self.send_method(0, close.into(), now);
        self.phase = Phase::Closing;
        self.deadline = Some(now + self.config.close_timeout);
        self.events
            .push_back(Event::ConnectionClosing { error: Some(error) });
    }

    /// Closes `channel` with a soft error; hard errors close the connection.
    pub fn channel_error(&mut self, channel: u16, error: AmqpError, now: Instant) {
        if error.is_hard() || channel == 0 {
            return self.connection_error(error, now);
        }
        if !self.is_channel_open(channel) {
            return;
        }
        let close = warren_codec::ChannelClose {
            reply_code: error.code.code(),
            reply_text: error.reply_text(),
            class_id: error.class_id,
            method_id: error.method_id,
        };
        self.send_method(channel, close.into(), now);
        self.channels.insert(channel, ChannelState::Closing);
        self.events.push_back(Event::ChannelClosed {
            channel,
            error: Some(error),
        });
    }

    /// Server-initiated close, e.g. 320 CONNECTION_FORCED on shutdown.
    pub fn close(&mut self, code: ReplyCode, text: impl Into<String>, now: Instant) {
        match self.phase {
            Phase::Open => self.connection_error(AmqpError::new(code, text), now),
            Phase::Closing | Phase::Closed => {}
            _ => self.phase = Phase::Closed,
        }
    }

    // ---- sending ---------------------------------------------------------

    /// Sends a method on a channel; dropped if the channel is not open (its
    /// close is under way), except on channel 0.
    pub fn send_method(&mut self, channel: u16, method: Method, now: Instant) {
        if channel != 0 && !self.is_channel_open(channel) {
            return;
        }
        encode_method_frame(channel, &method, self.output.buf());
        self.last_sent = now;
    }

    /// Sends a content-carrying method (deliver, get-ok, return) with a
    /// header payload kept from the publish and the body, split to fit frame_max.
    pub fn send_content(
        &mut self,
        channel: u16,
        method: &Method,
        header_payload: &[u8],
        body: &Bytes,
        now: Instant,
    ) {
        if !self.is_channel_open(channel) {
            return;
        }
        encode_method_frame(channel, method, self.output.buf());
        self.send_header_and_body(channel, header_payload, body, now);
    }

    /// A basic.deliver with its content: the hot path of every consumer,
    /// encoded from borrowed fields.
    pub fn send_delivery(
        &mut self,
        channel: u16,
        fields: &DeliverFields<'_>,
        header_payload: &[u8],
        body: &Bytes,
        now: Instant,
    ) {
        if !self.is_channel_open(channel) {
            return;
        }
        encode_deliver_frame(channel, fields, self.output.buf());
        self.send_header_and_body(channel, header_payload, body, now);
    }

    fn send_header_and_body(
        &mut self,
        channel: u16,
        header_payload: &[u8],
        body: &Bytes,
        now: Instant,
    ) {
        encode_raw_header_frame(channel, header_payload, self.output.buf());
        let max = match self.tuning.frame_max as usize {
            0 => usize::MAX,
            max => max - FRAME_OVERHEAD,
        };
        let mut offset = 0;
        while offset < body.len() {
            let end = (offset + max).min(body.len());
            let buf = self.output.buf();
            buf.extend_from_slice(&[FRAME_BODY]);
            buf.extend_from_slice(&channel.to_be_bytes());
            buf.extend_from_slice(&((end - offset) as u32).to_be_bytes());
            self.output.push_body(body, offset..end);
            self.output
                .buf()
                .extend_from_slice(&[warren_codec::FRAME_END]);
            offset = end;
        }
        self.last_sent = now;
    }

    /// connection.blocked, if the client said it understands it.
    pub fn block(&mut self, reason: &str, now: Instant) {
        if self.capabilities.connection_blocked && self.is_open() {
            let reason = ShortString::try_from(reason).unwrap_or_default();
            self.send_method(0, ConnectionBlocked { reason }.into(), now);
        }
    }

    pub fn unblock(&mut self, now: Instant) {
        if self.capabilities.connection_blocked && self.is_open() {
            self.send_method(0, ConnectionUnblocked {}.into(), now);
        }
    }

    // ---- time ------------------------------------------------------------

    fn heartbeat(&self) -> Option<Duration> {
        match (self.phase, self.tuning.heartbeat) {
            (Phase::Open, secs) if secs > 0 => Some(Duration::from_secs(secs.into())),
            _ => None,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        let heartbeat = self
            .heartbeat()
            .map(|hb| (self.last_sent + hb / 2).min(self.last_received + hb * 2));
        match (heartbeat, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends a heartbeat on a quiet connection; gives up on a silent client
    /// (two intervals, as RabbitMQ), a stalled handshake or a missing close-ok.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            if self.phase != Phase::Closing {
                let error = AmqpError::new(ReplyCode::ConnectionForced, "handshake timeout");
                self.events
                    .push_back(Event::ConnectionClosing { error: Some(error) });
            }
            self.phase = Phase::Closed;
            return;
        }
        let Some(hb) = self.heartbeat() else { return };
        if now >= self.last_received + hb * 2 {
            let error = AmqpError::new(
                ReplyCode::ConnectionForced,
                format!("missed heartbeats from client, timeout: {}s", hb.as_secs()),
            );
            self.events
                .push_back(Event::ConnectionClosing { error: Some(error) });
            self.phase = Phase::Closed;
        } else if now >= self.last_sent + hb / 2 {
            encode_heartbeat_frame(self.output.buf());
            self.last_sent = now;
        }
    }
}
