//! How a decoding error is told to the peer: its text (naming the method,
//! from the generated method table) and the reply code the server closes
//! the connection with.

use std::fmt;

use crate::error::CodecError;
use crate::generated::{method_info, ReplyCode};

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
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::BadProtocolHeader => write!(f, "bad protocol header"),
            CodecError::BadFrameEnd(octet) => {
                write!(f, "frame end octet is {octet:#04x}, expected 0xce")
            }
            CodecError::FrameTooLarge { size, frame_max } => write!(
                f,
                "frame payload of {size} bytes is larger than frame_max {frame_max}"
            ),
            CodecError::UnknownFrameType(kind) => write!(f, "unknown frame type {kind}"),
            CodecError::BadHeartbeat(channel) => {
                write!(f, "heartbeat frame on channel {channel}, or with a payload")
            }
            CodecError::Syntax {
                class_id,
                method_id,
                reason,
            } => write!(f, "malformed {}: {reason}", describe(*class_id, *method_id)),
            CodecError::UnknownMethod {
                class_id,
                method_id,
            } => write!(f, "unknown method {class_id}/{method_id}"),
            CodecError::ContentClass(class) => {
                write!(f, "content header for class {class}, which has no content")
            }
        }
    }
}

impl std::error::Error for CodecError {}

fn describe(class_id: u16, method_id: u16) -> String {
    match method_info(class_id, method_id) {
        Some(info) => info.name.to_string(),
        None if method_id == 0 => format!("content header of class {class_id}"),
        None => format!("method {class_id}/{method_id}"),
    }
}
