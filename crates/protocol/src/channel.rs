//! One channel's protocol state: open or closing, and the assembly of
//! basic.publish + content header + body frames into one message.

use bytes::{Bytes, BytesMut};
use warren_codec::{BasicPublish, HeaderSummary, ReplyCode};

use crate::error::AmqpError;

pub(crate) enum ChannelState {
    Open(Assembly),
    /// We sent channel.close; until close-ok comes, other frames are dropped.
    /// `crossed`: the client's own channel.close crossed ours and we
    /// answered it.
    Closing {
        crossed: bool,
    },
}

/// Where a channel is in receiving a content-carrying method.
pub(crate) enum Assembly {
    Idle,
    AwaitingHeader(BasicPublish),
    AwaitingBody(Box<PartialMessage>),
}

/// Boxed in [`Assembly`] to keep channels small; the connection reuses one
/// box from message to message, so publishing allocates nothing.
pub(crate) struct PartialMessage {
    pub publish: BasicPublish,
    pub properties: HeaderSummary,
    pub header_payload: Bytes,
    pub body: BodyBuilder,
}

/// Collects body frames. A body in one frame stays the read buffer's slice;
/// only bodies spread over frames are joined (once, as they arrive: nothing
/// is allocated from the size the header claims).
#[derive(Default)]
pub(crate) struct BodyBuilder {
    expected: u64,
    first: Bytes,
    joined: Option<BytesMut>,
}

impl BodyBuilder {
    pub fn new(expected: u64) -> Self {
        BodyBuilder {
            expected,
            ..Default::default()
        }
    }

    pub(crate) fn received(&self) -> u64 {
        match &self.joined {
            Some(joined) => joined.len() as u64,
            None => self.first.len() as u64,
        }
    }

    /// Adds a frame; the whole body once it is complete.
    pub fn push(&mut self, payload: Bytes) -> Result<Option<Bytes>, AmqpError> {
        if self.received() + payload.len() as u64 > self.expected {
            return Err(AmqpError::new(
                ReplyCode::FrameError,
                "content body frame exceeds remaining content size",
            ));
        }
        if let Some(joined) = &mut self.joined {
            joined.extend_from_slice(&payload);
        } else if self.first.is_empty() {
            self.first = payload;
        } else {
            // The whole size at once: growing by doubling would keep up to
            // twice the body once frozen. A large allocation is mapped
            // lazily, so memory is taken as frames arrive, not announced.
            let mut joined = BytesMut::with_capacity(self.expected as usize);
            joined.extend_from_slice(&self.first);
            joined.extend_from_slice(&payload);
            self.joined = Some(joined);
        }
        if self.received() < self.expected {
            return Ok(None);
        }
        Ok(Some(match self.joined.take() {
            Some(joined) => joined.freeze(),
            None => std::mem::take(&mut self.first),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_frame_body_is_not_copied() {
        let payload = Bytes::from_static(b"hello");
        let mut body = BodyBuilder::new(5);
        let whole = body.push(payload.clone()).unwrap().unwrap();
        assert_eq!(whole.as_ptr(), payload.as_ptr());
    }

    #[test]
    fn frames_are_joined_in_order() {
        let mut body = BodyBuilder::new(6);
        assert_eq!(body.push(Bytes::from_static(b"ab")).unwrap(), None);
        assert_eq!(body.push(Bytes::from_static(b"cd")).unwrap(), None);
        assert_eq!(
            body.push(Bytes::from_static(b"ef")).unwrap().unwrap(),
            &b"abcdef"[..]
        );
    }

    #[test]
    fn too_much_body_is_501() {
        let mut body = BodyBuilder::new(3);
        let err = body.push(Bytes::from_static(b"abcd")).unwrap_err();
        assert_eq!(err.code, ReplyCode::FrameError);
    }
}
