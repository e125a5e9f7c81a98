//! The store side of a persistent queue: ack records for messages that
//! left, and paging stored messages out of memory and back.

use super::backlog::Entry;
use super::backlog::{Paged, UNKNOWN};
use super::QueueState;
use crate::message::Message;

impl QueueState {
    /// Tells the store which stored messages left this queue for good.
    pub(super) async fn write_acks(&mut self) {
        // Dead letters are stored for their queues before this queue lets
        // go of them: a crash leaves a message here, there, or in both.
        self.send_dead_letters().await;
        if let Some(p) = &self.persistence {
            if !self.stored_gone.is_empty() {
                let ids = std::mem::take(&mut self.stored_gone);
                p.store.ack(p.vhost.clone(), p.queue.clone(), ids).await;
            }
        }
    }

    /// Reads paged messages back from the store.
    pub(super) fn page_in(&mut self, paged: &[Paged]) {
        let read = match &self.persistence {
            Some(p) => p
                .store
                .read(&paged.iter().map(|p| p.stored).collect::<Vec<_>>()),
            None => Vec::new(),
        };
        let mut loaded = Vec::with_capacity(paged.len());
        for (p, stored) in paged.iter().zip(read) {
            let Some(stored) = stored else { break };
            let published_at = (stored.published_at != 0).then_some(stored.published_at);
            let Some(mut message) = Message::from_stored(stored) else {
                break;
            };
            if p.expires_at == UNKNOWN {
                self.set_deadline(&mut message, published_at);
            } else {
                message.expires_at = p.expires_at;
            }
            self.bytes += message.size();
            self.memory.add(message.size());
            loaded.push(Entry {
                id: p.id,
                message,
                redelivered: p.redelivered,
                priority: 0,
            });
        }
        let complete = loaded.len() == paged.len();
        self.backlog.loaded(loaded);
        if !complete {
            // Unreadable: say so, and let its segment go.
            if let Some(lost) = self.backlog.skip_paged() {
                tracing::error!(
                    "queue: stored message {} could not be read back; dropped",
                    lost.stored
                );
                self.stored_gone.push(lost.stored);
            }
        }
    }

    /// Over its memory budget, a persistent queue keeps stored messages on
    /// disk only.
    pub(super) fn page_out(&mut self) {
        let Some(p) = &self.persistence else { return };
        if self.bytes <= p.budget {
            return;
        }
        let store = p.store.clone();
        let free = self.bytes - p.budget * 3 / 4;
        let freed = self.backlog.page_out(free, |id| store.is_written(id));
        self.bytes -= freed;
        self.memory.sub(freed);
    }
}
