//! One broker per data directory.

use std::fs::File;
use std::io;
use std::path::Path;

/// Held for as long as the broker runs; released when dropped (or when the
/// process dies, so a crash never leaves a stale lock).
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> io::Result<DirLock> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("warren.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                // The caller names the data directory.
                format!("in use by another Warren ({} is locked)", path.display()),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused() {
        let dir = std::env::temp_dir().join(format!("warren-lock-{}", std::process::id()));
        let first = DirLock::acquire(&dir).unwrap();
        let second = DirLock::acquire(&dir);
        assert!(second.is_err_and(|e| e.to_string().contains("in use by another Warren")));
        drop(first);
        DirLock::acquire(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
