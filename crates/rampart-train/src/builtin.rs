//! The built-in trainer: a CSV table fitted with one of `rampart-ml`'s models, written as a
//! model file and its metrics record. `rampart train` runs it inside the sandbox (as
//! `rampart __train-builtin`, through [`run`]); `rampart ml train` calls [`fit`] on the host.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rampart_data::table::{self, Spec, TableError};
use rampart_ml::hyper::{FitError, Hyper, HyperError, Kind};
use rampart_ml::metrics::{Evaluation, MetricError};
use rampart_ml::{Estimator, Model, Prediction};
use serde::{Deserialize, Serialize};

/// What to fit.
#[derive(Debug, Clone, Copy)]
pub struct FitRequest<'a> {
    /// The table's path (named in errors and recorded in the model).
    pub data: &'a Path,
    /// Which model.
    pub kind: Kind,
    /// The label column (classifiers).
    pub label: Option<&'a str>,
    /// Columns left out.
    pub ignore: &'a [String],
    /// The hyperparameters given.
    pub hyper: &'a Hyper,
    /// The fraction of rows held out to score a classifier, in `[0, 1)` (0 for none).
    pub holdout: f64,
}

/// Why the built-in trainer could not fit or write a model.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinError {
    /// The request cannot be fitted (no label for a classifier, one class, too few rows).
    #[error("{message}")]
    Request {
        /// What is wrong.
        message: String,
        /// What to do.
        hint: Option<&'static str>,
    },
    /// The table cannot be read.
    #[error(transparent)]
    Table(#[from] TableError),
    /// A hyperparameter cannot be used.
    #[error(transparent)]
    Hyper(#[from] HyperError),
    /// The estimator refused the data.
    #[error("{}: {source}", data.display())]
    Fit {
        /// The table.
        data: PathBuf,
        /// Why.
        source: rampart_ml::MlError,
    },
    /// The held-out rows could not be scored.
    #[error("cannot score the held-out rows: {0}")]
    Metric(#[from] MetricError),
    /// The data file cannot be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The audit log refused the record.
    #[error(transparent)]
    Audit(#[from] rampart_audit::AuditError),
    /// A model file is not one [`write_model`] wrote.
    #[error("{}: {reason}", path.display())]
    Model {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The home, or a file it guards, cannot be read.
    #[error(transparent)]
    Home(#[from] rampart_home::HomeError),
    /// A stored dataset cannot be opened.
    #[error(transparent)]
    Ingest(#[from] rampart_ingest::IngestError),
    /// The model or metrics file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl rampart_home::Classify for BuiltinError {
    fn kind(&self) -> rampart_ingest::ErrorKind {
        use rampart_ingest::ErrorKind;
        match self {
            Self::Write { .. } | Self::Audit(_) => ErrorKind::Internal,
            Self::Home(h) => h.kind(),
            Self::Ingest(i) => i.kind(),
            _ => ErrorKind::Input,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Request { hint, .. } => hint.map(str::to_owned),
            Self::Model { .. } => {
                Some("only models written by `rampart ml train` load here".into())
            }
            Self::Table(t) => t.hint.clone(),
            Self::Hyper(HyperError::NotFor { setting, .. }) if setting.starts_with("--dp") => {
                Some("DP-SGD trains logistic regression; forests have no DP mode".into())
            }
            Self::Ingest(i) => i.hint(),
            _ => None,
        }
    }
}

fn request(message: String) -> BuiltinError {
    BuiltinError::Request {
        message,
        hint: None,
    }
}

/// A fitted model, with what the reports say about it.
#[derive(Debug)]
pub struct Fitted {
    /// The model.
    pub model: Model,
    /// Rows it was fitted on.
    pub rows: usize,
    /// Its feature columns.
    pub features: Vec<String>,
    /// Its classes (empty for an anomaly detector).
    pub classes: Vec<String>,
    /// `sha256:<hex>` of the table.
    pub data_digest: String,
    /// Seconds spent fitting.
    pub fit_seconds: f64,
    /// Scores on the held-out rows (classifiers, when a holdout was asked for).
    pub holdout: Option<Evaluation>,
}

/// Reads a CSV table and fits a built-in model on it. With `holdout` in (0, 1), a classifier
/// is fitted on the other rows (stratified, seeded) and scored on those.
///
/// # Errors
/// See [`BuiltinError`]; nothing is written.
pub fn fit(req: &FitRequest<'_>, reader: impl Read) -> Result<Fitted, BuiltinError> {
    let FitRequest {
        data: path,
        kind,
        label,
        ignore,
        hyper,
        holdout,
    } = *req;
    if kind.is_classifier() && label.is_none() {
        return Err(BuiltinError::Request {
            message: "a classifier needs --label COL".into(),
            hint: Some("name the column to predict"),
        });
    }
    hyper.check(kind)?;
    let data = path.display();
    let mut t = table::read(
        path,
        reader,
        &Spec {
            label,
            features: None,
            ignore,
            keep_records: false,
        },
    )?;
    let (classes, y) = match (t.labels.take(), kind.is_classifier()) {
        (Some(l), true) => {
            let classes = table::classes(&l);
            if classes.len() < 2 {
                return Err(request(format!(
                    "{data}: the label column has a single value; a classifier needs two classes"
                )));
            }
            let y = table::encode(path, &l, &classes)?;
            (classes, y)
        }
        _ => (Vec::new(), Vec::new()),
    };
    // The held-out rows, if any, are set aside before fitting.
    let pick =
        |rows: &[usize]| -> Vec<usize> { rows.iter().filter_map(|&i| y.get(i).copied()).collect() };
    let (y, held) = if kind.is_classifier() && holdout > 0.0 && holdout < 1.0 {
        let seed = hyper.seed.unwrap_or(0);
        let (train_rows, test_rows) =
            rampart_ml::split::train_test_split(t.x.rows(), holdout, seed, Some(&y));
        if train_rows.is_empty() || test_rows.is_empty() {
            return Err(request(format!(
                "{data}: too few rows to hold {holdout} of them out"
            )));
        }
        let held = (t.x.select_rows(&test_rows), pick(&test_rows));
        t.x = t.x.select_rows(&train_rows);
        (pick(&train_rows), Some(held))
    } else {
        (y, None)
    };
    let started = Instant::now();
    let (estimator, params) = hyper
        .fit(kind, &t.x, &y, classes.len())
        .map_err(|e| match e {
            FitError::Hyper(h) => BuiltinError::Hyper(h),
            FitError::Fit(source) => BuiltinError::Fit {
                data: path.to_path_buf(),
                source,
            },
        })?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let fit_err = |source| BuiltinError::Fit {
        data: path.to_path_buf(),
        source,
    };
    let mut model = Model::new(estimator, &t.x, t.features.clone(), classes.clone(), params)
        .map_err(fit_err)?;
    model.meta.label = label.map(str::to_owned);
    model.meta.training_data_digest = Some(t.digest.clone());
    let holdout = match held {
        Some((x, truth)) => {
            let preds = model.predict(&x).map_err(fit_err)?;
            Some(rampart_ml::metrics::evaluate_classes(
                &preds,
                &truth,
                &model.meta.classes,
            )?)
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

/// Writes the model next to `out` under a temporary name, hashes it, syncs it and renames it
/// into place (0644): readers see the old file or the whole new one. Returns its
/// `sha256:<hex>` and size.
///
/// # Errors
/// [`BuiltinError::Write`].
pub fn write_model(model: &Model, out: &Path) -> Result<(String, u64), BuiltinError> {
    let write = |source: std::io::Error| BuiltinError::Write {
        path: out.to_path_buf(),
        source,
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".rampart-model-")
        .tempfile_in(dir)
        .map_err(write)?;
    model
        .write_file(tmp.path())
        .map_err(|e| write(std::io::Error::other(e)))?;
    let mut file = std::fs::File::open(tmp.path()).map_err(write)?;
    let mut hasher = rampart_crypto::Sha256Hasher::new();
    let size = std::io::copy(&mut file, &mut hasher).map_err(write)?;
    file.sync_all().map_err(write)?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(write)?;
    tmp.persist(out).map_err(|e| write(e.error))?;
    Ok((hasher.finish().reference().to_string(), size))
}

/// What [`train_here`] wrote.
#[derive(Debug)]
pub struct Written {
    /// The fit.
    pub fitted: Fitted,
    /// The model file's `sha256:<hex>`.
    pub digest: String,
    /// Its size.
    pub bytes: u64,
}

/// `rampart ml train`: fits on the host (no sandbox: for data the caller already trusts),
/// writes the model to `out` and records `ml.train` (with the DP budget when DP-SGD ran).
///
/// # Errors
/// See [`BuiltinError`].
pub fn train_here(
    s: &rampart_home::Session<'_>,
    req: &FitRequest<'_>,
    reader: impl Read,
    out: &Path,
) -> Result<Written, BuiltinError> {
    let fitted = fit(req, reader)?;
    let (digest, bytes) = write_model(&fitted.model, out)?;
    let mut event = s
        .audit
        .event(rampart_audit::Action::MlTrain, rampart_audit::Outcome::Ok)
        .subject_path(out.display().to_string())
        .detail("model_digest", digest.clone())
        .detail("kind", fitted.model.meta.kind.to_string())
        .detail("data", req.data.display().to_string())
        .detail("data_digest", fitted.data_digest.clone())
        .detail("rows", fitted.rows);
    if let Estimator::LogisticRegression(m) = &fitted.model.estimator
        && let Some(p) = m.privacy()
    {
        event = event
            .detail("dp_epsilon", p.epsilon)
            .detail("dp_delta", p.delta);
    }
    s.audit.record(event)?;
    Ok(Written {
        fitted,
        digest,
        bytes,
    })
}

/// The differential-privacy budget a DP-SGD fit spent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DpSpent {
    /// ε.
    pub epsilon: f64,
    /// δ.
    pub delta: f64,
    /// The noise multiplier σ.
    pub noise: f64,
    /// Steps taken.
    pub steps: u64,
}

/// The metrics record the built-in trainer writes as `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltinMetrics {
    /// The model kind (`random-forest`, `isolation-forest`, `logistic-regression`).
    pub kind: String,
    /// Rows fitted on.
    pub rows: usize,
    /// Feature columns.
    pub features: usize,
    /// Seconds spent fitting.
    pub fit_seconds: f64,
    /// The fraction held out, when the held-out rows were scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<f64>,
    /// Rows fitted on, beside the held-out scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_train: Option<usize>,
    /// Scores on the held-out rows.
    #[serde(flatten)]
    pub scores: Option<Evaluation>,
    /// An isolation forest's score summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<rampart_ml::model::IsolationMeta>,
    /// A DP-SGD fit's spent budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<DpSpent>,
}

impl BuiltinMetrics {
    /// The record of a fit with `holdout` asked for.
    #[must_use]
    pub fn of(f: &Fitted, holdout: f64) -> Self {
        let dp = match &f.model.estimator {
            Estimator::LogisticRegression(m) => m.privacy().map(|p| DpSpent {
                epsilon: p.epsilon,
                delta: p.delta,
                noise: p.noise,
                steps: p.steps,
            }),
            _ => None,
        };
        Self {
            kind: f.model.meta.kind.to_string(),
            rows: f.rows,
            features: f.features.len(),
            fit_seconds: f.fit_seconds,
            holdout: f.holdout.as_ref().map(|_| holdout),
            rows_train: f.holdout.as_ref().map(|_| f.rows),
            scores: f.holdout.clone(),
            isolation: f.model.meta.isolation,
            dp,
        }
    }
}

/// What [`run`] wrote.
#[derive(Debug)]
pub struct BuiltinRun {
    /// The fit.
    pub fitted: Fitted,
    /// The model file's `sha256:<hex>`.
    pub digest: String,
    /// Its size.
    pub bytes: u64,
    /// The metrics record written.
    pub metrics: BuiltinMetrics,
}

/// The built-in trainer as it runs inside the sandbox: reads the table at `req.data`, fits,
/// writes the model to `model_out` and the metrics record to `metrics_out`. It touches no
/// home and no audit log (the sandbox hides them).
///
/// # Errors
/// See [`BuiltinError`].
pub fn run(
    req: &FitRequest<'_>,
    model_out: &Path,
    metrics_out: &Path,
) -> Result<BuiltinRun, BuiltinError> {
    let file = std::fs::File::open(req.data).map_err(|source| BuiltinError::Open {
        path: req.data.to_path_buf(),
        source,
    })?;
    let fitted = fit(req, std::io::BufReader::new(file))?;
    let (digest, bytes) = write_model(&fitted.model, model_out)?;
    let metrics = BuiltinMetrics::of(&fitted, req.holdout);
    let write = |source| BuiltinError::Write {
        path: metrics_out.to_path_buf(),
        source,
    };
    let mut text = serde_json::to_vec_pretty(&metrics).map_err(|e| write(e.into()))?;
    text.push(b'\n');
    std::fs::write(metrics_out, text).map_err(write)?;
    Ok(BuiltinRun {
        fitted,
        digest,
        bytes,
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_home::Classify;

    fn csv(rows: usize) -> String {
        let mut s = String::from("id,a,b,label\n");
        for i in 0..rows {
            let y = i % 2;
            #[allow(clippy::cast_precision_loss)]
            let a = y as f64 + (i % 7) as f64 * 0.01;
            s.push_str(&format!("{i},{a},{},{}\n", 1.0 - a, ["no", "yes"][y]));
        }
        s
    }

    #[test]
    fn a_classifier_is_fitted_scored_on_held_out_rows_and_written() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.csv");
        std::fs::write(&data, csv(100)).unwrap();
        let hyper = Hyper {
            trees: Some(5),
            seed: Some(3),
            ..Hyper::default()
        };
        let ignore = ["id".to_owned()];
        let req = FitRequest {
            data: &data,
            kind: Kind::RandomForest,
            label: Some("label"),
            ignore: &ignore,
            hyper: &hyper,
            holdout: 0.25,
        };
        let out = dir.path().join("m.safetensors");
        let metrics = dir.path().join("metrics.json");
        let run = run(&req, &out, &metrics).unwrap();
        assert_eq!(run.fitted.features, ["a", "b"]);
        // A stratified quarter is held out; the matrix counts exactly those rows.
        let scores = run.metrics.scores.as_ref().unwrap();
        let held: u64 = scores.confusion_matrix.iter().flatten().sum();
        assert_eq!(run.metrics.rows_train, Some(run.fitted.rows));
        assert_eq!(run.fitted.rows as u64 + held, 100);
        assert!((24..=26).contains(&held), "{held}");
        assert!(scores.accuracy > 0.9, "{scores:?}");
        assert_eq!(scores.classes, ["no", "yes"]);
        // The record on disk reads back as written, with the scores at the top level.
        let text = std::fs::read_to_string(&metrics).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["accuracy"].is_f64() && v["confusion_matrix"].is_array(),
            "{v}"
        );
        assert_eq!(
            serde_json::from_str::<BuiltinMetrics>(&text).unwrap(),
            run.metrics
        );
        assert_eq!(
            run.digest,
            rampart_crypto::sha256(&std::fs::read(&out).unwrap())
                .reference()
                .to_string()
        );
    }

    #[test]
    fn what_cannot_be_fitted_is_a_request_error_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.csv");
        std::fs::write(&data, "a,label\n1,x\n2,x\n").unwrap();
        let hyper = Hyper::default();
        let base = FitRequest {
            data: &data,
            kind: Kind::Logistic,
            label: Some("label"),
            ignore: &[],
            hyper: &hyper,
            holdout: 0.0,
        };
        let out = dir.path().join("m.safetensors");
        let metrics = dir.path().join("metrics.json");
        let e = run(&base, &out, &metrics).unwrap_err();
        assert!(e.to_string().contains("single value"), "{e}");
        let e = run(
            &FitRequest {
                label: None,
                ..base
            },
            &out,
            &metrics,
        )
        .unwrap_err();
        assert!(e.hint().is_some_and(|h| h.contains("column")), "{e}");
        let dp = Hyper {
            dp_epsilon: Some(1.0),
            dp_delta: Some(1e-5),
            ..Hyper::default()
        };
        let e = run(
            &FitRequest {
                kind: Kind::RandomForest,
                hyper: &dp,
                ..base
            },
            &out,
            &metrics,
        )
        .unwrap_err();
        assert!(e.hint().is_some_and(|h| h.contains("DP-SGD")), "{e}");
        let e = run(
            &FitRequest {
                data: &dir.path().join("missing.csv"),
                ..base
            },
            &out,
            &metrics,
        )
        .unwrap_err();
        assert!(
            matches!(e, BuiltinError::Open { .. })
                && rampart_home::Classify::kind(&e) == rampart_ingest::ErrorKind::Input,
            "{e}"
        );
        assert!(!out.exists() && !metrics.exists());
    }

    #[test]
    fn a_host_fit_is_written_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let home = rampart_home::Home::resolve(Some(&dir.path().join("home")));
        home.init().unwrap();
        let policy = home.load_policy().unwrap();
        let sink = rampart_audit::MemorySink::new();
        let s = rampart_home::Session {
            home: &home,
            policy: &policy,
            audit: rampart_audit::Auditor::new(Some(&sink), "tester"),
        };
        let data = dir.path().join("d.csv");
        std::fs::write(&data, csv(40)).unwrap();
        let hyper = Hyper::default();
        let ignore = ["id".to_owned()];
        let req = FitRequest {
            data: &data,
            kind: Kind::Logistic,
            label: Some("label"),
            ignore: &ignore,
            hyper: &hyper,
            holdout: 0.0,
        };
        let out = dir.path().join("m.safetensors");
        let w = train_here(&s, &req, std::fs::File::open(&data).unwrap(), &out).unwrap();
        assert_eq!(w.bytes, std::fs::metadata(&out).unwrap().len());
        let records = sink.records();
        assert_eq!(records.len(), 1);
        let r = records[0].to_value();
        assert_eq!(r["action"], "ml.train");
        assert_eq!(r["details"]["model_digest"], w.digest.as_str());
        assert_eq!(r["details"]["rows"], 40);
    }
}

/// Largest model file [`load_model`] reads.
pub const MAX_MODEL_BYTES: u64 = 8 << 30;

/// A model [`write_model`] wrote, read back: a regular file (never a FIFO or a device) of at
/// most [`MAX_MODEL_BYTES`].
///
/// # Errors
/// [`BuiltinError::Home`] when it cannot be read; [`BuiltinError::Model`] when it is not a
/// rampart model.
pub fn load_model(path: &Path) -> Result<Model, BuiltinError> {
    let bytes = rampart_home::secure_fs::read_limited(path, MAX_MODEL_BYTES)?;
    Model::from_bytes(&bytes).map_err(|e| BuiltinError::Model {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The table a built-in model reads: a CSV file, or `sha256:<hex>`, a CSV dataset in the
/// home's store (decrypted in memory with the home's identity; the access audited with
/// `purpose`).
///
/// # Errors
/// The file cannot be opened; no such dataset, or it is Parquet.
pub fn open_table(
    s: &rampart_home::Session<'_>,
    data: &Path,
    purpose: &str,
) -> Result<Box<dyn Read>, BuiltinError> {
    let text = data.to_string_lossy();
    if text.starts_with("sha256:") {
        let ds = rampart_ingest::DatasetStore::of(s.home).lookup(&text)?;
        if ds.format != rampart_data::stream::DataFormat::Csv {
            return Err(BuiltinError::Request {
                message: format!("no CSV dataset {text} in the home's store"),
                hint: Some("that dataset is Parquet; the built-in models read CSV"),
            });
        }
        let (_, reader) = rampart_ingest::open::open_stored(s, &text, purpose)?;
        return Ok(Box::new(reader));
    }
    let f = std::fs::File::open(data).map_err(|source| BuiltinError::Open {
        path: data.to_path_buf(),
        source,
    })?;
    Ok(Box::new(f))
}

/// Reads `data` for `model`: its feature columns, by name, and the label when asked for.
fn read_for(
    s: &rampart_home::Session<'_>,
    model: &Model,
    data: &Path,
    label: Option<&str>,
    keep_records: bool,
) -> Result<table::Table, BuiltinError> {
    Ok(table::read(
        data,
        open_table(s, data, "ml")?,
        &Spec {
            label,
            features: Some(&model.meta.features),
            ignore: &[],
            keep_records,
        },
    )?)
}

fn predictions(
    model: &Model,
    x: &rampart_ml::matrix::Matrix,
    data: &Path,
) -> Result<Vec<Prediction>, BuiltinError> {
    model.predict(x).map_err(|source| BuiltinError::Fit {
        data: data.to_path_buf(),
        source,
    })
}

/// What [`evaluate`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluated {
    /// The scores.
    #[serde(flatten)]
    pub evaluation: Evaluation,
    /// Rows scored.
    pub rows: usize,
    /// The table's `sha256:<hex>`.
    #[serde(skip)]
    pub data_digest: String,
}

/// `rampart ml eval`: scores the model in `model_path` on `data`'s `label` column (an
/// isolation forest against `anomaly_label`, the label of anomalous rows) and records
/// `ml.eval`.
///
/// # Errors
/// See [`BuiltinError`].
pub fn evaluate(
    s: &rampart_home::Session<'_>,
    model_path: &Path,
    data: &Path,
    label: &str,
    anomaly_label: &str,
) -> Result<Evaluated, BuiltinError> {
    let model = load_model(model_path)?;
    let t = read_for(s, &model, data, Some(label), false)?;
    let labels = t.labels.clone().unwrap_or_default();
    let preds = predictions(&model, &t.x, data)?;
    let evaluation = if model.estimator.n_classes() == 0 {
        let truth: Vec<usize> = labels
            .iter()
            .map(|l| usize::from(l == anomaly_label))
            .collect();
        rampart_ml::metrics::evaluate_anomalies(&preds, &truth)?
    } else {
        let truth = table::encode(data, &labels, &model.meta.classes)?;
        rampart_ml::metrics::evaluate_classes(&preds, &truth, &model.meta.classes)?
    };
    s.audit.record(
        s.audit
            .event(rampart_audit::Action::MlEval, rampart_audit::Outcome::Ok)
            .subject_path(model_path.display().to_string())
            .detail("data", data.display().to_string())
            .detail("data_digest", t.digest.clone())
            .detail("accuracy", evaluation.accuracy),
    )?;
    Ok(Evaluated {
        evaluation,
        rows: t.x.rows(),
        data_digest: t.digest,
    })
}

/// What [`predict`] wrote.
#[derive(Debug, Clone)]
pub struct Predicted {
    /// Rows predicted.
    pub rows: usize,
    /// The table's `sha256:<hex>`.
    pub data_digest: String,
}

/// `rampart ml predict`: writes `data` back as CSV to `out` with the predictions added
/// (`prediction` and `proba_<class>` per class; an isolation forest's `anomaly_score` and
/// `is_anomaly`), then records `ml.predict`.
///
/// # Errors
/// See [`BuiltinError`]; a column the output would add that is already in the table is a
/// [`BuiltinError::Request`].
pub fn predict(
    s: &rampart_home::Session<'_>,
    model_path: &Path,
    data: &Path,
    out: &mut dyn std::io::Write,
) -> Result<Predicted, BuiltinError> {
    let model = load_model(model_path)?;
    let t = read_for(s, &model, data, None, true)?;
    let preds = predictions(&model, &t.x, data)?;
    let added: Vec<String> = if model.estimator.n_classes() == 0 {
        vec!["anomaly_score".into(), "is_anomaly".into()]
    } else {
        std::iter::once("prediction".to_owned())
            .chain(model.meta.classes.iter().map(|c| format!("proba_{c}")))
            .collect()
    };
    if let Some(clash) = added.iter().find(|c| t.header.contains(c)) {
        return Err(BuiltinError::Request {
            message: format!(
                "{}: already has a column `{clash}`, which the output adds",
                data.display()
            ),
            hint: Some("rename or drop that column first"),
        });
    }
    let werr = |e: csv::Error| BuiltinError::Write {
        path: PathBuf::from("the predictions"),
        source: e.into(),
    };
    let mut w = csv::Writer::from_writer(out);
    w.write_record(t.header.iter().chain(&added))
        .map_err(werr)?;
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
    w.flush().map_err(|e| werr(e.into()))?;
    drop(w);
    s.audit.record(
        s.audit
            .event(rampart_audit::Action::MlPredict, rampart_audit::Outcome::Ok)
            .subject_path(model_path.display().to_string())
            .detail("data", data.display().to_string())
            .detail("data_digest", t.digest.clone())
            .detail("rows", t.x.rows()),
    )?;
    Ok(Predicted {
        rows: t.x.rows(),
        data_digest: t.digest,
    })
}
