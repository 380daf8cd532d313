//! What `model register` checks before anything is stored, and how the stored files are
//! checked against a signature again later.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rampart_crypto::oms::{self, FileExpectation, VerifyOptions};
use rampart_crypto::provenance::verify_attestation;
use rampart_crypto::{Digest, PublicKey, Sha256Hasher};
use rampart_scan::{ScanConfig, Severity};
use serde_json::{Value, json};

use crate::blob::BlobStore;
use crate::{FileEntry, LineageEntry, MAX_BUNDLE_BYTES, NewVersion, RegistryError};

/// Where the pieces of a model are.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The model: a directory or one file.
    pub model: PathBuf,
    /// Its OMS signature.
    pub signature: PathBuf,
    /// Signed provenance, if any.
    pub provenance: Option<PathBuf>,
    /// A metrics JSON file, if any.
    pub metrics: Option<PathBuf>,
}

impl Sources {
    /// Finds the pieces under `path`:
    /// - a `rampart train` run directory (`model/`, `model.sig`, `provenance.json`,
    ///   `metrics.json`);
    /// - a model directory (signature `DIR/model.sig`);
    /// - a model file (signature `FILE.sig`).
    ///
    /// Explicit paths override what is found.
    #[must_use]
    pub fn locate(
        path: &Path,
        signature: Option<&Path>,
        provenance: Option<&Path>,
        metrics: Option<&Path>,
    ) -> Self {
        let run = path.join("model").is_dir() && path.join("model.sig").is_file();
        let (model, sig, prov, met) = if run {
            (
                path.join("model"),
                path.join("model.sig"),
                Some(path.join("provenance.json")).filter(|p| p.is_file()),
                Some(path.join("metrics.json")).filter(|p| p.is_file()),
            )
        } else if path.is_dir() {
            (path.to_path_buf(), path.join("model.sig"), None, None)
        } else {
            let mut s = path.as_os_str().to_owned();
            s.push(".sig");
            (path.to_path_buf(), PathBuf::from(s), None, None)
        };
        Self {
            model,
            signature: signature.map_or(sig, Path::to_path_buf),
            provenance: provenance.map(Path::to_path_buf).or(prov),
            metrics: metrics.map(Path::to_path_buf).or(met),
        }
    }
}

fn refused(msg: impl Into<String>) -> RegistryError {
    RegistryError::Refused(msg.into())
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, RegistryError> {
    let mut out = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut out))
        .map_err(|e| refused(format!("cannot read {}: {e}", path.display())))?;
    if out.len() as u64 > limit {
        return Err(refused(format!(
            "{} is larger than {limit} bytes",
            path.display()
        )));
    }
    Ok(out)
}

/// Scans one file; returns its summary, or the findings at or above `fail_on`.
pub(crate) fn scan_one(
    path: &Path,
    name: &str,
    cfg: &ScanConfig,
    fail_on: Severity,
) -> Result<Value, String> {
    let r = rampart_scan::scan_file(path, cfg);
    if let Some(e) = &r.error {
        return Err(format!("{name}: cannot be scanned: {e}"));
    }
    let flagged: Vec<String> = r
        .findings
        .iter()
        .filter(|f| f.severity >= fail_on)
        .map(|f| format!("{} ({})", f.rule, f.severity.as_str()))
        .collect();
    if !flagged.is_empty() {
        return Err(format!(
            "{name}: flagged by the scanner: {}",
            flagged.join(", ")
        ));
    }
    Ok(json!({
        "file": name,
        "format": r.format,
        "findings": r.findings.iter().map(|f| json!({"rule": f.rule, "severity": f.severity.as_str()})).collect::<Vec<_>>(),
    }))
}

/// Checks stored files against what a signed manifest says, re-hashing every blob.
///
/// # Errors
/// [`FilesDiffer`], naming each file that is missing, extra or different.
pub fn check_against_signature(
    blobs: &dyn BlobStore,
    files: &[FileEntry],
    expectations: &BTreeMap<String, FileExpectation>,
) -> Result<(), FilesDiffer> {
    // A single-file signature may name its file ".": it is the one stored file.
    let renamed;
    let expectations = match (expectations.get("."), files) {
        (Some(e), [only]) if expectations.len() == 1 => {
            renamed = BTreeMap::from([(only.name.clone(), e.clone())]);
            &renamed
        }
        _ => expectations,
    };
    let mut problems = Vec::new();
    let names: BTreeMap<&str, &FileEntry> = files.iter().map(|f| (f.name.as_str(), f)).collect();
    for name in expectations.keys() {
        if !names.contains_key(name.as_str()) {
            problems.push(format!("{name}: signed but not stored"));
        }
    }
    for f in files {
        match expectations.get(&f.name) {
            None => problems.push(format!("{}: stored but not signed", f.name)),
            Some(FileExpectation::Whole(d)) => {
                if *d != f.sha256 {
                    problems.push(format!(
                        "{}: signed sha256:{d}, stored sha256:{}",
                        f.name, f.sha256
                    ));
                } else if let Err(e) = blobs.verify(&f.sha256) {
                    problems.push(format!("{}: {e}", f.name));
                }
            }
            Some(FileExpectation::Shards {
                shard_size,
                digests,
                size,
            }) => match blobs.read(&f.sha256, *size) {
                Err(e) => problems.push(format!("{}: {e}", f.name)),
                Ok(bytes) => {
                    let step = usize::try_from(*shard_size).unwrap_or(usize::MAX).max(1);
                    let got: Vec<Digest> = bytes
                        .chunks(step)
                        .map(|c| {
                            let mut h = Sha256Hasher::new();
                            h.update(c);
                            h.finish()
                        })
                        .collect();
                    if &got != digests || bytes.len() as u64 != *size {
                        problems.push(format!("{}: its shards do not match the signature", f.name));
                    }
                }
            },
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(FilesDiffer(problems))
    }
}

/// Stored files that are not what the signature says: one line per file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct FilesDiffer(pub Vec<String>);

/// Everything `model register` learned, ready to store.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The version to insert.
    pub version: NewVersion,
    /// The provenance's verified statement, if there is one.
    pub provenance_statement: Option<Value>,
}

/// Verifies, scans and stores the blobs of a model about to be registered.
///
/// The signature must verify with one of `keys` and match every file; every file must scan
/// clean at `fail_on`; provenance, when present, must verify with one of `keys` and name every
/// file's digest as a subject. Blobs are stored only once all of that holds (a refused model
/// leaves no metadata; blobs are content-addressed and harmless).
///
/// # Errors
/// [`RegistryError::Refused`] with the reason.
#[allow(clippy::too_many_arguments)]
pub fn check_and_store(
    blobs: &dyn BlobStore,
    src: &Sources,
    keys: &[PublicKey],
    anchors: &oms::Anchors,
    scan: &ScanConfig,
    fail_on: Severity,
    created_by: &str,
    registrant_key: &str,
    mut input_schema: Option<Value>,
) -> Result<Checked, RegistryError> {
    let model = &src.model;
    if !model.exists() {
        return Err(refused(format!(
            "{}: no such file or directory",
            model.display()
        )));
    }
    if !src.signature.is_file() {
        return Err(refused(format!(
            "{} is not signed: no signature at {} (sign it with `rampart sign` or train it with `rampart train`)",
            model.display(),
            src.signature.display()
        )));
    }
    let bundle = read_bounded(&src.signature, MAX_BUNDLE_BYTES)?;
    let mut opts = VerifyOptions::new(&src.signature);
    opts.cert_roots.clone_from(&anchors.cert_roots);
    opts.sigstore.clone_from(&anchors.sigstore);
    let verified = oms::verify_model(model, &bundle, keys, &opts, &|_| {}).map_err(|e| {
        refused(format!(
            "{}: the signature does not verify: {e}",
            model.display()
        ))
    })?;
    let expectations = oms::file_expectations(&verified.signed)
        .map_err(|e| refused(format!("{}: {e}", src.signature.display())))?;
    let single = model.is_file();
    let mut files = Vec::new();
    let mut scans = Vec::new();
    for name in expectations.keys() {
        let path = if single {
            model.clone()
        } else {
            model.join(name)
        };
        let display = if single && name == "." {
            model
                .file_name()
                .map_or_else(|| name.clone(), |n| n.to_string_lossy().into_owned())
        } else {
            name.clone()
        };
        // A name is printed to terminals and logs: a newline or an escape sequence in it
        // could forge lines such as "verified OK".
        if display.chars().any(|c| {
            c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        }) {
            return Err(refused(format!(
                "the model file name {} holds control characters (a newline, an escape sequence, a bidirectional override); rename it and sign again",
                display.escape_debug()
            )));
        }
        scans.push(scan_one(&path, &display, scan, fail_on).map_err(refused)?);
        let mut f = std::fs::File::open(&path)
            .map_err(|e| refused(format!("cannot read {}: {e}", path.display())))?;
        let digest = blobs.put(&mut f)?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        files.push(FileEntry {
            name: display,
            sha256: digest,
            size,
        });
    }
    // What was stored is what was signed (a file swapped after verification is caught here).
    check_against_signature(blobs, &files, &expectations).map_err(|e| {
        refused(format!(
            "{}: changed while it was registered: {e}",
            model.display()
        ))
    })?;
    let signature = blobs.put(&mut bundle.as_slice())?;
    let mut metrics = None;
    // The trainer's own metrics.json as the provenance signed it.
    let mut reported: Option<Value> = None;
    let mut lineage = Vec::new();
    let mut provenance = None;
    let mut statement = None;
    if let Some(p) = &src.provenance {
        let bytes = read_bounded(p, MAX_BUNDLE_BYTES)?;
        let att = verify_attestation(&bytes, keys).map_err(|e| {
            refused(format!(
                "{}: the provenance does not verify: {e}",
                p.display()
            ))
        })?;
        let missing: Vec<&str> = files
            .iter()
            .filter(|f| !att.covers(&f.sha256))
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(refused(format!(
                "{}: the provenance does not name {} (it describes another model)",
                p.display(),
                missing.join(", ")
            )));
        }
        lineage = att
            .dependencies
            .iter()
            .map(|d| LineageEntry {
                name: d.name.clone(),
                sha256: d.digest,
                uri: d.uri.clone(),
            })
            .collect();
        // Shown with where they came from: computed by rampart on held-out rows, else the
        // trainer's own.
        let recorded = rampart_ml::metrics::Recorded::of(&att.statement);
        reported.clone_from(&recorded.reported);
        // An ONNX model's reference input statistics, taken from its training rows when
        // rampart scored it (what the gateway measures drift against).
        if input_schema.is_none() {
            input_schema = recorded
                .computed
                .as_ref()
                .and_then(|c| c.get("reference"))
                .filter(|r| r.get("input_schema").is_some_and(Value::is_array))
                .cloned();
        }
        metrics = recorded.for_gate(false).ok().map(|(m, source)| {
            let mut m = m.clone();
            if let Value::Object(o) = &mut m {
                o.insert(
                    "source".into(),
                    json!(match source {
                        rampart_ml::metrics::Source::Computed => "computed",
                        rampart_ml::metrics::Source::SelfReported => "self-reported",
                    }),
                );
            }
            m
        });
        provenance = Some(blobs.put(&mut bytes.as_slice())?);
        statement = Some(att.statement);
    }
    if let Some(m) = &src.metrics {
        let bytes = read_bounded(m, 1 << 20)?;
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| refused(format!("{}: not JSON: {e}", m.display())))?;
        if !v.is_object() {
            return Err(refused(format!(
                "{}: metrics must be a JSON object",
                m.display()
            )));
        }
        // The signed provenance is the record of the metrics: a file that says otherwise was
        // edited after training. Without provenance the file is kept for display only; the
        // metrics gate never reads it.
        if reported.as_ref().is_some_and(|signed| *signed != v) {
            return Err(refused(format!(
                "{}: these metrics differ from the ones in the signed provenance (edited after training?); register without the file, the provenance carries the metrics",
                m.display()
            )));
        }
        if metrics.is_none() {
            metrics = Some(v);
        }
    }
    Ok(Checked {
        version: NewVersion {
            content: crate::VersionContent {
                root: verified.signed.subject_digest,
                files,
                signature,
                signer: verified.key.to_string(),
                signer_identity: verified
                    .sigstore
                    .as_ref()
                    .map(|s| format!("sigstore:{}", s.identity))
                    .or_else(|| {
                        verified
                            .certificate_path
                            .as_ref()
                            .and_then(|p| p.first())
                            .map(|s| format!("certificate:{s}"))
                    }),
                provenance,
                scan: json!({"fail_on": fail_on.as_str(), "files": scans}),
                metrics,
                input_schema,
                lineage,
                created_by: created_by.to_owned(),
                registrant_key: registrant_key.to_owned(),
            },
            source: std::path::absolute(model)
                .unwrap_or_else(|_| model.clone())
                .display()
                .to_string(),
        },
        provenance_statement: statement,
    })
}
