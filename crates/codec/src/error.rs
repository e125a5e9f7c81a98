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
    ContentClass(u16),
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
            CodecError::ContentClass(class_id) => (class_id, 0),
            _ => (0, 0),
        }
    }
}
