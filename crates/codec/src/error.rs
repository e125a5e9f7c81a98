//! Decoding errors. Every variant is a connection-level (hard) error.

/// Why bytes from the peer could not be decoded. Its text and reply code are in `error_reply.rs`, beside the generated
/// method table they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    BadProtocolHeader,
    BadFrameEnd(u8),
    FrameTooLarge {
        size: u32,
        frame_max: u32,
    },
    UnknownFrameType(u8),
    /// RabbitMQ answers 505 here, where the spec says 501.
    BadHeartbeat(u16),
    Syntax {
        class_id: u16,
        method_id: u16,
        reason: &'static str,
    },
    UnknownMethod {
        class_id: u16,
        method_id: u16,
    },
    /// A content header for another class than the method's (basic).
    ContentClass(u16),
    /// A content header whose weight is not 0.
    ContentWeight,
    /// A frame too short for its fixed fields (a method frame's ids, a
    /// content header's class, weight and size): RabbitMQ cannot analyze
    /// it and answers 501 naming the octets it got.
    Truncated(Snippet),
}

/// A short frame's type and octets (all of them: at most 11 are kept,
/// which is all a truncated frame can have).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snippet {
    pub kind: u8,
    len: u8,
    octets: [u8; 11],
}

impl Snippet {
    /// A method frame's (type 1).
    pub(crate) fn method(payload: &[u8]) -> Self {
        Self::new(1, payload)
    }

    /// A content header frame's (type 2).
    pub(crate) fn header(payload: &[u8]) -> Self {
        Self::new(2, payload)
    }

    fn new(kind: u8, payload: &[u8]) -> Self {
        let mut octets = [0; 11];
        let len = payload.len().min(octets.len());
        octets[..len].copy_from_slice(&payload[..len]);
        Snippet {
            kind,
            len: len as u8,
            octets,
        }
    }

    pub fn octets(&self) -> &[u8] {
        &self.octets[..usize::from(self.len)]
    }
}

impl CodecError {
    /// The class and method the error is about, for connection.close (0, 0 if none).
    pub fn class_method(&self) -> (u16, u16) {
        match *self {
            CodecError::Syntax {
                class_id,
                method_id,
                ..
            }
            | CodecError::UnknownMethod {
                class_id,
                method_id,
            } => (class_id, method_id),
            // The content belongs to the basic.publish before it.
            CodecError::ContentClass(_) | CodecError::ContentWeight => (60, 40),
            _ => (0, 0),
        }
    }
}
