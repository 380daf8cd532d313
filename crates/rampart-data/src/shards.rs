//! A dataset directory of CSV shards read as one table, each shard hashed as it is consumed.
//!
//! Shards are read in name order. The first shard's header is the table's; every other shard
//! must start with the same header line, which is skipped. A shard that does not end with a
//! line break gets one, so its last record never merges with the next shard's first.
//!
//! Each shard's bytes pass through a [`HashingReader`] shared with [`ShardChain`]: whatever
//! sits between (an age decryptor, a buffer) consumes the plaintext, and when a shard's
//! plaintext ends the chain reads whatever raw bytes remain in it, so the digest covers the
//! whole file. The digests are then in [`ShardChain::observed`].

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::{Arc, Mutex, PoisonError};

use crate::integrity::{HashingReader, Observed};

/// The longest header line accepted.
const MAX_HEADER: u64 = 1 << 20;

type Shared = Arc<Mutex<Option<HashingReader<File>>>>;

/// The raw bytes of one shard, hashed as they are read; give it to whatever turns them into
/// plaintext (an age decryptor, or nothing).
pub struct RawShard(Shared);

impl Read for RawShard {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match guard.as_mut() {
            Some(r) => r.read(buf),
            None => Ok(0),
        }
    }
}

/// A shard to read: its name, its hashing state, and its plaintext.
pub struct Shard {
    name: String,
    raw: Shared,
    plain: BufReader<Box<dyn Read + Send>>,
}

impl Shard {
    /// Opens a shard: `plain` receives the raw bytes (hashed on the way) and returns the
    /// plaintext reader.
    ///
    /// # Errors
    /// Whatever `plain` returns.
    pub fn new<E>(
        name: String,
        file: File,
        shard_size: Option<u64>,
        plain: impl FnOnce(RawShard) -> Result<Box<dyn Read + Send>, E>,
    ) -> Result<Self, E> {
        let raw: Shared = Arc::new(Mutex::new(Some(HashingReader::new(file, shard_size))));
        let reader = plain(RawShard(Arc::clone(&raw)))?;
        Ok(Self {
            name,
            raw,
            plain: BufReader::with_capacity(1 << 20, reader),
        })
    }

    /// Reads the rest of the raw bytes and returns their digests.
    fn finish(&self) -> io::Result<Observed> {
        let mut guard = self.raw.lock().unwrap_or_else(PoisonError::into_inner);
        let mut r = guard
            .take()
            .ok_or_else(|| io::Error::other("shard already finished"))?;
        r.drain()?;
        Ok(r.finish())
    }
}

/// The shards as one CSV stream.
pub struct ShardChain {
    pending: VecDeque<Shard>,
    current: Option<Shard>,
    header: Option<Vec<u8>>,
    out: Vec<u8>,
    out_pos: usize,
    last: Option<u8>,
    observed: Arc<Mutex<Vec<(String, Observed)>>>,
}

impl ShardChain {
    /// Chains `shards` in the order given.
    #[must_use]
    pub fn new(shards: Vec<Shard>) -> Self {
        Self {
            pending: shards.into(),
            current: None,
            header: None,
            out: Vec::new(),
            out_pos: 0,
            last: None,
            observed: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Where each finished shard's digests land, in order.
    #[must_use]
    pub fn observed(&self) -> Arc<Mutex<Vec<(String, Observed)>>> {
        Arc::clone(&self.observed)
    }

    fn start_next(&mut self) -> io::Result<bool> {
        let Some(mut shard) = self.pending.pop_front() else {
            return Ok(false);
        };
        let mut line = Vec::new();
        (&mut shard.plain)
            .take(MAX_HEADER)
            .read_until(b'\n', &mut line)?;
        if line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        let trimmed = |l: &[u8]| -> Vec<u8> {
            let mut v = l.to_vec();
            while v.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                v.pop();
            }
            v
        };
        match &self.header {
            None => {
                self.header = Some(trimmed(&line));
                self.out = line;
            }
            Some(h) if *h == trimmed(&line) => {
                self.out.clear();
                if self.last.is_some_and(|b| b != b'\n') {
                    self.out.push(b'\n');
                }
            }
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "shard {}: its header differs from the first shard's",
                        shard.name
                    ),
                ));
            }
        }
        self.out_pos = 0;
        self.current = Some(shard);
        Ok(true)
    }
}

impl Read for ShardChain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(rest) = self.out.get(self.out_pos..).filter(|r| !r.is_empty()) {
                let n = rest.len().min(buf.len());
                buf.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(rest.get(..n).unwrap_or_default());
                self.out_pos += n;
                self.last = rest.get(n.wrapping_sub(1)).copied().or(self.last);
                return Ok(n);
            }
            let Some(shard) = self.current.as_mut() else {
                if !self.start_next()? {
                    return Ok(0);
                }
                continue;
            };
            let n = shard.plain.read(buf)?;
            if n > 0 {
                self.last = buf.get(n - 1).copied();
                return Ok(n);
            }
            if let Some(done) = self.current.take() {
                let observed = done.finish()?;
                self.observed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((done.name.clone(), observed));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn shard(dir: &std::path::Path, name: &str, body: &[u8]) -> Shard {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        Shard::new(name.into(), File::open(&path).unwrap(), None, |raw| {
            Ok::<_, io::Error>(Box::new(raw) as Box<dyn Read + Send>)
        })
        .unwrap()
    }

    #[test]
    fn shards_read_as_one_table_and_each_is_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let bodies: [&[u8]; 3] = [b"a,b\n1,2\n3,4", b"\xEF\xBB\xBFa,b\r\n5,6\n", b"a,b\n"];
        let shards = ["p1.csv", "p2.csv", "p3.csv"]
            .iter()
            .zip(bodies)
            .map(|(n, b)| shard(dir.path(), n, b))
            .collect();
        let mut chain = ShardChain::new(shards);
        let observed = chain.observed();
        let mut out = String::new();
        chain.read_to_string(&mut out).unwrap();
        assert_eq!(out, "a,b\n1,2\n3,4\n5,6\n");
        let got = observed.lock().unwrap();
        assert_eq!(got.len(), 3);
        for ((name, o), body) in got.iter().zip(bodies) {
            assert_eq!(o.sha256, rampart_crypto::sha256(body), "{name}");
        }
    }

    #[test]
    fn a_different_header_is_an_error_naming_the_shard() {
        let dir = tempfile::tempdir().unwrap();
        let shards = vec![
            shard(dir.path(), "p1.csv", b"a,b\n1,2\n"),
            shard(dir.path(), "p2.csv", b"a,c\n1,2\n"),
        ];
        let mut out = Vec::new();
        let err = ShardChain::new(shards).read_to_end(&mut out).unwrap_err();
        assert!(err.to_string().contains("shard p2.csv"), "{err}");
    }
}
