//! Startup from the data directory: durable definitions, and the messages
//! their queues still held (as store ids: bodies are read back when needed).

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use warren_broker::{Broker, ExchangeKind, Restored, Storage};
use warren_codec::{FieldTable, ShortString};
use warren_store::Definition;

fn name(bytes: &Bytes) -> Option<ShortString> {
    ShortString::try_from(bytes.clone()).ok()
}

fn table(bytes: &Bytes) -> FieldTable {
    FieldTable::from_encoded(bytes.clone()).unwrap_or_default()
}

/// Recreates durable entities in their vhosts and refills durable queues.
pub async fn restore(broker: &Broker, storage: &Storage, restored: Restored) {
    let mut held: HashMap<(Bytes, Bytes), Vec<u64>> = restored.messages.queues;
    let (mut exchanges, mut queues, mut bindings, mut messages) = (0, 0, 0, 0);
    for definition in restored.definitions {
        let vhost_of = |v: &Bytes| {
            let vhost = std::str::from_utf8(v).ok().and_then(|v| broker.vhost(v));
            if vhost.is_none() {
                tracing::warn!(
                    "restore: vhost {:?} is not configured; {definition:?} skipped",
                    String::from_utf8_lossy(v)
                );
            }
            vhost
        };
        match &definition {
            Definition::Exchange {
                vhost,
                name: n,
                kind,
                auto_delete,
                internal,
                arguments,
            } => {
                let (Some(vh), Some(n), Some(kind)) =
                    (vhost_of(vhost), name(n), ExchangeKind::parse(kind))
                else {
                    continue;
                };
                vh.restore_exchange(n, kind, *auto_delete, *internal, table(arguments));
                exchanges += 1;
            }
            Definition::Queue {
                vhost,
                name: n,
                auto_delete,
                arguments,
            } => {
                let (Some(vh), Some(queue)) = (vhost_of(vhost), name(n)) else {
                    continue;
                };
                let stored = held.remove(&(vhost.clone(), n.clone())).unwrap_or_default();
                messages += stored.len();
                vh.restore_queue(queue, *auto_delete, table(arguments), stored);
                queues += 1;
            }
            Definition::Binding(b) => {
                let Some(vh) = vhost_of(&b.vhost) else {
                    continue;
                };
                let (Some(s), Some(d), Some(k)) =
                    (name(&b.source), name(&b.destination), name(&b.routing_key))
                else {
                    continue;
                };
                if vh.restore_binding(&s, &d, b.to_exchange, k, table(&b.arguments)) {
                    bindings += 1;
                }
            }
            _ => {}
        }
    }
    // Messages of queues that no longer exist (deleted just before a crash).
    for ((vhost, queue), ids) in held {
        storage.messages.ack(vhost, queue, ids).await;
    }
    tracing::info!(
        exchanges,
        queues,
        bindings,
        messages,
        dropped_bytes = restored.messages.dropped_bytes,
        "restored from the data directory"
    );
}

/// Opens the data directory and restores from it.
pub async fn open(
    memory_limit: usize,
    queue_memory_budget: usize,
    dir: &std::path::Path,
    vhosts: &[String],
) -> Result<Arc<Broker>, String> {
    let (storage, restored) = Storage::open(dir, queue_memory_budget)
        .map_err(|e| format!("data directory {}: {e}", dir.display()))?;
    let broker = Broker::new(memory_limit, Some(storage.clone()));
    for vhost in vhosts {
        broker.add_vhost(vhost);
    }
    restore(&broker, &storage, restored).await;
    Ok(broker)
}
