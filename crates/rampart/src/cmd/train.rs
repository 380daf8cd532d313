//! `rampart train`: one training run in the sandbox, then the model and its provenance signed
//! (the `rampart_train::service`); this file parses the request and prints the result.

use rampart_train::flags::TrainFlags;
use rampart_train::service::{self, TrainOutcome};
use serde_json::Value;

use crate::cli::Format;
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use crate::training::{builtin_program, train};

pub fn run(ctx: &Ctx, a: &TrainFlags, quiet: bool) -> Result<Status, CliError> {
    ctx.home.require().map_err(|e| {
        CliError::from(e)
            .hint("training signs its model with the home's key: create one with `rampart init`")
    })?;
    let config = a.load_config()?;
    let cwd = std::env::current_dir().map_err(CliError::internal)?;
    let req = a.request(config.as_ref(), &builtin_program()?, cwd)?;
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
    text.push_str(&format!(
        "  metrics     {} (computed by rampart)\n",
        service::computed_summary(&t.computed)
    ));
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
            text.push_str(&format!(
                "  reported    {} (self-reported by the trainer)\n",
                shown.join("  ")
            ));
        }
    }
    text.push_str(&format!(
        "  log         {}\n  run         {}\n",
        t.log.display(),
        t.run.display()
    ));
    text
}
