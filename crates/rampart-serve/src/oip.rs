//! Request parsing, validation and inference: Open Inference Protocol (V2) tensors and the
//! plain `/v1` instances.

use axum::http::StatusCode;
use rampart_ml::model::ModelMeta;
use rampart_ml::{Matrix, Prediction};
use serde_json::{Value, json};

use crate::problem::Problem;
use crate::{LoadedModel, OutputMode};

/// Rows ready for the model.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// Rows.
    pub rows: usize,
    /// Row-major values, `rows × features`.
    pub x: Vec<f32>,
    /// The request id, echoed back.
    pub id: Option<String>,
}

/// Most nesting of `data` arrays.
const MAX_DEPTH: usize = 8;
/// Most errors listed in one 422.
const MAX_ERRORS: usize = 100;

fn bad(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
}

fn flatten<'a>(
    v: &'a Value,
    depth: usize,
    out: &mut Vec<&'a Value>,
    limit: usize,
) -> Result<(), Problem> {
    match v {
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(bad(format!("data nests deeper than {MAX_DEPTH} levels")));
            }
            for i in items {
                flatten(i, depth + 1, out, limit)?;
            }
            Ok(())
        }
        other => {
            if out.len() >= limit {
                return Err(bad("data has more elements than the shape allows"));
            }
            out.push(other);
            Ok(())
        }
    }
}

fn number(v: &Value, datatype: &str, input: &str, i: usize) -> Result<f32, Problem> {
    let x = match (datatype, v) {
        ("BOOL", Value::Bool(b)) => f64::from(u8::from(*b)),
        ("BOOL", _) => {
            return Err(bad(format!(
                "{input}[{i}]: BOOL data must be true or false"
            )));
        }
        (_, Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| bad(format!("{input}[{i}]: not a number")))?,
        (_, other) => return Err(bad(format!("{input}[{i}]: {other} is not a number"))),
    };
    #[allow(clippy::cast_possible_truncation)]
    let f = x as f32;
    if !f.is_finite() {
        return Err(bad(format!(
            "{input}[{i}]: {x} is not a finite 32-bit float"
        )));
    }
    Ok(f)
}

const NUMERIC: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64",
];

/// One V2 input tensor: (name, shape, values).
fn tensor(t: &Value, max_elems: usize) -> Result<(String, Vec<usize>, Vec<f32>), Problem> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("every input needs a name"))?
        .to_owned();
    let datatype = t
        .get("datatype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("input {name}: no datatype")))?;
    if !NUMERIC.contains(&datatype) {
        return Err(bad(format!(
            "input {name}: datatype {datatype} is not numeric (the models take numbers)"
        )));
    }
    let shape: Vec<usize> = t
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(format!("input {name}: no shape")))?
        .iter()
        .map(|d| {
            d.as_u64()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "input {name}: shape dimensions are non-negative integers"
                    ))
                })
        })
        .collect::<Result<_, _>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, d| a.checked_mul(*d))
        .filter(|c| *c <= max_elems)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "batch-too-large",
                format!("input {name}: the shape holds more than {max_elems} values"),
            )
        })?;
    let data = t
        .get("data")
        .ok_or_else(|| bad(format!("input {name}: no data")))?;
    let mut flat = Vec::new();
    flatten(data, 0, &mut flat, count.saturating_add(1))?;
    if flat.len() != count {
        return Err(bad(format!(
            "input {name}: {} values for shape {shape:?} ({count} expected)",
            flat.len()
        )));
    }
    let values = flat
        .iter()
        .enumerate()
        .map(|(i, v)| number(v, datatype, &name, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, shape, values))
}

/// Parses a V2 inference request: one `[N, F]` (or `[F]`) tensor, or one `[N]` (or `[N, 1]`)
/// tensor per feature, named by the feature.
///
/// # Errors
/// 400 for malformed requests, 413 for more than `max_batch` rows.
pub fn parse_v2(body: &[u8], meta: &ModelMeta, max_batch: usize) -> Result<Parsed, Problem> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let id = v.get("id").and_then(Value::as_str).map(str::to_owned);
    let inputs = v
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the request has no inputs list"))?;
    let f = meta.features.len();
    let max_elems = max_batch.saturating_mul(f.max(1));
    let tensors = inputs
        .iter()
        .map(|t| tensor(t, max_elems))
        .collect::<Result<Vec<_>, _>>()?;
    let batch_err = |rows: usize| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch-too-large",
            format!("{rows} rows; at most {max_batch} per request"),
        )
    };
    match tensors.as_slice() {
        [(name, shape, values)]
            if f != 1 || shape.len() == 2 || meta.features.first() != Some(name) =>
        {
            let rows = match shape.as_slice() {
                [n, cols] if *cols == f => *n,
                [cols] if *cols == f => 1,
                _ => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "schema-mismatch",
                        format!(
                            "input {name} has shape {shape:?}; the model takes [N, {f}] (features {:?})",
                            meta.features
                        ),
                    ));
                }
            };
            if rows > max_batch {
                return Err(batch_err(rows));
            }
            Ok(Parsed {
                rows,
                x: values.clone(),
                id,
            })
        }
        many => {
            let mut missing: Vec<&str> = Vec::new();
            let mut cols: Vec<&Vec<f32>> = Vec::new();
            for feat in &meta.features {
                match many.iter().find(|(n, _, _)| n == feat) {
                    Some((_, _, v)) => cols.push(v),
                    None => missing.push(feat),
                }
            }
            let unknown: Vec<&str> = many
                .iter()
                .map(|(n, _, _)| n.as_str())
                .filter(|n| !meta.features.iter().any(|f| f == n))
                .collect();
            if !missing.is_empty() || !unknown.is_empty() {
                let mut errors: Vec<Value> = missing
                    .iter()
                    .map(|m| json!({"field": m, "reason": "missing"}))
                    .collect();
                errors.extend(
                    unknown
                        .iter()
                        .map(|u| json!({"field": u, "reason": "not a feature of this model"})),
                );
                return Err(Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "schema-mismatch",
                    "the inputs do not match the model's features",
                )
                .with(json!({"errors": errors})));
            }
            let rows = cols.first().map_or(0, |c| c.len());
            if cols.iter().any(|c| c.len() != rows) {
                return Err(bad("every per-feature input needs the same number of rows"));
            }
            if rows > max_batch {
                return Err(batch_err(rows));
            }
            let mut x = Vec::with_capacity(rows * f);
            for r in 0..rows {
                for c in &cols {
                    x.push(c.get(r).copied().unwrap_or_default());
                }
            }
            Ok(Parsed { rows, x, id })
        }
    }
}

/// Parses `{"instances": [{"feature": value, …}, …]}`.
///
/// # Errors
/// 400 for malformed JSON, 422 listing every missing, unknown or non-numeric field.
pub fn parse_v1(body: &[u8], meta: &ModelMeta, max_batch: usize) -> Result<Parsed, Problem> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let instances = v
        .get("instances")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad("the request needs \"instances\": a list of objects of feature values")
        })?;
    if instances.len() > max_batch {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch-too-large",
            format!("{} rows; at most {max_batch} per request", instances.len()),
        ));
    }
    let mut x = Vec::with_capacity(instances.len() * meta.features.len());
    let mut errors = Vec::new();
    for (row, inst) in instances.iter().enumerate() {
        let Some(obj) = inst.as_object() else {
            errors.push(json!({"row": row, "reason": "not an object of feature values"}));
            continue;
        };
        for feat in &meta.features {
            match obj.get(feat) {
                None => errors.push(json!({"row": row, "field": feat, "reason": "missing"})),
                Some(val) => match number(val, "FP64", feat, row) {
                    Ok(f) => x.push(f),
                    Err(_) => errors.push(json!({"row": row, "field": feat, "reason": format!("{val} is not a finite number")})),
                },
            }
        }
        for k in obj.keys() {
            if !meta.features.iter().any(|f| f == k) {
                errors
                    .push(json!({"row": row, "field": k, "reason": "not a feature of this model"}));
            }
        }
    }
    if !errors.is_empty() {
        let truncated = errors.len() > MAX_ERRORS;
        errors.truncate(MAX_ERRORS);
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "schema-mismatch",
            "the instances do not match the model's input schema",
        )
        .with(json!({"errors": errors, "truncated": truncated})));
    }
    Ok(Parsed {
        rows: instances.len(),
        x,
        id: None,
    })
}

/// Checks every value against the range seen in training (widened by `margin` × the range).
///
/// # Errors
/// 422 listing every value outside.
pub fn validate(p: &Parsed, meta: &ModelMeta, margin: f64) -> Result<(), Problem> {
    let f = meta.features.len().max(1);
    let mut errors = Vec::new();
    let mut total = 0usize;
    for (i, x) in p.x.iter().enumerate() {
        let col = i % f;
        let Some(s) = meta.input_schema.get(col) else {
            continue;
        };
        let span = (s.max - s.min)
            .abs()
            .max(s.max.abs().max(s.min.abs()).max(1.0) * 1e-6);
        let (lo, hi) = (s.min - margin * span, s.max + margin * span);
        let v = f64::from(*x);
        if v < lo || v > hi {
            total += 1;
            if errors.len() < MAX_ERRORS {
                errors.push(json!({"row": i / f, "field": s.name, "value": v, "reason": format!("outside the range seen in training [{}, {}]", s.min, s.max)}));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "schema-mismatch",
            format!("{total} value(s) outside the range seen in training"),
        )
        .with(json!({"errors": errors, "truncated": total > errors.len()})))
    }
}

/// What `mode` lets a caller see of one prediction: the probabilities (if any) and a band.
pub(crate) fn harden(mode: &OutputMode, proba: &[f64]) -> (Option<Vec<f64>>, Option<String>) {
    match mode {
        OutputMode::Raw => (Some(proba.to_vec()), None),
        OutputMode::Round(n) => {
            let k = 10f64.powi(i32::try_from(*n).unwrap_or(15));
            (
                Some(proba.iter().map(|p| (p * k).round() / k).collect()),
                None,
            )
        }
        OutputMode::Label => (None, None),
        OutputMode::Bins(names) => {
            let top = proba.iter().copied().fold(0.0_f64, f64::max);
            let k = proba.len().max(2);
            // The top class's probability lies in [1/k, 1]; cut that range evenly.
            #[allow(clippy::cast_precision_loss)]
            let lo = 1.0 / k as f64;
            let span = (1.0 - lo).max(f64::EPSILON);
            #[allow(
                clippy::cast_precision_loss,
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss
            )]
            let i = (((top - lo) / span) * names.len() as f64).floor().max(0.0) as usize;
            (
                None,
                names.get(i.min(names.len().saturating_sub(1))).cloned(),
            )
        }
    }
}

/// Runs the model (and its detector, if it has one).
///
/// # Errors
/// 500 if the model refuses the matrix (it cannot, after parsing).
pub fn run(m: &LoadedModel, p: &Parsed) -> Result<Scored, Problem> {
    let internal = |e: String| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e);
    let model = m
        .builtin()
        .ok_or_else(|| internal("not a tabular model".into()))?;
    let x = Matrix::new(p.rows, model.meta.features.len(), p.x.clone())
        .map_err(|e| internal(e.to_string()))?;
    let preds = model.predict(&x).map_err(|e| internal(e.to_string()))?;
    let anomaly = match &m.detector {
        Some(d) => Some(detect(d, x.as_slice(), p.rows)?),
        None => None,
    };
    Ok(Scored { preds, anomaly })
}

/// Each row's anomaly score and verdict from a companion isolation forest (`x` row-major,
/// `rows` rows of the detector's features).
///
/// # Errors
/// 500 if the detector refuses the rows (it cannot: the loader matched its features).
pub fn detect(d: &rampart_ml::Model, x: &[f32], rows: usize) -> Result<Vec<(f64, bool)>, Problem> {
    let internal = |e: String| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e);
    let x = Matrix::new(rows, d.meta.features.len(), x.to_vec())
        .map_err(|e| internal(e.to_string()))?;
    Ok(d.predict(&x)
        .map_err(|e| internal(e.to_string()))?
        .into_iter()
        .map(|p| match p {
            Prediction::Anomaly { score, is_anomaly } => (score, is_anomaly),
            Prediction::Class { .. } => (0.0, false),
        })
        .collect())
}

/// A model's predictions and, with a detector, each row's anomaly score and verdict.
#[derive(Debug, Clone)]
pub struct Scored {
    /// One per row.
    pub preds: Vec<Prediction>,
    /// One per row, when the model has a detector.
    pub anomaly: Option<Vec<(f64, bool)>>,
}

/// The response body (V2 or `/v1`) of a tabular model, with the anomaly scores when `flag`
/// is set.
#[must_use]
pub fn render(
    m: &LoadedModel,
    classes: &[String],
    scored: &Scored,
    id: Option<String>,
    v1: bool,
    flag: bool,
) -> Value {
    let preds = &scored.preds;
    let anomaly = scored.anomaly.as_deref().filter(|_| flag);
    if v1 {
        let predictions: Vec<Value> = preds
            .iter()
            .map(|p| match p {
                Prediction::Class { class, proba } => {
                    let (probs, band) = harden(&m.output, proba);
                    let mut v = json!({"label": classes.get(*class)});
                    if let (Some(probs), Value::Object(o)) = (probs, &mut v) {
                        o.insert(
                            "probabilities".into(),
                            classes
                                .iter()
                                .zip(probs)
                                .map(|(c, p)| (c.clone(), json!(p)))
                                .collect::<serde_json::Map<_, _>>()
                                .into(),
                        );
                    }
                    if let (Some(b), Value::Object(o)) = (band, &mut v) {
                        o.insert("band".into(), json!(b));
                    }
                    v
                }
                Prediction::Anomaly { score, is_anomaly } => {
                    json!({"anomaly_score": score, "is_anomaly": is_anomaly})
                }
            })
            .zip(0..)
            .map(|(mut v, i)| {
                if let (Some(a), Value::Object(o)) = (anomaly, &mut v)
                    && let Some((score, flagged)) = a.get(i)
                {
                    o.insert("rampart.anomaly_score".into(), json!(score));
                    o.insert("rampart.anomalous".into(), json!(flagged));
                }
                v
            })
            .collect();
        return json!({"model": m.name, "version": m.version, "predictions": predictions});
    }
    let n = preds.len();
    let outputs = if classes.is_empty() {
        let (scores, flags): (Vec<f64>, Vec<bool>) = preds
            .iter()
            .map(|p| match p {
                Prediction::Anomaly { score, is_anomaly } => (*score, *is_anomaly),
                Prediction::Class { .. } => (0.0, false),
            })
            .unzip();
        json!([
            {"name": "anomaly_score", "datatype": "FP64", "shape": [n], "data": scores},
            {"name": "is_anomaly", "datatype": "BOOL", "shape": [n], "data": flags},
        ])
    } else {
        let mut labels = Vec::with_capacity(n);
        let mut probs = Vec::with_capacity(n * classes.len());
        let mut bands = Vec::new();
        for p in preds {
            if let Prediction::Class { class, proba } = p {
                labels.push(classes.get(*class).cloned().unwrap_or_default());
                let (pr, band) = harden(&m.output, proba);
                if let Some(pr) = pr {
                    probs.extend(pr);
                }
                bands.extend(band);
            }
        }
        let mut outs =
            vec![json!({"name": "label", "datatype": "BYTES", "shape": [n], "data": labels})];
        if !probs.is_empty() {
            outs.push(json!({"name": "probabilities", "datatype": "FP64", "shape": [n, classes.len()], "data": probs}));
        }
        if !bands.is_empty() {
            outs.push(json!({"name": "band", "datatype": "BYTES", "shape": [n], "data": bands}));
        }
        Value::Array(outs)
    };
    let mut parameters = json!({"rampart.root": m.root});
    if let (Some(a), Value::Object(o)) = (anomaly, &mut parameters) {
        o.insert(
            "rampart.anomaly_score".into(),
            a.iter().map(|(s, _)| *s).collect(),
        );
        o.insert(
            "rampart.anomalous".into(),
            a.iter().map(|(_, f)| *f).collect(),
        );
    }
    let mut out = json!({
        "model_name": m.name,
        "model_version": m.version.to_string(),
        "outputs": outputs,
        "parameters": parameters,
    });
    if let (Some(id), Value::Object(o)) = (id, &mut out) {
        o.insert("id".into(), json!(id));
    }
    out
}
