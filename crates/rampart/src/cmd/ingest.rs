//! `rampart data ingest`: a dataset enters the pipeline only through here.
//!
//! One pass over the opened file does everything: the bytes are hashed as they are read (so the
//! integrity check is on exactly what was validated), decrypted in memory when they are an age
//! file, validated row by row, and the clean and rejected rows are encrypted to the home's
//! identity as they are written into the store. Plaintext never reaches the disk. Nothing is
//! committed until the integrity check at the end passes.
//!
//! Store layout (`HOME/store/datasets/`):
//!
//! ```text
//! <sha256 of the clean CSV>/data.csv.age                       the clean rows, encrypted
//! <sha256 of the clean CSV>/ingests/<manifest sha256>.json     one manifest per ingest
//! <sha256 of the clean CSV>/ingests/<manifest sha256>.quarantine.csv.age
//! ```

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use rampart_audit::Outcome;
use rampart_crypto::age_file::{self, EncryptingWriter, Recipients};
use rampart_crypto::oms::{self, FileExpectation};
use rampart_crypto::{Digest, Sha256Hasher};
use rampart_data::integrity::{self, Expected, ExpectedDir, Integrity, Observed};
use rampart_data::open_authorised_with;
use rampart_data::paths::Kind;
use rampart_data::shards::{Shard, ShardChain};
use rampart_home::secure_fs::{self, AtomicFile};
use serde_json::json;

use crate::cli::{Format, IngestArgs};
use crate::cmd::data::{DataFormat, load_schema, print_report, refused, run_validation};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

/// The largest signature bundle read.
const MAX_BUNDLE_BYTES: u64 = 16 << 20;

/// `sha256:` + hex of a file's bytes, or for a dataset directory the OMS root digest of its
/// files (its signature file aside): what ingestion compares with `data.pins`.
pub fn file_digest(path: &Path) -> Result<String, CliError> {
    if path.is_dir() {
        let mut ignore = oms::IgnoreSet::default();
        ignore.add("model.sig");
        let m = oms::manifest(path, oms::Method::Files, &ignore, false, &|_| {}).map_err(|e| {
            CliError::input(
                anyhow::Error::new(e).context(format!("cannot digest {}", path.display())),
            )
        })?;
        return Ok(format!("sha256:{}", m.root.to_hex()));
    }
    let mut f = std::fs::File::open(path).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot open {}", path.display())))
    })?;
    let mut h = Sha256Hasher::new();
    std::io::copy(&mut f, &mut h).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
    })?;
    Ok(format!("sha256:{}", h.finish().to_hex()))
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
}

impl<'a> Sealed<'a> {
    fn new(file: &'a mut AtomicFile, to: &Recipients) -> Result<Self, CliError> {
        let w = EncryptingWriter::new(BufWriter::with_capacity(1 << 20, file.file()), to, false)
            .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
        Ok(Self {
            out: TeeHash {
                inner: w,
                hasher: Sha256Hasher::new(),
                bytes: 0,
            },
        })
    }

    /// Completes the age file; returns the plaintext digest and size.
    fn finish(self) -> Result<(Digest, u64), CliError> {
        let TeeHash {
            inner,
            hasher,
            bytes,
        } = self.out;
        inner.finish().and_then(|mut w| w.flush()).map_err(|e| {
            CliError::internal(anyhow::Error::new(e).context("cannot write the store"))
        })?;
        Ok((hasher.finish(), bytes))
    }
}

fn refuse(ctx: &Ctx, path: &Path, rule: &str, reason: String, hint: &str) -> CliError {
    ctx.audit_refusal(
        ctx.event("data.ingest", Outcome::Denied)
            .subject_path(path.display().to_string())
            .detail("rule", rule)
            .detail("reason", reason.as_str()),
    );
    CliError::input(anyhow::Error::msg(reason).context(path.display().to_string())).hint(hint)
}

/// What vouches for a dataset file or directory.
enum Vouch {
    File(Expected),
    Dir(ExpectedDir),
}

impl Vouch {
    fn allows_unsigned(&self) -> bool {
        matches!(
            self,
            Self::File(Expected::Pinned {
                allow_unsigned: true,
                ..
            }) | Self::Dir(ExpectedDir::Pinned {
                allow_unsigned: true,
                ..
            })
        )
    }

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
    ctx: &Ctx,
    args: &IngestArgs,
    real: &Path,
    is_dir: bool,
    pins: &[String],
) -> Result<(Vouch, Option<String>), CliError> {
    let sig = args.sig.clone().unwrap_or_else(|| {
        if is_dir {
            real.join("model.sig")
        } else {
            crate::cmd::sign::default_sig(&args.path)
        }
    });
    if !sig.exists() {
        if args.sig.is_some() {
            return Err(CliError::input(anyhow::anyhow!(
                "the signature {} does not exist",
                sig.display()
            )));
        }
        let mut pins: Vec<Digest> = pins
            .iter()
            .filter_map(|p| p.strip_prefix("sha256:"))
            .filter_map(|h| Digest::from_hex(h).ok())
            .collect();
        if let Some(e) = &args.expect_sha256 {
            let d = e
                .strip_prefix("sha256:")
                .and_then(|h| Digest::from_hex(h).ok())
                .ok_or_else(|| {
                    CliError::input(anyhow::anyhow!(
                        "--expect-sha256 {e:?}: expected sha256: and 64 hex digits"
                    ))
                })?;
            pins.push(d);
        }
        let allow_unsigned = args.allow_unsigned;
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
    let mut bundle = Vec::new();
    std::fs::File::open(&sig)
        .and_then(|f| f.take(MAX_BUNDLE_BYTES).read_to_end(&mut bundle))
        .map_err(|e| {
            CliError::input(
                anyhow::Error::new(e)
                    .context(format!("cannot read the signature {}", sig.display())),
            )
        })?;
    let keys = crate::cmd::verify::verifier_keys(ctx, &[])?;
    let anchors = ctx.home.anchors(&ctx.home.load_policy()?)?;
    let (signed, signer) = oms::verify_bundle_signer(&bundle, &keys, &anchors).map_err(|e| {
        refuse(
            ctx,
            &args.path,
            "integrity.signature",
            format!("its signature {} does not verify: {e}", sig.display()),
            "datasets must be signed by a key, certificate authority or Sigstore identity in rampart.toml's trust list (`rampart trust add`, `rampart trust add-identity`)",
        )
    })?;
    let key = signer.key;
    let manifest_err = |e: oms::OmsError| {
        refuse(
            ctx,
            &args.path,
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
) -> Result<Vec<(String, std::fs::File)>, CliError> {
    let bad = |m: String| CliError::input(anyhow::anyhow!("{}: {m}", dir.display()));
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| bad(e.to_string()))? {
        let entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path();
        if path == sig {
            continue;
        }
        let name = entry
            .file_name()
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| bad("a file name is not UTF-8".into()))?;
        let kind = entry.file_type().map_err(|e| bad(e.to_string()))?;
        if !kind.is_file() {
            return Err(bad(format!(
                "{name} is not a regular file; a dataset directory holds CSV shards only"
            )));
        }
        if !(name.ends_with(".csv") || name.ends_with(".csv.age")) {
            return Err(bad(format!(
                "{name} is not a CSV shard (.csv or .csv.age); a dataset directory holds CSV shards only"
            ))
            .hint("move other files out of the dataset directory, then sign it again"));
        }
        names.push(name);
    }
    if names.is_empty() {
        return Err(bad("no CSV shards in the directory".into()));
    }
    names.sort_by(|a, b| oms::component_order(a, b));
    names
        .into_iter()
        .map(|n| {
            let a = open_authorised_with(&dir.join(&n), &data.roots, data.allow_hard_links)
                .map_err(|e| CliError::input(anyhow::Error::new(e)))?;
            Ok((n, a.file))
        })
        .collect()
}

pub fn run(ctx: &Ctx, args: &IngestArgs) -> Result<Status, CliError> {
    ctx.home.require()?;
    if !(0.0..=1.0).contains(&args.max_reject_rate) {
        return Err(CliError::input(anyhow::anyhow!(
            "--max-reject-rate must be between 0 and 1"
        )));
    }
    let policy = ctx.home.load_policy()?;
    let (schema, schema_digest) = load_schema(&args.schema)?;
    let a = open_authorised_with(&args.path, &policy.data.roots, policy.data.allow_hard_links)
        .map_err(|e| refused(ctx, &args.path, e))?;
    let is_dir = a.kind == Kind::Dir;
    let (vouch, signer_identity) = expectation(ctx, args, &a.real, is_dir, &policy.data.pins)?;
    if vouch.allows_unsigned() {
        eprintln!(
            "WARNING: --allow-unsigned: {} is ingested even if it is neither signed nor pinned; \
             this is recorded in the audit log",
            args.path.display()
        );
    }
    ctx.audit(
        ctx.event("data.access", Outcome::Ok)
            .subject_path(a.real.display().to_string())
            .detail("requested", args.path.display().to_string())
            .detail("root", a.root.display().to_string()),
    )?;
    let keys = crate::cmd::age::unlock(ctx, &args.unlock)?;
    let to = Recipients::parse(&[ctx.home.age_identity()?.0.recipient()])
        .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
    let store = ctx.home.dataset_store();
    secure_fs::create_private_dir(&store)?;
    let store = std::fs::canonicalize(&store).unwrap_or(store);

    // One shard for a file; the directory's CSV shards otherwise. Each is hashed as it is
    // read and decrypted in memory when it is an age file.
    let files = if is_dir {
        let sig = args.sig.clone().unwrap_or_else(|| a.real.join("model.sig"));
        dir_shards(&a.real, &sig, &policy.data).inspect_err(|e| {
            // Every refusal is audited, the directory's contents included.
            ctx.audit_refusal(
                ctx.event("data.ingest", Outcome::Denied)
                    .subject_path(a.real.display().to_string())
                    .detail("rule", "data.shards")
                    .detail("reason", e.message()),
            );
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
                let is_age = age_file::looks_like_age(&mut buffered).map_err(|e| {
                    CliError::input(
                        anyhow::Error::new(e).context(format!("cannot read {}", shown.display())),
                    )
                })?;
                if is_age {
                    encrypted.set(true);
                    age_file::decrypting_reader(buffered, &keys)
                        .map_err(|e| crate::cmd::age::age_err(&shown, e))
                } else {
                    Ok(Box::new(buffered) as Box<dyn Read + Send>)
                }
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let shard_count = shards.len();
    let chain = ShardChain::new(shards);
    let observed = chain.observed();
    let mut clean_file = AtomicFile::create(&store.join("incoming"), 0o600)?;
    let mut quarantine_file = AtomicFile::create(&store.join("incoming"), 0o600)?;
    let (report, format, clean, rejected) = {
        let mut clean = Sealed::new(&mut clean_file, &to)?;
        let mut rejected = Sealed::new(&mut quarantine_file, &to)?;
        let (report, format) = run_validation(
            ctx,
            &args.path,
            Box::new(chain),
            &schema,
            // The stored rows are data (byte for byte); the stored quarantine is for people.
            rampart_data::validate::ValidateOptions::max_record_bytes(args.max_row_bytes),
            Some(&mut clean.out),
            Some(&mut rejected.out),
        )?;
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
            ctx,
            &args.path,
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
        refuse(ctx, &args.path, "integrity", e.to_string(), hint)
    })?;
    let source = match observed.as_slice() {
        [(_, o)] if !is_dir => o.sha256,
        all => integrity::directory_digest(all),
    };
    let source_bytes: u64 = observed.iter().map(|(_, o)| o.bytes).sum();
    let source_digest = format!("sha256:{}", source.to_hex());

    #[allow(clippy::cast_precision_loss)]
    let reject_rate = if report.rows_read == 0 {
        0.0
    } else {
        report.rejected as f64 / report.rows_read as f64
    };
    if reject_rate > args.max_reject_rate {
        ctx.audit(
            ctx.event("data.ingest", Outcome::Failed)
                .subject_path(a.real.display().to_string())
                .subject_digest(source_digest.clone())
                .detail(
                    "reason",
                    format!("{:.4} of the rows were rejected", reject_rate),
                )
                .detail("rejected", report.rejected)
                .detail("rows", report.rows_read),
        )?;
        print_report(ctx, &args.path, &schema_digest, &report, None, None)?;
        eprintln!(
            "refused: {:.2}% of the rows were rejected, above --max-reject-rate {}; nothing was stored",
            reject_rate * 100.0,
            args.max_reject_rate
        );
        return Ok(Status::Findings);
    }

    // Optional steps on the clean rows, before anything is committed: PII redaction (what
    // is stored is the redacted data) and the poisoning checks (a check at or above the
    // policy severity refuses the dataset).
    let mut clean = clean;
    let mut pii_summary = serde_json::Value::Null;
    let mut checks_summary = serde_json::Value::Null;
    let mut pii_columns = serde_json::Value::Null;
    let mut checks_report = serde_json::Value::Null;
    if policy.data.pii.on_ingest || args.redact {
        let (redactor, columns) = crate::cmd::pii::redactor(
            ctx,
            &policy.data.pii,
            args.redact_default.as_deref(),
            &args.redact_entity,
            &args.redact_column,
            &[],
        )?;
        let detector = rampart_data::pii::Detector::new(rampart_data::pii::DetectorOptions {
            min_confidence: policy.data.pii.min_confidence,
            entities: Vec::new(),
        })
        .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
        let mut redacted_file = AtomicFile::create(&store.join("incoming"), 0o600)?;
        let (pii, sealed) = {
            let mut plain = open_sealed(clean_file.temp_path(), &keys)?;
            let mut out = Sealed::new(&mut redacted_file, &to)?;
            let got = if format == DataFormat::Parquet {
                let file = crate::cmd::data::spool(ctx, &args.path, &mut plain)?;
                rampart_data::pii::table::process_parquet(
                    file,
                    &detector,
                    Some((&redactor, &mut out.out)),
                    &columns,
                    None,
                )
            } else {
                rampart_data::pii::table::process_csv(
                    plain,
                    rampart_data::pii::table::CsvJob {
                        safe_csv: false,
                        detector: &detector,
                        reader: rampart_data::csv::ReaderOptions {
                            max_record_bytes: args.max_row_bytes,
                            ..rampart_data::csv::ReaderOptions::default()
                        },
                        redact: Some((&redactor, &mut out.out)),
                        columns: &columns,
                        findings: None,
                    },
                )
            };
            let pii = got.map_err(|e| {
                CliError::input(anyhow::Error::new(e).context("redacting the clean rows"))
                    .hint("fix the column operators in [data.pii] of rampart.toml")
            })?;
            (pii, out.finish()?)
        };
        clean_file = redacted_file;
        clean = sealed;
        pii_summary = crate::cmd::pii::audit_summary(&pii);
        // Masked samples only (never a raw value): what a report shows per column.
        pii_columns = serde_json::to_value(&pii.columns).unwrap_or_default();
    }
    if policy.data.checks.on_ingest || args.checks || args.reference.is_some() {
        let nulls: Vec<&str> = schema.nulls.iter().map(String::as_str).collect();
        let frame = crate::cmd::checks::frame_from(
            ctx,
            open_sealed(clean_file.temp_path(), &keys)?,
            &args.path,
            &nulls,
        )?;
        let reference = args
            .reference
            .as_deref()
            .map(|r| crate::cmd::checks::load_frame(ctx, r, &args.unlock, &nulls))
            .transpose()?;
        let report = crate::cmd::checks::poison_checks(&schema, &frame, reference.as_ref())?;
        let threshold = crate::cmd::checks::fail_on(ctx, args.fail_on.as_deref())?;
        checks_summary = crate::cmd::checks::audit_summary(&report);
        checks_report = serde_json::to_value(&report).unwrap_or_default();
        if report.worst() >= threshold {
            ctx.audit(
                ctx.event("data.ingest", Outcome::Failed)
                    .subject_path(a.real.display().to_string())
                    .subject_digest(source_digest.clone())
                    .detail("reason", "poisoning checks fired")
                    .detail("checks", checks_summary.clone()),
            )?;
            crate::cmd::checks::print_poison(ctx, &args.path, &report, threshold)?;
            eprintln!("refused: the poisoning checks fired; nothing was stored");
            return Ok(Status::Findings);
        }
    }

    // Commit: the clean data under its content address, then this ingest's manifest and
    // quarantine.
    let (clean_digest, clean_bytes) = clean;
    let dir = store.join(clean_digest.to_hex());
    let ingests = dir.join("ingests");
    secure_fs::create_private_dir(&ingests)?;
    let data_name = format!("data.{}.age", format.extension());
    let data_path = dir.join(&data_name);
    let stored_before = data_path.exists();
    if stored_before {
        drop(clean_file);
    } else {
        clean_file.commit_to(&data_path, false)?;
    }
    let (integrity_name, key) = match &integrity {
        Integrity::Signed(k) => ("signed", Some(k.to_string())),
        other => (other.name(), None),
    };
    let manifest = json!({
        "type": "rampart.dataset/v1",
        "dataset": format!("sha256:{}", clean_digest.to_hex()),
        "created": crate::cmd::ingest::now(),
        "source": {
            "path": a.real,
            "sha256": source_digest,
            "bytes": source_bytes,
            "shards": observed.iter().map(|(n, o)| json!({"name": n, "sha256": format!("sha256:{}", o.sha256.to_hex()), "bytes": o.bytes})).collect::<Vec<_>>(),
            "encrypted": encrypted,
            "integrity": integrity_name,
            "signed_by": key,
            "signer_identity": signer_identity,
        },
        "schema": { "path": args.schema, "sha256": schema_digest },
        "counts": {
            "rows_read": report.rows_read,
            "accepted": report.accepted,
            "rejected": report.rejected,
            "reconciled": report.reconciled,
            "by_rule": report.by_rule,
            "by_column": report.by_column,
        },
        "format": format.extension(),
        "clean": { "file": data_name, "sha256": format!("sha256:{}", clean_digest.to_hex()), "bytes": clean_bytes, "encrypted_to": to.describe() },
        "quarantine": { "sha256": format!("sha256:{}", rejected.0.to_hex()), "bytes": rejected.1 },
        "pii": pii_summary,
        "pii_columns": pii_columns,
        "checks": checks_summary,
        "checks_report": checks_report,
        "rampart": env!("CARGO_PKG_VERSION"),
    });
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
    let manifest_digest = rampart_crypto::sha256(&manifest_bytes).to_hex();
    quarantine_file.commit_to(
        &ingests.join(format!("{manifest_digest}.quarantine.csv.age")),
        false,
    )?;
    secure_fs::atomic_write(
        &ingests.join(format!("{manifest_digest}.json")),
        &manifest_bytes,
        0o600,
    )?;
    ctx.audit(
        ctx.event("data.ingest", Outcome::Ok)
            .subject_path(a.real.display().to_string())
            .subject_digest(source_digest.clone())
            .detail("dataset", format!("sha256:{}", clean_digest.to_hex()))
            .detail("manifest", format!("sha256:{manifest_digest}"))
            .detail("schema", schema_digest.clone())
            .detail("integrity", integrity_name)
            .detail(
                "signer_identity",
                signer_identity.clone().unwrap_or_default(),
            )
            .detail("rows", report.rows_read)
            .detail("accepted", report.accepted)
            .detail("rejected", report.rejected)
            .detail("pii", pii_summary)
            .detail("checks", checks_summary),
    )?;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "dataset": format!("sha256:{}", clean_digest.to_hex()),
            "path": data_path,
            "manifest": ingests.join(format!("{manifest_digest}.json")),
            "integrity": integrity_name,
            "already_stored": stored_before,
            "report": report,
        }))?,
        Format::Human => {
            print_report(ctx, &args.path, &schema_digest, &report, None, None)?;
            output::print(&format!(
                "integrity: {integrity_name}{}\nstored dataset sha256:{} → {}{}\n",
                key.map(|k| format!(" by {k}")).unwrap_or_default(),
                clean_digest.to_hex(),
                data_path.display(),
                if stored_before {
                    " (already there)"
                } else {
                    ""
                }
            ))?;
        }
    }
    Ok(Status::Ok)
}

/// The plaintext of a store file being written (its temp file), decrypted with the home's keys.
fn open_sealed(path: &Path, keys: &age_file::Unlock) -> Result<Box<dyn Read + Send>, CliError> {
    let f = std::fs::File::open(path).map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
    age_file::decrypting_reader(age_file::buffered(f), keys)
        .map_err(|e| CliError::internal(anyhow::Error::new(e).context("re-reading the clean rows")))
}

/// The current time, RFC 3339 UTC.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
