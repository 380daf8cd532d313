//! Content to scan, held with bounded memory: the file itself, or extracted/decompressed bytes
//! kept in memory up to [`SPILL_BYTES`] and in an anonymous temporary file beyond.

use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom, Write};

/// Extracted content larger than this goes to a temporary file.
pub const SPILL_BYTES: usize = 16 << 20;

/// Seekable content.
pub enum Blob {
    /// A file on disk (scanned in place).
    File(File, u64),
    /// Small extracted content.
    Mem(Cursor<Vec<u8>>),
    /// Large extracted content, in an unnamed temporary file.
    Temp(File, u64),
}

impl Blob {
    /// Its length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        match self {
            Self::File(_, n) | Self::Temp(_, n) => *n,
            Self::Mem(c) => c.get_ref().len() as u64,
        }
    }

    /// Whether it is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads from offset `at`, at most `n` bytes.
    ///
    /// # Errors
    /// I/O errors.
    pub fn read_range(&mut self, at: u64, n: usize) -> io::Result<Vec<u8>> {
        self.seek(SeekFrom::Start(at))?;
        let mut out = Vec::with_capacity(n.min(1 << 20));
        self.take(n as u64).read_to_end(&mut out)?;
        Ok(out)
    }

    /// A buffered reader from offset `at` to the end.
    ///
    /// # Errors
    /// I/O errors.
    pub fn reader_from(&mut self, at: u64) -> io::Result<BufReader<&mut Self>> {
        self.seek(SeekFrom::Start(at))?;
        Ok(BufReader::with_capacity(64 * 1024, self))
    }

    /// Copies at most `limit` bytes of `r` into a new blob; the flag says whether `r` had more.
    ///
    /// # Errors
    /// I/O errors (including a corrupt compressed stream).
    pub fn capture(r: &mut dyn Read, limit: u64) -> io::Result<(Self, bool)> {
        let mut mem = Vec::new();
        let first = limit.min(SPILL_BYTES as u64);
        r.take(first).read_to_end(&mut mem)?;
        if (mem.len() as u64) < first {
            return Ok((Self::Mem(Cursor::new(mem)), false));
        }
        if limit <= SPILL_BYTES as u64 {
            let more = r.read(&mut [0u8; 1])? > 0;
            return Ok((Self::Mem(Cursor::new(mem)), more));
        }
        let mut file = tempfile::tempfile()?;
        file.write_all(&mem)?;
        drop(mem);
        let copied = io::copy(&mut r.take(limit - first), &mut file)?;
        let more = r.read(&mut [0u8; 1])? > 0;
        Ok((Self::Temp(file, first + copied), more))
    }
}

impl Read for Blob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::File(f, _) | Self::Temp(f, _) => f.read(buf),
            Self::Mem(c) => c.read(buf),
        }
    }
}

impl Seek for Blob {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Self::File(f, _) | Self::Temp(f, _) => f.seek(pos),
            Self::Mem(c) => c.seek(pos),
        }
    }
}
