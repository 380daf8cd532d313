//! `rampart ml …`.

use std::path::Path;

use rampart_ml::Estimator;
use rampart_ml::hyper::Hyper;
use rampart_ml::privacy::{DEFAULT_ORDERS, PrivacyError, epsilon, noise_for_epsilon};
use serde_json::json;

use crate::cli::{EvalArgs, Format, MlArgs, MlCommand, PredictArgs, PrivacyArgs, TrainArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use rampart_train::builtin::{self, FitRequest, Fitted};

pub fn run(ctx: &Ctx, args: &MlArgs) -> Result<Status, CliError> {
    match &args.command {
        MlCommand::Privacy(p) => privacy(ctx, p),
        MlCommand::Train(t) => train(ctx, t),
        MlCommand::Eval(e) => eval(ctx, e),
        MlCommand::Predict(p) => predict(ctx, p),
    }
}

fn input_err(msg: impl std::fmt::Display) -> CliError {
    CliError::input(anyhow::anyhow!("{msg}"))
}

fn check_output(path: &Path, force: bool) -> Result<(), CliError> {
    if path != Path::new("-") && path.exists() && !force {
        return Err(
            input_err(format!("{} exists", path.display())).hint("pass --force to replace it")
        );
    }
    Ok(())
}

fn train(ctx: &Ctx, a: &TrainArgs) -> Result<Status, CliError> {
    check_output(&a.output, a.force)?;
    let policy = ctx.policy_or_default()?;
    let written = builtin::train_here(
        &ctx.session(&policy)?,
        &FitRequest {
            data: &a.data,
            kind: a.kind,
            label: a.label.as_deref(),
            ignore: &a.ignore,
            hyper: &a.hyper,
            holdout: 0.0,
        },
        builtin::open_table(&ctx.session(&policy)?, &a.data, "ml")?,
        &a.output,
    )?;
    let (model_digest, size) = (written.digest, written.bytes);
    let Fitted {
        model,
        rows,
        features,
        classes,
        data_digest,
        fit_seconds,
        ..
    } = written.fitted;
    let privacy = match &model.estimator {
        Estimator::LogisticRegression(m) => m.privacy().cloned(),
        _ => None,
    };
    if privacy
        .as_ref()
        .is_some_and(|p| p.scaling == "data-min-max")
    {
        tracing::warn!(
            "DP-SGD scaled features by the training data's min and max; those ranges are not \
             covered by ε (pass public bounds through the library API to cover them)"
        );
    }
    let nodes = match &model.estimator {
        Estimator::RandomForest(m) => Some(m.n_nodes()),
        _ => None,
    };
    let report = json!({
        "model": a.output,
        "model_digest": model_digest,
        "kind": model.meta.kind.to_string(),
        "rows": rows,
        "features": features,
        "classes": classes,
        "data_digest": data_digest,
        "fit_seconds": fit_seconds,
        "nodes": nodes,
        "isolation": model.meta.isolation,
        "privacy": privacy,
        "bytes": size,
    });
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&report)?,
        Format::Human => {
            let mut text = format!(
                "trained {} on {} rows × {} features in {fit_seconds:.2} s → {} ({})\n",
                model.meta.kind,
                rows,
                features.len(),
                a.output.display(),
                output::bytes(size)
            );
            if let Some(p) = &privacy {
                text.push_str(&format!(
                    "  DP-SGD: ε = {:.4} at δ = {} (σ = {:.4}, q = {:.5}, {} steps, clip {})\n",
                    p.epsilon, p.delta, p.noise, p.sample_rate, p.steps, p.clip_norm
                ));
            }
            output::print(&text)?;
        }
    }
    Ok(Status::Ok)
}

fn eval(ctx: &Ctx, a: &EvalArgs) -> Result<Status, CliError> {
    let policy = ctx.policy_or_default()?;
    let e = builtin::evaluate(
        &ctx.session(&policy)?,
        &a.model,
        &a.data,
        &a.label,
        &a.anomaly_label,
    )?;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&e)?,
        Format::Human => {
            let m = &e.evaluation;
            let f = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.4}"));
            let matrix: Vec<String> = m
                .confusion_matrix
                .iter()
                .map(|r| format!("  {}", serde_json::json!(r)))
                .collect();
            output::print(&format!(
                "{} rows: accuracy {}  ROC AUC {}  F1 (macro) {}  log loss {}\nconfusion matrix (rows: true {}, columns: predicted):\n{}\n",
                e.rows,
                f(Some(m.accuracy)),
                f(m.roc_auc),
                f(Some(m.f1_macro)),
                f(m.log_loss),
                serde_json::json!(m.classes),
                matrix.join("\n")
            ))?;
        }
    }
    Ok(Status::Ok)
}

fn predict(ctx: &Ctx, a: &PredictArgs) -> Result<Status, CliError> {
    check_output(&a.output, a.force)?;
    let policy = ctx.policy_or_default()?;
    let session = ctx.session(&policy)?;
    let p = crate::outfile::write_output(&a.output, true, |w| {
        Ok(builtin::predict(&session, &a.model, &a.data, w)?)
    })?;
    if a.output != Path::new("-") && ctx.format == Format::Human {
        output::print(&format!(
            "predicted {} rows → {}\n",
            p.rows,
            a.output.display()
        ))?;
    }
    Ok(Status::Ok)
}

fn input(e: PrivacyError) -> CliError {
    CliError::input(e)
}

fn privacy(ctx: &Ctx, p: &PrivacyArgs) -> Result<Status, CliError> {
    match (p.noise, p.target_epsilon) {
        (Some(sigma), _) => {
            let (eps, order) =
                epsilon(p.sample_rate, sigma, p.steps, p.delta, DEFAULT_ORDERS).map_err(input)?;
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "epsilon": eps, "order": order, "delta": p.delta,
                    "sample_rate": p.sample_rate, "noise": sigma, "steps": p.steps,
                }))?,
                Format::Human => output::print(&format!(
                    "ε = {eps:.6} at δ = {} (best RDP order {order}) for q = {}, σ = {sigma}, {} steps\n",
                    p.delta, p.sample_rate, p.steps
                ))?,
            }
        }
        (None, Some(target)) => {
            let sigma = noise_for_epsilon(p.sample_rate, p.steps, p.delta, target, DEFAULT_ORDERS)
                .map_err(input)?;
            let (eps, order) =
                epsilon(p.sample_rate, sigma, p.steps, p.delta, DEFAULT_ORDERS).map_err(input)?;
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "noise": sigma, "epsilon": eps, "order": order, "target_epsilon": target,
                    "delta": p.delta, "sample_rate": p.sample_rate, "steps": p.steps,
                }))?,
                Format::Human => output::print(&format!(
                    "σ = {sigma:.6} reaches ε = {eps:.6} ≤ {target} at δ = {} for q = {}, {} steps\n",
                    p.delta, p.sample_rate, p.steps
                ))?,
            }
        }
        (None, None) => {
            return Err(CliError::input(anyhow::anyhow!(
                "pass --noise or --target-epsilon"
            )));
        }
    }
    Ok(Status::Ok)
}

/// `rampart __train-builtin`: the built-in trainer as `rampart train` runs it inside the
/// sandbox ([`builtin::run`]): it touches no home and no audit log (the sandbox hides them),
/// and prints one line for the run's log.
pub fn builtin(a: &crate::cli::BuiltinTrainArgs) -> Result<Status, CliError> {
    let hyper: Hyper = match &a.hyper {
        Some(text) => serde_json::from_str(text).map_err(|e| input_err(format!("--hyper: {e}")))?,
        None => Hyper::default(),
    };
    let run = builtin::run(
        &FitRequest {
            data: &a.data,
            kind: a.kind,
            label: a.label.as_deref(),
            ignore: &a.ignore,
            hyper: &hyper,
            holdout: a.holdout,
        },
        &a.output,
        &a.metrics,
    )?;
    let f = &run.fitted;
    output::print(&format!(
        "trained {} on {} rows × {} features in {:.2} s → {} ({}, {}){}\n",
        f.model.meta.kind,
        f.rows,
        f.features.len(),
        f.fit_seconds,
        a.output.display(),
        output::bytes(run.bytes),
        run.digest,
        f.holdout
            .as_ref()
            .map(|h| format!("; holdout accuracy {:.4}", h.accuracy))
            .unwrap_or_default()
    ))?;
    Ok(Status::Ok)
}
