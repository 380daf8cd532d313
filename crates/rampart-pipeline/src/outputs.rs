//! What each step produced, typed. A step writes its output into its record
//! ([`crate::state::StepRecord::outputs`]) through serde and the steps after it read it back
//! the same way, so a field that is missing or renamed is an error naming the step — never an
//! empty string.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::{State, StepStatus};

/// A step's typed output.
pub trait StepOutput: Serialize + DeserializeOwned {
    /// The step that writes it.
    const STEP: &'static str;
    /// One line for people.
    fn summary(&self) -> &str;
}

macro_rules! step_output {
    ($t:ty, $step:literal) => {
        impl StepOutput for $t {
            const STEP: &'static str = $step;
            fn summary(&self) -> &str {
                &self.summary
            }
        }
    };
}

/// The ingest step: the dataset stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ingested {
    /// Its content address, `sha256:<hex>`.
    pub dataset: String,
    /// The encrypted data file in the store.
    pub data: PathBuf,
    /// This ingest's manifest.
    pub manifest: PathBuf,
    /// How its integrity was established (signature, pin, unsigned).
    pub integrity: String,
    /// One line for people.
    pub summary: String,
}
step_output!(Ingested, "ingest");

/// The train step: the signed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The model's root digest (hex).
    pub root: String,
    /// `provenance.json`'s digest, when there is one.
    pub provenance_sha256: Option<String>,
    /// `metrics.json`'s digest, when the trainer wrote one.
    pub metrics_sha256: Option<String>,
    /// What the sandbox enforced.
    pub sandbox: Value,
    /// The signing key's fingerprint.
    pub key: String,
    /// One line for people.
    pub summary: String,
}
step_output!(Trained, "train");

/// A signature or an attestation as the verify step checked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    /// The file.
    pub path: PathBuf,
    /// The key that verified it.
    pub key: String,
    /// Always true in a record: a failed check fails the step.
    pub verified: bool,
    /// The signature's root digest (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
    /// The dataset the provenance names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// How many subjects the provenance names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects: Option<usize>,
}

/// The verify step: the signature and the provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    /// The model's signature.
    pub signature: Checked,
    /// Its provenance.
    pub provenance: Checked,
    /// One line for people.
    pub summary: String,
}
step_output!(Verified, "verify");

/// The register step: the version in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// The model's name.
    pub model: String,
    /// Its version.
    pub version: i64,
    /// Its root digest (hex).
    pub root: String,
    /// Its files, as the registry recorded them.
    pub files: Value,
    /// One line for people.
    pub summary: String,
}
step_output!(Registered, "register");

impl Registered {
    /// `NAME@VERSION`.
    #[must_use]
    pub fn reference(&self) -> String {
        format!("{}@{}", self.model, self.version)
    }
}

/// One gate as the promote step checked it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// Its name.
    pub gate: String,
    /// Whether it passed.
    pub ok: bool,
    /// What it found.
    pub detail: String,
    /// The stage it guarded (the pipeline's own gates guard none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

impl Gate {
    /// A registry gate's result, for `stage`.
    #[must_use]
    pub fn of(c: &rampart_registry::gates::Check, stage: &str) -> Self {
        Self {
            gate: c.gate.to_owned(),
            ok: c.ok,
            detail: c.detail.clone(),
            stage: Some(stage.to_owned()),
        }
    }
}

/// The promote step: where the version ended up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promoted {
    /// The model's name.
    pub model: String,
    /// Its version.
    pub version: i64,
    /// The stage it is in (`none` when the spec promotes nowhere).
    pub stage: String,
    /// Every gate checked.
    pub gates: Vec<Gate>,
    /// One line for people.
    pub summary: String,
}
step_output!(Promoted, "promote");

/// Why a record's output could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the {step} step's record: {reason}")]
pub struct OutputError {
    /// The step.
    pub step: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// The output `T::STEP` recorded, when its record is ok; `None` when it has none or failed.
///
/// # Errors
/// A record that is ok but does not hold a `T` (a damaged or foreign state file).
pub fn recorded<T: StepOutput>(st: &State) -> Result<Option<T>, OutputError> {
    match st.steps.get(T::STEP) {
        Some(r) if r.status == StepStatus::Ok => read(T::STEP, &r.outputs).map(Some),
        _ => Ok(None),
    }
}

/// The output `T::STEP` recorded, which the step asking needs.
///
/// # Errors
/// No ok record, or one that does not hold a `T`.
pub fn required<T: StepOutput>(st: &State) -> Result<T, OutputError> {
    recorded(st)?.ok_or_else(|| OutputError {
        step: T::STEP,
        reason: "no result to build on".into(),
    })
}

/// `value` read as `step`'s output.
///
/// # Errors
/// It does not hold a `T`.
pub fn read<T: DeserializeOwned>(step: &'static str, value: &Value) -> Result<T, OutputError> {
    T::deserialize(value).map_err(|e| OutputError {
        step,
        reason: e.to_string(),
    })
}

/// The one line any step's output carries.
#[derive(Debug, Deserialize)]
struct Summary {
    summary: String,
}

/// The summary of any step's output (empty for a record without one: a failed step's).
#[must_use]
pub fn summary(value: &Value) -> String {
    Summary::deserialize(value)
        .map(|s| s.summary)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_renamed_field_is_an_error_naming_the_step() {
        let good = serde_json::json!({
            "model": "m", "version": 2, "root": "ab", "files": [], "summary": "m@2",
        });
        let r: Registered = read("register", &good).unwrap();
        assert_eq!(r.reference(), "m@2");
        let mut renamed = good.clone();
        renamed["name"] = renamed["model"].take();
        if let Value::Object(o) = &mut renamed {
            o.remove("model");
        }
        let e = read::<Registered>("register", &renamed).unwrap_err();
        assert!(
            e.to_string().contains("register") && e.to_string().contains("model"),
            "{e}"
        );
        assert_eq!(summary(&good), "m@2");
        assert_eq!(summary(&Value::Null), "");
    }
}
