//! Listeners: accept loops for plain TCP and TLS, one task per connection,
//! and a graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{info, warn};
use warren_broker::Broker;
use warren_codec::{FieldTable, FieldValue, LongString};
use warren_protocol::ConnectionConfig;

use crate::config::Config;
use crate::shared::Shared;
use crate::users::Users;

/// A running server.
pub struct Server {
    pub tcp_addrs: Vec<SocketAddr>,
    pub tls_addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    /// Closed when every task holding a clone has ended.
    alive: mpsc::Receiver<()>,
    alive_tx: Option<mpsc::Sender<()>>,
    broker: Arc<Broker>,
    pub(crate) shared: Arc<Shared>,
    /// The configuration running now, to tell what a reload changes.
    pub(crate) config: std::sync::Mutex<Config>,
}

/// The capabilities RabbitMQ announces, in its order; all implemented.
const CAPABILITIES: [&str; 7] = [
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "authentication_failure_close",
    "per_consumer_qos",
];

/// What a connection accepted under `config` is offered and allowed.
pub(crate) fn connection_config(config: &Config) -> ConnectionConfig {
    let limits = &config.limits;
    ConnectionConfig {
        channel_max: limits.channel_max,
        frame_max: limits.frame_max,
        heartbeat: limits.heartbeat,
        max_message_size: limits.max_message_size,
        handshake_timeout: Duration::from_millis(limits.handshake_timeout),
        server_properties: server_properties(),
        ..ConnectionConfig::default()
    }
}

fn server_properties() -> FieldTable {
    let capabilities: FieldTable = CAPABILITIES
        .iter()
        .map(|name| {
            (
                warren_codec::ShortString::from_static(name),
                FieldValue::Bool(true),
            )
        })
        .collect();
    let text = |s: &str| FieldValue::LongString(LongString::from(s));
    FieldTable::new()
        .with("capabilities", FieldValue::Table(capabilities))
        .with("cluster_name", text("warren"))
        .with("copyright", text("Copyright (c) the Warren authors"))
        .with("information", text("Licensed under the Apache License 2.0. Website: https://github.com/warren-mq/warren"))
        .with("platform", text(&format!("Rust/{}", std::env::consts::OS)))
        .with("product", text("Warren"))
        .with("version", text(env!("CARGO_PKG_VERSION")))
}

impl Server {
    /// Every queue's, connection's and channel's statistics (for the
    /// management API and metrics to read).
    pub fn stats(&self) -> &Arc<warren_broker::Registry> {
        &self.broker.stats
    }

    /// Binds every listener and starts accepting.
    pub async fn start(config: &Config) -> Result<Server, String> {
        // Certificates first: a missing file is found before the data
        // directory is opened (and locked) at all.
        let tls = match &config.tls {
            Some(tls) if !config.listeners.tls.is_empty() => {
                Some((crate::tls::acceptor(tls)?, tls.ssl_handshake_timeout))
            }
            _ => None,
        };
        let limits = &config.limits;
        let watermark = &limits.vm_memory_high_watermark;
        let memory_limit = match watermark.absolute {
            0 => warren_broker::default_memory_limit(watermark.relative),
            bytes => bytes,
        };
        let broker = crate::restore::open(
            memory_limit,
            limits.queue_memory_bytes,
            &config.data_dir,
            &config.vhosts,
            config.quarantine_orphans,
        )
        .await?;
        broker
            .memory
            .set_transaction_limit(limits.max_transaction_bytes);
        let closed_connections = Arc::new(std::sync::atomic::AtomicU64::new(0));
        crate::trim::spawn(broker.memory.clone(), closed_connections.clone());
        crate::resident::spawn(broker.memory.clone());
        let shared = Arc::new(Shared {
            closed_connections,
            broker,
            users: Arc::new(Users::from_config(config)),
            connection_config: std::sync::RwLock::new(connection_config(config)),
            tls: std::sync::RwLock::new(tls),
            trusted_proxies: config.listeners.trusted_proxies(),
            consumer_timeout: match limits.consumer_timeout {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
        });
        let max_connections = match limits.connection_max {
            0 => None,
            n => Some(Arc::new(Semaphore::new(n))),
        };
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (alive_tx, alive) = mpsc::channel(1);
        let mut server = Server {
            broker: shared.broker.clone(),
            shared: shared.clone(),
            config: std::sync::Mutex::new(config.clone()),
            tcp_addrs: Vec::new(),
            tls_addrs: Vec::new(),
            shutdown,
            alive,
            alive_tx: Some(alive_tx),
        };
        let listeners = config
            .listeners
            .tcp
            .iter()
            .map(|a| (a, false))
            .chain(config.listeners.tls.iter().map(|a| (a, true)));
        for (addr, tls) in listeners {
            let bound: Vec<SocketAddr> = server
                .tcp_addrs
                .iter()
                .chain(&server.tls_addrs)
                .copied()
                .collect();
            let listener = match TcpListener::bind(addr).await {
                Ok(listener) => listener,
                Err(e) => match crate::listen::can_skip(*addr, &e, &bound) {
                    Some(why) => {
                        info!(%addr, "not listening on {addr}: {why}");
                        continue;
                    }
                    None => return Err(format!("listening on {addr}: {e}")),
                },
            };
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            if tls {
                server.tls_addrs.push(local);
            } else {
                server.tcp_addrs.push(local);
            }
            info!(addr = %local, tls, "listening");
            let accept = AcceptLoop {
                listener,
                shared: shared.clone(),
                tls,
                max_connections: max_connections.clone(),
                shutdown: shutdown_rx.clone(),
                alive: server.alive_tx.clone().expect("set"),
            };
            tokio::spawn(accept.run());
        }
        Ok(server)
    }

    /// Stops accepting, closes every connection with 320 CONNECTION_FORCED
    /// and waits (a bounded time) for them to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.alive_tx = None;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.alive.recv()).await;
        // Acks written while connections closed reach the disk before exit.
        if let Some(storage) = &self.broker.storage {
            storage.messages.sync().await;
        }
    }
}

struct AcceptLoop {
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: bool,
    max_connections: Option<Arc<Semaphore>>,
    shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
}

impl AcceptLoop {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = self.shutdown.changed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => {
                    backoff = Duration::from_millis(10);
                    accepted
                }
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let permit = match &self.max_connections {
                Some(limit) => match limit.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        warn!(%peer, "connection refused: connection limit reached");
                        continue;
                    }
                },
                None => None,
            };
            let _ = stream.set_nodelay(true);
            // Read per connection: a reload swaps certificates for the next one.
            let tls = if self.tls { self.shared.tls() } else { None };
            let task = ConnectionTask {
                stream,
                peer,
                shared: self.shared.clone(),
                tls,
                shutdown: self.shutdown.clone(),
                alive: self.alive.clone(),
            };
            tokio::spawn(task.run(permit));
        }
    }
}

struct ConnectionTask {
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<(tokio_rustls::TlsAcceptor, u64)>,
    shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
}

impl ConnectionTask {
    /// The TLS handshake happens here, in the connection's own task and
    /// under a timeout, never in the accept loop.
    async fn run(self, permit: Option<tokio::sync::OwnedSemaphorePermit>) {
        let ConnectionTask {
            mut stream,
            mut peer,
            shared,
            tls,
            shutdown,
            alive,
        } = self;
        let closed = shared.closed_connections.clone();
        if shared
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.ip().to_canonical()))
        {
            let timeout = shared.connection_config().handshake_timeout;
            match crate::proxy_protocol::accept(&mut stream, peer, timeout).await {
                Ok(client) => peer = client,
                Err(e) => {
                    warn!(%peer, "connection from a trusted proxy dropped: {e}");
                    return;
                }
            }
        }
        match tls {
            None => crate::connection::serve(stream, peer, shared, shutdown).await,
            // Boxed, so that the TLS handshake's state and the TLS stream
            // do not make every plain TCP connection's task larger.
            Some((acceptor, timeout)) => {
                Box::pin(serve_tls(stream, acceptor, timeout, peer, shared, shutdown)).await
            }
        }
        closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        drop(alive);
        drop(permit);
    }
}

async fn serve_tls(
    stream: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    timeout: u64,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    match tokio::time::timeout(Duration::from_millis(timeout), acceptor.accept(stream)).await {
        Ok(Ok(stream)) => crate::connection::serve(stream, peer, shared, shutdown).await,
        Ok(Err(e)) => warn!(%peer, "TLS handshake failed: {e}"),
        Err(_) => warn!(%peer, "TLS handshake timed out"),
    }
}
