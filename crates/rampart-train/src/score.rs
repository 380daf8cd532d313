//! Metrics the gates can trust: rampart scores the model a trainer left on the rows held out
//! before the trainer started ([`rampart_data::holdout`]), on the host, after the model was
//! checked and before it is signed. The scores go into the signed provenance beside — never in
//! place of — the trainer's own `metrics.json`, which is recorded as self-reported.
//!
//! What can be scored:
//! - a built-in model (`model.safetensors`): its own feature columns of the held-out table;
//! - an ONNX model (ONNX Runtime, within [`OnnxLimits`]) whose inputs map onto the table: one
//!   rank-2 numeric input taking every feature column in file order, or one input per column,
//!   named after it. A classifier's answer is its label output (`INT64`/`BYTES` `[rows]`), else
//!   the top column of its probabilities (skl2onnx's ZipMap classes, or the column index); a
//!   single float output is a regressor's (r2, mae, rmse).
//!
//! Anything else is "not scored" with the reason, never a number: a gate that requires
//! computed metrics then fails, naming it.

use std::collections::HashMap;
use std::path::Path;

use rampart_data::csv::{Next, ReaderOptions, RecordReader};
use rampart_ml::metrics::Evaluation;
use rampart_ml::{Model, Prediction};
use rampart_onnx::tensor::{Data, Datatype, Port, Request, Tensor};
use rampart_onnx::{OnnxLimits, OnnxModel};
use serde_json::{Value, json};

/// The most held-out rows scored (the first ones; the record says how many were).
pub const MAX_ROWS: usize = 200_000;

/// The most bytes of held-out or training records read as text (the row bound alone would let
/// 200 000 records of 1 MiB each through).
pub const MAX_TEXT_BYTES: usize = 256 << 20;

/// Rows per ONNX Runtime call.
const BATCH: usize = 512;

/// The held-out rows and what to score against.
#[derive(Debug, Clone, Copy)]
pub struct Holdout<'a> {
    /// The held-out table (CSV, with the header).
    pub path: &'a Path,
    /// The rows the trainer saw: an ONNX model's reference input statistics (for drift at
    /// serving time) are taken from them.
    pub train: Option<&'a Path>,
    /// The label column.
    pub label: &'a str,
    /// Columns that are not features.
    pub ignore: &'a [String],
}

/// What scoring found.
#[derive(Debug, Clone, PartialEq)]
pub enum Scored {
    /// The scores (an [`Evaluation`] for a classifier; r2, mae and rmse for a regressor), with
    /// `rows` scored and the `runtime` that ran the model.
    Scores(Value),
    /// Why the model could not be scored.
    NotScored(String),
}

/// What scoring found, and for an ONNX model taking the table's feature columns as one
/// rank-2 input, the training rows' statistics of that input (`{"input", "input_schema"}`):
/// the reference its drift is measured against once served.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    /// The scores, or why there are none.
    pub scored: Scored,
    /// The reference statistics, when they could be taken.
    pub reference: Option<Value>,
}

/// Scores the model in `model_dir` (its one `.safetensors` or `.onnx` file among `files`) on
/// the held-out rows.
#[must_use]
pub fn score(
    model_dir: &Path,
    files: &[String],
    holdout: Holdout<'_>,
    onnx: OnnxLimits,
    isolation: Option<&rampart_onnx::Isolation>,
) -> Scoring {
    let mut reference = None;
    let pick = |ext: &str| -> Vec<&String> {
        files
            .iter()
            .filter(|f| {
                Path::new(f)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case(ext))
            })
            .collect()
    };
    let (st, ox) = (pick("safetensors"), pick("onnx"));
    let result = match (st.as_slice(), ox.as_slice()) {
        ([one], []) => builtin(&model_dir.join(one), holdout),
        ([], [one]) => graph(
            &model_dir.join(one),
            holdout,
            onnx,
            isolation,
            &mut reference,
        ),
        ([], []) => Err("no .safetensors or .onnx model file to score".to_owned()),
        _ => Err(format!(
            "{} model files ({}): which one answers is not known, so none is scored",
            st.len() + ox.len(),
            st.iter()
                .chain(&ox)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    Scoring {
        scored: match result {
            Ok(v) => Scored::Scores(v),
            Err(why) => Scored::NotScored(why),
        },
        reference,
    }
}

/// The statistics of `columns` over the first [`MAX_ROWS`] rows of `train`, for `input`;
/// `None` when a value is not a number (the graph then takes something else).
fn reference_stats(
    train: &Path,
    header: &[String],
    input: &str,
    columns: &[usize],
) -> Option<Value> {
    let (h, rows) = read_text(train).ok()?;
    if h != header || rows.is_empty() {
        return None;
    }
    let mut data = Vec::with_capacity(rows.len() * columns.len());
    for row in &rows {
        for &c in columns {
            data.push(row.get(c)?.parse::<f32>().ok().filter(|v| v.is_finite())?);
        }
    }
    let x = rampart_ml::Matrix::new(rows.len(), columns.len(), data).ok()?;
    let names: Vec<String> = columns
        .iter()
        .map(|&c| header.get(c).cloned().unwrap_or_default())
        .collect();
    let stats = rampart_ml::model::FeatureStats::of(&x, &names);
    Some(json!({"input": input, "rows": rows.len(), "input_schema": stats}))
}

/// Why a model of `kind` (an isolation forest) is not scored.
pub(crate) fn no_classes(kind: &str) -> String {
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind} has no classes to score against the label column")
}

fn builtin(path: &Path, h: Holdout<'_>) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let model = Model::from_bytes(&bytes).map_err(|e| {
        format!(
            "{}: not a rampart model ({e}); a safetensors file from another library cannot be run here",
            path.display()
        )
    })?;
    if model.meta.classes.is_empty() {
        return Err(no_classes(&model.meta.kind.to_string()));
    }
    let file = std::fs::File::open(h.path).map_err(|e| format!("{}: {e}", h.path.display()))?;
    let t = rampart_data::table::read(
        h.path,
        file,
        &rampart_data::table::Spec {
            label: Some(h.label),
            features: Some(&model.meta.features),
            ignore: &[],
            keep_records: false,
        },
    )
    .map_err(|e| format!("the held-out rows: {e}"))?;
    let rows = t.x.rows().min(MAX_ROWS);
    let x = t.x.select_rows(&(0..rows).collect::<Vec<_>>());
    let preds = model
        .predict(&x)
        .map_err(|e| format!("the model failed on the held-out rows: {e}"))?;
    let truth: Vec<String> = t
        .labels
        .unwrap_or_default()
        .into_iter()
        .take(rows)
        .collect();
    let predicted: Vec<(String, Vec<f64>)> = preds
        .into_iter()
        .map(|p| match p {
            Prediction::Class { class, proba } => (
                model.meta.classes.get(class).cloned().unwrap_or_default(),
                proba,
            ),
            Prediction::Anomaly { .. } => (String::new(), Vec::new()),
        })
        .collect();
    let mut v = classification(&truth, &predicted, &model.meta.classes, true)?;
    annotate(&mut v, rows, "rampart-ml");
    Ok(v)
}

fn annotate(v: &mut Value, rows: usize, runtime: &str) {
    if let Value::Object(o) = v {
        o.insert("rows".into(), json!(rows));
        o.insert("runtime".into(), json!(runtime));
    }
}

/// A label as compared: a number that is a whole number is written without a fraction (so an
/// `INT64` output `1` matches a CSV `1.0`).
fn canonical(s: &str) -> String {
    let t = s.trim();
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
            #[allow(clippy::cast_possible_truncation)]
            let i = f as i64;
            i.to_string()
        }
        _ => t.to_owned(),
    }
}

/// Scores predicted labels (each with its probabilities over `known`, or none) against the
/// truth. Labels the model does not know count as errors.
fn classification(
    truth: &[String],
    predicted: &[(String, Vec<f64>)],
    known: &[String],
    with_proba: bool,
) -> Result<Value, String> {
    let mut classes: Vec<String> = known.iter().map(|c| canonical(c)).collect();
    let mut index: HashMap<String, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i))
        .collect();
    let mut at = |label: &str| -> usize {
        let c = canonical(label);
        if let Some(i) = index.get(&c) {
            return *i;
        }
        classes.push(c.clone());
        index.insert(c, classes.len() - 1);
        classes.len() - 1
    };
    let truth_idx: Vec<usize> = truth.iter().map(|t| at(t)).collect();
    let pred_idx: Vec<usize> = predicted.iter().map(|(p, _)| at(p)).collect();
    let k = classes.len();
    let has_proba = with_proba
        && predicted
            .iter()
            .all(|(_, p)| p.len() == known.len() && !p.is_empty());
    let preds: Vec<Prediction> = pred_idx
        .iter()
        .zip(predicted)
        .map(|(&class, (_, p))| {
            let mut proba = vec![0.0; k];
            if has_proba {
                for (slot, v) in proba.iter_mut().zip(p) {
                    *slot = *v;
                }
            } else if let Some(slot) = proba.get_mut(class) {
                *slot = 1.0;
            }
            Prediction::Class { class, proba }
        })
        .collect();
    if truth.is_empty() {
        return Err("no held-out rows to score".into());
    }
    let mut e: Evaluation = rampart_ml::metrics::evaluate_classes(&preds, &truth_idx, &classes)
        .map_err(|e| format!("cannot score: {e}"))?;
    if !has_proba {
        // One-hot answers have no probabilities to judge.
        e.log_loss = None;
        e.roc_auc = None;
        e.roc_curve = None;
    }
    serde_json::to_value(&e).map_err(|e| e.to_string())
}

/// The held-out table as text: its header and up to [`MAX_ROWS`] records, at most
/// [`MAX_TEXT_BYTES`] of them (the rows after either bound are not scored; the record says how
/// many were).
fn read_text(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rdr = RecordReader::new(
        std::io::BufReader::with_capacity(1 << 20, file),
        ReaderOptions::default(),
    );
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let mut bytes = 0usize;
    while rows.len() < MAX_ROWS && bytes < MAX_TEXT_BYTES {
        match rdr.next_record() {
            Ok(Next::End) => break,
            Ok(Next::Malformed(m)) => {
                return Err(format!(
                    "{} line {}: {}",
                    path.display(),
                    rdr.line(),
                    m.message()
                ));
            }
            Ok(Next::Record) => {
                let fields: Vec<String> = (0..rdr.len())
                    .map(|i| String::from_utf8_lossy(rdr.field(i)).trim().to_owned())
                    .collect();
                if fields.len() == 1 && fields.first().is_some_and(String::is_empty) {
                    continue;
                }
                bytes += fields.iter().map(|f| f.len() + 24).sum::<usize>();
                if header.is_none() {
                    header = Some(fields);
                } else {
                    rows.push(fields);
                }
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok((header.unwrap_or_default(), rows))
}

/// How the table's columns feed the graph.
enum Feed {
    /// One `[rows, columns]` input.
    Matrix { port: Port, columns: Vec<usize> },
    /// One input per column: `(port, column)`.
    PerColumn(Vec<(Port, usize)>),
}

fn feed(inputs: &[Port], header: &[String], features: &[usize]) -> Result<Feed, String> {
    let numeric = |d: Datatype| !matches!(d, Datatype::Bytes | Datatype::Bool);
    if let [port] = inputs
        && let Some(shape) = &port.shape
        && shape.len() == 2
        && numeric(port.datatype)
    {
        let want = shape.get(1).copied().unwrap_or(-1);
        let n = i64::try_from(features.len()).unwrap_or(i64::MAX);
        if want != -1 && want != n {
            return Err(format!(
                "the graph's input {} takes {want} columns; the table has {n} feature columns",
                port.name
            ));
        }
        return Ok(Feed::Matrix {
            port: port.clone(),
            columns: features.to_vec(),
        });
    }
    let mut per = Vec::new();
    for p in inputs {
        let col = header.iter().position(|h| *h == p.name);
        let column_shaped = p
            .shape
            .as_ref()
            .is_some_and(|s| s.len() == 1 || (s.len() == 2 && matches!(s.get(1), Some(1 | -1))));
        match col {
            Some(c) if column_shaped && features.contains(&c) => per.push((p.clone(), c)),
            _ => {
                return Err(format!(
                    "the graph's inputs ({}) do not map onto the table's feature columns: \
                     it takes one rank-2 numeric input, or one [rows, 1] input per column named after it",
                    inputs
                        .iter()
                        .map(|p| format!(
                            "{} {} {:?}",
                            p.name,
                            p.datatype.name(),
                            p.shape.clone().unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    Ok(Feed::PerColumn(per))
}

/// Parses `cells` into the port's datatype, naming the first cell that does not fit.
fn cells(
    port: &Port,
    values: Vec<(&str, usize, &str)>,
    shape: Vec<usize>,
) -> Result<Tensor, String> {
    let bad = |(v, row, col): (&str, usize, &str)| {
        format!(
            "held-out row {row} column {col}: `{v}` is not a value of {} (input {})",
            port.datatype.name(),
            port.name
        )
    };
    macro_rules! parse {
        ($t:ty, $variant:ident) => {{
            let mut out = Vec::with_capacity(values.len());
            for c in values {
                out.push(c.0.parse::<$t>().map_err(|_| bad(c))?);
            }
            Data::$variant(out)
        }};
    }
    let data = match port.datatype {
        Datatype::Fp32 => parse!(f32, Fp32),
        Datatype::Fp64 => parse!(f64, Fp64),
        Datatype::Int64 => parse!(i64, Int64),
        Datatype::Int32 => parse!(i32, Int32),
        Datatype::Bool => {
            let mut out = Vec::with_capacity(values.len());
            for c in values {
                out.push(match c.0.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(c)),
                });
            }
            Data::Bool(out)
        }
        Datatype::Bytes => Data::Bytes(values.into_iter().map(|c| c.0.to_owned()).collect()),
    };
    Ok(Tensor {
        name: port.name.clone(),
        shape,
        data,
        parameters: None,
    })
}

/// Scores per row, with the columns' class names when the graph names them.
type Scores = (Vec<Vec<f64>>, Option<Vec<String>>);

/// What one output says, per row.
struct Answer {
    labels: Option<Vec<String>>,
    /// Probabilities (or scores) per row, with their column names when known.
    proba: Option<Scores>,
    /// A single float per row.
    values: Option<Vec<f64>>,
}

fn floats(d: &Data) -> Option<Vec<f64>> {
    match d {
        Data::Fp32(v) => Some(v.iter().map(|x| f64::from(*x)).collect()),
        Data::Fp64(v) => Some(v.clone()),
        _ => None,
    }
}

fn answer(outputs: &[Tensor], rows: usize) -> Answer {
    let mut a = Answer {
        labels: None,
        proba: None,
        values: None,
    };
    for t in outputs {
        let per_row = t.shape.first() == Some(&rows);
        let width: usize = t.shape.iter().skip(1).product();
        if !per_row {
            continue;
        }
        match (&t.data, width) {
            (Data::Int64(v), 1) if a.labels.is_none() => {
                a.labels = Some(v.iter().map(ToString::to_string).collect());
            }
            (Data::Int32(v), 1) if a.labels.is_none() => {
                a.labels = Some(v.iter().map(ToString::to_string).collect());
            }
            (Data::Bytes(v), 1) if a.labels.is_none() => a.labels = Some(v.clone()),
            (d, 1) if a.values.is_none() => a.values = floats(d),
            (d, k) if k >= 2 && a.proba.is_none() => {
                if let Some(f) = floats(d) {
                    let names = t
                        .parameters
                        .as_ref()
                        .and_then(|p| p.get("classes"))
                        .and_then(Value::as_array)
                        .map(|c| {
                            c.iter()
                                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                                .collect()
                        });
                    a.proba = Some((f.chunks(k).map(<[f64]>::to_vec).collect(), names));
                }
            }
            _ => {}
        }
    }
    a
}

fn graph(
    path: &Path,
    h: Holdout<'_>,
    limits: OnnxLimits,
    isolation: Option<&rampart_onnx::Isolation>,
    reference: &mut Option<Value>,
) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let model = match isolation {
        Some(i) => OnnxModel::load_isolated(&bytes, limits, i),
        None => OnnxModel::load(&bytes, limits),
    }
    .map_err(|e| e.to_string())?;
    let (header, rows) = read_text(h.path)?;
    let label_at = header
        .iter()
        .position(|c| c == h.label)
        .ok_or_else(|| format!("the held-out rows have no column `{}`", h.label))?;
    let features: Vec<usize> = (0..header.len())
        .filter(|&i| i != label_at && header.get(i).is_some_and(|c| !h.ignore.contains(c)))
        .collect();
    let feed = feed(model.inputs(), &header, &features)?;
    if let (Feed::Matrix { port, columns }, Some(train)) = (&feed, h.train) {
        *reference = reference_stats(train, &header, &port.name, columns);
    }
    fn cell(row: &[String], c: usize) -> &str {
        row.get(c).map_or("", String::as_str)
    }
    let col_name = |c: usize| header.get(c).map_or("", String::as_str);
    let mut labels: Vec<String> = Vec::new();
    let mut proba: Vec<Vec<f64>> = Vec::new();
    let mut names: Option<Vec<String>> = None;
    let mut values: Vec<f64> = Vec::new();
    for (b, chunk) in rows.chunks(BATCH).enumerate() {
        let first = b * BATCH + 1;
        let n = chunk.len();
        let inputs = match &feed {
            Feed::Matrix { port, columns } => {
                let vals = chunk
                    .iter()
                    .enumerate()
                    .flat_map(|(r, row)| columns.iter().map(move |&c| (cell(row, c), first + r, c)))
                    .map(|(v, r, c)| (v, r, col_name(c)))
                    .collect();
                vec![cells(port, vals, vec![n, columns.len()])?]
            }
            Feed::PerColumn(per) => per
                .iter()
                .map(|(port, c)| {
                    let vals = chunk
                        .iter()
                        .enumerate()
                        .map(|(r, row)| (cell(row, *c), first + r, col_name(*c)))
                        .collect();
                    let shape = match port.shape.as_ref().map(Vec::len) {
                        Some(1) => vec![n],
                        _ => vec![n, 1],
                    };
                    cells(port, vals, shape)
                })
                .collect::<Result<_, _>>()?,
        };
        let outputs = model
            .infer(&Request {
                id: None,
                inputs,
                rows: n,
            })
            .map_err(|e| format!("held-out rows {first}..{}: {e}", first + n - 1))?;
        let a = answer(&outputs, n);
        match (a.labels, a.proba, a.values) {
            (Some(l), p, _) => {
                labels.extend(l);
                if let Some((p, nm)) = p {
                    proba.extend(p);
                    names = nm;
                }
            }
            (None, Some((p, nm)), _) => {
                for row in &p {
                    let top = row
                        .iter()
                        .enumerate()
                        .max_by(|x, y| x.1.total_cmp(y.1))
                        .map_or(0, |(i, _)| i);
                    let label = nm
                        .as_ref()
                        .and_then(|nm| nm.get(top).cloned())
                        .unwrap_or_else(|| top.to_string());
                    labels.push(label);
                }
                proba.extend(p);
                names = nm;
            }
            (None, None, Some(v)) => values.extend(v),
            (None, None, None) => {
                return Err(
                    "no output has one label, one value or one row of scores per input row".into(),
                );
            }
        }
    }
    let truth: Vec<String> = rows.iter().map(|r| cell(r, label_at).to_owned()).collect();
    let mut v = if labels.len() == rows.len() {
        // Probabilities are judged only when their columns are named (ZipMap) or, for a graph
        // with no label output, are the answer's own column indices.
        let known: Vec<String> = names.clone().unwrap_or_else(|| {
            (0..proba.first().map_or(0, Vec::len))
                .map(|i| i.to_string())
                .collect()
        });
        let with_proba = !proba.is_empty() && proba.len() == labels.len();
        let named = names.is_some() || labels.iter().all(|l| l.parse::<usize>().is_ok());
        let predicted: Vec<(String, Vec<f64>)> = labels
            .into_iter()
            .enumerate()
            .map(|(i, l)| (l, proba.get(i).cloned().unwrap_or_default()))
            .collect();
        classification(&truth, &predicted, &known, with_proba && named)?
    } else if values.len() == rows.len() {
        regression(&truth, &values)?
    } else {
        return Err("the model did not answer every held-out row".into());
    };
    annotate(&mut v, rows.len(), "onnxruntime");
    Ok(v)
}

#[allow(clippy::cast_precision_loss)]
fn regression(truth: &[String], pred: &[f64]) -> Result<Value, String> {
    let mut y = Vec::with_capacity(truth.len());
    for (i, t) in truth.iter().enumerate() {
        y.push(t.parse::<f64>().map_err(|_| {
            format!(
                "held-out row {}: label `{t}` is not a number, and the model answers one number per row",
                i + 1
            )
        })?);
    }
    if y.is_empty() {
        return Err("no held-out rows to score".into());
    }
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let (mut se, mut ae, mut tot) = (0.0, 0.0, 0.0);
    for (t, p) in y.iter().zip(pred) {
        se += (t - p).powi(2);
        ae += (t - p).abs();
        tot += (t - mean).powi(2);
    }
    Ok(json!({
        "r2": if tot > 0.0 { Some(1.0 - se / tot) } else { None },
        "mae": ae / n,
        "rmse": (se / n).sqrt(),
        "mse": se / n,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn labels_compare_as_numbers_and_unknown_ones_count_as_errors() {
        let truth = s(&["1.0", "0", "2", "1"]);
        let pred = vec![
            ("1".to_owned(), vec![0.1, 0.9]),
            ("0".to_owned(), vec![0.8, 0.2]),
            ("1".to_owned(), vec![0.4, 0.6]),
            ("0".to_owned(), vec![0.7, 0.3]),
        ];
        let v = classification(&truth, &pred, &s(&["0", "1"]), true).unwrap();
        // Row 3's class 2 is unknown to the model: wrong; row 4 wrong.
        assert_eq!(v["accuracy"], json!(0.5));
        assert_eq!(v["classes"], json!(["0", "1", "2"]));
        assert!(v["log_loss"].as_f64().unwrap() > 1.0);
        // One-hot answers are not judged as probabilities.
        let v = classification(&truth, &pred, &s(&["0", "1"]), false).unwrap();
        assert_eq!(v["log_loss"], Value::Null);
        assert_eq!(v["roc_auc"], Value::Null);
    }

    #[test]
    fn a_regressor_is_scored_by_error_and_a_text_label_is_refused() {
        let v = regression(&s(&["1", "2", "3"]), &[1.0, 2.0, 4.0]).unwrap();
        assert!((v["mae"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((v["r2"].as_f64().unwrap() - 0.5).abs() < 1e-12);
        let e = regression(&s(&["1", "x"]), &[1.0, 2.0]).unwrap_err();
        assert!(e.contains("row 2"), "{e}");
    }

    #[test]
    fn graph_inputs_map_onto_columns_or_the_reason_is_given() {
        let port = |name: &str, dt: Datatype, shape: Vec<i64>| Port {
            name: name.into(),
            datatype: dt,
            shape: Some(shape),
        };
        let header = s(&["a", "b", "y"]);
        assert!(matches!(
            feed(&[port("x", Datatype::Fp32, vec![-1, 2])], &header, &[0, 1]).unwrap(),
            Feed::Matrix { .. }
        ));
        let e = feed(&[port("x", Datatype::Fp32, vec![-1, 3])], &header, &[0, 1])
            .err()
            .unwrap();
        assert!(e.contains("takes 3 columns"), "{e}");
        assert!(matches!(
            feed(
                &[
                    port("a", Datatype::Bytes, vec![-1, 1]),
                    port("b", Datatype::Fp32, vec![-1, 1])
                ],
                &header,
                &[0, 1]
            )
            .unwrap(),
            Feed::PerColumn(_)
        ));
        let e = feed(
            &[port("image", Datatype::Fp32, vec![-1, 3, 8, 8])],
            &header,
            &[0, 1],
        )
        .err()
        .unwrap();
        assert!(e.contains("do not map"), "{e}");
        let t = cells(
            &port("x", Datatype::Fp32, vec![-1, 2]),
            vec![("1.5", 1, "a"), ("oops", 1, "b")],
            vec![1, 2],
        )
        .unwrap_err();
        assert!(t.contains("row 1 column b: `oops`"), "{t}");
    }

    #[test]
    fn a_model_file_that_is_not_one_model_is_not_scored() {
        let dir = tempfile::tempdir().unwrap();
        let h = Holdout {
            path: &dir.path().join("h.csv"),
            train: None,
            label: "y",
            ignore: &[],
        };
        let r = score(
            dir.path(),
            &s(&["a.onnx", "b.onnx"]),
            h,
            OnnxLimits::default(),
            None,
        )
        .scored;
        assert!(matches!(r, Scored::NotScored(w) if w.contains("2 model files")));
        let r = score(
            dir.path(),
            &s(&["weights.bin"]),
            h,
            OnnxLimits::default(),
            None,
        )
        .scored;
        assert!(matches!(r, Scored::NotScored(w) if w.contains("no .safetensors")));
        std::fs::write(dir.path().join("m.safetensors"), b"not a model").unwrap();
        let r = score(
            dir.path(),
            &s(&["m.safetensors"]),
            h,
            OnnxLimits::default(),
            None,
        )
        .scored;
        assert!(matches!(r, Scored::NotScored(w) if w.contains("not a rampart model")));
    }
}
