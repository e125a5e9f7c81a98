//! One client connection: reads frames into the protocol state machine,
//! carries out its events with the broker session (`events.rs`), and hands
//! what is to be sent to a writer task (`writer.rs`). Queue deliveries
//! arrive through a bounded port. The socket is the server's; what to do
//! under the memory alarm is the broker's ([`PublisherFlow`]).

mod events;
mod writer;

use bytes::BytesMut;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use warren_broker::{ConnEvent, DeliveryPort, FlowChange, PublisherFlow, Session};
use warren_codec::ReplyCode;
use warren_protocol::{Connection, Event};

use crate::shared::Shared;
use events::ConnOutbox;
use writer::Outgoing;

/// Deliveries a connection's port holds; a queue skips a consumer whose
/// connection's port is full.
const PORT_CAPACITY: usize = 256;
const READ_CHUNK: usize = 64 * 1024;
/// An idle connection's read buffer; it grows while reads fill it.
const FIRST_READ: usize = 2 * 1024;
/// How long a finished connection waits for the client to close the
/// socket, draining input meanwhile, so that the last frames are not lost
/// to a TCP reset or an early end of stream.
const LINGER: Duration = Duration::from_secs(1);

/// A connection's state between reads.
struct Handler {
    shared: Arc<Shared>,
    peer: SocketAddr,
    conn: Connection,
    /// Where queues put this connection's deliveries.
    port: Arc<DeliveryPort>,
    delivered: VecDeque<ConnEvent>,
    /// From connection.open on.
    session: Option<Session>,
    input: BytesMut,
    read_size: usize,
    peer_closed: bool,
    user: String,
    vhost_name: String,
    /// The client's `connection_name` property, escaped for the log.
    name: Option<String>,
    /// When unacknowledged deliveries are next checked against
    /// `consumer_timeout` (None: no timeout).
    ack_check: Option<std::time::Instant>,
    flow: PublisherFlow,
    outgoing: Outgoing,
}

pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let (outgoing, writer_task) = Outgoing::start(writer);
    let mut config = shared.connection_config();
    config.peer_is_loopback = crate::users::is_loopback(peer.ip());
    let auth = Arc::new(crate::users::PeerAuth {
        users: shared.users.clone(),
        peer,
    });
    let flow = PublisherFlow::new(shared.broker.memory.clone(), config.max_message_size);
    let handler = Handler {
        conn: Connection::new(config, auth, std::time::Instant::now()),
        shared,
        peer,
        port: DeliveryPort::new(PORT_CAPACITY),
        delivered: VecDeque::new(),
        session: None,
        input: BytesMut::new(),
        read_size: FIRST_READ,
        peer_closed: false,
        user: String::new(),
        vhost_name: String::new(),
        name: None,
        ack_check: None,
        flow,
        outgoing,
    };
    debug!(%peer, "connection accepted");
    handler.run(reader, shutdown, writer_task).await;
}

impl Handler {
    async fn run<R: AsyncRead + Unpin>(
        mut self,
        mut reader: R,
        mut shutdown: watch::Receiver<bool>,
        writer_task: tokio::task::JoinHandle<()>,
    ) {
        let mut resumed = None;
        loop {
            let now = std::time::Instant::now();
            if let Some(session) = &mut self.session {
                session.set_clock(now);
            }
            // The events in the input read so far, until the input is used
            // up or the memory alarm holds a publish. (In this loop, not a
            // method of its own: one more async layer would copy each
            // event's future once more.)
            while !self.flow.is_holding() {
                // A publish the alarm held comes first once it is released.
                let next = match resumed.take() {
                    Some(publish) => Some(Event::Publish(publish)),
                    None => self.conn.next_event(&mut self.input, now),
                };
                let Some(event) = next else {
                    break;
                };
                match event {
                    // Tested before the publish moves anywhere: it is large.
                    Event::Publish(publish) if self.session.is_some() && self.flow.must_hold() => {
                        self.flow.hold(publish);
                        self.blocked(now);
                    }
                    // Publishes and methods, the frequent events, are
                    // carried out here: through `handle_event` each would
                    // copy its future once more.
                    Event::Publish(publish) => {
                        let Some(session) = &mut self.session else {
                            continue;
                        };
                        let channel = publish.channel;
                        let mut out = ConnOutbox {
                            conn: &mut self.conn,
                            now,
                        };
                        if let Err(error) = session.publish(publish, &mut out).await {
                            self.conn.channel_error(channel, error, now);
                        }
                    }
                    Event::Method { channel, method } => {
                        let Some(session) = &mut self.session else {
                            continue;
                        };
                        let mut out = ConnOutbox {
                            conn: &mut self.conn,
                            now,
                        };
                        if let Err(error) = session.handle_method(channel, method, &mut out).await {
                            self.conn.channel_error(channel, error, now);
                        }
                    }
                    event => self.handle_event(event, now).await,
                }
            }
            self.count_partial_bodies(now);
            if let Some(session) = &mut self.session {
                session.flush_publishes().await;
                session.flush_confirms(&mut ConnOutbox {
                    conn: &mut self.conn,
                    now,
                });
            }
            if !self.outgoing.flush(&mut self.conn).await
                || self.conn.is_closed()
                || self.peer_closed
            {
                break;
            }
            // Deliveries awaiting acks are checked once a second; a
            // connection without any is not woken for it.
            if self.ack_check.is_none() && self.session.as_ref().is_some_and(|s| s.awaits_acks()) {
                self.ack_check = Some(std::time::Instant::now() + ACK_CHECK_INTERVAL);
            }
            let deadline = earliest(
                self.conn.next_timeout().map(Instant::from_std),
                self.ack_check.map(Instant::from_std),
            );
            // Rung by the store when publishes of this connection are on disk.
            let bell = self.session.as_ref().map(|s| s.bell());
            self.make_room();
            let may_read = self.flow.may_read();
            let blocked = self.flow.is_blocked();
            tokio::select! {
                read = reader.read_buf(&mut self.input), if may_read => match read {
                    Ok(0) | Err(_) => {
                        if self.conn.is_open() {
                            info!(peer = %self.peer, user = self.user, connection_name = self.name.as_deref(), "client closed the TCP connection without connection.close");
                        }
                        self.peer_closed = true;
                    }
                    Ok(n) => {
                        if n >= self.read_size / 2 {
                            self.read_size = (self.read_size * 2).min(READ_CHUNK);
                        }
                        self.conn.received_bytes(std::time::Instant::now())
                    }
                },
                _ = self.port.recv_all(&mut self.delivered), if self.conn.is_open() => {
                    self.take_deliveries().await;
                },
                _ = self.flow.wait_below(), if blocked => {
                    self.conn.unblock(std::time::Instant::now());
                    resumed = self.flow.resume();
                },
                _ = ring(bell.as_deref()) => {}
                _ = sleep_until(deadline) => {
                    let now = std::time::Instant::now();
                    if self.flow.is_blocked() {
                        // Its heartbeats wait unread in the socket: not silent.
                        self.conn.received_bytes(now);
                    }
                    self.conn.handle_timeout(now);
                    self.check_acknowledgements(now);
                },
                _ = shutdown.changed() => {
                    self.conn.close(ReplyCode::ConnectionForced, "broker forced connection closure with reason 'shutdown'", std::time::Instant::now());
                }
            }
        }
        self.finish(reader, writer_task).await;
    }

    /// Once a second: a channel whose oldest unacknowledged delivery is
    /// older than `consumer_timeout` is closed with 406 (its deliveries go
    /// back to their queues).
    fn check_acknowledgements(&mut self, now: std::time::Instant) {
        let Some(at) = self.ack_check else {
            return;
        };
        if now < at {
            return;
        }
        self.ack_check = None;
        if let Some((channel, error)) = self.session.as_ref().and_then(|s| s.overdue_channel(now)) {
            warn!(peer = %self.peer, user = self.user, connection_name = self.name.as_deref(), channel, "consumer acknowledgement timed out: closing the channel");
            self.conn.channel_error(channel, error, now);
        }
    }

    /// Bodies still arriving count against the watermark, and are bounded.
    fn count_partial_bodies(&mut self, now: std::time::Instant) {
        let partial = self.conn.partial_body_bytes() as usize;
        match self.flow.partial_bodies(partial) {
            FlowChange::None => {}
            FlowChange::Blocked => self.blocked(now),
            FlowChange::Stalled => {
                let (partial, bound) = self.flow.partial();
                warn!(peer = %self.peer, user = self.user, partial, bound, "partly received bodies exceed the connection's bound: not reading it");
            }
        }
    }

    /// The memory alarm stopped this publisher: it is told (connection.blocked).
    fn blocked(&mut self, now: std::time::Instant) {
        warn!(peer = %self.peer, user = self.user, used = self.shared.broker.memory.used(), "memory alarm: publisher blocked");
        self.conn.block("low on memory", now);
    }

    async fn take_deliveries(&mut self) {
        let now = std::time::Instant::now();
        if let Some(session) = &mut self.session {
            session.set_clock(now);
            let mut out = ConnOutbox {
                conn: &mut self.conn,
                now,
            };
            while let Some(event) = self.delivered.pop_front() {
                session.queue_event(event, &mut out).await;
            }
            session.events_drained();
        }
        self.delivered.clear();
    }

    /// Room for the next read. A fresh buffer rather than `reserve`: queued
    /// messages are slices of the old one, and reserving on a buffer with
    /// nothing else left in it grows that buffer in place, doubling each time.
    fn make_room(&mut self) {
        let read_size = self.read_size;
        if self.input.capacity() - self.input.len() < read_size / 4 {
            let mut fresh =
                BytesMut::with_capacity(read_size.max(self.input.len() + read_size / 2));
            fresh.extend_from_slice(&self.input);
            self.input = fresh;
        }
    }

    async fn finish<R: AsyncRead + Unpin>(
        mut self,
        mut reader: R,
        writer_task: tokio::task::JoinHandle<()>,
    ) {
        // The session goes first: exclusive queues and unacknowledged
        // messages must not wait for the socket.
        let opened = self.session.is_some();
        // A client that did not speak AMQP 0-9-1 has our header: it goes at
        // once, as RabbitMQ does, without the linger for last frames.
        let linger = !self.peer_closed && !self.conn.refused_protocol_header();
        if let Some(session) = &mut self.session {
            session.connection_closed().await;
        }
        let Handler {
            peer,
            user,
            vhost_name,
            name,
            outgoing,
            ..
        } = self;
        drop(outgoing);
        let _ = writer_task.await;
        if linger {
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(LINGER, async {
                while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
        }
        if opened {
            info!(%peer, user, vhost = vhost_name, connection_name = name.as_deref(), "connection closed");
        } else {
            debug!(%peer, "connection closed before it opened");
        }
    }
}

async fn ring(bell: Option<&tokio::sync::Notify>) {
    match bell {
        Some(bell) => bell.notified().await,
        None => std::future::pending().await,
    }
}

/// How often unacknowledged deliveries are checked against the timeout
/// (RabbitMQ checks on its 60 s channel tick; once a second is tighter).
const ACK_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
