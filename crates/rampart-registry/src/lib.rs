//! The model registry: the only way to production.
//!
//! - Blobs ([`blob`]): every model file, signature bundle and provenance stored once by
//!   SHA-256, read-only, re-verified on every read.
//! - Metadata ([`db`]): SQLite in the home (`registry/registry.db`): models, versions
//!   (numbered 1, 2, … per name), their stage (`none`, `staging`, `production`, `archived`),
//!   every stage change, and signed approvals.
//! - [`candidate::check_and_store`] checks what is registered (signature by a trusted key, scan,
//!   provenance naming the digests); [`gates::evaluate`] re-checks everything from the stored
//!   blobs before a promotion; [`Registry::set_stage`] and [`Registry::rollback`] change
//!   stages in one serialised transaction; [`transfer`] exports and imports signed bundles.

pub mod approval;
pub mod blob;
pub mod candidate;
pub mod db;
pub mod gates;
pub mod meta;
pub mod pg;
pub mod s3;
pub mod service;
pub mod transfer;

use std::path::{Path, PathBuf};

use rampart_crypto::Digest;
use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::blob::{BlobError, BlobStore, FsBlobStore};
pub use crate::meta::MetadataStore;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The database.
    #[error("registry database: {0}")]
    Db(String),
    /// A blob.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// No such model or version.
    #[error("{0}")]
    NotFound(String),
    /// The reference does not parse.
    #[error("{0:?} is not NAME, NAME@VERSION, NAME@staging or NAME@production")]
    BadReference(String),
    /// The request cannot be carried out as given (an output that exists).
    #[error("{0}")]
    Request(String),
    /// A stage change that the current state does not allow.
    #[error("{0}")]
    Conflict(String),
    /// What is being registered or imported is refused.
    #[error("{0}")]
    Refused(String),
    /// The home (keys, policy).
    #[error(transparent)]
    Home(#[from] rampart_home::HomeError),
    /// The audit log refused a record, so the change was refused.
    #[error(transparent)]
    Audit(#[from] rampart_audit::AuditError),
    /// The change was rolled back: it could not be recorded (the audit log) before its commit.
    #[error("registry left unchanged: {0}")]
    Unrecorded(rampart_audit::NotRecorded),
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: std::io::Error,
    },
}

/// A refusal or damaged blob is a verification failure, a bad reference an input error; the
/// home's errors keep their own kind.
impl rampart_home::Classify for RegistryError {
    fn kind(&self) -> rampart_home::ErrorKind {
        use rampart_home::ErrorKind;
        match self {
            Self::Blob(BlobError::Remote { .. }) => ErrorKind::Internal,
            Self::Refused(_) | Self::Blob(_) | Self::Conflict(_) => ErrorKind::Verification,
            Self::NotFound(_) | Self::BadReference(_) | Self::Request(_) => ErrorKind::Input,
            Self::Home(h) => h.kind(),
            _ => ErrorKind::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Blob(BlobError::Corrupted { .. } | BlobError::Missing(_)) => {
                Some("the registry's copy is damaged; restore it from an export".into())
            }
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for RegistryError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e.to_string())
    }
}

/// A stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Registered, not promoted.
    None,
    /// Staging.
    Staging,
    /// Production.
    Production,
    /// Retired from production (or staging).
    Archived,
}

impl Stage {
    /// Its name in the database and on the command line.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Staging => "staging",
            Self::Production => "production",
            Self::Archived => "archived",
        }
    }

    /// Parses a name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "staging" => Self::Staging,
            "production" => Self::Production,
            "archived" => Self::Archived,
            _ => return None,
        })
    }
}

/// One file of a model version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its model-relative name.
    pub name: String,
    /// SHA-256 (the blob's name).
    pub sha256: Digest,
    /// Size in bytes.
    pub size: u64,
}

impl FileEntry {
    /// Its name as a path under the model's directory: refused unless it is relative and every
    /// component a plain name (no `..`, `.`, root or empty part), so a version's files can only
    /// be written inside the directory they are materialised into, whatever a manifest says.
    ///
    /// # Errors
    /// [`RegistryError::Refused`] naming the file.
    pub fn relative_path(&self) -> Result<&Path, RegistryError> {
        let path = Path::new(&self.name);
        let plain = !self.name.is_empty()
            && !self.name.contains('\\')
            && !self
                .name
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            && path
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if plain {
            Ok(path)
        } else {
            Err(RegistryError::Refused(format!(
                "model file name {:?} is not a plain relative path; refused",
                self.name
            )))
        }
    }
}

/// An input named by the provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageEntry {
    /// Its name (`dataset`, `base-model`, …).
    pub name: String,
    /// SHA-256.
    pub sha256: Digest,
    /// Its URI, if given.
    pub uri: Option<String>,
}

/// What a version is: its files, its signature and the checks recorded when it entered a
/// registry. The one record of a version's content: a new version is one, a stored version
/// ([`VersionInfo`]) and an exported one ([`transfer::ExportManifest`]) carry one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionContent {
    /// The OMS manifest's root digest: the model's identity.
    pub root: Digest,
    /// The files.
    pub files: Vec<FileEntry>,
    /// Blob of the OMS signature bundle.
    pub signature: Digest,
    /// Who signed it (key fingerprint).
    pub signer: String,
    /// Who signed it, for the certificate and Sigstore methods (`certificate:SUBJECT`,
    /// `sigstore:IDENTITY (issuer ISSUER)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer_identity: Option<String>,
    /// Blob of the provenance bundle.
    pub provenance: Option<Digest>,
    /// The scan at registration.
    pub scan: Value,
    /// Metrics.
    pub metrics: Option<Value>,
    /// The input schema (features, classes, training statistics), for the gateway.
    pub input_schema: Option<Value>,
    /// What the provenance says the model was made from.
    pub lineage: Vec<LineageEntry>,
    /// Who registered it (OS user).
    pub created_by: String,
    /// The key of the home that registered it.
    pub registrant_key: String,
}

/// A stored version: its content and where it stands in this registry.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// Database id.
    #[serde(skip)]
    pub id: i64,
    /// Model name.
    pub name: String,
    /// Version number.
    pub version: i64,
    /// What it is.
    #[serde(flatten)]
    pub content: VersionContent,
    /// When it entered this registry.
    pub created_at: String,
    /// Where it came from (a path, or `import:…`).
    pub source: String,
    /// Its stage now.
    pub stage: Stage,
}

impl std::ops::Deref for VersionInfo {
    type Target = VersionContent;

    fn deref(&self) -> &VersionContent {
        &self.content
    }
}

/// One stage change.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// Version number.
    pub version: i64,
    /// Before.
    pub from: Stage,
    /// After.
    pub to: Stage,
    /// Who.
    pub actor: String,
    /// When.
    pub at: String,
    /// Why (`promote`, `demoted by v3`, `rollback`, `register`, `import`).
    pub reason: String,
}

/// A stored approval.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRecord {
    /// The approver's key fingerprint.
    pub approver_key: String,
    /// The approver's name (OS user) as they stated it.
    pub approver: String,
    /// The signed approval bundle (JSON).
    #[serde(skip)]
    pub bundle: String,
    /// When it was recorded.
    pub at: String,
}

/// The result of a stage change.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    /// The version that moved.
    pub version: i64,
    /// From.
    pub from: Stage,
    /// To.
    pub to: Stage,
    /// A version moved out of the target stage to make room (to `archived` or `none`).
    pub displaced: Option<i64>,
}

/// A version as [`Registry::insert_version`] stores it: what it is and where it came from.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// What it is.
    pub content: VersionContent,
    /// Where it came from (a path, or `import:…`).
    pub source: String,
}

/// Called inside a change's transaction, after every check and before the commit, to record
/// the change (the audit log): an error rolls the transaction back
/// ([`RegistryError::Unrecorded`]), so no change is ever committed without its record.
pub type Witness<'a, T> = &'a mut dyn FnMut(&T) -> Result<(), rampart_audit::NotRecorded>;

/// A registration about to be committed, as [`Registry::insert_version`] shows it to its
/// witness.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The model.
    pub name: String,
    /// The number it gets.
    pub version: i64,
    /// Its root digest.
    pub root: Digest,
    /// Its signer's fingerprint.
    pub signer: String,
    /// The signer's certificate subject or Sigstore identity.
    pub signer_identity: Option<String>,
    /// How many files.
    pub files: usize,
    /// Whether it has provenance.
    pub provenance: bool,
    /// Where it came from (a path, or `import:…`).
    pub source: String,
    /// Why (`register`, `import of … exported by …`).
    pub reason: String,
}

/// A stage change about to be committed, as [`Registry::set_stage`] and
/// [`Registry::rollback`] show it to their witness.
#[derive(Debug, Clone)]
pub struct StageChange {
    /// The model.
    pub name: String,
    /// The root digest of the version that moves.
    pub root: Digest,
    /// The move.
    pub transition: Transition,
}

/// An approval about to be committed.
#[derive(Debug, Clone)]
pub struct NewApproval {
    /// The model.
    pub name: String,
    /// The version approved.
    pub version: i64,
    /// Its root digest.
    pub root: Digest,
    /// The approver's key fingerprint.
    pub approver_key: String,
}

impl Registration {
    fn of(name: &str, version: i64, v: &VersionContent, source: &str, reason: &str) -> Self {
        Self {
            name: name.to_owned(),
            version,
            root: v.root,
            signer: v.signer.clone(),
            signer_identity: v.signer_identity.clone(),
            files: v.files.len(),
            provenance: v.provenance.is_some(),
            source: source.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Why `v`, found in `current`, may not move to `to` (it must come from one of `from`).
fn stage_refusal(
    v: &VersionInfo,
    current: Stage,
    to: Stage,
    from: &[Stage],
) -> Option<RegistryError> {
    if current == to {
        return Some(RegistryError::Conflict(format!(
            "{}@{} is already in {}",
            v.name,
            v.version,
            to.as_str()
        )));
    }
    if !from.contains(&current) {
        return Some(RegistryError::Conflict(format!(
            "{}@{} is in {}; it can enter {} only from {}",
            v.name,
            v.version,
            current.as_str(),
            to.as_str(),
            from.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        )));
    }
    None
}

/// Where the version holding `to` goes when another enters it.
const fn displaced_to(to: Stage) -> Stage {
    if matches!(to, Stage::Production) {
        Stage::Archived
    } else {
        Stage::None
    }
}

/// The error for a reference that matched no row: no such model, or no such version of it.
fn not_found(reference: &str, name: &str, sel: &Selector, known: bool) -> RegistryError {
    RegistryError::NotFound(if known {
        match sel {
            Selector::Stage(s) => format!("{name} has no version in {}", s.as_str()),
            _ => format!("{reference}: no such version"),
        }
    } else {
        format!("no model named {name} in the registry")
    })
}

fn no_model(name: &str) -> RegistryError {
    RegistryError::NotFound(format!("no model named {name} in the registry"))
}

fn no_earlier_production(name: &str) -> RegistryError {
    RegistryError::NotFound(format!(
        "{name} has no earlier production version to roll back to"
    ))
}

fn left_production(name: &str, version: i64) -> RegistryError {
    RegistryError::Conflict(format!(
        "{name}@{version} left production while the rollback was prepared; try again"
    ))
}

/// After an approval's insert changed `rows` rows: a conflict when it changed none (this key
/// already approved), else the witness's verdict.
fn approval_recorded(
    v: &VersionInfo,
    approver_key: &str,
    rows: u64,
    record: Witness<'_, NewApproval>,
) -> Result<(), RegistryError> {
    if rows == 0 {
        return Err(RegistryError::Conflict(format!(
            "{}@{} is already approved by key {approver_key}",
            v.name, v.version
        )));
    }
    witnessed(
        record,
        &NewApproval {
            name: v.name.clone(),
            version: v.version,
            root: v.root,
            approver_key: approver_key.to_owned(),
        },
    )
}

/// Shows a stage change of `name` (the moving version's `root`) to its witness.
fn stage_changed(
    name: &str,
    root: Digest,
    transition: Transition,
    record: Witness<'_, StageChange>,
) -> Result<Transition, RegistryError> {
    witnessed(
        record,
        &StageChange {
            name: name.to_owned(),
            root,
            transition: transition.clone(),
        },
    )?;
    Ok(transition)
}

fn witnessed<T>(record: Witness<'_, T>, value: &T) -> Result<(), RegistryError> {
    record(value).map_err(RegistryError::Unrecorded)
}

pub use rampart_crypto::now_rfc3339 as now;

/// A parsed `NAME[@VERSION|@staging|@production]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The newest version.
    Latest,
    /// A number.
    Number(i64),
    /// Whatever holds that stage.
    Stage(Stage),
}

/// Model names: 1–128 of letters, digits, `.`, `_`, `-`, starting with a letter or digit.
#[must_use]
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Parses a model reference.
///
/// # Errors
/// [`RegistryError::BadReference`].
pub fn parse_reference(text: &str) -> Result<(String, Selector), RegistryError> {
    let bad = || RegistryError::BadReference(text.to_owned());
    let (name, sel) = match text.split_once('@') {
        None => (text, Selector::Latest),
        Some((n, "staging")) => (n, Selector::Stage(Stage::Staging)),
        Some((n, "production")) => (n, Selector::Stage(Stage::Production)),
        Some((n, v)) => (
            n,
            Selector::Number(v.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(bad)?),
        ),
    };
    if !valid_name(name) {
        return Err(bad());
    }
    Ok((name.to_owned(), sel))
}

/// Largest signature, provenance or approval bundle read back.
pub const MAX_BUNDLE_BYTES: u64 = 64 << 20;

/// The registry in a directory (`HOME/registry`).
pub struct Registry {
    meta: Box<dyn MetadataStore>,
    blobs: Box<dyn BlobStore>,
    dir: PathBuf,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("dir", &self.dir).finish()
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, RegistryError> {
    serde_json::from_str(text).map_err(|e| RegistryError::Db(format!("{what}: {e}")))
}

fn digest_col(text: &str) -> Result<Digest, RegistryError> {
    Digest::from_hex(text).map_err(|e| RegistryError::Db(format!("digest {text:?}: {e}")))
}

const VERSION_COLUMNS: &str = "v.id, m.name, v.version, v.root, v.files, v.signature, v.signer, \
    v.provenance, v.scan, v.metrics, v.input_schema, v.lineage, v.created_by, v.registrant_key, \
    v.created_at, v.source, v.stage, v.signer_identity";

type RawRow = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
        r.get(12)?,
        r.get(13)?,
        r.get(14)?,
        r.get(15)?,
        r.get(16)?,
        r.get(17)?,
    ))
}

fn version_from(raw: RawRow) -> Result<VersionInfo, RegistryError> {
    let (
        id,
        name,
        version,
        root,
        files,
        signature,
        signer,
        provenance,
        scan,
        metrics,
        schema,
        lineage,
        created_by,
        registrant_key,
        created_at,
        source,
        stage,
        signer_identity,
    ) = raw;
    Ok(VersionInfo {
        id,
        name,
        version,
        content: VersionContent {
            root: digest_col(&root)?,
            files: parse_json(&files, "files")?,
            signature: digest_col(&signature)?,
            signer,
            signer_identity,
            provenance: provenance.as_deref().map(digest_col).transpose()?,
            scan: parse_json(&scan, "scan")?,
            metrics: metrics
                .as_deref()
                .map(|m| parse_json(m, "metrics"))
                .transpose()?,
            input_schema: schema
                .as_deref()
                .map(|m| parse_json(m, "input_schema"))
                .transpose()?,
            lineage: parse_json(&lineage, "lineage")?,
            created_by,
            registrant_key,
        },
        created_at,
        source,
        stage: Stage::parse(&stage).ok_or_else(|| RegistryError::Db(format!("stage {stage:?}")))?,
    })
}

/// Where a home's registry lives: its directory (blobs, and the metadata unless shared) and
/// where its metadata is kept (`[storage] registry`). Cheap to clone: a gateway keeps one to
/// reopen the registry on every reload.
#[derive(Debug, Clone)]
pub struct Location {
    dir: PathBuf,
    metadata: rampart_home::Backend,
    blobs: Option<String>,
}

impl Location {
    /// The registry of `home` under `policy` (`RAMPART_STORAGE_REGISTRY` overrides it).
    ///
    /// # Errors
    /// [`RegistryError::Request`] for a storage URL that cannot be used, saying why.
    pub fn of(
        home: &rampart_home::Home,
        policy: &rampart_home::Policy,
    ) -> Result<Self, RegistryError> {
        Ok(Self {
            dir: home.root().join("registry"),
            metadata: policy
                .storage
                .registry()
                .map_err(|e| RegistryError::Request(e.0))?,
            blobs: policy.storage.blobs(),
        })
    }

    /// The registry in `dir` alone (metadata in its SQLite).
    #[must_use]
    pub fn local(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            metadata: rampart_home::Backend::Home,
            blobs: None,
        }
    }

    /// The object storage URL the blobs live at, if not in the home.
    #[must_use]
    pub fn blobs(&self) -> Option<&str> {
        self.blobs.as_deref()
    }

    fn blob_store(&self) -> Result<Box<dyn BlobStore>, RegistryError> {
        Ok(match &self.blobs {
            None => Box::new(FsBlobStore::new(self.dir.join("blobs"))),
            Some(url) => Box::new(
                s3::S3BlobStore::open(url, &self.dir.join("tmp"))
                    .map_err(|e| RegistryError::Request(format!("storage.blobs: {e}")))?,
            ),
        })
    }

    /// The directory (blobs; metadata too when it is local).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the metadata lives.
    #[must_use]
    pub const fn metadata(&self) -> &rampart_home::Backend {
        &self.metadata
    }

    /// Opens the registry (connecting to, and migrating, a shared database).
    ///
    /// # Errors
    /// As [`Registry::open`]; a database that cannot be reached or migrated.
    pub fn open(&self) -> Result<Registry, RegistryError> {
        create_private_dir(&self.dir)?;
        let meta: Box<dyn MetadataStore> = match &self.metadata {
            rampart_home::Backend::Home => {
                Box::new(SqliteMetadata::open(&self.dir.join("registry.db"))?)
            }
            rampart_home::Backend::Postgres(target) => Box::new(pg::PgMetadata::open(target)?),
        };
        Ok(Registry::with_stores(&self.dir, meta, self.blob_store()?))
    }
}

/// What [`Location::check_blobs`] found.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum BlobsCheck {
    /// Files in the home.
    Files {
        /// The directory.
        path: PathBuf,
    },
    /// S3-compatible object storage: a blob was written (the empty one: content-addressed,
    /// so harmless) and read back verified.
    S3 {
        /// `s3://BUCKET/PREFIX`.
        url: String,
    },
}

impl Location {
    /// Checks that the blob store can be written and read.
    ///
    /// # Errors
    /// Why it cannot.
    pub fn check_blobs(&self) -> Result<BlobsCheck, RegistryError> {
        let store = self.blob_store()?;
        match &self.blobs {
            None => Ok(BlobsCheck::Files {
                path: self.dir.join("blobs"),
            }),
            Some(url) => {
                let d = store.put(&mut std::io::empty())?;
                store.verify(&d)?;
                Ok(BlobsCheck::S3 { url: url.clone() })
            }
        }
    }
}

/// What [`Location::check`] found of the registry's metadata.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum MetadataCheck {
    /// SQLite in the home.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Models registered.
        models: usize,
    },
    /// PostgreSQL.
    Postgres {
        /// The URL, without its password.
        url: String,
        /// What the server said.
        #[serde(flatten)]
        check: pg::PgCheck,
    },
}

impl Location {
    /// Opens the registry and checks that its metadata can be read and written.
    ///
    /// # Errors
    /// Why the registry cannot be used.
    pub fn check(&self) -> Result<MetadataCheck, RegistryError> {
        match &self.metadata {
            rampart_home::Backend::Home => {
                let reg = Registry::open(&self.dir)?;
                Ok(MetadataCheck::Sqlite {
                    path: self.dir.join("registry.db"),
                    models: reg.names()?.len(),
                })
            }
            rampart_home::Backend::Postgres(target) => Ok(MetadataCheck::Postgres {
                url: target.to_string(),
                check: pg::PgMetadata::open(target)?.check()?,
            }),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.metadata {
            rampart_home::Backend::Home => write!(f, "{}", self.dir.display()),
            other => write!(f, "{other} (blobs in {})", self.dir.display()),
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), RegistryError> {
    std::fs::create_dir_all(dir).map_err(|source| RegistryError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    use std::os::unix::fs::PermissionsExt as _;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    Ok(())
}

impl Registry {
    /// Opens (creating) the registry in `dir`.
    ///
    /// # Errors
    /// When the directory or the database cannot be opened or migrated.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        create_private_dir(dir)?;
        let meta = SqliteMetadata::open(&dir.join("registry.db"))?;
        Ok(Self::with_stores(
            dir,
            Box::new(meta),
            Box::new(FsBlobStore::new(dir.join("blobs"))),
        ))
    }

    /// A registry over other stores (a shared database, object storage); `dir` names it in
    /// messages.
    #[must_use]
    pub fn with_stores(
        dir: &Path,
        meta: Box<dyn MetadataStore>,
        blobs: Box<dyn BlobStore>,
    ) -> Self {
        Self {
            meta,
            blobs,
            dir: dir.to_path_buf(),
        }
    }

    /// The blob store.
    #[must_use]
    pub fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    /// Stores a new version of `name` (creating the model) as the next number.
    ///
    /// # Errors
    /// Database errors; [`RegistryError::Refused`] for a bad name.
    pub fn insert_version(
        &mut self,
        name: &str,
        v: &NewVersion,
        actor: &str,
        reason: &str,
        record: Witness<'_, Registration>,
    ) -> Result<VersionInfo, RegistryError> {
        if !valid_name(name) {
            return Err(RegistryError::Refused(format!(
                "{name:?} is not a model name (1-128 letters, digits, '.', '_', '-')"
            )));
        }
        for f in &v.content.files {
            if !self.blobs.contains(&f.sha256) {
                return Err(RegistryError::Blob(BlobError::Missing(f.sha256)));
            }
        }
        self.meta.insert_version(name, v, actor, reason, record)
    }

    /// Resolves `NAME`, `NAME@N`, `NAME@staging`, `NAME@production`.
    ///
    /// # Errors
    /// [`RegistryError::BadReference`], [`RegistryError::NotFound`].
    pub fn resolve(&self, reference: &str) -> Result<VersionInfo, RegistryError> {
        self.meta.resolve(reference)
    }

    /// Every version of a model, oldest first.
    ///
    /// # Errors
    /// Database errors; [`RegistryError::NotFound`].
    pub fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        self.meta.versions(name)
    }

    /// Model names, sorted.
    ///
    /// # Errors
    /// Database errors.
    pub fn names(&self) -> Result<Vec<String>, RegistryError> {
        self.meta.names()
    }

    /// The stage history of a model, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, RegistryError> {
        self.meta.history(name)
    }

    /// The approvals recorded for a version.
    ///
    /// # Errors
    /// Database errors.
    pub fn approvals(&self, v: &VersionInfo) -> Result<Vec<ApprovalRecord>, RegistryError> {
        self.meta.approvals(v)
    }

    /// Records an approval (already verified by the caller). With `replace`, a row already
    /// recorded under this key is overwritten (the caller found that it does not verify: a
    /// forged row must not block the real approver).
    ///
    /// # Errors
    /// [`RegistryError::Conflict`] when this key already approved this version.
    pub fn add_approval(
        &mut self,
        v: &VersionInfo,
        approver_key: &str,
        approver: &str,
        bundle: &str,
        replace: bool,
        record: Witness<'_, NewApproval>,
    ) -> Result<(), RegistryError> {
        self.meta
            .add_approval(v, approver_key, approver, bundle, replace, record)
    }

    /// Moves a version to `to`, in one serialised transaction. The version must currently be
    /// in one of `from` (checked inside the transaction: of two racing promotions of the same
    /// version, the second finds it already moved). The version holding `to` before is moved
    /// to `archived` (production) or `none` (staging).
    ///
    /// # Errors
    /// [`RegistryError::Conflict`] when the version is not in one of `from`.
    pub fn set_stage(
        &mut self,
        v: &VersionInfo,
        to: Stage,
        from: &[Stage],
        actor: &str,
        reason: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError> {
        self.meta.set_stage(v, to, from, actor, reason, record)
    }

    /// The version that was in production before the current one: the last one displaced
    /// from production that is still archived.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] when there is none.
    pub fn previous_production(&self, name: &str) -> Result<VersionInfo, RegistryError> {
        self.meta.previous_production(name)
    }

    /// Puts the previous production version back, atomically: the current one is archived.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] with no production or no earlier one.
    pub fn rollback(
        &mut self,
        name: &str,
        actor: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError> {
        self.meta.rollback(name, actor, record)
    }

    /// Writes a version's files into `dir` (which must exist and be empty), each verified
    /// against its digest: the way to load a model.
    ///
    /// # Errors
    /// A missing or corrupted blob (nothing usable is left in `dir` for that file).
    pub fn materialise(&self, v: &VersionInfo, dir: &Path) -> Result<(), RegistryError> {
        for f in &v.files {
            let to = dir.join(f.relative_path()?);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|source| RegistryError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            self.blobs.copy_to(&f.sha256, &to, f.size)?;
        }
        Ok(())
    }
}

/// The registry's metadata in SQLite (`HOME/registry/registry.db`, WAL, every change one
/// `IMMEDIATE` transaction): the local [`MetadataStore`].
pub struct SqliteMetadata {
    db: rusqlite::Connection,
}

impl std::fmt::Debug for SqliteMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteMetadata")
    }
}

impl SqliteMetadata {
    /// Opens (creating and migrating) the database at `path`.
    ///
    /// # Errors
    /// When it cannot be opened or was written by a newer rampart.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        Ok(Self {
            db: db::open(path)?,
        })
    }
}

impl MetadataStore for SqliteMetadata {
    /// Stores a new version of `name` (creating the model) as the next number.
    ///
    /// # Errors
    /// Database errors; [`RegistryError::Refused`] for a bad name.
    fn insert_version(
        &mut self,
        name: &str,
        v: &NewVersion,
        actor: &str,
        reason: &str,
        record: Witness<'_, Registration>,
    ) -> Result<VersionInfo, RegistryError> {
        let (source, v) = (&v.source, &v.content);
        let at = now();
        let json = |v: &dyn erased::Ser| v.to_json();
        let tx = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT OR IGNORE INTO models (name, created_at, created_by) VALUES (?1, ?2, ?3)",
            params![name, at, actor],
        )?;
        let model_id: i64 = tx.query_row("SELECT id FROM models WHERE name = ?1", [name], |r| {
            r.get(0)
        })?;
        let next: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE model_id = ?1",
            [model_id],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO versions (model_id, version, root, files, signature, signer, provenance, scan, metrics, input_schema, lineage, created_by, registrant_key, created_at, source, signer_identity)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                model_id,
                next,
                v.root.to_hex(),
                json(&v.files),
                v.signature.to_hex(),
                v.signer,
                v.provenance.map(|d| d.to_hex()),
                v.scan.to_string(),
                v.metrics.as_ref().map(Value::to_string),
                v.input_schema.as_ref().map(Value::to_string),
                json(&v.lineage),
                v.created_by,
                v.registrant_key,
                at,
                source,
                v.signer_identity,
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO stage_history (version_id, from_stage, to_stage, actor, at, reason) VALUES (?1, 'none', 'none', ?2, ?3, ?4)",
            params![id, actor, at, reason],
        )?;
        witnessed(record, &Registration::of(name, next, v, source, reason))?;
        tx.commit()?;
        self.resolve(&format!("{name}@{next}"))
    }

    /// Resolves `NAME`, `NAME@N`, `NAME@staging`, `NAME@production`.
    ///
    /// # Errors
    /// [`RegistryError::BadReference`], [`RegistryError::NotFound`].
    fn resolve(&self, reference: &str) -> Result<VersionInfo, RegistryError> {
        let (name, sel) = parse_reference(reference)?;
        let base = format!(
            "SELECT {VERSION_COLUMNS} FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = ?1"
        );
        let row = match &sel {
            Selector::Latest => self
                .db
                .query_row(
                    &format!("{base} ORDER BY v.version DESC LIMIT 1"),
                    [&name],
                    raw_row,
                )
                .optional()?,
            Selector::Number(n) => self
                .db
                .query_row(
                    &format!("{base} AND v.version = ?2"),
                    params![name, n],
                    raw_row,
                )
                .optional()?,
            Selector::Stage(s) => self
                .db
                .query_row(
                    &format!("{base} AND v.stage = ?2"),
                    params![name, s.as_str()],
                    raw_row,
                )
                .optional()?,
        };
        match row {
            Some(r) => version_from(r),
            None => {
                let known: bool = self.db.query_row(
                    "SELECT EXISTS (SELECT 1 FROM models WHERE name = ?1)",
                    [&name],
                    |r| r.get(0),
                )?;
                Err(not_found(reference, &name, &sel, known))
            }
        }
    }

    /// Every version of a model, oldest first.
    ///
    /// # Errors
    /// Database errors; [`RegistryError::NotFound`].
    fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        let mut st = self.db.prepare(&format!(
            "SELECT {VERSION_COLUMNS} FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = ?1 ORDER BY v.version"
        ))?;
        let rows = st.query_map([name], raw_row)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(version_from(r?)?);
        }
        if out.is_empty() {
            return Err(no_model(name));
        }
        Ok(out)
    }

    /// Model names, sorted.
    ///
    /// # Errors
    /// Database errors.
    fn names(&self) -> Result<Vec<String>, RegistryError> {
        let mut st = self.db.prepare("SELECT name FROM models ORDER BY name")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    /// The stage history of a model, oldest first.
    ///
    /// # Errors
    /// Database errors.
    fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, RegistryError> {
        let mut st = self.db.prepare(
            "SELECT v.version, h.from_stage, h.to_stage, h.actor, h.at, h.reason
             FROM stage_history h JOIN versions v ON v.id = h.version_id JOIN models m ON m.id = v.model_id
             WHERE m.name = ?1 ORDER BY h.id",
        )?;
        let rows = st.query_map([name], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let (version, from, to, actor, at, reason) = r?;
            out.push(HistoryEntry {
                version,
                from: Stage::parse(&from).unwrap_or(Stage::None),
                to: Stage::parse(&to).unwrap_or(Stage::None),
                actor,
                at,
                reason,
            });
        }
        Ok(out)
    }

    /// The approvals recorded for a version.
    ///
    /// # Errors
    /// Database errors.
    fn approvals(&self, v: &VersionInfo) -> Result<Vec<ApprovalRecord>, RegistryError> {
        let mut st = self.db.prepare(
            "SELECT approver_key, approver, bundle, at FROM approvals WHERE version_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([v.id], |r| {
            Ok(ApprovalRecord {
                approver_key: r.get(0)?,
                approver: r.get(1)?,
                bundle: r.get(2)?,
                at: r.get(3)?,
            })
        })?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    /// Records an approval (already verified by the caller). With `replace`, a row already
    /// recorded under this key is overwritten (the caller found that it does not verify: a
    /// forged row must not block the real approver).
    ///
    /// # Errors
    /// [`RegistryError::Conflict`] when this key already approved this version.
    fn add_approval(
        &mut self,
        v: &VersionInfo,
        approver_key: &str,
        approver: &str,
        bundle: &str,
        replace: bool,
        record: Witness<'_, NewApproval>,
    ) -> Result<(), RegistryError> {
        let sql = if replace {
            "INSERT INTO approvals (version_id, approver_key, approver, bundle, at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (version_id, approver_key) DO UPDATE SET approver = excluded.approver, bundle = excluded.bundle, at = excluded.at"
        } else {
            "INSERT OR IGNORE INTO approvals (version_id, approver_key, approver, bundle, at) VALUES (?1, ?2, ?3, ?4, ?5)"
        };
        let tx = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(sql, params![v.id, approver_key, approver, bundle, now()])?;
        approval_recorded(v, approver_key, n as u64, record)?;
        tx.commit()?;
        Ok(())
    }

    /// Moves a version to `to`, in one serialised transaction. The version must currently be
    /// in one of `from` (checked inside the transaction: of two racing promotions of the same
    /// version, the second finds it already moved). The version holding `to` before is moved
    /// to `archived` (production) or `none` (staging).
    ///
    /// # Errors
    /// [`RegistryError::Conflict`] when the version is not in one of `from`.
    fn set_stage(
        &mut self,
        v: &VersionInfo,
        to: Stage,
        from: &[Stage],
        actor: &str,
        reason: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError> {
        let tx = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: String =
            tx.query_row("SELECT stage FROM versions WHERE id = ?1", [v.id], |r| {
                r.get(0)
            })?;
        let current = Stage::parse(&current).unwrap_or(Stage::None);
        if let Some(refused) = stage_refusal(v, current, to, from) {
            return Err(refused);
        }
        let at = now();
        let model_id: i64 =
            tx.query_row("SELECT model_id FROM versions WHERE id = ?1", [v.id], |r| {
                r.get(0)
            })?;
        let holder: Option<(i64, i64)> = tx
            .query_row(
                "SELECT id, version FROM versions WHERE model_id = ?1 AND stage = ?2",
                params![model_id, to.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut displaced = None;
        if let Some((hid, hver)) = holder {
            let out = displaced_to(to);
            tx.execute(
                "UPDATE versions SET stage = ?1 WHERE id = ?2",
                params![out.as_str(), hid],
            )?;
            tx.execute(
                "INSERT INTO stage_history (version_id, from_stage, to_stage, actor, at, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hid, to.as_str(), out.as_str(), actor, at, format!("displaced by v{}", v.version)],
            )?;
            displaced = Some(hver);
        }
        tx.execute(
            "UPDATE versions SET stage = ?1 WHERE id = ?2",
            params![to.as_str(), v.id],
        )?;
        tx.execute(
            "INSERT INTO stage_history (version_id, from_stage, to_stage, actor, at, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![v.id, current.as_str(), to.as_str(), actor, at, reason],
        )?;
        let transition = Transition {
            version: v.version,
            from: current,
            to,
            displaced,
        };
        let transition = stage_changed(&v.name, v.root, transition, record)?;
        tx.commit()?;
        Ok(transition)
    }

    /// The version that was in production before the current one: the last one displaced
    /// from production that is still archived.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] when there is none.
    fn previous_production(&self, name: &str) -> Result<VersionInfo, RegistryError> {
        let version: Option<i64> = self
            .db
            .query_row(
                "SELECT v.version FROM stage_history h JOIN versions v ON v.id = h.version_id JOIN models m ON m.id = v.model_id
                 WHERE m.name = ?1 AND h.from_stage = 'production' AND v.stage = 'archived'
                 ORDER BY h.id DESC LIMIT 1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        match version {
            Some(v) => self.resolve(&format!("{name}@{v}")),
            None => Err(no_earlier_production(name)),
        }
    }

    /// Puts the previous production version back, atomically: the current one is archived.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] with no production or no earlier one.
    fn rollback(
        &mut self,
        name: &str,
        actor: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError> {
        let current = self.resolve(&format!("{name}@production"))?;
        let previous = self.previous_production(name)?;
        let tx = self
            .db
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let still: String = tx.query_row(
            "SELECT stage FROM versions WHERE id = ?1",
            [current.id],
            |r| r.get(0),
        )?;
        if still != "production" {
            return Err(left_production(name, current.version));
        }
        let at = now();
        tx.execute(
            "UPDATE versions SET stage = 'archived' WHERE id = ?1",
            [current.id],
        )?;
        tx.execute(
            "INSERT INTO stage_history (version_id, from_stage, to_stage, actor, at, reason) VALUES (?1, 'production', 'archived', ?2, ?3, ?4)",
            params![current.id, actor, at, format!("rolled back to v{}", previous.version)],
        )?;
        tx.execute(
            "UPDATE versions SET stage = 'production' WHERE id = ?1",
            [previous.id],
        )?;
        tx.execute(
            "INSERT INTO stage_history (version_id, from_stage, to_stage, actor, at, reason) VALUES (?1, 'archived', 'production', ?2, ?3, 'rollback')",
            params![previous.id, actor, at],
        )?;
        let transition = Transition {
            version: previous.version,
            from: Stage::Archived,
            to: Stage::Production,
            displaced: Some(current.version),
        };
        let transition = stage_changed(name, previous.root, transition, record)?;
        tx.commit()?;
        Ok(transition)
    }
}

mod erased {
    /// JSON text of a serialisable value (for the database's JSON columns).
    pub trait Ser {
        fn to_json(&self) -> String;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_file_names_become_paths() {
        let entry = |name: &str| FileEntry {
            name: name.to_owned(),
            sha256: rampart_crypto::sha256(b""),
            size: 0,
        };
        for ok in [
            "model.safetensors",
            "sub/dir/weights.bin",
            ".hidden",
            "a..b",
        ] {
            assert_eq!(entry(ok).relative_path().unwrap(), Path::new(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "./x",
            "a//b",
            "a/",
            "a\\..\\x",
        ] {
            assert!(entry(bad).relative_path().is_err(), "{bad:?}");
        }
    }
}
