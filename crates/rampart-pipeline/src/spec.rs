//! `pipeline.toml`: one pipeline, described once.
//!
//! ```toml
//! [pipeline]
//! name = "credit-risk"              # the state's name and, by default, the registry model's
//!
//! [source]
//! path = "data/applications.csv"    # relative paths are relative to this file
//! schema = "schema.toml"
//! sha256 = "sha256:…"               # optional pin; otherwise PATH.sig or a pin in rampart.toml
//! max_reject_rate = 0.01            # refuse the batch when more rows than this are rejected
//!
//! [pii]                             # redaction of the clean rows before they are stored
//! redact = true                     # default true
//! default = "replace"               # operators as `rampart data pii redact` takes them
//! columns = { email = "hash", ssn = "remove" }
//! entities = { PHONE = "mask:4" }
//!
//! [checks]                          # the poisoning checks on the clean rows
//! run = true                        # default true
//! reference = "data/reference.csv"  # a trusted earlier batch (enables the shift checks)
//! fail_on = "high"
//!
//! [train]
//! label = "default"
//! ignore = []                       # the schema's unique and personal columns are added
//! holdout = 0.2                     # rows held out before training; rampart scores the model on them
//! [train.model]                     # a built-in model: the settings of `rampart ml train`
//! kind = "random-forest"
//! trees = 200
//! seed = 7
//! # or [train.trainer] command = ["python3", "train.py"], read = ["train.py"], env = []
//! [train.limits]                    # as `rampart train --config` takes them
//! timeout = 600
//!
//! [register]
//! name = "credit-risk"              # default: pipeline.name
//!
//! [promote]
//! to = "staging"                    # or "production" (through staging)
//! min_metrics = { accuracy = 0.8, roc_auc = 0.85 }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rampart_ml::hyper::{Hyper, HyperError, Kind};
use serde::{Deserialize, Serialize};

use rampart_train::config::{LimitsSection, TrainerSection};

use crate::PipelineError;

/// Largest spec file.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

/// A parsed, checked pipeline spec, its paths anchored at its directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `[pipeline]`.
    pub pipeline: PipelineSection,
    /// `[source]`.
    pub source: SourceSection,
    /// `[pii]`.
    #[serde(default)]
    pub pii: PiiSection,
    /// `[checks]`.
    #[serde(default)]
    pub checks: ChecksSection,
    /// `[train]`.
    pub train: TrainSection,
    /// `[register]`.
    #[serde(default)]
    pub register: RegisterSection,
    /// `[promote]`.
    #[serde(default)]
    pub promote: PromoteSection,
}

/// `[pipeline]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// 1–64 of `a-z`, `0-9`, `.`, `_`, `-`, starting with a letter or digit.
    pub name: String,
}

/// `[source]`: where the data comes from and what vouches for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSection {
    /// The dataset (CSV or Parquet file, or a directory of CSV shards; `.age` decrypted).
    pub path: PathBuf,
    /// Its schema.
    pub schema: PathBuf,
    /// A pin: the file's expected SHA-256 (`sha256:HEX`).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Its OMS signature, if not `PATH.sig`.
    #[serde(default)]
    pub signature: Option<PathBuf>,
    /// Refuse the batch above this rejected fraction.
    #[serde(default = "one")]
    pub max_reject_rate: f64,
}

fn one() -> f64 {
    1.0
}

fn yes() -> bool {
    true
}

/// `[pii]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiSection {
    /// Redact the clean rows before they are stored.
    #[serde(default = "yes")]
    pub redact: bool,
    /// The operator for anything not named below (default: the policy's).
    #[serde(default)]
    pub default: Option<String>,
    /// Per entity operators.
    #[serde(default)]
    pub entities: BTreeMap<String, String>,
    /// Per column operators.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

impl Default for PiiSection {
    fn default() -> Self {
        Self {
            redact: true,
            default: None,
            entities: BTreeMap::new(),
            columns: BTreeMap::new(),
        }
    }
}

/// `[checks]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksSection {
    /// Run the poisoning checks.
    #[serde(default = "yes")]
    pub run: bool,
    /// A trusted reference batch.
    #[serde(default)]
    pub reference: Option<PathBuf>,
    /// The severity that refuses the batch (default: the policy's).
    #[serde(default)]
    pub fail_on: Option<String>,
}

impl Default for ChecksSection {
    fn default() -> Self {
        Self {
            run: true,
            reference: None,
            fail_on: None,
        }
    }
}

/// `[train]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// The label column.
    #[serde(default)]
    pub label: Option<String>,
    /// Columns not to train on, beyond the schema's unique and personal ones.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// The fraction of labelled rows held out before training, which rampart scores the model
    /// on (default 0.2).
    #[serde(default)]
    pub holdout: Option<f64>,
    /// A built-in model: `kind` and the settings of `rampart ml train`.
    #[serde(default)]
    pub model: Option<toml::Table>,
    /// The user's trainer: the `[trainer]` table of `rampart train --config` (`command`,
    /// `read`, `env`, `cwd`; `cwd` defaults to the spec's directory).
    #[serde(default)]
    pub trainer: Option<TrainerSection>,
    /// Sandbox limits, as `[limits]` of `rampart train --config` (`timeout`, `cpu`, `memory`,
    /// `file_size`, `open_files`, `processes`).
    #[serde(default)]
    pub limits: LimitsSection,
}

/// `[register]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterSection {
    /// The registry model name (default: the pipeline's).
    #[serde(default)]
    pub name: Option<String>,
}

/// Where the pipeline takes the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Registered only.
    None,
    /// Staging.
    Staging,
    /// Production, through staging.
    Production,
}

impl Target {
    /// The stage's name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Staging => "staging",
            Self::Production => "production",
        }
    }
}

/// `[promote]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteSection {
    /// The stage to reach.
    #[serde(default = "staging")]
    pub to: Target,
    /// The pipeline's own gate: each metric of the training run at least this, or at most
    /// this for a loss (`LOWER_IS_BETTER`: log_loss, loss, mse, rmse, mae, error_rate).
    #[serde(default)]
    pub min_metrics: BTreeMap<String, f64>,
}

fn staging() -> Target {
    Target::Staging
}

impl Default for PromoteSection {
    fn default() -> Self {
        Self {
            to: Target::Staging,
            min_metrics: BTreeMap::new(),
        }
    }
}

/// Metrics where lower is better: `min_metrics` bounds them from above.
pub use rampart_ml::metrics::LOWER_IS_BETTER;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

impl Spec {
    /// Reads and checks a spec file.
    ///
    /// # Errors
    /// Unreadable, too large, not TOML, an unknown key, or a value out of range.
    pub fn load(path: &Path) -> Result<Self, PipelineError> {
        use std::io::Read;
        let read = |source| PipelineError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_SPEC_BYTES + 1).read_to_string(&mut text))
            .map_err(read)?;
        if text.len() as u64 > MAX_SPEC_BYTES {
            return Err(PipelineError::Spec {
                path: path.to_path_buf(),
                reason: format!("larger than {MAX_SPEC_BYTES} bytes"),
            });
        }
        Self::parse(&text, path)
    }

    /// Parses and checks a spec's text; `path` anchors its relative paths.
    ///
    /// # Errors
    /// Not TOML, an unknown key, or a value out of range.
    pub fn parse(text: &str, path: &Path) -> Result<Self, PipelineError> {
        let bad = |reason: String| PipelineError::Spec {
            path: path.to_path_buf(),
            reason,
        };
        let mut s: Self =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim().replace('\n', " ")))?;
        if !valid_name(&s.pipeline.name) {
            return Err(bad(format!(
                "[pipeline] name {:?}: use 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
                s.pipeline.name
            )));
        }
        if let Some(n) = &s.register.name
            && !valid_name(n)
        {
            return Err(bad(format!(
                "[register] name {n:?}: use 1-64 of a-z, 0-9, '.', '_', '-'"
            )));
        }
        if !(0.0..=1.0).contains(&s.source.max_reject_rate) {
            return Err(bad(
                "[source] max_reject_rate must be between 0 and 1".into()
            ));
        }
        if let Some(d) = &s.source.sha256 {
            let hex = d.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "[source] sha256 {d:?}: expected sha256: and 64 hex digits"
                )));
            }
        }
        match (&s.train.model, &s.train.trainer) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "[train.model] and [train.trainer] are alternatives; keep one".into(),
                ));
            }
            (None, None) => {
                return Err(bad(
                    "[train] says nothing to train: add [train.model] (kind = \"random-forest\", …) or [train.trainer] (command = […])".into(),
                ));
            }
            (Some(m), None) => {
                let Some(kind) = m.get("kind") else {
                    return Err(bad(
                        "[train.model] needs kind = \"random-forest\", \"isolation-forest\" or \"logistic\"".into(),
                    ));
                };
                if m.contains_key("holdout") {
                    return Err(bad(
                        "[train.model] holdout: put it in [train] (holdout = 0.2)".into(),
                    ));
                }
                // The built-in model's kind and settings are checked here, before anything
                // runs (the settings are those of `rampart ml train`).
                let model = |e: HyperError| bad(format!("[train.model] {e}"));
                let kind: Kind = kind.as_str().unwrap_or_default().parse().map_err(model)?;
                let settings = m.iter().filter(|(k, _)| *k != "kind");
                Hyper::from_toml_table(settings.map(|(k, v)| (k.clone(), v.clone())))
                    .and_then(|h| h.check(kind))
                    .map_err(model)?;
            }
            (None, Some(t)) if t.command.is_empty() => {
                return Err(bad("[train.trainer] command is empty".into()));
            }
            (None, Some(_)) => {}
        }
        if let Some(h) = s.train.holdout
            && !(h > 0.0 && h < 1.0)
        {
            return Err(bad("[train] holdout must be between 0 and 1".into()));
        }
        if let Some((k, v)) = s.promote.min_metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Err(bad(format!(
                "[promote] min_metrics {k} = {v}: not a number"
            )));
        }
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut s.source.path);
        fix(&mut s.source.schema);
        if let Some(p) = &mut s.source.signature {
            fix(p);
        }
        if let Some(p) = &mut s.checks.reference {
            fix(p);
        }
        if let Some(t) = &mut s.train.trainer {
            t.read.iter_mut().for_each(fix);
            match &mut t.cwd {
                Some(cwd) => fix(cwd),
                None => t.cwd = Some(base.to_path_buf()),
            }
        }
        Ok(s)
    }

    /// The registry model name.
    #[must_use]
    pub fn model_name(&self) -> &str {
        self.register.name.as_deref().unwrap_or(&self.pipeline.name)
    }

    /// The held-out fraction for built-in models.
    #[must_use]
    pub fn holdout(&self) -> f64 {
        self.train.holdout.unwrap_or(0.2)
    }

    /// The `rampart train --config` file for this spec: the dataset (`sha256:…` of the ingested
    /// data), the columns not to train on, the model or trainer, the limits and the run
    /// directory.
    ///
    /// # Errors
    /// Only if TOML serialisation fails, which the checked spec rules out.
    pub fn train_config(
        &self,
        dataset: &str,
        ignore: &[String],
        out: &Path,
    ) -> Result<String, toml::ser::Error> {
        use toml::Value;
        let mut data = toml::Table::new();
        data.insert("dataset".into(), Value::String(dataset.to_owned()));
        if let Some(l) = &self.train.label {
            data.insert("label".into(), Value::String(l.clone()));
        }
        data.insert(
            "ignore".into(),
            Value::Array(ignore.iter().cloned().map(Value::String).collect()),
        );
        // Held out before any trainer starts, built-in or the user's, for rampart's scores.
        if self.train.label.is_some() {
            data.insert("holdout".into(), Value::Float(self.holdout()));
        }
        let mut doc = toml::Table::new();
        doc.insert("data".into(), Value::Table(data));
        if let Some(m) = &self.train.model {
            let mut m = m.clone();
            if m.get("kind").and_then(Value::as_str) != Some("isolation-forest") {
                m.insert("holdout".into(), Value::Float(self.holdout()));
            }
            doc.insert("model".into(), Value::Table(m));
        }
        if let Some(t) = &self.train.trainer {
            doc.insert("trainer".into(), Value::try_from(t)?);
        }
        doc.insert("limits".into(), Value::try_from(&self.train.limits)?);
        let mut o = toml::Table::new();
        o.insert("dir".into(), Value::String(out.display().to_string()));
        doc.insert("output".into(), Value::Table(o));
        toml::to_string(&doc)
    }

    /// A section as canonical JSON (sorted keys), for input fingerprints.
    #[must_use]
    pub fn section_json<T: Serialize>(section: &T) -> String {
        serde_json::to_value(section)
            .map(|v| v.to_string())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use super::{Spec, Target};

    const GOOD: &str = r#"
[pipeline]
name = "credit-risk"
[source]
path = "data/a.csv"
schema = "schema.toml"
sha256 = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
[pii]
columns = { ssn = "remove" }
[checks]
reference = "data/ref.csv"
[train]
label = "default"
[train.model]
kind = "random-forest"
trees = 10
[promote]
min_metrics = { accuracy = 0.8 }
"#;

    #[test]
    fn parses_anchors_and_defaults() {
        let s = Spec::parse(GOOD, Path::new("/ex/pipeline.toml")).unwrap();
        assert_eq!(s.source.path, Path::new("/ex/data/a.csv"));
        assert_eq!(
            s.checks.reference.as_deref(),
            Some(Path::new("/ex/data/ref.csv"))
        );
        assert!(s.pii.redact && s.checks.run);
        assert_eq!(s.promote.to, Target::Staging);
        assert_eq!(s.model_name(), "credit-risk");
        assert!((s.holdout() - 0.2).abs() < 1e-12);
        let cfg = s
            .train_config("sha256:ab", &["ssn".into()], Path::new("/o"))
            .unwrap();
        let t: toml::Table = toml::from_str(&cfg).unwrap();
        assert_eq!(t["data"]["dataset"].as_str(), Some("sha256:ab"));
        assert_eq!(t["model"]["trees"].as_integer(), Some(10));
        assert_eq!(t["model"]["holdout"].as_float(), Some(0.2));
        assert_eq!(t["output"]["dir"].as_str(), Some("/o"));
    }

    #[test]
    fn an_external_trainer_becomes_a_train_config() {
        let text = GOOD.replace(
            "[train.model]\nkind = \"random-forest\"\ntrees = 10\n",
            "[train.trainer]\ncommand = [\"python3\", \"train.py\"]\nread = [\"train.py\"]\n[train.limits]\ntimeout = 30\nmemory = \"1GiB\"\n",
        );
        let s = Spec::parse(&text, Path::new("/ex/pipeline.toml")).unwrap();
        let cfg = s.train_config("sha256:ab", &[], Path::new("/o")).unwrap();
        let parsed =
            rampart_train::config::TrainConfig::parse(&cfg, Path::new("/elsewhere/train.toml"))
                .unwrap();
        let t = parsed.trainer.unwrap();
        assert_eq!(t.command, ["python3", "train.py"]);
        assert_eq!(t.read, [Path::new("/ex/train.py")]);
        assert_eq!(t.cwd.as_deref(), Some(Path::new("/ex")));
        assert_eq!(parsed.limits.timeout, Some(30));
        assert!(parsed.model.is_none());
        assert_eq!(parsed.data.dataset, "sha256:ab");
    }

    #[test]
    fn refuses_what_is_wrong_naming_the_key() {
        let cases = [
            (
                GOOD.replace("name = \"credit-risk\"", "name = \"Credit Risk\""),
                "[pipeline] name",
            ),
            (
                GOOD.replace("trees = 10", "trees = 10\nholdout = 0.3"),
                "holdout",
            ),
            (
                GOOD.replace("[train.model]\nkind = \"random-forest\"\ntrees = 10\n", ""),
                "nothing to train",
            ),
            (
                GOOD.replace("sha256 = \"sha256:0000", "sha256 = \"md5:0000"),
                "[source] sha256",
            ),
            (
                GOOD.replace("[checks]", "[checks]\nrefrence = 1"),
                "refrence",
            ),
            (
                GOOD.replace("[promote]", "[promote]\nto = \"prod\""),
                "prod",
            ),
        ];
        for (text, needle) in cases {
            let e = Spec::parse(&text, Path::new("p.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{needle}: {e}");
            assert!(e.starts_with("p.toml: "), "{e}");
        }
    }
}
