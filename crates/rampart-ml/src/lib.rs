//! Machine learning for rampart: tabular models, privacy accounting, metrics and drift.
//!
//! This crate is pure computation — no I/O beyond the model codec, no dependency on another
//! rampart crate.
//!
//! - Models: [`forest::RandomForest`] (histogram split search over binned features, trees
//!   grown in parallel, flat-array inference), [`iforest::IsolationForest`] (scikit-learn's
//!   scoring) and [`linear::LogisticRegression`] (SGD or DP-SGD), wrapped in
//!   [`model::Model`] and stored as safetensors with validated loading.
//! - [`privacy`]: Rényi differential privacy for the sampled Gaussian mechanism that DP-SGD
//!   uses, converting to (ε, δ) and calibrating the noise for a target ε.
//! - [`sparse::SparseLogistic`]: binary logistic regression on hashed sparse features
//!   (AdaGrad), for text classifiers.
//! - [`hyper`]: the built-in models' kinds and hyperparameters, one definition for configs,
//!   flags and the fit.
//! - [`metrics`], [`split`] (seeded, stratified), [`drift`] (PSI and the two-sample
//!   Kolmogorov–Smirnov test).
//!
//! ```
//! use rampart_ml::privacy::{epsilon, DEFAULT_ORDERS};
//! let (eps, order) = epsilon(0.01, 1.1, 10_000, 1e-5, DEFAULT_ORDERS).unwrap();
//! assert!(eps > 0.5 && eps < 10.0, "{eps} at order {order}");
//! ```

pub mod bins;
pub mod drift;
pub mod forest;
pub mod hyper;
pub mod iforest;
pub mod ks;
pub mod linear;
pub mod matrix;
pub mod metrics;
pub mod model;
pub mod privacy;
pub mod sparse;
pub mod split;
mod tree;

pub use matrix::Matrix;
pub use model::{Estimator, Model, ModelKind, Prediction};
pub use tree::TreeArrays;

/// Errors from training, prediction and model loading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MlError {
    /// The caller's data or parameters are unusable.
    #[error("{0}")]
    Input(String),
    /// A model file is malformed or hostile.
    #[error("invalid model: {0}")]
    Model(String),
}
