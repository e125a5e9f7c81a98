//! The Warren server: configuration, listeners (TCP and TLS), and the
//! connection tasks that join the protocol state machine to the broker.

pub mod config;
mod connection;
pub mod fd_limit;
mod listen;
pub mod logging;
pub mod notify;
pub mod password;
mod proxy_protocol;
mod reload;
mod resident;
mod restore;
mod server;
mod shared;
mod tls;
mod trim;
pub mod users;

pub use config::Config;
pub use reload::Reloaded;
pub use server::Server;
