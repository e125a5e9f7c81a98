//! What every connection task shares: the broker, the users, the
//! connection settings.

use std::sync::Arc;
use warren_broker::Broker;
use warren_protocol::ConnectionConfig;

use crate::users::Users;

/// What every connection task needs.
pub struct Shared {
    pub broker: Arc<Broker>,
    pub users: Arc<Users>,
    pub connection_config: ConnectionConfig,
    /// Connections that have ended, for the memory trimmer.
    pub closed_connections: Arc<std::sync::atomic::AtomicU64>,
}
