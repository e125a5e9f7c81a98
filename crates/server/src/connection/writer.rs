//! The writer task: the connection's output in batches, written with
//! vectored writes, and the outbound budget that bounds what waits for the
//! socket.

use bytes::Bytes;
use std::io::IoSlice;
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use warren_protocol::Connection;

/// Bytes a connection may have waiting for its socket; past it, the
/// connection stops reading and taking deliveries until the writer catches up.
const OUTBOUND_LIMIT: usize = 4 * 1024 * 1024;

/// The way to the writer task: batches of chunks, with their byte cost
/// taken from a budget the writer gives back as it writes.
pub(super) struct Outgoing {
    write_tx: mpsc::UnboundedSender<(Vec<Bytes>, u32)>,
    permits: Arc<Semaphore>,
}

impl Outgoing {
    /// Starts the writer task for `writer`.
    pub fn start<W: AsyncWrite + Send + 'static>(
        writer: W,
    ) -> (Outgoing, tokio::task::JoinHandle<()>) {
        let permits = Arc::new(Semaphore::new(OUTBOUND_LIMIT));
        let (write_tx, write_rx) = mpsc::unbounded_channel::<(Vec<Bytes>, u32)>();
        let task = tokio::spawn(write_loop(writer, write_rx, permits.clone()));
        (Outgoing { write_tx, permits }, task)
    }

    /// Hands the output to the writer, waiting while too much is unwritten.
    /// False if the writer is gone.
    pub async fn flush(&self, conn: &mut Connection) -> bool {
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
