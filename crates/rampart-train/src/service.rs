//! The training stage as a library service: one request, its limits merged once (the policy's
//! `[train]`, then the config's `[limits]`, then the request's own), the inputs verified and
//! materialised, the trainer run in the sandbox, its outputs checked and the model and its
//! provenance signed with the home's key — every step on the audit record.
//!
//! `rampart train` and `rampart pipeline run` both call [`train`]; only the trainer itself runs
//! as a child process, inside the sandbox.

use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_audit::{Action, AuditError, Outcome as AuditOutcome};
use rampart_crypto::{Digest, Sha256Hasher};
use rampart_home::Classify;
use rampart_home::{HomeError, Session, TrainPolicy};
use rampart_ingest::open::Keys;
use rampart_ingest::{ErrorKind, IngestError};
use rampart_ml::hyper::{Hyper, Kind};
use rampart_sandbox::{Limits, Outcome, Sandbox, SandboxError, Stream};
use serde_json::{Value, json};

use crate::config::{SizeValue, TrainConfig};
use crate::{
    CollectBounds, Input, LOG, METRICS, MODEL_DIR, ModelFile, ProvenanceInfo, RunSpec, TrainError,
    Trainer,
};

/// What the sandbox runs.
#[derive(Debug, Clone)]
pub enum Recipe {
    /// The built-in trainer: `program` (rampart's own executable) run as `__train-builtin`.
    Builtin {
        /// The executable.
        program: PathBuf,
        /// Which model.
        kind: Kind,
        /// The fraction of rows held out to score a classifier, in `[0, 1)`.
        holdout: f64,
        /// The hyperparameters given (checked when the run is planned).
        hyper: Hyper,
    },
    /// The user's own trainer.
    Exec {
        /// The command and its arguments.
        command: Vec<String>,
        /// Its working directory.
        cwd: PathBuf,
        /// More paths it may read (its code).
        read: Vec<PathBuf>,
        /// More environment variables it gets.
        env: Vec<String>,
        /// The fraction of labelled rows held out for rampart to score the model on (default
        /// 0.2 when a label column is named; 0 for none).
        holdout: Option<f64>,
    },
}

impl Recipe {
    /// The fraction of rows rampart holds out before the trainer starts, to score its model:
    /// a built-in classifier's `holdout`, a user trainer's (0.2 by default) when a label
    /// column is named; else none.
    #[must_use]
    pub fn holdout(&self, labelled: bool) -> f64 {
        match self {
            Self::Builtin { kind, holdout, .. } if kind.is_classifier() && labelled => *holdout,
            Self::Exec { holdout, .. } if labelled => holdout.unwrap_or(0.2),
            _ => 0.0,
        }
    }
}

/// What the command line says should run (nothing, for a pipeline step).
#[derive(Debug, Clone, Default)]
pub struct RecipeFlags {
    /// `--exec -- COMMAND`.
    pub exec: Option<Vec<String>>,
    /// `--model KIND`.
    pub kind: Option<Kind>,
    /// `--holdout F`: rows held out for rampart to score the model on.
    pub holdout: Option<f64>,
    /// Hyperparameter flags, over the config's `[model]` settings.
    pub hyper: Hyper,
}

/// What runs: `--exec`, `--model` (with the config's `[model]` settings under the flags'),
/// the config's `[trainer]`, or its `[model]`. `program` is the executable that runs the
/// built-in trainer; `cwd` the working directory of a command given on the command line.
///
/// # Errors
/// [`ServiceError::Request`]: nothing to run, or a `[model]` table with a kind or setting
/// the built-in trainer does not take (naming the config file).
pub fn recipe(
    flags: &RecipeFlags,
    config: Option<(&TrainConfig, &Path)>,
    program: &Path,
    cwd: PathBuf,
) -> Result<Recipe, ServiceError> {
    const SETTINGS: &str =
        "the settings are the flags of `rampart ml train`, e.g. trees = 200, max_depth = 8";
    let data_holdout = config.and_then(|(c, _)| c.data.holdout);
    if let Some(command) = &flags.exec {
        return Ok(Recipe::Exec {
            command: command.clone(),
            cwd,
            read: Vec::new(),
            env: Vec::new(),
            holdout: flags.holdout.or(data_holdout),
        });
    }
    let table = config.and_then(|(c, _)| c.model.as_ref());
    let in_config = |e: &dyn std::fmt::Display| ServiceError::Request {
        message: format!(
            "{}[model] {e}",
            config.map_or(String::new(), |(_, p)| format!("{}: ", p.display()))
        ),
        hint: Some(SETTINGS),
    };
    let builtin = |kind: Kind| -> Result<Recipe, ServiceError> {
        let settings = table
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "kind" && *k != "holdout")
            .map(|(k, v)| (k.clone(), v.clone()));
        let from_config = Hyper::from_toml_table(settings).map_err(|e| in_config(&e))?;
        let holdout = flags
            .holdout
            .or_else(|| table?.get("holdout")?.as_float())
            .or(data_holdout)
            .unwrap_or(0.2);
        Ok(Recipe::Builtin {
            program: program.to_path_buf(),
            kind,
            holdout,
            hyper: from_config.over(&flags.hyper),
        })
    };
    if let Some(kind) = flags.kind {
        return builtin(kind);
    }
    if let Some(t) = config.and_then(|(c, _)| c.trainer.as_ref()) {
        return Ok(Recipe::Exec {
            command: t.command.clone(),
            cwd: t.cwd.clone().unwrap_or(cwd),
            read: t.read.clone(),
            env: t.env.clone(),
            holdout: flags.holdout.or(data_holdout),
        });
    }
    if let Some(m) = table {
        let Some(kind) = m.get("kind").and_then(toml::Value::as_str) else {
            return Err(in_config(
                &"needs kind = \"random-forest\", \"isolation-forest\" or \"logistic\"",
            ));
        };
        return builtin(kind.parse().map_err(|e| in_config(&e))?);
    }
    Err(ServiceError::Request {
        message: "say what to train".into(),
        hint: Some(
            "--model random-forest|isolation-forest|logistic, --exec -- COMMAND, or --config train.toml",
        ),
    })
}

/// Limits given for this run, over the config's `[limits]` and the policy's `[train]`.
#[derive(Debug, Clone, Default)]
pub struct LimitOverrides {
    /// Seconds of wall-clock time (the CPU limit is lowered to match).
    pub timeout: Option<u64>,
    /// Address space per process.
    pub memory: Option<u64>,
    /// The most bytes of model output collected.
    pub max_output: Option<u64>,
    /// The scratch tmpfs size.
    pub scratch: Option<u64>,
}

/// A `train.toml` the request came from: its limits apply, its text goes into the provenance.
#[derive(Debug, Clone, Copy)]
pub struct ConfigFile<'a> {
    /// Where it was read.
    pub path: &'a Path,
    /// Its text, as read.
    pub text: &'a str,
    /// Parsed.
    pub parsed: &'a TrainConfig,
}

/// How a model is isolated when it is run to be scored (see [`TrainRequest::onnx_worker`]).
pub use rampart_onnx::Isolation;

/// One training run, as asked.
#[derive(Debug, Clone)]
pub struct TrainRequest<'a> {
    /// `sha256:<hex>` of an ingested dataset, or a file inside the data roots.
    pub dataset: String,
    /// The label column.
    pub label: Option<String>,
    /// Columns left out of the features.
    pub ignore: Vec<String>,
    /// A base model: digested into the provenance, readable by the trainer.
    pub base_model: Option<PathBuf>,
    /// What runs.
    pub recipe: Recipe,
    /// The config file, if the run was described by one.
    pub config: Option<ConfigFile<'a>>,
    /// Limits for this run.
    pub limits: LimitOverrides,
    /// More readable paths (beyond the policy's).
    pub read: Vec<PathBuf>,
    /// More environment variables passed in (beyond the policy's).
    pub env: Vec<String>,
    /// The interpreter that stands in for a `python`/`python3` command.
    pub python: Option<PathBuf>,
    /// Expose the GPU's device nodes.
    pub gpu: bool,
    /// Run without the protections the machine lacks (audited).
    pub allow_unsandboxed: bool,
    /// The run directory (default: the config's `[output] dir`, else a new one under the
    /// home's `runs/`).
    pub output: Option<PathBuf>,
    /// How an ONNX model is run to score it: in a worker process (the binary's
    /// `onnx-worker`) capped at the run's memory limit, or (`None`) in this process.
    pub onnx_worker: Option<rampart_onnx::Isolation>,
}

impl TrainRequest<'_> {
    /// A request to run `recipe` on `dataset`, with nothing else asked: no label, no config,
    /// the policy's limits, environment and readable paths, a new run directory.
    #[must_use]
    pub fn new(dataset: impl Into<String>, recipe: Recipe) -> Self {
        Self {
            dataset: dataset.into(),
            label: None,
            ignore: Vec::new(),
            base_model: None,
            recipe,
            config: None,
            limits: LimitOverrides::default(),
            read: Vec::new(),
            env: Vec::new(),
            python: None,
            gpu: false,
            allow_unsandboxed: false,
            output: None,
            onnx_worker: None,
        }
    }
}

/// The request with everything merged: what [`run`] executes.
#[derive(Debug, Clone)]
pub struct TrainPlan {
    /// The limits in force.
    pub limits: Limits,
    /// The environment passed in (already scrubbed).
    pub env: Vec<(String, String)>,
    /// The run directory (absolute; checked usable).
    pub output: PathBuf,
    /// Paths readable beyond the trainer's own (policy and request).
    pub read: Vec<PathBuf>,
}

/// Why a service call could not do its job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The request is wrong: the user can fix it.
    #[error("{message}")]
    Request {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: Option<&'static str>,
    },
    /// A rule refused the run (audited before it was returned).
    #[error("{message}")]
    Refused {
        /// Why.
        message: String,
        /// What to do.
        hint: Option<&'static str>,
    },
    /// The dataset could not be opened or verified.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The home (keys, directories) failed.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The audit record could not be written, so nothing was done.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The run failed for a reason outside the request (disk, sandbox start-up, signing).
    #[error(transparent)]
    Train(#[from] TrainError),
}

impl Classify for ServiceError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Request { .. } | Self::Refused { .. } => ErrorKind::Input,
            Self::Ingest(e) => e.kind(),
            Self::Home(e) => e.kind(),
            Self::Audit(_) | Self::Train(_) => ErrorKind::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Request { hint, .. } | Self::Refused { hint, .. } => hint.map(str::to_owned),
            Self::Ingest(e) => e.hint(),
            _ => None,
        }
    }
}

fn request(message: impl Into<String>) -> ServiceError {
    ServiceError::Request {
        message: message.into(),
        hint: None,
    }
}

fn internal(path: &Path) -> impl FnOnce(std::io::Error) -> ServiceError + '_ {
    move |source| {
        ServiceError::Train(TrainError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// The run finished: a signed model, or a failure the trainer or its outputs caused.
#[derive(Debug)]
pub enum TrainOutcome {
    /// The model is signed, with its provenance.
    Trained(Box<TrainedRun>),
    /// The trainer failed or left something that may not leave the sandbox (audited as a
    /// failed run; the run directory keeps its log and report).
    Failed(FailedRun),
}

/// A signed model.
#[derive(Debug)]
pub struct TrainedRun {
    /// The run directory.
    pub run: PathBuf,
    /// `run/model`.
    pub model_dir: PathBuf,
    /// The model files.
    pub files: Vec<ModelFile>,
    /// The OMS root digest over them.
    pub root: Digest,
    /// The dataset trained on.
    pub dataset: Digest,
    /// The signature bundle.
    pub signature: PathBuf,
    /// The signed provenance.
    pub provenance: PathBuf,
    /// The signing key's fingerprint.
    pub key: String,
    /// The metrics the trainer wrote (self-reported).
    pub metrics: Option<Value>,
    /// The metrics rampart computed on the held-out rows (`scores`, or `not_scored` with
    /// why), as the signed provenance records them.
    pub computed: Value,
    /// `builtin/<kind>` or `exec`.
    pub build: String,
    /// How long the trainer ran.
    pub elapsed: Duration,
    /// Protections the run went without (`--allow-unsandboxed`), with why.
    pub missing: Vec<(String, String)>,
    /// The run's log.
    pub log: PathBuf,
    /// The run report (`run.json`).
    pub report: Value,
}

/// A run that failed.
#[derive(Debug)]
pub struct FailedRun {
    /// The run directory.
    pub run: PathBuf,
    /// Why.
    pub reason: String,
    /// Protections the run went without, with why.
    pub missing: Vec<(String, String)>,
    /// The run's log.
    pub log: PathBuf,
    /// The run report (`run.json`, with its `error`).
    pub report: Value,
}

fn size(v: &SizeValue, what: &str) -> Result<u64, ServiceError> {
    match v {
        SizeValue::Bytes(b) => Ok(*b),
        SizeValue::Text(t) => {
            rampart_home::parse_size(t).map_err(|e| request(format!("[limits] {what}: {e}")))
        }
    }
}

/// The limits: the policy's `[train]`, then the config's `[limits]`, then the request's.
///
/// # Errors
/// A size that does not parse, or limits too small to run anything.
pub fn limits(
    policy: &TrainPolicy,
    config: Option<&TrainConfig>,
    o: &LimitOverrides,
) -> Result<Limits, ServiceError> {
    let mut l = Limits {
        wall_ms: policy.timeout.saturating_mul(1000),
        cpu_seconds: policy.cpu,
        memory_bytes: policy.memory.0,
        file_size_bytes: policy.file_size.0,
        open_files: policy.open_files,
        processes: policy.processes,
        ..Limits::default()
    };
    if let Some(c) = config.map(|c| &c.limits) {
        if let Some(t) = c.timeout {
            l.wall_ms = t.saturating_mul(1000);
        }
        if let Some(v) = c.cpu {
            l.cpu_seconds = v;
        }
        if let Some(v) = &c.memory {
            l.memory_bytes = size(v, "memory")?;
        }
        if let Some(v) = &c.file_size {
            l.file_size_bytes = size(v, "file_size")?;
        }
        if let Some(v) = c.open_files {
            l.open_files = v;
        }
        if let Some(v) = c.processes {
            l.processes = v;
        }
    }
    if let Some(t) = o.timeout {
        l.wall_ms = t.saturating_mul(1000);
        // A shorter wall clock is the point; the CPU limit must not outlast it.
        l.cpu_seconds = l.cpu_seconds.min(t.max(1));
    }
    if let Some(m) = o.memory {
        l.memory_bytes = m;
    }
    if let Some(m) = o.max_output {
        l.output_bytes = m;
    }
    if let Some(m) = o.scratch {
        l.scratch_bytes = m;
    }
    if l.wall_ms == 0 || l.cpu_seconds == 0 || l.open_files < 16 || l.processes < 2 {
        return Err(request(
            "limits: timeout and cpu must be positive, open_files at least 16, processes at least 2",
        ));
    }
    if l.memory_bytes < 16 << 20 {
        return Err(request(format!(
            "the memory limit of {} bytes is too small to start a program (at least 16 MiB)",
            l.memory_bytes
        )));
    }
    Ok(l)
}

/// A fresh run id: the UTC time and 8 hex digits of a per-process hash.
#[must_use]
pub fn run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let mut h = Sha256Hasher::new();
    h.update(
        format!(
            "{}:{}:{:?}",
            std::process::id(),
            now.unix_timestamp_nanos(),
            std::thread::current().id()
        )
        .as_bytes(),
    );
    let tag = h.finish().to_hex();
    format!("{stamp}-{}", tag.get(..8).unwrap_or_default())
}

/// Merges the request with the policy: limits, environment, readable paths, run directory.
///
/// # Errors
/// [`ServiceError::Request`] for limits or variables that may not be used, or a run
/// directory that cannot be.
pub fn plan(s: &Session<'_>, req: &TrainRequest<'_>) -> Result<TrainPlan, ServiceError> {
    let policy = &s.policy.train;
    let cfg = req.config.map(|c| c.parsed);
    let limits = limits(policy, cfg, &req.limits)?;
    let mut allow = policy.env.clone();
    allow.extend(req.env.iter().cloned());
    if let Recipe::Exec { env, .. } = &req.recipe {
        allow.extend(env.iter().cloned());
    }
    let (env, refused) = rampart_sandbox::scrub_env(std::env::vars_os(), &allow);
    if !refused.is_empty() {
        return Err(request(format!(
            "{} may not be passed to a trainer: RAMPART_* and secret-looking variables never enter the sandbox",
            refused.join(", ")
        )));
    }
    let mut read = policy.read.clone();
    read.extend(req.read.iter().cloned());
    let output = req
        .output
        .clone()
        .or_else(|| cfg.and_then(|c| c.output.dir.clone()))
        .unwrap_or_else(|| s.home.runs_dir().join(run_id()));
    let output = std::path::absolute(&output).map_err(internal(&output))?;
    crate::check_output(&output).map_err(|e| request(e.to_string()))?;
    if let Recipe::Builtin {
        holdout,
        kind,
        hyper,
        ..
    } = &req.recipe
    {
        hyper.check(*kind).map_err(|e| request(e.to_string()))?;
        if kind.is_classifier() && req.label.is_none() {
            return Err(ServiceError::Request {
                message: "a classifier needs --label COL".into(),
                hint: Some("name the column to predict"),
            });
        }
        if !(0.0..1.0).contains(holdout) {
            return Err(request(format!(
                "--holdout {holdout}: expected a fraction in [0, 1)"
            )));
        }
    }
    if let Recipe::Exec {
        holdout: Some(h), ..
    } = &req.recipe
        && !(0.0..1.0).contains(h)
    {
        return Err(request(format!(
            "--holdout {h}: expected a fraction in [0, 1)"
        )));
    }
    Ok(TrainPlan {
        limits,
        env,
        output,
        read,
    })
}

/// A new input file of the run. It is readable by all (0644) so that the unprivileged uid of
/// a root run can read it inside the sandbox; the run's directory around it is private (0700)
/// on the host.
fn input_file(to: &Path) -> Result<std::fs::File, ServiceError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(to)
        .map_err(internal(to))
}

/// Copies `reader` into a new input file (see [`input_file`]) while hashing it.
fn materialise(mut reader: impl Read, from: &Path, to: &Path) -> Result<Digest, ServiceError> {
    let mut file = input_file(to)?;
    let mut hasher = Sha256Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| request(format!("cannot read {}: {e}", from.display())))?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        hasher.update(chunk);
        file.write_all(chunk).map_err(internal(to))?;
    }
    file.sync_all().map_err(internal(to))?;
    Ok(hasher.finish())
}

/// Opens the dataset (an ingested one by digest, or a file in the data roots), copies the
/// plaintext into the run's private input directory and returns it as an input.
fn dataset_input(
    s: &Session<'_>,
    text: &str,
    keys: Keys<'_>,
    dir: &Path,
) -> Result<Input, ServiceError> {
    if text.starts_with("sha256:") {
        let ds = rampart_ingest::DatasetStore::of(s.home).lookup(text)?;
        let path = dir.join(format!("data.{}", ds.format.extension()));
        let mut file = input_file(&path)?;
        rampart_ingest::open::copy_stored(s, text, "train", &mut file)?;
        file.sync_all().map_err(internal(&path))?;
        return Ok(Input {
            name: "dataset".into(),
            path,
            digest: ds.digest,
            uri: Some(format!("rampart:dataset/{text}")),
        });
    }
    let requested = Path::new(text);
    let ds = rampart_ingest::open::open_file(s, requested, keys)?;
    let base = ds
        .real
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".age").to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "data".into());
    let path = dir.join(&base);
    let digest = materialise(ds.reader, requested, &path)?;
    Ok(Input {
        name: "dataset".into(),
        path,
        digest,
        uri: Some(format!("file:{}", ds.real.display())),
    })
}

/// A file input: copied into `dir` (the trainer reads the bytes that were digested), or
/// digested in place.
fn file_input(name: String, from: &Path, dir: Option<&Path>) -> Result<Input, ServiceError> {
    // Not blocking, regular files only: a FIFO named as an input must not hang the run.
    let f =
        rampart_home::secure_fs::open_regular_file(from).map_err(|e| ServiceError::Request {
            message: e.to_string(),
            hint: Some("name a regular file"),
        })?;
    let real = from.canonicalize().unwrap_or_else(|_| from.to_path_buf());
    let (path, digest) = match dir {
        Some(dir) => {
            let base = real
                .file_name()
                .map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
            let to = dir.join(base);
            let d = materialise(f, from, &to)?;
            (to, d)
        }
        None => {
            let mut h = Sha256Hasher::new();
            std::io::copy(&mut std::io::BufReader::new(f), &mut h)
                .map_err(|e| request(format!("cannot read {}: {e}", from.display())))?;
            (real.clone(), h.finish())
        }
    };
    Ok(Input {
        name,
        path,
        digest,
        uri: Some(format!("file:{}", real.display())),
    })
}

/// Rows held out of a run's table for rampart to score the model on.
#[derive(Debug)]
struct HeldOut {
    /// The trainer's copy of the table (the rows not held out), when it is CSV (what the
    /// reference input statistics are read from).
    train: Option<PathBuf>,
    fraction: f64,
    seed: u64,
    label: String,
    path: PathBuf,
    split: rampart_data::holdout::Split,
}

/// Whether rows were held out, or why not.
#[derive(Debug)]
enum Holding {
    Held(HeldOut),
    Not(String),
}

/// Splits the run's table (already copied into the run's inputs) before the trainer starts:
/// the trainer's copy keeps the training rows, the held-out rows go to `dir` (private, never
/// shown to the sandbox).
fn hold_out(req: &TrainRequest<'_>, data: &Input, dir: &Path) -> Result<Holding, ServiceError> {
    let fraction = req.recipe.holdout(req.label.is_some());
    let Some(label) = req.label.clone() else {
        return Ok(Holding::Not(
            "no label column was named (--label COL or [data] label): there is nothing to score against"
                .into(),
        ));
    };
    if fraction <= 0.0 {
        return Ok(Holding::Not(match &req.recipe {
            Recipe::Builtin { kind, .. } if !kind.is_classifier() => {
                crate::score::no_classes(&kind.to_string())
            }
            _ => "--holdout 0: no rows were held out".into(),
        }));
    }
    let ext = data
        .path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let parquet = match ext.as_deref() {
        Some("csv") => false,
        Some("parquet") => true,
        other => {
            return Ok(Holding::Not(format!(
                "the dataset is {}: rampart holds rows out of CSV and Parquet tables only",
                other.unwrap_or("of no known format")
            )));
        }
    };
    rampart_home::secure_fs::create_private_dir(dir)?;
    let seed = match &req.recipe {
        Recipe::Builtin { hyper, .. } => hyper.seed.unwrap_or(0),
        Recipe::Exec { .. } => 0,
    };
    let path = dir.join("holdout.csv");
    let partial = data.path.with_extension(if parquet {
        "parquet.train"
    } else {
        "csv.train"
    });
    let split = {
        let train = input_file(&partial)?;
        let holdout = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(internal(&path))?
        };
        let spec = rampart_data::holdout::SplitSpec {
            label: &label,
            fraction,
            seed,
        };
        let name = Path::new(&req.dataset);
        let open = || std::fs::File::open(&data.path);
        if parquet {
            rampart_data::holdout::split_parquet(name, &open, spec, train, holdout)
        } else {
            rampart_data::holdout::split_csv(name, &open, spec, train, holdout)
        }
        .map_err(|e| ServiceError::Request {
            message: e.to_string(),
            hint: Some("name the label column with --label COL, or pass --holdout 0 (the model is then not scored)"),
        })?
    };
    std::fs::rename(&partial, &data.path).map_err(internal(&data.path))?;
    Ok(Holding::Held(HeldOut {
        train: (!parquet).then(|| data.path.clone()),
        fraction,
        seed,
        label,
        path,
        split,
    }))
}

/// Scores the checked model on the held-out rows: the `rampart-metrics` record.
fn computed_metrics(
    held: &Holding,
    req: &TrainRequest<'_>,
    memory: u64,
    model_dir: &Path,
    files: &[ModelFile],
) -> Value {
    let h = match held {
        Holding::Held(h) => h,
        Holding::Not(why) => return json!({"scores": null, "not_scored": why}),
    };
    let names: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
    let limits = rampart_onnx::OnnxLimits {
        run_timeout: Duration::from_secs(60),
        sessions: 1,
        ..rampart_onnx::OnnxLimits::default()
    };
    // The trainer's model runs outside the sandbox: in a worker under the run's memory limit.
    let isolation = req.onnx_worker.clone().map(|mut i| {
        i.memory = memory;
        i
    });
    let scored = crate::score::score(
        model_dir,
        &names,
        crate::score::Holdout {
            path: &h.path,
            train: h.train.as_deref(),
            label: &h.label,
            ignore: &req.ignore,
        },
        limits,
        isolation.as_ref(),
    );
    let (scores, why) = match scored.scored {
        crate::score::Scored::Scores(v) => (v, None),
        crate::score::Scored::NotScored(w) => (Value::Null, Some(w)),
    };
    let mut v = json!({
        "scores": scores,
        "holdout": {
            "label": h.label,
            "fraction": h.fraction,
            "stratified": h.split.stratified,
            "seed": h.seed,
            "rows": h.split.holdout_rows,
            "sha256": h.split.holdout_digest.to_hex(),
            "train_rows": h.split.train_rows,
            "train_sha256": h.split.train_digest.to_hex(),
        },
    });
    if let Value::Object(o) = &mut v {
        if let Some(w) = why {
            o.insert("not_scored".into(), json!(w));
        }
        // An ONNX model's reference input statistics, from the rows it was trained on: the
        // registry keeps them and the gateway measures drift against them.
        if let Some(r) = scored.reference {
            o.insert("reference".into(), r);
        }
    }
    v
}

/// The trainer, its provenance parameters and its build name, for a recipe.
fn trainer_for(
    req: &TrainRequest<'_>,
    out: &Path,
    data: &Input,
    scratch: &Path,
    policy_python: Option<&PathBuf>,
    inputs: &mut Vec<Input>,
    held: f64,
) -> Result<(Trainer, Value, String), ServiceError> {
    match &req.recipe {
        Recipe::Builtin {
            program,
            kind,
            holdout,
            hyper,
        } => {
            let is_csv = data
                .path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            if !is_csv {
                return Err(ServiceError::Request {
                    message: format!(
                        "{}: the built-in models read CSV; this dataset is {}",
                        req.dataset,
                        data.path
                            .extension()
                            .map_or("not CSV".into(), |e| e.to_string_lossy().into_owned())
                    ),
                    hint: Some("train it with your own trainer: --exec -- COMMAND"),
                });
            }
            let model_dir = out.join(MODEL_DIR);
            let mut args = vec![
                "__train-builtin".to_owned(),
                "--data".into(),
                data.path.display().to_string(),
                "--model".into(),
                kind.name().into(),
                // Rows rampart held out are already gone from the table; the trainer's own
                // split would only take more from it.
                "--holdout".into(),
                if held > 0.0 {
                    "0".into()
                } else {
                    holdout.to_string()
                },
                "--output".into(),
                model_dir.join("model.safetensors").display().to_string(),
                "--metrics".into(),
                model_dir.join(METRICS).display().to_string(),
            ];
            if let Some(l) = &req.label {
                args.extend(["--label".into(), l.clone()]);
            }
            for i in &req.ignore {
                args.extend(["--ignore".into(), i.clone()]);
            }
            if *hyper != Hyper::default() {
                // Plain numbers and names: serialising them cannot fail.
                let text = serde_json::to_string(hyper).unwrap_or_default();
                args.extend(["--hyper".into(), text]);
            }
            let params = json!({
                "trainer": "builtin",
                "model": kind,
                "label": req.label,
                "ignore": req.ignore,
                "holdout": holdout,
                "hyperparameters": hyper,
            });
            let trainer = Trainer {
                program: program.clone(),
                args,
                read: vec![program.clone()],
                cwd: scratch.to_path_buf(),
                path: Vec::new(),
            };
            Ok((trainer, params, format!("builtin/{kind}")))
        }
        Recipe::Exec {
            command, cwd, read, ..
        } => {
            let Some((program, rest)) = command.split_first() else {
                return Err(request("--exec needs a command after --"));
            };
            let path_var = std::env::var_os("PATH");
            // `python` (the request's, else the policy's) stands in for a
            // python/python3/pythonX.Y command.
            let is_python = Path::new(program)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| {
                    n == "python" || n.strip_prefix("python").is_some_and(|v| v.starts_with('3'))
                });
            let wanted = match (req.python.as_ref().or(policy_python), is_python) {
                (Some(p), true) => p.clone(),
                _ => PathBuf::from(program),
            };
            let env_of = |k: &str| std::env::var(k).ok();
            let resolved =
                rampart_sandbox::resolve_program(&wanted, path_var.as_deref(), cwd, &env_of)
                    .map_err(|e| ServiceError::Request {
                        message: e.to_string(),
                        hint: Some(
                            "name the program by its path, or the interpreter with --python PATH",
                        ),
                    })?;
            let mut reads = resolved.read.clone();
            reads.extend(read.iter().cloned());
            // Arguments that name files are the trainer's code: readable, and digested into
            // the provenance.
            for arg in rest {
                let p = cwd.join(arg);
                if p.is_file() {
                    let input = file_input(format!("code:{arg}"), &p, None)?;
                    reads.push(input.path.clone());
                    inputs.push(input);
                }
            }
            for r in &reads {
                if std::fs::symlink_metadata(r).is_err() {
                    return Err(request(format!(
                        "--read {}: no such file or directory",
                        r.display()
                    )));
                }
            }
            let params = json!({
                "trainer": "exec",
                "holdout": held,
                "command": command,
                "program": resolved.program,
                "resolved": resolved.via,
                "cwd": cwd,
                "read": reads,
            });
            let trainer = Trainer {
                program: resolved.program,
                args: rest.to_vec(),
                read: reads,
                cwd: cwd.clone(),
                path: resolved.path_dirs,
            };
            Ok((trainer, params, "exec".to_owned()))
        }
    }
}

/// One line for the audit record and the terminal: the computed accuracy (or the first
/// score), or why the model was not scored.
#[must_use]
pub fn computed_summary(computed: &Value) -> String {
    let scores = &computed["scores"];
    if let Some(rows) = scores["rows"].as_u64() {
        let figures: Vec<String> = ["accuracy", "f1_macro", "roc_auc", "r2", "rmse"]
            .iter()
            .filter_map(|k| scores[*k].as_f64().map(|v| format!("{k} {v:.4}")))
            .collect();
        return format!("{} on {rows} held-out rows", figures.join(", "));
    }
    format!(
        "not scored: {}",
        computed["not_scored"]
            .as_str()
            .unwrap_or("no reason recorded")
    )
}

/// Records a refused run and returns the refusal (or the audit failure, which wins).
fn refuse(s: &Session<'_>, run: &str, message: String, hint: Option<&'static str>) -> ServiceError {
    let event = s
        .audit
        .event(Action::TrainRun, AuditOutcome::Denied)
        .subject_path(run)
        .detail("reason", message.as_str());
    match s.audit.refusal(event) {
        Some(e) => e.into(),
        None => ServiceError::Refused { message, hint },
    }
}

/// Plans and runs one training run: [`plan`], then [`run`].
///
/// # Errors
/// See [`plan`] and [`run`].
pub fn train(
    s: &Session<'_>,
    req: &TrainRequest<'_>,
    keys: Keys<'_>,
    sandbox: &Sandbox,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<TrainOutcome, ServiceError> {
    let plan = plan(s, req)?;
    run(s, req, &plan, keys, sandbox, on_output)
}

/// Runs a planned request: the dataset opened (its access audited) and copied into a private
/// input directory, the trainer run in the sandbox, its outputs collected within the limits,
/// the model and its provenance signed with the home's key. A trainer that fails, or outputs
/// that may not leave the sandbox, are a [`TrainOutcome::Failed`]; a sandbox this machine
/// cannot provide is a refusal.
///
/// # Errors
/// [`ServiceError::Refused`] when the sandbox cannot be set up (audited), a request or
/// dataset error, or an internal failure.
pub fn run(
    s: &Session<'_>,
    req: &TrainRequest<'_>,
    plan: &TrainPlan,
    keys: Keys<'_>,
    sandbox: &Sandbox,
    on_output: &mut dyn FnMut(Stream, &[u8]),
) -> Result<TrainOutcome, ServiceError> {
    let out = &plan.output;
    let tmp_root = s.home.tmp_dir();
    rampart_home::secure_fs::create_private_dir(&tmp_root)?;
    // Locked and removed on every exit path (signals included); dead runs' are swept.
    let work = crate::workdir::WorkDir::create(&tmp_root).map_err(internal(&tmp_root))?;
    let inputs_dir = work.path().join("inputs");
    let scratch = work.path().join("scratch");
    for d in [&inputs_dir, &scratch] {
        std::fs::create_dir(d).map_err(internal(d))?;
    }
    let data = dataset_input(s, &req.dataset, keys, &inputs_dir)?;
    let mut inputs = Vec::new();
    if let Some(b) = &req.base_model {
        inputs.push(file_input("base-model".into(), b, Some(&inputs_dir))?);
    }
    // Created only once the inputs are verified: a refused dataset leaves nothing behind.
    crate::prepare_output(out).map_err(|e| request(e.to_string()))?;
    // The rows rampart scores the model on are taken out before the trainer starts, into a
    // directory the sandbox never shows.
    let held = hold_out(req, &data, &work.path().join("held"))?;
    let (mut trainer, mut parameters, build) = trainer_for(
        req,
        out,
        &data,
        &scratch,
        s.policy.train.python.as_ref(),
        &mut inputs,
        match &held {
            Holding::Held(h) => h.fraction,
            Holding::Not(_) => 0.0,
        },
    )?;
    trainer.read.extend(plan.read.iter().cloned());
    let spec = RunSpec {
        trainer,
        dataset: data,
        inputs,
        output: out.clone(),
        scratch,
        limits: plan.limits.clone(),
        env: plan.env.clone(),
        // The whole home: keys, registry, audit log, other runs' plaintext. The run's own
        // output and inputs inside it still show through.
        hide: vec![s.home.root().to_path_buf(), s.home.keys_dir()],
        devices: if req.gpu || s.policy.train.gpu {
            rampart_sandbox::gpu::nvidia_devices(Path::new("/dev"))
        } else {
            Vec::new()
        },
        strict: !req.allow_unsandboxed,
        // A test hook: debug builds only (the sandbox ignores it in release builds too).
        simulate_missing: if cfg!(debug_assertions) {
            std::env::var("RAMPART_SANDBOX_SIMULATE_MISSING")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        },
    };
    if let Value::Object(p) = &mut parameters {
        if let Some(c) = &req.config {
            let mut h = Sha256Hasher::new();
            h.update(c.text.as_bytes());
            p.insert(
                "config".into(),
                json!({"path": c.path, "sha256": h.finish().to_hex(), "text": c.text}),
            );
        }
        p.insert(
            "limits".into(),
            serde_json::to_value(&plan.limits).unwrap_or_default(),
        );
        p.insert("allow_unsandboxed".into(), json!(req.allow_unsandboxed));
    }
    let run_text = out.display().to_string();
    if req.allow_unsandboxed {
        s.audit.record(
            s.audit
                .event(Action::TrainUnsandboxed, AuditOutcome::Ok)
                .subject_path(&run_text)
                .detail(
                    "reason",
                    "--allow-unsandboxed: protections the machine lacks are skipped",
                ),
        )?;
    }

    let run_started = std::time::Instant::now();
    let outcome = match crate::run_trainer(&spec, sandbox, on_output) {
        Ok(o) => o,
        Err(TrainError::Sandbox(e @ SandboxError::Unsupported(_))) => {
            return Err(refuse(
                s,
                &run_text,
                e.to_string(),
                Some(
                    "run on a kernel with user namespaces, Landlock and seccomp, or pass --allow-unsandboxed (audited)",
                ),
            ));
        }
        Err(TrainError::Sandbox(
            e @ (SandboxError::View(_)
            | SandboxError::NotReadable { .. }
            | SandboxError::Missing { .. }),
        )) => {
            let shown = crate::terminal::escape(&e.to_string()).into_owned();
            return Err(refuse(s, &run_text, shown, None));
        }
        Err(e) => return Err(e.into()),
    };
    let r = &outcome.report;
    let log = out.join(LOG);
    let mut report = json!({
        "run": out,
        "dataset": {"name": req.dataset, "sha256": spec.dataset.digest.to_hex(), "uri": spec.dataset.uri},
        "inputs": spec.inputs.iter().map(|i| json!({"name": i.name, "sha256": i.digest.to_hex()})).collect::<Vec<_>>(),
        "trainer": parameters,
        "sandbox": {
            "outcome": r.explain(),
            "success": r.success(),
            "landlock": r.landlock,
            "unsandboxed": r.missing.iter().map(|(s, why)| json!({"step": s, "reason": why})).collect::<Vec<_>>(),
            "seconds": r.elapsed.as_secs_f64(),
            "process_limit_hits": r.process_limit_hits,
            "memory_limit_hits": r.memory_limit_hits,
            "memory_scope": r.memory_scope,
            "run_as": r.run_as,
        },
        "started": outcome.started,
        "finished": outcome.finished,
        "log": log,
    });
    let missing = r.missing.clone();
    if !missing.is_empty() {
        s.audit.record(
            s.audit
                .event(Action::TrainUnsandboxed, AuditOutcome::Ok)
                .subject_path(&run_text)
                .detail(
                    "missing",
                    missing
                        .iter()
                        .map(|(s, _)| s.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
        )?;
    }
    if let Outcome::SetupFailed { step, message } = &r.outcome {
        let _ = crate::write_report(out, &report);
        let event = s
            .audit
            .event(Action::TrainRun, AuditOutcome::Denied)
            .subject_path(&run_text)
            .detail("step", step.clone())
            .detail("reason", message.clone());
        if let Some(e) = s.audit.refusal(event) {
            return Err(e.into());
        }
        return Err(ServiceError::Refused {
            message: format!("the sandbox could not be set up ({step}): {message}"),
            hint: Some(
                "this machine cannot enforce the sandbox; pass --allow-unsandboxed to run without the missing protection (audited)",
            ),
        });
    }
    let failed = |mut report: Value, reason: String| -> Result<TrainOutcome, ServiceError> {
        if let Value::Object(o) = &mut report {
            o.insert("error".into(), json!(reason));
        }
        crate::write_report(out, &report)?;
        s.audit.record(
            s.audit
                .event(Action::TrainRun, AuditOutcome::Failed)
                .subject_path(&run_text)
                .subject_digest(spec.dataset.digest.reference())
                .detail("reason", reason.as_str()),
        )?;
        Ok(TrainOutcome::Failed(FailedRun {
            run: out.clone(),
            reason,
            missing: missing.clone(),
            log: log.clone(),
            report,
        }))
    };
    if !r.success() {
        return failed(report, r.explain());
    }
    let bounds = CollectBounds {
        max_bytes: plan.limits.output_bytes,
        // The run's wall clock counts the collection too.
        deadline: Some(run_started + Duration::from_millis(plan.limits.wall_ms)),
    };
    let scan = s.policy.scan.config();
    let outputs = match crate::collect_outputs(out, &scan, s.policy.scan.fail_on, bounds) {
        Ok(o) => o,
        Err(TrainError::Refused { path, reason }) => {
            return failed(report, format!("{path}: {reason}"));
        }
        Err(e) => return Err(e.into()),
    };
    let computed = computed_metrics(
        &held,
        req,
        plan.limits.memory_bytes,
        &out.join(MODEL_DIR),
        &outputs.files,
    );
    let (key, _) = s.home.signing_key()?;
    let info = ProvenanceInfo {
        parameters: report.get("trainer").cloned().unwrap_or_default(),
        invocation_id: out
            .file_name()
            .map_or_else(run_id, |n| n.to_string_lossy().into_owned()),
        version: env!("CARGO_PKG_VERSION").into(),
        computed: Some(computed.clone()),
    };
    let signed = match crate::sign_outputs(&spec, &outcome, &outputs, &info, &key) {
        Ok(s) => s,
        Err(TrainError::Refused { path, reason }) => {
            return failed(report, format!("{path}: {reason}"));
        }
        Err(e) => return Err(e.into()),
    };
    let model_dir = out.join(MODEL_DIR);
    if let Value::Object(o) = &mut report {
        o.insert(
            "model".into(),
            json!({
                "dir": model_dir,
                "root": signed.root.to_hex(),
                "files": outputs.files.iter().map(|f| json!({"name": f.name, "format": f.format, "size": f.size, "sha256": f.digest.to_hex()})).collect::<Vec<_>>(),
            }),
        );
        o.insert("signature".into(), json!(signed.signature));
        o.insert("provenance".into(), json!(signed.provenance));
        o.insert("key".into(), json!(signed.key.to_string()));
        o.insert(
            "metrics".into(),
            outputs.metrics.clone().unwrap_or(Value::Null),
        );
        o.insert("computed_metrics".into(), computed.clone());
    }
    crate::write_report(out, &report)?;
    let mut event = s
        .audit
        .event(Action::TrainRun, AuditOutcome::Ok)
        .subject_path(model_dir.display().to_string())
        .subject_digest(signed.root.reference())
        .detail("dataset", spec.dataset.digest.reference().to_string())
        .detail("trainer", build.as_str())
        .detail("files", outputs.files.len())
        .detail("seconds", r.elapsed.as_secs_f64())
        .detail("computed_metrics", computed_summary(&computed));
    if let Some(ll) = &r.landlock {
        event = event.detail("landlock", ll.clone());
    }
    s.audit.record(event)?;
    s.audit.record(
        s.audit
            .event(Action::TrainProvenance, AuditOutcome::Ok)
            .subject_path(signed.provenance.display().to_string())
            .subject_digest(signed.root.reference())
            .detail("key", signed.key.to_string())
            .detail("signature", signed.signature.display().to_string()),
    )?;
    Ok(TrainOutcome::Trained(Box::new(TrainedRun {
        run: out.clone(),
        model_dir,
        files: outputs.files,
        root: signed.root,
        dataset: spec.dataset.digest,
        signature: signed.signature,
        provenance: signed.provenance,
        key: signed.key.to_string(),
        metrics: outputs.metrics,
        computed,
        build,
        elapsed: r.elapsed,
        missing,
        log,
        report,
    })))
}
