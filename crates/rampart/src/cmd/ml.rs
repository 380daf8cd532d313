//! `rampart ml …`.

use rampart_audit::Action;
use std::path::Path;

use rampart_audit::Outcome;
use rampart_ml::hyper::Hyper;
use rampart_ml::privacy::{DEFAULT_ORDERS, PrivacyError, epsilon, noise_for_epsilon};
use rampart_ml::{Estimator, Model, Prediction, metrics};
use serde_json::{Value, json};

use crate::cli::{EvalArgs, Format, MlArgs, MlCommand, PredictArgs, PrivacyArgs, TrainArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use rampart_data::table::{self, Spec};
use rampart_train::builtin::{self, FitRequest, Fitted};

/// Largest model file `ml eval` / `ml predict` will read.
pub const MAX_MODEL_BYTES: u64 = 8 << 30;

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
        open_data(ctx, &a.data)?,
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

fn load_model(path: &Path) -> Result<Model, CliError> {
    // A regular file of at most the model limit (never a FIFO or a device).
    let bytes = rampart_home::secure_fs::read_limited(path, MAX_MODEL_BYTES)?;
    Model::from_bytes(&bytes).map_err(|e| {
        input_err(format!("{}: {e}", path.display()))
            .hint("only models written by `rampart ml train` load here")
    })
}

/// The table to read: a CSV file, or `sha256:<hex>`, a dataset ingested into the home's store
/// (decrypted in memory with the home's identity).
fn open_data(ctx: &Ctx, data: &Path) -> Result<Box<dyn std::io::Read>, CliError> {
    let text = data.to_string_lossy();
    if text.starts_with("sha256:") {
        let store = rampart_ingest::DatasetStore::of(&ctx.home);
        let ds = store.lookup(&text)?;
        if ds.format != rampart_data::stream::DataFormat::Csv {
            return Err(
                input_err(format!("no CSV dataset {text} in the home's store"))
                    .hint("that dataset is Parquet; the built-in models read CSV"),
            );
        }
        let policy = ctx.home.load_policy()?;
        let (_, reader) = rampart_ingest::open::open_stored(&ctx.session(&policy)?, &text, "ml")?;
        return Ok(Box::new(reader));
    }
    let f = std::fs::File::open(data).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot open {}", data.display())))
    })?;
    Ok(Box::new(f))
}

fn read_for(
    ctx: &Ctx,
    model: &Model,
    data: &Path,
    label: Option<&str>,
    keep: bool,
) -> Result<table::Table, CliError> {
    Ok(table::read(
        data,
        open_data(ctx, data)?,
        &Spec {
            label,
            features: Some(&model.meta.features),
            ignore: &[],
            keep_records: keep,
        },
    )?)
}

fn eval(ctx: &Ctx, a: &EvalArgs) -> Result<Status, CliError> {
    let model = load_model(&a.model)?;
    let t = read_for(ctx, &model, &a.data, Some(&a.label), false)?;
    let labels = t.labels.clone().unwrap_or_default();
    let preds = model.predict(&t.x).map_err(input_err)?;
    let m = |e: metrics::MetricError| CliError::internal(anyhow::Error::new(e));
    let scores = if model.estimator.n_classes() == 0 {
        let truth: Vec<usize> = labels
            .iter()
            .map(|l| usize::from(*l == a.anomaly_label))
            .collect();
        metrics::evaluate_anomalies(&preds, &truth).map_err(m)?
    } else {
        let truth = table::encode(&a.data, &labels, &model.meta.classes)?;
        metrics::evaluate_classes(&preds, &truth, &model.meta.classes).map_err(m)?
    };
    let mut report = serde_json::to_value(&scores).map_err(CliError::internal)?;
    if let Value::Object(o) = &mut report {
        o.insert("rows".into(), json!(t.x.rows()));
    }
    ctx.audit(
        ctx.event(Action::MlEval, Outcome::Ok)
            .subject_path(a.model.display().to_string())
            .detail("data", a.data.display().to_string())
            .detail("data_digest", t.digest.clone())
            .detail(
                "accuracy",
                report.get("accuracy").cloned().unwrap_or_default(),
            ),
    )?;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&report)?,
        Format::Human => {
            let f = |k: &str| {
                report
                    .get(k)
                    .and_then(Value::as_f64)
                    .map_or("n/a".to_owned(), |v| format!("{v:.4}"))
            };
            output::print(&format!(
                "{} rows: accuracy {}  ROC AUC {}  F1 (macro) {}  log loss {}\nconfusion matrix (rows: true {}, columns: predicted):\n{}\n",
                t.x.rows(),
                f("accuracy"),
                f("roc_auc"),
                f("f1_macro"),
                f("log_loss"),
                report.get("classes").cloned().unwrap_or_default(),
                report
                    .get("confusion_matrix")
                    .and_then(Value::as_array)
                    .map(|rows| rows
                        .iter()
                        .map(|r| format!("  {r}"))
                        .collect::<Vec<_>>()
                        .join("\n"))
                    .unwrap_or_default()
            ))?;
        }
    }
    Ok(Status::Ok)
}

fn predict(ctx: &Ctx, a: &PredictArgs) -> Result<Status, CliError> {
    check_output(&a.output, a.force)?;
    let model = load_model(&a.model)?;
    let t = read_for(ctx, &model, &a.data, None, true)?;
    let preds = model.predict(&t.x).map_err(input_err)?;
    let mut header: Vec<String> = t.header.clone();
    let added: Vec<String> = if model.estimator.n_classes() == 0 {
        vec!["anomaly_score".into(), "is_anomaly".into()]
    } else {
        std::iter::once("prediction".to_owned())
            .chain(model.meta.classes.iter().map(|c| format!("proba_{c}")))
            .collect()
    };
    if let Some(clash) = added.iter().find(|c| header.contains(c)) {
        return Err(input_err(format!(
            "{}: already has a column `{clash}`, which the output adds",
            a.data.display()
        ))
        .hint("rename or drop that column first"));
    }
    header.extend(added);
    let mut buf = Vec::new();
    {
        let mut w = csv::Writer::from_writer(&mut buf);
        let werr = |e: csv::Error| CliError::internal(anyhow::Error::new(e));
        w.write_record(&header).map_err(werr)?;
        for (record, p) in t.records.iter().zip(&preds) {
            let mut row: Vec<String> = record.clone();
            match p {
                Prediction::Class { class, proba } => {
                    row.push(model.meta.classes.get(*class).cloned().unwrap_or_default());
                    row.extend(proba.iter().map(ToString::to_string));
                }
                Prediction::Anomaly { score, is_anomaly } => {
                    row.push(score.to_string());
                    row.push(is_anomaly.to_string());
                }
            }
            w.write_record(&row).map_err(werr)?;
        }
        w.flush()
            .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
    }
    if a.output == Path::new("-") {
        output::product(&String::from_utf8_lossy(&buf))?;
    } else {
        rampart_home::secure_fs::atomic_write(&a.output, &buf, 0o644)
            .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
    }
    ctx.audit(
        ctx.event(Action::MlPredict, Outcome::Ok)
            .subject_path(a.model.display().to_string())
            .detail("data", a.data.display().to_string())
            .detail("data_digest", t.digest.clone())
            .detail("rows", t.x.rows()),
    )?;
    if a.output != Path::new("-") && ctx.format == Format::Human {
        output::print(&format!(
            "predicted {} rows → {}\n",
            t.x.rows(),
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
