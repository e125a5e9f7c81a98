//! Warren's embedded store (see docs/storage.md): message segments written by
//! one thread with group commit, the definitions log, and recovery of both.

mod codec;
mod definitions;
pub mod format;
mod lock;
mod messages;
mod record;
mod recovery;
mod segments;
mod writer;

pub use definitions::{
    replay_definitions, BindingDefinition, Definition, DefinitionsLog, Replayed,
};
pub use lock::DirLock;
pub use messages::{
    DamageReport, DurableMark, MessageStore, PublishRecord, Recovered, StoredMessage,
};
