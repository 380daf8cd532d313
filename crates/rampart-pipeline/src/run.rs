//! `rampart pipeline run` as a library: the stages as one resumable, verified run.
//!
//! Each step calls the stage's library service in-process — `rampart_ingest::ingest`,
//! `rampart_train::service::train` (only the trainer runs as a child, in the sandbox), the
//! signature and provenance checks, `rampart_registry::service::{register, promote}` — with
//! typed inputs and results, the same calls the commands make, so the pipeline can do nothing
//! the commands would refuse, and each service audits itself. The [`crate::state`]
//! records each step's input fingerprint and output files; a re-run reuses a step only after
//! re-hashing its files and re-verifying its signatures, and stops loudly when something it
//! would reuse changed.

// `serde_json::Value`'s `Index` never panics (a missing key or index reads as null); it is
// the only indexing in this file.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rampart_audit::{Action, AuditError, AuditLog, Event, Outcome as AuditOutcome};
use rampart_crypto::age_file::Unlock;
use rampart_crypto::now_rfc3339 as now;
use rampart_home::Classify;
use rampart_home::verify::{self, Attestation, Trust, Verification};
use rampart_home::{Home, HomeError, Policy, Session, secure_fs};
use rampart_ingest::path_digest as file_digest;
use rampart_ingest::{ErrorKind, IngestError};
use rampart_sandbox::Sandbox;
use rampart_train::service::{ConfigFile, ServiceError, TrainOutcome, TrainRequest};
use serde_json::{Value, json};

use crate::outputs::{self, Gate, Ingested, StepOutput, Trained};
use crate::spec::{Spec, Target};
use crate::state::{self, Artifact, State, StepRecord, StepStatus};
use crate::{PipelineError, STEPS, report};

/// What a pipeline runs with: the home, its audit log, the keys for an encrypted source, the
/// sandbox and the executable that runs the built-in trainer.
pub struct Runner<'a> {
    /// The home (it must exist).
    pub home: &'a Home,
    /// Its audit log: every service records in it, and the report quotes this run's records.
    pub log: &'a AuditLog,
    /// Who runs the pipeline, as the audit records name them.
    pub actor: &'a str,
    /// The keys that decrypt an age-encrypted source or dataset, asked for only then.
    pub keys: &'a dyn Fn() -> Result<Unlock, IngestError>,
    /// The sandbox the trainer runs in.
    pub sandbox: &'a Sandbox,
    /// The executable that runs the built-in trainer (`rampart`).
    pub builtin: &'a Path,
    /// How a trained ONNX model is run to score it (a worker under the run's memory limit;
    /// `None`: in this process).
    pub onnx_worker: Option<rampart_train::service::Isolation>,
    /// Told each step's progress, one line at a time.
    pub progress: &'a dyn Fn(&str),
}

impl Runner<'_> {
    fn session<'s>(&'s self, policy: &'s Policy) -> Session<'s> {
        Session {
            home: self.home,
            policy,
            audit: rampart_audit::Auditor::new(Some(self.log), self.actor),
        }
    }

    fn event(&self, action: Action, outcome: AuditOutcome) -> Event {
        Event::new(self.actor, action, outcome)
    }

    /// The home's trusted keys: the signatures a step accepts.
    fn trusted_keys(&self) -> Result<Vec<rampart_crypto::PublicKey>, RunError> {
        let policy = self.home.load_policy()?;
        let keys = policy.trusted_public_keys();
        if keys.is_empty() {
            return Err(RunError::Input {
                message: format!("no trusted keys in {}", self.home.policy_path().display()),
                hint: Some("trust a key with `rampart trust add KEY.pem`"),
            });
        }
        Ok(keys)
    }
}

/// One step as a run shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepShown {
    /// `ingest`, `train`, `verify`, `register` or `promote`.
    pub name: String,
    /// `ran`, `reused`, `failed` or `not-run`.
    pub status: &'static str,
    /// Seconds it took, to a tenth.
    pub seconds: Option<f64>,
    /// What it did, or why it failed.
    pub summary: String,
}

/// What a run did.
#[derive(Debug)]
pub struct RunOutcome {
    /// The pipeline's name.
    pub pipeline: String,
    /// This run's id.
    pub run: String,
    /// Every step, in order.
    pub steps: Vec<StepShown>,
    /// The step that failed and why.
    pub failure: Option<(String, String)>,
    /// The model's name, version, stage and gates, once registered.
    pub registry: Option<Registered>,
    /// `report.json`.
    pub report_json: PathBuf,
    /// `report.html`.
    pub report_html: PathBuf,
}

/// Where a run's model is in the registry (the report's `registry`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Registered {
    /// The model's name.
    pub name: String,
    /// Its version.
    pub version: i64,
    /// Its stage (`none` when the promote step did not run).
    pub stage: String,
    /// The promotion's gates, as checked.
    pub gates: Value,
}

/// The directories a new home authorises as data roots for `spec`: those of its source and
/// its reference (the spec is what the user chose to run; an existing home keeps its own
/// roots). Each path must exist.
///
/// # Errors
/// [`RunError::Input`] naming a source or reference that cannot be opened.
pub fn data_roots(spec: &Spec) -> Result<Vec<PathBuf>, RunError> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for p in std::iter::once(&spec.source.path).chain(spec.checks.reference.as_ref()) {
        let real = std::fs::canonicalize(p).map_err(|e| RunError::Input {
            message: format!("cannot open {}: {e}", p.display()),
            hint: None,
        })?;
        let dir = if real.is_dir() {
            real
        } else {
            real.parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf)
        };
        if !roots.contains(&dir) {
            roots.push(dir);
        }
    }
    Ok(roots)
}

/// Why a pipeline could not run (a failed step is not one: it is the outcome's `failure`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spec or the state.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The request cannot be run as given.
    #[error("{message}")]
    Input {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: Option<&'static str>,
    },
    /// The home (its keys, policy or directories).
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The audit log: nothing is done that cannot be recorded.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Reading the source or the store failed for a reason outside the request.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Verifying a signature failed for a reason outside the request.
    #[error(transparent)]
    Verify(#[from] rampart_home::verify::VerifyError),
    /// The training service failed for a reason outside the request.
    #[error(transparent)]
    Train(#[from] ServiceError),
    /// A step's record does not hold what that step writes (a damaged state file).
    #[error(transparent)]
    Output(#[from] outputs::OutputError),
    /// The registry's storage failed.
    #[error("{what} failed: {source}")]
    Registry {
        /// The step.
        what: String,
        /// Why.
        source: rampart_registry::RegistryError,
    },
    /// A file of the pipeline could not be used.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else outside the request.
    #[error("{0}")]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl Classify for RunError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Pipeline(PipelineError::State { .. }) | Self::Output(_) => {
                ErrorKind::Verification
            }
            Self::Pipeline(_) | Self::Input { .. } => ErrorKind::Input,
            Self::Home(h) => h.kind(),
            Self::Ingest(i) => i.kind(),
            Self::Train(t) => t.kind(),
            Self::Verify(v) => v.kind(),
            _ => ErrorKind::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Pipeline(PipelineError::State { .. }) | Self::Output(_) => {
                Some("move the state file away to start the pipeline afresh".into())
            }
            Self::Pipeline(_) => Some(
                "see examples/credit-risk/pipeline.toml and `rampart pipeline run --help`".into(),
            ),
            Self::Input { hint, .. } => hint.map(str::to_owned),
            Self::Ingest(i) => i.hint(),
            Self::Train(t) => t.hint(),
            Self::Verify(v) => v.hint(),
            _ => None,
        }
    }
}

/// A refusal as a step's failure text, with what to do when there is something to say.
fn hinted(e: &dyn std::fmt::Display, hint: Option<String>) -> String {
    match hint {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> RunError {
    RunError::Internal(Box::new(e))
}

/// A step's output as its record keeps it.
fn to_value(out: &impl serde::Serialize) -> Result<Value, RunError> {
    serde_json::to_value(out).map_err(internal)
}

/// The columns a pipeline never trains on: the schema's unique (identifier) and personal ones.
fn schema_ignores(schema_path: &Path) -> Result<Vec<String>, RunError> {
    let (schema, _) = rampart_ingest::load_schema(schema_path)?;
    Ok(schema
        .columns
        .iter()
        .filter(|c| c.unique || c.personal)
        .map(|c| c.name.clone())
        .collect())
}

/// What a reused step's re-check found.
enum Reuse {
    /// Everything still verifies.
    Valid,
    /// Something legitimately moved on (the model left its stage): run the step again.
    Stale(String),
    /// Something it produced changed: stop.
    Tampered(String),
}

/// The step's outputs, or why it failed.
type StepResult = Result<(Value, Vec<Artifact>), String>;

struct Pipeline<'a> {
    env: &'a Runner<'a>,
    /// The home's root, canonical.
    home: PathBuf,
    spec: Spec,
    spec_path: PathBuf,
    dir: PathBuf,
    run_id: String,
}

impl Pipeline<'_> {
    fn inputs(&self, step: &str, st: &State) -> Result<BTreeMap<String, String>, RunError> {
        let s = &self.spec;
        // What an earlier step produced (nothing yet: an empty input).
        let ingested = outputs::recorded::<Ingested>(st)?;
        let trained = outputs::recorded::<Trained>(st)?;
        let registered = outputs::recorded::<outputs::Registered>(st)?;
        let dataset = || {
            ingested
                .as_ref()
                .map(|i| i.dataset.clone())
                .unwrap_or_default()
        };
        let root = || trained.as_ref().map(|t| t.root.clone()).unwrap_or_default();
        let provenance = || {
            trained
                .as_ref()
                .and_then(|t| t.provenance_sha256.clone())
                .unwrap_or_default()
        };
        let mut m = BTreeMap::new();
        match step {
            "ingest" => {
                m.insert("source".into(), file_digest(&s.source.path)?);
                m.insert("source_path".into(), s.source.path.display().to_string());
                m.insert("schema".into(), file_digest(&s.source.schema)?);
                let sig =
                    s.source.signature.clone().unwrap_or_else(|| {
                        rampart_crypto::oms::default_signature_path(&s.source.path)
                    });
                if sig.is_file() {
                    m.insert("signature".into(), file_digest(&sig)?);
                }
                if let Some(r) = &s.checks.reference {
                    m.insert("reference".into(), file_digest(r)?);
                }
                m.insert("[source]".into(), Spec::section_json(&s.source));
                m.insert("[pii]".into(), Spec::section_json(&s.pii));
                m.insert("[checks]".into(), Spec::section_json(&s.checks));
            }
            "train" => {
                m.insert("dataset".into(), dataset());
                m.insert("schema".into(), file_digest(&s.source.schema)?);
                m.insert("[train]".into(), Spec::section_json(&s.train));
                if let Some(t) = &s.train.trainer {
                    for p in &t.read {
                        m.insert(format!("read:{}", p.display()), file_digest(p)?);
                    }
                }
            }
            "verify" => {
                m.insert("dataset".into(), dataset());
                m.insert("model_root".into(), root());
                m.insert("provenance".into(), provenance());
            }
            "register" => {
                m.insert("model_root".into(), root());
                m.insert("provenance".into(), provenance());
                m.insert("name".into(), s.model_name().to_owned());
            }
            _ => {
                let r = registered.as_ref();
                m.insert(
                    "model".into(),
                    r.map(|r| r.model.clone()).unwrap_or_default(),
                );
                m.insert(
                    "version".into(),
                    r.map(|r| r.version.to_string()).unwrap_or_default(),
                );
                m.insert(
                    "metrics".into(),
                    trained
                        .as_ref()
                        .and_then(|t| t.metrics_sha256.clone())
                        .unwrap_or_default(),
                );
                m.insert("[promote]".into(), Spec::section_json(&s.promote));
            }
        }
        Ok(m)
    }

    fn execute(&self, step: &str, st: &State) -> Result<StepResult, RunError> {
        match step {
            "ingest" => self.ingest(),
            "train" => self.train(st),
            "verify" => self.verify(st).map(|r| r.map(|v| (v, Vec::new()))),
            "register" => self.register(st),
            _ => self.promote(st),
        }
    }

    /// The ingest service, with the spec's `[source]`, `[pii]` and `[checks]` as its request.
    fn ingest(&self) -> Result<StepResult, RunError> {
        use rampart_ingest::{IngestOutcome, IngestRequest, RejectReason};
        let s = &self.spec;
        let fail_on = match s.checks.fail_on.as_deref().filter(|_| s.checks.run) {
            Some(f) => match f.parse::<rampart_data::poison::Severity>() {
                Ok(t) => Some(t),
                Err(e) => return Ok(Err(format!("[checks] fail_on: {e}"))),
            },
            None => None,
        };
        let pairs = |m: &BTreeMap<String, String>| -> Vec<String> {
            m.iter().map(|(k, v)| format!("{k}={v}")).collect()
        };
        let req = IngestRequest {
            signature: s.source.signature.clone(),
            expect_sha256: s.source.sha256.clone(),
            max_reject_rate: s.source.max_reject_rate,
            redact: s
                .pii
                .redact
                .then(|| rampart_ingest::redact::RedactOverrides {
                    default: s.pii.default.clone(),
                    entities: pairs(&s.pii.entities),
                    columns: pairs(&s.pii.columns),
                    recipients: Vec::new(),
                }),
            checks: s.checks.run,
            reference: s.checks.reference.clone().filter(|_| s.checks.run),
            fail_on,
            ..IngestRequest::new(&s.source.path, &s.source.schema)
        };
        let env = self.env;
        let keys = (env.keys)()?;
        let policy = env.home.load_policy()?;
        let outcome = match rampart_ingest::ingest(&env.session(&policy), &req, &keys) {
            Ok(o) => o,
            Err(e) if e.kind() == rampart_ingest::ErrorKind::Internal => return Err(e.into()),
            Err(e) => {
                return Ok(Err(format!("ingest refused: {}", hinted(&e, e.hint()))));
            }
        };
        let i = match outcome {
            IngestOutcome::Stored(i) => i,
            IngestOutcome::Rejected(rampart_ingest::Rejected {
                reason: RejectReason::RejectRate { rate, max },
                ..
            }) => {
                return Ok(Err(format!(
                    "ingest refused: {:.2}% of the rows were rejected, above max_reject_rate {max}; nothing was stored",
                    rate * 100.0
                )));
            }
            IngestOutcome::Rejected(rampart_ingest::Rejected {
                reason: RejectReason::Checks { checks, threshold },
                ..
            }) => {
                let fired: Vec<String> = checks
                    .checks
                    .iter()
                    .filter(|c| c.severity >= threshold)
                    .map(|c| format!("{} ({:?}): {}", c.id, c.severity, c.summary))
                    .collect();
                return Ok(Err(format!(
                    "ingest refused: the poisoning checks fired; nothing was stored; checks: {}",
                    fired.join("; ")
                )));
            }
        };
        let c = &i.committed;
        let arts = [Artifact::of(&c.data), Artifact::of(&c.manifest)]
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(internal)?;
        let r = &i.report;
        let summary = format!(
            "{} rows = {} accepted + {} quarantined; stored {}",
            r.rows_read,
            r.accepted,
            r.rejected,
            i.dataset()
        );
        let out = Ingested {
            dataset: i.dataset().to_string(),
            data: c.data.clone(),
            manifest: c.manifest.clone(),
            integrity: i.integrity.name().to_owned(),
            summary,
        };
        Ok(Ok((to_value(&out)?, arts)))
    }

    fn train(&self, st: &State) -> Result<StepResult, RunError> {
        let dataset = outputs::required::<Ingested>(st)?.dataset;
        let mut ignore = schema_ignores(&self.spec.source.schema)?;
        for c in &self.spec.train.ignore {
            if !ignore.contains(c) {
                ignore.push(c.clone());
            }
        }
        let runs = self.home.join("runs");
        secure_fs::create_private_dir(&runs)?;
        let out = runs.join(format!(
            "pipeline-{}-{}",
            self.spec.pipeline.name, self.run_id
        ));
        let config = self
            .spec
            .train_config(&dataset, &ignore, &out)
            .map_err(internal)?;
        let config_path = self.dir.join("train.toml");
        secure_fs::atomic_write(&config_path, config.as_bytes(), 0o600)?;
        let parsed =
            rampart_train::config::TrainConfig::parse(&config, &config_path).map_err(internal)?;
        let recipe = rampart_train::service::recipe(
            &rampart_train::service::RecipeFlags::default(),
            Some((&parsed, &config_path)),
            self.env.builtin,
            self.dir.clone(),
        )?;
        let mut req = TrainRequest::new(parsed.data.dataset.clone(), recipe);
        req.label.clone_from(&parsed.data.label);
        req.ignore.clone_from(&parsed.data.ignore);
        req.onnx_worker.clone_from(&self.env.onnx_worker);
        req.config = Some(ConfigFile {
            path: &config_path,
            text: &config,
            parsed: &parsed,
        });
        let env = self.env;
        let policy = env.home.load_policy()?;
        let outcome = rampart_train::service::train(
            &env.session(&policy),
            &req,
            rampart_ingest::open::Keys::Lazy(env.keys),
            env.sandbox,
            &mut |_, _| {},
        );
        let trained = match outcome {
            Ok(TrainOutcome::Trained(t)) => t,
            Ok(TrainOutcome::Failed(f)) => {
                return Ok(Err(format!(
                    "training failed: {} (run directory {}, log {})",
                    f.reason,
                    f.run.display(),
                    f.log.display()
                )));
            }
            Err(e) if e.kind() == rampart_ingest::ErrorKind::Internal => return Err(e.into()),
            Err(e) => {
                return Ok(Err(format!(
                    "training refused: {} (run directory {})",
                    hinted(&e, e.hint()),
                    out.display(),
                )));
            }
        };
        let arts = Artifact::all_in(&out).map_err(internal)?;
        let find = |name: &str| {
            arts.iter()
                .find(|a| a.path == out.join(name))
                .map(|a| a.sha256.clone())
        };
        let metrics = trained.metrics.clone().unwrap_or_default();
        let summary = format!(
            "{} in the sandbox; {}",
            metrics["kind"].as_str().unwrap_or("trainer"),
            rampart_train::service::computed_summary(&trained.computed)
        );
        let done = Trained {
            run_dir: out.clone(),
            root: trained.root.to_hex(),
            provenance_sha256: find("provenance.json"),
            metrics_sha256: find("metrics.json"),
            sandbox: trained.report["sandbox"].clone(),
            key: trained.key.clone(),
            summary,
        };
        Ok(Ok((to_value(&done)?, arts)))
    }

    /// The signature over the model and the signed provenance, checked with the home's trusted
    /// keys, and the provenance tied to the ingested dataset and to exactly these model files.
    fn verify(&self, st: &State) -> Result<Result<Value, String>, RunError> {
        let dataset = outputs::required::<Ingested>(st)?.dataset;
        let run = outputs::required::<Trained>(st)?.run_dir;
        let model = run.join("model");
        let sig = run.join("model.sig");
        let prov = run.join("provenance.json");
        let env = self.env;
        let policy = env.home.load_policy()?;
        // The signature, with the home's trust, as `rampart verify` checks it (audited there).
        let opts = rampart_crypto::oms::VerifyOptions::new(&sig);
        let v =
            match verify::verify_model(&env.session(&policy), &model, Trust::Home, opts, &|_| {}) {
                Ok(Verification::Verified(v)) => v,
                Ok(Verification::Failed(e)) => {
                    return Ok(Err(format!(
                        "the signature {} does not verify: {e}",
                        sig.display()
                    )));
                }
                Err(e) if e.is_user_error() => return Ok(Err(e.to_string())),
                Err(e) => return Err(e.into()),
            };
        // The provenance, with the home's keys, as `rampart attest verify` checks it.
        let a = match verify::verify_attestation(&env.session(&policy), &prov, Trust::Home, None) {
            Ok(Attestation::Verified(a)) => a,
            Ok(Attestation::Failed(why)) => return Ok(Err(format!("{}: {why}", prov.display()))),
            Err(e) if e.is_user_error() => return Ok(Err(e.to_string())),
            Err(e) => return Err(e.into()),
        };
        let in_prov = a
            .dependencies
            .iter()
            .find(|d| d.name == "dataset")
            .map(|d| d.digest.reference().to_string())
            .unwrap_or_default();
        if in_prov != dataset {
            return Ok(Err(format!(
                "the provenance names dataset {in_prov:?}, but the pipeline ingested {dataset}"
            )));
        }
        // Every model file is a subject of the provenance, with its digest.
        let subjects: BTreeMap<String, String> = a
            .subjects
            .iter()
            .map(|s| (s.name.clone(), s.digest.to_hex()))
            .collect();
        let files = Artifact::all_in(&model).map_err(internal)?;
        for f in &files {
            let name = f
                .path
                .strip_prefix(&model)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let want = subjects.get(&name).map(|h| format!("sha256:{h}"));
            if want.as_deref() != Some(f.sha256.as_str()) {
                return Ok(Err(format!(
                    "{}: not in the provenance with this digest ({})",
                    f.path.display(),
                    f.sha256
                )));
            }
        }
        let summary = format!(
            "signature and provenance verify (key {}); provenance dataset = ingested {dataset}",
            v.key
        );
        let done = outputs::Verified {
            signature: outputs::Checked {
                path: sig,
                key: v.key.to_string(),
                verified: true,
                root: Some(v.signed.subject_digest.to_hex()),
                dataset: None,
                subjects: None,
            },
            provenance: outputs::Checked {
                path: prov,
                key: a.key.to_string(),
                verified: true,
                root: None,
                dataset: Some(dataset),
                subjects: Some(subjects.len()),
            },
            summary,
        };
        Ok(Ok(to_value(&done)?))
    }

    fn registry(&self) -> Result<rampart_registry::Registry, RunError> {
        let policy = self.env.home.load_policy()?;
        rampart_registry::Location::of(self.env.home, &policy)
            .and_then(|l| l.open())
            .map_err(internal)
    }

    /// A registry error as a step's failure, or as the pipeline's own error when the
    /// environment failed.
    fn registry_failure(
        e: rampart_registry::RegistryError,
        what: &str,
    ) -> Result<String, RunError> {
        use rampart_registry::RegistryError as E;
        match e {
            E::Db(_) | E::Io { .. } | E::Audit(_) => Err(RunError::Registry {
                what: what.to_owned(),
                source: e,
            }),
            other => Ok(format!("{what} refused: {other}")),
        }
    }

    fn register(&self, st: &State) -> Result<StepResult, RunError> {
        let run = outputs::required::<Trained>(st)?.run_dir;
        let name = self.spec.model_name();
        let env = self.env;
        let policy = env.home.load_policy()?;
        let mut reg = self.registry()?;
        let got = rampart_registry::service::register(
            &env.session(&policy),
            &mut reg,
            &rampart_registry::service::RegisterRequest {
                path: &run,
                name,
                signature: None,
                provenance: None,
                metrics: None,
            },
        );
        match got {
            Ok(v) => {
                let done = outputs::Registered {
                    model: name.to_owned(),
                    version: v.version,
                    root: v.root.to_hex(),
                    files: serde_json::to_value(&v.files).map_err(internal)?,
                    summary: format!("{name}@{}", v.version),
                };
                Ok(Ok((to_value(&done)?, Vec::new())))
            }
            Err(e) => Self::registry_failure(e, "register").map(Err),
        }
    }

    /// The training metrics as the signed provenance records them (rampart's own scores on
    /// held-out rows, and the trainer's `metrics.json`), read only after the attestation
    /// verifies with the home's trusted keys: the metric gate never trusts an unsigned file.
    fn recorded(
        &self,
        st: &State,
    ) -> Result<Result<rampart_ml::metrics::Recorded, String>, RunError> {
        let run = outputs::required::<Trained>(st)?.run_dir;
        let prov = run.join("provenance.json");
        let bytes = match read_bundle(&prov) {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        let keys = self.env.trusted_keys()?;
        match rampart_crypto::provenance::verify_attestation(&bytes, &keys) {
            Ok(a) => Ok(Ok(rampart_ml::metrics::Recorded::of(&a.statement))),
            Err(e) => Ok(Err(format!("{}: {e}", prov.display()))),
        }
    }

    /// The metrics as the report shows them: the trainer's record (model kind, rows) with
    /// rampart's computed scores over it, and `source` saying whose the scores are.
    fn metrics(&self, st: &State) -> Result<Result<Value, String>, RunError> {
        Ok(self.recorded(st)?.map(|r| {
            let mut shown = r.reported.clone().unwrap_or_else(|| json!({}));
            if let Value::Object(o) = &mut shown {
                match (r.scores(), &r.computed) {
                    (Some(Value::Object(s)), computed) => {
                        for (k, v) in s {
                            o.insert(k.clone(), v.clone());
                        }
                        if let Some(f) = computed
                            .as_ref()
                            .and_then(|c| c.pointer("/holdout/fraction"))
                        {
                            o.insert("holdout".into(), f.clone());
                        }
                        o.insert("source".into(), json!("computed"));
                    }
                    (_, computed) => {
                        o.insert("source".into(), json!("self-reported"));
                        if let Some(w) = computed.as_ref().and_then(|c| c.get("not_scored")) {
                            o.insert("not_scored".into(), w.clone());
                        }
                    }
                }
            }
            shown
        }))
    }

    fn promote(&self, st: &State) -> Result<StepResult, RunError> {
        let registered = outputs::required::<outputs::Registered>(st)?;
        let reference = registered.reference();
        // The pipeline's own gate first: the training metrics, computed by rampart on held-out
        // rows (the trainer's own count only below production, and say so).
        let recorded = match self.recorded(st)? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        let require = matches!(self.spec.promote.to, Target::Production);
        let (metrics, source) = if self.spec.promote.min_metrics.is_empty() {
            (Value::Null, rampart_ml::metrics::Source::Computed)
        } else {
            match recorded.for_gate(require) {
                Ok((m, s)) => (m.clone(), s),
                Err(e) => {
                    return Ok(Err(format!(
                        "{reference} stays where it is: the pipeline's metric gate has no metrics to check: {e}"
                    )));
                }
            }
        };
        let mut gates = Vec::new();
        let mut failed = Vec::new();
        for (k, bound) in &self.spec.promote.min_metrics {
            let check = rampart_ml::metrics::BoundCheck::of(&metrics, k, *bound);
            let (ok, detail) = (check.ok(), format!("{check} ({source})"));
            if !ok {
                failed.push(detail.clone());
            }
            gates.push(Gate {
                gate: format!("pipeline.min_metrics.{k}"),
                ok,
                detail,
                stage: None,
            });
        }
        if !failed.is_empty() {
            return Ok(Err(format!(
                "{reference} stays where it is: the pipeline's gate failed: {}",
                failed.join("; ")
            )));
        }
        use rampart_registry::Stage;
        let stages: &[(&str, Stage)] = match self.spec.promote.to {
            Target::None => &[],
            Target::Staging => &[("staging", Stage::Staging)],
            Target::Production => &[
                ("staging", Stage::Staging),
                ("production", Stage::Production),
            ],
        };
        let mut stage = "none".to_owned();
        let env = self.env;
        let policy = env.home.load_policy()?;
        let session = env.session(&policy);
        let mut reg = self.registry()?;
        let store = rampart_ingest::DatasetStore::of(env.home);
        let lineage = |l: &rampart_registry::LineageEntry| store.find(&l.sha256).is_some();
        for (to, target) in stages {
            let got = rampart_registry::service::promote(
                &session, &mut reg, &reference, *target, &lineage,
            );
            let checks = match got {
                Ok(rampart_registry::service::Promotion::Promoted { checks, .. }) => checks,
                Ok(rampart_registry::service::Promotion::Refused { checks, .. }) => {
                    let bad: Vec<String> = checks
                        .iter()
                        .filter(|g| !g.ok)
                        .map(|g| format!("{}: {}", g.gate, g.detail))
                        .collect();
                    gates.extend(checks.iter().map(|g| Gate::of(g, to)));
                    return Ok(Err(format!(
                        "{reference} NOT promoted to {to}: {}",
                        bad.join("; ")
                    )));
                }
                Err(e) => return Self::registry_failure(e, "promote").map(Err),
            };
            gates.extend(checks.iter().map(|g| Gate::of(g, to)));
            stage = (*to).to_owned();
        }
        let summary = format!("{reference} in {stage} ({} gate(s) passed)", gates.len());
        let done = outputs::Promoted {
            model: registered.model,
            version: registered.version,
            stage,
            gates,
            summary,
        };
        Ok(Ok((to_value(&done)?, Vec::new())))
    }

    /// Re-checks what a reused step produced, beyond its files' digests.
    fn recheck(&self, step: &str, rec: &StepRecord, st: &State) -> Result<Reuse, RunError> {
        // A state copied with its home names the old home's files: build afresh here.
        let home = &self.home;
        if let Some(a) = rec.artifacts.iter().find(|a| !a.path.starts_with(home)) {
            return Ok(Reuse::Stale(format!(
                "{} is outside this home {}",
                a.path.display(),
                home.display()
            )));
        }
        for a in &rec.artifacts {
            if let Err(e) = a.verify() {
                return Ok(Reuse::Tampered(e.to_string()));
            }
        }
        let o = &rec.outputs;
        // A record this rampart cannot read (an older one's): the step runs again.
        macro_rules! typed {
            ($t:ty) => {
                match outputs::read::<$t>(<$t as StepOutput>::STEP, o) {
                    Ok(v) => v,
                    Err(e) => return Ok(Reuse::Stale(e.to_string())),
                }
            };
        }
        match step {
            "ingest" => {
                // The stored data still decrypts to its content address.
                let i = typed!(Ingested);
                let (data, want) = (i.data, i.dataset);
                let (id, _) = self.env.home.age_identity()?;
                let keys = rampart_crypto::age_file::Unlock::identities(vec![id.as_age().clone()]);
                let opened = std::fs::File::open(&data)
                    .map_err(|e| e.to_string())
                    .and_then(|f| {
                        rampart_crypto::age_file::decrypting_reader(
                            rampart_crypto::age_file::buffered(f),
                            &keys,
                        )
                        .map_err(|e| e.to_string())
                    });
                let mut reader = match opened {
                    Ok(r) => r,
                    Err(e) => {
                        return Ok(Reuse::Tampered(format!(
                            "{} does not decrypt: {e}",
                            data.display()
                        )));
                    }
                };
                let mut h = rampart_crypto::Sha256Hasher::new();
                if let Err(e) = std::io::copy(&mut reader, &mut h) {
                    return Ok(Reuse::Tampered(format!(
                        "{} does not decrypt: {e}",
                        data.display()
                    )));
                }
                let got = h.finish().reference().to_string();
                if got != want {
                    return Ok(Reuse::Tampered(format!(
                        "{} decrypts to {got}, not the dataset {want}",
                        data.display()
                    )));
                }
                Ok(Reuse::Valid)
            }
            // The signature and provenance over these files are re-verified by the verify
            // step, which always follows (and always re-checks in full).
            "train" => Ok(Reuse::Valid),
            "verify" => match self.verify(st)? {
                Ok(_) => Ok(Reuse::Valid),
                Err(e) => Ok(Reuse::Tampered(e)),
            },
            "register" => {
                let r = typed!(outputs::Registered);
                let reference = r.reference();
                let shown = match self.shown(&reference)? {
                    Ok(v) => v,
                    Err(e) => return Ok(Reuse::Tampered(e)),
                };
                let files = serde_json::to_value(&shown.files).map_err(internal)?;
                if shown.root.to_hex() != r.root || files != r.files {
                    return Ok(Reuse::Tampered(format!(
                        "{reference} in the registry is not the version this pipeline registered (root {}, recorded {})",
                        shown.root.to_hex(),
                        r.root
                    )));
                }
                // Materialising the version re-hashes every stored blob.
                let tmp = tempfile::Builder::new()
                    .prefix("checkout-")
                    .tempdir_in(&self.dir)
                    .map_err(internal)?;
                let reg = self.registry()?;
                let checked = reg
                    .resolve(&reference)
                    .and_then(|v| reg.materialise(&v, tmp.path()));
                if let Err(e) = checked {
                    return Ok(Reuse::Tampered(format!("{reference}: {e}")));
                }
                Ok(Reuse::Valid)
            }
            _ => {
                let promoted = typed!(outputs::Promoted);
                let want = promoted.stage.as_str();
                if want == "none" {
                    return Ok(Reuse::Valid);
                }
                let reference = format!("{}@{}", promoted.model, promoted.version);
                let shown = match self.shown(&reference)? {
                    Ok(v) => v,
                    Err(e) => return Ok(Reuse::Tampered(e)),
                };
                let now = shown.stage.as_str();
                if now == want || (want == "staging" && now == "production") {
                    Ok(Reuse::Valid)
                } else {
                    Ok(Reuse::Stale(format!(
                        "{reference} is now in {now}, not {want}"
                    )))
                }
            }
        }
    }

    /// The version a step recorded, as the registry has it now.
    fn shown(
        &self,
        reference: &str,
    ) -> Result<Result<rampart_registry::VersionInfo, String>, RunError> {
        Ok(self
            .registry()?
            .resolve(reference)
            .map_err(|e| format!("{reference}: {e}")))
    }
}

/// A signature bundle or attestation of a run: a regular file of at most the bundle limit.
fn read_bundle(path: &Path) -> Result<Vec<u8>, String> {
    secure_fs::read_limited(path, rampart_crypto::dsse::MAX_BUNDLE_BYTES).map_err(|e| e.to_string())
}

/// Runs the pipeline `spec_path` describes in `env`'s home (which must exist: the caller
/// creates it and authorises the spec's data directories when there is none). `from` forces
/// that step and every later one to run again. The state, `report.json` and `report.html` are
/// written in `HOME/pipelines/NAME/`.
///
/// # Errors
/// The pipeline could not run (its spec, its lock, its state, the home, the audit log); a
/// failed step is not an error but the outcome's `failure`.
pub fn run(env: &Runner<'_>, spec_path: &Path, from: Option<&str>) -> Result<RunOutcome, RunError> {
    // Loaded by its absolute path, so every path in it is absolute too.
    let spec_path = std::fs::canonicalize(spec_path).unwrap_or_else(|_| spec_path.to_path_buf());
    let spec = Spec::load(&spec_path)?;
    let force_from = match from {
        Some(f) => Some(
            STEPS
                .iter()
                .position(|s| *s == f)
                .ok_or_else(|| RunError::Input {
                    message: format!("--from {f:?}: the steps are {}", STEPS.join(", ")),
                    hint: None,
                })?,
        ),
        None => None,
    };
    // Every path the pipeline records is absolute, so the state means the same from any
    // working directory.
    let home = env.home.root();
    let home = std::fs::canonicalize(home).map_err(|source| RunError::Io {
        path: home.to_path_buf(),
        source,
    })?;
    let dir = home.join("pipelines").join(&spec.pipeline.name);
    secure_fs::create_private_dir(&dir)?;
    // One run of a pipeline at a time.
    let lock_path = dir.join("lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| RunError::Io {
            path: lock_path,
            source,
        })?;
    lock.try_lock().map_err(|_| RunError::Input {
        message: format!(
            "pipeline {} is already running in this home",
            spec.pipeline.name
        ),
        hint: Some("wait for it to finish (`rampart pipeline status`)"),
    })?;
    let state_path = dir.join("state.json");
    let mut st =
        State::load(&state_path)?.unwrap_or_else(|| State::new(&spec.pipeline.name, &spec_path));
    st.runs += 1;
    st.spec.clone_from(&spec_path);
    let run_id = format!(
        "{}-{}",
        time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default(),
        st.runs
    );
    st.last_run = Some(run_id.clone());
    let started = now();
    let log = env.log;
    let first = log.append(
        env.event(Action::PipelineRun, AuditOutcome::Ok)
            .subject_path(spec_path.display().to_string())
            .subject_digest(file_digest(&spec_path)?)
            .detail("pipeline", spec.pipeline.name.clone())
            .detail("run", run_id.clone())
            .detail("phase", "start"),
    )?;
    let p = Pipeline {
        env,
        home: home.clone(),
        spec,
        spec_path: spec_path.clone(),
        dir: dir.clone(),
        run_id: run_id.clone(),
    };
    let save = |st: &State| -> Result<(), RunError> {
        let bytes = st.to_bytes().map_err(internal)?;
        Ok(secure_fs::atomic_write(&state_path, &bytes, 0o600)?)
    };
    save(&st)?;
    let mut shown: Vec<StepShown> = Vec::new();
    let mut failure: Option<(String, String)> = None;
    let total = STEPS.len();
    let progress = env.progress;
    for (i, step) in STEPS.iter().enumerate() {
        let step = *step;
        let inputs = p.inputs(step, &st)?;
        let fp = state::fingerprint(step, &inputs);
        let forced = force_from.is_some_and(|f| i >= f);
        let t0 = Instant::now();
        let t_start = now();
        let prior = st
            .steps
            .get(step)
            .filter(|r| r.status == StepStatus::Ok && r.fingerprint == fp && !forced)
            .cloned();
        let label = format!("[{}/{total}] {step:<9}", i + 1);
        let mut reused = false;
        let mut tampered = false;
        // A step that failed its re-verification stays failed until it is rebuilt on purpose.
        let refused = st
            .steps
            .get(step)
            .filter(|r| r.status == StepStatus::Failed && r.outputs["tampered"] == true && !forced)
            .and_then(|r| r.error.clone());
        let result: StepResult = match (prior, refused) {
            (_, Some(why)) => {
                tampered = true;
                Err(why)
            }
            (Some(rec), None) => match p.recheck(step, &rec, &st)? {
                Reuse::Valid => {
                    reused = true;
                    Ok((rec.outputs.clone(), rec.artifacts.clone()))
                }
                Reuse::Tampered(why) => Err({
                    tampered = true;
                    format!(
                        "what this step produced before no longer verifies: {why}. Nothing was \
                     rebuilt over it: inspect it, then run again with --from {step} to rebuild \
                     from this step"
                    )
                }),
                Reuse::Stale(why) => {
                    progress(&format!("{label} re-running: {why}"));
                    p.execute(step, &st)?
                }
            },
            (None, None) => {
                progress(&format!("{label} running…"));
                p.execute(step, &st)?
            }
        };
        let seconds = t0.elapsed().as_secs_f64();
        match result {
            Ok((outputs, artifacts)) => {
                let summary = outputs::summary(&outputs);
                let status = if reused { "reused" } else { "ran" };
                progress(&format!(
                    "{label} {} ({seconds:.1} s) {summary}",
                    if reused { "reused, verified" } else { "ok" }
                ));
                log.append(
                    env.event(Action::PipelineStep, AuditOutcome::Ok)
                        .subject_digest(fp.clone())
                        .detail("pipeline", p.spec.pipeline.name.clone())
                        .detail("run", run_id.clone())
                        .detail("step", step)
                        .detail("reused", reused)
                        .detail("artifacts", artifacts.len()),
                )?;
                if !reused {
                    st.steps.insert(
                        step.to_owned(),
                        StepRecord {
                            status: StepStatus::Ok,
                            fingerprint: fp,
                            inputs,
                            started: t_start,
                            finished: now(),
                            seconds,
                            outputs,
                            artifacts,
                            error: None,
                        },
                    );
                    save(&st)?;
                }
                shown.push(StepShown {
                    name: step.to_owned(),
                    status,
                    seconds: Some((seconds * 10.0).round() / 10.0),
                    summary,
                });
            }
            Err(why) => {
                progress(&format!("{label} FAILED ({seconds:.1} s): {why}"));
                log.append(
                    env.event(Action::PipelineStep, AuditOutcome::Failed)
                        .subject_digest(fp.clone())
                        .detail("pipeline", p.spec.pipeline.name.clone())
                        .detail("run", run_id.clone())
                        .detail("step", step)
                        .detail("reason", why.clone()),
                )?;
                // A failed step's earlier good record is kept aside: what it produced stays
                // on disk and in the state, for inspection.
                let mut rec = StepRecord {
                    status: StepStatus::Failed,
                    fingerprint: fp,
                    inputs,
                    started: t_start,
                    finished: now(),
                    seconds,
                    outputs: Value::Null,
                    artifacts: Vec::new(),
                    error: Some(why.clone()),
                };
                if let Some(old) = st.steps.get(step)
                    && old.status == StepStatus::Ok
                {
                    rec.outputs = json!({"previous": old.outputs});
                    rec.artifacts.clone_from(&old.artifacts);
                } else if let Some(old) = st.steps.get(step) {
                    rec.outputs = old.outputs.clone();
                    rec.artifacts.clone_from(&old.artifacts);
                }
                if tampered && let Value::Object(o) = &mut rec.outputs {
                    o.insert("tampered".into(), json!(true));
                } else if tampered {
                    rec.outputs = json!({"tampered": true});
                }
                st.steps.insert(step.to_owned(), rec);
                save(&st)?;
                shown.push(StepShown {
                    name: step.to_owned(),
                    status: "failed",
                    seconds: Some((seconds * 10.0).round() / 10.0),
                    summary: why.clone(),
                });
                failure = Some((step.to_owned(), why));
                break;
            }
        }
    }
    for step in STEPS.iter().skip(shown.len()) {
        shown.push(StepShown {
            name: (*step).to_owned(),
            status: "not-run",
            seconds: None,
            summary: String::new(),
        });
    }
    let outcome = if failure.is_some() { "failed" } else { "ok" };
    log.append(
        env.event(
            Action::PipelineRun,
            if failure.is_some() {
                AuditOutcome::Failed
            } else {
                AuditOutcome::Ok
            },
        )
        .subject_path(spec_path.display().to_string())
        .detail("pipeline", p.spec.pipeline.name.clone())
        .detail("run", run_id.clone())
        .detail("phase", "end")
        .detail("outcome", outcome)
        .detail("failed_step", failure.as_ref().map(|(s, _)| s.clone())),
    )?;
    let report = build_report(&p, &st, &shown, failure.as_ref(), &started, first.seq)?;
    let json_path = dir.join("report.json");
    let html_path = dir.join("report.html");
    let mut bytes = serde_json::to_vec_pretty(&report).map_err(internal)?;
    bytes.push(b'\n');
    secure_fs::atomic_write(&json_path, &bytes, 0o600)?;
    secure_fs::atomic_write(&html_path, report::html(&report).as_bytes(), 0o600)?;
    let registry = report
        .get("registry")
        .cloned()
        .map(serde_json::from_value::<Registered>)
        .transpose()
        .map_err(internal)?;
    Ok(RunOutcome {
        pipeline: p.spec.pipeline.name.clone(),
        run: run_id,
        steps: shown,
        failure,
        registry,
        report_json: json_path,
        report_html: html_path,
    })
}

fn build_report(
    p: &Pipeline<'_>,
    st: &State,
    shown: &[StepShown],
    failure: Option<&(String, String)>,
    started: &str,
    first_seq: u64,
) -> Result<Value, RunError> {
    let ingested = outputs::recorded::<Ingested>(st)?;
    let trained = outputs::recorded::<Trained>(st)?;
    let verified = outputs::recorded::<outputs::Verified>(st)?;
    let registered = outputs::recorded::<outputs::Registered>(st)?;
    let promoted = outputs::recorded::<outputs::Promoted>(st)?;
    let mut r = json!({
        "type": "rampart.pipeline.report/v1",
        "pipeline": p.spec.pipeline.name,
        "run": p.run_id,
        "spec": p.spec_path,
        "home": p.home,
        "started": started,
        "finished": now(),
        "outcome": if failure.is_some() { "failed" } else { "ok" },
        "failed_step": failure.map(|(s, _)| s),
        "reason": failure.map(|(_, w)| w),
        "steps": shown,
    });
    let Value::Object(m) = &mut r else {
        return Ok(r);
    };
    if let Some(i) = &ingested {
        let text = secure_fs::read_small_file(&i.manifest)?;
        let manifest: rampart_ingest::DatasetManifest =
            serde_json::from_str(&text).map_err(|e| PipelineError::State {
                path: i.manifest.clone(),
                reason: e.to_string(),
            })?;
        // The manifest's `pii` summary is the engine's report, whatever fields it holds.
        let pii = &manifest.pii;
        m.insert(
            "data".into(),
            json!({
                "source": manifest.source, "dataset": i.dataset, "schema": manifest.schema,
                "counts": manifest.counts,
                "pii": {"findings": pii.get("findings"), "redacted": pii.get("redacted"),
                        "by_entity": pii.get("by_entity"), "columns": manifest.pii_columns},
                "checks": manifest.checks_report,
                "manifest": i.manifest,
            }),
        );
    }
    if let Some(t) = &trained {
        m.insert(
            "training".into(),
            json!({"metrics": p.metrics(st)?.unwrap_or(Value::Null), "run_dir": t.run_dir, "sandbox": t.sandbox}),
        );
    }
    if let (Some(t), Some(v)) = (&trained, &verified) {
        let model = t.run_dir.join("model");
        let files: Vec<Value> = Artifact::all_in(&model)
            .map_err(internal)?
            .into_iter()
            .map(|a| {
                let name = a.path.strip_prefix(&model).map(|x| x.display().to_string());
                json!({"name": name.unwrap_or_default(), "sha256": a.sha256, "size": a.size})
            })
            .collect();
        let root = v.signature.root.as_deref().unwrap_or_default();
        m.insert(
            "model".into(),
            json!({"root": format!("sha256:{root}"),
                   "files": files, "signature": v.signature, "provenance": v.provenance}),
        );
    }
    if let Some(g) = &registered {
        let done = Registered {
            name: g.model.clone(),
            version: g.version,
            stage: promoted
                .as_ref()
                .map_or_else(|| "none".to_owned(), |x| x.stage.clone()),
            gates: serde_json::to_value(promoted.as_ref().map(|x| &x.gates).unwrap_or(&Vec::new()))
                .map_err(internal)?,
        };
        m.insert("registry".into(), to_value(&done)?);
    }
    let records: Vec<Value> = match Some(p.env.log) {
        Some(log) => log
            .records()?
            .filter(|rec| rec.seq >= first_seq)
            .map(|rec| rec.to_value())
            .collect(),
        None => Vec::new(),
    };
    m.insert("audit".into(), Value::Array(records));
    Ok(r)
}
