//! Sandboxed training runs.
//!
//! A run directory holds, when the run succeeds:
//!
//! ```text
//! OUT/
//!   model/            what the trainer wrote (RAMPART_OUTPUT): *.safetensors / *.onnx only
//!   model.sig         OpenSSF model-signing bundle over model/
//!   provenance.json   DSSE-signed in-toto statement, SLSA Provenance v1
//!   metrics.json      the trainer's metrics (schema-checked), moved out of model/
//!   train.log         the trainer's stdout and stderr
//!   run.json          what happened: sandbox outcome, limits, digests
//! ```
//!
//! The steps are separate functions so the caller can audit between them:
//! [`prepare_output`] → [`run_trainer`] → [`collect_outputs`] → [`sign_outputs`].

pub mod builtin;
pub mod config;
pub mod flags;
pub mod metrics;
pub mod score;
pub mod service;
pub mod terminal;
pub mod workdir;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rampart_crypto::oms::{self, SignOptions};
use rampart_crypto::provenance::{Artifact, Provenance};
use rampart_crypto::{Digest, Fingerprint, Sha256Hasher, SigningKey};
use rampart_sandbox::{Limits, Report, Sandbox, Spec, Stream};
use rampart_scan::{ScanConfig, Severity};
use serde_json::{Value, json};

/// The trainer's output directory inside the run directory.
pub const MODEL_DIR: &str = "model";
/// The model signature.
pub const SIGNATURE: &str = "model.sig";
/// The signed provenance.
pub const PROVENANCE: &str = "provenance.json";
/// The metrics.
pub const METRICS: &str = "metrics.json";
/// The trainer's output.
pub const LOG: &str = "train.log";
/// The run report.
pub const REPORT: &str = "run.json";

/// The build type of rampart training runs (SLSA `buildType`).
pub const BUILD_TYPE: &str = "https://rampart.dev/train/v1";
/// The builder id.
pub const BUILDER_ID: &str = "https://rampart.dev/rampart-train";

/// Most of the trainer's output kept in `train.log` (the rest is counted, not kept).
pub const MAX_LOG_BYTES: u64 = 64 << 20;
/// Most files a trainer may leave in its output directory.
pub const MAX_OUTPUT_FILES: usize = 1000;
/// Most of the trainer's output relayed to the caller (the terminal); the rest is counted
/// and kept in `train.log` up to [`MAX_LOG_BYTES`].
pub const MAX_RELAY_BYTES: u64 = 16 << 20;
/// Longest output file name.
pub const MAX_NAME_BYTES: usize = 255;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The output directory cannot be used.
    #[error("output directory {path}: {reason}")]
    Output {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The trainer left something that may not leave the sandbox.
    #[error("{path}: {reason}")]
    Refused {
        /// The file (relative to the run directory).
        path: String,
        /// Why.
        reason: String,
    },
    /// The sandbox could not start.
    #[error(transparent)]
    Sandbox(#[from] rampart_sandbox::SandboxError),
    /// Signing failed.
    #[error("cannot sign the model: {0}")]
    Sign(#[from] oms::OmsError),
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An input of the run, by digest.
#[derive(Debug, Clone)]
pub struct Input {
    /// Its name in the provenance (`dataset`, `base-model`, `code/train.py`, …).
    pub name: String,
    /// The file the trainer reads (already verified by the caller).
    pub path: PathBuf,
    /// SHA-256 of that file.
    pub digest: Digest,
    /// A URI (`rampart:dataset/sha256:…`, `file:…`).
    pub uri: Option<String>,
}

/// What runs in the sandbox.
#[derive(Debug, Clone)]
pub struct Trainer {
    /// The program (absolute).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// What it needs to read besides the system paths and the inputs: its installation
    /// prefix, its code.
    pub read: Vec<PathBuf>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Directories put first on the sandbox's `PATH` (its interpreter's `bin`).
    pub path: Vec<PathBuf>,
}

/// Everything about one run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The trainer.
    pub trainer: Trainer,
    /// The training data.
    pub dataset: Input,
    /// Other inputs (base model, trainer code): digested into the provenance; the base model
    /// is readable by the trainer.
    pub inputs: Vec<Input>,
    /// The run directory (see the crate docs).
    pub output: PathBuf,
    /// Where the trainer's private scratch tmpfs (`HOME`, `TMPDIR`) is mounted inside the
    /// sandbox; nothing of the host's directory of that name is visible, and nothing written
    /// there outlives the run.
    pub scratch: PathBuf,
    /// The sandbox limits.
    pub limits: Limits,
    /// The environment (already scrubbed).
    pub env: Vec<(String, String)>,
    /// Directories hidden from the trainer (the key directory).
    pub hide: Vec<PathBuf>,
    /// Device nodes exposed to the trainer (the GPU's, with `--gpu`).
    pub devices: Vec<PathBuf>,
    /// Refuse to run without every protection.
    pub strict: bool,
    /// Sandbox steps to treat as unavailable (debug builds only; see
    /// [`rampart_sandbox::Spec::simulate_missing`]).
    pub simulate_missing: Vec<String>,
}

impl RunSpec {
    /// `OUT/model`.
    #[must_use]
    pub fn model_dir(&self) -> PathBuf {
        self.output.join(MODEL_DIR)
    }

    /// The sandbox spec: reads the system paths, the trainer's, the dataset and the inputs;
    /// writes the model directory and the scratch directory; nothing else.
    #[must_use]
    pub fn sandbox_spec(&self) -> Spec {
        let mut read = rampart_sandbox::system_read_paths();
        read.extend(self.trainer.read.iter().cloned());
        read.push(self.dataset.path.clone());
        read.extend(self.inputs.iter().map(|i| i.path.clone()));
        read.sort();
        read.dedup();
        let mut env = self.env.clone();
        let mut set = |k: &str, v: String| {
            env.retain(|(name, _)| name != k);
            env.push((k.to_owned(), v));
        };
        set("RAMPART_DATA", self.dataset.path.display().to_string());
        set("RAMPART_OUTPUT", self.model_dir().display().to_string());
        if let Some(base) = self.inputs.iter().find(|i| i.name == "base-model") {
            set("RAMPART_BASE_MODEL", base.path.display().to_string());
        }
        set("HOME", self.scratch.display().to_string());
        set("TMPDIR", self.scratch.display().to_string());
        // Only directories that exist inside: the interpreter's first, then the system's.
        let mut path: Vec<PathBuf> = self.trainer.path.clone();
        for d in [
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ] {
            let d = PathBuf::from(d);
            if d.is_dir() && !path.contains(&d) {
                path.push(d);
            }
        }
        if let Ok(p) = std::env::join_paths(&path) {
            set("PATH", p.to_string_lossy().into_owned());
        }
        if !env.iter().any(|(k, _)| k == "PYTHONUNBUFFERED") {
            env.push(("PYTHONUNBUFFERED".into(), "1".into()));
        }
        env.sort();
        Spec {
            program: self.trainer.program.clone(),
            args: self.trainer.args.clone(),
            env,
            cwd: self.trainer.cwd.clone(),
            read,
            write: vec![self.model_dir()],
            scratch: Some(self.scratch.clone()),
            devices: self.devices.clone(),
            hide: self.hide.clone(),
            limits: self.limits.clone(),
            strict: self.strict,
            simulate_missing: self.simulate_missing.clone(),
        }
    }
}

/// Checks that the run directory can be used: it does not exist, or is an empty directory.
///
/// # Errors
/// [`TrainError::Output`] otherwise.
pub fn check_output(dir: &Path) -> Result<bool, TrainError> {
    let bad = |reason: &str| TrainError::Output {
        path: dir.to_path_buf(),
        reason: reason.to_owned(),
    };
    match fs::symlink_metadata(dir) {
        Ok(m) if !m.is_dir() => Err(bad("exists and is not a directory")),
        Ok(_) => {
            if fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
                Err(bad("is not empty; name a new directory"))
            } else {
                Ok(true)
            }
        }
        Err(_) => Ok(false),
    }
}

/// Creates the run directory (which must not exist, or be empty) and its model directory.
///
/// # Errors
/// [`TrainError::Output`] when it exists and is not an empty directory.
pub fn prepare_output(dir: &Path) -> Result<(), TrainError> {
    use std::os::unix::fs::PermissionsExt as _;
    if !check_output(dir)? {
        std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o755)
            .create(dir)
            .map_err(io(dir))?;
    }
    // Explicit modes, whatever the umask: nobody else may add or replace files in a run.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io(dir))?;
    let model = dir.join(MODEL_DIR);
    fs::create_dir(&model).map_err(io(&model))?;
    fs::set_permissions(&model, fs::Permissions::from_mode(0o755)).map_err(io(&model))?;
    Ok(())
}

/// Creates `path` (which must not exist) with mode 0644 exactly, whatever the umask.
fn create_output_file(path: &Path) -> Result<File, TrainError> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let f = File::options()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(io(path))?;
    f.set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(io(path))?;
    Ok(f)
}

/// How the trainer's run went.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The sandbox's report.
    pub report: Report,
    /// RFC 3339 start.
    pub started: String,
    /// RFC 3339 end.
    pub finished: String,
    /// Bytes of output the trainer produced (all of it, kept or not).
    pub log_bytes: u64,
}

pub use rampart_crypto::now_rfc3339 as now;

/// Runs the trainer in the sandbox. Its output, with every control character escaped
/// ([`terminal::Sanitizer`]), goes to `on_output` (at most [`MAX_RELAY_BYTES`]) and to
/// `OUT/train.log` (at most [`MAX_LOG_BYTES`]).
///
/// # Errors
/// When the sandbox cannot start (see [`rampart_sandbox::Sandbox::run`]) or the log cannot be
/// written.
pub fn run_trainer(
    spec: &RunSpec,
    sandbox: &Sandbox,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<RunOutcome, TrainError> {
    let log_path = spec.output.join(LOG);
    let mut log = create_output_file(&log_path)?;
    let mut written = 0u64;
    let mut relayed = 0u64;
    let mut total = 0u64;
    let mut log_error = None;
    let (mut out_filter, mut err_filter) = (terminal::Sanitizer::new(), terminal::Sanitizer::new());
    let started = now();
    let mut take = |stream: Stream, text: &str| {
        let bytes = text.as_bytes();
        let room = MAX_RELAY_BYTES.saturating_sub(relayed);
        let show = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        if show > 0 {
            on_output(stream, bytes.get(..show).unwrap_or_default());
            relayed += show as u64;
            if relayed >= MAX_RELAY_BYTES {
                on_output(
                    Stream::Stderr,
                    b"\n[rampart: the trainer's further output is not shown; train.log keeps it]\n",
                );
            }
        }
        let room = MAX_LOG_BYTES.saturating_sub(written);
        let keep = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
        if keep > 0 && log_error.is_none() {
            if let Err(e) = log.write_all(bytes.get(..keep).unwrap_or_default()) {
                log_error = Some(e);
            }
            written += keep as u64;
        }
    };
    let report = sandbox.run(&spec.sandbox_spec(), &mut |stream, chunk| {
        total = total.saturating_add(chunk.len() as u64);
        let f = match stream {
            Stream::Stdout => &mut out_filter,
            Stream::Stderr => &mut err_filter,
        };
        let text = f.feed(chunk);
        take(stream, &text);
    })?;
    for (stream, f) in [
        (Stream::Stdout, &mut out_filter),
        (Stream::Stderr, &mut err_filter),
    ] {
        let text = f.finish();
        take(stream, &text);
    }
    let finished = now();
    if total > written {
        let _ = writeln!(
            log,
            "\n[rampart: the trainer wrote {total} bytes of output; {written} were kept]"
        );
    }
    if let Some(e) = log_error {
        return Err(io(&log_path)(e));
    }
    log.sync_all().map_err(io(&log_path))?;
    Ok(RunOutcome {
        report,
        started,
        finished,
        log_bytes: total,
    })
}

/// One model file the trainer produced.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// Its name inside `model/`.
    pub name: String,
    /// Format (`safetensors`, `onnx`).
    pub format: String,
    /// Size.
    pub size: u64,
    /// SHA-256.
    pub digest: Digest,
}

/// What the trainer left, checked.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// The model files, by name.
    pub files: Vec<ModelFile>,
    /// The metrics, if the trainer wrote any.
    pub metrics: Option<Value>,
}

fn digest_file(path: &Path, deadline: Option<Instant>) -> Result<(Digest, u64), TrainError> {
    use std::io::Read as _;
    let mut f = File::open(path).map_err(io(path))?;
    let mut h = Sha256Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf).map_err(io(path))?;
        if got == 0 {
            break;
        }
        h.update(buf.get(..got).unwrap_or_default());
        n += got as u64;
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(TrainError::Refused {
                path: path.display().to_string(),
                reason: "checking the outputs ran past the run's time limit (--timeout counts the collection too)".into(),
            });
        }
    }
    Ok((h.finish(), n))
}

/// Bounds on what a trainer may leave.
#[derive(Debug, Clone, Copy)]
pub struct CollectBounds {
    /// Total bytes of all files (checked before anything is read).
    pub max_bytes: u64,
    /// When checking must be over: the run's wall-clock limit counts the collection too.
    pub deadline: Option<Instant>,
}

/// A name a trainer may give an output file: UTF-8, at most [`MAX_NAME_BYTES`], no control
/// or bidirectional-override character, not hidden.
fn check_name(name: &std::ffi::OsStr) -> Result<&str, String> {
    let Some(text) = name.to_str() else {
        return Err("the file name is not UTF-8".into());
    };
    if text.len() > MAX_NAME_BYTES {
        return Err(format!(
            "the file name is longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    if terminal::escape(text) != text {
        return Err(
            "the file name holds control characters (a newline, an escape sequence, …)".into(),
        );
    }
    if text.starts_with('.') {
        return Err("hidden files may not leave the sandbox".into());
    }
    Ok(text)
}

/// Removes everything the trainer left in `dir` (a refused run keeps nothing).
fn clear_dir(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let _ = if is_dir {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
    }
}

/// Checks what the trainer left in `OUT/model`: regular files only, with safe names, at most
/// `bounds.max_bytes` in all, each a safetensors or ONNX file whose content is that format
/// and that the scanner does not flag at `fail_on`; `metrics.json` is schema-checked and
/// moved to `OUT/metrics.json`. Kept files get mode 0644 (setuid, setgid and sticky bits
/// gone). Anything else fails, and then nothing the trainer wrote is kept.
///
/// # Errors
/// [`TrainError::Refused`] naming the first file that may not leave the sandbox (its name
/// escaped).
pub fn collect_outputs(
    out: &Path,
    scan: &ScanConfig,
    fail_on: Severity,
    bounds: CollectBounds,
) -> Result<Outputs, TrainError> {
    let dir = out.join(MODEL_DIR);
    let result = collect_inner(out, &dir, scan, fail_on, bounds);
    if result.is_err() {
        clear_dir(&dir);
    }
    result
}

fn collect_inner(
    out: &Path,
    dir: &Path,
    scan: &ScanConfig,
    fail_on: Severity,
    bounds: CollectBounds,
) -> Result<Outputs, TrainError> {
    use std::os::unix::fs::PermissionsExt as _;
    let refuse = |name: &str, reason: String| TrainError::Refused {
        path: format!("{MODEL_DIR}/{}", terminal::escape(name)),
        reason,
    };
    // The trainer may have made its directory unreadable; the caller owns it again.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io(dir))?;
    let mut names = Vec::new();
    let mut total = 0u64;
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let raw = entry.file_name();
        let shown = raw.to_string_lossy().into_owned();
        let name = check_name(&raw).map_err(|reason| refuse(&shown, reason))?;
        let meta = fs::symlink_metadata(entry.path()).map_err(io(dir))?;
        let kind = meta.file_type();
        if !kind.is_file() {
            let what = if kind.is_dir() {
                "a directory"
            } else if kind.is_symlink() {
                "a symbolic link"
            } else {
                "not a regular file"
            };
            return Err(refuse(
                name,
                format!(
                    "is {what}; a trainer leaves plain model files at the top of RAMPART_OUTPUT"
                ),
            ));
        }
        if names.len() >= MAX_OUTPUT_FILES {
            return Err(refuse(name, format!("more than {MAX_OUTPUT_FILES} files")));
        }
        total = total.saturating_add(meta.len());
        if total > bounds.max_bytes {
            return Err(TrainError::Refused {
                path: MODEL_DIR.into(),
                reason: format!(
                    "the trainer left more than {} bytes (the output limit; raise it with --max-output)",
                    bounds.max_bytes
                ),
            });
        }
        names.push(name.to_owned());
    }
    names.sort();
    let mut files = Vec::new();
    let mut metrics = None;
    for name in &names {
        let path = dir.join(name);
        // Whatever mode the trainer set: no setuid, setgid or sticky bit, no write for others.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).map_err(io(&path))?;
        if name == METRICS {
            let m = metrics::read(&path).map_err(|e| refuse(name, e.0))?;
            let to = out.join(METRICS);
            fs::rename(&path, &to).map_err(io(&to))?;
            metrics = Some(m);
            continue;
        }
        let expected = match Path::new(name).extension().and_then(|e| e.to_str()) {
            Some("safetensors") => "safetensors",
            Some("onnx") => "onnx",
            _ => {
                return Err(refuse(
                    name,
                    "only safetensors and ONNX files (and metrics.json) may leave the sandbox"
                        .into(),
                ));
            }
        };
        let report = rampart_scan::scan_file(&path, scan);
        if let Some(e) = &report.error {
            return Err(refuse(name, format!("cannot be scanned: {e}")));
        }
        if report.format != expected {
            return Err(refuse(
                name,
                format!("is named .{expected} but its content is {}", report.format),
            ));
        }
        let flagged: Vec<String> = report
            .findings
            .iter()
            .filter(|f| f.severity >= fail_on)
            .map(|f| format!("{} ({})", f.rule, f.message))
            .collect();
        if !flagged.is_empty() {
            return Err(refuse(
                name,
                format!("flagged by the scanner: {}", flagged.join("; ")),
            ));
        }
        let (digest, size) = digest_file(&path, bounds.deadline)?;
        files.push(ModelFile {
            name: name.clone(),
            format: expected.to_owned(),
            size,
            digest,
        });
    }
    if files.is_empty() {
        return Err(TrainError::Refused {
            path: MODEL_DIR.into(),
            reason: "the trainer wrote no model (a .safetensors or .onnx file in RAMPART_OUTPUT)"
                .into(),
        });
    }
    Ok(Outputs { files, metrics })
}

/// What signing produced.
#[derive(Debug, Clone)]
pub struct SignedRun {
    /// The OMS manifest's root digest.
    pub root: Digest,
    /// The signing key.
    pub key: Fingerprint,
    /// `OUT/model.sig`.
    pub signature: PathBuf,
    /// `OUT/provenance.json`.
    pub provenance: PathBuf,
    /// The unsigned statement.
    pub statement: Value,
}

/// Everything the provenance says beyond the outputs.
#[derive(Debug, Clone)]
pub struct ProvenanceInfo {
    /// The run's parameters (trainer, hyperparameters, config, limits).
    pub parameters: Value,
    /// A unique run id.
    pub invocation_id: String,
    /// rampart's version.
    pub version: String,
    /// The metrics rampart computed on the held-out rows (see [`score`]), recorded as the
    /// `rampart-metrics` byproduct; the trainer's own `metrics.json` is marked self-reported.
    pub computed: Option<Value>,
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let mut f = create_output_file(path)?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Signs `OUT/model` (OMS, `OUT/model.sig`) and writes the signed provenance
/// (`OUT/provenance.json`): the model files as subjects, the dataset and the other inputs as
/// resolved dependencies, the parameters, the builder, the times, and the metrics and sandbox
/// outcome as byproducts.
///
/// # Errors
/// Hashing or write errors; [`TrainError::Refused`] if the files changed since
/// [`collect_outputs`].
pub fn sign_outputs(
    spec: &RunSpec,
    outcome: &RunOutcome,
    outputs: &Outputs,
    info: &ProvenanceInfo,
    key: &SigningKey,
) -> Result<SignedRun, TrainError> {
    let out = &spec.output;
    let model = spec.model_dir();
    let signature = out.join(SIGNATURE);
    let signed = oms::sign_model(&model, key, &SignOptions::new(&signature), &|_| {})?;
    // The signature must cover exactly the files that were checked.
    let mut signed_files: Vec<(&str, Digest)> = signed
        .manifest
        .resources
        .iter()
        .map(|r| (r.name.as_str(), r.digest))
        .collect();
    signed_files.sort();
    let checked: Vec<(&str, Digest)> = outputs
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.digest))
        .collect();
    if signed_files != checked {
        return Err(TrainError::Refused {
            path: MODEL_DIR.into(),
            reason: "the model files changed between the scan and the signature".into(),
        });
    }
    write_new(&signature, &signed.bundle)?;
    let mut deps = vec![Artifact {
        name: spec.dataset.name.clone(),
        digest: spec.dataset.digest,
        uri: spec.dataset.uri.clone(),
    }];
    deps.extend(spec.inputs.iter().map(|i| Artifact {
        name: i.name.clone(),
        digest: i.digest,
        uri: i.uri.clone(),
    }));
    let r = &outcome.report;
    let mut provenance = Provenance {
        subjects: outputs
            .files
            .iter()
            .map(|f| Artifact::new(f.name.clone(), f.digest))
            .collect(),
        build_type: BUILD_TYPE.into(),
        external_parameters: info.parameters.clone(),
        resolved_dependencies: deps,
        builder_id: BUILDER_ID.into(),
        builder_version: info.version.clone(),
        invocation_id: info.invocation_id.clone(),
        started_on: outcome.started.clone(),
        finished_on: outcome.finished.clone(),
        byproducts: vec![
            json!({
                "name": METRICS,
                "content": outputs.metrics.clone().unwrap_or(Value::Null),
                "annotations": {"self_reported": true},
            }),
            json!({"name": "sandbox", "content": {
                "outcome": r.explain(),
                "landlock": r.landlock,
                "unsandboxed": r.missing.iter().map(|(s, why)| json!({"step": s, "reason": why})).collect::<Vec<_>>(),
                "limits": r.limits,
                "seconds": r.elapsed.as_secs_f64(),
            }}),
            json!({"name": "model-signature", "digest": {"sha256": signed.manifest.root.to_hex()}}),
        ],
    };
    if let Some(c) = &info.computed {
        provenance
            .byproducts
            .push(json!({"name": rampart_ml::metrics::COMPUTED, "content": c}));
    }
    let bundle = provenance.sign(key);
    let prov_path = out.join(PROVENANCE);
    write_new(&prov_path, &bundle)?;
    Ok(SignedRun {
        root: signed.manifest.root,
        key: signed.key,
        signature,
        provenance: prov_path,
        statement: provenance.statement(),
    })
}

/// Writes `OUT/run.json`.
///
/// # Errors
/// On write errors.
pub fn write_report(out: &Path, report: &Value) -> Result<(), TrainError> {
    let path = out.join(REPORT);
    let mut bytes = serde_json::to_vec_pretty(report).unwrap_or_default();
    bytes.push(b'\n');
    // Rewritten at each stage of a run: replaced atomically, mode 0644.
    let tmp = out.join(format!(".{REPORT}.tmp"));
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, &bytes)?;
    fs::rename(&tmp, &path).map_err(io(&path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn safetensors() -> Vec<u8> {
        let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let mut b = (header.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(header);
        b.extend_from_slice(&1.0f32.to_le_bytes());
        b
    }

    #[test]
    fn collection_counts_in_the_runs_time_and_keeps_nothing_refused() {
        let out = tempfile::tempdir().unwrap();
        prepare_output(&out.path().join("run")).unwrap();
        let run = out.path().join("run");
        std::fs::write(run.join("model/model.safetensors"), safetensors()).unwrap();
        let bounds = CollectBounds {
            max_bytes: 1 << 20,
            deadline: Some(Instant::now()),
        };
        std::thread::sleep(std::time::Duration::from_millis(5));
        let e =
            collect_outputs(&run, &ScanConfig::default(), Severity::Medium, bounds).unwrap_err();
        assert!(e.to_string().contains("time limit"), "{e}");
        assert_eq!(std::fs::read_dir(run.join("model")).unwrap().count(), 0);
        // Within the time and size, the same file is collected with a clean mode.
        std::fs::write(run.join("model/model.safetensors"), safetensors()).unwrap();
        let bounds = CollectBounds {
            max_bytes: 1 << 20,
            deadline: None,
        };
        let o = collect_outputs(&run, &ScanConfig::default(), Severity::Medium, bounds).unwrap();
        assert_eq!(o.files.len(), 1);
        let tight = CollectBounds {
            max_bytes: 10,
            deadline: None,
        };
        let e = collect_outputs(&run, &ScanConfig::default(), Severity::Medium, tight).unwrap_err();
        assert!(e.to_string().contains("more than 10 bytes"), "{e}");
    }

    #[test]
    fn a_fifo_left_as_a_model_is_refused_without_blocking() {
        let out = tempfile::tempdir().unwrap();
        let run = out.path().join("run");
        prepare_output(&run).unwrap();
        nix::unistd::mkfifo(
            &run.join("model/model.safetensors"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let bounds = CollectBounds {
            max_bytes: 1 << 20,
            deadline: None,
        };
        let e =
            collect_outputs(&run, &ScanConfig::default(), Severity::Medium, bounds).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert_eq!(std::fs::read_dir(run.join("model")).unwrap().count(), 0);
    }
}
