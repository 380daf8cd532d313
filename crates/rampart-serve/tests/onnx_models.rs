//! ONNX models written by the real exporters (`../shared/interop/onnx-models`: torch's CNN and
//! a small BERT, skl2onnx's forest, boosting and scaler + logistic regression with ZipMap)
//! served through [`OnnxModel`]: each answers its reference batch with onnxruntime's outputs
//! (≤ 1e-4 relative), its metadata lists the graph's inputs with dynamic dimensions as -1,
//! and hostile models are refused at load.
//!
//! Needs ONNX Runtime's library: `.ci/run` installs the `onnxruntime` wheel and sets
//! `RAMPART_ONNXRUNTIME`; without it these tests fail, they do not skip.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap
)]

use std::path::{Path, PathBuf};

use rampart_serve::onnx::tensor::{Bounds, Data, parse_request};
use rampart_serve::onnx::{OnnxError, OnnxLimits, OnnxModel};
use serde_json::{Value, json};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop/onnx-models")
}

const BOUNDS: Bounds = Bounds {
    max_elements: 1 << 20,
    max_batch: 1024,
};

fn v2_datatype(numpy: &str) -> &'static str {
    match numpy {
        "float32" => "FP32",
        "float64" => "FP64",
        "int64" => "INT64",
        "int32" => "INT32",
        "bool" => "BOOL",
        other => panic!("reference dtype {other}"),
    }
}

fn flat(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(a) => a.iter().for_each(|x| flat(x, out)),
        x => out.push(x.as_f64().unwrap()),
    }
}

fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-4 * w.abs().max(1e-3);
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: {g} vs onnxruntime's {w}"
        );
    }
}

fn as_f64(d: &Data) -> Vec<f64> {
    match d {
        Data::Fp32(v) => v.iter().map(|x| f64::from(*x)).collect(),
        Data::Fp64(v) => v.clone(),
        #[allow(clippy::cast_precision_loss)]
        Data::Int64(v) => v.iter().map(|x| *x as f64).collect(),
        Data::Int32(v) => v.iter().map(|x| f64::from(*x)).collect(),
        other => panic!("not numeric: {other:?}"),
    }
}

#[test]
fn every_exported_model_answers_as_onnxruntime_does() {
    let reference: Value =
        serde_json::from_slice(&std::fs::read(models().join("reference.json")).unwrap()).unwrap();
    let all = reference["models"].as_object().unwrap();
    assert_eq!(all.len(), 5, "the corpus's five models");
    for (file, r) in all {
        let bytes = std::fs::read(models().join(file)).unwrap();
        let model = OnnxModel::load(&bytes, OnnxLimits::default())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        // Metadata: the graph's inputs, in order, with dynamic dimensions as -1.
        let meta = model.metadata("m", 1);
        for (port, g) in meta["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(r["graph_inputs"].as_array().unwrap())
        {
            assert_eq!(port["name"], g["name"], "{file}");
            let want: Vec<i64> = g["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().parse().unwrap_or(-1))
                .collect();
            assert_eq!(port["shape"], json!(want), "{file}");
        }
        // The reference batch as a V2 request.
        let inputs: Vec<Value> = r["inputs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, t)| {
                json!({"name": name, "shape": t["shape"], "datatype": v2_datatype(t["dtype"].as_str().unwrap()), "data": t["data"]})
            })
            .collect();
        let body = json!({"inputs": inputs}).to_string();
        let req = parse_request(body.as_bytes(), model.inputs(), BOUNDS)
            .unwrap_or_else(|p| panic!("{file}: {}", p.detail()));
        let out = model.infer(&req).unwrap_or_else(|e| panic!("{file}: {e}"));
        for (name, want) in r["outputs"].as_object().unwrap() {
            let got = out
                .iter()
                .find(|t| &t.name == name)
                .unwrap_or_else(|| panic!("{file}: no output {name}"));
            if let Some(maps) = want
                .as_array()
                .filter(|a| a.first().is_some_and(Value::is_object))
            {
                // ZipMap: a map class -> probability per row, as FP32 [rows, classes].
                let classes = got.parameters.as_ref().unwrap()["classes"].clone();
                let keys: Vec<String> = classes
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.to_string().trim_matches('"').to_owned())
                    .collect();
                assert_eq!(got.shape, [maps.len(), keys.len()], "{file} {name}");
                let want: Vec<f64> = maps
                    .iter()
                    .flat_map(|m| keys.iter().map(|k| m[k].as_f64().unwrap()))
                    .collect();
                close(&as_f64(&got.data), &want, &format!("{file} {name}"));
            } else {
                let mut w = Vec::new();
                flat(want, &mut w);
                close(&as_f64(&got.data), &w, &format!("{file} {name}"));
            }
        }
    }
}

/// A small model gets a session per core by default, and a pool of sessions answers requests
/// from many threads at once with the same answers as one session alone.
#[test]
fn sessions_side_by_side_give_the_same_answers() {
    let bytes = std::fs::read(models().join("sk_rf.onnx")).unwrap();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    assert_eq!(
        OnnxModel::load(&bytes, OnnxLimits::default())
            .unwrap()
            .sessions(),
        cores
    );
    let one = OnnxModel::load(
        &bytes,
        OnnxLimits {
            sessions: 1,
            ..OnnxLimits::default()
        },
    )
    .unwrap();
    let pool = std::sync::Arc::new(
        OnnxModel::load(
            &bytes,
            OnnxLimits {
                sessions: 3,
                threads: 1,
                ..OnnxLimits::default()
            },
        )
        .unwrap(),
    );
    assert_eq!(pool.sessions(), 3);
    let request = |i: usize| {
        let row: Vec<f32> = (0..6)
            .map(|j| ((i * 7 + j * 3) % 11) as f32 - 5.0)
            .collect();
        let body =
            json!({"inputs": [{"name": "X", "shape": [1, 6], "datatype": "FP32", "data": row}]});
        parse_request(body.to_string().as_bytes(), one.inputs(), BOUNDS).unwrap()
    };
    let want: Vec<_> = (0..64).map(|i| one.infer(&request(i)).unwrap()).collect();
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let pool = std::sync::Arc::clone(&pool);
            let reqs: Vec<_> = (0..64)
                .filter(|i| i % 8 == k)
                .map(|i| (i, request(i)))
                .collect();
            std::thread::spawn(move || {
                reqs.into_iter()
                    .map(|(i, r)| (i, pool.infer(&r).unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for (i, got) in t.join().unwrap() {
            assert_eq!(got, want[i], "request {i}");
        }
    }
}

#[test]
fn bert_takes_any_batch_and_sequence_length_and_refuses_wrong_types() {
    let bytes = std::fs::read(models().join("bert_tiny.onnx")).unwrap();
    let model = OnnxModel::load(&bytes, OnnxLimits::default()).unwrap();
    for (batch, seq) in [(1usize, 3usize), (3, 17)] {
        let ids: Vec<i64> = (0..batch * seq).map(|i| (i % 150) as i64 + 1).collect();
        let body = json!({"inputs": [
            {"name": "input_ids", "shape": [batch, seq], "datatype": "INT64", "data": ids},
            {"name": "attention_mask", "shape": [batch, seq], "datatype": "INT64", "data": vec![1; batch * seq]},
        ]})
        .to_string();
        let req = parse_request(body.as_bytes(), model.inputs(), BOUNDS).unwrap();
        let out = model.infer(&req).unwrap();
        assert_eq!(out[0].shape, [batch, 3]);
    }
    let body = json!({"inputs": [
        {"name": "input_ids", "shape": [1, 2], "datatype": "FP32", "data": [1.0, 2.0]},
        {"name": "attention_mask", "shape": [1, 2], "datatype": "INT64", "data": [1, 1]},
    ]})
    .to_string();
    let p = parse_request(body.as_bytes(), model.inputs(), BOUNDS).unwrap_err();
    assert!(
        p.detail()
            .contains("input input_ids: datatype FP32 where the model takes INT64"),
        "{}",
        p.detail()
    );
}

/// A minimal ONNX model, protobuf written by hand: one graph of `n` nodes of `op` chained
/// from input `x` (float [1]) to output `y`.
fn chain(op: &str, n: usize) -> Vec<u8> {
    chain_of(op, n, false)
}

/// As [`chain`], the input's one dimension dynamic when `dynamic`.
fn chain_of(op: &str, n: usize, dynamic: bool) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(tag: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(tag << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    fn int(tag: u64, v: u64, out: &mut Vec<u8>) {
        varint(tag << 3, out);
        varint(v, out);
    }
    let value_info = |name: &str| {
        let mut dim = Vec::new();
        if dynamic {
            field(2, b"n", &mut dim);
        } else {
            int(1, 1, &mut dim);
        }
        let mut shape = Vec::new();
        field(1, &dim, &mut shape);
        let mut tensor = Vec::new();
        int(1, 1, &mut tensor); // FLOAT
        field(2, &shape, &mut tensor);
        let mut ty = Vec::new();
        field(1, &tensor, &mut ty);
        let mut vi = Vec::new();
        field(1, name.as_bytes(), &mut vi);
        field(2, &ty, &mut vi);
        vi
    };
    let mut graph = Vec::new();
    for i in 0..n {
        let mut node = Vec::new();
        let input = if i == 0 {
            "x".to_owned()
        } else {
            format!("t{i}")
        };
        let output = if i + 1 == n {
            "y".to_owned()
        } else {
            format!("t{}", i + 1)
        };
        field(1, input.as_bytes(), &mut node);
        field(2, output.as_bytes(), &mut node);
        field(4, op.as_bytes(), &mut node);
        field(1, &node, &mut graph);
    }
    field(2, b"g", &mut graph);
    field(11, &value_info("x"), &mut graph);
    field(12, &value_info("y"), &mut graph);
    let mut opset = Vec::new();
    field(1, b"", &mut opset);
    int(2, 17, &mut opset);
    let mut model = Vec::new();
    int(1, 8, &mut model);
    field(8, &opset, &mut model);
    field(7, &graph, &mut model);
    model
}

#[test]
fn hostile_or_unrunnable_models_are_refused_at_load_naming_why() {
    // A graph the runtime builds: a chain of Relu.
    let ok = OnnxModel::load(&chain("Relu", 3), OnnxLimits::default()).unwrap();
    let body = json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [-2.0]}]});
    let req = parse_request(body.to_string().as_bytes(), ok.inputs(), BOUNDS).unwrap();
    assert_eq!(ok.infer(&req).unwrap()[0].data, Data::Fp32(vec![0.0]));
    assert_eq!(ok.nodes(), 3);
    // An op the runtime does not implement: refused at load, naming it.
    let e = OnnxModel::load(&chain("NoSuchOperator", 1), OnnxLimits::default()).unwrap_err();
    assert!(matches!(e, OnnxError::Build(_)), "{e}");
    assert!(e.to_string().contains("NoSuchOperator"), "{e}");
    // More nodes than allowed: refused before the runtime sees it.
    let limits = OnnxLimits {
        max_nodes: 10,
        ..OnnxLimits::default()
    };
    let e = OnnxModel::load(&chain("Relu", 11), limits).unwrap_err();
    assert!(e.to_string().contains("11 nodes"), "{e}");
    // A file over the size limit.
    let limits = OnnxLimits {
        max_file: 16,
        ..OnnxLimits::default()
    };
    let e = OnnxModel::load(&chain("Relu", 1), limits).unwrap_err();
    assert!(e.to_string().contains("bytes"), "{e}");
    // A run past the time limit is terminated, and the model answers the next request.
    let slow = OnnxModel::load(
        &chain_of("Relu", 3000, true),
        OnnxLimits {
            run_timeout: std::time::Duration::from_millis(50),
            ..OnnxLimits::default()
        },
    )
    .unwrap();
    let big = 1usize << 20;
    let body = json!({"inputs": [{"name": "x", "shape": [big], "datatype": "FP32", "data": vec![1.0; big]}]});
    let req = parse_request(
        body.to_string().as_bytes(),
        slow.inputs(),
        Bounds {
            max_elements: big,
            max_batch: big,
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let e = slow.infer(&req).unwrap_err();
    assert!(matches!(e, OnnxError::Timeout(_)), "{e}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let body =
        json!({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [-1.0, 3.0]}]});
    let req = parse_request(body.to_string().as_bytes(), slow.inputs(), BOUNDS).unwrap();
    assert_eq!(
        slow.infer(&req).unwrap()[0].data,
        Data::Fp32(vec![0.0, 3.0])
    );
    // Not ONNX at all.
    let e = OnnxModel::load(b"\x08\x08\xff\xff\xff", OnnxLimits::default()).unwrap_err();
    assert!(
        matches!(e, OnnxError::Refused(_) | OnnxError::Build(_)),
        "{e}"
    );
}
