//! Content-addressed, write-once blob storage.
//!
//! [`BlobStore`] is what the registry needs from storage; [`FsBlobStore`] keeps blobs under
//! `ROOT/sha256/<2 hex>/<64 hex>`, read-only (0444). A put streams into a temporary file in
//! `ROOT/tmp` while hashing, syncs it and renames it into place; an existing digest is never
//! rewritten (its content is re-checked instead). Every read re-hashes what it returns: a
//! blob whose bytes no longer match its name is reported, never served.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rampart_crypto::{Digest, Sha256Hasher};

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// No blob with this digest.
    #[error("blob sha256:{0} is not in the store")]
    Missing(Digest),
    /// The stored bytes do not hash to the blob's name.
    #[error("blob sha256:{expected} is corrupted on disk (its content is sha256:{actual})")]
    Corrupted {
        /// The name.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// Larger than the caller's limit.
    #[error("blob sha256:{0} is larger than {1} bytes")]
    TooLarge(Digest, u64),
    /// The object storage could not be reached or refused the request.
    #[error("blob store {store}: {reason}")]
    Remote {
        /// Which store (`s3://BUCKET/PREFIX`).
        store: String,
        /// What it said.
        reason: String,
    },
    /// An I/O error.
    #[error("blob store {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
}

/// Creates `to` (which must not exist), fills it with what `fill` streams into its sink and
/// syncs it; removes it if `fill` fails (a blob that does not verify leaves nothing behind).
/// What every store's `copy_to` does around its own reading.
///
/// # Errors
/// `fill`'s error, or I/O on `to`.
pub(crate) fn write_new(
    to: &Path,
    fill: impl FnOnce(&mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> Result<u64, BlobError>,
) -> Result<u64, BlobError> {
    let mut f = File::options()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(io(to))?;
    match fill(&mut |c| f.write_all(c)) {
        Ok(n) => {
            f.sync_all().map_err(io(to))?;
            Ok(n)
        }
        Err(e) => {
            drop(f);
            let _ = fs::remove_file(to);
            Err(e)
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Storage for immutable blobs named by their SHA-256.
pub trait BlobStore: Send + Sync {
    /// Stores the bytes `reader` yields; returns their digest. Storing bytes that are already
    /// present changes nothing.
    ///
    /// # Errors
    /// I/O errors, or an existing blob of that digest that is corrupted.
    fn put(&self, reader: &mut dyn Read) -> Result<Digest, BlobError>;

    /// Whether a blob is present (not whether it is intact).
    fn contains(&self, digest: &Digest) -> bool;

    /// Reads a whole blob (at most `limit` bytes), verified.
    ///
    /// # Errors
    /// [`BlobError::Missing`], [`BlobError::Corrupted`], [`BlobError::TooLarge`], I/O.
    fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, BlobError>;

    /// Copies a blob of at most `limit` bytes (its recorded size) to a new file at `to`,
    /// verified; the file is removed if the content does not match. A blob larger than
    /// `limit` is refused before more than `limit` bytes are written.
    ///
    /// # Errors
    /// As [`BlobStore::read`].
    fn copy_to(&self, digest: &Digest, to: &Path, limit: u64) -> Result<u64, BlobError>;

    /// Re-hashes a blob.
    ///
    /// # Errors
    /// As [`BlobStore::read`].
    fn verify(&self, digest: &Digest) -> Result<u64, BlobError>;

    /// The blob's file, for stores on the local filesystem (watchers re-hash it there).
    fn local_path(&self, _digest: &Digest) -> Option<PathBuf> {
        None
    }
}

/// Blobs on the local filesystem.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// A store rooted at `root` (created on first put).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where a blob lives.
    #[must_use]
    pub fn path_of(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root
            .join("sha256")
            .join(hex.get(..2).unwrap_or("00"))
            .join(hex)
    }

    /// Opens a blob without blocking or following a link (a FIFO or a link planted where a
    /// blob should be would otherwise hang the reader or lead it elsewhere), then checks that
    /// the opened file is a regular file.
    fn open(&self, digest: &Digest) -> Result<(File, PathBuf), BlobError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = self.path_of(digest);
        let f = match File::options()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::Missing(*digest));
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(io(&path)(std::io::Error::other(
                    "a symbolic link where a blob should be; refused",
                )));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let kind = f.metadata().map_err(io(&path))?.file_type();
        if !kind.is_file() {
            return Err(io(&path)(std::io::Error::other(format!(
                "{} where a blob should be; refused",
                rampart_scan::kind_of(&kind)
            ))));
        }
        Ok((f, path))
    }

    /// Streams a blob through `sink`, hashing it; fails if it does not match.
    fn stream(
        &self,
        digest: &Digest,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, BlobError> {
        let (mut f, path) = self.open(digest)?;
        let mut h = Sha256Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(io(&path))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            total += n as u64;
            if total > limit {
                return Err(BlobError::TooLarge(*digest, limit));
            }
            h.update(chunk);
            sink(chunk).map_err(io(&path))?;
        }
        let actual = h.finish();
        if actual != *digest {
            return Err(BlobError::Corrupted {
                expected: *digest,
                actual,
            });
        }
        Ok(total)
    }
}

impl BlobStore for FsBlobStore {
    fn put(&self, reader: &mut dyn Read) -> Result<Digest, BlobError> {
        let tmp_dir = self.root.join("tmp");
        fs::create_dir_all(&tmp_dir).map_err(io(&tmp_dir))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".blob-")
            .tempfile_in(&tmp_dir)
            .map_err(io(&tmp_dir))?;
        let mut h = Sha256Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).map_err(io(&tmp_dir))?;
            let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
                break;
            };
            h.update(chunk);
            tmp.write_all(chunk).map_err(io(tmp.path()))?;
        }
        let digest = h.finish();
        let to = self.path_of(&digest);
        if to.exists() {
            // Write-once: never replaced; but a damaged copy must not pass as stored.
            self.verify(&digest)?;
            return Ok(digest);
        }
        tmp.as_file().sync_all().map_err(io(tmp.path()))?;
        let dir = to.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o444))
                .map_err(io(tmp.path()))?;
        }
        // `persist_noclobber`: a racing writer of the same bytes wins harmlessly.
        match tmp.persist_noclobber(&to) {
            Ok(_) => {}
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                self.verify(&digest)?;
                return Ok(digest);
            }
            Err(e) => return Err(io(&to)(e.error)),
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io(&dir))?;
        Ok(digest)
    }

    fn contains(&self, digest: &Digest) -> bool {
        self.path_of(digest).is_file()
    }

    fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, BlobError> {
        let mut out = Vec::new();
        self.stream(digest, limit, &mut |c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        Ok(out)
    }

    fn copy_to(&self, digest: &Digest, to: &Path, limit: u64) -> Result<u64, BlobError> {
        write_new(to, |sink| self.stream(digest, limit, sink))
    }

    fn verify(&self, digest: &Digest) -> Result<u64, BlobError> {
        self.stream(digest, u64::MAX, &mut |_| Ok(()))
    }

    fn local_path(&self, digest: &Digest) -> Option<PathBuf> {
        Some(self.path_of(digest))
    }
}

/// What every [`BlobStore`] must do, as a suite a new backend (object storage, a database)
/// runs against itself: `run(&store, &corrupt)`, where `corrupt` changes a stored blob's bytes
/// behind the store's back (what a disk error or an attacker would do).
pub mod conformance {
    use std::io::Cursor;

    use rampart_crypto::{Digest, sha256};

    use super::{BlobError, BlobStore};

    pub use rampart_audit::conformance::Failure;

    fn fail(case: &'static str, detail: impl Into<String>) -> Failure {
        Failure::new(case, detail)
    }

    /// Runs every case. `scratch` is an empty directory for `copy_to` targets.
    ///
    /// # Errors
    /// The first case the store fails.
    pub fn run(
        store: &dyn BlobStore,
        corrupt: &dyn Fn(&Digest),
        scratch: &std::path::Path,
    ) -> Result<(), Failure> {
        let bytes = b"conformance blob \x00\x01\xff".to_vec();
        let want = sha256(&bytes);
        // put returns the content's digest; putting it again changes nothing.
        let got = store
            .put(&mut Cursor::new(&bytes))
            .map_err(|e| fail("put", e.to_string()))?;
        if got != want {
            return Err(fail(
                "put",
                format!("returned {got}, the content is {want}"),
            ));
        }
        let again = store
            .put(&mut Cursor::new(&bytes))
            .map_err(|e| fail("put twice", e.to_string()))?;
        if again != want {
            return Err(fail("put twice", format!("returned {again}")));
        }
        if !store.contains(&want) {
            return Err(fail("contains", "a stored blob is not contained"));
        }
        // read gives the bytes back, within a limit; over it is refused.
        match store.read(&want, 1 << 20) {
            Ok(b) if b == bytes => {}
            Ok(_) => return Err(fail("read", "different bytes")),
            Err(e) => return Err(fail("read", e.to_string())),
        }
        match store.read(&want, 3) {
            Err(BlobError::TooLarge(..)) => {}
            other => return Err(fail("read over the limit", format!("{other:?}"))),
        }
        match store.verify(&want) {
            Ok(n) if n == bytes.len() as u64 => {}
            other => return Err(fail("verify", format!("{other:?}"))),
        }
        let to = scratch.join("copy");
        match store.copy_to(&want, &to, bytes.len() as u64) {
            Ok(_) if std::fs::read(&to).ok().as_deref() == Some(bytes.as_slice()) => {}
            other => return Err(fail("copy_to", format!("{other:?}"))),
        }
        // A blob larger than its recorded size is refused, and leaves nothing behind (a
        // store whose object grew is never streamed to disk without bound).
        let to = scratch.join("copy-over-size");
        match store.copy_to(&want, &to, 3) {
            Err(BlobError::TooLarge(..)) if !to.exists() => {}
            other => {
                return Err(fail(
                    "copy_to over its size",
                    format!("{other:?}, target left: {}", to.exists()),
                ));
            }
        }
        // The empty blob is a blob.
        let empty = store
            .put(&mut Cursor::new(Vec::new()))
            .map_err(|e| fail("put empty", e.to_string()))?;
        if empty != sha256(b"") || store.read(&empty, 0).map(|b| b.len()).ok() != Some(0) {
            return Err(fail("empty blob", "not stored and read back as empty"));
        }
        // Unknown digests are missing, never an empty success.
        let unknown = sha256(b"never stored");
        if store.contains(&unknown) {
            return Err(fail("contains", "an unknown digest is contained"));
        }
        match store.read(&unknown, 1 << 20) {
            Err(BlobError::Missing(_)) => {}
            other => return Err(fail("read unknown", format!("{other:?}"))),
        }
        // A blob changed behind the store's back is caught by every reader, and copy_to
        // leaves nothing behind.
        corrupt(&want);
        match store.read(&want, 1 << 20) {
            Err(BlobError::Corrupted { .. }) => {}
            other => return Err(fail("read corrupted", format!("{other:?}"))),
        }
        match store.verify(&want) {
            Err(BlobError::Corrupted { .. }) => {}
            other => return Err(fail("verify corrupted", format!("{other:?}"))),
        }
        let to = scratch.join("copy-of-corrupted");
        match store.copy_to(&want, &to, 1 << 20) {
            Err(BlobError::Corrupted { .. }) if !to.exists() => {}
            other => {
                return Err(fail(
                    "copy_to corrupted",
                    format!("{other:?}, target left: {}", to.exists()),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{BlobError, BlobStore as _, FsBlobStore};

    #[test]
    fn the_filesystem_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path());
        let corrupt = |d: &rampart_crypto::Digest| {
            let p = store.path_of(d);
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .unwrap();
            std::fs::write(&p, b"not what was stored").unwrap();
        };
        super::conformance::run(&store, &corrupt, scratch.path()).unwrap();
        // The suite can fail: a store that does not notice corruption is caught.
        let lax = tempfile::tempdir().unwrap();
        let store2 = FsBlobStore::new(lax.path());
        let scratch2 = tempfile::tempdir().unwrap();
        let err = super::conformance::run(&store2, &|_| {}, scratch2.path()).unwrap_err();
        assert_eq!(err.case, "read corrupted");
    }

    #[test]
    fn write_once_read_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path());
        let d = store.put(&mut &b"hello"[..]).unwrap();
        assert_eq!(store.put(&mut &b"hello"[..]).unwrap(), d);
        assert_eq!(store.read(&d, 100).unwrap(), b"hello");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(store.path_of(&d)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o444);
        assert!(matches!(store.read(&d, 3), Err(BlobError::TooLarge(..))));
        // Corrupt it behind the store's back: every read now refuses it.
        let p = store.path_of(&d);
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        std::fs::write(&p, b"jello").unwrap();
        assert!(matches!(
            store.read(&d, 100),
            Err(BlobError::Corrupted { .. })
        ));
        assert!(matches!(
            store.put(&mut &b"hello"[..]),
            Err(BlobError::Corrupted { .. })
        ));
        let out = dir.path().join("copy");
        assert!(store.copy_to(&d, &out, 100).is_err());
        assert!(!out.exists(), "a bad copy is removed");
        let missing = rampart_crypto::Digest::from_hex(&"0".repeat(64)).unwrap();
        assert!(matches!(
            store.read(&missing, 1),
            Err(BlobError::Missing(_))
        ));
    }
}
