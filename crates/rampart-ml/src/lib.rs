//! Machine learning for rampart: models, privacy accounting, metrics.
//!
//! This crate is pure computation — no I/O beyond the model codec, no dependency on another
//! rampart crate. So far: [`metrics`] (accuracy, precision/recall/F1, ROC AUC, log loss,
//! confusion matrix), [`split`] (seeded, stratified train/test splits), [`drift`] (PSI with
//! stated binning), and the [`privacy`] accountant: Rényi differential privacy for the
//! sampled Gaussian mechanism that DP-SGD uses, converting to (ε, δ) and calibrating the noise
//! for a target ε.
//!
//! ```
//! use rampart_ml::privacy::{epsilon, DEFAULT_ORDERS};
//! let (eps, order) = epsilon(0.01, 1.1, 10_000, 1e-5, DEFAULT_ORDERS).unwrap();
//! assert!(eps > 0.5 && eps < 10.0, "{eps} at order {order}");
//! ```

pub mod drift;
pub mod metrics;
pub mod privacy;
pub mod split;
