//! Warren's embedded store (see docs/storage.md): message segments written by
//! one thread with group commit, the definitions log, and recovery of both.

mod definitions;
mod durable_fs;
mod durable_mark;
mod fields;
pub mod format;
mod lock;
mod message_record;
mod messages;
mod record;
mod recovery;
mod segments;
mod writer;

pub use definitions::{
    replay_definitions, BindingDefinition, Definition, DefinitionsLog, Replayed,
};
pub use durable_mark::DurableMark;
pub use lock::DirLock;
pub use message_record::{PublishRecord, StoredMessage};
pub use messages::MessageStore;
pub use recovery::{DamageReport, Recovered};
