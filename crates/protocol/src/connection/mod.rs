//! The connection state machine: its state and events, reading frames and
//! dispatching them by phase. The phases' work lives beside this file:
//! the handshake (`handshake.rs`), channels and content assembly
//! (`channels.rs`), what is sent (`sending.rs`), heartbeats and deadlines
//! (`liveness.rs`). Every protocol error maps to the reply code RabbitMQ uses.

mod channels;
mod handshake;
mod liveness;
mod sending;

use bytes::{Bytes, BytesMut};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;
use warren_codec::{
    decode_protocol_header, BasicPublish, FieldTable, FrameDecoder, HeaderSummary, Method,
    RawFrame, FRAME_HEARTBEAT, PROTOCOL_HEADER,
};

use crate::auth::Authenticator;
use crate::channel::{Assembly, ChannelState, PartialMessage};
use crate::config::{ClientCapabilities, ConnectionConfig, Tuning};
use crate::error::AmqpError;
use crate::output::Output;

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
    /// The client's protocol header was not AMQP 0-9-1.
    header_refused: bool,
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
            header_refused: false,
        }
    }

    /// What the client said about itself in connection.start-ok.
    pub fn client_properties(&self) -> &FieldTable {
        &self.client_properties
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

    /// Closed at once because the protocol header was not ours: the
    /// socket can go without waiting for the client (RabbitMQ does not).
    pub fn refused_protocol_header(&self) -> bool {
        self.header_refused
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
                        self.header_refused = true;
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
}
