//! Dataset integrity, checked on the bytes actually consumed.
//!
//! A dataset is used only if its OMS signature verifies against a trusted key, or its digest is
//! pinned in the policy. Checking a signature and then reading the file leaves a window in
//! which the file can be swapped, so the check here is done on the stream itself: a
//! [`HashingReader`] hashes every byte as ingestion reads it (whole-file SHA-256, plus the
//! signed shard layout when there is one), and [`check`] compares at the end, before anything
//! is committed.

use std::io::{self, Read};

use rampart_crypto::oms::FileExpectation;
use rampart_crypto::{Digest, Fingerprint, Sha256Hasher};

/// What the stream turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// SHA-256 of every byte read.
    pub sha256: Digest,
    /// The shard digests, when hashing by shards was asked for.
    pub shards: Option<Vec<Digest>>,
    /// Bytes read.
    pub bytes: u64,
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    whole: Sha256Hasher,
    bytes: u64,
    shards: Option<Shards>,
}

struct Shards {
    size: u64,
    current: Sha256Hasher,
    filled: u64,
    done: Vec<Digest>,
}

impl<R: Read> HashingReader<R> {
    /// Hashes the whole stream, and in `shard_size` slices too when given.
    pub fn new(inner: R, shard_size: Option<u64>) -> Self {
        Self {
            inner,
            whole: Sha256Hasher::new(),
            bytes: 0,
            shards: shard_size.filter(|s| *s > 0).map(|size| Shards {
                size,
                current: Sha256Hasher::new(),
                filled: 0,
                done: Vec::new(),
            }),
        }
    }

    /// Reads (and hashes) whatever the consumer left unread.
    ///
    /// # Errors
    /// I/O errors.
    pub fn drain(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; 1 << 16];
        while self.read(&mut buf)? > 0 {}
        Ok(())
    }

    /// The digests of everything read.
    #[must_use]
    pub fn finish(self) -> Observed {
        let shards = self.shards.map(|mut s| {
            if s.filled > 0 {
                s.done.push(s.current.finish());
            }
            s.done
        });
        Observed {
            sha256: self.whole.finish(),
            shards,
            bytes: self.bytes,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut got = buf.get(..n).unwrap_or_default();
        self.whole.update(got);
        self.bytes += n as u64;
        if let Some(s) = &mut self.shards {
            while !got.is_empty() {
                let room = usize::try_from(s.size - s.filled).unwrap_or(usize::MAX);
                let take = room.min(got.len());
                let (head, tail) = got.split_at(take);
                s.current.update(head);
                s.filled += take as u64;
                got = tail;
                if s.filled == s.size {
                    let full = std::mem::replace(&mut s.current, Sha256Hasher::new());
                    s.done.push(full.finish());
                    s.filled = 0;
                }
            }
        }
        Ok(n)
    }
}

/// What vouches for a dataset.
#[derive(Debug, Clone)]
pub enum Expected {
    /// A verified OMS signature.
    Signed {
        /// What the signature says the file is.
        file: FileExpectation,
        /// The key that signed.
        key: Fingerprint,
    },
    /// The digests pinned in the policy (`data.pins`), and whether an unsigned, unpinned
    /// dataset is allowed anyway (`--allow-unsigned`).
    Pinned {
        /// Accepted digests.
        pins: Vec<Digest>,
        /// Accept anything else too (loudly).
        allow_unsigned: bool,
    },
}

/// How a dataset was vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Integrity {
    /// Its signature verified and the bytes match it.
    Signed(Fingerprint),
    /// Its digest is pinned.
    Pinned,
    /// Neither: accepted because `--allow-unsigned` was given.
    Unsigned,
}

impl Integrity {
    /// A short name for reports and audit records.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Signed(_) => "signed",
            Self::Pinned => "pinned",
            Self::Unsigned => "unsigned",
        }
    }
}

/// The bytes read are not what vouches for them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The content differs from what was signed.
    #[error("the file does not match its signature: {0}")]
    Tampered(String),
    /// No signature and no pin (and no `--allow-unsigned`).
    #[error("the file (sha256:{0}) is neither signed nor pinned")]
    Unvouched(String),
}

/// Compares one file's bytes with its signed description.
fn check_file(observed: &Observed, file: &FileExpectation) -> Result<(), String> {
    match file {
        FileExpectation::Whole(d) if *d == observed.sha256 => Ok(()),
        FileExpectation::Whole(d) => Err(format!(
            "its SHA-256 is {}, the signature says {}",
            observed.sha256.to_hex(),
            d.to_hex()
        )),
        FileExpectation::Shards { digests, size, .. } => {
            if observed.bytes != *size {
                return Err(format!(
                    "it has {} bytes, the signature says {size}",
                    observed.bytes
                ));
            }
            let got = observed.shards.as_deref().unwrap_or_default();
            if let Some(i) = digests.iter().zip(got).position(|(a, b)| a != b) {
                return Err(format!("shard {i} differs from the signed one"));
            }
            if got.len() != digests.len() {
                return Err("the shard count differs".into());
            }
            Ok(())
        }
    }
}

/// Compares what was read with what vouches for it.
///
/// # Errors
/// [`IntegrityError::Tampered`] or [`IntegrityError::Unvouched`].
pub fn check(observed: &Observed, expected: &Expected) -> Result<Integrity, IntegrityError> {
    match expected {
        Expected::Signed { file, key } => {
            check_file(observed, file).map_err(IntegrityError::Tampered)?;
            Ok(Integrity::Signed(*key))
        }
        Expected::Pinned {
            pins,
            allow_unsigned,
        } => pinned(observed.sha256, pins, *allow_unsigned),
    }
}

fn pinned(
    digest: Digest,
    pins: &[Digest],
    allow_unsigned: bool,
) -> Result<Integrity, IntegrityError> {
    if pins.contains(&digest) {
        Ok(Integrity::Pinned)
    } else if allow_unsigned {
        Ok(Integrity::Unsigned)
    } else {
        Err(IntegrityError::Unvouched(digest.to_hex()))
    }
}

/// What vouches for a dataset directory.
#[derive(Debug, Clone)]
pub enum ExpectedDir {
    /// A verified OMS signature over the directory.
    Signed {
        /// Each signed file, by name relative to the directory.
        files: std::collections::BTreeMap<String, FileExpectation>,
        /// The key that signed.
        key: Fingerprint,
    },
    /// Pinned digests: a directory's digest is the OMS root digest of its files (what
    /// `rampart data pin DIR` records).
    Pinned {
        /// Accepted digests.
        pins: Vec<Digest>,
        /// Accept anything else too (loudly).
        allow_unsigned: bool,
    },
}

/// The OMS root digest of files read in `observed` order (which must be the OMS order).
#[must_use]
pub fn directory_digest(observed: &[(String, Observed)]) -> Digest {
    rampart_crypto::oms::root_digest(observed.iter().map(|(_, o)| &o.sha256))
}

/// Compares a directory's files, as read, with what vouches for them.
///
/// # Errors
/// [`IntegrityError::Tampered`] naming a modified, missing or unsigned file, or
/// [`IntegrityError::Unvouched`].
pub fn check_dir(
    observed: &[(String, Observed)],
    expected: &ExpectedDir,
) -> Result<Integrity, IntegrityError> {
    match expected {
        ExpectedDir::Signed { files, key } => {
            for (name, o) in observed {
                let Some(f) = files.get(name) else {
                    return Err(IntegrityError::Tampered(format!("{name} is not signed")));
                };
                check_file(o, f).map_err(|e| IntegrityError::Tampered(format!("{name}: {e}")))?;
            }
            if let Some(missing) = files
                .keys()
                .find(|n| !observed.iter().any(|(o, _)| o == *n))
            {
                return Err(IntegrityError::Tampered(format!(
                    "the signed file {missing} is missing"
                )));
            }
            Ok(Integrity::Signed(*key))
        }
        ExpectedDir::Pinned {
            pins,
            allow_unsigned,
        } => pinned(directory_digest(observed), pins, *allow_unsigned),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rampart_crypto::sha256;

    fn observe(data: &[u8], shard: Option<u64>, chunk: usize) -> Observed {
        let mut r = HashingReader::new(data, shard);
        let mut buf = vec![0u8; chunk];
        while r.read(&mut buf).unwrap() > 0 {}
        r.finish()
    }

    #[test]
    fn hashes_whole_and_shards_across_read_sizes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        for chunk in [1, 7, 4096, 20_000] {
            let o = observe(&data, Some(3000), chunk);
            assert_eq!(o.sha256, sha256(&data));
            assert_eq!(o.bytes, 10_000);
            let want: Vec<Digest> = data.chunks(3000).map(sha256).collect();
            assert_eq!(o.shards.unwrap(), want, "chunk {chunk}");
        }
    }

    #[test]
    fn checks_signatures_pins_and_the_override() {
        let data = b"a,b\n1,2\n";
        let o = observe(data, None, 3);
        let key = rampart_crypto::SigningKey::generate()
            .public_key()
            .fingerprint();
        let signed = |d| Expected::Signed {
            file: FileExpectation::Whole(d),
            key,
        };
        assert_eq!(check(&o, &signed(sha256(data))), Ok(Integrity::Signed(key)));
        assert!(matches!(
            check(&o, &signed(sha256(b"other"))),
            Err(IntegrityError::Tampered(_))
        ));
        let pinned = |pins, allow_unsigned| Expected::Pinned {
            pins,
            allow_unsigned,
        };
        assert_eq!(
            check(&o, &pinned(vec![sha256(data)], false)),
            Ok(Integrity::Pinned)
        );
        assert!(matches!(
            check(&o, &pinned(vec![sha256(b"x")], false)),
            Err(IntegrityError::Unvouched(_))
        ));
        assert_eq!(check(&o, &pinned(vec![], true)), Ok(Integrity::Unsigned));
        let sharded = observe(data, Some(4), 1);
        let file = FileExpectation::Shards {
            shard_size: 4,
            digests: vec![sha256(b"a,b\n"), sha256(b"1,2\n")],
            size: 8,
        };
        assert!(check(&sharded, &Expected::Signed { file, key }).is_ok());
        let file = FileExpectation::Shards {
            shard_size: 4,
            digests: vec![sha256(b"a,b\n"), sha256(b"1,3\n")],
            size: 8,
        };
        assert!(check(&sharded, &Expected::Signed { file, key }).is_err());
    }
}
