//! Durable exchanges, queues and bindings: an append-only log, replayed at
//! startup and rewritten compacted once the broker has checked the messages
//! against it.

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::durable_fs::sync_dir;
use crate::fields::*;
use crate::record::{frame_with, records, FILE_HEADER};

/// A binding as stored: from exchange `source` to a queue or exchange.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BindingDefinition {
    pub vhost: Bytes,
    pub source: Bytes,
    pub destination: Bytes,
    pub to_exchange: bool,
    pub routing_key: Bytes,
    pub arguments: Bytes,
}

/// One change to the durable definitions. Arguments are encoded AMQP field
/// tables, kept byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Definition {
    Exchange {
        vhost: Bytes,
        name: Bytes,
        kind: Bytes,
        auto_delete: bool,
        internal: bool,
        arguments: Bytes,
    },
    DeleteExchange {
        vhost: Bytes,
        name: Bytes,
    },
    Queue {
        vhost: Bytes,
        name: Bytes,
        auto_delete: bool,
        arguments: Bytes,
    },
    DeleteQueue {
        vhost: Bytes,
        name: Bytes,
    },
    Binding(BindingDefinition),
    Unbinding(BindingDefinition),
    /// An `x-expires` queue's lease: unused since `since` (ms since the
    /// epoch), or in use (`since` 0). The latest counts.
    QueueUsed {
        vhost: Bytes,
        name: Bytes,
        since: u64,
    },
}

/// The log is compacted while running once it is this large and twice its
/// size after the last compaction.
const COMPACT_MIN: u64 = 1024 * 1024;

impl BindingDefinition {
    fn encode(&self, p: &mut Vec<u8>) {
        put_short(p, &self.vhost);
        put_short(p, &self.source);
        put_short(p, &self.destination);
        put_u8(p, self.to_exchange as u8);
        put_short(p, &self.routing_key);
        put_long(p, &self.arguments);
    }

    fn decode(r: &mut Reader, s: impl Fn(&[u8]) -> Bytes) -> Option<Self> {
        let (vhost, source, destination) = (s(r.short()?), s(r.short()?), s(r.short()?));
        let to_exchange = r.u8()? != 0;
        let (routing_key, arguments) = (s(r.short()?), s(r.long()?));
        Some(BindingDefinition {
            vhost,
            source,
            destination,
            to_exchange,
            routing_key,
            arguments,
        })
    }
}

impl Definition {
    fn encode(&self, out: &mut Vec<u8>) {
        frame_with(out, |p| match self {
            Definition::Exchange {
                vhost,
                name,
                kind,
                auto_delete,
                internal,
                arguments,
            } => {
                put_u8(p, b'E');
                put_short(p, vhost);
                put_short(p, name);
                put_short(p, kind);
                put_u8(p, *auto_delete as u8 | (*internal as u8) << 1);
                put_long(p, arguments);
            }
            Definition::DeleteExchange { vhost, name } => {
                put_u8(p, b'e');
                put_short(p, vhost);
                put_short(p, name);
            }
            Definition::Queue {
                vhost,
                name,
                auto_delete,
                arguments,
            } => {
                put_u8(p, b'Q');
                put_short(p, vhost);
                put_short(p, name);
                put_u8(p, *auto_delete as u8);
                put_long(p, arguments);
            }
            Definition::DeleteQueue { vhost, name } => {
                put_u8(p, b'q');
                put_short(p, vhost);
                put_short(p, name);
            }
            Definition::Binding(b) => {
                put_u8(p, b'B');
                b.encode(p);
            }
            Definition::Unbinding(b) => {
                put_u8(p, b'b');
                b.encode(p);
            }
            Definition::QueueUsed { vhost, name, since } => {
                put_u8(p, b'U');
                put_short(p, vhost);
                put_short(p, name);
                put_u64(p, *since);
            }
        });
    }

    fn decode(payload: &Bytes) -> Option<Definition> {
        let mut r = Reader::new(payload);
        let s = |x: &[u8]| payload.slice_ref(x);
        Some(match r.u8()? {
            b'E' => {
                let (vhost, name, kind) = (s(r.short()?), s(r.short()?), s(r.short()?));
                let flags = r.u8()?;
                let arguments = s(r.long()?);
                Definition::Exchange {
                    vhost,
                    name,
                    kind,
                    auto_delete: flags & 1 != 0,
                    internal: flags & 2 != 0,
                    arguments,
                }
            }
            b'e' => Definition::DeleteExchange {
                vhost: s(r.short()?),
                name: s(r.short()?),
            },
            b'Q' => {
                let (vhost, name) = (s(r.short()?), s(r.short()?));
                let auto_delete = r.u8()? != 0;
                Definition::Queue {
                    vhost,
                    name,
                    auto_delete,
                    arguments: s(r.long()?),
                }
            }
            b'q' => Definition::DeleteQueue {
                vhost: s(r.short()?),
                name: s(r.short()?),
            },
            b'B' => Definition::Binding(BindingDefinition::decode(&mut r, s)?),
            b'b' => Definition::Unbinding(BindingDefinition::decode(&mut r, s)?),
            b'U' => Definition::QueueUsed {
                vhost: s(r.short()?),
                name: s(r.short()?),
                since: r.u64()?,
            },
            _ => return None,
        })
    }
}

/// The definitions as they stand: applying the log's changes in order.
/// Keyed maps, so that replaying 10,000 declarations stays linear.
#[derive(Default)]
struct State {
    exchanges: BTreeMap<(Bytes, Bytes), Definition>,
    queues: BTreeMap<(Bytes, Bytes), Definition>,
    bindings: BTreeSet<BindingDefinition>,
    leases: BTreeMap<(Bytes, Bytes), u64>,
}

impl State {
    fn apply(&mut self, d: Definition) {
        match d {
            Definition::Exchange {
                ref vhost,
                ref name,
                ..
            } => {
                self.exchanges.insert((vhost.clone(), name.clone()), d);
            }
            Definition::Queue {
                ref vhost,
                ref name,
                ..
            } => {
                // A queue declared anew starts a new lease.
                let key = (vhost.clone(), name.clone());
                self.leases.remove(&key);
                self.queues.insert(key, d);
            }
            Definition::DeleteExchange { vhost, name } => {
                self.drop_bindings(&vhost, &name, true);
                self.exchanges.remove(&(vhost, name));
            }
            Definition::DeleteQueue { vhost, name } => {
                self.drop_bindings(&vhost, &name, false);
                let key = (vhost, name);
                self.leases.remove(&key);
                self.queues.remove(&key);
            }
            Definition::QueueUsed { vhost, name, since } => {
                let key = (vhost, name);
                if self.queues.contains_key(&key) {
                    self.leases.insert(key, since);
                }
            }
            Definition::Binding(b) => {
                self.bindings.insert(b);
            }
            Definition::Unbinding(b) => {
                self.bindings.remove(&b);
            }
        }
    }

    /// Bindings from or to a deleted exchange, or to a deleted queue.
    fn drop_bindings(&mut self, vhost: &Bytes, name: &Bytes, exchange: bool) {
        self.bindings.retain(|b| {
            let from = exchange && b.source == name;
            let to = b.destination == name && b.to_exchange == exchange;
            !(b.vhost == vhost && (from || to))
        });
    }

    fn into_list(self) -> Vec<Definition> {
        self.list()
    }

    /// Exchanges, then queues, then bindings, then leases.
    fn list(&self) -> Vec<Definition> {
        let mut all: Vec<Definition> = self.exchanges.values().cloned().collect();
        all.extend(self.queues.values().cloned());
        all.extend(self.bindings.iter().cloned().map(Definition::Binding));
        all.extend(
            self.leases
                .iter()
                .map(|((vhost, name), since)| Definition::QueueUsed {
                    vhost: vhost.clone(),
                    name: name.clone(),
                    since: *since,
                }),
        );
        all
    }
}

/// What the definitions log held at startup.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The definitions as they stand: exchanges, then queues, then
    /// bindings, then leases.
    pub definitions: Vec<Definition>,
    /// (vhost, queue) of queues deleted and not declared again: messages the
    /// store still holds for them were on their way out.
    pub deleted_queues: HashSet<(Bytes, Bytes)>,
    /// Damaged byte ranges (their definitions are lost).
    pub damaged: Vec<std::ops::Range<usize>>,
    /// The log exists (a data directory without one has no definitions).
    pub found: bool,
}

/// Reads `dir/definitions.log` without changing it.
pub fn replay_definitions(dir: &Path) -> io::Result<Replayed> {
    let path = dir.join("definitions.log");
    let (data, found) = match std::fs::read(&path) {
        Ok(data) => (Bytes::from(data), true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Bytes::new(), false),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    let scan = records(&data, 0);
    let mut replayed = Replayed {
        found,
        ..Default::default()
    };
    for damage in &scan.damaged {
        tracing::error!(
            "{}: bytes {}..{} are damaged; the definitions in them are lost",
            path.display(),
            damage.range.start,
            damage.range.end
        );
        replayed.damaged.push(damage.range.clone());
    }
    let mut state = State::default();
    for range in scan.records {
        match Definition::decode(&data.slice(range)) {
            Some(d) => {
                if let Definition::DeleteQueue { vhost, name } = &d {
                    replayed
                        .deleted_queues
                        .insert((vhost.clone(), name.clone()));
                }
                state.apply(d);
            }
            None => tracing::warn!("definitions.log: unreadable record skipped"),
        }
    }
    for key in state.queues.keys() {
        replayed.deleted_queues.remove(key);
    }
    replayed.definitions = state.into_list();
    Ok(replayed)
}

pub struct DefinitionsLog {
    file: File,
    dir: PathBuf,
    /// The definitions as they stand, to compact from.
    state: State,
    /// Deletions of queues, with the compaction count when they happened:
    /// kept through one compaction, so that a crash soon after a deletion
    /// still finds it and releases the queue's last messages.
    deleted: BTreeMap<(Bytes, Bytes), u64>,
    compactions: u64,
    len: u64,
    compact_at: u64,
    compact_min: u64,
}

impl DefinitionsLog {
    /// Writes `definitions` as the whole log, in today's format, and opens
    /// it for appending.
    pub fn rewrite(dir: &Path, definitions: &[Definition]) -> io::Result<DefinitionsLog> {
        let mut state = State::default();
        for d in definitions {
            state.apply(d.clone());
        }
        let (file, len) = rewrite(dir, &dir.join("definitions.log"), definitions)?;
        Ok(DefinitionsLog {
            file,
            dir: dir.to_path_buf(),
            state,
            deleted: BTreeMap::new(),
            compactions: 0,
            len,
            compact_at: (2 * len).max(COMPACT_MIN),
            compact_min: COMPACT_MIN,
        })
    }

    /// Appends one change and makes it durable. On failure the log is cut
    /// back to where it was, so no half-written record stays. Past its
    /// threshold the log is then compacted.
    pub fn append(&mut self, definition: &Definition) -> io::Result<()> {
        let mut buf = Vec::new();
        definition.encode(&mut buf);
        let result = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = result {
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += buf.len() as u64;
        match definition {
            Definition::DeleteQueue { vhost, name } => {
                self.deleted
                    .insert((vhost.clone(), name.clone()), self.compactions);
            }
            Definition::Queue { vhost, name, .. } => {
                self.deleted.remove(&(vhost.clone(), name.clone()));
            }
            _ => {}
        }
        self.state.apply(definition.clone());
        if self.len >= self.compact_at {
            // The change is durable already; a failed compaction only
            // leaves the log longer.
            if let Err(e) = self.compact() {
                tracing::warn!("definitions.log: compaction failed: {e}");
                self.compact_at = self.len + self.compact_min;
            }
        }
        Ok(())
    }

    /// Rewrites the log from the definitions as they stand, with the
    /// queue deletions since the last compaction.
    fn compact(&mut self) -> io::Result<()> {
        // Deletions from before the last compaction have been in one
        // compacted log already: their queues' acks are long written.
        let compactions = self.compactions;
        self.deleted.retain(|_, at| *at >= compactions);
        let mut list = self.state.list();
        list.extend(
            self.deleted
                .keys()
                .map(|(vhost, name)| Definition::DeleteQueue {
                    vhost: vhost.clone(),
                    name: name.clone(),
                }),
        );
        let (file, len) = rewrite(&self.dir, &self.dir.join("definitions.log"), &list)?;
        self.file = file;
        self.len = len;
        self.compact_at = (2 * len).max(self.compact_min);
        self.compactions += 1;
        Ok(())
    }

    /// The log's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= FILE_HEADER.len() as u64
    }
}

/// Writes the compacted log beside the old one, then renames it into place.
fn rewrite(dir: &Path, path: &PathBuf, definitions: &[Definition]) -> io::Result<(File, u64)> {
    let tmp = dir.join("definitions.log.tmp");
    let mut buf = FILE_HEADER.to_vec();
    for d in definitions {
        d.encode(&mut buf);
    }
    let mut file = File::create(&tmp)?;
    file.write_all(&buf)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(dir);
    Ok((File::options().append(true).open(path)?, buf.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn replay_applies_changes_and_compacts() {
        let dir = std::env::temp_dir().join(format!("warren-defs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join("definitions.log"));
        let queue = Definition::Queue {
            vhost: b("/"),
            name: b("q"),
            auto_delete: false,
            arguments: b(""),
        };
        let exchange = Definition::Exchange {
            vhost: b("/"),
            name: b("x"),
            kind: b("topic"),
            auto_delete: false,
            internal: true,
            arguments: b("\x01kS\x00\x00\x00\x01v"),
        };
        let binding = Definition::Binding(BindingDefinition {
            vhost: b("/"),
            source: b("x"),
            destination: b("q"),
            to_exchange: false,
            routing_key: b("a.#"),
            arguments: b(""),
        });
        {
            let replayed = replay_definitions(&dir).unwrap();
            assert!(!replayed.found);
            let mut log = DefinitionsLog::rewrite(&dir, &replayed.definitions).unwrap();
            for d in [&queue, &exchange, &binding] {
                log.append(d).unwrap();
            }
            log.append(&Definition::Queue {
                vhost: b("/"),
                name: b("gone"),
                auto_delete: false,
                arguments: b(""),
            })
            .unwrap();
            log.append(&Definition::DeleteQueue {
                vhost: b("/"),
                name: b("gone"),
            })
            .unwrap();
        }
        let replayed = replay_definitions(&dir).unwrap();
        assert_eq!(
            replayed.definitions,
            [exchange.clone(), queue.clone(), binding]
        );
        assert!(replayed.deleted_queues.contains(&(b("/"), b("gone"))));
        {
            let mut log = DefinitionsLog::rewrite(&dir, &replayed.definitions).unwrap();
            log.append(&Definition::DeleteQueue {
                vhost: b("/"),
                name: b("q"),
            })
            .unwrap();
        }
        let replayed = replay_definitions(&dir).unwrap();
        assert_eq!(
            replayed.definitions,
            [exchange],
            "the queue and its binding are gone"
        );
        assert!(replayed.deleted_queues.contains(&(b("/"), b("q"))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_latest_lease_of_a_queue_that_exists_is_kept() {
        let dir = std::env::temp_dir().join(format!("warren-defs-lease-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let queue = |name: &str| Definition::Queue {
            vhost: b("/"),
            name: b(name),
            auto_delete: false,
            arguments: b(""),
        };
        let used = |name: &str, since| Definition::QueueUsed {
            vhost: b("/"),
            name: b(name),
            since,
        };
        {
            let mut log = DefinitionsLog::rewrite(&dir, &[]).unwrap();
            for d in [
                queue("q"),
                used("q", 5),
                used("q", 0),
                used("q", 9),
                queue("gone"),
                used("gone", 7),
                Definition::DeleteQueue {
                    vhost: b("/"),
                    name: b("gone"),
                },
                used("missing", 3),
                queue("again"),
                used("again", 4),
                queue("again"),
            ] {
                log.append(&d).unwrap();
            }
        }
        let replayed = replay_definitions(&dir).unwrap();
        assert_eq!(
            replayed.definitions,
            [queue("again"), queue("q"), used("q", 9)],
            "deleted, unknown and redeclared queues' leases are dropped"
        );
        // Compaction keeps it.
        DefinitionsLog::rewrite(&dir, &replayed.definitions).unwrap();
        assert_eq!(
            replay_definitions(&dir).unwrap().definitions,
            replayed.definitions
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn churn_is_compacted_while_running() {
        let dir = std::env::temp_dir().join(format!("warren-defs-churn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = DefinitionsLog::rewrite(&dir, &[]).unwrap();
        (log.compact_at, log.compact_min) = (64 * 1024, 64 * 1024);
        let queue = |i: u32| Definition::Queue {
            vhost: b("/"),
            name: Bytes::from(format!("churn-{i}")),
            auto_delete: false,
            arguments: b(""),
        };
        log.append(&queue(0)).unwrap();
        for i in 1..=5_000 {
            log.append(&queue(i)).unwrap();
            log.append(&Definition::DeleteQueue {
                vhost: b("/"),
                name: Bytes::from(format!("churn-{i}")),
            })
            .unwrap();
            let size = std::fs::metadata(dir.join("definitions.log"))
                .unwrap()
                .len();
            assert!(size < 200 * 1024, "{size} bytes after {i} cycles");
        }
        let replayed = replay_definitions(&dir).unwrap();
        assert_eq!(replayed.definitions, [queue(0)]);
        // The latest deletion is still known after the compactions.
        assert!(replayed.deleted_queues.contains(&(b("/"), b("churn-5000"))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
