//! The bounded byte source the format walkers read through (the pickle disassembler, GGUF):
//! it counts the offset, never buffers more than it is asked to keep, skips large payloads
//! without storing them, and stops with a typed [`SourceError`].

use std::io::{BufRead, Read};

/// Why reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The input ended inside an opcode.
    #[error("unexpected end of data")]
    Eof,
    /// A text-line argument was longer than allowed.
    #[error("line argument longer than {0} bytes")]
    LineTooLong(usize),
    /// The underlying reader failed.
    #[error("read error: {0}")]
    Io(String),
}

/// Something the disassembler can read opcodes from.
pub trait Source {
    /// Bytes consumed so far (the offset of the next byte).
    fn offset(&self) -> u64;
    /// The next byte, or `None` at the end.
    fn next_byte(&mut self) -> Result<Option<u8>, SourceError>;
    /// Exactly `n` bytes (callers bound `n`).
    fn take(&mut self, n: usize) -> Result<Vec<u8>, SourceError>;
    /// Skips `n` bytes without keeping them.
    fn skip(&mut self, n: u64) -> Result<(), SourceError>;
    /// A `\n`-terminated line (without the newline), at most `max` bytes.
    fn line(&mut self, max: usize) -> Result<Vec<u8>, SourceError>;
    /// Whether the input is exhausted.
    fn at_end(&mut self) -> Result<bool, SourceError>;

    /// A little-endian `u32`.
    fn u32_le(&mut self) -> Result<u32, SourceError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(
            b.try_into().map_err(|_| SourceError::Eof)?,
        ))
    }

    /// A little-endian `u64`.
    fn u64_le(&mut self) -> Result<u64, SourceError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| SourceError::Eof)?,
        ))
    }
}

/// A source over any buffered reader (a file, a decompressor, a zip entry).
pub struct ReadSource<R> {
    inner: R,
    offset: u64,
}

impl<R: BufRead> ReadSource<R> {
    /// Wraps a reader; offsets count from 0.
    pub fn new(inner: R) -> Self {
        Self { inner, offset: 0 }
    }
}

fn io(e: &std::io::Error) -> SourceError {
    SourceError::Io(e.to_string())
}

impl<R: BufRead> Source for ReadSource<R> {
    fn offset(&self) -> u64 {
        self.offset
    }

    fn next_byte(&mut self) -> Result<Option<u8>, SourceError> {
        let buf = self.inner.fill_buf().map_err(|e| io(&e))?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.inner.consume(1);
        self.offset += 1;
        Ok(Some(b))
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, SourceError> {
        let mut out = Vec::with_capacity(n.min(1 << 16));
        (&mut self.inner)
            .take(n as u64)
            .read_to_end(&mut out)
            .map_err(|e| io(&e))?;
        self.offset += out.len() as u64;
        if out.len() < n {
            return Err(SourceError::Eof);
        }
        Ok(out)
    }

    fn skip(&mut self, n: u64) -> Result<(), SourceError> {
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| io(&e))?;
        self.offset += copied;
        if copied < n {
            return Err(SourceError::Eof);
        }
        Ok(())
    }

    fn line(&mut self, max: usize) -> Result<Vec<u8>, SourceError> {
        let mut out = Vec::new();
        loop {
            let buf = self.inner.fill_buf().map_err(|e| io(&e))?;
            if buf.is_empty() {
                return Err(SourceError::Eof);
            }
            let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (buf.get(..i).unwrap_or_default(), true),
                None => (buf, false),
            };
            if out.len() + chunk.len() > max {
                return Err(SourceError::LineTooLong(max));
            }
            out.extend_from_slice(chunk);
            let used = chunk.len() + usize::from(found);
            self.inner.consume(used);
            self.offset += used as u64;
            if found {
                return Ok(out);
            }
        }
    }

    fn at_end(&mut self) -> Result<bool, SourceError> {
        Ok(self.inner.fill_buf().map_err(|e| io(&e))?.is_empty())
    }
}
