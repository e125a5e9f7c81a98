//! The data directory's format version, in `dir/FORMAT`: checked before
//! anything is read, so that a Warren never misreads (or damages) a
//! directory written by a newer one.
//!
//! Format 1 (no `FORMAT` file): records framed by length and CRC.
//! Format 2: files begin with a header and every record with a marker, so
//! that recovery can skip a damaged record. Format 1 directories are
//! upgraded in place: their segments stay readable until their messages are
//! acknowledged, new segments and the rewritten definitions log are format 2.

use std::io::{self, Write};
use std::path::Path;

use crate::durable_fs::sync_dir;

/// The format this Warren writes.
pub const DATA_FORMAT: u32 = 2;
const FILE: &str = "FORMAT";
const PREFIX: &str = "warren data format ";

/// The directory's format: `None` for a new, empty directory.
pub fn read(dir: &Path) -> io::Result<Option<u32>> {
    let path = dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .strip_prefix(PREFIX)
            .and_then(|n| n.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a Warren format file", path.display()),
                )
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let used = dir.join("definitions.log").exists() || dir.join("messages").exists();
            Ok(used.then_some(1))
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

/// Refuses a directory of a newer format.
pub fn check(dir: &Path) -> io::Result<Option<u32>> {
    let format = read(dir)?;
    if let Some(n) = format.filter(|n| *n > DATA_FORMAT) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds data format {n}, written by a newer Warren; this one reads formats 1 to {DATA_FORMAT}: run the newer Warren on it",
                dir.display()
            ),
        ));
    }
    Ok(format)
}

/// Records that the directory is in today's format.
pub fn mark_current(dir: &Path) -> io::Result<()> {
    if read(dir)? == Some(DATA_FORMAT) {
        return Ok(());
    }
    let tmp = dir.join("FORMAT.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    writeln!(file, "{PREFIX}{DATA_FORMAT}")?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))?;
    sync_dir(dir);
    Ok(())
}
