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
            | CodecError::UnknownFrameType(_)
            | CodecError::Truncated(_) => ReplyCode::FrameError,
            CodecError::Syntax { .. } => ReplyCode::SyntaxError,
            CodecError::UnknownMethod { .. } => ReplyCode::NotImplemented,
            CodecError::ContentClass(_)
            | CodecError::ContentWeight
            | CodecError::BadHeartbeat(_) => ReplyCode::UnexpectedFrame,
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
            CodecError::ContentClass(class) => write!(
                f,
                "expected content header for class 60, got one for class {class} instead"
            ),
            CodecError::ContentWeight => write!(
                f,
                "expected content header for class 60, got non content header frame instead"
            ),
            CodecError::Truncated(snippet) => write!(
                f,
                "{}: unknown_frame",
                frame_snippet(snippet.kind, snippet.octets())
            ),
        }
    }
}

impl std::error::Error for CodecError {}

/// A frame as RabbitMQ's reader names it in a reply text: `type 3, all
/// octets = <<"abc">>`, or its first 16 octets when longer.
pub fn frame_snippet(kind: u8, payload: &[u8]) -> String {
    let (which, octets) = match payload.get(..16) {
        Some(head) if payload.len() > 16 => ("first 16", head),
        _ => ("all", payload),
    };
    format!("type {kind}, {which} octets = {}", erlang_binary(octets))
}

/// How Erlang prints a binary: as a quoted string when every octet is
/// printable, else as its numbers.
fn erlang_binary(octets: &[u8]) -> String {
    let printable = !octets.is_empty()
        && octets
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'));
    if printable {
        let mut text = String::from("<<\"");
        for &b in octets {
            match b {
                b'"' => text.push_str("\\\""),
                b'\\' => text.push_str("\\\\"),
                b'\t' => text.push_str("\\t"),
                b'\n' => text.push_str("\\n"),
                b'\r' => text.push_str("\\r"),
                _ => text.push(char::from(b)),
            }
        }
        text + "\">>"
    } else {
        let numbers: Vec<String> = octets.iter().map(u8::to_string).collect();
        format!("<<{}>>", numbers.join(","))
    }
}

fn describe(class_id: u16, method_id: u16) -> String {
    match method_info(class_id, method_id) {
        Some(info) => info.name.to_string(),
        None if method_id == 0 => format!("content header of class {class_id}"),
        None => format!("method {class_id}/{method_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_snippets_read_as_rabbitmq_prints_them() {
        assert_eq!(frame_snippet(1, b""), "type 1, all octets = <<>>");
        assert_eq!(frame_snippet(1, &[0, 60]), "type 1, all octets = <<0,60>>");
        assert_eq!(
            frame_snippet(3, b"say \"hi\"\n"),
            r#"type 3, all octets = <<"say \"hi\"\n">>"#
        );
        assert_eq!(
            frame_snippet(3, &[b'x'; 20]),
            r#"type 3, first 16 octets = <<"xxxxxxxxxxxxxxxx">>"#
        );
    }
}
