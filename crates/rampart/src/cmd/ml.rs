//! `rampart ml …`.

use rampart_audit::Action;
use std::path::Path;
use std::time::Instant;

use rampart_audit::Outcome;
use rampart_ml::forest::{ClassWeight, Criterion, ForestParams, MaxFeatures, RandomForest};
use rampart_ml::iforest::{Contamination, IsolationForest, IsolationParams, MaxSamples};
use rampart_ml::linear::{DpParams, LogisticParams, LogisticRegression};
use rampart_ml::privacy::{DEFAULT_ORDERS, PrivacyError, epsilon, noise_for_epsilon};
use rampart_ml::{Estimator, Model, Prediction, metrics};
use serde_json::{Value, json};

use crate::cli::{
    CriterionChoice, EvalArgs, Format, HyperArgs, MlArgs, MlCommand, ModelChoice, PredictArgs,
    PrivacyArgs, TrainArgs,
};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use rampart_data::table::{self, Spec};

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

fn max_features(text: &str) -> Result<MaxFeatures, CliError> {
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
                return Err(input_err(format!(
                    "--max-features {t}: expected sqrt, log2, all, a count or a fraction in (0, 1]"
                )));
            }
        }
    })
}

fn check_output(path: &Path, force: bool) -> Result<(), CliError> {
    if path != Path::new("-") && path.exists() && !force {
        return Err(
            input_err(format!("{} exists", path.display())).hint("pass --force to replace it")
        );
    }
    Ok(())
}

/// A model fitted by [`fit_model`], with what the reports say about it.
pub struct Fitted {
    pub model: Model,
    pub rows: usize,
    pub features: Vec<String>,
    pub classes: Vec<String>,
    pub data_digest: String,
    pub fit_seconds: f64,
    /// Metrics on the held-out rows (classifiers, when a holdout was asked for).
    pub holdout: Option<Value>,
}

/// Reads a CSV table and fits a built-in model on it. With `holdout` in (0, 1), a classifier
/// is fitted on the other rows (stratified, seeded) and scored on those.
pub fn fit_model(
    data_path: &Path,
    reader: Box<dyn std::io::Read>,
    kind: ModelChoice,
    label: Option<&str>,
    ignore: &[String],
    h: &HyperArgs,
    holdout: f64,
) -> Result<Fitted, CliError> {
    let classifier = kind != ModelChoice::IsolationForest;
    if classifier && label.is_none() {
        return Err(input_err("a classifier needs --label COL").hint("name the column to predict"));
    }
    if h.dp_epsilon.is_some() && kind != ModelChoice::Logistic {
        return Err(input_err("--dp-epsilon is only for --model logistic")
            .hint("DP-SGD trains logistic regression; forests have no DP mode"));
    }
    let data = data_path.display().to_string();
    let mut t = table::read(
        data_path,
        reader,
        &Spec {
            label,
            features: None,
            ignore,
            keep_records: false,
        },
    )?;
    let (classes, y) = match (t.labels.take(), classifier) {
        (Some(l), true) => {
            let classes = table::classes(&l);
            if classes.len() < 2 {
                return Err(input_err(format!(
                    "{data}: the label column has a single value; a classifier needs two classes"
                )));
            }
            let y = table::encode(data_path, &l, &classes)?;
            (classes, y)
        }
        _ => (Vec::new(), Vec::new()),
    };
    // The held-out rows, if any, are set aside before fitting.
    let (y, held) = if classifier && holdout > 0.0 && holdout < 1.0 {
        let (train_rows, test_rows) =
            rampart_ml::split::train_test_split(t.x.rows(), holdout, h.seed, Some(&y));
        if train_rows.is_empty() || test_rows.is_empty() {
            return Err(input_err(format!(
                "{data}: too few rows to hold {holdout} of them out"
            )));
        }
        let test_x = t.x.select_rows(&test_rows);
        let test_y: Vec<usize> = test_rows
            .iter()
            .filter_map(|&i| y.get(i).copied())
            .collect();
        t.x = t.x.select_rows(&train_rows);
        let train_y: Vec<usize> = train_rows
            .iter()
            .filter_map(|&i| y.get(i).copied())
            .collect();
        (train_y, Some((test_x, test_y)))
    } else {
        (y, None)
    };
    fit_rest(t, &y, classes, kind, label, h, held)
}

#[allow(clippy::too_many_arguments)]
fn fit_rest(
    t: table::Table,
    y: &[usize],
    classes: Vec<String>,
    kind: ModelChoice,
    label: Option<&str>,
    h: &HyperArgs,
    held: Option<(rampart_ml::Matrix, Vec<usize>)>,
) -> Result<Fitted, CliError> {
    let started = Instant::now();
    let (estimator, hyper) = match kind {
        ModelChoice::RandomForest => {
            let p = ForestParams {
                n_trees: h.trees,
                criterion: match h.criterion {
                    CriterionChoice::Gini => Criterion::Gini,
                    CriterionChoice::Entropy => Criterion::Entropy,
                },
                max_depth: h.max_depth,
                min_samples_split: h.min_samples_split,
                min_samples_leaf: h.min_samples_leaf,
                max_features: max_features(&h.max_features)?,
                bootstrap: !h.no_bootstrap,
                class_weight: if h.balanced {
                    ClassWeight::Balanced
                } else {
                    ClassWeight::None
                },
                max_bins: rampart_ml::bins::MAX_BINS,
                seed: h.seed,
            };
            let m = RandomForest::fit(&t.x, y, classes.len(), &p).map_err(input_err)?;
            (Estimator::RandomForest(m), serde_json::to_value(&p))
        }
        ModelChoice::IsolationForest => {
            let contamination = match h.contamination.as_str() {
                "auto" => Contamination::Auto,
                c => Contamination::Fraction(c.parse().map_err(|_| {
                    input_err(format!("--contamination {c}: expected auto or a fraction"))
                })?),
            };
            let p = IsolationParams {
                n_trees: h.trees,
                max_samples: h.max_samples.map_or(MaxSamples::Auto, MaxSamples::Count),
                contamination,
                seed: h.seed,
            };
            let m = IsolationForest::fit(&t.x, &p).map_err(input_err)?;
            (Estimator::IsolationForest(m), serde_json::to_value(&p))
        }
        ModelChoice::Logistic => {
            let dp = h
                .dp_epsilon
                .zip(h.dp_delta)
                .map(|(epsilon, delta)| DpParams {
                    epsilon,
                    delta,
                    clip_norm: h.dp_clip,
                    ..DpParams::default()
                });
            let base = LogisticParams::default();
            let p = LogisticParams {
                epochs: h
                    .epochs
                    .unwrap_or(if dp.is_some() { 10 } else { base.epochs }),
                batch_size: h.batch_size.unwrap_or(base.batch_size),
                learning_rate: h.learning_rate.unwrap_or(if dp.is_some() {
                    0.5
                } else {
                    base.learning_rate
                }),
                seed: h.seed,
                dp,
                ..base
            };
            let m = LogisticRegression::fit(&t.x, y, classes.len(), &p).map_err(input_err)?;
            (Estimator::LogisticRegression(m), serde_json::to_value(&p))
        }
    };
    let fit_seconds = started.elapsed().as_secs_f64();
    let hyper = hyper.map_err(CliError::internal)?;
    let mut model = Model::new(estimator, &t.x, t.features.clone(), classes.clone(), hyper)
        .map_err(input_err)?;
    model.meta.label = label.map(str::to_owned);
    model.meta.training_data_digest = Some(t.digest.clone());
    let holdout = match held {
        Some((x, truth)) => {
            let preds = model.predict(&x).map_err(input_err)?;
            let mut m = class_metrics(preds, &truth, &model.meta.classes)?;
            if let Value::Object(o) = &mut m {
                o.insert("rows_train".into(), json!(t.x.rows()));
            }
            Some(m)
        }
        None => None,
    };
    Ok(Fitted {
        rows: t.x.rows(),
        features: t.features,
        classes,
        data_digest: t.digest,
        fit_seconds,
        holdout,
        model,
    })
}

fn train(ctx: &Ctx, a: &TrainArgs) -> Result<Status, CliError> {
    check_output(&a.output, a.force)?;
    let data = a.data.display().to_string();
    let f = fit_model(
        &a.data,
        open_data(ctx, &a.data)?,
        a.kind,
        a.label.as_deref(),
        &a.ignore,
        &a.hyper,
        0.0,
    )?;
    let Fitted {
        model,
        rows,
        features,
        classes,
        data_digest,
        fit_seconds,
        ..
    } = f;
    let (model_digest, size) = write_model(&model, &a.output)?;
    let privacy = match &model.estimator {
        Estimator::LogisticRegression(m) => m.privacy().cloned(),
        _ => None,
    };
    let mut event = ctx
        .event(Action::MlTrain, Outcome::Ok)
        .subject_path(a.output.display().to_string())
        .detail("model_digest", model_digest.clone())
        .detail("kind", model.meta.kind.to_string())
        .detail("data", data.clone())
        .detail("data_digest", data_digest.clone())
        .detail("rows", rows);
    if let Some(p) = &privacy {
        event = event
            .detail("dp_epsilon", p.epsilon)
            .detail("dp_delta", p.delta);
    }
    ctx.audit(event)?;
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

/// Writes the model next to `out` under a temporary name, hashes it, syncs it and renames it
/// into place: readers see the old file or the whole new one. Returns the digest and size.
fn write_model(model: &Model, out: &Path) -> Result<(String, u64), CliError> {
    let internal = |e: std::io::Error| {
        CliError::internal(anyhow::Error::new(e).context(format!("cannot write {}", out.display())))
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".rampart-model-")
        .tempfile_in(dir)
        .map_err(internal)?;
    model
        .write_file(tmp.path())
        .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
    let mut file = std::fs::File::open(tmp.path()).map_err(internal)?;
    let mut hasher = rampart_crypto::Sha256Hasher::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(internal)?;
    file.sync_all().map_err(internal)?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(internal)?;
    tmp.persist(out).map_err(|e| internal(e.error))?;
    Ok((hasher.finish().reference().to_string(), size))
}

/// Bytes of a model file, refusing anything over `limit`.
fn read_model_file(path: &Path, limit: u64) -> Result<Vec<u8>, CliError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot open {}", path.display())))
    })?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::input(anyhow::anyhow!("{}: cannot read: {e}", path.display())))?;
    if bytes.len() as u64 > limit {
        return Err(CliError::input(anyhow::anyhow!(
            "{}: larger than the {limit}-byte model limit",
            path.display()
        )));
    }
    Ok(bytes)
}

fn load_model(path: &Path) -> Result<Model, CliError> {
    let bytes = read_model_file(path, MAX_MODEL_BYTES)?;
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

/// Accuracy, ROC AUC, F1, precision, recall, log loss and the confusion matrix of a
/// classifier's predictions.
fn class_metrics(
    preds: Vec<Prediction>,
    truth: &[usize],
    classes: &[String],
) -> Result<Value, CliError> {
    let m = |e: metrics::MetricError| CliError::internal(anyhow::Error::new(e));
    let (pred, proba): (Vec<usize>, Vec<Vec<f64>>) = preds
        .into_iter()
        .map(|p| match p {
            Prediction::Class { class, proba } => (class, proba),
            Prediction::Anomaly { .. } => (0, Vec::new()),
        })
        .unzip();
    let k = classes.len();
    let cm = metrics::confusion_matrix(truth, &pred, k).map_err(m)?;
    let scores = metrics::class_scores(&cm);
    // Binary: AUC of the second class; multi-class: macro one-vs-rest over the classes
    // present.
    let auc = if k == 2 {
        let s: Vec<f64> = proba
            .iter()
            .map(|p| p.get(1).copied().unwrap_or(0.0))
            .collect();
        metrics::roc_auc(truth, &s).ok()
    } else {
        let per: Vec<f64> = (0..k)
            .filter_map(|c| {
                let tc: Vec<usize> = truth.iter().map(|&t| usize::from(t == c)).collect();
                let s: Vec<f64> = proba
                    .iter()
                    .map(|p| p.get(c).copied().unwrap_or(0.0))
                    .collect();
                metrics::roc_auc(&tc, &s).ok()
            })
            .collect();
        #[allow(clippy::cast_precision_loss)]
        (!per.is_empty()).then(|| per.iter().sum::<f64>() / per.len() as f64)
    };
    // Binary: the ROC curve too, thinned to at most ~200 points (its end points kept), for
    // reports to draw.
    let roc = if k == 2 {
        let s: Vec<f64> = proba
            .iter()
            .map(|p| p.get(1).copied().unwrap_or(0.0))
            .collect();
        metrics::roc_curve(truth, &s).ok().map(|c| {
            let step = c.len().div_ceil(200).max(1);
            let last = c.len().saturating_sub(1);
            c.iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0 || *i == last)
                .map(|(_, &(f, t))| [f, t])
                .collect::<Vec<_>>()
        })
    } else {
        None
    };
    Ok(json!({
        "accuracy": metrics::accuracy(truth, &pred).map_err(m)?,
        "roc_auc": auc,
        "roc_curve": roc,
        "f1_macro": scores.f1_macro,
        "precision": scores.precision,
        "recall": scores.recall,
        "log_loss": metrics::log_loss(truth, &proba).map_err(m)?,
        "confusion_matrix": cm,
        "classes": classes,
    }))
}

fn eval(ctx: &Ctx, a: &EvalArgs) -> Result<Status, CliError> {
    let model = load_model(&a.model)?;
    let t = read_for(ctx, &model, &a.data, Some(&a.label), false)?;
    let labels = t.labels.clone().unwrap_or_default();
    let preds = model.predict(&t.x).map_err(input_err)?;
    let m = |e: metrics::MetricError| CliError::internal(anyhow::Error::new(e));
    let report = if model.estimator.n_classes() == 0 {
        let truth: Vec<usize> = labels
            .iter()
            .map(|l| usize::from(*l == a.anomaly_label))
            .collect();
        let (scores, flags): (Vec<f64>, Vec<usize>) = preds
            .iter()
            .map(|p| match p {
                Prediction::Anomaly { score, is_anomaly } => (*score, usize::from(*is_anomaly)),
                Prediction::Class { .. } => (0.0, 0),
            })
            .unzip();
        let cm = metrics::confusion_matrix(&truth, &flags, 2).map_err(m)?;
        json!({
            "rows": t.x.rows(),
            "roc_auc": metrics::roc_auc(&truth, &scores).ok(),
            "accuracy": metrics::accuracy(&truth, &flags).map_err(m)?,
            "f1_macro": metrics::class_scores(&cm).f1_macro,
            "log_loss": Value::Null,
            "confusion_matrix": cm,
            "classes": ["normal", "anomaly"],
        })
    } else {
        let truth = table::encode(&a.data, &labels, &model.meta.classes)?;
        let mut v = class_metrics(preds, &truth, &model.meta.classes)?;
        if let Value::Object(o) = &mut v {
            o.insert("rows".into(), json!(t.x.rows()));
        }
        v
    };
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
/// sandbox. It touches no home and no audit log (it cannot: the sandbox hides them); it reads
/// the dataset, writes the model and `metrics.json`, and prints one line for the run's log.
pub fn builtin(a: &crate::cli::BuiltinTrainArgs) -> Result<Status, CliError> {
    let f = std::fs::File::open(&a.data).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot open {}", a.data.display())))
    })?;
    let fitted = fit_model(
        &a.data,
        Box::new(std::io::BufReader::new(f)),
        a.kind,
        a.label.as_deref(),
        &a.ignore,
        &a.hyper,
        a.holdout,
    )?;
    let (digest, size) = write_model(&fitted.model, &a.output)?;
    let privacy = match &fitted.model.estimator {
        Estimator::LogisticRegression(m) => m.privacy().cloned(),
        _ => None,
    };
    let mut metrics = json!({
        "kind": fitted.model.meta.kind.to_string(),
        "rows": fitted.rows,
        "features": fitted.features.len(),
        "fit_seconds": fitted.fit_seconds,
    });
    if let (Value::Object(m), Some(Value::Object(h))) = (&mut metrics, &fitted.holdout) {
        m.insert("holdout".into(), json!(a.holdout));
        for (k, v) in h {
            m.insert(k.clone(), v.clone());
        }
    }
    if let (Value::Object(m), Some(iso)) = (&mut metrics, &fitted.model.meta.isolation) {
        m.insert(
            "isolation".into(),
            serde_json::to_value(iso).unwrap_or_default(),
        );
    }
    if let (Value::Object(m), Some(p)) = (&mut metrics, &privacy) {
        m.insert(
            "dp".into(),
            json!({"epsilon": p.epsilon, "delta": p.delta, "noise": p.noise, "steps": p.steps}),
        );
    }
    let mut bytes = serde_json::to_vec_pretty(&metrics).map_err(CliError::internal)?;
    bytes.push(b'\n');
    std::fs::write(&a.metrics, bytes).map_err(|e| {
        CliError::internal(
            anyhow::Error::new(e).context(format!("cannot write {}", a.metrics.display())),
        )
    })?;
    output::print(&format!(
        "trained {} on {} rows × {} features in {:.2} s → {} ({}, {digest}){}\n",
        fitted.model.meta.kind,
        fitted.rows,
        fitted.features.len(),
        fitted.fit_seconds,
        a.output.display(),
        output::bytes(size),
        fitted
            .holdout
            .as_ref()
            .and_then(|h| h.get("accuracy"))
            .and_then(Value::as_f64)
            .map(|acc| format!("; holdout accuracy {acc:.4}"))
            .unwrap_or_default()
    ))?;
    Ok(Status::Ok)
}
