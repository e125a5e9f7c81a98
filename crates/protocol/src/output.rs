//! Bytes waiting to be written: encoded frames, with large bodies kept as
//! the shared buffers they arrived in rather than copied.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;

/// Bodies at least this large go out as their own chunk (a vectored write)
/// instead of being copied next to their frame header.
const ZERO_COPY_MIN: usize = 2048;

#[derive(Debug, Default)]
pub struct Output {
    chunks: VecDeque<Bytes>,
    current: BytesMut,
    queued: usize,
}

impl Output {
    /// The buffer to encode the next frames into.
    pub(crate) fn buf(&mut self) -> &mut BytesMut {
        &mut self.current
    }

    /// Appends `body[range]`: copied if small, shared if large (only then is
    /// a slice of the shared buffer taken).
    pub(crate) fn push_body(&mut self, body: &Bytes, range: std::ops::Range<usize>) {
        if range.len() < ZERO_COPY_MIN {
            self.current.extend_from_slice(&body[range]);
        } else {
            self.seal();
            self.queued += range.len();
            self.chunks.push_back(body.slice(range));
        }
    }

    fn seal(&mut self) {
        if !self.current.is_empty() {
            let chunk = self.current.split().freeze();
            self.queued += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.queued + self.current.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes everything queued, in order, for one (vectored) write.
    pub fn drain(&mut self) -> impl Iterator<Item = Bytes> + '_ {
        self.seal();
        self.queued = 0;
        self.chunks.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_bodies_are_copied_large_ones_shared() {
        let mut out = Output::default();
        out.buf().extend_from_slice(b"head");
        out.push_body(&Bytes::from_static(b"small"), 0..5);
        let big = Bytes::from(vec![1u8; 4096]);
        out.push_body(&big, 0..4096);
        out.buf().extend_from_slice(b"tail");
        assert_eq!(out.len(), 4 + 5 + 4096 + 4);
        let chunks: Vec<Bytes> = out.drain().collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(&chunks[0][..], b"headsmall");
        assert_eq!(chunks[1].as_ptr(), big.as_ptr(), "the body is not copied");
        assert_eq!(&chunks[2][..], b"tail");
        assert!(out.is_empty());
    }
}
