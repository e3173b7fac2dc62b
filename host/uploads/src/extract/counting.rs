//! Readers that count what passes through them, shared with the code that judges limits.
//!
//! Invariant: a `CappedReader` never yields more than `cap` bytes in total; past it, it fails
//! and records that the cap, not corruption, was the reason, so the error can say so.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// Counts the bytes read through it into a shared counter.
pub(crate) struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R> CountingReader<R> {
    pub(crate) fn new(inner: R, count: Rc<Cell<u64>>) -> Self {
        Self { inner, count }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.count.set(self.count.get() + read as u64);
        Ok(read)
    }
}

/// Fails once more than `cap` bytes were read, recording it in `exceeded`.
pub(crate) struct CappedReader<R> {
    inner: R,
    remaining: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R> CappedReader<R> {
    pub(crate) fn new(inner: R, cap: u64, exceeded: Rc<Cell<bool>>) -> Self {
        Self {
            inner,
            remaining: cap,
            exceeded,
        }
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for one byte past the cap at most, to tell "exactly at the cap" from "beyond".
        let wanted = buf
            .len()
            .min(usize::try_from(self.remaining.saturating_add(1)).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..wanted])?;
        if read as u64 > self.remaining {
            self.exceeded.set(true);
            return Err(io::Error::other(
                "the decompressed archive stream exceeds its cap",
            ));
        }
        self.remaining -= read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_reader_yields_up_to_the_cap_and_fails_beyond() {
        for (len, cap, passes) in [
            (10u64, 10u64, true),
            (10, 11, true),
            (11, 10, false),
            (0, 0, true),
        ] {
            let data = vec![7u8; len as usize];
            let exceeded = Rc::new(Cell::new(false));
            let mut reader = CappedReader::new(&data[..], cap, exceeded.clone());
            let mut out = Vec::new();
            let result = reader.read_to_end(&mut out);
            assert_eq!(result.is_ok(), passes, "len {len} cap {cap}");
            assert_eq!(exceeded.get(), !passes, "len {len} cap {cap}");
            assert!(out.len() as u64 <= cap);
        }
    }

    #[test]
    fn counting_reader_counts_every_byte() {
        let count = Rc::new(Cell::new(0));
        let mut out = Vec::new();
        CountingReader::new(&[1u8; 1000][..], count.clone())
            .read_to_end(&mut out)
            .ok();
        assert_eq!(count.get(), 1000);
    }
}
