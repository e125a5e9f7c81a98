//! Startup from the data directory: durable definitions, and the messages
//! their queues still held (as store ids: bodies are read back when needed).
//!
//! A stored message is deleted only by an acknowledgement the store
//! recorded. Messages of a queue that was deleted (the definitions log says
//! so) are released; messages of a queue the definitions log does not know
//! mean the log is missing or damaged: Warren then refuses to start, unless
//! told to keep them in quarantine queues (`--quarantine-orphans`).

use bytes::Bytes;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use warren_broker::{Broker, Escaped, ExchangeKind, Restored, Storage, VHost};
use warren_codec::{FieldTable, ShortString};
use warren_store::{Definition, PublishRecord};

type QueueKey = (Bytes, Bytes);

/// Prefix of the queues that take in orphaned messages.
pub const QUARANTINE_PREFIX: &str = "quarantine.";

fn name(bytes: &Bytes) -> Option<ShortString> {
    ShortString::try_from(bytes.clone()).ok()
}

fn table(bytes: &Bytes) -> FieldTable {
    FieldTable::from_encoded(bytes.clone()).unwrap_or_default()
}

fn describe((vhost, queue): &QueueKey) -> String {
    format!(
        "queue '{}' in vhost '{}'",
        Escaped(queue.as_ref()),
        Escaped(vhost.as_ref())
    )
}

/// Opens the data directory and restores from it.
pub async fn open(
    memory_limit: usize,
    queue_memory_budget: usize,
    dir: &Path,
    vhosts: &[String],
    quarantine_orphans: bool,
) -> Result<Arc<Broker>, String> {
    let (storage, restored) = Storage::open(dir, queue_memory_budget)
        .map_err(|e| format!("data directory {}: {e}", dir.display()))?;
    let broker = Broker::new(memory_limit, Some(storage.clone()));
    for vhost in vhosts {
        broker.add_vhost(vhost);
    }
    restore(&broker, &storage, restored, dir, quarantine_orphans).await?;
    Ok(broker)
}

/// Recreates durable entities in their vhosts and refills durable queues.
async fn restore(
    broker: &Broker,
    storage: &Storage,
    restored: Restored,
    dir: &Path,
    quarantine_orphans: bool,
) -> Result<(), String> {
    let Restored {
        definitions: replayed,
        messages: recovered,
    } = restored;
    let mut held: HashMap<QueueKey, Vec<u64>> = recovered.queues;
    // Messages of queues the definitions do not hold.
    let mut known = std::collections::HashSet::new();
    let mut leases = HashMap::new();
    for definition in &replayed.definitions {
        match definition {
            Definition::Queue { vhost, name, .. } => {
                known.insert((vhost.clone(), name.clone()));
            }
            Definition::QueueUsed { vhost, name, since } => {
                leases.insert((vhost.clone(), name.clone()), *since);
            }
            _ => {}
        }
    }
    let orphans: Vec<(QueueKey, Vec<u64>)> = held
        .keys()
        .filter(|key| !known.contains(*key))
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .filter_map(|key| held.remove(&key).map(|ids| (key, ids)))
        .collect();
    let (released, mut unknown): (Vec<_>, Vec<_>) = orphans
        .into_iter()
        .partition(|(key, _)| replayed.deleted_queues.contains(key));
    unknown.sort_by(|a, b| a.0.cmp(&b.0));
    if !unknown.is_empty() && !quarantine_orphans {
        return Err(refusal(dir, &unknown, replayed.found));
    }

    let (mut exchanges, mut queues, mut bindings, mut messages) = (0, 0, 0, 0);
    for definition in &replayed.definitions {
        let vhost_of = |v: &Bytes| -> Option<Arc<VHost>> {
            let name = std::str::from_utf8(v).ok()?;
            Some(broker.vhost(name).unwrap_or_else(|| {
                // The config's list bootstraps a new directory; it never
                // takes away what the data directory holds.
                tracing::info!(
                    "vhost '{}' restored from the data directory (it is not in the config's vhosts list)",
                    Escaped(name.as_bytes())
                );
                broker.add_vhost(name)
            }))
        };
        match definition {
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
                    tracing::warn!("restore: unusable definition skipped: {definition:?}");
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
                    tracing::warn!("restore: unusable definition skipped: {definition:?}");
                    continue;
                };
                let key = (vhost.clone(), n.clone());
                let stored = held.remove(&key).unwrap_or_default();
                messages += stored.len();
                let lease = leases.get(&key).copied();
                vh.restore_queue(queue, *auto_delete, table(arguments), stored, lease);
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

    // Messages of deleted queues: their acknowledgements are made durable
    // before the log that says the queues were deleted is compacted.
    let released_count: usize = released.iter().map(|(_, ids)| ids.len()).sum();
    for ((vhost, queue), ids) in released {
        storage.messages.ack(vhost, queue, ids).await;
    }
    if !storage.messages.sync().await {
        return Err(format!(
            "data directory {}: cannot write to the message store",
            dir.display()
        ));
    }
    storage
        .start_definitions(&replayed.definitions)
        .map_err(|e| format!("data directory {}: definitions.log: {e}", dir.display()))?;

    let mut quarantined = 0;
    for (key, ids) in unknown {
        quarantined += quarantine(broker, storage, key, ids)
            .await
            .map_err(|e| format!("data directory {}: {e}", dir.display()))?;
    }
    let damaged = recovered.damage.len();
    let lost: usize = recovered.damage.iter().map(|d| d.messages_lost).sum();
    tracing::info!(
        exchanges,
        queues,
        bindings,
        messages,
        released = released_count,
        quarantined,
        dropped_bytes = recovered.dropped_bytes,
        damaged_ranges = damaged,
        messages_lost = lost,
        "restored from the data directory"
    );
    Ok(())
}

/// The error that stops the broker from starting over orphaned messages.
fn refusal(dir: &Path, unknown: &[(QueueKey, Vec<u64>)], log_found: bool) -> String {
    let total: usize = unknown.iter().map(|(_, ids)| ids.len()).sum();
    let mut list: Vec<String> = unknown
        .iter()
        .take(5)
        .map(|(key, ids)| format!("{} ({} messages)", describe(key), ids.len()))
        .collect();
    if unknown.len() > 5 {
        list.push(format!("and {} more queues", unknown.len() - 5));
    }
    let why = if log_found {
        "definitions.log is damaged or incomplete"
    } else {
        "definitions.log is missing"
    };
    format!(
        "data directory {}: the message store holds {total} persistent messages of queues that the definitions do not know: {}. \
         Probably {why}. Nothing was changed. Restore definitions.log from a backup, or start once with \
         --quarantine-orphans to keep these messages in durable queues named '{QUARANTINE_PREFIX}<queue>' for inspection",
        dir.display(),
        list.join(", ")
    )
}

/// Copies a lost queue's messages into a new durable queue named after it,
/// then releases the originals. Returns the messages kept. Interrupted, it
/// may leave copies and originals both: the next start quarantines again.
async fn quarantine(
    broker: &Broker,
    storage: &Storage,
    key: QueueKey,
    ids: Vec<u64>,
) -> Result<usize, String> {
    let (vhost_bytes, queue) = &key;
    let vhost_name = String::from_utf8_lossy(vhost_bytes).into_owned();
    let vhost = broker
        .vhost(&vhost_name)
        .unwrap_or_else(|| broker.add_vhost(&vhost_name));
    let target = quarantine_name(&vhost, queue);
    storage
        .record(&Definition::Queue {
            vhost: vhost_bytes.clone(),
            name: target.to_bytes(),
            auto_delete: false,
            arguments: Bytes::new(),
        })
        .map_err(|e| format!("cannot declare the quarantine queue: {e}"))?;
    let mut copies = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(1024) {
        for message in storage.messages.read(chunk).into_iter().flatten() {
            let id = storage.messages.next_id();
            let record = PublishRecord {
                id,
                vhost: vhost_bytes.clone(),
                exchange: message.exchange,
                routing_key: message.routing_key,
                queues: vec![target.to_bytes()],
                header: message.header,
                body: message.body,
                published_at: message.published_at,
                expires_at: message.expires_at,
            };
            if !storage.messages.publish(record, None).await {
                return Err("cannot write to the message store".into());
            }
            copies.push(id);
        }
    }
    if !storage.messages.sync().await {
        return Err("cannot write to the message store".into());
    }
    storage
        .messages
        .ack(vhost_bytes.clone(), queue.clone(), ids)
        .await;
    if !storage.messages.sync().await {
        return Err("cannot write to the message store".into());
    }
    tracing::warn!(
        "{} messages of {} (unknown to the definitions) kept in quarantine queue '{}'",
        copies.len(),
        describe(&key),
        Escaped(target.as_bytes())
    );
    let kept = copies.len();
    vhost.restore_queue(target, false, FieldTable::new(), copies, None);
    Ok(kept)
}

/// `quarantine.<queue>`, cut to a short string, numbered if taken.
fn quarantine_name(vhost: &VHost, queue: &[u8]) -> ShortString {
    let mut base = QUARANTINE_PREFIX.as_bytes().to_vec();
    base.extend_from_slice(queue);
    base.truncate(ShortString::MAX_LEN - 4);
    let mut candidate = base.clone();
    for n in 2.. {
        if let Ok(name) = ShortString::try_from(Bytes::from(candidate.clone())) {
            if vhost.queue(&name).is_none() {
                return name;
            }
        }
        candidate = base.clone();
        candidate.extend_from_slice(format!(".{n}").as_bytes());
    }
    unreachable!("some number is free")
}
