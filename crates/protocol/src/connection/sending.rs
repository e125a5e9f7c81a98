//! What the connection sends: methods and content, deliveries, errors that
//! close a channel or the connection, and connection.blocked/unblocked.

use bytes::Bytes;
use std::time::Instant;
use warren_codec::{
    encode_deliver_frame, encode_method_frame, encode_raw_header_frame, ConnectionBlocked,
    ConnectionClose, ConnectionUnblocked, DeliverFields, Method, ReplyCode, ShortString,
    FRAME_BODY, FRAME_OVERHEAD,
};

use super::{Connection, Event, Phase};
use crate::channel::ChannelState;
use crate::error::AmqpError;

impl Connection {
    /// Closes the connection with a hard error (or any error, as RabbitMQ
    /// does for errors on channel 0).
    pub(super) fn connection_error(&mut self, error: AmqpError, now: Instant) {
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
        self.channels
            .insert(channel, ChannelState::Closing { crossed: false });
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

    pub(super) fn send_header_and_body(
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
}
