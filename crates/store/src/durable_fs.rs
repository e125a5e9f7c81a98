//! Making a directory's changes (files created, renamed, removed) durable.

use std::fs::File;

/// Makes a new or removed file name durable.
pub(crate) fn sync_dir(dir: &std::path::Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
