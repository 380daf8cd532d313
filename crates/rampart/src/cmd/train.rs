//! `rampart train`: one training run in the sandbox, then the model and its provenance signed
//! (the `rampart_train::service`); this file parses the request and prints the result.

use rampart_train::config::TrainConfig;
use rampart_train::service::{
    self, ConfigFile, LimitOverrides, RecipeFlags, TrainOutcome, TrainRequest,
};
use serde_json::Value;

use crate::cli::{Format, TrainRunArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use crate::training::{recipe, train};

fn input_err(msg: impl std::fmt::Display) -> CliError {
    CliError::input(anyhow::anyhow!("{msg}"))
}

fn size_flag(v: Option<&String>, flag: &str) -> Result<Option<u64>, CliError> {
    v.map(|m| rampart_home::parse_size(m).map_err(|e| input_err(format!("{flag}: {e}"))))
        .transpose()
}

pub fn run(ctx: &Ctx, a: &TrainRunArgs, quiet: bool) -> Result<Status, CliError> {
    ctx.home.require().map_err(|e| {
        CliError::from(e)
            .hint("training signs its model with the home's key: create one with `rampart init`")
    })?;
    let config = match &a.config {
        Some(p) => {
            let text = rampart_home::secure_fs::read_small_file(p)?;
            let parsed = TrainConfig::parse(&text, p).map_err(input_err)?;
            Some((parsed, p.clone(), text))
        }
        None => None,
    };
    let cfg = config.as_ref().map(|(c, _, _)| c);
    let dataset = a
        .data
        .clone()
        .or_else(|| cfg.map(|c| c.data.dataset.clone()))
        .ok_or_else(|| {
            input_err("name the training data: --data DATASET (or [data] dataset in --config)")
        })?;
    let req = TrainRequest {
        dataset,
        label: a
            .label
            .clone()
            .or_else(|| cfg.and_then(|c| c.data.label.clone())),
        ignore: if a.ignore.is_empty() {
            cfg.map(|c| c.data.ignore.clone()).unwrap_or_default()
        } else {
            a.ignore.clone()
        },
        base_model: a
            .base_model
            .clone()
            .or_else(|| cfg.and_then(|c| c.data.base_model.clone())),
        recipe: recipe(
            &RecipeFlags {
                exec: a.exec.then(|| a.command.clone()),
                kind: a.kind,
                holdout: a.holdout,
                hyper: a.hyper.clone(),
            },
            config.as_ref().map(|(c, p, _)| (c, p.as_path())),
        )?,
        config: config
            .as_ref()
            .map(|(parsed, path, text)| ConfigFile { path, text, parsed }),
        limits: LimitOverrides {
            timeout: a.timeout,
            memory: size_flag(a.memory.as_ref(), "--memory")?,
            max_output: size_flag(a.max_output.as_ref(), "--max-output")?,
            scratch: size_flag(a.scratch.as_ref(), "--scratch")?,
        },
        read: a.read.clone(),
        env: a.env.clone(),
        python: a.python.clone(),
        gpu: a.gpu,
        allow_unsandboxed: a.allow_unsandboxed,
        output: a.output.clone(),
    };
    match train(ctx, &req, quiet)? {
        TrainOutcome::Failed(f) => {
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&f.report)?,
                Format::Human => output::print(&format!(
                    "training FAILED: {}\n  log  {}\n  run  {}\n",
                    f.reason,
                    f.log.display(),
                    f.run.display()
                ))?,
            }
            Ok(Status::Findings)
        }
        TrainOutcome::Trained(t) => {
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&t.report)?,
                Format::Human => output::print(&human(&t))?,
            }
            Ok(Status::Ok)
        }
    }
}

fn human(t: &service::TrainedRun) -> String {
    let total: u64 = t.files.iter().map(|f| f.size).sum();
    let mut text = format!(
        "trained in the sandbox ({}) in {:.1} s\n  model       {} ({} file(s), {}, root sha256:{})\n  dataset     sha256:{}\n  signature   {} (key {})\n  provenance  {}\n",
        t.build,
        t.elapsed.as_secs_f64(),
        t.model_dir.display(),
        t.files.len(),
        output::bytes(total),
        t.root,
        t.dataset,
        t.signature.display(),
        t.key,
        t.provenance.display(),
    );
    if let Some(m) = &t.metrics {
        let shown: Vec<String> = ["accuracy", "roc_auc", "f1_macro", "log_loss"]
            .iter()
            .filter_map(|k| {
                m.get(*k)
                    .and_then(Value::as_f64)
                    .map(|v| format!("{k} {v:.4}"))
            })
            .collect();
        if !shown.is_empty() {
            text.push_str(&format!("  metrics     {}\n", shown.join("  ")));
        }
    }
    text.push_str(&format!(
        "  log         {}\n  run         {}\n",
        t.log.display(),
        t.run.display()
    ));
    text
}
