//! `train.toml`: a training run described once.
//!
//! ```toml
//! [data]
//! dataset = "sha256:…"          # an ingested dataset, or a file inside the data roots
//! label = "default"
//! ignore = ["id"]
//! base_model = "base.safetensors" # optional: digested into the provenance, readable by the trainer
//! holdout = 0.2                  # rows rampart holds out before the trainer starts and scores
//!                                # the model on (default 0.2 with a label; 0 for none)
//!
//! [model]                        # the built-in trainer …
//! kind = "random-forest"         # random-forest | isolation-forest | logistic
//! holdout = 0.2                  # rows held out to score a classifier
//! trees = 200                    # any `rampart ml train` flag, as key = value
//! max_depth = 12
//!
//! [trainer]                      # … or the user's own (not both)
//! command = ["python3", "train.py"]
//! read = ["src"]                 # more paths it may read (its code)
//! env = ["CUDA_VISIBLE_DEVICES"] # more variables it gets
//!
//! [limits]                       # override [train] in rampart.toml
//! timeout = 600                  # seconds, wall clock
//! cpu = 600                      # seconds per process
//! memory = "4GiB"                # address space per process
//! file_size = "1GiB"
//! open_files = 256
//! processes = 64
//!
//! [output]
//! dir = "runs/credit"            # default: a new directory under the home's runs/
//! ```
//!
//! Relative paths are relative to the file's directory.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The parsed file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// `[data]`.
    pub data: DataSection,
    /// `[model]`: the built-in trainer's kind, holdout and hyperparameters.
    #[serde(default)]
    pub model: Option<toml::Table>,
    /// `[trainer]`: an external trainer.
    #[serde(default)]
    pub trainer: Option<TrainerSection>,
    /// `[limits]`.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[output]`.
    #[serde(default)]
    pub output: OutputSection,
}

/// `[data]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// `sha256:<hex>` or a path.
    pub dataset: String,
    /// The label column.
    #[serde(default)]
    pub label: Option<String>,
    /// Columns left out of the features.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// A base model.
    #[serde(default)]
    pub base_model: Option<PathBuf>,
    /// Rows held out before the trainer starts, for rampart to score its model on (default
    /// 0.2 with a label; `[model] holdout` wins for the built-in trainer).
    #[serde(default)]
    pub holdout: Option<f64>,
}

/// `[trainer]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerSection {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// Extra readable paths.
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory (default: the file's directory).
    #[serde(default)]
    pub cwd: Option<PathBuf>,
}

/// A size in the file: bytes, or text such as `4GiB`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SizeValue {
    /// Bytes.
    Bytes(u64),
    /// Text with a unit.
    Text(String),
}

/// `[limits]`: every field overrides the policy's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Seconds of wall-clock time.
    pub timeout: Option<u64>,
    /// CPU seconds per process.
    pub cpu: Option<u64>,
    /// Address space per process.
    pub memory: Option<SizeValue>,
    /// Largest file written.
    pub file_size: Option<SizeValue>,
    /// Open files per process.
    pub open_files: Option<u64>,
    /// Processes in the sandbox.
    pub processes: Option<u64>,
}

/// `[output]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// The run directory.
    pub dir: Option<PathBuf>,
}

/// A `train.toml` that cannot be used: the file, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong (syntax, unknown key, both or neither of `[model]` and `[trainer]`, an
    /// empty command).
    pub reason: String,
}

impl TrainConfig {
    /// Parses the text of `path` and makes its relative paths relative to its directory.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file and the problem (syntax, unknown key, both or neither
    /// of `[model]` and `[trainer]`, an empty command).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let bad = |reason: &str| ConfigError {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let mut c: Self =
            toml::from_str(text).map_err(|e| bad(&e.to_string().trim().replace('\n', " ")))?;
        match (&c.model, &c.trainer) {
            (Some(_), Some(_)) => {
                return Err(bad("[model] and [trainer] are alternatives; keep one"));
            }
            (None, None) => {
                return Err(bad(
                    "say what to train: a [model] table (built-in) or a [trainer] table (your command)",
                ));
            }
            (None, Some(t)) if t.command.is_empty() => {
                return Err(bad("[trainer] command is empty"));
            }
            _ => {}
        }
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if !c.data.dataset.starts_with("sha256:") {
            let p = Path::new(&c.data.dataset);
            if p.is_relative() {
                c.data.dataset = base.join(p).display().to_string();
            }
        }
        if let Some(b) = &mut c.data.base_model {
            fix(b);
        }
        if let Some(t) = &mut c.trainer {
            t.read.iter_mut().for_each(fix);
            match &mut t.cwd {
                Some(cwd) => fix(cwd),
                None => t.cwd = Some(base.to_path_buf()),
            }
        }
        if let Some(d) = &mut c.output.dir {
            fix(d);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TrainConfig;

    #[test]
    fn parses_both_forms_and_anchors_paths() {
        let c = TrainConfig::parse(
            "[data]\ndataset = \"d.csv\"\nlabel = \"y\"\n[model]\nkind = \"logistic\"\nepochs = 3\n[limits]\nmemory = \"1GiB\"\n",
            Path::new("/p/train.toml"),
        )
        .unwrap();
        assert_eq!(c.data.dataset, "/p/d.csv");
        assert_eq!(c.model.unwrap()["epochs"].as_integer(), Some(3));
        let c = TrainConfig::parse(
            "[data]\ndataset = \"sha256:00\"\n[trainer]\ncommand = [\"python3\", \"t.py\"]\nread = [\"src\"]\n",
            Path::new("/p/train.toml"),
        )
        .unwrap();
        assert_eq!(c.data.dataset, "sha256:00");
        let t = c.trainer.unwrap();
        assert_eq!(t.read, vec![Path::new("/p/src")]);
        assert_eq!(t.cwd.as_deref(), Some(Path::new("/p")));
    }

    #[test]
    fn refuses_ambiguous_and_unknown() {
        for (text, needle) in [
            ("[data]\ndataset = \"d\"\n", "say what to train"),
            (
                "[data]\ndataset = \"d\"\n[model]\nkind = \"x\"\n[trainer]\ncommand = [\"a\"]\n",
                "alternatives",
            ),
            (
                "[data]\ndataset = \"d\"\n[trainer]\ncommand = []\n",
                "empty",
            ),
            (
                "[data]\ndataset = \"d\"\ntypo = 1\n[model]\n",
                "unknown field",
            ),
            (
                "[data]\ndataset = \"d\"\n[model]\n[limits]\ntimeout = \"x\"\n",
                "train.toml",
            ),
        ] {
            let e = TrainConfig::parse(text, Path::new("train.toml"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
