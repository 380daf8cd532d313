//! The ONNX loading path over arbitrary bytes: the first byte picks the part.
//!
//! - even: the bytes are a model. The scanner's protobuf walk (node count, custom domains,
//!   external data) must never panic; with `RAMPART_ONNXRUNTIME` set, `OnnxModel::load` builds
//!   what passes (within small limits) and a model that loads answers a one-row request of
//!   zeros without panicking (an error is fine). Seed with `../shared/interop/onnx-models/`.
//! - odd: the bytes are a V2 request body checked against fixed graph inputs: never a panic,
//!   and what is accepted holds exactly as many values as its shape says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_serve::onnx::tensor::{Bounds, Datatype, Port, parse_request};
use rampart_serve::onnx::{OnnxLimits, OnnxModel};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        let ports = [
            Port {
                name: "x".into(),
                datatype: Datatype::Fp32,
                shape: Some(vec![-1, 3]),
            },
            Port {
                name: "ids".into(),
                datatype: Datatype::Int64,
                shape: None,
            },
        ];
        let bounds = Bounds {
            max_elements: 4096,
            max_batch: 64,
        };
        if let Ok(req) = parse_request(rest, &ports, bounds) {
            for t in &req.inputs {
                assert_eq!(t.shape.iter().product::<usize>(), t.data.len());
            }
        }
        return;
    }
    let walked =
        rampart_scan::formats::onnx::walk(&mut std::io::Cursor::new(rest), rest.len() as u64);
    if std::env::var_os(rampart_serve::onnx::LIBRARY_ENV).is_none() || !walked.problems.is_empty()
    {
        return;
    }
    let limits = OnnxLimits {
        max_nodes: 1000,
        run_timeout: std::time::Duration::from_secs(1),
        threads: 1,
        sessions: 1,
        ..OnnxLimits::default()
    };
    let Ok(model) = OnnxModel::load(rest, limits) else {
        return;
    };
    let inputs: Vec<serde_json::Value> = model
        .inputs()
        .iter()
        .map(|p| {
            let shape: Vec<usize> = p
                .shape
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|d| usize::try_from(*d).unwrap_or(1).min(8))
                .collect();
            let n: usize = shape.iter().product();
            let zero = match p.datatype {
                Datatype::Bool => serde_json::json!(false),
                Datatype::Bytes => serde_json::json!(""),
                _ => serde_json::json!(0),
            };
            serde_json::json!({"name": p.name, "shape": shape, "datatype": p.datatype.name(), "data": vec![zero; n]})
        })
        .collect();
    let body = serde_json::json!({ "inputs": inputs }).to_string();
    let bounds = Bounds {
        max_elements: 1 << 16,
        max_batch: 64,
    };
    if let Ok(req) = parse_request(body.as_bytes(), model.inputs(), bounds) {
        let _ = model.infer(&req);
    }
});
