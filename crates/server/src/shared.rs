//! What every connection task shares: the broker, the users, the
//! connection settings and the TLS setup (the last two replaced on SIGHUP).

use std::sync::{Arc, RwLock};
use warren_broker::Broker;
use warren_protocol::ConnectionConfig;

use crate::users::Users;

/// What every connection task needs.
pub struct Shared {
    pub broker: Arc<Broker>,
    pub users: Arc<Users>,
    /// Settings for connections accepted from now on.
    pub connection_config: RwLock<ConnectionConfig>,
    /// How long a delivery may wait for its acknowledgement (None: forever).
    pub consumer_timeout: Option<std::time::Duration>,
    /// Peers whose connections may open with a PROXY protocol header.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The TLS listeners' acceptor and handshake timeout (ms).
    pub tls: RwLock<Option<(tokio_rustls::TlsAcceptor, u64)>>,
    /// Connections that have ended, for the memory trimmer.
    pub closed_connections: Arc<std::sync::atomic::AtomicU64>,
}

impl Shared {
    /// The settings a new connection starts with.
    pub fn connection_config(&self) -> ConnectionConfig {
        self.connection_config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The TLS setup a new TLS connection is accepted with.
    pub fn tls(&self) -> Option<(tokio_rustls::TlsAcceptor, u64)> {
        self.tls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
