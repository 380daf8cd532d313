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

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use rampart_audit::Outcome;
use rampart_crypto::age_file::{self, EncryptingWriter, Recipients};
use rampart_crypto::oms::{self, FileExpectation};
use rampart_crypto::{Digest, Sha256Hasher};
use rampart_data::integrity::{self, Expected, HashingReader, Integrity};
use rampart_data::open_authorised;
use rampart_data::paths::Kind;
use rampart_home::secure_fs::{self, AtomicFile};
use serde_json::json;

use crate::cli::{Format, IngestArgs};
use crate::cmd::data::{load_schema, print_report, refused, run_validation};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

/// The largest signature bundle read.
const MAX_BUNDLE_BYTES: u64 = 16 << 20;

/// `sha256:` + hex of a file's bytes.
pub fn file_digest(path: &Path) -> Result<String, CliError> {
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

/// What vouches for the dataset: its signature (verified now, matched against the bytes as
/// they are read), or the pinned digests.
fn expectation(
    ctx: &Ctx,
    args: &IngestArgs,
    real: &Path,
    pins: &[String],
) -> Result<Expected, CliError> {
    let sig = args
        .sig
        .clone()
        .unwrap_or_else(|| crate::cmd::sign::default_sig(&args.path));
    if !sig.exists() {
        if args.sig.is_some() {
            return Err(CliError::input(anyhow::anyhow!(
                "the signature {} does not exist",
                sig.display()
            )));
        }
        let pins = pins
            .iter()
            .filter_map(|p| p.strip_prefix("sha256:"))
            .filter_map(|h| Digest::from_hex(h).ok())
            .collect();
        return Ok(Expected::Pinned {
            pins,
            allow_unsigned: args.allow_unsigned,
        });
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
    let (signed, key) = oms::verify_bundle(&bundle, &keys).map_err(|e| {
        refuse(
            ctx,
            &args.path,
            "integrity.signature",
            format!("its signature {} does not verify: {e}", sig.display()),
            "datasets must be signed by a key in rampart.toml's trust list (`rampart trust add`)",
        )
    })?;
    let name = real
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let file = oms::single_file_expectation(&signed, &name).map_err(|e| {
        refuse(
            ctx,
            &args.path,
            "integrity.signature",
            e.to_string(),
            "sign the dataset file itself: `rampart sign FILE`",
        )
    })?;
    Ok(Expected::Signed { file, key })
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
    let a =
        open_authorised(&args.path, &policy.data.roots).map_err(|e| refused(ctx, &args.path, e))?;
    if a.kind != Kind::File {
        return Err(CliError::input(anyhow::anyhow!(
            "{} is a directory: ingest takes one dataset file",
            args.path.display()
        ))
        .hint("ingest each file; `rampart verify DIR` checks a signed directory"));
    }
    let expected = expectation(ctx, args, &a.real, &policy.data.pins)?;
    if matches!(
        expected,
        Expected::Pinned {
            allow_unsigned: true,
            ..
        }
    ) {
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

    let shard_size = match &expected {
        Expected::Signed {
            file: FileExpectation::Shards { shard_size, .. },
            ..
        } => Some(*shard_size),
        _ => None,
    };
    let mut hashing = HashingReader::new(a.file, shard_size);
    let mut clean_file = AtomicFile::create(&store.join("incoming"), 0o600)?;
    let mut quarantine_file = AtomicFile::create(&store.join("incoming"), 0o600)?;
    let (report, encrypted, format, clean, rejected) = {
        let mut buffered = BufReader::with_capacity(1 << 20, &mut hashing);
        let encrypted = age_file::looks_like_age(&mut buffered).map_err(|e| {
            CliError::input(
                anyhow::Error::new(e).context(format!("cannot read {}", args.path.display())),
            )
        })?;
        let plain: Box<dyn Read + Send + '_> = if encrypted {
            age_file::decrypting_reader(buffered, &keys)
                .map_err(|e| crate::cmd::age::age_err(&args.path, e))?
        } else {
            Box::new(buffered)
        };
        let mut clean = Sealed::new(&mut clean_file, &to)?;
        let mut rejected = Sealed::new(&mut quarantine_file, &to)?;
        let (report, format) = run_validation(
            ctx,
            &args.path,
            plain,
            &schema,
            args.max_row_bytes,
            Some(&mut clean.out),
            Some(&mut rejected.out),
        )?;
        (
            report,
            encrypted,
            format,
            clean.finish()?,
            rejected.finish()?,
        )
    };
    hashing.drain().map_err(|e| {
        CliError::input(
            anyhow::Error::new(e).context(format!("cannot read {}", args.path.display())),
        )
    })?;
    let observed = hashing.finish();
    let integrity = integrity::check(&observed, &expected).map_err(|e| {
        let hint = match e {
            integrity::IntegrityError::Unvouched(_) => {
                "sign it (`rampart sign FILE`, by a trusted key), pin it (`rampart data pin FILE`), or pass --allow-unsigned"
            }
            _ => "the file changed after it was signed: get a fresh copy and its signature",
        };
        refuse(ctx, &args.path, "integrity", e.to_string(), hint)
    })?;
    let source_digest = format!("sha256:{}", observed.sha256.to_hex());

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
            "bytes": observed.bytes,
            "encrypted": encrypted,
            "integrity": integrity_name,
            "signed_by": key,
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
            .detail("rows", report.rows_read)
            .detail("accepted", report.accepted)
            .detail("rejected", report.rejected),
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

/// The current time, RFC 3339 UTC.
pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
