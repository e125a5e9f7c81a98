//! One client connection: reads frames into the protocol state machine,
//! carries out its events with the broker session, and hands what is to be
//! sent to a writer task. Queue deliveries arrive through a bounded inbox.

use bytes::{Bytes, BytesMut};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use warren_broker::{ConnEvent, DeliveryPort, Escaped, Outbox, Session};
use warren_codec::{DeliverFields, Method, ReplyCode};
use warren_protocol::{Connection, Event, Publish};

use crate::shared::Shared;

/// Bytes a connection may have waiting for its socket; past it, the
/// connection stops reading and taking deliveries until the writer catches up.
const OUTBOUND_LIMIT: usize = 4 * 1024 * 1024;
/// Deliveries a connection's inbox holds; a queue skips a consumer whose
/// connection's inbox is full.
const INBOX_CAPACITY: usize = 256;
const READ_CHUNK: usize = 64 * 1024;
/// An idle connection's read buffer; it grows while reads fill it.
const FIRST_READ: usize = 2 * 1024;
/// How long a finished connection waits for the client to close the
/// socket, draining input meanwhile, so that the last frames are not lost
/// to a TCP reset or an early end of stream.
const LINGER: Duration = Duration::from_secs(1);

/// Writes the state machine's output into the connection.
struct ConnOutbox<'a> {
    conn: &'a mut Connection,
    now: std::time::Instant,
}

impl Outbox for ConnOutbox<'_> {
    fn send_method(&mut self, channel: u16, method: Method) {
        self.conn.send_method(channel, method, self.now);
    }

    fn send_content(&mut self, channel: u16, method: Method, header: &Bytes, body: &Bytes) {
        self.conn
            .send_content(channel, &method, header, body, self.now);
    }

    fn send_delivery(
        &mut self,
        channel: u16,
        fields: &DeliverFields<'_>,
        header: &Bytes,
        body: &Bytes,
    ) {
        self.conn
            .send_delivery(channel, fields, header, body, self.now);
    }
}

pub async fn serve<S>(
    stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let permits = Arc::new(Semaphore::new(OUTBOUND_LIMIT));
    let (write_tx, write_rx) = mpsc::unbounded_channel::<(Vec<Bytes>, u32)>();
    let writer_task = tokio::spawn(write_loop(writer, write_rx, permits.clone()));
    let outgoing = Outgoing { write_tx, permits };

    let mut config = shared.connection_config.clone();
    // One connection's partly received bodies beyond this are not read
    // further (two maximum-size messages interleaved on two channels fit).
    let partial_bound = config.max_message_size.saturating_mul(2) as usize;
    config.peer_is_loopback = crate::users::is_loopback(peer.ip());
    let now = std::time::Instant::now();
    let auth = Arc::new(crate::users::PeerAuth {
        users: shared.users.clone(),
        peer,
    });
    let mut conn = Connection::new(config, auth, now);
    let port = DeliveryPort::new(INBOX_CAPACITY);
    let mut delivered = std::collections::VecDeque::new();
    let mut session: Option<Session> = None;
    let mut input = BytesMut::new();
    let mut read_size = FIRST_READ;
    let mut peer_closed = false;
    let mut user = String::new();
    let mut vhost_name = String::new();
    // A publish held back by the memory alarm; while set, input is not read.
    let mut held: Option<Publish> = None;
    // Partly received bodies, as counted against the memory alarm.
    let mut partial_counted = 0usize;
    // The memory alarm stopped reading mid-body (no publish to hold yet).
    let mut paused = false;
    // Over `partial_bound`: not read; heartbeats then go unseen, so a
    // client that never finishes its bodies is closed as silent.
    let mut stalled = false;

    debug!(%peer, "connection accepted");
    loop {
        let now = std::time::Instant::now();
        let context = EventContext {
            shared: &shared,
            port: &port,
            peer,
            now,
        };
        while held.is_none() {
            let Some(event) = conn.next_event(&mut input, now) else {
                break;
            };
            match event {
                Event::Publish(publish) if session.is_some() && shared.broker.memory.is_over() => {
                    // RabbitMQ's memory alarm: hold the publish and stop
                    // reading this connection until consumers bring usage
                    // back under the watermark.
                    warn!(%peer, user, used = shared.broker.memory.used(), "memory alarm: publisher blocked");
                    conn.block("low on memory", now);
                    held = Some(publish);
                }
                event => {
                    handle_event(
                        event,
                        &mut conn,
                        &mut session,
                        &context,
                        &mut user,
                        &mut vhost_name,
                    )
                    .await
                }
            }
        }
        // Bodies still arriving count against the watermark; under the
        // alarm, a connection sending one is not read until it clears.
        let partial = conn.partial_body_bytes() as usize;
        if partial != partial_counted {
            if partial > partial_counted {
                shared.broker.memory.add(partial - partial_counted);
            } else {
                shared.broker.memory.sub(partial_counted - partial);
            }
            partial_counted = partial;
            let over = partial > partial_bound;
            if over && !stalled {
                warn!(%peer, user, partial, bound = partial_bound, "partly received bodies exceed the connection's bound: not reading it");
            }
            stalled = over;
        }
        if partial > 0 && held.is_none() && !paused && shared.broker.memory.is_over() {
            warn!(%peer, user, used = shared.broker.memory.used(), "memory alarm: publisher blocked");
            conn.block("low on memory", now);
            paused = true;
        }
        if let Some(session) = &mut session {
            session.flush_publishes().await;
            session.flush_confirms(&mut ConnOutbox {
                conn: &mut conn,
                now,
            });
        }
        if !outgoing.flush(&mut conn).await || conn.is_closed() || peer_closed {
            break;
        }
        let deadline = conn.next_timeout().map(Instant::from_std);
        // Rung by the store when publishes of this connection are on disk.
        let bell = session.as_ref().map(|s| s.bell());
        if input.capacity() - input.len() < read_size / 4 {
            // A fresh buffer rather than `reserve`: queued messages are
            // slices of the old one, and reserving on a buffer with nothing
            // else left in it grows that buffer in place, doubling each time.
            let mut fresh = BytesMut::with_capacity(read_size.max(input.len() + read_size / 2));
            fresh.extend_from_slice(&input);
            input = fresh;
        }
        tokio::select! {
            read = reader.read_buf(&mut input), if held.is_none() && !paused && !stalled => match read {
                Ok(0) | Err(_) => {
                    if conn.is_open() {
                        info!(%peer, user, "client closed the TCP connection without connection.close");
                    }
                    peer_closed = true;
                }
                Ok(n) => {
                    if n >= read_size / 2 {
                        read_size = (read_size * 2).min(READ_CHUNK);
                    }
                    conn.received_bytes(std::time::Instant::now())
                }
            },
            _ = port.recv_all(&mut delivered), if conn.is_open() => {
                let now = std::time::Instant::now();
                if let Some(session) = &mut session {
                    let mut out = ConnOutbox { conn: &mut conn, now };
                    while let Some(event) = delivered.pop_front() {
                        session.queue_event(event, &mut out).await;
                    }
                    session.events_drained();
                }
                delivered.clear();
            },
            _ = shared.broker.memory.wait_below(), if held.is_some() || paused => {
                let now = std::time::Instant::now();
                conn.unblock(now);
                paused = false;
                if let Some(publish) = held.take() {
                    let context = EventContext { shared: &shared, port: &port, peer, now };
                    handle_event(Event::Publish(publish), &mut conn, &mut session, &context, &mut user, &mut vhost_name).await;
                }
            },
            _ = ring(bell.as_deref()) => {}
            _ = sleep_until(deadline) => {
                let now = std::time::Instant::now();
                if held.is_some() || paused {
                    // Its heartbeats wait unread in the socket: not silent.
                    conn.received_bytes(now);
                }
                conn.handle_timeout(now);
            },
            _ = shutdown.changed() => {
                conn.close(ReplyCode::ConnectionForced, "broker forced connection closure with reason 'shutdown'", std::time::Instant::now());
            }
        }
    }

    shared.broker.memory.sub(partial_counted);
    // The session goes first: exclusive queues and unacknowledged messages
    // must not wait for the socket.
    if let Some(session) = &mut session {
        session.connection_closed().await;
    }
    for event in port.close() {
        let ConnEvent::Deliver(d) = event else {
            continue;
        };
        if !d.no_ack {
            d.queue.reject(smallvec_one(d.id), true).await;
        }
    }
    drop(outgoing);
    let _ = writer_task.await;
    if !peer_closed {
        let mut sink = [0u8; 4096];
        let _ = tokio::time::timeout(LINGER, async {
            while matches!(reader.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
    if session.is_some() {
        info!(%peer, user, vhost = vhost_name, "connection closed");
    } else {
        debug!(%peer, "connection closed before it opened");
    }
}

fn smallvec_one(id: u64) -> smallvec::SmallVec<[u64; 4]> {
    smallvec::smallvec![id]
}

async fn ring(bell: Option<&tokio::sync::Notify>) {
    match bell {
        Some(bell) => bell.notified().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What events need besides the connection and session.
struct EventContext<'a> {
    shared: &'a Shared,
    port: &'a Arc<DeliveryPort>,
    peer: SocketAddr,
    /// When the batch of input being handled was read: one clock read per
    /// batch, not per event.
    now: std::time::Instant,
}

async fn handle_event(
    event: Event,
    conn: &mut Connection,
    session: &mut Option<Session>,
    context: &EventContext<'_>,
    user: &mut String,
    vhost_name: &mut String,
) {
    let EventContext {
        shared,
        port,
        peer,
        now,
    } = *context;
    match event {
        Event::Opened { user: u, vhost } => {
            let Some(vh) = shared.broker.vhost(&vhost) else {
                // Checked by the authenticator; only a vhost removed since could be missing.
                conn.close(
                    ReplyCode::NotAllowed,
                    format!("vhost {vhost} not found"),
                    now,
                );
                return;
            };
            info!(%peer, user = u, vhost, "connection opened");
            let id = shared.broker.next_connection_id();
            *session = Some(Session::new(
                vh,
                id,
                u.clone(),
                conn.capabilities(),
                port.clone(),
            ));
            *user = u;
            *vhost_name = vhost;
        }
        Event::ChannelOpened(channel) => {
            if let Some(session) = session {
                session.channel_opened(channel);
            }
        }
        Event::Method { channel, method } => {
            let Some(session) = session else { return };
            let result = session
                .handle_method(channel, method, &mut ConnOutbox { conn, now })
                .await;
            if let Err(error) = result {
                conn.channel_error(channel, error, now);
            }
        }
        Event::Publish(publish) => {
            let Some(session) = session else { return };
            let channel = publish.channel;
            let result = session
                .publish(publish, &mut ConnOutbox { conn, now })
                .await;
            if let Err(error) = result {
                conn.channel_error(channel, error, now);
            }
        }
        Event::ChannelClosed { channel, error } => {
            if let Some(error) = error {
                warn!(%peer, user, channel, code = error.code.code(), "channel error: {}", Escaped(error.reply_text().as_bytes()));
            }
            if let Some(session) = session {
                session.channel_closed(channel).await;
            }
        }
        Event::ConnectionClosing { error } => {
            if let Some(error) = error {
                warn!(%peer, user, code = error.code.code(), "connection error: {}", Escaped(error.reply_text().as_bytes()));
            }
        }
    }
}

/// The way to the writer task: batches of chunks, with their byte cost
/// taken from a budget the writer gives back as it writes.
struct Outgoing {
    write_tx: mpsc::UnboundedSender<(Vec<Bytes>, u32)>,
    permits: Arc<Semaphore>,
}

impl Outgoing {
    /// Hands the output to the writer, waiting while too much is unwritten.
    /// False if the writer is gone.
    async fn flush(&self, conn: &mut Connection) -> bool {
        let output = conn.output();
        if output.is_empty() {
            return true;
        }
        let len = output.len().min(OUTBOUND_LIMIT) as u32;
        let chunks: Vec<Bytes> = output.drain().collect();
        match self.permits.acquire_many(len).await {
            Ok(permit) => permit.forget(),
            Err(_) => return false,
        }
        self.write_tx.send((chunks, len)).is_ok()
    }
}

/// Writes batches as they come, several at once when they queue up, and
/// gives the outbound budget back as they leave.
async fn write_loop<W: AsyncWrite>(
    writer: W,
    mut rx: mpsc::UnboundedReceiver<(Vec<Bytes>, u32)>,
    permits: Arc<Semaphore>,
) {
    tokio::pin!(writer);
    let mut chunks: Vec<Bytes> = Vec::new();
    while let Some((batch, cost)) = rx.recv().await {
        chunks.extend(batch);
        let mut released = cost;
        while let Ok((batch, cost)) = rx.try_recv() {
            chunks.extend(batch);
            released += cost;
        }
        if write_all(&mut writer, &mut chunks).await.is_err() {
            permits.close();
            return;
        }
        permits.add_permits(released as usize);
    }
    // No shutdown: like RabbitMQ, leave closing the socket to the client
    // after close-ok; the socket closes when the reader half is dropped too.
}

async fn write_all<W: AsyncWrite>(
    writer: &mut std::pin::Pin<&mut W>,
    chunks: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    let mut first = 0;
    while first < chunks.len() {
        let slices: Vec<IoSlice> = chunks[first..]
            .iter()
            .take(64)
            .map(|c| IoSlice::new(c))
            .collect();
        let mut written = writer.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let chunk = &mut chunks[first];
            if written >= chunk.len() {
                written -= chunk.len();
                first += 1;
            } else {
                let _ = chunk.split_to(written);
                written = 0;
            }
        }
    }
    writer.flush().await?;
    chunks.clear();
    Ok(())
}
