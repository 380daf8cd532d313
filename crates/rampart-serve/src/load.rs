//! Models from the registry, verified, ready to serve: the signature re-verified with the
//! trusted keys or certificate authorities, every file re-hashed as it is materialised, then
//! parsed — and a companion anomaly detector checked against the model it guards.
//!
//! `rampart serve` loads through [`load_served`] at start (each load audited, refusals with
//! their reason) and through [`load_model`] on every reload, so a reload can never serve what a
//! start would refuse.

use std::path::PathBuf;

use rampart_audit::{Action, AuditError, Outcome};
use rampart_crypto::{Digest, PublicKey, oms::Anchors};
use rampart_home::Session;
use rampart_registry::gates::{self, GateContext, GatePolicy};
use rampart_registry::{Registry, RegistryError, Stage, VersionInfo};
use rampart_scan::{ScanConfig, Severity};

use crate::{LoadedModel, OutputMode};

/// What a registry version holds that the gateway can run.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Loaded {
    /// One of rampart's tabular models.
    Builtin(rampart_ml::Model),
    /// An ONNX graph, built.
    Onnx(crate::onnx::OnnxModel),
}

/// How each served model is set up.
#[derive(Debug, Clone)]
pub struct ModelSetup {
    /// Keys a model's signature may verify with.
    pub keys: Vec<PublicKey>,
    /// Trusted certificate authorities for models signed with the certificate method.
    pub anchors: Anchors,
    /// Model name → how its answers are returned (default: raw).
    pub outputs: Vec<(String, OutputMode)>,
    /// Model name → the registry reference of its isolation forest.
    pub detectors: Vec<(String, String)>,
    /// Requests per drift window.
    pub drift_window: usize,
    /// What an ONNX model may cost to load and run.
    pub onnx: crate::onnx::OnnxLimits,
    /// Whether ONNX models run in worker processes under a memory ceiling (`None`: in the
    /// gateway's process, bounded by size, nodes and time but not memory).
    pub onnx_isolation: Option<crate::onnx::Isolation>,
    /// Where drift windows are kept when not in this process: Redis, `[storage]
    /// shared_state`.
    pub shared: Option<std::sync::Arc<crate::shared::RedisState>>,
}

/// Why a model cannot be served. Each variant names the registry reference.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The reference names no version.
    #[error("{reference}: {source}")]
    Unknown {
        /// The reference.
        reference: String,
        /// The registry's answer.
        source: RegistryError,
    },
    /// Its signature does not verify with the trusted keys.
    #[error("{reference}: refusing to serve it: {detail}")]
    Unverified {
        /// The reference.
        reference: String,
        /// What the check found.
        detail: String,
    },
    /// A stored file does not match its digest.
    #[error("{reference}: {source}")]
    Tampered {
        /// The reference.
        reference: String,
        /// The registry's finding.
        source: RegistryError,
    },
    /// The version has no model the gateway can run.
    #[error("{reference}: {reason}")]
    NotServable {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The detector named for a model cannot guard it.
    #[error("--anomaly {model}={reference}: {reason}")]
    Detector {
        /// The model it was named for.
        model: String,
        /// The detector's reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The registry or the disk failed.
    #[error("{reference}: {source}")]
    Registry {
        /// The reference.
        reference: String,
        /// The failure.
        source: RegistryError,
    },
    /// A temporary directory could not be made.
    #[error("cannot materialise {reference}: {source}")]
    Io {
        /// The reference.
        reference: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The load could not be recorded, so the model is not served.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// What kind of failure a [`LoadError`] is (the kind every service's error has).
pub use rampart_home::ErrorKind as LoadErrorKind;

impl rampart_home::Classify for LoadError {
    fn kind(&self) -> LoadErrorKind {
        match self {
            Self::Unknown { .. } | Self::NotServable { .. } | Self::Detector { .. } => {
                LoadErrorKind::Input
            }
            Self::Unverified { .. } | Self::Tampered { .. } => LoadErrorKind::Verification,
            Self::Registry { .. } | Self::Io { .. } | Self::Audit(_) => LoadErrorKind::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        let text = match self {
            Self::Detector { .. } => "train the isolation forest on the same columns as the model",
            Self::Unverified { .. } => {
                "trust the signer's key (`rampart trust add`) or its certificate authority, or re-sign the model"
            }
            _ => return None,
        };
        Some(text.to_owned())
    }
}

/// A registry blob the gateway re-hashes while it serves (the integrity watch).
pub type Sources = Vec<(PathBuf, Digest)>;

/// `NAME` means `NAME@production`.
fn full_reference(reference: &str) -> String {
    if reference.contains('@') {
        reference.to_owned()
    } else {
        format!("{reference}@production")
    }
}

/// Loads one version: signature re-verified, files re-hashed as they are materialised, then
/// parsed — a rampart model (its `.safetensors` file) or else an ONNX graph (its one `.onnx`
/// file, built within `onnx`'s limits, in workers under `isolation` when given). Returns the version, what runs it and the blobs to
/// watch.
///
/// # Errors
/// See [`LoadError`].
pub fn load_version(
    reg: &Registry,
    reference: &str,
    keys: &[PublicKey],
    anchors: &Anchors,
    onnx: crate::onnx::OnnxLimits,
    isolation: Option<&crate::onnx::Isolation>,
) -> Result<(VersionInfo, Loaded, Sources), LoadError> {
    let reference = full_reference(reference);
    let v = reg
        .resolve(&reference)
        .map_err(|source| LoadError::Unknown {
            reference: reference.clone(),
            source,
        })?;
    let registry = |source| LoadError::Registry {
        reference: reference.clone(),
        source,
    };
    let checks = gates::evaluate(
        reg,
        &v,
        Stage::Production,
        &GatePolicy::signature_only(),
        &GateContext {
            keys,
            anchors,
            scan: &ScanConfig::default(),
            fail_on: Severity::Critical,
            lineage: &|_| true,
        },
    )
    .map_err(registry)?;
    if let Some(bad) = checks.iter().find(|c| !c.ok) {
        return Err(LoadError::Unverified {
            reference,
            detail: bad.detail.clone(),
        });
    }
    let dir = tempfile::tempdir().map_err(|source| LoadError::Io {
        reference: reference.clone(),
        source,
    })?;
    reg.materialise(&v, dir.path())
        .map_err(|source| LoadError::Tampered {
            reference: reference.clone(),
            source,
        })?;
    let not_servable = |reason: String| LoadError::NotServable {
        reference: reference.clone(),
        reason,
    };
    let read = |name: &str| {
        let path = dir.path().join(name);
        std::fs::read(&path).map_err(|source| LoadError::Io {
            reference: reference.clone(),
            source,
        })
    };
    let onnx_files: Vec<&str> = v
        .files
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| n.ends_with(".onnx"))
        .collect();
    let runner = if let Some(file) = v.files.iter().find(|f| f.name.ends_with(".safetensors")) {
        let bytes = read(&file.name)?;
        Loaded::Builtin(
            rampart_ml::Model::from_bytes(&bytes)
                .map_err(|e| not_servable(format!("{} is not a rampart model: {e}", file.name)))?,
        )
    } else {
        match onnx_files.as_slice() {
            [one] => {
                if let Some(f) = v.files.iter().find(|f| f.name == *one)
                    && f.size > onnx.max_file
                {
                    return Err(not_servable(format!(
                        "{one} is {} bytes, more than the {} an ONNX model may have",
                        f.size, onnx.max_file
                    )));
                }
                let bytes = read(one)?;
                let built = match isolation {
                    Some(i) => crate::onnx::OnnxModel::load_isolated(&bytes, onnx, i),
                    None => crate::onnx::OnnxModel::load(&bytes, onnx),
                };
                Loaded::Onnx(built.map_err(|e| not_servable(format!("{one}: {e}")))?)
            }
            [] => {
                return Err(not_servable(
                    "no model the gateway runs: it serves a rampart model (.safetensors) or an ONNX graph (.onnx)".into(),
                ));
            }
            several => {
                return Err(not_servable(format!(
                    "{} ONNX files ({}): the gateway serves a version holding one",
                    several.len(),
                    several.join(", ")
                )));
            }
        }
    };
    let mut sources: Sources = v
        .files
        .iter()
        .map(|f| f.sha256)
        .chain(std::iter::once(v.signature))
        .filter_map(|d| reg.blobs().local_path(&d).map(|p| (p, d)))
        .collect();
    sources.sort();
    Ok((v, runner, sources))
}

/// Most bytes of a provenance bundle read at load.
const MAX_PROVENANCE: u64 = 16 << 20;

/// An ONNX model's reference input (the training rows' statistics rampart recorded when it
/// scored the model): read from the version's signed provenance now, re-verified with the
/// trusted keys and bound to the version's files — not from the registry database's copy,
/// which whoever can write the database could change to blind the drift and anomaly checks.
/// `None` when the version has no provenance or it records no reference.
///
/// # Errors
/// [`LoadError::Unverified`] when the provenance does not verify or names other files;
/// [`LoadError::Tampered`] when its blob is missing or does not match its digest.
fn signed_reference(
    reg: &Registry,
    v: &VersionInfo,
    keys: &[PublicKey],
) -> Result<Option<serde_json::Value>, LoadError> {
    let Some(digest) = v.provenance else {
        return Ok(None);
    };
    let reference = format!("{}@{}", v.name, v.version);
    let bytes = reg
        .blobs()
        .read(&digest, MAX_PROVENANCE)
        .map_err(|e| LoadError::Tampered {
            reference: reference.clone(),
            source: e.into(),
        })?;
    let unverified = |detail: String| LoadError::Unverified {
        reference: reference.clone(),
        detail,
    };
    let att = rampart_crypto::provenance::verify_attestation(&bytes, keys)
        .map_err(|e| unverified(format!("its provenance does not verify: {e}")))?;
    if let Some(f) = v.files.iter().find(|f| !att.covers(&f.sha256)) {
        return Err(unverified(format!(
            "its provenance does not name {} (it describes another model)",
            f.name
        )));
    }
    Ok(rampart_ml::metrics::Recorded::of(&att.statement)
        .computed
        .as_ref()
        .and_then(|c| c.get("reference"))
        .filter(|r| {
            r.get("input_schema")
                .is_some_and(serde_json::Value::is_array)
        })
        .cloned())
}

/// A model with its companion detector (if `setup` names one), ready to serve.
///
/// # Errors
/// See [`LoadError`]; a detector that is not an isolation forest, or takes other features
/// than the model, is [`LoadError::Detector`].
pub fn load_model(
    reg: &Registry,
    reference: &str,
    setup: &ModelSetup,
) -> Result<LoadedModel, LoadError> {
    let (v, runner, mut sources) = load_version(
        reg,
        reference,
        &setup.keys,
        &setup.anchors,
        setup.onnx,
        setup.onnx_isolation.as_ref(),
    )?;
    let output = setup
        .outputs
        .iter()
        .find(|(n, _)| *n == v.name)
        .map_or(OutputMode::Raw, |(_, m)| m.clone());
    // A companion detector must take exactly the columns the model does: a rampart model's
    // features, or the columns of an ONNX model's recorded reference input.
    let detector = |features: &[String], sources: &mut Sources| -> Result<_, LoadError> {
        let Some((_, dref)) = setup.detectors.iter().find(|(n, _)| *n == v.name) else {
            return Ok(None);
        };
        let refuse = |reason: String| LoadError::Detector {
            model: v.name.clone(),
            reference: dref.clone(),
            reason,
        };
        if features.is_empty() {
            return Err(refuse(
                "this ONNX model's version records no reference input (one rank-2 numeric input \
                 whose training statistics rampart took when it scored the model), so no \
                 detector can be matched to its columns"
                    .into(),
            ));
        }
        let (dv, det, dsources) = load_version(
            reg,
            dref,
            &setup.keys,
            &setup.anchors,
            setup.onnx,
            setup.onnx_isolation.as_ref(),
        )?;
        let Loaded::Builtin(det) = det else {
            return Err(refuse(format!(
                "{}@{} is an ONNX model, not an isolation forest",
                dv.name, dv.version
            )));
        };
        if det.meta.kind != rampart_ml::ModelKind::IsolationForest {
            return Err(refuse(format!(
                "{}@{} is a {}, not an isolation forest",
                dv.name, dv.version, det.meta.kind
            )));
        }
        if det.meta.features != features {
            return Err(refuse(format!(
                "the detector takes features {:?}, the model {features:?}",
                det.meta.features
            )));
        }
        // Its files are re-verified with the model's.
        sources.extend(dsources);
        Ok(Some(det))
    };
    let model = match runner {
        Loaded::Builtin(model) => model,
        Loaded::Onnx(onnx) => {
            let recorded = signed_reference(reg, &v, &setup.keys)?;
            let reference = crate::state::InputReference::of(recorded.as_ref(), onnx.inputs());
            let names: Vec<String> = reference
                .iter()
                .flat_map(|r| r.stats.iter().map(|s| s.name.clone()))
                .collect();
            let det = detector(&names, &mut sources)?;
            return Ok(LoadedModel::onnx(
                v.name.clone(),
                v.version,
                v.root.to_hex(),
                onnx,
                sources,
                output,
            )
            .with_reference(reference, det)
            .with_drift_window(setup.drift_window, setup.shared.as_ref()));
        }
    };
    let detector = detector(&model.meta.features, &mut sources)?;
    Ok(LoadedModel::new(
        v.name.clone(),
        v.version,
        v.root.to_hex(),
        model,
        sources,
        output,
        detector,
    )
    .with_drift_window(setup.drift_window, setup.shared.as_ref()))
}

/// Loads every reference for serving, each load on the audit record: `serve.load` ok with the
/// version and its root, or denied with the reason (and the first refusal is returned).
///
/// # Errors
/// The first [`LoadError`]; an audit failure wins over it.
pub fn load_served(
    s: &Session<'_>,
    reg: &Registry,
    references: &[String],
    setup: &ModelSetup,
) -> Result<Vec<LoadedModel>, LoadError> {
    let mut models = Vec::with_capacity(references.len());
    for r in references {
        match load_model(reg, r, setup) {
            Ok(m) => {
                s.audit.record(
                    s.audit
                        .event(Action::ServeLoad, Outcome::Ok)
                        .subject_path(format!("{}@{}", m.name, m.version))
                        .subject_digest(format!("sha256:{}", m.root)),
                )?;
                models.push(m);
            }
            Err(e) => {
                let event = s
                    .audit
                    .event(Action::ServeLoad, Outcome::Denied)
                    .subject_path(r.clone())
                    .detail("reason", e.to_string());
                return Err(s.audit.refusal(event).map_or(e, LoadError::Audit));
            }
        }
    }
    Ok(models)
}

/// What to serve: the references given, else every model that has a production version.
///
/// # Errors
/// [`LoadError::Registry`] when the registry cannot list its models.
pub fn references(reg: &Registry, explicit: &[String]) -> Result<Vec<String>, LoadError> {
    if !explicit.is_empty() {
        return Ok(explicit.to_vec());
    }
    let names = reg.names().map_err(|source| LoadError::Registry {
        reference: "the registry".into(),
        source,
    })?;
    Ok(names
        .into_iter()
        .filter(|n| reg.resolve(&format!("{n}@production")).is_ok())
        .collect())
}

/// Opens the registry at `location` and loads what [`references`] names, every one or none: what a
/// reload does (it runs on the gateway's own thread, with no audit sink; the gateway records
/// the reload).
///
/// # Errors
/// The first [`LoadError`].
pub fn load_from(
    location: &rampart_registry::Location,
    explicit: &[String],
    setup: &ModelSetup,
) -> Result<Vec<LoadedModel>, LoadError> {
    let reg = location.open().map_err(|source| LoadError::Registry {
        reference: location.to_string(),
        source,
    })?;
    references(&reg, explicit)?
        .iter()
        .map(|r| load_model(&reg, r, setup))
        .collect()
}
