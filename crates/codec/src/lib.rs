//! AMQP 0-9-1 frame codec with RabbitMQ's extensions.
//!
//! Bytes in, frames out, and back: no I/O and no async runtime. Method types,
//! constants and reply codes are generated from `spec/` by `warren-codegen`.
//! Decoded strings, tables and bodies are `Bytes` slices of the read buffer.

#![forbid(unsafe_code)]

mod content;
mod error;
mod error_reply;
mod frame;
#[allow(clippy::identity_op, clippy::let_and_return)]
#[rustfmt::skip]
mod generated;
mod primitives;
mod protocol_header;
mod raw;
mod table;
mod types;

#[cfg(test)]
#[rustfmt::skip]
mod generated_strategies;
#[cfg(test)]
mod roundtrip_tests;
#[cfg(test)]
mod strategies;

pub use content::{ContentHeader, HeaderSummary};
pub use error::{CodecError, Snippet};
pub use error_reply::frame_snippet;
pub use frame::{
    encode_body_frame, encode_content, encode_deliver_frame, encode_header_frame,
    encode_heartbeat_frame, encode_method_frame, encode_raw_header_frame, DeliverFields, Frame,
    FrameDecoder, RawFrame, FRAME_HEADER_SIZE, FRAME_OVERHEAD,
};
pub use generated::*;
pub use protocol_header::{decode_protocol_header, PROTOCOL_HEADER};
pub use table::{FieldArray, FieldTable, FieldValue};
pub use types::{LongString, ShortString, StringTooLong};
