//! The segments and the index of the messages in them, shared by the writer
//! (which adds to it) and the queues (which read messages back from disk).

use bytes::Bytes;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use crate::message_record::StoredMessage;

/// Reads spanning more than this are split, so that read-ahead stays bounded.
const MAX_READ_SPAN: u32 = 1024 * 1024;

/// Where a message's record payload sits in its segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    pub id: u64,
    pub offset: u32,
    pub len: u32,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub number: u32,
    /// Queue references to its messages not yet acknowledged.
    pub live: u64,
    pub size: u64,
    /// Its publish records, sorted by id: 16 bytes per message, so a
    /// backlog of millions costs tens of megabytes, not its bodies.
    pub entries: Vec<Located>,
}

impl Segment {
    pub fn new(number: u32) -> Self {
        Segment {
            number,
            live: 0,
            size: 0,
            entries: Vec::new(),
        }
    }

    pub fn find(&self, id: u64) -> Option<Located> {
        let (first, last) = (self.entries.first()?, self.entries.last()?);
        if id < first.id || id > last.id {
            return None;
        }
        self.entries
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| self.entries[i])
    }

    /// Adds entries written in arrival order; ids from several publishers
    /// may arrive slightly out of order, so the list is re-sorted if needed.
    pub fn extend(&mut self, entries: &[Located]) {
        let sorted = match (self.entries.last(), entries.first()) {
            (Some(last), Some(first)) => {
                last.id < first.id && entries.windows(2).all(|w| w[0].id < w[1].id)
            }
            _ => entries.windows(2).all(|w| w[0].id < w[1].id),
        };
        self.entries.extend_from_slice(entries);
        if !sorted {
            self.entries.sort_unstable_by_key(|e| e.id);
        }
    }
}

pub(crate) fn segment_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:010}.seg"))
}

pub(crate) struct Segments {
    pub dir: PathBuf,
    /// Oldest first; the last one is written to.
    pub list: RwLock<Vec<Segment>>,
    /// Read handles, opened on first use.
    files: Mutex<HashMap<u32, Arc<File>>>,
}

impl Segments {
    pub fn new(dir: PathBuf, list: Vec<Segment>) -> Self {
        Segments {
            dir,
            list: RwLock::new(list),
            files: Mutex::new(HashMap::new()),
        }
    }

    pub fn read_list(&self) -> std::sync::RwLockReadGuard<'_, Vec<Segment>> {
        self.list.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn write_list(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Segment>> {
        self.list.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The segment holding message `id`, newest first (where most reads are).
    pub fn locate_in(list: &[Segment], id: u64) -> Option<(usize, Located)> {
        list.iter()
            .enumerate()
            .rev()
            .find_map(|(i, s)| s.find(id).map(|l| (i, l)))
    }

    fn file(&self, number: u32) -> io::Result<Arc<File>> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(file) = files.get(&number) {
            return Ok(file.clone());
        }
        let file = Arc::new(File::open(segment_path(&self.dir, number))?);
        files.insert(number, file.clone());
        Ok(file)
    }

    pub fn forget_file(&self, number: u32) {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&number);
    }

    /// Reads messages back, in the order asked; neighbours in a segment are
    /// read with one `pread`. `None` for an id that is not (yet) on disk.
    pub fn read(&self, ids: &[u64]) -> Vec<Option<StoredMessage>> {
        let located: Vec<Option<(u32, Located)>> = {
            let list = self.read_list();
            ids.iter()
                .map(|id| Self::locate_in(&list, *id).map(|(i, l)| (list[i].number, l)))
                .collect()
        };
        let mut out = vec![None; ids.len()];
        let mut i = 0;
        while i < ids.len() {
            let Some((number, first)) = located[i] else {
                i += 1;
                continue;
            };
            let (mut lo, mut hi) = (first.offset, first.offset + first.len);
            let mut j = i + 1;
            while let Some(Some((n, l))) = located.get(j) {
                let (new_lo, new_hi) = (lo.min(l.offset), hi.max(l.offset + l.len));
                if *n != number || new_hi - new_lo > MAX_READ_SPAN {
                    break;
                }
                (lo, hi) = (new_lo, new_hi);
                j += 1;
            }
            match self.read_span(number, lo, hi) {
                Ok(span) => {
                    for (slot, l) in out[i..j].iter_mut().zip(&located[i..j]) {
                        let Some((_, l)) = l else { continue };
                        let start = (l.offset - lo) as usize;
                        let payload = span.slice(start..start + l.len as usize);
                        *slot = crate::message_record::parse_publish(&payload).map(|(m, _, _)| m);
                    }
                }
                Err(e) => tracing::error!("message store: reading segment {number}: {e}"),
            }
            i = j;
        }
        out
    }

    fn read_span(&self, number: u32, lo: u32, hi: u32) -> io::Result<Bytes> {
        let file = self.file(number)?;
        let mut buf = vec![0u8; (hi - lo) as usize];
        file.read_exact_at(&mut buf, lo.into())?;
        Ok(Bytes::from(buf))
    }
}
