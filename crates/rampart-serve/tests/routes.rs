//! The gateway's handlers called in-process (`tower::ServiceExt::oneshot` on the router), no
//! listener: what every request passes — authentication, role and scope, body limit, content
//! type, validation — and what a caller sees.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use rampart_ml::forest::{ForestParams, RandomForest};
use rampart_ml::{Estimator, Matrix, Model};
use rampart_serve::keys::{KeyStore, Role};
use rampart_serve::{AppState, LoadedModel, OutputMode, ServeLimits};
use serde_json::{Value, json};
use tower::ServiceExt as _;

fn model() -> Model {
    let mut v = Vec::new();
    let mut y = Vec::new();
    for i in 0..40u8 {
        let a = f32::from(i) / 40.0;
        v.extend([a, 1.0 - a]);
        y.push(usize::from(i >= 20));
    }
    let x = Matrix::new(40, 2, v).unwrap();
    let params = ForestParams {
        n_trees: 3,
        ..ForestParams::default()
    };
    let rf = RandomForest::fit(&x, &y, 2, &params).unwrap();
    let names = |n: &[&str]| n.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Model::new(
        Estimator::RandomForest(rf),
        &x,
        names(&["income", "debt"]),
        names(&["no", "yes"]),
        json!({}),
    )
    .unwrap()
}

struct Gateway {
    _dir: tempfile::TempDir,
    state: Arc<AppState>,
    predict: String,
    admin: String,
    other_model: String,
}

fn gateway(limits: ServeLimits) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(&dir.path().join("apikeys.db")).unwrap();
    let key = |role, model| {
        let seal = |_: &[u8]| Ok(String::new());
        store
            .create(role, model, 1000, 1000, None, "t", &seal, &mut |_| Ok(()))
            .unwrap()
            .1
    };
    let (predict, admin) = (key(Role::Predict, None), key(Role::Admin, None));
    let other_model = key(Role::Predict, Some("fraud"));
    let served = LoadedModel::new(
        "credit".into(),
        1,
        "ab".repeat(32),
        model(),
        Vec::new(),
        OutputMode::Raw,
        None,
    );
    let state = Arc::new(AppState::new(vec![served], store, limits, None));
    Gateway {
        _dir: dir,
        state,
        predict,
        admin,
        other_model,
    }
}

/// One request through the router, from a client at 192.0.2.1; the status and the body.
async fn call(g: &Gateway, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let mut req = req;
    req.extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
    let res = rampart_serve::router(g.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, v, parts.headers)
}

/// A bodiless GET of `path` with `token`.
fn get(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// The Prometheus text an admin key reads.
async fn metrics_text(g: &Gateway) -> String {
    let res = rampart_serve::router(g.state.clone())
        .oneshot({
            let mut r = get("/metrics", &g.admin);
            r.extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
            r
        })
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8_lossy(&text).into_owned()
}

fn infer(token: Option<&str>, content_type: &str, body: String) -> Request<Body> {
    let mut b = Request::post("/v2/models/credit/infer").header(header::CONTENT_TYPE, content_type);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body)).unwrap()
}

fn rows(data: &Value) -> String {
    json!({"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32", "data": data}]})
        .to_string()
}

#[tokio::test]
async fn a_request_is_authenticated_scoped_limited_and_validated_before_inference() {
    let g = gateway(ServeLimits::default());
    // Liveness needs no key.
    let (code, _, _) = call(
        &g,
        Request::get("/v2/health/live").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    // No key: 401 with the challenge, as problem+json with the KServe `error` member.
    let (code, v, headers) = call(
        &g,
        infer(
            None,
            "application/json",
            rows(&json!([[0.1, 0.9], [0.9, 0.1]])),
        ),
    )
    .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"rampart\""),
        "{challenge}"
    );
    assert!(v["error"].is_string(), "{v}");
    // A predict key infers: one label per row, the probabilities beside them.
    let (code, v, _) = call(
        &g,
        infer(
            Some(&g.predict),
            "application/json",
            rows(&json!([[0.1, 0.9], [0.9, 0.1]])),
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["outputs"][0]["data"], json!(["no", "yes"]));
    // Values far outside the training range: 422, naming the field.
    let (code, v, _) = call(
        &g,
        infer(
            Some(&g.predict),
            "application/json",
            rows(&json!([[0.1, 0.9], [900.0, 0.1]])),
        ),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v.to_string().contains("income"), "{v}");
    // Not JSON: 415 before the body is parsed.
    let (code, _, _) = call(
        &g,
        infer(
            Some(&g.predict),
            "text/plain",
            rows(&json!([[0.1, 0.9], [0.9, 0.1]])),
        ),
    )
    .await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // The metrics are for admin keys only.
    let (code, _, _) = call(&g, get("/metrics", &g.predict)).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(
        metrics_text(&g)
            .await
            .contains("rampart_auth_failures_total")
    );
    // An unknown model: 404.
    let (code, _, _) = call(
        &g,
        Request::get("/v2/models/nope")
            .header(header::AUTHORIZATION, format!("Bearer {}", g.predict))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_whole() {
    let g = gateway(ServeLimits {
        max_body: 64,
        ..ServeLimits::default()
    });
    let big = rows(&json!([[0.1, 0.9], [0.9, 0.1]])) + &" ".repeat(200);
    let (code, v, _) = call(&g, infer(Some(&g.predict), "application/json", big)).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
}

/// Attacks a caller can make with a valid key: another model's key, a shape that declares far
/// more values than it sends (the gateway must not allocate for the claim), a shape that does
/// not match the data, the wrong datatype, a non-number in the data, a forged key.
#[tokio::test]
async fn hostile_requests_are_refused_before_inference() {
    let g = gateway(ServeLimits::default());
    let good = rows(&json!([[0.1, 0.9], [0.9, 0.1]]));
    // A key scoped to another model: 403.
    let (code, v, _) = call(
        &g,
        infer(Some(&g.other_model), "application/json", good.clone()),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{v}");
    // A forged key in the right shape: 401.
    let forged = format!("rk_{}_{}", "0".repeat(16), "A".repeat(43));
    let (code, _, _) = call(&g, infer(Some(&forged), "application/json", good)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let tensor = |shape: Value, datatype: &str, data: Value| {
        json!({"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}]})
            .to_string()
    };
    for (what, body) in [
        (
            "a shape claiming 10^12 rows",
            tensor(json!([1_000_000_000_000u64, 2]), "FP32", json!([0.1, 0.9])),
        ),
        (
            "a shape whose product overflows",
            tensor(json!([u64::MAX, u64::MAX]), "FP32", json!([0.1, 0.9])),
        ),
        (
            "a shape that does not match the data",
            tensor(json!([3, 2]), "FP32", json!([0.1, 0.9, 0.9, 0.1])),
        ),
        (
            "too few columns",
            tensor(json!([2, 1]), "FP32", json!([0.1, 0.9])),
        ),
        (
            "a string among the numbers",
            tensor(json!([1, 2]), "FP32", json!([0.1, "0.9"])),
        ),
        (
            "a number beyond f32",
            tensor(json!([1, 2]), "FP32", json!([0.1, 1e300])),
        ),
        ("no inputs", json!({"inputs": []}).to_string()),
    ] {
        let (code, v, _) = call(&g, infer(Some(&g.predict), "application/json", body)).await;
        assert!(
            [
                StatusCode::BAD_REQUEST,
                StatusCode::PAYLOAD_TOO_LARGE,
                StatusCode::UNPROCESSABLE_ENTITY
            ]
            .contains(&code),
            "{what}: {code} {v}"
        );
        assert!(v["error"].is_string(), "{what}: {v}");
    }
}

/// The shared corpus's scikit-learn forest (skl2onnx, ZipMap probabilities) served as `sk`
/// with output mode `output`, over the keys of [`gateway`].
fn onnx_gateway(output: OutputMode) -> (Gateway, Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/interop/onnx-models");
    let bytes = std::fs::read(dir.join("sk_rf.onnx")).unwrap();
    let reference: Value =
        serde_json::from_slice(&std::fs::read(dir.join("reference.json")).unwrap()).unwrap();
    let onnx =
        rampart_serve::onnx::OnnxModel::load(&bytes, rampart_serve::onnx::OnnxLimits::default())
            .unwrap();
    let g = gateway(ServeLimits::default());
    let sk = LoadedModel::onnx("sk".into(), 3, "cd".repeat(32), onnx, Vec::new(), output);
    let state = Arc::new(AppState::new(
        vec![sk],
        KeyStore::open(&g._dir.path().join("apikeys.db")).unwrap(),
        ServeLimits::default(),
        None,
    ));
    (
        Gateway { state, ..g },
        reference["models"]["sk_rf.onnx"].clone(),
    )
}

/// An ONNX model's tabular input is monitored like a rampart model's rows when its version
/// records the training statistics of that input (rampart takes them when it scores the model
/// after training): drift against them, and a companion isolation forest on the same columns
/// flagging rows unlike the training data. Without the reference only the extraction budget
/// watches it.
#[tokio::test]
#[allow(clippy::cast_possible_truncation)]
async fn an_onnx_tabular_input_is_monitored_for_drift_and_anomalies() {
    use rampart_ml::iforest::{IsolationForest, IsolationParams};
    use rampart_serve::InputReference;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/interop/onnx-models");
    let bytes = std::fs::read(dir.join("sk_rf.onnx")).unwrap();
    let onnx =
        rampart_serve::onnx::OnnxModel::load(&bytes, rampart_serve::onnx::OnnxLimits::default())
            .unwrap();
    // The "training rows": six standard normal columns.
    let mut rng = rampart_ml::split::SplitMix64::new(5);
    let names: Vec<String> = (0..6).map(|j| format!("f{j}")).collect();
    let train: Vec<f32> = (0..600 * 6).map(|_| rng.normal() as f32).collect();
    let x = Matrix::new(600, 6, train).unwrap();
    let stats = rampart_ml::model::FeatureStats::of(&x, &names);
    // A recorded reference must fit the graph: the wrong input name or width is no reference.
    let recorded = json!({"input": "X", "input_schema": stats});
    assert!(InputReference::of(Some(&recorded), onnx.inputs()).is_some());
    let wrong = json!({"input": "Y", "input_schema": stats});
    assert!(InputReference::of(Some(&wrong), onnx.inputs()).is_none());
    let narrow = json!({"input": "X", "input_schema": &stats[..5]});
    assert!(InputReference::of(Some(&narrow), onnx.inputs()).is_none());
    let reference = InputReference::of(Some(&recorded), onnx.inputs());
    let forest = IsolationForest::fit(
        &x,
        &IsolationParams {
            n_trees: 50,
            ..IsolationParams::default()
        },
    )
    .unwrap();
    let detector = Model::new(
        Estimator::IsolationForest(forest),
        &x,
        names.clone(),
        Vec::new(),
        json!({}),
    )
    .unwrap();
    let g = gateway(ServeLimits::default());
    let sk = LoadedModel::onnx(
        "sk".into(),
        3,
        "cd".repeat(32),
        onnx,
        Vec::new(),
        OutputMode::Raw,
    )
    .with_reference(reference, Some(detector))
    .with_drift_window(200, None);
    assert_eq!(sk.schema().len(), 6);
    let state = Arc::new(AppState::new(
        vec![sk],
        KeyStore::open(&g._dir.path().join("apikeys.db")).unwrap(),
        ServeLimits::default(),
        None,
    ));
    let g = Gateway { state, ..g };
    let ask = |rows: Vec<f32>| {
        let n = rows.len() / 6;
        json!({"inputs": [{"name": "X", "shape": [n, 6], "datatype": "FP32", "data": rows}]})
            .to_string()
    };
    let (code, meta, _) = call(&g, get("/v2/models/sk", &g.predict)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        meta["parameters"]["rampart.monitoring"],
        json!({"input": "X", "columns": names, "drift": true, "anomaly_detector": true})
    );
    // A row at the centre of the training rows, and one far from them: flagged beside the
    // answer.
    let mut rows = vec![0.0f32; 6];
    rows.extend([40.0f32; 6]);
    let (code, v, _) = call(&g, infer_at("sk", &g.predict, ask(rows))).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let out = |name: &str| {
        v["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {v}"))
    };
    assert_eq!(out("is_anomaly")["data"], json!([false, true]), "{v}");
    assert_eq!(out("anomaly_score")["datatype"], "FP64");
    assert_eq!(out("output_label")["shape"], json!([2]));
    // Shifted traffic: once the window holds enough rows, drift is measured per column.
    let shifted: Vec<f32> = (0..150 * 6).map(|_| 3.0 + rng.normal() as f32).collect();
    let (code, v, _) = call(&g, infer_at("sk", &g.predict, ask(shifted))).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    g.state.drift_once();
    let text = metrics_text(&g).await;
    let psi = |feature: &str| -> f64 {
        let prefix = format!("rampart_drift_score{{model=\"sk\",feature=\"{feature}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no drift for {feature}: {text}"))
            .parse()
            .unwrap()
    };
    assert!(psi("f0") > 0.2 && psi("f5") > 0.2, "{text}");
    assert!(text.contains("rampart_anomalies_total"), "{text}");
}

fn infer_at(model: &str, token: &str, body: String) -> Request<Body> {
    Request::post(format!("/v2/models/{model}/infer"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(body))
        .unwrap()
}

/// An ONNX model behind the same chain: metadata from the graph, onnxruntime's answers as V2
/// tensors, refusals naming the input, keys and scopes as for any model, `/v1` not offered,
/// and output hardening on its probabilities.
#[tokio::test]
async fn an_onnx_model_is_served_through_the_whole_chain() {
    let (g, reference) = onnx_gateway(OutputMode::Raw);
    let (code, meta, _) = call(
        &g,
        Request::get("/v2/models/sk")
            .header(header::AUTHORIZATION, format!("Bearer {}", g.predict))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{meta}");
    assert_eq!(meta["platform"], "onnxruntime");
    assert_eq!(
        meta["inputs"],
        json!([{"name": "X", "datatype": "FP32", "shape": [-1, 6]}])
    );
    let x = &reference["inputs"]["X"];
    let body = json!({"id": "q1", "inputs": [{"name": "X", "shape": x["shape"], "datatype": "FP32", "data": x["data"]}]}).to_string();
    let (code, v, _) = call(&g, infer_at("sk", &g.predict, body.clone())).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["model_name"], "sk");
    assert_eq!(v["model_version"], "3");
    assert_eq!(v["id"], "q1");
    assert_eq!(v["outputs"][0]["name"], "output_label");
    assert_eq!(
        v["outputs"][0]["data"],
        reference["outputs"]["output_label"]
    );
    let probs = &v["outputs"][1];
    assert_eq!(probs["shape"], json!([4, 3]));
    assert_eq!(probs["parameters"]["classes"], json!([0, 1, 2]));
    for (row, want) in reference["outputs"]["output_probability"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        for c in 0..3 {
            let got = probs["data"][row * 3 + c].as_f64().unwrap();
            let w = want[c.to_string()].as_f64().unwrap();
            assert!(
                (got - w).abs() <= 1e-4 * w.abs().max(1e-3),
                "row {row} class {c}: {got} vs {w}"
            );
        }
    }
    // The wrong datatype, a missing input, the wrong width: 400 naming the input.
    for (bad, says) in [
        (
            json!({"inputs": [{"name": "X", "shape": [1, 6], "datatype": "FP64", "data": [0, 0, 0, 0, 0, 0]}]}),
            "input X: datatype FP64",
        ),
        (
            json!({"inputs": [{"name": "Y", "shape": [1, 6], "datatype": "FP32", "data": [0, 0, 0, 0, 0, 0]}]}),
            "input Y",
        ),
        (
            json!({"inputs": [{"name": "X", "shape": [1, 5], "datatype": "FP32", "data": [0, 0, 0, 0, 0]}]}),
            "input X: dimension 1 is 5",
        ),
    ] {
        let (code, v, _) = call(&g, infer_at("sk", &g.predict, bad.to_string())).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"].as_str().unwrap().contains(says), "{v}");
    }
    // Keys and scopes as for any model.
    let (code, _, _) = call(&g, infer_at("sk", "rk_nope", body.clone())).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _, _) = call(&g, infer_at("sk", &g.other_model, body.clone())).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // No /v1 rows for a graph.
    let (code, v, _) = call(
        &g,
        Request::post("/v1/models/sk:predict")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", g.predict))
            .body(Body::from(r#"{"instances": [{"a": 1}]}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{v}");

    // Labels only: no probabilities leave the gateway.
    let (g, _) = onnx_gateway(OutputMode::Label);
    let (code, v, _) = call(&g, infer_at("sk", &g.predict, body.clone())).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["output_label", "output_probability_label"]);
    assert_eq!(
        v["outputs"][1]["data"],
        reference["outputs"]["output_label"]
    );
    assert!(!v.to_string().contains("FP32"), "{v}");
    // Bins: the band of the top probability beside the label.
    let (g, _) = onnx_gateway(OutputMode::Bins(vec!["low".into(), "high".into()]));
    let (code, v, _) = call(&g, infer_at("sk", &g.predict, body)).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["outputs"][2]["name"], "output_probability_band");
    assert_eq!(v["outputs"][2]["datatype"], "BYTES");
}

/// What a red-team pass found and what now holds: every error status is a problem document
/// (405, an undecodable path, an over-long target, over-large headers), a body with a key
/// given twice is refused naming it, a request whose length is given twice is refused before
/// routing, a body that never finishes arriving gets 408, and a flood of wrong keys from one
/// address is throttled without locking out a valid key from the same address.
#[tokio::test]
async fn the_gateway_answers_every_refusal_with_a_problem_and_holds_against_framing_tricks() {
    let g = gateway(ServeLimits {
        read_timeout: std::time::Duration::from_millis(200),
        ..ServeLimits::default()
    });
    let bearer = format!("Bearer {}", g.predict);
    let is_problem = |code: StatusCode, v: &Value, what: &str| {
        assert_eq!(v["status"], code.as_u16(), "{what}: {v}");
        assert!(
            v["error"].is_string() && v["type"].is_string(),
            "{what}: {v}"
        );
    };
    // 405 names what the route answers.
    let (code, v, h) = call(
        &g,
        Request::delete("/v2/models/credit")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    is_problem(code, &v, "405");
    assert!(h.contains_key(header::ALLOW));
    // A path segment that is not UTF-8.
    let (code, v, _) = call(
        &g,
        Request::get("/v2/models/%ff")
            .header(header::AUTHORIZATION, &bearer)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    is_problem(code, &v, "bad path");
    // An over-long target and over-large headers.
    let (code, v, _) = call(
        &g,
        Request::get(format!("/v2/models/{}", "a".repeat(9000)))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::URI_TOO_LONG);
    is_problem(code, &v, "414");
    let (code, v, _) = call(
        &g,
        Request::get("/v2")
            .header("x-big", "a".repeat(70_000))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    is_problem(code, &v, "431");
    // A key given twice: the tensor named twice could be read either way.
    let twice = r#"{"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0.1, 0.9], "data": [900, 900]}]}"#;
    let (code, v, _) = call(
        &g,
        infer(Some(&g.predict), "application/json", twice.into()),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("\"data\" twice in the object at $.inputs[0]"),
        "{v}"
    );
    // Content-Length with Transfer-Encoding, and two Content-Length values.
    for extra in [("transfer-encoding", "chunked"), ("content-length", "7")] {
        let body = rows(&json!([[0.1, 0.9], [0.9, 0.1]]));
        let req = Request::post("/v2/models/credit/infer")
            .header(header::AUTHORIZATION, &bearer)
            .header(header::CONTENT_LENGTH, body.len().to_string())
            .header(extra.0, extra.1)
            .body(Body::from(body))
            .unwrap();
        let (code, v, _) = call(&g, req).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{extra:?}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("gives its length twice"),
            "{v}"
        );
    }
    // A body that never finishes: 408 within the read timeout.
    let stalled = futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
    let req = Request::post("/v2/models/credit/infer")
        .header(header::AUTHORIZATION, &bearer)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stalled))
        .unwrap();
    let started = std::time::Instant::now();
    let (code, v, _) = call(&g, req).await;
    assert_eq!(code, StatusCode::REQUEST_TIMEOUT, "{v}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Twenty wrong keys from one address: the failures are throttled (429) ...
    let mut throttled = false;
    for _ in 0..20 {
        let (code, _, _) = call(
            &g,
            infer(
                Some("rk_0000000000000000_wrong"),
                "application/json",
                rows(&json!([[0.1, 0.9], [0.9, 0.1]])),
            ),
        )
        .await;
        assert!(code == StatusCode::UNAUTHORIZED || code == StatusCode::TOO_MANY_REQUESTS);
        throttled |= code == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(throttled, "a flood of wrong keys was never throttled");
    // ... and a valid key from the same address still gets its answer.
    let (code, v, _) = call(
        &g,
        infer(
            Some(&g.predict),
            "application/json",
            rows(&json!([[0.1, 0.9], [0.9, 0.1]])),
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
}

/// On a real listener: a client that sends half its headers and stalls is cut off at the
/// read timeout. A request giving both Content-Length and Transfer-Encoding reaches the
/// service with the length hyper dropped (RFC 9112 §6.1: chunked wins), so the service's
/// refusal cannot see it there; what must hold on the wire is that nothing can be smuggled:
/// one answer, then the connection is closed, and a request pipelined behind it is never
/// answered.
#[tokio::test]
async fn a_slow_sender_is_cut_off_and_an_ambiguous_length_smuggles_nothing_on_the_wire() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let g = gateway(ServeLimits {
        read_timeout: std::time::Duration::from_millis(300),
        ..ServeLimits::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rampart_serve::serve(listener, g.state.clone(), async {
        let _ = stopped.await;
    }));
    // Half the headers, then nothing: the connection is closed, well before 30 s.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /v2 HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        slow.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "the stalled connection was still open after 5 s"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Content-Length and Transfer-Encoding together, with a second request pipelined behind.
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"POST /v2/models/credit/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        c.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the connection stayed open");
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    let _ = stop.send(());
    let _ = server.await;
}
