//! The end-to-end pipeline: a dataset described once in `pipeline.toml` goes through
//! ingest (authorised location, integrity, validation, PII redaction, poisoning checks) →
//! sandboxed training and signing → verification of the signature and provenance → registration
//! → promotion, each step recorded by digest so a re-run reuses what is unchanged, after
//! verifying it.
//!
//! This crate holds what the steps share and what does not depend on how a step runs:
//! - [`spec`]: `pipeline.toml`, parsed strictly (unknown keys are errors), paths anchored at
//!   the spec's directory.
//! - [`state`]: the state file (`HOME/pipelines/<name>/state.json`): per step its input
//!   fingerprint, its outputs and every artifact file with its SHA-256; [`state::Artifact::verify`]
//!   re-hashes them.
//! - [`report`]: the run report as JSON and as one self-contained HTML page (inline CSS and
//!   SVG, no script, no network).
//! - [`run`]: the run itself ([`run::run`] with a [`run::Runner`]): each step calls the
//!   stage's library service in-process, the same calls the `rampart` commands make, so a
//!   pipeline does nothing a person could not do by hand.

pub mod outputs;
pub mod report;
pub mod run;
pub mod spec;
pub mod state;

use std::path::PathBuf;

/// The steps, in order.
pub const STEPS: [&str; 5] = ["ingest", "train", "verify", "register", "promote"];

/// Why a pipeline could not be read or its state kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The spec file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The spec is not valid.
    #[error("{path}: {reason}")]
    Spec {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// The state file is damaged.
    #[error("the pipeline state {path} is damaged: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Writing state or a report failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
