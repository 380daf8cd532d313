//! `rampart train`'s request as flags: [`TrainFlags`] is the library's description of a run
//! from the command line (and, with the `clap` feature, the flags themselves), merged over a
//! `train.toml` once, by [`TrainFlags::request`].

use std::path::{Path, PathBuf};

use rampart_home::Size;
use rampart_ml::hyper::{Hyper, Kind};

use crate::config::TrainConfig;
use crate::service::{ConfigFile, LimitOverrides, RecipeFlags, ServiceError, TrainRequest};

/// A run as the command line describes it; every setting optional, the config's under it.
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct TrainFlags {
    /// A train.toml describing the run; flags given here override it.
    #[cfg_attr(feature = "clap", arg(long, value_name = "FILE"))]
    pub config: Option<PathBuf>,
    /// The dataset: `sha256:<hex>` of a dataset ingested into the home, or a file inside the
    /// data roots (age-encrypted or not).
    #[cfg_attr(feature = "clap", arg(long, value_name = "DATASET"))]
    pub data: Option<String>,
    /// The label column (built-in classifiers).
    #[cfg_attr(feature = "clap", arg(long, value_name = "COL"))]
    pub label: Option<String>,
    /// Columns to leave out of the features (built-in models).
    #[cfg_attr(feature = "clap", arg(long, value_name = "COL"))]
    pub ignore: Vec<String>,
    /// Train a built-in model of this kind.
    #[cfg_attr(
        feature = "clap",
        arg(long = "model", value_enum, conflicts_with = "exec")
    )]
    pub kind: Option<Kind>,
    /// Hyperparameters of the built-in models.
    #[cfg_attr(
        feature = "clap",
        command(flatten, next_help_heading = "Model settings")
    )]
    pub hyper: Hyper,
    /// Fraction of the labelled rows rampart holds out before the trainer starts and scores
    /// the model on, outside the sandbox (default 0.2; 0 for none: the model is not scored).
    #[cfg_attr(feature = "clap", arg(long, value_name = "F"))]
    pub holdout: Option<f64>,
    /// A base model (fine-tuning): digested into the provenance and readable by the trainer
    /// at $RAMPART_BASE_MODEL.
    #[cfg_attr(feature = "clap", arg(long, value_name = "FILE"))]
    pub base_model: Option<PathBuf>,
    /// Run your own trainer: the command after `--`.
    #[cfg_attr(feature = "clap", arg(long, requires = "command"))]
    pub exec: bool,
    /// The trainer's command (after `--`).
    #[cfg_attr(feature = "clap", arg(last = true, value_name = "COMMAND"))]
    pub command: Vec<String>,
    /// Another path the trainer may read (its code directory, a library), repeatable.
    #[cfg_attr(feature = "clap", arg(long = "read", value_name = "PATH"))]
    pub read: Vec<PathBuf>,
    /// Another environment variable to pass to the trainer, repeatable (never RAMPART_* or
    /// secret-looking names).
    #[cfg_attr(feature = "clap", arg(long = "env", value_name = "NAME"))]
    pub env: Vec<String>,
    /// The run directory (must not exist, or be empty; default: a new one under the home's
    /// runs/).
    #[cfg_attr(feature = "clap", arg(short, long, value_name = "DIR"))]
    pub output: Option<PathBuf>,
    /// Wall-clock limit in seconds (overrides the policy's train.timeout).
    #[cfg_attr(feature = "clap", arg(long, value_name = "SECONDS"))]
    pub timeout: Option<u64>,
    /// Memory limit, e.g. 4GiB (overrides train.memory): the address space of each process,
    /// and the whole sandbox's memory where a memory cgroup is writable.
    #[cfg_attr(feature = "clap", arg(long, value_name = "BYTES"))]
    pub memory: Option<Size>,
    /// Most bytes the trainer may leave in its output, e.g. 8GiB (default 4GiB); checked
    /// before anything is read.
    #[cfg_attr(feature = "clap", arg(long, value_name = "BYTES"))]
    pub max_output: Option<Size>,
    /// Size of the trainer's scratch tmpfs (HOME, TMPDIR) and /dev/shm, e.g. 2GiB (default
    /// 1GiB).
    #[cfg_attr(feature = "clap", arg(long, value_name = "BYTES"))]
    pub scratch: Option<Size>,
    /// The Python interpreter that a `python`/`python3` command runs (a venv's or conda
    /// env's bin/python), instead of the one on PATH (overrides train.python).
    #[cfg_attr(feature = "clap", arg(long, value_name = "PATH"))]
    pub python: Option<PathBuf>,
    /// Expose the NVIDIA GPU device nodes (/dev/nvidia*) to the trainer (or train.gpu).
    #[cfg_attr(feature = "clap", arg(long))]
    pub gpu: bool,
    /// Run even if this machine cannot enforce every protection (audited; the provenance
    /// records what was missing).
    #[cfg_attr(feature = "clap", arg(long))]
    pub allow_unsandboxed: bool,
}

/// A `train.toml`, read and parsed.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// Where it was read.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
    /// Parsed.
    pub parsed: TrainConfig,
}

impl LoadedConfig {
    /// The config as a request carries it.
    #[must_use]
    pub fn file(&self) -> ConfigFile<'_> {
        ConfigFile {
            path: &self.path,
            text: &self.text,
            parsed: &self.parsed,
        }
    }
}

fn request_error(message: String) -> ServiceError {
    ServiceError::Request {
        message,
        hint: None,
    }
}

impl TrainFlags {
    /// The config file `--config` names, read (a small regular file) and parsed.
    ///
    /// # Errors
    /// The file cannot be read, or is not a valid `train.toml` (the error names it).
    pub fn load_config(&self) -> Result<Option<LoadedConfig>, ServiceError> {
        let Some(path) = &self.config else {
            return Ok(None);
        };
        let text = rampart_home::secure_fs::read_small_file(path)?;
        let parsed = TrainConfig::parse(&text, path).map_err(|e| request_error(e.to_string()))?;
        Ok(Some(LoadedConfig {
            path: path.clone(),
            text,
            parsed,
        }))
    }

    /// The request: the flags over `config`, merged once. `program` runs the built-in trainer
    /// ([`crate::service::recipe`]); `cwd` is the directory a command given here runs in.
    ///
    /// # Errors
    /// [`ServiceError::Request`] with no dataset named, or nothing to run.
    pub fn request<'a>(
        &self,
        config: Option<&'a LoadedConfig>,
        program: &Path,
        cwd: PathBuf,
    ) -> Result<TrainRequest<'a>, ServiceError> {
        let cfg = config.map(|c| &c.parsed);
        let dataset = self
            .data
            .clone()
            .or_else(|| cfg.map(|c| c.data.dataset.clone()))
            .ok_or_else(|| {
                request_error(
                    "name the training data: --data DATASET (or [data] dataset in --config)".into(),
                )
            })?;
        let recipe = crate::service::recipe(
            &RecipeFlags {
                exec: self.exec.then(|| self.command.clone()),
                kind: self.kind,
                holdout: self.holdout,
                hyper: self.hyper.clone(),
            },
            config.map(|c| (&c.parsed, c.path.as_path())),
            program,
            cwd,
        )?;
        Ok(TrainRequest {
            dataset,
            label: self
                .label
                .clone()
                .or_else(|| cfg.and_then(|c| c.data.label.clone())),
            ignore: if self.ignore.is_empty() {
                cfg.map(|c| c.data.ignore.clone()).unwrap_or_default()
            } else {
                self.ignore.clone()
            },
            base_model: self
                .base_model
                .clone()
                .or_else(|| cfg.and_then(|c| c.data.base_model.clone())),
            recipe,
            config: config.map(LoadedConfig::file),
            limits: LimitOverrides {
                timeout: self.timeout,
                memory: self.memory.map(|s| s.0),
                max_output: self.max_output.map(|s| s.0),
                scratch: self.scratch.map(|s| s.0),
            },
            read: self.read.clone(),
            env: self.env.clone(),
            python: self.python.clone(),
            // Scoring runs the trainer's ONNX model in this program's `onnx-worker`.
            onnx_worker: Some(
                rampart_onnx::Isolation::rampart(0).map_err(|e| {
                    request_error(format!("this program's path cannot be read: {e}"))
                })?,
            ),
            gpu: self.gpu,
            allow_unsandboxed: self.allow_unsandboxed,
            output: self.output.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Recipe;

    fn loaded(text: &str) -> LoadedConfig {
        let path = PathBuf::from("/cfg/train.toml");
        LoadedConfig {
            parsed: TrainConfig::parse(text, &path).unwrap(),
            path,
            text: text.to_owned(),
        }
    }

    #[test]
    fn flags_win_over_the_config_and_fall_back_on_it() {
        let cfg = loaded(
            "[data]\ndataset = \"sha256:aa\"\nlabel = \"y\"\nignore = [\"id\"]\n[trainer]\ncommand = [\"/bin/true\"]\n",
        );
        let flags = TrainFlags {
            label: Some("target".into()),
            memory: Some("2GiB".parse().unwrap()),
            ..TrainFlags::default()
        };
        let req = flags
            .request(
                Some(&cfg),
                Path::new("/bin/rampart"),
                PathBuf::from("/work"),
            )
            .unwrap();
        assert_eq!(req.dataset, "sha256:aa");
        assert_eq!(req.label.as_deref(), Some("target"));
        assert_eq!(req.ignore, ["id"]);
        assert_eq!(req.limits.memory, Some(2 << 30));
        assert!(matches!(&req.recipe, Recipe::Exec { command, .. } if command == &["/bin/true"]));
        assert_eq!(
            req.config.map(|c| c.path),
            Some(Path::new("/cfg/train.toml"))
        );
        // Flags alone: a dataset is required, and named in the error.
        let bare = TrainFlags {
            kind: Some(Kind::RandomForest),
            ..TrainFlags::default()
        };
        let err = bare
            .request(None, Path::new("/bin/rampart"), PathBuf::from("/work"))
            .unwrap_err();
        assert!(err.to_string().contains("--data DATASET"), "{err}");
        assert!("lots".parse::<Size>().is_err());
    }
}
