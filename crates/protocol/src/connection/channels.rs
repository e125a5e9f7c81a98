//! Frames once the connection is open: channel 0's methods, channel
//! lifecycle, content assembly into publishes, and what a closing
//! connection still accepts.

use bytes::Bytes;
use std::time::Instant;
use warren_codec::{
    class_id, frame_snippet, BasicPublish, ChannelCloseOk, ChannelFlowOk, ConnectionCloseOk,
    ConnectionUpdateSecretOk, ContentHeader, HeaderSummary, Method, RawFrame, ReplyCode,
    FRAME_BODY, FRAME_HEADER, FRAME_METHOD,
};

use super::{Connection, Event, Phase, Publish};
use crate::channel::{Assembly, BodyBuilder, ChannelState, PartialMessage};
use crate::error::AmqpError;

impl Connection {
    pub(super) fn handle_channel_zero(
        &mut self,
        frame: RawFrame,
        now: Instant,
    ) -> Result<(), AmqpError> {
        if frame.kind != FRAME_METHOD {
            return Err(AmqpError::new(
                ReplyCode::UnexpectedFrame,
                frame_snippet(frame.kind, &frame.payload),
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

    pub(super) fn handle_channel_frame(
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

    pub(super) fn emit_publish(
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
    pub(super) fn handle_channel_method(
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

    pub(super) fn handle_closing_frame(
        &mut self,
        frame: RawFrame,
        now: Instant,
    ) -> Result<(), AmqpError> {
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
}
