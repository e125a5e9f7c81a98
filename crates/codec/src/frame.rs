//! Frames: a streaming decoder over a read buffer, and encoders.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::content::ContentHeader;
use crate::error::CodecError;
use crate::generated::{
    Method, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD, FRAME_MIN_SIZE,
};

/// Type, channel and payload size.
pub const FRAME_HEADER_SIZE: usize = 7;
/// The header plus the frame-end octet: what a frame costs beyond its payload.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_SIZE + 1;

/// One decoded frame. Payloads share the read buffer's memory.
// A content header is ~400 bytes; boxing it would cost an allocation per
// message, moving it costs a memcpy.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Method { channel: u16, method: Method },
    Header { channel: u16, header: ContentHeader },
    Body { channel: u16, payload: Bytes },
    Heartbeat,
}

impl Frame {
    pub fn channel(&self) -> u16 {
        match self {
            Frame::Method { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. } => *channel,
            Frame::Heartbeat => 0,
        }
    }

    pub fn encode(&self, buf: &mut BytesMut) {
        match self {
            Frame::Method { channel, method } => encode_method_frame(*channel, method, buf),
            Frame::Header { channel, header } => encode_header_frame(*channel, header, buf),
            Frame::Body { channel, payload } => encode_body_frame(*channel, payload, buf),
            Frame::Heartbeat => encode_heartbeat_frame(buf),
        }
    }
}

/// Cuts whole frames off the front of a read buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    frame_max: u32,
}

impl Default for FrameDecoder {
    /// Before tuning, frames are limited to the spec's minimum frame size.
    fn default() -> Self {
        FrameDecoder {
            frame_max: FRAME_MIN_SIZE,
        }
    }
}

impl FrameDecoder {
    pub fn new(frame_max: u32) -> Self {
        FrameDecoder { frame_max }
    }

    /// The negotiated frame_max (whole frame, overhead included); 0 means no limit.
    pub fn set_frame_max(&mut self, frame_max: u32) {
        self.frame_max = frame_max;
    }

    pub fn frame_max(&self) -> u32 {
        self.frame_max
    }

    /// The next whole frame, `Ok(None)` if it has not all arrived (the partial
    /// frame stays in `buf`), or an error the connection must close with.
    #[inline]
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        match self.decode_raw(buf)? {
            Some(raw) => raw.parse().map(Some),
            None => Ok(None),
        }
    }

    /// Like [`decode`](Self::decode), but leaves the payload unparsed.
    ///
    /// The size is checked from the 7-byte header before the rest is waited
    /// for. Like RabbitMQ, a payload may be as large as frame_max itself, 8
    /// bytes over the negotiated limit, because some clients count that way.
    #[inline]
    pub fn decode_raw(&mut self, buf: &mut BytesMut) -> Result<Option<RawFrame>, CodecError> {
        let Some(header) = buf.get(..FRAME_HEADER_SIZE) else {
            return Ok(None);
        };
        let kind = header[0];
        let channel = u16::from_be_bytes([header[1], header[2]]);
        let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
        if !matches!(
            kind,
            FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
        ) {
            return Err(CodecError::UnknownFrameType(kind));
        }
        if self.frame_max != 0 && size > self.frame_max {
            return Err(CodecError::FrameTooLarge {
                size,
                frame_max: self.frame_max,
            });
        }
        let total = FRAME_OVERHEAD + size as usize;
        if buf.len() < total {
            // Bounded by frame_max, which was just checked.
            if self.frame_max != 0 {
                buf.reserve(total - buf.len());
            }
            return Ok(None);
        }
        let end = buf[total - 1];
        if end != FRAME_END {
            return Err(CodecError::BadFrameEnd(end));
        }
        buf.advance(FRAME_HEADER_SIZE);
        let payload = buf.split_to(size as usize).freeze();
        buf.advance(1);
        Ok(Some(RawFrame {
            kind,
            channel,
            payload,
        }))
    }
}

/// A whole frame whose payload is not parsed yet. A broker keeps a content
/// header's payload as it came, to send it on to consumers unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub kind: u8,
    pub channel: u16,
    pub payload: Bytes,
}

impl RawFrame {
    #[inline]
    pub fn parse(self) -> Result<Frame, CodecError> {
        let RawFrame {
            kind,
            channel,
            payload,
        } = self;
        Ok(match kind {
            FRAME_METHOD => Frame::Method {
                channel,
                method: Method::decode(&payload)?,
            },
            FRAME_HEADER => Frame::Header {
                channel,
                header: ContentHeader::decode(&payload)?,
            },
            FRAME_BODY => Frame::Body { channel, payload },
            FRAME_HEARTBEAT if channel == 0 && payload.is_empty() => Frame::Heartbeat,
            FRAME_HEARTBEAT => return Err(CodecError::BadHeartbeat(channel)),
            other => return Err(CodecError::UnknownFrameType(other)),
        })
    }
}

/// Writes a frame whose payload `write` appends, then patches in its size.
fn encode_frame(buf: &mut BytesMut, kind: u8, channel: u16, write: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_u8(kind);
    buf.put_u16(channel);
    buf.put_u32(0);
    write(buf);
    let size = (buf.len() - start - FRAME_HEADER_SIZE) as u32;
    buf[start + 3..start + FRAME_HEADER_SIZE].copy_from_slice(&size.to_be_bytes());
    buf.put_u8(FRAME_END);
}

pub fn encode_method_frame(channel: u16, method: &Method, buf: &mut BytesMut) {
    encode_frame(buf, FRAME_METHOD, channel, |buf| method.encode(buf));
}

pub fn encode_header_frame(channel: u16, header: &ContentHeader, buf: &mut BytesMut) {
    encode_frame(buf, FRAME_HEADER, channel, |buf| header.encode(buf));
}

/// A content header frame from a header payload kept as it arrived (see [`RawFrame`]).
pub fn encode_raw_header_frame(channel: u16, header_payload: &[u8], buf: &mut BytesMut) {
    encode_frame(buf, FRAME_HEADER, channel, |buf| {
        buf.put_slice(header_payload)
    });
}

pub fn encode_body_frame(channel: u16, body: &[u8], buf: &mut BytesMut) {
    buf.reserve(FRAME_OVERHEAD + body.len());
    buf.put_u8(FRAME_BODY);
    buf.put_u16(channel);
    buf.put_u32(body.len() as u32);
    buf.put_slice(body);
    buf.put_u8(FRAME_END);
}

pub fn encode_heartbeat_frame(buf: &mut BytesMut) {
    buf.put_slice(&[FRAME_HEARTBEAT, 0, 0, 0, 0, 0, 0, FRAME_END]);
}

/// A content-carrying method (publish, deliver, get-ok, return) with its
/// header and the body split into frames that fit `frame_max`.
pub fn encode_content(
    channel: u16,
    method: &Method,
    header: &ContentHeader,
    body: &[u8],
    frame_max: u32,
    buf: &mut BytesMut,
) {
    encode_method_frame(channel, method, buf);
    encode_header_frame(channel, header, buf);
    let chunk = match frame_max as usize {
        0 => usize::MAX,
        max => max.saturating_sub(FRAME_OVERHEAD).max(1),
    };
    for piece in body.chunks(chunk) {
        encode_body_frame(channel, piece, buf);
    }
}

/// The fields of a basic.deliver, borrowed: a broker encodes one per
/// delivery straight from the message it holds, without building a `Method`.
#[derive(Debug, Clone, Copy)]
pub struct DeliverFields<'a> {
    pub consumer_tag: &'a [u8],
    pub delivery_tag: u64,
    pub redelivered: bool,
    pub exchange: &'a [u8],
    pub routing_key: &'a [u8],
}

/// A basic.deliver method frame, byte for byte what
/// `encode_method_frame(channel, &BasicDeliver{..}.into(), buf)` writes.
/// The strings must be short strings (at most 255 octets).
pub fn encode_deliver_frame(channel: u16, fields: &DeliverFields<'_>, buf: &mut BytesMut) {
    let short = |buf: &mut BytesMut, s: &[u8]| {
        debug_assert!(s.len() <= 255);
        buf.put_u8(s.len() as u8);
        buf.put_slice(s);
    };
    let size = 4
        + 1
        + fields.consumer_tag.len()
        + 8
        + 1
        + 1
        + fields.exchange.len()
        + 1
        + fields.routing_key.len();
    buf.reserve(FRAME_OVERHEAD + size);
    buf.put_u8(FRAME_METHOD);
    buf.put_u16(channel);
    buf.put_u32(size as u32);
    buf.put_u16(crate::BasicDeliver::CLASS_ID);
    buf.put_u16(crate::BasicDeliver::METHOD_ID);
    short(buf, fields.consumer_tag);
    buf.put_u64(fields.delivery_tag);
    buf.put_u8(fields.redelivered as u8);
    short(buf, fields.exchange);
    short(buf, fields.routing_key);
    buf.put_u8(FRAME_END);
}
