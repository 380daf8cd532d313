//! The gateway's errors (model loading has its own, [`crate::load::LoadError`]).

use std::path::PathBuf;

/// Why the gateway, or one of its parts, cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A setting does not parse.
    #[error("{text:?} is not {expected}")]
    Setting {
        /// The text given.
        text: String,
        /// What it may be.
        expected: &'static str,
    },
    /// A database the gateway keeps its state in cannot be opened.
    #[error("{path}: {reason}")]
    State {
        /// The database.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client for an upstream cannot be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// A reload was asked of a gateway that has no loader.
    #[error("this gateway has no loader to reload its models with")]
    NoLoader,
    /// The models could not be loaded (nothing was swapped).
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
}
