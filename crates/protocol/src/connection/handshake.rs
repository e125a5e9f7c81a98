//! The handshake: connection.start, start-ok (SASL), tune and tune-ok
//! negotiated as RabbitMQ does, connection.open and the vhost check.

use std::time::Instant;
use warren_codec::{
    encode_method_frame, frame_snippet, ChannelCloseOk, ChannelOpen, ChannelOpenOk,
    ConnectionCloseOk, ConnectionOpen, ConnectionOpenOk, ConnectionStart, ConnectionTune,
    LongString, Method, RawFrame, ReplyCode, FRAME_METHOD,
};

use super::{Connection, Event, Phase};
use crate::auth::{parse_sasl_response, VhostAccess};
use crate::channel::{Assembly, ChannelState};
use crate::config::{ClientCapabilities, Tuning};
use crate::error::AmqpError;

/// The smallest frame_max a client may ask for in tune-ok.
const MIN_FRAME_MAX: u32 = 4096;

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

impl Connection {
    pub(super) fn send_start(&mut self, now: Instant) {
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

    pub(super) fn handle_handshake_frame(
        &mut self,
        frame: RawFrame,
        now: Instant,
    ) -> Result<(), AmqpError> {
        if frame.kind != FRAME_METHOD || frame.channel != 0 {
            return Err(AmqpError::new(
                ReplyCode::UnexpectedFrame,
                frame_snippet(frame.kind, &frame.payload),
            ));
        }
        let method = Method::decode(&frame.payload)?;
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
                    credentials => {
                        if credentials.is_none() {
                            self.auth.unreadable(start_ok.mechanism.as_bytes());
                        }
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

    pub(super) fn handle_open_frame(
        &mut self,
        frame: RawFrame,
        now: Instant,
    ) -> Result<(), AmqpError> {
        let channel = frame.channel;
        if channel == 0 {
            return self.handle_channel_zero(frame, now);
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
                        // As RabbitMQ: channel_max bounds how many channels
                        // are open, not their numbers (any of 1..=65535).
                        let open = self.channels.len();
                        if open >= usize::from(self.tuning.channel_max) {
                            return Err(AmqpError::new(
                                ReplyCode::NotAllowed,
                                format!(
                                    "number of channels opened ({open}) has reached the negotiated channel_max ({})",
                                    self.tuning.channel_max
                                ),
                            )
                            .on(ChannelOpen::CLASS_ID, ChannelOpen::METHOD_ID));
                        }
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
            Some(ChannelState::Closing { crossed }) => {
                if frame.kind != FRAME_METHOD {
                    return Ok(());
                }
                match Method::decode(&frame.payload)? {
                    Method::ChannelCloseOk(_) => {
                        self.channels.remove(&channel);
                    }
                    Method::ChannelClose(_) => {
                        // Both sides closed at once: answer theirs, and
                        // still wait for the close-ok that answers ours.
                        *crossed = true;
                        encode_method_frame(channel, &ChannelCloseOk {}.into(), self.output.buf());
                        self.last_sent = now;
                    }
                    Method::ChannelOpen(_) if *crossed => {
                        // A client that took our close-ok as the end of
                        // both closes reopens the channel: let it.
                        self.channels.remove(&channel);
                        return self.handle_open_frame(frame, now);
                    }
                    _ => {}
                }
                Ok(())
            }
            Some(ChannelState::Open(assembly)) => {
                let assembly = std::mem::replace(assembly, Assembly::Idle);
                self.handle_channel_frame(channel, assembly, frame, now)
            }
        }
    }
}
