//! What a connection is configured with, and what it negotiates.

use std::time::Duration;
use warren_codec::{FieldTable, FieldValue};

/// The server's side of a connection's settings.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Offered in connection.tune; the client may ask for fewer.
    pub channel_max: u16,
    /// Offered in connection.tune, whole frame included.
    pub frame_max: u32,
    /// Offered heartbeat interval in seconds; 0 disables.
    pub heartbeat: u16,
    /// Largest message body accepted (RabbitMQ 3.10's default: 128 MiB).
    pub max_message_size: u64,
    /// Sent in connection.start.
    pub server_properties: FieldTable,
    /// From the protocol header to connection.open-ok (RabbitMQ: 10 s).
    pub handshake_timeout: Duration,
    /// How long to wait for close-ok after sending connection.close.
    pub close_timeout: Duration,
    pub peer_is_loopback: bool,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            channel_max: 2047,
            frame_max: 131_072,
            heartbeat: 60,
            max_message_size: 128 * 1024 * 1024,
            server_properties: FieldTable::new(),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(3),
            peer_is_loopback: false,
        }
    }
}

/// The values both sides settled on in tune / tune-ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    pub channel_max: u16,
    pub frame_max: u32,
    pub heartbeat: u16,
}

/// The parts of the client's `capabilities` table that change what the
/// server may send it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCapabilities {
    pub authentication_failure_close: bool,
    pub consumer_cancel_notify: bool,
    pub connection_blocked: bool,
    pub basic_nack: bool,
    pub publisher_confirms: bool,
}

impl ClientCapabilities {
    pub fn from_client_properties(properties: &FieldTable) -> Self {
        let Some(FieldValue::Table(caps)) = properties.get("capabilities") else {
            return Self::default();
        };
        let on = |key| matches!(caps.get(key), Some(FieldValue::Bool(true)));
        ClientCapabilities {
            authentication_failure_close: on("authentication_failure_close"),
            consumer_cancel_notify: on("consumer_cancel_notify"),
            connection_blocked: on("connection.blocked"),
            basic_nack: on("basic.nack"),
            publisher_confirms: on("publisher_confirms"),
        }
    }
}
