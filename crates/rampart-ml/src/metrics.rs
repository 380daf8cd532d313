//! Classification metrics: accuracy, per-class and macro precision / recall / F1, confusion
//! matrix, ROC AUC (binary, ties handled by the rank formula) and log loss.

/// Metric input errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// Inputs of different lengths, or empty.
    #[error("{0}")]
    Shape(String),
    /// A label outside `0..classes`.
    #[error("label {0} is outside the {1} classes")]
    Label(usize, usize),
    /// ROC AUC needs both classes present.
    #[error("ROC AUC is undefined when only one class is present")]
    OneClass,
}

fn same_len(a: usize, b: usize) -> Result<(), MetricError> {
    if a != b || a == 0 {
        return Err(MetricError::Shape(format!(
            "{a} labels vs {b} predictions (both must be equal and non-zero)"
        )));
    }
    Ok(())
}

/// `matrix[true][predicted]` counts.
///
/// # Errors
/// Mismatched lengths or labels out of range.
pub fn confusion_matrix(
    truth: &[usize],
    pred: &[usize],
    classes: usize,
) -> Result<Vec<Vec<u64>>, MetricError> {
    same_len(truth.len(), pred.len())?;
    let mut m = vec![vec![0u64; classes]; classes];
    for (&t, &p) in truth.iter().zip(pred) {
        let cell = m
            .get_mut(t)
            .and_then(|row| row.get_mut(p))
            .ok_or(MetricError::Label(t.max(p), classes))?;
        *cell += 1;
    }
    Ok(m)
}

/// Fraction of correct predictions.
///
/// # Errors
/// Mismatched lengths.
pub fn accuracy(truth: &[usize], pred: &[usize]) -> Result<f64, MetricError> {
    same_len(truth.len(), pred.len())?;
    let correct = truth.iter().zip(pred).filter(|(t, p)| t == p).count();
    #[allow(clippy::cast_precision_loss)]
    Ok(correct as f64 / truth.len() as f64)
}

/// Per-class precision, recall and F1 (0 where undefined, as scikit-learn's `zero_division=0`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassScores {
    /// Precision per class.
    pub precision: Vec<f64>,
    /// Recall per class.
    pub recall: Vec<f64>,
    /// F1 per class.
    pub f1: Vec<f64>,
    /// Unweighted mean of `f1`.
    pub f1_macro: f64,
}

/// Precision, recall and F1 from a confusion matrix.
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn class_scores(matrix: &[Vec<u64>]) -> ClassScores {
    let k = matrix.len();
    let div = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut out = ClassScores {
        precision: Vec::new(),
        recall: Vec::new(),
        f1: Vec::new(),
        f1_macro: 0.0,
    };
    for c in 0..k {
        let tp = matrix.get(c).and_then(|r| r.get(c)).copied().unwrap_or(0);
        let predicted: u64 = matrix.iter().filter_map(|r| r.get(c)).sum();
        let actual: u64 = matrix.get(c).map_or(0, |r| r.iter().sum());
        let (p, r) = (div(tp, predicted), div(tp, actual));
        out.precision.push(p);
        out.recall.push(r);
        out.f1.push(if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        });
    }
    out.f1_macro = if k == 0 {
        0.0
    } else {
        out.f1.iter().sum::<f64>() / k as f64
    };
    out
}

/// Binary ROC AUC from scores of the positive class (the Mann–Whitney rank statistic, ties
/// counted half).
///
/// # Errors
/// Mismatched lengths, non-binary labels, or a single class.
#[allow(clippy::cast_precision_loss)]
pub fn roc_auc(truth: &[usize], score: &[f64]) -> Result<f64, MetricError> {
    same_len(truth.len(), score.len())?;
    if let Some(&bad) = truth.iter().find(|&&t| t > 1) {
        return Err(MetricError::Label(bad, 2));
    }
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|&a, &b| {
        score
            .get(a)
            .partial_cmp(&score.get(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    // Average ranks over ties.
    let mut ranks = vec![0.0; score.len()];
    let at = |k: usize| order.get(k).and_then(|&o| score.get(o));
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && at(j + 1) == at(i) {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &idx in order.get(i..=j).unwrap_or_default() {
            if let Some(r) = ranks.get_mut(idx) {
                *r = avg;
            }
        }
        i = j + 1;
    }
    let pos = truth.iter().filter(|&&t| t == 1).count() as f64;
    let neg = truth.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return Err(MetricError::OneClass);
    }
    let rank_sum: f64 = truth
        .iter()
        .zip(&ranks)
        .filter(|(t, _)| **t == 1)
        .map(|(_, r)| r)
        .sum();
    Ok((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// The binary ROC curve: `(false positive rate, true positive rate)` at every distinct score
/// threshold, from `(0, 0)` to `(1, 1)`, as scikit-learn's `roc_curve` with
/// `drop_intermediate=False` gives it. Its trapezoidal area is [`roc_auc`].
///
/// # Errors
/// Mismatched lengths, non-binary labels, or a single class.
#[allow(clippy::cast_precision_loss)]
pub fn roc_curve(truth: &[usize], score: &[f64]) -> Result<Vec<(f64, f64)>, MetricError> {
    same_len(truth.len(), score.len())?;
    if let Some(&bad) = truth.iter().find(|&&t| t > 1) {
        return Err(MetricError::Label(bad, 2));
    }
    let pos = truth.iter().filter(|&&t| t == 1).count() as f64;
    let neg = truth.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return Err(MetricError::OneClass);
    }
    // Highest score first; one point after each run of equal scores.
    let mut order: Vec<(f64, usize)> = score.iter().copied().zip(truth.iter().copied()).collect();
    order.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut points = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0.0, 0.0);
    for (k, &(s, t)) in order.iter().enumerate() {
        if t == 1 {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        let last_of_run = order.get(k + 1).is_none_or(|next| next.0 != s);
        if last_of_run {
            points.push((fp / neg, tp / pos));
        }
    }
    Ok(points)
}

/// Mean negative log-likelihood of the true class, probabilities clipped to [1e-15, 1 − 1e-15].
///
/// # Errors
/// Mismatched lengths or labels out of range.
#[allow(clippy::cast_precision_loss)]
pub fn log_loss(truth: &[usize], proba: &[Vec<f64>]) -> Result<f64, MetricError> {
    same_len(truth.len(), proba.len())?;
    let mut total = 0.0;
    for (&t, row) in truth.iter().zip(proba) {
        let p = *row.get(t).ok_or(MetricError::Label(t, row.len()))?;
        total -= p.clamp(1e-15, 1.0 - 1e-15).ln();
    }
    Ok(total / truth.len() as f64)
}

/// Metrics where lower is better: a `min_metrics` bound on one of these is a ceiling.
pub const LOWER_IS_BETTER: &[&str] = &["log_loss", "loss", "mse", "rmse", "mae", "error_rate"];

/// A `min_metrics` bound checked against a reported metric: what the registry's gates and the
/// pipeline's own gate both decide with.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundCheck {
    /// The metric.
    pub name: String,
    /// What was reported (`None`: not reported, or not a number).
    pub got: Option<f64>,
    /// The bound.
    pub bound: f64,
    /// Whether lower is better ([`LOWER_IS_BETTER`]): the bound is a ceiling.
    pub ceiling: bool,
}

impl BoundCheck {
    /// Checks `name` in a metrics record (a JSON object, as `metrics.json` holds) against
    /// `bound`: at least it, or at most it for a metric where lower is better.
    #[must_use]
    pub fn of(record: &serde_json::Value, name: &str, bound: f64) -> Self {
        Self {
            name: name.to_owned(),
            got: record.get(name).and_then(serde_json::Value::as_f64),
            bound,
            ceiling: LOWER_IS_BETTER.contains(&name),
        }
    }

    /// Whether the metric was reported and meets the bound (a NaN never does).
    #[must_use]
    pub fn ok(&self) -> bool {
        self.got.is_some_and(|g| {
            if self.ceiling {
                g <= self.bound
            } else {
                g >= self.bound
            }
        })
    }
}

impl std::fmt::Display for BoundCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What holds between the figure and the bound: "≥"/"≤" when met, "<"/">" when not.
        let (met, missed) = if self.ceiling {
            ("≤", ">")
        } else {
            ("≥", "<")
        };
        match self.got {
            Some(g) if self.ok() => write!(f, "{} {g:.4} {met} {}", self.name, self.bound),
            Some(g) => write!(f, "{} {g:.4} {missed} {}", self.name, self.bound),
            None => write!(f, "{} not reported (needs {met} {})", self.name, self.bound),
        }
    }
}

/// The provenance byproduct holding the metrics rampart computed on held-out rows.
pub const COMPUTED: &str = "rampart-metrics";
/// The provenance byproduct holding the trainer's own `metrics.json` (self-reported).
pub const REPORTED: &str = "metrics.json";

/// The metrics a signed provenance statement records: those rampart computed itself on
/// held-out rows the trainer never saw, and the trainer's own report. Read this only from a
/// statement whose signature verified.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recorded {
    /// The computed record (`scores`, or `not_scored` with the reason; `holdout`).
    pub computed: Option<serde_json::Value>,
    /// The trainer's `metrics.json`, as it wrote it.
    pub reported: Option<serde_json::Value>,
}

/// Which metrics a bound was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Computed by rampart on held-out rows.
    Computed,
    /// The trainer's own report.
    SelfReported,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Computed => "computed by rampart on held-out rows",
            Self::SelfReported => "self-reported by the trainer",
        })
    }
}

impl Recorded {
    /// The metrics of an in-toto statement's SLSA byproducts.
    #[must_use]
    pub fn of(statement: &serde_json::Value) -> Self {
        let by = |name: &str| {
            statement
                .pointer("/predicate/runDetails/byproducts")
                .and_then(serde_json::Value::as_array)
                .and_then(|b| b.iter().find(|x| x["name"] == name))
                .map(|x| x["content"].clone())
                .filter(serde_json::Value::is_object)
        };
        Self {
            computed: by(COMPUTED),
            reported: by(REPORTED),
        }
    }

    /// The scores rampart computed, if it could score the model.
    #[must_use]
    pub fn scores(&self) -> Option<&serde_json::Value> {
        self.computed
            .as_ref()
            .and_then(|c| c.get("scores"))
            .filter(|s| s.is_object())
    }

    /// The metrics a gate checks bounds against: the computed ones; with `require_computed`
    /// false and none computed, the trainer's own (labelled so).
    ///
    /// # Errors
    /// No metrics the gate may use, saying why (the model could not be scored, and why).
    pub fn for_gate(
        &self,
        require_computed: bool,
    ) -> Result<(&serde_json::Value, Source), NoGateMetrics> {
        if let Some(s) = self.scores() {
            return Ok((s, Source::Computed));
        }
        let why = self
            .computed
            .as_ref()
            .and_then(|c| c.get("not_scored"))
            .and_then(serde_json::Value::as_str)
            .map_or_else(
                || "no metrics computed by rampart are recorded (the model was not trained by rampart with held-out rows)".to_owned(),
                |w| format!("rampart could not score the model: {w}"),
            );
        match (&self.reported, require_computed) {
            (Some(r), false) => Ok((r, Source::SelfReported)),
            (Some(_), true) => Err(NoGateMetrics {
                why,
                self_reported_refused: true,
            }),
            (None, _) => Err(NoGateMetrics {
                why,
                self_reported_refused: false,
            }),
        }
    }
}

/// A version holds no metrics a gate may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoGateMetrics {
    /// Why nothing was computed (the model could not be scored, and why).
    pub why: String,
    /// The trainer's own metrics exist but the gate requires computed ones.
    pub self_reported_refused: bool,
}

impl std::fmt::Display for NoGateMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)?;
        if self.self_reported_refused {
            f.write_str(
                "; the trainer's own metrics.json is self-reported and this gate requires \
                 computed metrics",
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for NoGateMetrics {}

/// What a model scored on labelled rows: the metrics record `ml eval` prints, the built-in
/// trainer writes for its held-out rows, the registry's gates read and the reports draw.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// Fraction of correct predictions.
    pub accuracy: f64,
    /// ROC AUC (binary: of the second class; multi-class: macro one-vs-rest), when defined.
    pub roc_auc: Option<f64>,
    /// Binary classifiers: the ROC curve as `[fpr, tpr]` points, thinned to about 200.
    #[serde(default)]
    pub roc_curve: Option<Vec<[f64; 2]>>,
    /// Unweighted mean F1.
    pub f1_macro: f64,
    /// Precision per class.
    #[serde(default)]
    pub precision: Vec<f64>,
    /// Recall per class.
    #[serde(default)]
    pub recall: Vec<f64>,
    /// Log loss (classifiers).
    pub log_loss: Option<f64>,
    /// `confusion_matrix[true][predicted]`.
    pub confusion_matrix: Vec<Vec<u64>>,
    /// The classes, in the matrix's order.
    pub classes: Vec<String>,
}

/// A classifier's predictions scored against the true class indices.
///
/// # Errors
/// Mismatched lengths, or a class out of range.
pub fn evaluate_classes(
    preds: &[crate::Prediction],
    truth: &[usize],
    classes: &[String],
) -> Result<Evaluation, MetricError> {
    let (pred, proba): (Vec<usize>, Vec<&[f64]>) = preds
        .iter()
        .map(|p| match p {
            crate::Prediction::Class { class, proba } => (*class, proba.as_slice()),
            crate::Prediction::Anomaly { .. } => (0, &[][..]),
        })
        .unzip();
    let k = classes.len();
    let cm = confusion_matrix(truth, &pred, k)?;
    let scores = class_scores(&cm);
    let column = |c: usize| -> Vec<f64> {
        proba
            .iter()
            .map(|p| p.get(c).copied().unwrap_or(0.0))
            .collect()
    };
    let auc = if k == 2 {
        roc_auc(truth, &column(1)).ok()
    } else {
        let per: Vec<f64> = (0..k)
            .filter_map(|c| {
                let tc: Vec<usize> = truth.iter().map(|&t| usize::from(t == c)).collect();
                roc_auc(&tc, &column(c)).ok()
            })
            .collect();
        #[allow(clippy::cast_precision_loss)]
        (!per.is_empty()).then(|| per.iter().sum::<f64>() / per.len() as f64)
    };
    let curve = if k == 2 {
        roc_curve(truth, &column(1)).ok().map(|c| {
            let step = c.len().div_ceil(200).max(1);
            let last = c.len().saturating_sub(1);
            c.iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0 || *i == last)
                .map(|(_, &(f, t))| [f, t])
                .collect()
        })
    } else {
        None
    };
    let proba: Vec<Vec<f64>> = proba.iter().map(|p| p.to_vec()).collect();
    Ok(Evaluation {
        accuracy: accuracy(truth, &pred)?,
        roc_auc: auc,
        roc_curve: curve,
        f1_macro: scores.f1_macro,
        precision: scores.precision,
        recall: scores.recall,
        log_loss: Some(log_loss(truth, &proba)?),
        confusion_matrix: cm,
        classes: classes.to_vec(),
    })
}

/// An anomaly detector's flags and scores against the truth (1 = anomaly): classes `normal`
/// and `anomaly`, no log loss.
///
/// # Errors
/// Mismatched lengths.
pub fn evaluate_anomalies(
    preds: &[crate::Prediction],
    truth: &[usize],
) -> Result<Evaluation, MetricError> {
    let (scores, flags): (Vec<f64>, Vec<usize>) = preds
        .iter()
        .map(|p| match p {
            crate::Prediction::Anomaly { score, is_anomaly } => (*score, usize::from(*is_anomaly)),
            crate::Prediction::Class { .. } => (0.0, 0),
        })
        .unzip();
    let cm = confusion_matrix(truth, &flags, 2)?;
    let per = class_scores(&cm);
    Ok(Evaluation {
        accuracy: accuracy(truth, &flags)?,
        roc_auc: roc_auc(truth, &scores).ok(),
        roc_curve: None,
        f1_macro: per.f1_macro,
        precision: per.precision,
        recall: per.recall,
        log_loss: None,
        confusion_matrix: cm,
        classes: vec!["normal".into(), "anomaly".into()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let truth = [0, 0, 1, 1, 2, 2];
        let pred = [0, 1, 1, 1, 2, 0];
        let m = confusion_matrix(&truth, &pred, 3).unwrap();
        assert_eq!(m, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]);
        assert!((accuracy(&truth, &pred).unwrap() - 4.0 / 6.0).abs() < 1e-12);
        let s = class_scores(&m);
        assert!((s.precision[1] - 2.0 / 3.0).abs() < 1e-12 && (s.recall[1] - 1.0).abs() < 1e-12);
        assert!((s.f1[1] - 0.8).abs() < 1e-12);
        assert!((s.f1_macro - (0.5 + 0.8 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
        // scikit-learn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) == 0.75
        assert!((roc_auc(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]).unwrap() - 0.75).abs() < 1e-12);
        // Ties count half: all-equal scores give 0.5.
        assert!((roc_auc(&[0, 1, 0, 1], &[0.3; 4]).unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(roc_auc(&[1, 1], &[0.2, 0.3]), Err(MetricError::OneClass));
        // scikit-learn: roc_curve([0,0,1,1],[0.1,0.4,0.35,0.8], drop_intermediate=False)
        // fpr [0, 0, .5, .5, 1], tpr [0, .5, .5, 1, 1].
        let curve = roc_curve(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert_eq!(
            curve,
            vec![(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
        );
        let area: f64 = curve
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - 0.75).abs() < 1e-12);
        // Ties make one diagonal step.
        assert_eq!(
            roc_curve(&[0, 1, 0, 1], &[0.3; 4]).unwrap(),
            vec![(0.0, 0.0), (1.0, 1.0)]
        );
        // log_loss([0,1],[[0.9,0.1],[0.2,0.8]]) = -(ln 0.9 + ln 0.8)/2
        let l = log_loss(&[0, 1], &[vec![0.9, 0.1], vec![0.2, 0.8]]).unwrap();
        assert!((l + (0.9f64.ln() + 0.8f64.ln()) / 2.0).abs() < 1e-12);
        assert!(confusion_matrix(&[3], &[0], 3).is_err());
        assert!(accuracy(&[], &[]).is_err());
    }

    #[test]
    fn an_evaluation_scores_classes_and_anomalies() {
        use crate::Prediction;
        let class = |c: usize, p: f64| Prediction::Class {
            class: c,
            proba: vec![1.0 - p, p],
        };
        let preds = [class(0, 0.2), class(1, 0.9), class(1, 0.6), class(0, 0.4)];
        let e = evaluate_classes(&preds, &[0, 1, 0, 1], &["no".into(), "yes".into()]).unwrap();
        assert!((e.accuracy - 0.5).abs() < 1e-12);
        assert_eq!(e.confusion_matrix, vec![vec![1, 1], vec![1, 1]]);
        assert!((e.roc_auc.unwrap() - 0.75).abs() < 1e-12);
        assert!(e.roc_curve.as_ref().is_some_and(|c| c.len() >= 2));
        assert!(e.log_loss.is_some_and(f64::is_finite));
        let anomaly = |score: f64| Prediction::Anomaly {
            score,
            is_anomaly: score > 0.5,
        };
        let e =
            evaluate_anomalies(&[anomaly(0.7), anomaly(0.3), anomaly(0.6)], &[1, 0, 0]).unwrap();
        assert_eq!(e.confusion_matrix, vec![vec![1, 1], vec![0, 1]]);
        assert_eq!(e.classes, ["normal", "anomaly"]);
        assert_eq!(e.log_loss, None);
        assert!(evaluate_anomalies(&[anomaly(0.1)], &[]).is_err());
    }

    #[test]
    fn a_bound_is_a_floor_or_for_losses_a_ceiling() {
        let record = serde_json::json!({"accuracy": 0.91, "log_loss": 0.3, "roc_auc": f64::NAN});
        let acc = BoundCheck::of(&record, "accuracy", 0.9);
        assert!(acc.ok());
        assert_eq!(acc.to_string(), "accuracy 0.9100 ≥ 0.9");
        let below = BoundCheck::of(&record, "accuracy", 0.95);
        assert!(!below.ok());
        assert_eq!(below.to_string(), "accuracy 0.9100 < 0.95");
        let loss = BoundCheck::of(&record, "log_loss", 0.5);
        assert!(loss.ok() && loss.ceiling, "{loss}");
        let above = BoundCheck::of(&record, "log_loss", 0.1);
        assert!(!above.ok());
        assert_eq!(above.to_string(), "log_loss 0.3000 > 0.1");
        let missing = BoundCheck::of(&record, "f1_macro", 0.5);
        assert!(!missing.ok());
        assert_eq!(missing.to_string(), "f1_macro not reported (needs ≥ 0.5)");
        // serde_json stores a NaN as null: not reported, never met.
        assert!(!BoundCheck::of(&record, "roc_auc", 0.0).ok());
    }
}

#[cfg(test)]
mod recorded_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn statement(by: &serde_json::Value) -> serde_json::Value {
        json!({"predicate": {"runDetails": {"byproducts": by}}})
    }

    #[test]
    fn a_gate_reads_computed_metrics_and_self_reported_ones_only_when_allowed() {
        let both = Recorded::of(&statement(&json!([
            {"name": "metrics.json", "content": {"accuracy": 0.999}},
            {"name": "rampart-metrics", "content": {"scores": {"accuracy": 0.51}}},
        ])));
        let (m, src) = both.for_gate(true).unwrap();
        assert_eq!(
            (m["accuracy"].as_f64(), src),
            (Some(0.51), Source::Computed)
        );
        let reported = Recorded::of(&statement(&json!([
            {"name": "metrics.json", "content": {"accuracy": 0.999}},
            {"name": "rampart-metrics", "content": {"scores": null, "not_scored": "no label column"}},
        ])));
        let e = reported.for_gate(true).unwrap_err().to_string();
        assert!(
            e.contains("no label column") && e.contains("self-reported"),
            "{e}"
        );
        let (m, src) = reported.for_gate(false).unwrap();
        assert_eq!(
            (m["accuracy"].as_f64(), src),
            (Some(0.999), Source::SelfReported)
        );
        let none = Recorded::of(&statement(&json!([])));
        assert!(
            none.for_gate(false)
                .unwrap_err()
                .to_string()
                .contains("no metrics computed")
        );
    }
}
