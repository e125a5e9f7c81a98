//! Decoding errors, each mapped to the reply code the server closes with.

use crate::generated::{method_info, ReplyCode};

/// Why bytes from the peer could not be decoded. Every variant is a
/// connection-level (hard) error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("bad protocol header")]
    BadProtocolHeader,
    #[error("frame end octet is {0:#04x}, expected 0xce")]
    BadFrameEnd(u8),
    #[error("frame payload of {size} bytes is larger than frame_max {frame_max}")]
    FrameTooLarge { size: u32, frame_max: u32 },
    #[error("unknown frame type {0}")]
    UnknownFrameType(u8),
    /// RabbitMQ answers 505 here, where the spec says 501.
    #[error("heartbeat frame on channel {0}, or with a payload")]
    BadHeartbeat(u16),
    #[error("malformed {}: {reason}", describe(*class_id, *method_id))]
    Syntax {
        class_id: u16,
        method_id: u16,
        reason: &'static str,
    },
    #[error("unknown method {class_id}/{method_id}")]
    UnknownMethod { class_id: u16, method_id: u16 },
    #[error("content header for class {0}, which has no content")]
    ContentClass(u16),
}

impl CodecError {
    pub fn reply_code(&self) -> ReplyCode {
        match self {
            CodecError::BadProtocolHeader
            | CodecError::BadFrameEnd(_)
            | CodecError::FrameTooLarge { .. }
            | CodecError::UnknownFrameType(_) => ReplyCode::FrameError,
            CodecError::Syntax { .. } => ReplyCode::SyntaxError,
            CodecError::UnknownMethod { .. } => ReplyCode::NotImplemented,
            CodecError::ContentClass(_) | CodecError::BadHeartbeat(_) => ReplyCode::UnexpectedFrame,
        }
    }

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

fn describe(class_id: u16, method_id: u16) -> String {
    match method_info(class_id, method_id) {
        Some(info) => info.name.to_string(),
        None if method_id == 0 => format!("content header of class {class_id}"),
        None => format!("method {class_id}/{method_id}"),
    }
}
