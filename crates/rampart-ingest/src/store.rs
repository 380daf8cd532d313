//! The dataset store: content-addressed, encrypted to the home's identity, with one typed
//! manifest per ingest. This module is the only place that knows its layout
//! (`HOME/store/datasets/`):
//!
//! ```text
//! <sha256 of the clean rows>/data.<csv|parquet>.age                  the clean rows, encrypted
//! <sha256 of the clean rows>/ingests/<manifest sha256>.json          one manifest per ingest
//! <sha256 of the clean rows>/ingests/<manifest sha256>.quarantine.csv.age
//! incoming/                                                          files being written
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use rampart_crypto::age_file::{self, Unlock};
use rampart_crypto::{Digest, Sha256Hasher};
use rampart_data::stream::DataFormat;
use rampart_home::Home;
use rampart_home::secure_fs::{self, AtomicFile};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::IngestError;

/// The manifest's `type`.
pub const MANIFEST_TYPE: &str = "rampart.dataset/v1";

/// The largest manifest read back.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// `sha256:` and the digest's hex: how a dataset is named everywhere.
#[must_use]
pub fn dataset_ref(d: &Digest) -> String {
    d.reference().to_string()
}

/// One ingest's record: where the data came from, what vouched for it, what was kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetManifest {
    /// Always [`MANIFEST_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The stored dataset (`sha256:` of its clean plaintext).
    pub dataset: String,
    /// When it was ingested (RFC 3339, UTC).
    pub created: String,
    /// The input.
    pub source: SourceRecord,
    /// The schema it was validated against.
    pub schema: SchemaRecord,
    /// The validation counts.
    pub counts: Counts,
    /// The stored format (`csv` or `parquet`).
    pub format: DataFormat,
    /// The stored clean rows.
    pub clean: CleanRecord,
    /// The rejected rows, stored beside the manifest.
    pub quarantine: QuarantineRecord,
    /// The redaction's audit summary (counts and rules, never values), or null.
    pub pii: Value,
    /// Per column: entities found, with masked samples only, or null.
    pub pii_columns: Value,
    /// The poisoning checks' audit summary (id → severity), or null.
    pub checks: Value,
    /// The poisoning checks' full report, or null.
    pub checks_report: Value,
    /// The rampart version that ingested it.
    pub rampart: String,
}

/// Where a dataset came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The resolved path read.
    pub path: PathBuf,
    /// `sha256:` of the bytes read (a directory: the OMS digest of its shards).
    pub sha256: String,
    /// Bytes read.
    pub bytes: u64,
    /// Each shard read, in order.
    pub shards: Vec<ShardRecord>,
    /// Whether the input was age-encrypted.
    pub encrypted: bool,
    /// What vouched for it: `signed`, `pinned` or `unsigned`.
    pub integrity: String,
    /// The signing key's fingerprint, when signed by a key.
    pub signed_by: Option<String>,
    /// The Sigstore identity, when signed that way.
    pub signer_identity: Option<String>,
}

/// One shard of the input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRecord {
    /// File name.
    pub name: String,
    /// `sha256:` of its bytes.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
}

/// The schema file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemaRecord {
    /// As given.
    pub path: PathBuf,
    /// `sha256:` of its text.
    pub sha256: String,
}

/// The validation counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counts {
    /// Data rows read.
    pub rows_read: u64,
    /// Rows kept.
    pub accepted: u64,
    /// Rows quarantined.
    pub rejected: u64,
    /// Whether read = accepted + rejected.
    pub reconciled: bool,
    /// Rejections per rule.
    pub by_rule: Value,
    /// Rejections per column and rule.
    pub by_column: Value,
}

/// The stored clean rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CleanRecord {
    /// File name in the dataset's directory.
    pub file: String,
    /// `sha256:` of the plaintext (the dataset's address).
    pub sha256: String,
    /// Plaintext size.
    pub bytes: u64,
    /// The age recipients it is encrypted to.
    pub encrypted_to: Vec<String>,
}

/// The stored rejected rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantineRecord {
    /// `sha256:` of the plaintext.
    pub sha256: String,
    /// Plaintext size.
    pub bytes: u64,
}

/// A dataset in the store.
#[derive(Debug, Clone)]
pub struct StoredDataset {
    /// Its content address.
    pub digest: Digest,
    /// The encrypted clean rows.
    pub data: PathBuf,
    /// Their format.
    pub format: DataFormat,
}

/// What committing an ingest wrote.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The encrypted clean rows.
    pub data: PathBuf,
    /// The manifest written.
    pub manifest: PathBuf,
    /// `sha256:` of the manifest's bytes.
    pub manifest_digest: String,
    /// Whether the same clean rows were already stored (by an earlier ingest).
    pub already_stored: bool,
}

/// The store under a directory.
#[derive(Debug, Clone)]
pub struct DatasetStore {
    root: PathBuf,
}

impl DatasetStore {
    /// The store at `root` (nothing is created until something is written).
    #[must_use]
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The home's store.
    #[must_use]
    pub fn of(home: &Home) -> Self {
        Self::new(home.dataset_store())
    }

    /// The store's directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, d: &Digest) -> PathBuf {
        self.root.join(d.to_hex())
    }

    /// The dataset stored under `d`, if any.
    #[must_use]
    pub fn find(&self, d: &Digest) -> Option<StoredDataset> {
        let dir = self.dir(d);
        DataFormat::ALL.iter().find_map(|f| {
            let data = dir.join(format!("data.{}.age", f.extension()));
            data.is_file().then_some(StoredDataset {
                digest: *d,
                data,
                format: *f,
            })
        })
    }

    /// The dataset named `sha256:HEX`.
    ///
    /// # Errors
    /// [`IngestError::Request`] when the text is not a digest or nothing is stored under it.
    pub fn lookup(&self, reference: &str) -> Result<StoredDataset, IngestError> {
        let d = reference
            .strip_prefix("sha256:")
            .and_then(|h| Digest::from_hex(h).ok())
            .ok_or_else(|| {
                IngestError::Request(format!("{reference} is not sha256: and 64 hex digits"))
            })?;
        self.find(&d).ok_or_else(|| {
            IngestError::Request(format!(
                "no dataset {reference} in the home's store (ingest it first with `rampart data ingest FILE --schema S`)"
            ))
        })
    }

    /// The plaintext of a stored dataset, decrypted with `keys`, checked against its content
    /// address as it is read: the reader fails at the end of the stream when the content is
    /// not what the address says.
    ///
    /// # Errors
    /// The file cannot be opened or decrypted.
    pub fn open(&self, ds: &StoredDataset, keys: &Unlock) -> Result<VerifiedReader, IngestError> {
        let f = std::fs::File::open(&ds.data).map_err(|source| IngestError::Read {
            path: ds.data.clone(),
            source,
        })?;
        let inner = age_file::decrypting_reader(age_file::buffered(f), keys).map_err(|source| {
            IngestError::Age {
                path: ds.data.clone(),
                source,
            }
        })?;
        Ok(VerifiedReader {
            inner,
            hasher: Some(Sha256Hasher::new()),
            want: ds.digest,
            path: ds.data.clone(),
        })
    }

    /// The manifests of every ingest of `d`, oldest first by their `created` time.
    ///
    /// # Errors
    /// A manifest that cannot be read or parsed.
    pub fn manifests(&self, d: &Digest) -> Result<Vec<(PathBuf, DatasetManifest)>, IngestError> {
        let dir = self.dir(d).join("ingests");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for e in entries.flatten() {
            let p = e.path();
            let is_manifest = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".json"));
            if is_manifest {
                let m = read_manifest(&p)?;
                out.push((p, m));
            }
        }
        out.sort_by(|a, b| a.1.created.cmp(&b.1.created).then(a.0.cmp(&b.0)));
        Ok(out)
    }

    /// A new file being written into the store (0600, in `incoming/`, removed unless
    /// committed).
    ///
    /// # Errors
    /// The store directory cannot be created or written.
    pub fn incoming(&self) -> Result<AtomicFile, IngestError> {
        secure_fs::create_private_dir(&self.root)?;
        Ok(AtomicFile::create(&self.root.join("incoming"), 0o600)?)
    }

    /// Commits one ingest: the clean rows under their content address `digest` (the
    /// manifest's `dataset`; kept as they are if that address is already stored), then the
    /// quarantine and the manifest, named by the manifest's digest.
    ///
    /// # Errors
    /// Writing the store.
    pub fn commit(
        &self,
        digest: &Digest,
        clean: AtomicFile,
        quarantine: AtomicFile,
        manifest: &DatasetManifest,
    ) -> Result<Committed, IngestError> {
        let dir = self.dir(digest);
        let ingests = dir.join("ingests");
        secure_fs::create_private_dir(&ingests)?;
        let data = dir.join(&manifest.clean.file);
        let already_stored = data.exists();
        if already_stored {
            drop(clean);
        } else {
            clean.commit_to(&data, false)?;
        }
        let bytes = serde_json::to_vec_pretty(manifest).map_err(|e| IngestError::Store {
            path: ingests.clone(),
            source: std::io::Error::other(e),
        })?;
        let hex = rampart_crypto::sha256(&bytes).to_hex();
        quarantine.commit_to(&ingests.join(format!("{hex}.quarantine.csv.age")), false)?;
        let path = ingests.join(format!("{hex}.json"));
        secure_fs::atomic_write(&path, &bytes, 0o600)?;
        Ok(Committed {
            data,
            manifest: path,
            manifest_digest: format!("sha256:{hex}"),
            already_stored,
        })
    }
}

/// Reads and parses one manifest.
///
/// # Errors
/// Reading or parsing it.
pub fn read_manifest(path: &Path) -> Result<DatasetManifest, IngestError> {
    let read = |source| IngestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_MANIFEST_BYTES).read_to_end(&mut bytes))
        .map_err(read)?;
    let m: DatasetManifest = serde_json::from_slice(&bytes)
        .map_err(|e| read(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    if m.kind != MANIFEST_TYPE {
        return Err(read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a {MANIFEST_TYPE} manifest"),
        )));
    }
    Ok(m)
}

/// A stored dataset's plaintext; at its end, the bytes read are checked against the content
/// address, and a mismatch is an error of the last read (so a caller copying it to its end
/// never takes tampered data for the dataset).
pub struct VerifiedReader {
    inner: Box<dyn Read + Send>,
    hasher: Option<Sha256Hasher>,
    want: Digest,
    path: PathBuf,
}

impl std::fmt::Debug for VerifiedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            if n > 0 {
                h.update(buf.get(..n).unwrap_or_default());
            } else if !buf.is_empty() {
                let got = self.hasher.take().map(Sha256Hasher::finish);
                if got != Some(self.want) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        TamperedStore {
                            path: self.path.clone(),
                            got: got.map(|g| dataset_ref(&g)).unwrap_or_default(),
                            want: dataset_ref(&self.want),
                        },
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// The error a [`VerifiedReader`] ends with when the stored content is not its address.
#[derive(Debug, thiserror::Error)]
#[error("{path}: the stored dataset's content is {got}, not {want}: the store was tampered with")]
pub struct TamperedStore {
    /// The stored file.
    pub path: PathBuf,
    /// Its content.
    pub got: String,
    /// Its address.
    pub want: String,
}

impl TamperedStore {
    /// The tamper error inside an I/O error from a [`VerifiedReader`], if that is what it is.
    #[must_use]
    pub fn find(e: &std::io::Error) -> Option<&Self> {
        e.get_ref().and_then(|i| i.downcast_ref::<Self>())
    }
}

impl From<TamperedStore> for IngestError {
    fn from(t: TamperedStore) -> Self {
        Self::Tampered {
            path: t.path,
            want: t.want,
            got: t.got,
        }
    }
}
