//! The broker's link to the data directory: the message store, the
//! definitions log and the lock that keeps a second broker out.

use bytes::Bytes;
use std::path::Path;
use std::sync::{Arc, Mutex};
use warren_store::{Definition, DefinitionsLog, DirLock, MessageStore, Recovered};

pub struct Storage {
    pub messages: Arc<MessageStore>,
    /// Bytes of stored messages a durable queue keeps in memory; beyond,
    /// they are read back from disk when needed.
    pub queue_memory_budget: usize,
    definitions: Mutex<DefinitionsLog>,
    _lock: DirLock,
}

/// What the data directory held at startup.
pub struct Restored {
    pub definitions: Vec<Definition>,
    pub messages: Recovered,
}

impl Storage {
    pub fn open(
        dir: &Path,
        queue_memory_budget: usize,
    ) -> std::io::Result<(Arc<Storage>, Restored)> {
        let lock = DirLock::acquire(dir)?;
        let (definitions_log, definitions) = DefinitionsLog::open(dir)?;
        let (messages, recovered) = MessageStore::open(dir)?;
        let storage = Storage {
            messages,
            queue_memory_budget,
            definitions: Mutex::new(definitions_log),
            _lock: lock,
        };
        Ok((
            Arc::new(storage),
            Restored {
                definitions,
                messages: recovered,
            },
        ))
    }

    /// Records a change to the durable definitions, durably. Called with the
    /// vhost's definition lock held, so changes are logged in the order made.
    pub fn record(&self, definition: Definition) {
        let mut log = self.definitions.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = log.append(&definition) {
            tracing::error!("definitions.log: cannot record {definition:?}: {e}");
        }
    }
}

pub fn bytes(s: &impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}
