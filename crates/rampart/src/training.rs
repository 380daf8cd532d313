//! A training run from the command line or a pipeline step: what runs (`--exec`, `--model`,
//! a config's `[trainer]` or `[model]`), and the `rampart_train::service` called in-process
//! with the keys at hand.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rampart_sandbox::{Sandbox, Stream};
use rampart_train::config::TrainConfig;
use rampart_train::service::{self, Recipe, TrainOutcome, TrainRequest};

use crate::cli::{ModelChoice, UnlockArgs};
use crate::context::Ctx;
use crate::error::CliError;
use crate::hyper::{hyper_args, model_choice};

fn input_err(msg: impl std::fmt::Display) -> CliError {
    CliError::input(anyhow::anyhow!("{msg}"))
}

/// What the command line says should run (none of it for a pipeline step).
#[derive(Debug, Default)]
pub struct RecipeFlags {
    /// `--exec -- COMMAND`.
    pub exec: Option<Vec<String>>,
    /// `--model KIND`.
    pub kind: Option<ModelChoice>,
    /// `--holdout F`.
    pub holdout: Option<f64>,
}

/// The model kind's name, as the built-in trainer takes it.
pub fn kind_name(kind: ModelChoice) -> String {
    clap::ValueEnum::to_possible_value(&kind)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

/// The rampart executable, which runs the built-in trainer inside the sandbox.
pub fn builtin_program() -> Result<PathBuf, CliError> {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(CliError::internal)
}

/// What runs: `--exec`, `--model`, the config's `[trainer]`, or its `[model]`.
///
/// # Errors
/// Nothing to run, or a `[model]` table the built-in trainer does not take.
pub fn recipe(a: &RecipeFlags, config: Option<(&TrainConfig, &Path)>) -> Result<Recipe, CliError> {
    let cfg = config.map(|(c, _)| c);
    let cfg_path = config.map(|(_, p)| p);
    let cwd = std::env::current_dir().map_err(CliError::internal)?;
    if let Some(command) = &a.exec {
        return Ok(Recipe::Exec {
            command: command.clone(),
            cwd,
            read: Vec::new(),
            env: Vec::new(),
        });
    }
    let builtin = |kind: ModelChoice, model: Option<&toml::Table>| -> Result<Recipe, CliError> {
        let holdout = a
            .holdout
            .or_else(|| model?.get("holdout")?.as_float())
            .unwrap_or(0.2);
        Ok(Recipe::Builtin {
            program: builtin_program()?,
            kind: kind_name(kind),
            holdout,
            hyper: hyper_args(model, cfg_path)?,
        })
    };
    if let Some(kind) = a.kind {
        return builtin(kind, cfg.and_then(|c| c.model.as_ref()));
    }
    if let Some(t) = cfg.and_then(|c| c.trainer.as_ref()) {
        return Ok(Recipe::Exec {
            command: t.command.clone(),
            cwd: t.cwd.clone().unwrap_or(cwd),
            read: t.read.clone(),
            env: t.env.clone(),
        });
    }
    if let Some(m) = cfg.and_then(|c| c.model.as_ref()) {
        let kind = m
            .get("kind")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| {
                input_err(
                    "[model] needs kind = \"random-forest\", \"isolation-forest\" or \"logistic\"",
                )
            })
            .and_then(model_choice)?;
        return builtin(kind, Some(m));
    }
    Err(input_err("say what to train").hint(
        "--model random-forest|isolation-forest|logistic, --exec -- COMMAND, or --config train.toml",
    ))
}

/// Runs a training request in-process, with the keys at hand for an encrypted dataset file and
/// the trainer's output shown unless `quiet`.
pub fn train(ctx: &Ctx, req: &TrainRequest<'_>, quiet: bool) -> Result<TrainOutcome, CliError> {
    let policy = ctx.home.load_policy()?;
    let session = ctx.session(&policy)?;
    let sandbox = Sandbox::current_exe().map_err(CliError::internal)?;
    let mut show = |_: Stream, chunk: &[u8]| {
        if !quiet {
            let _ = std::io::stderr().write_all(chunk);
        }
    };
    let none = UnlockArgs {
        identities: Vec::new(),
        passphrase_file: None,
    };
    // The keys are loaded only for an age file; their error (with its hint) is the user's.
    let failed = std::cell::RefCell::new(None);
    let keys = || {
        crate::unlock::unlock(ctx, &none).map_err(|e| {
            let text = e.message();
            *failed.borrow_mut() = Some(e);
            rampart_ingest::IngestError::Request(text)
        })
    };
    let outcome = service::train(
        &session,
        req,
        rampart_ingest::open::Keys::Lazy(&keys),
        &sandbox,
        &mut show,
    );
    let outcome = outcome.map_err(|e| failed.take().unwrap_or_else(|| e.into()))?;
    let missing = match &outcome {
        TrainOutcome::Trained(t) => &t.missing,
        TrainOutcome::Failed(f) => &f.missing,
    };
    if !missing.is_empty() {
        tracing::warn!(
            "ran without: {}",
            missing
                .iter()
                .map(|(s, why)| format!("{s} ({why})"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(outcome)
}
