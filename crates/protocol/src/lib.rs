//! The AMQP 0-9-1 connection and channel state machine, without I/O.
//!
//! The server feeds it the bytes it reads and the time; it answers with the
//! bytes to write and with [`Event`]s for the broker: opened channels,
//! methods to carry out, assembled publishes, closed channels. Handshake,
//! tuning, heartbeats, channel lifecycle, content assembly and the mapping of
//! protocol errors to close codes all live here.

#![forbid(unsafe_code)]

mod auth;
mod channel;
mod config;
mod connection;
mod error;
mod output;

pub use auth::{parse_sasl_response, Authenticator, Credentials, VhostAccess};
pub use config::{ClientCapabilities, ConnectionConfig, Tuning};
pub use connection::{Connection, Event, Publish};
pub use error::AmqpError;
pub use output::Output;
