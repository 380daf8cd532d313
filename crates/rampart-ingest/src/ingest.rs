//! `ingest`: a dataset enters the store only through here.
//!
//! One pass over the opened file does everything: the bytes are hashed as they are read (so the
//! integrity check is on exactly what was validated), decrypted in memory when they are an age
//! file, validated row by row, and the clean and rejected rows are encrypted to the home's
//! identity as they are written into the store. Plaintext never reaches the disk. Nothing is
//! committed until the integrity check, the reject rate, the redaction and the poisoning
//! checks have passed.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rampart_audit::{Action, Outcome};
use rampart_crypto::age_file::{self, EncryptingWriter, Recipients, Unlock};
use rampart_crypto::now_rfc3339 as now;
use rampart_crypto::oms::{self, FileExpectation};
use rampart_crypto::{Digest, Sha256Hasher};
use rampart_data::integrity::{self, Expected, ExpectedDir, Integrity, Observed};
use rampart_data::open_authorised_with;
use rampart_data::paths::Kind;
use rampart_data::poison::{PoisonReport, Severity};
use rampart_data::schema::Schema;
use rampart_data::shards::{Shard, ShardChain};
use rampart_data::stream::{self, DataFormat};
use rampart_data::validate::{Report, ValidateOptions};
use rampart_home::Session;
use rampart_home::secure_fs::{self, AtomicFile};
use serde_json::{Value, json};

use crate::IngestError;
use crate::open::refused;
use crate::redact::RedactOverrides;
use crate::store::{
    CleanRecord, Committed, Counts, DatasetManifest, DatasetStore, MANIFEST_TYPE, QuarantineRecord,
    SchemaRecord, ShardRecord, SourceRecord, dataset_ref,
};

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// The dataset: a CSV or Parquet file (plain or age), or a directory of CSV shards.
    pub path: PathBuf,
    /// Its schema.
    pub schema: PathBuf,
    /// Its signature, when not beside it (`PATH.sig`, or `DIR/model.sig`).
    pub signature: Option<PathBuf>,
    /// A digest it must have (`sha256:HEX`), besides the policy's pins.
    pub expect_sha256: Option<String>,
    /// Ingest it even if neither signed nor pinned (recorded in the audit log).
    pub allow_unsigned: bool,
    /// The largest share of rejected rows accepted (0–1).
    pub max_reject_rate: f64,
    /// Records longer than this are rejected.
    pub max_row_bytes: usize,
    /// Redact personal data before storing (over the policy's `[data.pii]`), when set; the
    /// policy's `on_ingest` redacts with no overrides.
    pub redact: Option<RedactOverrides>,
    /// Run the poisoning checks (the policy's `on_ingest` runs them too).
    pub checks: bool,
    /// A trusted earlier dataset the checks compare against (implies `checks`).
    pub reference: Option<PathBuf>,
    /// The severity that refuses the dataset, instead of the policy's.
    pub fail_on: Option<Severity>,
}

impl IngestRequest {
    /// A request with the defaults: no redaction or checks beyond the policy's, any reject
    /// rate, records up to 1 MiB.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>, schema: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            schema: schema.into(),
            signature: None,
            expect_sha256: None,
            allow_unsigned: false,
            max_reject_rate: 1.0,
            max_row_bytes: 1 << 20,
            redact: None,
            checks: false,
            reference: None,
            fail_on: None,
        }
    }
}

/// A stored dataset.
#[derive(Debug, Clone)]
pub struct Ingested {
    /// What was written.
    pub committed: Committed,
    /// The manifest (also in the store).
    pub manifest: DatasetManifest,
    /// The validation report.
    pub report: Report,
    /// What vouched for it.
    pub integrity: Integrity,
}

impl Ingested {
    /// The dataset's reference (`sha256:HEX`).
    #[must_use]
    pub fn dataset(&self) -> &str {
        &self.manifest.dataset
    }
}

/// A readable, vouched-for dataset that was not stored for its content (nothing was).
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The validation report.
    pub report: Report,
    /// `sha256:` of the schema it was validated against.
    pub schema_digest: String,
    /// Why it was not stored.
    pub reason: RejectReason,
}

/// Why a dataset was rejected for its content.
#[derive(Debug, Clone)]
pub enum RejectReason {
    /// Too many rows were rejected.
    RejectRate {
        /// The share rejected.
        rate: f64,
        /// The most allowed.
        max: f64,
    },
    /// A poisoning check fired at or above the threshold.
    Checks {
        /// The checks.
        checks: PoisonReport,
        /// The severity that refuses.
        threshold: Severity,
    },
}

/// How an ingest ended.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum IngestOutcome {
    /// Stored.
    Stored(Ingested),
    /// Refused by its content (audited as failed).
    Rejected(Rejected),
}

/// The digest of a file (`sha256:` of its bytes) or of a dataset directory (the OMS root
/// digest of its files, its signature aside): what ingestion compares with `data.pins`.
///
/// # Errors
/// Reading it.
pub fn path_digest(path: &Path) -> Result<String, IngestError> {
    if path.is_dir() {
        let mut ignore = oms::IgnoreSet::default();
        ignore.add("model.sig");
        let m = oms::manifest(path, oms::Method::Files, &ignore, false, &|_| {}).map_err(|e| {
            IngestError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::other(e),
            }
        })?;
        return Ok(dataset_ref(&m.root));
    }
    let read = |source| IngestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(read)?;
    let mut h = Sha256Hasher::new();
    std::io::copy(&mut f, &mut h).map_err(read)?;
    Ok(dataset_ref(&h.finish()))
}

/// A schema file and `sha256:` of its text.
///
/// # Errors
/// It cannot be read or is not a schema.
pub fn load_schema(path: &Path) -> Result<(Schema, String), IngestError> {
    let text = secure_fs::read_small_file(path)?;
    let schema = Schema::from_toml(&text).map_err(|source| IngestError::Schema {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((
        schema,
        dataset_ref(&rampart_crypto::sha256(text.as_bytes())),
    ))
}

/// A writer that hashes the plaintext passing into it.
struct TeeHash<W> {
    inner: W,
    hasher: Sha256Hasher,
    bytes: u64,
}

impl<W: Write> Write for TeeHash<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An encrypted store file being written, hashing its plaintext.
struct Sealed<'a> {
    out: TeeHash<EncryptingWriter<BufWriter<&'a mut std::fs::File>>>,
    path: PathBuf,
}

impl<'a> Sealed<'a> {
    fn new(file: &'a mut AtomicFile, to: &Recipients) -> Result<Self, IngestError> {
        let path = file.temp_path().to_path_buf();
        let w = EncryptingWriter::new(BufWriter::with_capacity(1 << 20, file.file()), to, false)
            .map_err(|source| IngestError::Age {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            out: TeeHash {
                inner: w,
                hasher: Sha256Hasher::new(),
                bytes: 0,
            },
            path,
        })
    }

    /// Completes the age file; returns the plaintext digest and size.
    fn finish(self) -> Result<(Digest, u64), IngestError> {
        let TeeHash {
            inner,
            hasher,
            bytes,
        } = self.out;
        inner
            .finish()
            .and_then(|mut w| w.flush())
            .map_err(|source| IngestError::Store {
                path: self.path,
                source,
            })?;
        Ok((hasher.finish(), bytes))
    }
}

/// The plaintext of a store file being written (its temp file), decrypted with `keys`.
fn open_sealed(path: &Path, keys: &Unlock) -> Result<Box<dyn Read + Send>, IngestError> {
    let f = std::fs::File::open(path).map_err(|source| IngestError::Store {
        path: path.to_path_buf(),
        source,
    })?;
    age_file::decrypting_reader(age_file::buffered(f), keys).map_err(|source| IngestError::Age {
        path: path.to_path_buf(),
        source,
    })
}

/// Audits a refusal of the dataset by `rule` and returns it as the error.
fn refuse(
    s: &Session<'_>,
    path: &Path,
    rule: &'static str,
    reason: String,
    hint: &'static str,
) -> IngestError {
    let event = s
        .audit
        .event(Action::DataIngest, Outcome::Denied)
        .subject_path(path.display().to_string())
        .detail("rule", rule)
        .detail("reason", reason.as_str());
    if let Some(e) = s.audit.refusal(event) {
        return e.into();
    }
    IngestError::Refused {
        path: path.to_path_buf(),
        rule,
        reason,
        hint,
    }
}

/// What vouches for a dataset file or directory.
enum Vouch {
    File(Expected),
    Dir(ExpectedDir),
}

impl Vouch {
    /// The shard size to hash `name` with, when its signature was made by shards.
    fn shard_size(&self, name: &str) -> Option<u64> {
        let file = match self {
            Self::File(Expected::Signed { file, .. }) => Some(file),
            Self::Dir(ExpectedDir::Signed { files, .. }) => files.get(name),
            _ => None,
        };
        match file {
            Some(FileExpectation::Shards { shard_size, .. }) => Some(*shard_size),
            _ => None,
        }
    }
}

/// What vouches for the dataset: its signature (verified now, matched against the bytes as
/// they are read), or the pinned digests.
fn expectation(
    s: &Session<'_>,
    req: &IngestRequest,
    real: &Path,
    is_dir: bool,
) -> Result<(Vouch, Option<String>), IngestError> {
    let sig = req.signature.clone().unwrap_or_else(|| {
        if is_dir {
            real.join("model.sig")
        } else {
            oms::default_signature_path(&req.path)
        }
    });
    if !sig.exists() {
        if req.signature.is_some() {
            return Err(IngestError::Request(format!(
                "the signature {} does not exist",
                sig.display()
            )));
        }
        let mut pins: Vec<Digest> = s
            .policy
            .data
            .pins
            .iter()
            .filter_map(|p| p.strip_prefix("sha256:"))
            .filter_map(|h| Digest::from_hex(h).ok())
            .collect();
        if let Some(e) = &req.expect_sha256 {
            let d = e
                .strip_prefix("sha256:")
                .and_then(|h| Digest::from_hex(h).ok())
                .ok_or_else(|| {
                    IngestError::Request(format!(
                        "--expect-sha256 {e:?}: expected sha256: and 64 hex digits"
                    ))
                })?;
            pins.push(d);
        }
        let allow_unsigned = req.allow_unsigned;
        return Ok((
            if is_dir {
                Vouch::Dir(ExpectedDir::Pinned {
                    pins,
                    allow_unsigned,
                })
            } else {
                Vouch::File(Expected::Pinned {
                    pins,
                    allow_unsigned,
                })
            },
            None,
        ));
    }
    // Opened only if it is a regular file (a FIFO planted as the signature would otherwise
    // hold the ingest forever) and refused, not truncated, over the bundle limit.
    let bundle = secure_fs::read_limited(&sig, rampart_crypto::dsse::MAX_BUNDLE_BYTES)
        .map_err(|e| {
            refuse(
                s,
                &req.path,
                "integrity.signature",
                e.to_string(),
                "a signature is a regular file of at most 64 MiB beside the dataset, or named with --sig",
            )
        })?;
    let keys: Vec<_> = s.policy.trusted_public_keys();
    let anchors = s.home.anchors(s.policy)?;
    let (signed, signer) = oms::verify_bundle_signer(&bundle, &keys, &anchors).map_err(|e| {
        refuse(
            s,
            &req.path,
            "integrity.signature",
            format!("its signature {} does not verify: {e}", sig.display()),
            "datasets must be signed by a key, certificate authority or Sigstore identity in rampart.toml's trust list (`rampart trust add`, `rampart trust add-identity`)",
        )
    })?;
    let key = signer.key;
    let manifest_err = |e: oms::OmsError| {
        refuse(
            s,
            &req.path,
            "integrity.signature",
            e.to_string(),
            "sign the dataset itself: `rampart sign FILE|DIR`",
        )
    };
    if is_dir {
        let files = oms::file_expectations(&signed).map_err(manifest_err)?;
        return Ok((
            Vouch::Dir(ExpectedDir::Signed { files, key }),
            signer.identity,
        ));
    }
    let name = real
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let file = oms::single_file_expectation(&signed, &name).map_err(manifest_err)?;
    Ok((Vouch::File(Expected::Signed { file, key }), signer.identity))
}

/// The shards of a dataset directory: its regular files (the signature aside), in OMS order,
/// each opened through the authorised-path check. Only CSV shards (`.csv`, `.csv.age`) are
/// allowed.
fn dir_shards(
    dir: &Path,
    sig: &Path,
    data: &rampart_home::DataPolicy,
) -> Result<Vec<(String, std::fs::File)>, String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        if path == sig {
            continue;
        }
        let name = entry
            .file_name()
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| "a file name is not UTF-8".to_owned())?;
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if !kind.is_file() {
            return Err(format!(
                "{name} is not a regular file; a dataset directory holds CSV shards only"
            ));
        }
        if !(name.ends_with(".csv") || name.ends_with(".csv.age")) {
            return Err(format!(
                "{name} is not a CSV shard (.csv or .csv.age); a dataset directory holds CSV shards only"
            ));
        }
        names.push(name);
    }
    if names.is_empty() {
        return Err("no CSV shards in the directory".into());
    }
    names.sort_by(|a, b| oms::component_order(a, b));
    names
        .into_iter()
        .map(|n| {
            let a = open_authorised_with(&dir.join(&n), &data.roots, data.allow_hard_links)
                .map_err(|e| e.to_string())?;
            Ok((n, a.file))
        })
        .collect()
}

/// Ingests a dataset into the home's store: see the module documentation. `keys` decrypt an
/// encrypted input (and the reference); the home's identity should be among them.
///
/// # Errors
/// Refusals (audited), unreadable input, and store or audit failures. A dataset rejected for
/// its content is not an error: it is [`IngestOutcome::Rejected`].
#[allow(clippy::too_many_lines)]
pub fn ingest(
    s: &Session<'_>,
    req: &IngestRequest,
    keys: &Unlock,
) -> Result<IngestOutcome, IngestError> {
    s.home.require()?;
    if !(0.0..=1.0).contains(&req.max_reject_rate) {
        return Err(IngestError::Request(
            "--max-reject-rate must be between 0 and 1".into(),
        ));
    }
    let data_policy = &s.policy.data;
    let (schema, schema_digest) = load_schema(&req.schema)?;
    let a = open_authorised_with(&req.path, &data_policy.roots, data_policy.allow_hard_links)
        .map_err(|e| refused(s, &req.path, e))?;
    let is_dir = a.kind == Kind::Dir;
    let (vouch, signer_identity) = expectation(s, req, &a.real, is_dir)?;
    s.audit.record(
        s.audit
            .event(Action::DataAccess, Outcome::Ok)
            .subject_path(a.real.display().to_string())
            .detail("requested", req.path.display().to_string())
            .detail("root", a.root.display().to_string()),
    )?;
    let to = Recipients::parse(&[s.home.age_identity()?.0.recipient()]).map_err(|source| {
        IngestError::Age {
            path: s.home.age_identity_path(),
            source,
        }
    })?;
    // The paths returned name the store absolutely, whatever the home was given as.
    let store = DatasetStore::of(s.home);
    secure_fs::create_private_dir(store.root())?;
    let store = std::fs::canonicalize(store.root()).map_or(store, DatasetStore::new);
    let mut clean_file = store.incoming()?;
    let mut quarantine_file = store.incoming()?;
    let runs = s.home.root().join("runs");
    secure_fs::create_private_dir(&runs)?;

    // One shard for a file; the directory's CSV shards otherwise. Each is hashed as it is
    // read and decrypted in memory when it is an age file.
    let files = if is_dir {
        let sig = req
            .signature
            .clone()
            .unwrap_or_else(|| a.real.join("model.sig"));
        dir_shards(&a.real, &sig, data_policy).map_err(|reason| {
            refuse(
                s,
                &a.real,
                "data.shards",
                reason,
                "move other files out of the dataset directory, then sign it again",
            )
        })?
    } else {
        let name = a
            .real
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        vec![(name, a.file)]
    };
    let encrypted = std::cell::Cell::new(false);
    let shards = files
        .into_iter()
        .map(|(name, file)| {
            let size = vouch.shard_size(&name);
            let shown = a.real.join(&name);
            Shard::new(name, file, size, |raw| {
                let mut buffered = age_file::buffered(raw);
                let is_age = age_file::looks_like_age(&mut buffered).map_err(|source| {
                    IngestError::Read {
                        path: shown.clone(),
                        source,
                    }
                })?;
                if is_age {
                    encrypted.set(true);
                    age_file::decrypting_reader(buffered, keys).map_err(|source| IngestError::Age {
                        path: shown,
                        source,
                    })
                } else {
                    Ok(Box::new(buffered) as Box<dyn Read + Send>)
                }
            })
        })
        .collect::<Result<Vec<_>, IngestError>>()?;
    let shard_count = shards.len();
    let chain = ShardChain::new(shards);
    let observed = chain.observed();
    let (report, format, clean, rejected) = {
        let mut clean = Sealed::new(&mut clean_file, &to)?;
        let mut rejected = Sealed::new(&mut quarantine_file, &to)?;
        // The stored rows are data (byte for byte); the stored quarantine is for people.
        let (report, format) = stream::validate_any(
            chain,
            &schema,
            &ValidateOptions::max_record_bytes(req.max_row_bytes),
            &runs,
            Some(&mut clean.out),
            Some(&mut rejected.out),
        )
        .map_err(|source| IngestError::Validate {
            path: req.path.clone(),
            source,
        })?;
        (report, format, clean.finish()?, rejected.finish()?)
    };
    let encrypted = encrypted.get();
    let observed: Vec<(String, Observed)> = std::mem::take(
        &mut *observed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    if observed.len() != shard_count {
        return Err(refuse(
            s,
            &req.path,
            "integrity",
            "not every shard was read to its end".into(),
            "the dataset could not be read completely",
        ));
    }
    let checked = match (&vouch, observed.as_slice()) {
        (Vouch::File(e), [(_, o)]) => integrity::check(o, e),
        (Vouch::Dir(e), all) => integrity::check_dir(all, e),
        (Vouch::File(_), _) => Err(integrity::IntegrityError::Tampered(
            "a file was read as several shards".into(),
        )),
    };
    let integrity = checked.map_err(|e| {
        let hint = match e {
            integrity::IntegrityError::Unvouched(_) => {
                "sign it (`rampart sign PATH`, by a trusted key), pin it (`rampart data pin PATH`), or pass --allow-unsigned"
            }
            _ => "the data changed after it was signed: get a fresh copy and its signature",
        };
        refuse(s, &req.path, "integrity", e.to_string(), hint)
    })?;
    let source = match observed.as_slice() {
        [(_, o)] if !is_dir => o.sha256,
        all => integrity::directory_digest(all),
    };
    let source_bytes: u64 = observed.iter().map(|(_, o)| o.bytes).sum();
    let source_digest = dataset_ref(&source);

    #[allow(clippy::cast_precision_loss)]
    let reject_rate = if report.rows_read == 0 {
        0.0
    } else {
        report.rejected as f64 / report.rows_read as f64
    };
    if reject_rate > req.max_reject_rate {
        s.audit.record(
            s.audit
                .event(Action::DataIngest, Outcome::Failed)
                .subject_path(a.real.display().to_string())
                .subject_digest(source_digest.clone())
                .detail(
                    "reason",
                    format!("{reject_rate:.4} of the rows were rejected"),
                )
                .detail("rejected", report.rejected)
                .detail("rows", report.rows_read),
        )?;
        return Ok(IngestOutcome::Rejected(Rejected {
            report,
            schema_digest,
            reason: RejectReason::RejectRate {
                rate: reject_rate,
                max: req.max_reject_rate,
            },
        }));
    }

    // Optional steps on the clean rows, before anything is committed: PII redaction (what
    // is stored is the redacted data) and the poisoning checks (a check at or above the
    // policy severity refuses the dataset).
    let mut clean = clean;
    let mut pii_summary = Value::Null;
    let mut checks_summary = Value::Null;
    let mut pii_columns = Value::Null;
    let mut checks_report = Value::Null;
    let pii_policy = &data_policy.pii;
    if pii_policy.on_ingest || req.redact.is_some() {
        let overrides = req.redact.clone().unwrap_or_default();
        let (redactor, columns) = crate::redact::redactor(s.home, pii_policy, &overrides)?;
        let detector = rampart_data::pii::Detector::new(rampart_data::pii::DetectorOptions {
            min_confidence: pii_policy.min_confidence,
            entities: Vec::new(),
        })
        .map_err(IngestError::Pii)?;
        // The schema's personal columns are redacted whole, recognised or not.
        let personal = rampart_data::pii::table::PersonalColumns::from_schema(&schema);
        let mut redacted_file = store.incoming()?;
        let (pii, sealed) = {
            let mut plain = open_sealed(clean_file.temp_path(), keys)?;
            let mut out = Sealed::new(&mut redacted_file, &to)?;
            let got = if format == DataFormat::Parquet {
                let file =
                    stream::spool(&mut plain, &runs).map_err(|source| IngestError::Store {
                        path: runs.clone(),
                        source,
                    })?;
                rampart_data::pii::table::process_parquet(
                    file,
                    &detector,
                    Some((&redactor, &mut out.out)),
                    rampart_data::pii::table::ParquetColumns {
                        operators: &columns,
                        personal: &personal,
                    },
                    None,
                )
            } else {
                rampart_data::pii::table::process_csv(
                    plain,
                    rampart_data::pii::table::CsvJob {
                        safe_csv: false,
                        detector: &detector,
                        reader: rampart_data::csv::ReaderOptions {
                            max_record_bytes: req.max_row_bytes,
                            ..rampart_data::csv::ReaderOptions::default()
                        },
                        redact: Some((&redactor, &mut out.out)),
                        columns: &columns,
                        findings: None,
                        personal: &personal,
                    },
                )
            };
            (got.map_err(IngestError::Pii)?, out.finish()?)
        };
        clean_file = redacted_file;
        clean = sealed;
        pii_summary = pii.audit_summary();
        // Masked samples only (never a raw value): what a report shows per column.
        pii_columns = serde_json::to_value(&pii.columns).unwrap_or_default();
    }
    if data_policy.checks.on_ingest || req.checks || req.reference.is_some() {
        let nulls: Vec<&str> = schema.nulls.iter().map(String::as_str).collect();
        let frame = crate::checks::frame(
            s,
            &req.path,
            open_sealed(clean_file.temp_path(), keys)?,
            &nulls,
        )?;
        let reference = req
            .reference
            .as_deref()
            .map(|r| {
                let ds = crate::open::open_file(s, r, crate::open::Keys::Given(keys))?;
                crate::checks::frame(s, r, ds.reader, &nulls)
            })
            .transpose()?;
        let checks = crate::checks::poisoning(&schema, &frame, reference.as_ref())?;
        let threshold = crate::checks::threshold(s, req.fail_on)?;
        checks_summary = checks.audit_summary();
        checks_report = serde_json::to_value(&checks).unwrap_or_default();
        if checks.worst() >= threshold {
            s.audit.record(
                s.audit
                    .event(Action::DataIngest, Outcome::Failed)
                    .subject_path(a.real.display().to_string())
                    .subject_digest(source_digest.clone())
                    .detail("reason", "poisoning checks fired")
                    .detail("checks", checks_summary),
            )?;
            return Ok(IngestOutcome::Rejected(Rejected {
                report,
                schema_digest,
                reason: RejectReason::Checks { checks, threshold },
            }));
        }
    }

    // Commit: the clean data under its content address, then this ingest's manifest and
    // quarantine.
    let (clean_digest, clean_bytes) = clean;
    let dataset = dataset_ref(&clean_digest);
    let (integrity_name, key) = match &integrity {
        Integrity::Signed(k) => ("signed", Some(k.to_string())),
        other => (other.name(), None),
    };
    let manifest = DatasetManifest {
        kind: MANIFEST_TYPE.into(),
        dataset: dataset.clone(),
        created: now(),
        source: SourceRecord {
            path: a.real.clone(),
            sha256: source_digest.clone(),
            bytes: source_bytes,
            shards: observed
                .iter()
                .map(|(n, o)| ShardRecord {
                    name: n.clone(),
                    sha256: dataset_ref(&o.sha256),
                    bytes: o.bytes,
                })
                .collect(),
            encrypted,
            integrity: integrity_name.into(),
            signed_by: key,
            signer_identity: signer_identity.clone(),
        },
        schema: SchemaRecord {
            path: req.schema.clone(),
            sha256: schema_digest.clone(),
        },
        counts: Counts {
            rows_read: report.rows_read,
            accepted: report.accepted,
            rejected: report.rejected,
            reconciled: report.reconciled,
            by_rule: json!(report.by_rule),
            by_column: json!(report.by_column),
        },
        format,
        clean: CleanRecord {
            file: format!("data.{}.age", format.extension()),
            sha256: dataset.clone(),
            bytes: clean_bytes,
            encrypted_to: to.describe(),
        },
        quarantine: QuarantineRecord {
            sha256: dataset_ref(&rejected.0),
            bytes: rejected.1,
        },
        pii: pii_summary.clone(),
        pii_columns,
        checks: checks_summary.clone(),
        checks_report,
        rampart: env!("CARGO_PKG_VERSION").into(),
    };
    let committed = store.commit(&clean_digest, clean_file, quarantine_file, &manifest)?;
    s.audit.record(
        s.audit
            .event(Action::DataIngest, Outcome::Ok)
            .subject_path(a.real.display().to_string())
            .subject_digest(source_digest)
            .detail("dataset", dataset)
            .detail("manifest", committed.manifest_digest.clone())
            .detail("schema", schema_digest)
            .detail("integrity", integrity_name)
            .detail("signer_identity", signer_identity.unwrap_or_default())
            .detail("rows", report.rows_read)
            .detail("accepted", report.accepted)
            .detail("rejected", report.rejected)
            .detail("pii", pii_summary)
            .detail("checks", checks_summary),
    )?;
    Ok(IngestOutcome::Stored(Ingested {
        committed,
        manifest,
        report,
        integrity,
    }))
}
