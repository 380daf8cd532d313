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
use rampart_serve::onnx::{Isolation, OnnxError, OnnxLimits, OnnxModel};
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
    answers_as_onnxruntime(|bytes| OnnxModel::load(bytes, OnnxLimits::default()));
}

/// The corpus's reference batches through models built by `load`.
fn answers_as_onnxruntime(load: impl Fn(&[u8]) -> Result<OnnxModel, OnnxError>) {
    let reference: Value =
        serde_json::from_slice(&std::fs::read(models().join("reference.json")).unwrap()).unwrap();
    let all = reference["models"].as_object().unwrap();
    assert_eq!(all.len(), 5, "the corpus's five models");
    for (file, r) in all {
        let bytes = std::fs::read(models().join(file)).unwrap();
        let model = load(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
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

/// A graph input or output: `elem` is ONNX's element type (1 float, 7 int64), each dimension
/// fixed or (`None`) named and dynamic.
fn value_info(name: &str, elem: u64, dims: &[Option<u64>]) -> Vec<u8> {
    let mut shape = Vec::new();
    for d in dims {
        let mut dim = Vec::new();
        match d {
            Some(n) => int(1, *n, &mut dim),
            None => field(2, b"n", &mut dim),
        }
        field(1, &dim, &mut shape);
    }
    let mut tensor = Vec::new();
    int(1, elem, &mut tensor);
    field(2, &shape, &mut tensor);
    let mut ty = Vec::new();
    field(1, &tensor, &mut ty);
    let mut vi = Vec::new();
    field(1, name.as_bytes(), &mut vi);
    field(2, &ty, &mut vi);
    vi
}

/// A model of `nodes` (each `(inputs, output, op)`) from `inputs` to `outputs`, opset 17.
fn model_of(nodes: &[(&[&str], &str, &str)], inputs: &[Vec<u8>], outputs: &[Vec<u8>]) -> Vec<u8> {
    let mut graph = Vec::new();
    for (ins, out, op) in nodes {
        let mut node = Vec::new();
        for i in *ins {
            field(1, i.as_bytes(), &mut node);
        }
        field(2, out.as_bytes(), &mut node);
        field(4, op.as_bytes(), &mut node);
        field(1, &node, &mut graph);
    }
    field(2, b"g", &mut graph);
    inputs.iter().for_each(|i| field(11, i, &mut graph));
    outputs.iter().for_each(|o| field(12, o, &mut graph));
    let mut opset = Vec::new();
    field(1, b"", &mut opset);
    int(2, 17, &mut opset);
    let mut model = Vec::new();
    int(1, 8, &mut model);
    field(8, &opset, &mut model);
    field(7, &graph, &mut model);
    model
}

/// A million ones for [`chain_of`]`("Relu", 3000, true)`: far more than 50 ms of work.
fn slow_request(slow: &OnnxModel) -> rampart_serve::onnx::tensor::Request {
    let big = 1usize << 20;
    let body = json!({"inputs": [{"name": "x", "shape": [big], "datatype": "FP32", "data": vec![1.0; big]}]});
    parse_request(
        body.to_string().as_bytes(),
        slow.inputs(),
        Bounds {
            max_elements: big,
            max_batch: big,
        },
    )
    .unwrap()
}

/// A minimal ONNX model, protobuf written by hand: one graph of `n` nodes of `op` chained
/// from input `x` (float [1]) to output `y`.
fn chain(op: &str, n: usize) -> Vec<u8> {
    chain_of(op, n, false)
}

/// As [`chain`], the input's one dimension dynamic when `dynamic`.
fn chain_of(op: &str, n: usize, dynamic: bool) -> Vec<u8> {
    let names: Vec<String> = (0..=n)
        .map(|i| match i {
            0 => "x".to_owned(),
            i if i == n => "y".to_owned(),
            i => format!("t{i}"),
        })
        .collect();
    let ins: Vec<[&str; 1]> = names.iter().map(|n| [n.as_str()]).collect();
    let nodes: Vec<(&[&str], &str, &str)> = (0..n)
        .map(|i| (&ins[i][..], names[i + 1].as_str(), op))
        .collect();
    let dim = if dynamic { None } else { Some(1) };
    model_of(
        &nodes,
        &[value_info("x", 1, &[dim])],
        &[value_info("y", 1, &[dim])],
    )
}

/// A graph whose memory is the caller's to choose: `ConstantOfShape` makes a float tensor of
/// the shape given in `s` (INT64 [1]), `ReduceSum` sums it to `y` (float [1]).
fn memory_bomb() -> Vec<u8> {
    model_of(
        &[(&["s"], "c", "ConstantOfShape"), (&["c"], "y", "ReduceSum")],
        &[value_info("s", 7, &[Some(1)])],
        &[value_info("y", 1, &[Some(1)])],
    )
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
    let req = slow_request(&slow);
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

/// Set in the environment of this test binary when it is started as an ONNX worker.
const WORKER_ENV: &str = "RAMPART_TEST_ONNX_WORKER";

/// Not a test: the entry point of this test binary when an [`Isolation`] starts it as an ONNX
/// worker (the `rampart` binary's `onnx-worker` command does the same); run on its own it
/// returns at once.
#[test]
fn worker_process_entry() {
    if std::env::var_os(WORKER_ENV).is_some() {
        let code = match rampart_serve::onnx::worker::serve_stdin() {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("onnx worker: {e}");
                3
            }
        };
        std::process::exit(code);
    }
}

/// Workers that are this test binary, each allowed `mib` MiB.
fn isolation(mib: u64) -> Isolation {
    Isolation::current_exe(
        mib << 20,
        &[
            "--exact",
            "worker_process_entry",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ],
    )
    .unwrap()
    .with_env(WORKER_ENV, "1")
}

fn request(model: &OnnxModel, body: &Value) -> rampart_serve::onnx::tensor::Request {
    parse_request(body.to_string().as_bytes(), model.inputs(), BOUNDS).unwrap()
}

#[test]
fn every_exported_model_answers_the_same_from_memory_capped_workers() {
    answers_as_onnxruntime(|bytes| {
        let m = OnnxModel::load_isolated(bytes, OnnxLimits::default(), &isolation(1024))?;
        assert_eq!(m.isolated(), Some(1024 << 20));
        assert_eq!(m.worker_pids().len(), m.sessions());
        Ok(m)
    });
}

/// A graph that asks for more memory than its allowance fails that request with an error
/// naming the allowance; the gateway's process is untouched, and the model answers the next
/// request. Each worker runs under the allowance (`RLIMIT_DATA`), confined, without the
/// gateway's environment; a worker that dies is replaced.
#[test]
fn a_model_that_allocates_past_its_allowance_fails_that_request_only() {
    let model = OnnxModel::load_isolated(
        &memory_bomb(),
        OnnxLimits {
            sessions: 1,
            ..OnnxLimits::default()
        },
        &isolation(256),
    )
    .unwrap();
    let small = json!({"inputs": [{"name": "s", "shape": [1], "datatype": "INT64", "data": [4]}]});
    // 2 GiB of floats: what the model would take from the gateway in process.
    let huge =
        json!({"inputs": [{"name": "s", "shape": [1], "datatype": "INT64", "data": [1i64 << 29]}]});
    assert_eq!(
        model.infer(&request(&model, &small)).unwrap()[0].data,
        Data::Fp32(vec![0.0])
    );
    let pid = model.worker_pids()[0];
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let data = limits
        .lines()
        .find(|l| l.starts_with("Max data size"))
        .unwrap();
    assert!(data.contains(&(256u64 << 20).to_string()), "{data}");
    // Confined: no new privileges, the seccomp filters (Landlock leaves no trace in
    // /proc; rampart-sandbox's confine test checks what it denies).
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("Seccomp:"), "2", "filter mode");
    assert_eq!(
        field("Seccomp_filters:"),
        "3",
        "the sandbox's two, and no new sockets"
    );
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env: Vec<String> = env
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| {
            String::from_utf8_lossy(v)
                .split('=')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut names = env.clone();
    names.sort();
    assert_eq!(
        names,
        [
            "RAMPART_ONNXRUNTIME",
            "RAMPART_ONNX_WORKER_MEMORY",
            WORKER_ENV
        ],
        "the worker's whole environment"
    );
    let e = model.infer(&request(&model, &huge)).unwrap_err();
    assert!(
        matches!(e, OnnxError::Run(_) | OnnxError::Worker(_)),
        "{e:?}"
    );
    assert!(e.to_string().contains("256 MiB"), "{e}");
    assert_eq!(
        model.infer(&request(&model, &small)).unwrap()[0].data,
        Data::Fp32(vec![0.0]),
        "the next request is answered"
    );
    // A worker killed from outside is replaced before the next request reaches it.
    let pid = model.worker_pids()[0];
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Dead: a zombie whose every thread has exited (its files, the socket among them, closed).
    let dead = || {
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count);
        zombie && threads <= 1
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dead() {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker did not die"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        model.infer(&request(&model, &small)).unwrap()[0].data,
        Data::Fp32(vec![0.0])
    );
    assert_ne!(model.worker_pids(), [pid]);
}

/// A worker that never answers, or exits at once, is a refusal at load saying so, within the
/// load time limit; so is a model larger than the allowance, before any worker starts.
#[test]
fn a_worker_that_cannot_build_the_model_is_a_clear_refusal() {
    let mut hung = Isolation::new(64 << 20, || {
        let mut c = std::process::Command::new("/bin/sleep");
        c.arg("30");
        c
    });
    hung.load_timeout = std::time::Duration::from_millis(500);
    let started = std::time::Instant::now();
    let e = OnnxModel::load_isolated(&chain("Relu", 1), OnnxLimits::default(), &hung).unwrap_err();
    assert!(matches!(e, OnnxError::Worker(_)), "{e:?}");
    assert!(
        e.to_string().contains("did not build the model within"),
        "{e}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let gone = Isolation::new(64 << 20, || std::process::Command::new("/bin/true"));
    let e = OnnxModel::load_isolated(&chain("Relu", 1), OnnxLimits::default(), &gone).unwrap_err();
    assert!(e.to_string().contains("stopped"), "{e}");
    // Refusals made inside the worker come back as they are.
    let e = OnnxModel::load_isolated(
        &chain("NoSuchOperator", 1),
        OnnxLimits::default(),
        &isolation(256),
    )
    .unwrap_err();
    assert!(matches!(e, OnnxError::Build(_)), "{e:?}");
    assert!(e.to_string().contains("NoSuchOperator"), "{e}");
    let e = OnnxModel::load_isolated(&chain("Relu", 1), OnnxLimits::default(), &isolation(0))
        .unwrap_err();
    assert!(e.to_string().contains("memory allowance"), "{e}");
}

/// ONNX Runtime's background thread, some seconds after the first run, starts a thread that
/// opens a UDP socket: a confined worker refuses it and lives (when socket calls killed the
/// worker, each died about 9 s after its first request). Then sustained load from eight
/// threads is answered by the same workers.
#[test]
fn confined_workers_outlive_onnx_runtimes_background_thread_and_sustained_load() {
    let bytes = std::fs::read(models().join("sk_rf.onnx")).unwrap();
    let model = std::sync::Arc::new(
        OnnxModel::load_isolated(
            &bytes,
            OnnxLimits {
                sessions: 2,
                ..OnnxLimits::default()
            },
            &isolation(512),
        )
        .unwrap(),
    );
    let started = model.worker_pids();
    let body = json!({"inputs": [{"name": "X", "shape": [1, 6], "datatype": "FP32", "data": [0.5, -1.0, 2.0, 0.0, 1.5, -0.5]}]});
    let req = request(&model, &body);
    model.infer(&req).unwrap();
    model.infer(&req).unwrap();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    let quiet = std::time::Instant::now() + std::time::Duration::from_secs(14);
    while std::time::Instant::now() < quiet {
        assert!(
            started.iter().all(|p| alive(*p)),
            "a worker died while idle: {started:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (model, req) = (std::sync::Arc::clone(&model), req.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while std::time::Instant::now() < until {
                    model.infer(&req).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(total > 100, "{total} requests");
    assert_eq!(model.worker_pids(), started, "no worker was replaced");
}

/// Set (to `shape` or `length`) when this test binary plays a worker that lies.
const LIAR_ENV: &str = "RAMPART_TEST_ONNX_LIAR";

/// Not a test: a worker that follows the protocol to load, then answers a request with a
/// lie — a tensor whose shape claims 2^40 rows for two numbers (`shape`), or a frame length
/// of 2^62 bytes (`length`). On its own it returns at once.
#[test]
fn lying_worker_entry() {
    use std::io::{Read as _, Write as _};
    use std::os::fd::AsFd as _;
    let Some(mode) = std::env::var_os(LIAR_ENV) else {
        return;
    };
    let fd = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
    let mut s = std::os::unix::net::UnixStream::from(fd);
    let read_frame = |s: &mut std::os::unix::net::UnixStream| {
        let mut len = [0u8; 8];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u64::from_le_bytes(len) as usize];
        s.read_exact(&mut body).unwrap();
    };
    let send = |s: &mut std::os::unix::net::UnixStream, payload: &[u8]| {
        s.write_all(&(payload.len() as u64).to_le_bytes()).unwrap();
        s.write_all(payload).unwrap();
    };
    let u64s = |v: &[u64]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let port = |name: &str| {
        let mut p = u64s(&[name.len() as u64]);
        p.extend(name.as_bytes());
        p.extend([3, 1]); // FP32, shape given
        p.extend(u64s(&[1]));
        p.extend((-1i64).to_le_bytes());
        p
    };
    read_frame(&mut s);
    let mut loaded = vec![b'K'];
    loaded.extend(u64s(&[1, 1]));
    loaded.extend(port("x"));
    loaded.extend(u64s(&[1]));
    loaded.extend(port("y"));
    loaded.push(0);
    send(&mut s, &loaded);
    read_frame(&mut s);
    if mode == "length" {
        s.write_all(&(1u64 << 62).to_le_bytes()).unwrap();
    } else {
        let mut lie = vec![b'K'];
        lie.extend(u64s(&[1, 1]));
        lie.extend(b"y");
        lie.push(3);
        lie.extend(u64s(&[2, 1 << 40, 2, 2]));
        lie.extend([0u8; 8]);
        lie.push(0);
        send(&mut s, &lie);
    }
    std::thread::sleep(std::time::Duration::from_secs(30));
    std::process::exit(0);
}

/// A worker taken over by a hostile graph may answer anything: a shape claiming 2^40 rows for
/// two numbers (which output hardening would size a buffer by), or a frame of 2^62 bytes. The
/// gateway refuses the answer without allocating for it, stops that worker, and starts
/// another for the next request.
#[test]
fn a_lying_worker_is_refused_and_replaced() {
    for mode in ["shape", "length"] {
        let liar = Isolation::current_exe(
            64 << 20,
            &[
                "--exact",
                "lying_worker_entry",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ],
        )
        .unwrap()
        .with_env(LIAR_ENV, mode);
        let limits = OnnxLimits {
            sessions: 1,
            ..OnnxLimits::default()
        };
        let model = OnnxModel::load_isolated(&chain("Relu", 1), limits, &liar).unwrap();
        let body =
            json!({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]});
        let req = request(&model, &body);
        let first = model.worker_pids();
        let e = model.infer(&req).unwrap_err();
        assert!(matches!(e, OnnxError::Worker(_)), "{mode}: {e:?}");
        assert!(e.to_string().contains("malformed"), "{mode}: {e}");
        assert!(
            !std::path::Path::new(&format!("/proc/{}", first[0])).exists(),
            "{mode}: the lying worker was stopped and reaped"
        );
        // The next request goes to a new worker (which lies again).
        assert!(model.infer(&req).is_err());
        assert_ne!(model.worker_pids(), first, "{mode}");
    }
}

/// A run past the time limit inside a worker is terminated there; the worker answers the next
/// request.
#[test]
fn a_slow_run_in_a_worker_is_terminated_and_the_worker_goes_on() {
    let slow = OnnxModel::load_isolated(
        &chain_of("Relu", 3000, true),
        OnnxLimits {
            run_timeout: std::time::Duration::from_millis(50),
            sessions: 1,
            ..OnnxLimits::default()
        },
        &isolation(512),
    )
    .unwrap();
    let req = slow_request(&slow);
    let pids = slow.worker_pids();
    let started = std::time::Instant::now();
    let e = slow.infer(&req).unwrap_err();
    assert!(matches!(e, OnnxError::Timeout(_)), "{e:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let small =
        json!({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [-1.0, 3.0]}]});
    assert_eq!(
        slow.infer(&request(&slow, &small)).unwrap()[0].data,
        Data::Fp32(vec![0.0, 3.0])
    );
    assert_eq!(slow.worker_pids(), pids, "the same worker answered");
}
