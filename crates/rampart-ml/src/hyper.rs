//! The built-in models' kinds and hyperparameters: one definition for a config's `[model]`
//! table (serde), the command line's flags (clap, behind the `clap` feature) and the fit.
//!
//! Every setting is optional: what is not given takes the estimator's default when the model
//! is fitted, so a config's table and the command line merge by [`Hyper::over`] (the later
//! one's settings win) and what was asked for is recorded as given.
//!
//! ```
//! use rampart_ml::hyper::{Hyper, Kind};
//! let config: Hyper = Hyper::from_toml_table([("trees".to_owned(), toml::Value::Integer(200))]).unwrap();
//! let flags = Hyper { max_depth: Some(8), ..Hyper::default() };
//! let h = config.over(&flags);
//! h.check(Kind::RandomForest).unwrap();
//! let p = h.forest().unwrap();
//! assert_eq!((p.n_trees, p.max_depth), (200, Some(8)));
//! ```

use serde::{Deserialize, Serialize};

use crate::Estimator;
use crate::forest::{ClassWeight, Criterion, ForestParams, MaxFeatures, RandomForest};
use crate::iforest::{Contamination, IsolationForest, IsolationParams, MaxSamples};
use crate::linear::{DpParams, LogisticParams, LogisticRegression};
use crate::matrix::Matrix;

/// Trees when none is given.
pub const DEFAULT_TREES: usize = 100;
/// Most trees a forest may be asked for: the forest is collected in memory, so an unbounded
/// count from a config would be an unbounded allocation.
pub const MAX_TREES: usize = 10_000;
/// Most passes over the data, and the largest batch, logistic regression may be asked for.
pub const MAX_EPOCHS: usize = 100_000;
/// See [`MAX_EPOCHS`].
pub const MAX_BATCH: usize = 1 << 20;

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HyperError {
    /// A value the setting does not take.
    #[error("{setting} {value}: expected {expected}")]
    Value {
        /// The setting, as a flag (`--max-features`).
        setting: &'static str,
        /// What was given.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
    /// A setting only another kind of model takes.
    #[error("{setting} is only for --model {only}")]
    NotFor {
        /// The setting.
        setting: &'static str,
        /// The kind that takes it.
        only: &'static str,
    },
    /// One of a pair of settings without the other.
    #[error("{given} needs {missing} too")]
    Pair {
        /// The one given.
        given: &'static str,
        /// The one missing.
        missing: &'static str,
    },
    /// A `[model]` table that does not parse (an unknown setting, a wrong type).
    #[error("{0}")]
    Table(String),
    /// A kind that is not a built-in model.
    #[error("kind {0:?} is not random-forest, isolation-forest or logistic")]
    Kind(String),
}

/// A built-in model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Random forest classifier.
    RandomForest,
    /// Isolation forest anomaly detector (no label).
    IsolationForest,
    /// Logistic regression (SGD, or DP-SGD with `--dp-epsilon`).
    Logistic,
}

impl Kind {
    /// Its name in configs and flags.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::RandomForest => "random-forest",
            Self::IsolationForest => "isolation-forest",
            Self::Logistic => "logistic",
        }
    }

    /// Whether it predicts a label (and so needs one to train).
    #[must_use]
    pub const fn is_classifier(self) -> bool {
        !matches!(self, Self::IsolationForest)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kind {
    type Err = HyperError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::RandomForest, Self::IsolationForest, Self::Logistic]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| HyperError::Kind(s.to_owned()))
    }
}

/// Split criterion of a random forest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum CriterionName {
    /// Gini impurity (the default).
    Gini,
    /// Shannon entropy.
    Entropy,
}

/// The hyperparameters given for a built-in model; what is `None` takes the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(deny_unknown_fields)]
pub struct Hyper {
    /// Trees (forests; default 100).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trees: Option<usize>,
    /// Seed: the same data, options and seed give the same model bytes (DP noise excepted;
    /// default 0).
    #[cfg_attr(feature = "clap", arg(long, value_name = "S"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Deepest tree level (random forest; default: unlimited).
    #[cfg_attr(feature = "clap", arg(long, value_name = "D"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<usize>,
    /// Smallest leaf (random forest; default 1).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples_leaf: Option<usize>,
    /// Smallest node to split (random forest; default 2).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples_split: Option<usize>,
    /// Features tried per split: sqrt (the default), log2, all, a count, or a fraction in
    /// (0, 1].
    #[cfg_attr(feature = "clap", arg(long, value_name = "F"))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "text_or_number"
    )]
    pub max_features: Option<String>,
    /// Split criterion (random forest; default gini).
    #[cfg_attr(feature = "clap", arg(long, value_enum))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criterion: Option<CriterionName>,
    /// Weight classes inversely to their frequency (random forest).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "is_false")]
    pub balanced: bool,
    /// Train each tree on all rows instead of a bootstrap sample (random forest).
    #[cfg_attr(feature = "clap", arg(long))]
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_bootstrap: bool,
    /// Isolation forest: fraction of training rows flagged as anomalies, or auto (score >
    /// 0.5; the default).
    #[cfg_attr(feature = "clap", arg(long, value_name = "F"))]
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "text_or_number"
    )]
    pub contamination: Option<String>,
    /// Isolation forest: rows per tree (default min(256, rows)).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_samples: Option<usize>,
    /// Logistic: passes over the data (default 30, 10 under DP-SGD).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Logistic: batch size (expected batch size under DP-SGD; default 64).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Logistic: initial learning rate (default 0.1, 0.5 under DP-SGD).
    #[cfg_attr(feature = "clap", arg(long, value_name = "LR"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    /// Logistic: train with DP-SGD to this ε (with --dp-delta).
    #[cfg_attr(feature = "clap", arg(long, value_name = "E"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_epsilon: Option<f64>,
    /// Logistic: δ for DP-SGD.
    #[cfg_attr(feature = "clap", arg(long, value_name = "D"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_delta: Option<f64>,
    /// Logistic: per-example gradient clipping norm for DP-SGD (default 1).
    #[cfg_attr(feature = "clap", arg(long, value_name = "C"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_clip: Option<f64>,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if takes a reference
const fn is_false(b: &bool) -> bool {
    !*b
}

/// `max_features = 5`, `0.5` or `"sqrt"` in a TOML table: a number is its text.
fn text_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Int(i64),
        Float(f64),
    }
    Ok(Some(match TextOrNumber::deserialize(d)? {
        TextOrNumber::Text(s) => s,
        TextOrNumber::Int(i) => i.to_string(),
        TextOrNumber::Float(f) => f.to_string(),
    }))
}

impl Hyper {
    /// The settings of a config's `[model]` table (without its `kind` and `holdout`).
    ///
    /// # Errors
    /// [`HyperError::Table`]: an unknown setting (its name quoted) or a wrong type.
    pub fn from_toml_table(
        table: impl IntoIterator<Item = (String, toml::Value)>,
    ) -> Result<Self, HyperError> {
        let parse = |t: toml::Table| -> Result<Self, String> {
            toml::Value::Table(t)
                .try_into()
                // toml names an unknown field as `tress`; quote it plainly.
                .map_err(|e: toml::de::Error| e.message().replace('`', "\""))
        };
        let table: toml::Table = table.into_iter().collect();
        parse(table.clone()).map_err(|whole| {
            // A wrong type's message does not name the setting: find the one that fails.
            let named = table.iter().find_map(|(k, v)| {
                let one = toml::Table::from_iter([(k.clone(), v.clone())]);
                parse(one).err().map(|e| format!("{k}: {e}"))
            });
            HyperError::Table(named.unwrap_or(whole))
        })
    }

    /// These settings with `later`'s on top: a setting `later` gives wins; a flag is set if
    /// either sets it.
    #[must_use]
    pub fn over(&self, later: &Self) -> Self {
        fn pick<T: Clone>(a: Option<&T>, b: Option<&T>) -> Option<T> {
            b.or(a).cloned()
        }
        Self {
            trees: later.trees.or(self.trees),
            seed: later.seed.or(self.seed),
            max_depth: later.max_depth.or(self.max_depth),
            min_samples_leaf: later.min_samples_leaf.or(self.min_samples_leaf),
            min_samples_split: later.min_samples_split.or(self.min_samples_split),
            max_features: pick(self.max_features.as_ref(), later.max_features.as_ref()),
            criterion: later.criterion.or(self.criterion),
            balanced: self.balanced || later.balanced,
            no_bootstrap: self.no_bootstrap || later.no_bootstrap,
            contamination: pick(self.contamination.as_ref(), later.contamination.as_ref()),
            max_samples: later.max_samples.or(self.max_samples),
            epochs: later.epochs.or(self.epochs),
            batch_size: later.batch_size.or(self.batch_size),
            learning_rate: later.learning_rate.or(self.learning_rate),
            dp_epsilon: later.dp_epsilon.or(self.dp_epsilon),
            dp_delta: later.dp_delta.or(self.dp_delta),
            dp_clip: later.dp_clip.or(self.dp_clip),
        }
    }

    /// Checks the settings for `kind` before anything runs: each value parses, DP settings
    /// come in pairs and only for logistic regression.
    ///
    /// # Errors
    /// The first setting that cannot be used.
    pub fn check(&self, kind: Kind) -> Result<(), HyperError> {
        if kind != Kind::Logistic {
            for (given, setting) in [
                (self.dp_epsilon.is_some(), "--dp-epsilon"),
                (self.dp_delta.is_some(), "--dp-delta"),
                (self.dp_clip.is_some(), "--dp-clip"),
            ] {
                if given {
                    return Err(HyperError::NotFor {
                        setting,
                        only: "logistic",
                    });
                }
            }
        }
        match (self.dp_epsilon, self.dp_delta) {
            (Some(_), None) => {
                return Err(HyperError::Pair {
                    given: "--dp-epsilon",
                    missing: "--dp-delta",
                });
            }
            (None, Some(_)) => {
                return Err(HyperError::Pair {
                    given: "--dp-delta",
                    missing: "--dp-epsilon",
                });
            }
            _ => {}
        }
        let positive = |v: Option<f64>, setting: &'static str| match v {
            Some(x) if !(x.is_finite() && x > 0.0) => Err(HyperError::Value {
                setting,
                value: x.to_string(),
                expected: "a positive number",
            }),
            _ => Ok(()),
        };
        let within =
            |v: Option<usize>, setting: &'static str, lo: usize, hi: usize, expected| match v {
                Some(n) if n < lo || n > hi => Err(HyperError::Value {
                    setting,
                    value: n.to_string(),
                    expected,
                }),
                _ => Ok(()),
            };
        within(self.trees, "--trees", 1, MAX_TREES, "from 1 to 10000")?;
        within(self.epochs, "--epochs", 1, MAX_EPOCHS, "from 1 to 100000")?;
        within(
            self.batch_size,
            "--batch-size",
            1,
            MAX_BATCH,
            "from 1 to 1048576",
        )?;
        within(
            self.max_samples,
            "--max-samples",
            1,
            usize::MAX,
            "at least 1",
        )?;
        within(
            self.min_samples_leaf,
            "--min-samples-leaf",
            1,
            usize::MAX,
            "at least 1",
        )?;
        within(
            self.min_samples_split,
            "--min-samples-split",
            2,
            usize::MAX,
            "at least 2",
        )?;
        positive(self.learning_rate, "--learning-rate")?;
        positive(self.dp_epsilon, "--dp-epsilon")?;
        positive(self.dp_clip, "--dp-clip")?;
        if let Some(d) = self.dp_delta
            && !(d > 0.0 && d < 1.0)
        {
            return Err(HyperError::Value {
                setting: "--dp-delta",
                value: d.to_string(),
                expected: "a fraction in (0, 1)",
            });
        }
        self.max_features()?;
        self.contamination()?;
        Ok(())
    }

    fn max_features(&self) -> Result<MaxFeatures, HyperError> {
        let Some(text) = self.max_features.as_deref() else {
            return Ok(MaxFeatures::Sqrt);
        };
        Ok(match text {
            "sqrt" => MaxFeatures::Sqrt,
            "log2" => MaxFeatures::Log2,
            "all" => MaxFeatures::All,
            t => {
                if let Ok(n) = t.parse::<usize>() {
                    MaxFeatures::Count(n)
                } else if let Ok(f) = t.parse::<f64>()
                    && f > 0.0
                    && f <= 1.0
                {
                    MaxFeatures::Fraction(f)
                } else {
                    return Err(HyperError::Value {
                        setting: "--max-features",
                        value: t.to_owned(),
                        expected: "sqrt, log2, all, a count or a fraction in (0, 1]",
                    });
                }
            }
        })
    }

    fn contamination(&self) -> Result<Contamination, HyperError> {
        match self.contamination.as_deref() {
            None | Some("auto") => Ok(Contamination::Auto),
            Some(c) => match c.parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 0.5 => Ok(Contamination::Fraction(f)),
                _ => Err(HyperError::Value {
                    setting: "--contamination",
                    value: c.to_owned(),
                    expected: "auto or a fraction in (0, 0.5]",
                }),
            },
        }
    }

    /// Random forest parameters.
    ///
    /// # Errors
    /// A setting that does not parse.
    pub fn forest(&self) -> Result<ForestParams, HyperError> {
        Ok(ForestParams {
            n_trees: self.trees.unwrap_or(DEFAULT_TREES),
            criterion: match self.criterion {
                Some(CriterionName::Entropy) => Criterion::Entropy,
                _ => Criterion::Gini,
            },
            max_depth: self.max_depth,
            min_samples_split: self.min_samples_split.unwrap_or(2),
            min_samples_leaf: self.min_samples_leaf.unwrap_or(1),
            max_features: self.max_features()?,
            bootstrap: !self.no_bootstrap,
            class_weight: if self.balanced {
                ClassWeight::Balanced
            } else {
                ClassWeight::None
            },
            max_bins: crate::bins::MAX_BINS,
            seed: self.seed.unwrap_or(0),
        })
    }

    /// Isolation forest parameters.
    ///
    /// # Errors
    /// A setting that does not parse.
    pub fn isolation(&self) -> Result<IsolationParams, HyperError> {
        Ok(IsolationParams {
            n_trees: self.trees.unwrap_or(DEFAULT_TREES),
            max_samples: self.max_samples.map_or(MaxSamples::Auto, MaxSamples::Count),
            contamination: self.contamination()?,
            seed: self.seed.unwrap_or(0),
        })
    }

    /// Logistic regression parameters (DP-SGD when `dp_epsilon` and `dp_delta` are given).
    #[must_use]
    pub fn logistic(&self) -> LogisticParams {
        let dp = self
            .dp_epsilon
            .zip(self.dp_delta)
            .map(|(epsilon, delta)| DpParams {
                epsilon,
                delta,
                clip_norm: self.dp_clip.unwrap_or(1.0),
                ..DpParams::default()
            });
        let base = LogisticParams::default();
        let private = dp.is_some();
        LogisticParams {
            epochs: self
                .epochs
                .unwrap_or(if private { 10 } else { base.epochs }),
            batch_size: self.batch_size.unwrap_or(base.batch_size),
            learning_rate: self.learning_rate.unwrap_or(if private {
                0.5
            } else {
                base.learning_rate
            }),
            seed: self.seed.unwrap_or(0),
            dp,
            ..base
        }
    }

    /// Fits `kind` on `x` (with class indices `y` in `0..n_classes` for a classifier), and
    /// returns the estimator with the parameters it was fitted with, as JSON for the model's
    /// metadata.
    ///
    /// # Errors
    /// A setting that cannot be used, or the fit's own error (as text).
    pub fn fit(
        &self,
        kind: Kind,
        x: &Matrix,
        y: &[usize],
        n_classes: usize,
    ) -> Result<(Estimator, serde_json::Value), FitError> {
        self.check(kind)?;
        // Plain numbers and enums: serialising them cannot fail.
        Ok(match kind {
            Kind::RandomForest => {
                let p = self.forest()?;
                let m = RandomForest::fit(x, y, n_classes, &p)?;
                (Estimator::RandomForest(m), to_json(&p))
            }
            Kind::IsolationForest => {
                let p = self.isolation()?;
                let m = IsolationForest::fit(x, &p)?;
                (Estimator::IsolationForest(m), to_json(&p))
            }
            Kind::Logistic => {
                let p = self.logistic();
                let m = LogisticRegression::fit(x, y, n_classes, &p)?;
                (Estimator::LogisticRegression(m), to_json(&p))
            }
        })
    }
}

/// A parameter set as JSON: plain numbers and enums, whose serialisation cannot fail.
fn to_json(p: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(p).unwrap_or_default()
}

/// Why [`Hyper::fit`] failed.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// A setting that cannot be used.
    #[error(transparent)]
    Hyper(#[from] HyperError),
    /// The estimator refused the data.
    #[error(transparent)]
    Fit(#[from] crate::MlError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Result<Hyper, HyperError> {
        let t: toml::Table = text.parse().unwrap();
        Hyper::from_toml_table(t)
    }

    #[test]
    fn a_table_parses_its_settings_and_names_an_unknown_one() {
        let h = table("trees = 200\nmax_depth = 12\nmax_features = 0.5\nbalanced = true").unwrap();
        assert_eq!(h.trees, Some(200));
        assert_eq!(h.max_depth, Some(12));
        assert_eq!(h.max_features.as_deref(), Some("0.5"));
        assert!(h.balanced);
        let p = h.forest().unwrap();
        assert_eq!(p.max_features, MaxFeatures::Fraction(0.5));
        assert_eq!(p.class_weight, ClassWeight::Balanced);
        let e = table("tress = 5").unwrap_err().to_string();
        assert!(e.contains("\"tress\""), "{e}");
        let e = table("trees = \"many\"").unwrap_err().to_string();
        assert!(e.contains("trees") || e.contains("integer"), "{e}");
        assert!(table("trees = -3").is_err());
    }

    #[test]
    fn later_settings_win_and_flags_add_up() {
        let config = table("trees = 200\nseed = 7\nbalanced = true").unwrap();
        let flags = Hyper {
            trees: Some(15),
            max_depth: Some(6),
            ..Hyper::default()
        };
        let h = config.over(&flags);
        assert_eq!(
            (h.trees, h.seed, h.max_depth, h.balanced),
            (Some(15), Some(7), Some(6), true)
        );
        // What was given is what is recorded: defaults are not written out.
        assert_eq!(
            serde_json::to_value(&flags).unwrap(),
            serde_json::json!({"trees": 15, "max_depth": 6})
        );
    }

    #[test]
    fn checks_refuse_what_the_kind_cannot_use() {
        let dp = Hyper {
            dp_epsilon: Some(1.0),
            ..Hyper::default()
        };
        assert_eq!(
            dp.check(Kind::Logistic),
            Err(HyperError::Pair {
                given: "--dp-epsilon",
                missing: "--dp-delta"
            })
        );
        assert!(matches!(
            dp.check(Kind::RandomForest),
            Err(HyperError::NotFor { .. })
        ));
        let ok = Hyper {
            dp_delta: Some(1e-5),
            ..dp
        };
        ok.check(Kind::Logistic).unwrap();
        assert!(ok.logistic().dp.is_some());
        assert_eq!(ok.logistic().epochs, 10);
        for (h, setting) in [
            (
                Hyper {
                    max_features: Some("most".into()),
                    ..Hyper::default()
                },
                "--max-features",
            ),
            (
                Hyper {
                    contamination: Some("0.9".into()),
                    ..Hyper::default()
                },
                "--contamination",
            ),
            (
                Hyper {
                    learning_rate: Some(f64::NAN),
                    ..Hyper::default()
                },
                "--learning-rate",
            ),
            // A config cannot ask for an unbounded allocation or a degenerate fit.
            (
                Hyper {
                    trees: Some(1_000_000_000_000),
                    ..Hyper::default()
                },
                "--trees",
            ),
            (
                Hyper {
                    trees: Some(0),
                    ..Hyper::default()
                },
                "--trees",
            ),
            (
                Hyper {
                    epochs: Some(usize::MAX),
                    ..Hyper::default()
                },
                "--epochs",
            ),
            (
                Hyper {
                    batch_size: Some(0),
                    ..Hyper::default()
                },
                "--batch-size",
            ),
            (
                Hyper {
                    min_samples_split: Some(1),
                    ..Hyper::default()
                },
                "--min-samples-split",
            ),
        ] {
            let e = h.check(Kind::RandomForest).unwrap_err();
            assert!(
                matches!(e, HyperError::Value { setting: s, .. } if s == setting),
                "{e}"
            );
        }
    }

    #[test]
    fn kinds_parse_by_name() {
        assert_eq!("Random-Forest".parse::<Kind>(), Ok(Kind::RandomForest));
        assert_eq!(
            "random-forrest".parse::<Kind>(),
            Err(HyperError::Kind("random-forrest".into()))
        );
        assert!(!Kind::IsolationForest.is_classifier());
    }

    #[test]
    fn a_fit_uses_the_settings() {
        let x = Matrix::new(4, 2, vec![0.0, 1.0, 1.0, 0.0, 0.1, 0.9, 0.9, 0.1]).unwrap();
        let y = [0, 1, 0, 1];
        let h = Hyper {
            trees: Some(3),
            seed: Some(1),
            ..Hyper::default()
        };
        let (e, json) = h.fit(Kind::RandomForest, &x, &y, 2).unwrap();
        assert!(matches!(e, Estimator::RandomForest(_)));
        assert_eq!(json["n_trees"], 3);
        let bad = Hyper {
            max_features: Some("x".into()),
            ..h
        };
        assert!(matches!(
            bad.fit(Kind::RandomForest, &x, &y, 2),
            Err(FitError::Hyper(_))
        ));
    }
}
