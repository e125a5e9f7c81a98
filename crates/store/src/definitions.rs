//! Durable exchanges, queues and bindings: an append-only log, replayed and
//! rewritten compacted at startup.

use bytes::Bytes;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::codec::*;
use crate::record::{frame_with, records};
use crate::writer::sync_dir;

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
    Binding {
        vhost: Bytes,
        source: Bytes,
        destination: Bytes,
        to_exchange: bool,
        routing_key: Bytes,
        arguments: Bytes,
    },
    Unbinding {
        vhost: Bytes,
        source: Bytes,
        destination: Bytes,
        to_exchange: bool,
        routing_key: Bytes,
        arguments: Bytes,
    },
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
            Definition::Binding {
                vhost,
                source,
                destination,
                to_exchange,
                routing_key,
                arguments,
            }
            | Definition::Unbinding {
                vhost,
                source,
                destination,
                to_exchange,
                routing_key,
                arguments,
            } => {
                put_u8(
                    p,
                    if matches!(self, Definition::Binding { .. }) {
                        b'B'
                    } else {
                        b'b'
                    },
                );
                put_short(p, vhost);
                put_short(p, source);
                put_short(p, destination);
                put_u8(p, *to_exchange as u8);
                put_short(p, routing_key);
                put_long(p, arguments);
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
            tag @ (b'B' | b'b') => {
                let (vhost, source, destination) = (s(r.short()?), s(r.short()?), s(r.short()?));
                let to_exchange = r.u8()? != 0;
                let (routing_key, arguments) = (s(r.short()?), s(r.long()?));
                if tag == b'B' {
                    Definition::Binding {
                        vhost,
                        source,
                        destination,
                        to_exchange,
                        routing_key,
                        arguments,
                    }
                } else {
                    Definition::Unbinding {
                        vhost,
                        source,
                        destination,
                        to_exchange,
                        routing_key,
                        arguments,
                    }
                }
            }
            _ => return None,
        })
    }
}

/// The definitions as they stand: applying the log's changes in order.
#[derive(Default)]
struct State {
    exchanges: Vec<Definition>,
    queues: Vec<Definition>,
    bindings: Vec<Definition>,
}

fn key(d: &Definition) -> (&Bytes, &Bytes) {
    match d {
        Definition::Exchange { vhost, name, .. }
        | Definition::DeleteExchange { vhost, name }
        | Definition::Queue { vhost, name, .. }
        | Definition::DeleteQueue { vhost, name } => (vhost, name),
        Definition::Binding { vhost, source, .. } | Definition::Unbinding { vhost, source, .. } => {
            (vhost, source)
        }
    }
}

impl State {
    fn apply(&mut self, d: Definition) {
        match &d {
            Definition::Exchange { .. } => {
                self.exchanges.retain(|e| key(e) != key(&d));
                self.exchanges.push(d);
            }
            Definition::Queue { .. } => {
                self.queues.retain(|q| key(q) != key(&d));
                self.queues.push(d);
            }
            Definition::DeleteExchange { vhost, name } => {
                self.exchanges.retain(|e| key(e) != (vhost, name));
                self.drop_bindings(vhost, name, true);
            }
            Definition::DeleteQueue { vhost, name } => {
                self.queues.retain(|q| key(q) != (vhost, name));
                self.drop_bindings(vhost, name, false);
            }
            Definition::Binding { .. } => {
                if !self.bindings.contains(&d) {
                    self.bindings.push(d);
                }
            }
            Definition::Unbinding {
                vhost,
                source,
                destination,
                to_exchange,
                routing_key,
                arguments,
            } => {
                let bound = Definition::Binding {
                    vhost: vhost.clone(),
                    source: source.clone(),
                    destination: destination.clone(),
                    to_exchange: *to_exchange,
                    routing_key: routing_key.clone(),
                    arguments: arguments.clone(),
                };
                self.bindings.retain(|b| *b != bound);
            }
        }
    }

    /// Bindings from or to a deleted exchange, or to a deleted queue.
    fn drop_bindings(&mut self, vh: &Bytes, name: &Bytes, exchange: bool) {
        self.bindings.retain(|b| {
            let Definition::Binding {
                vhost,
                source,
                destination,
                to_exchange,
                ..
            } = b
            else {
                return true;
            };
            let from = exchange && source == name;
            let to = destination == name && *to_exchange == exchange;
            !(vhost == vh && (from || to))
        });
    }

    fn into_list(self) -> Vec<Definition> {
        let mut all = self.exchanges;
        all.extend(self.queues);
        all.extend(self.bindings);
        all
    }
}

pub struct DefinitionsLog {
    file: File,
}

impl DefinitionsLog {
    /// Replays `dir/definitions.log`, rewrites it compacted, and returns the
    /// definitions: exchanges, then queues, then bindings.
    pub fn open(dir: &Path) -> io::Result<(DefinitionsLog, Vec<Definition>)> {
        let path = dir.join("definitions.log");
        let data = Bytes::from(std::fs::read(&path).or_else(|e| match e.kind() {
            io::ErrorKind::NotFound => Ok(Vec::new()),
            _ => Err(e),
        })?);
        let scan = records(&data);
        if let Some((at, _)) = scan.torn {
            tracing::warn!(
                "definitions.log: {} bytes of a torn record dropped at byte {at}",
                data.len() - at
            );
        }
        let mut state = State::default();
        for range in scan.records {
            match Definition::decode(&data.slice(range)) {
                Some(d) => state.apply(d),
                None => tracing::warn!("definitions.log: unreadable record skipped"),
            }
        }
        let definitions = state.into_list();
        let file = rewrite(dir, &path, &definitions)?;
        Ok((DefinitionsLog { file }, definitions))
    }

    /// Appends one change and makes it durable.
    pub fn append(&mut self, definition: &Definition) -> io::Result<()> {
        let mut buf = Vec::new();
        definition.encode(&mut buf);
        self.file.write_all(&buf)?;
        self.file.sync_data()
    }
}

/// Writes the compacted log beside the old one, then renames it into place.
fn rewrite(dir: &Path, path: &PathBuf, definitions: &[Definition]) -> io::Result<File> {
    let tmp = dir.join("definitions.log.tmp");
    let mut buf = Vec::new();
    for d in definitions {
        d.encode(&mut buf);
    }
    let mut file = File::create(&tmp)?;
    file.write_all(&buf)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(dir);
    File::options().append(true).open(path)
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
        let binding = Definition::Binding {
            vhost: b("/"),
            source: b("x"),
            destination: b("q"),
            to_exchange: false,
            routing_key: b("a.#"),
            arguments: b(""),
        };
        {
            let (mut log, defs) = DefinitionsLog::open(&dir).unwrap();
            assert!(defs.is_empty());
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
        let (_, defs) = DefinitionsLog::open(&dir).unwrap();
        assert_eq!(defs, [exchange.clone(), queue.clone(), binding]);
        {
            let (mut log, _) = DefinitionsLog::open(&dir).unwrap();
            log.append(&Definition::DeleteQueue {
                vhost: b("/"),
                name: b("q"),
            })
            .unwrap();
        }
        let (_, defs) = DefinitionsLog::open(&dir).unwrap();
        assert_eq!(defs, [exchange], "the queue and its binding are gone");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
