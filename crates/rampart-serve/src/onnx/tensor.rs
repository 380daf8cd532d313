//! Open Inference Protocol (KServe V2) tensors for graphs: a request's `inputs` parsed and
//! checked against the graph's declared inputs before anything is allocated for them, and
//! outputs rendered as `{name, datatype, shape, data}`.
//!
//! Every refusal names the input and says what was expected; nothing a caller declares (a
//! shape, a count) is allocated before it is checked against the data actually sent and the
//! gateway's limits.

use axum::http::StatusCode;
use serde_json::Value;

use crate::problem::Problem;

pub use rampart_onnx::tensor::{Data, Datatype, Port, Request, Tensor};

/// The bounds a request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Most elements in one input.
    pub max_elements: usize,
    /// Most rows (first dimension) in a batch.
    pub max_batch: usize,
}

/// What the extraction detector sees of a request: for one rank-2 numeric input, its rows
/// (features named `INPUT[j]`, at unit scale: a graph carries no training statistics); else
/// one placeholder value per row, so the query budget still counts every row.
#[must_use]
pub fn extraction_rows(req: &Request) -> (Vec<f32>, Vec<rampart_ml::model::FeatureStats>) {
    let feature = |name: String| rampart_ml::model::FeatureStats {
        name,
        min: 0.0,
        max: 0.0,
        mean: 0.0,
        std: 1.0,
        deciles: Vec::new(),
        shares: Vec::new(),
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    if let [t] = req.inputs.as_slice()
        && let &[_, d] = t.shape.as_slice()
        && d > 0
    {
        let x: Option<Vec<f32>> = match &t.data {
            Data::Fp32(v) => Some(v.clone()),
            Data::Fp64(v) => Some(v.iter().map(|x| *x as f32).collect()),
            Data::Int64(v) => Some(v.iter().map(|x| *x as f32).collect()),
            Data::Int32(v) => Some(v.iter().map(|x| *x as f32).collect()),
            Data::Bool(_) | Data::Bytes(_) => None,
        };
        if let Some(x) = x {
            let schema = (0..d)
                .map(|j| feature(format!("{}[{j}]", t.name)))
                .collect();
            return (x, schema);
        }
    }
    (vec![0.0; req.rows], vec![feature("row".into())])
}

fn bad(input: &str, detail: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "invalid-input",
        format!("input {input}: {detail}"),
    )
}

fn too_large(input: &str, detail: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch-too-large",
        format!("input {input}: {detail}"),
    )
}

/// Parses a V2 request body and checks it against the graph's `inputs`.
///
/// # Errors
/// A problem (400, or 413 past a bound) naming the input: not JSON or not a V2 body, an
/// input the graph does not have or one it needs missing, twice the same input, a datatype,
/// rank or fixed dimension the graph does not take, an element count that does not match the
/// shape, an element out of its type's range.
pub fn parse_request(body: &[u8], inputs: &[Port], bounds: Bounds) -> Result<Request, Problem> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-json",
            format!("the body is not JSON: {e}"),
        )
    })?;
    let id = match v.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("-", "the request id must be a string")),
    };
    let Some(given) = v.get("inputs").and_then(Value::as_array) else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-input",
            "the body has no \"inputs\" array (KServe V2: {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]})",
        ));
    };
    let mut by_name: Vec<Option<Tensor>> = vec![None; inputs.len()];
    for t in given {
        let name = t.get("name").and_then(Value::as_str).ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-input",
                "an input has no \"name\"",
            )
        })?;
        let Some((i, port)) = inputs.iter().enumerate().find(|(_, p)| p.name == name) else {
            let known: Vec<&str> = inputs.iter().map(|p| p.name.as_str()).collect();
            return Err(bad(
                name,
                format!("the model has no such input (it takes {known:?})"),
            ));
        };
        let slot = by_name.get_mut(i).ok_or_else(|| bad(name, "no slot"))?;
        if slot.is_some() {
            return Err(bad(name, "given twice"));
        }
        *slot = Some(parse_tensor(t, port, bounds)?);
    }
    let mut out = Vec::with_capacity(inputs.len());
    for (slot, port) in by_name.into_iter().zip(inputs) {
        out.push(slot.ok_or_else(|| bad(&port.name, "missing: the model needs it"))?);
    }
    let rows = out
        .first()
        .map_or(1, |t| t.shape.first().copied().unwrap_or(1));
    Ok(Request {
        id,
        inputs: out,
        rows,
    })
}

pub(crate) fn parse_tensor(t: &Value, port: &Port, bounds: Bounds) -> Result<Tensor, Problem> {
    let name = port.name.as_str();
    let datatype = t
        .get("datatype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(name, "no \"datatype\""))?;
    let datatype = Datatype::parse(datatype).ok_or_else(|| {
        bad(
            name,
            format!("datatype {datatype:?} is not one the gateway takes"),
        )
    })?;
    if datatype != port.datatype {
        return Err(bad(
            name,
            format!(
                "datatype {} where the model takes {}",
                datatype.name(),
                port.datatype.name()
            ),
        ));
    }
    let shape = t
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(name, "no \"shape\" array"))?;
    if shape.len() > 16 {
        return Err(bad(name, "more than 16 dimensions"));
    }
    let mut dims = Vec::with_capacity(shape.len());
    let mut count: usize = 1;
    for d in shape {
        let d = d
            .as_u64()
            .and_then(|d| usize::try_from(d).ok())
            .ok_or_else(|| bad(name, "the shape holds something other than a size"))?;
        count = count
            .checked_mul(d)
            .filter(|c| *c <= bounds.max_elements)
            .ok_or_else(|| {
                too_large(
                    name,
                    format!("the shape holds more than {} values", bounds.max_elements),
                )
            })?;
        dims.push(d);
    }
    if let Some(want) = &port.shape {
        if want.len() != dims.len() {
            return Err(bad(
                name,
                format!(
                    "rank {} (shape {dims:?}) where the model takes rank {} ({})",
                    dims.len(),
                    want.len(),
                    shape_text(want)
                ),
            ));
        }
        for (i, (&w, &d)) in want.iter().zip(&dims).enumerate() {
            if w >= 0 && usize::try_from(w).ok() != Some(d) {
                return Err(bad(
                    name,
                    format!(
                        "dimension {i} is {d} where the model takes {} ({})",
                        w,
                        shape_text(want)
                    ),
                ));
            }
        }
    }
    if let Some(&rows) = dims.first()
        && rows > bounds.max_batch
    {
        return Err(too_large(
            name,
            format!(
                "{rows} rows where a batch holds at most {}",
                bounds.max_batch
            ),
        ));
    }
    let raw = t.get("data").ok_or_else(|| bad(name, "no \"data\""))?;
    let mut flat = Vec::new();
    flatten(raw, &mut flat, count, 0).map_err(|e| bad(name, e))?;
    if flat.len() != count {
        return Err(bad(
            name,
            format!(
                "{} values where the shape {dims:?} holds {count}",
                flat.len()
            ),
        ));
    }
    let data = elements(&flat, datatype).map_err(|(i, e)| bad(name, format!("value {i}: {e}")))?;
    Ok(Tensor {
        name: name.to_owned(),
        shape: dims,
        data,
        parameters: None,
    })
}

fn shape_text(s: &[i64]) -> String {
    let dims: Vec<String> = s
        .iter()
        .map(|d| {
            if *d < 0 {
                "*".to_owned()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(", "))
}

/// Row-major leaves of `v` (flat or nested arrays), refusing more than `most`.
fn flatten<'a>(
    v: &'a Value,
    out: &mut Vec<&'a Value>,
    most: usize,
    depth: usize,
) -> Result<(), String> {
    match v {
        Value::Array(items) => {
            if depth > 16 {
                return Err("data nested deeper than the shape".into());
            }
            for item in items {
                flatten(item, out, most, depth + 1)?;
            }
            Ok(())
        }
        leaf => {
            if out.len() >= most {
                return Err(format!("more values than the shape's {most}"));
            }
            out.push(leaf);
            Ok(())
        }
    }
}

fn elements(flat: &[&Value], datatype: Datatype) -> Result<Data, (usize, String)> {
    fn each<T>(
        flat: &[&Value],
        f: impl Fn(&Value) -> Option<T>,
        want: &str,
    ) -> Result<Vec<T>, (usize, String)> {
        flat.iter()
            .enumerate()
            .map(|(i, v)| f(v).ok_or_else(|| (i, format!("{v} is not {want}"))))
            .collect()
    }
    Ok(match datatype {
        Datatype::Bool => Data::Bool(each(flat, Value::as_bool, "a boolean")?),
        Datatype::Int32 => Data::Int32(each(
            flat,
            |v| v.as_i64().and_then(|n| i32::try_from(n).ok()),
            "a 32-bit integer",
        )?),
        Datatype::Int64 => Data::Int64(each(flat, Value::as_i64, "a 64-bit integer")?),
        Datatype::Fp32 => Data::Fp32(each(
            flat,
            |v| {
                #[allow(clippy::cast_possible_truncation)]
                v.as_f64().map(|x| x as f32).filter(|x| x.is_finite())
            },
            "a finite 32-bit float",
        )?),
        Datatype::Fp64 => Data::Fp64(each(flat, Value::as_f64, "a number")?),
        Datatype::Bytes => Data::Bytes(each(flat, |v| v.as_str().map(str::to_owned), "a string")?),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    fn ports() -> Vec<Port> {
        vec![
            Port {
                name: "ids".into(),
                datatype: Datatype::Int64,
                shape: Some(vec![-1, -1]),
            },
            Port {
                name: "image".into(),
                datatype: Datatype::Fp32,
                shape: Some(vec![-1, 3]),
            },
        ]
    }

    const B: Bounds = Bounds {
        max_elements: 64,
        max_batch: 8,
    };

    fn body(inputs: &Value) -> Vec<u8> {
        json!({"id": "r1", "inputs": inputs})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn inputs_are_taken_in_the_graphs_order_flat_or_nested() {
        let b = body(&json!([
            {"name": "image", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6.5]]},
            {"name": "ids", "shape": [2, 1], "datatype": "INT64", "data": [7, 8]},
        ]));
        let r = parse_request(&b, &ports(), B).unwrap();
        assert_eq!(r.id.as_deref(), Some("r1"));
        assert_eq!(r.rows, 2);
        assert_eq!(r.inputs[0].data, Data::Int64(vec![7, 8]));
        assert_eq!(
            r.inputs[1].data,
            Data::Fp32(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5])
        );
        assert_eq!(r.inputs[1].shape, [2, 3]);
    }

    #[test]
    fn each_refusal_names_the_input_and_what_the_model_takes() {
        let ids = json!({"name": "ids", "shape": [1, 1], "datatype": "INT64", "data": [1]});
        let image = |shape: Value, dt: &str, data: Value| json!({"name": "image", "shape": shape, "datatype": dt, "data": data});
        let cases = [
            (json!([ids]), "image", "missing", 400),
            (
                json!([ids, image(json!([1, 3]), "FP32", json!([1, 2, 3])), {"name": "extra", "shape": [1], "datatype": "FP32", "data": [1]}]),
                "extra",
                "no such input",
                400,
            ),
            (json!([ids, ids]), "ids", "twice", 400),
            (
                json!([ids, image(json!([1, 3]), "FP64", json!([1, 2, 3]))]),
                "image",
                "FP64 where the model takes FP32",
                400,
            ),
            (
                json!([ids, image(json!([3]), "FP32", json!([1, 2, 3]))]),
                "image",
                "rank 1",
                400,
            ),
            (
                json!([ids, image(json!([1, 4]), "FP32", json!([1, 2, 3, 4]))]),
                "image",
                "dimension 1 is 4",
                400,
            ),
            (
                json!([ids, image(json!([2, 3]), "FP32", json!([1, 2, 3]))]),
                "image",
                "3 values where the shape [2, 3] holds 6",
                400,
            ),
            (
                json!([ids, image(json!([1, 3]), "FP32", json!([1, 2, 3, 4]))]),
                "image",
                "more values",
                400,
            ),
            (
                json!([ids, image(json!([1, 3]), "FP32", json!([1, "2", 3]))]),
                "image",
                "value 1",
                400,
            ),
            (
                json!([ids, image(json!([1, 3]), "FP32", json!([1, 1e300, 3]))]),
                "image",
                "finite",
                400,
            ),
            (
                json!([
                    ids,
                    image(json!([1_000_000_000_000u64, 3]), "FP32", json!([1]))
                ]),
                "image",
                "more than 64 values",
                413,
            ),
            (
                json!([ids, image(json!([u64::MAX, u64::MAX]), "FP32", json!([1]))]),
                "image",
                "more than 64",
                413,
            ),
            (
                json!([ids, image(json!([9, 3]), "FP32", json!(vec![0; 27]))]),
                "image",
                "9 rows",
                413,
            ),
            (
                json!([ids, image(json!([1, 3]), "FP16", json!([1, 2, 3]))]),
                "image",
                "not one the gateway takes",
                400,
            ),
        ];
        for (inputs, name, says, status) in cases {
            let p = parse_request(&body(&inputs), &ports(), B).unwrap_err();
            let text = p.detail();
            assert_eq!(p.status().as_u16(), status, "{inputs}: {text}");
            assert!(
                text.starts_with(&format!("input {name}")),
                "{inputs}: {text}"
            );
            assert!(text.contains(says), "{inputs}: {text}");
        }
        let i32_port = [Port {
            name: "n".into(),
            datatype: Datatype::Int32,
            shape: None,
        }];
        let b = body(
            &json!([{"name": "n", "shape": [1], "datatype": "INT32", "data": [3_000_000_000u64]}]),
        );
        assert!(parse_request(&b, &i32_port, B).is_err());
        assert!(parse_request(b"{}", &ports(), B).is_err());
        assert!(parse_request(b"nope", &ports(), B).is_err());
    }

    #[test]
    fn outputs_render_as_v2_tensors() {
        let t = Tensor {
            name: "p".into(),
            shape: vec![1, 2],
            data: Data::Fp32(vec![0.25, 0.75]),
            parameters: Some(json!({"classes": [0, 1]})),
        };
        assert_eq!(
            t.to_json(),
            json!({"name": "p", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75], "parameters": {"classes": [0, 1]}})
        );
    }
}
