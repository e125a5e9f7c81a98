//! The broker's link to the data directory: the message store, the
//! definitions log and the lock that keeps a second broker out.

use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use warren_store::{Definition, DefinitionsLog, DirLock, MessageStore, Recovered, Replayed};

pub struct Storage {
    pub messages: Arc<MessageStore>,
    /// Bytes of stored messages a durable queue keeps in memory; beyond,
    /// they are read back from disk when needed.
    pub queue_memory_budget: usize,
    /// Opened by [`start_definitions`](Self::start_definitions) once the
    /// restore has checked the messages against the definitions.
    definitions: Mutex<Option<DefinitionsLog>>,
    dir: PathBuf,
    _lock: DirLock,
}

/// What the data directory held at startup.
pub struct Restored {
    pub definitions: Replayed,
    pub messages: Recovered,
}

impl Storage {
    pub fn open(
        dir: &Path,
        queue_memory_budget: usize,
    ) -> std::io::Result<(Arc<Storage>, Restored)> {
        let lock = DirLock::acquire(dir)?;
        warren_store::format::check(dir)?;
        let definitions = warren_store::replay_definitions(dir)?;
        let (messages, recovered) = MessageStore::open(dir)?;
        let storage = Storage {
            messages,
            queue_memory_budget,
            definitions: Mutex::new(None),
            dir: dir.to_path_buf(),
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

    /// Rewrites the definitions log as `definitions` (compacted, in
    /// today's format) and opens it for changes; the data directory is then
    /// marked as today's format.
    pub fn start_definitions(&self, definitions: &[Definition]) -> io::Result<()> {
        let log = DefinitionsLog::rewrite(&self.dir, definitions)?;
        *self.definitions.lock().unwrap_or_else(|e| e.into_inner()) = Some(log);
        warren_store::format::mark_current(&self.dir)
    }

    /// Records a change to the durable definitions, durably. Called with the
    /// vhost's definition lock held, so changes are logged in the order made.
    pub fn record(&self, definition: &Definition) -> io::Result<()> {
        let mut log = self.definitions.lock().unwrap_or_else(|e| e.into_inner());
        let Some(log) = log.as_mut() else {
            return Err(io::Error::other("the definitions log is not open yet"));
        };
        log.append(definition).inspect_err(|e| {
            tracing::error!("definitions.log: cannot record {definition:?}: {e}");
        })
    }
}

pub fn bytes(s: &impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}
