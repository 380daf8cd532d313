//! The routes: Open Inference Protocol (KServe V2) REST, the plain JSON `:predict` route,
//! health, metadata and `/metrics`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::admission::*;
use crate::keys::{KeyInfo, Role};
use crate::problem::Problem;
use crate::*;

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v2/health/live", get(|| async { StatusCode::OK }))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{model}", get(model_metadata))
        .route("/v2/models/{model}/ready", get(model_ready))
        .route("/v2/models/{model}/versions/{version}", get(model_metadata))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(model_ready),
        )
        .route("/v2/models/{model}/infer", post(infer))
        .route("/v2/models/{model}/versions/{version}/infer", post(infer))
        .route("/v1/models/{target}", post(predict_v1))
        .route("/v1/chat/completions", post(guard_proxy::chat))
        .route("/v1/responses", post(guard_proxy::responses))
        .route("/metrics", get(metrics_route))
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not-found", "no such route").into_response()
        })
        .layer(axum::middleware::from_fn(framed))
        .with_state(state)
}

pub(crate) fn find(
    st: &AppState,
    name: &str,
    version: Option<&str>,
) -> Result<Arc<LoadedModel>, Response> {
    let models = st.models();
    let m = models.get(name).ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "model-not-found",
            format!("no model {name} is served"),
        )
        .into_response()
    })?;
    if !m.intact.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "model-integrity",
            format!("{name} failed its integrity check and is not served"),
        )
        .into_response());
    }
    if let Some(v) = version
        && v != m.version.to_string()
    {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "model-not-found",
            format!(
                "{name} version {v} is not served (version {} is)",
                m.version
            ),
        )
        .into_response());
    }
    Ok(Arc::clone(m))
}

pub(crate) async fn ready(State(st): State<Arc<AppState>>) -> StatusCode {
    let models = st.models();
    if models.is_empty()
        || models
            .values()
            .any(|m| !m.intact.load(std::sync::atomic::Ordering::SeqCst))
    {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

pub(crate) async fn server_metadata(
    (State(st), ConnectInfo(addr), method, uri, headers): Ctx,
) -> Response {
    if let Err(r) = admit(
        &st,
        addr.ip(),
        &headers,
        Req::bodiless(&method, &uri),
        Role::Predict,
        None,
    ) {
        return r;
    }
    axum::Json(json!({"name": "rampart", "version": env!("CARGO_PKG_VERSION"), "extensions": []}))
        .into_response()
}

pub(crate) fn metadata(m: &LoadedModel) -> Value {
    let model = match &m.runner {
        Runner::Builtin(model) => model,
        Runner::Upstream(u) => return u.metadata(&m.name),
        Runner::Onnx(onnx) => {
            let mut v = onnx.metadata(&m.name, m.version);
            if let Value::Object(o) = &mut v {
                // What watches this model's inputs: drift (and a detector) on a tabular input
                // with recorded training statistics; else only the extraction budget.
                let monitoring = match &m.reference {
                    Some(r) => json!({
                        "input": r.input,
                        "columns": r.stats.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                        "drift": true,
                        "anomaly_detector": m.detector.is_some(),
                    }),
                    None => {
                        json!({"drift": false, "anomaly_detector": false, "extraction_budget": true})
                    }
                };
                o.insert(
                    "parameters".into(),
                    json!({"rampart.root": m.root, "rampart.kind": "onnx", "rampart.monitoring": monitoring}),
                );
            }
            return v;
        }
    };
    let meta = &model.meta;
    let outputs = if meta.classes.is_empty() {
        json!([{"name": "anomaly_score", "datatype": "FP64", "shape": [-1]}, {"name": "is_anomaly", "datatype": "BOOL", "shape": [-1]}])
    } else {
        json!([{"name": "label", "datatype": "BYTES", "shape": [-1]}, {"name": "probabilities", "datatype": "FP64", "shape": [-1, meta.classes.len()]}])
    };
    json!({
        "name": m.name,
        "versions": [m.version.to_string()],
        "platform": "rampart",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, meta.features.len()]}],
        "outputs": outputs,
        "parameters": {"rampart.features": meta.features, "rampart.classes": meta.classes, "rampart.root": m.root, "rampart.kind": meta.kind.to_string()},
    })
}

/// The route's parameters: `model`, and `version` on the per-version routes.
pub(crate) type Params = Path<std::collections::HashMap<String, String>>;

pub(crate) async fn model_metadata(ctx: Ctx, Path(p): Params) -> Response {
    meta_common(ctx, &p, false)
}

pub(crate) async fn model_ready(ctx: Ctx, Path(p): Params) -> Response {
    meta_common(ctx, &p, true)
}

pub(crate) fn meta_common(
    (State(st), ConnectInfo(addr), method, uri, headers): Ctx,
    p: &std::collections::HashMap<String, String>,
    ready: bool,
) -> Response {
    let model = p.get("model").map_or("", String::as_str);
    let req = Req::bodiless(&method, &uri);
    if let Err(r) = admit(&st, addr.ip(), &headers, req, Role::Predict, Some(model)) {
        return r;
    }
    match find(&st, model, p.get("version").map(String::as_str)) {
        Ok(_) if ready => StatusCode::OK.into_response(),
        Ok(m) => axum::Json(metadata(&m)).into_response(),
        Err(r) => r,
    }
}

/// The request as it arrives: the handlers take it whole rather than extracting headers,
/// method and URI one by one (each extractor copies what it takes, on every request).
pub(crate) type Raw = (
    State<Arc<AppState>>,
    ConnectInfo<SocketAddr>,
    Path<std::collections::HashMap<String, String>>,
    axum::extract::Request,
);

pub(crate) async fn infer((State(st), ConnectInfo(addr), Path(p), req): Raw) -> Response {
    let model = p.get("model").cloned().unwrap_or_default();
    let version = p.get("version").cloned();
    infer_common(st, addr, req, model, version, false).await
}

pub(crate) async fn predict_v1((State(st), ConnectInfo(addr), Path(p), req): Raw) -> Response {
    let Some(model) = p
        .get("target")
        .and_then(|t| t.strip_suffix(":predict"))
        .map(str::to_owned)
    else {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "the route is /v1/models/{name}:predict",
        )
        .into_response();
    };
    infer_common(st, addr, req, model, None, true).await
}

pub(crate) async fn infer_common(
    st: Arc<AppState>,
    addr: SocketAddr,
    req: axum::extract::Request,
    model: String,
    version: Option<String>,
    v1: bool,
) -> Response {
    let (parts, body) = req.into_parts();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let body = read_body(&st, headers, body).await;
    let started = std::time::Instant::now();
    let route = if v1 { "v1_predict" } else { "v2_infer" };
    let response = (|| {
        let body = body?;
        let key = admit(
            &st,
            addr.ip(),
            headers,
            Req {
                method,
                uri,
                body: &body,
            },
            Role::Predict,
            Some(model.as_str()),
        )?;
        let m = find(&st, &model, version.as_deref())?;
        check_body(&st, headers, &body)?;
        let parsed = parse(&st, &m, &body, v1).map_err(IntoResponse::into_response)?;
        Ok::<_, Response>((key, m, parsed, body))
    })();
    let (key, m, parsed, body) = match response {
        Ok(x) => x,
        Err(r) => {
            // The name comes from the URL: only served names become labels, so a caller
            // cannot grow the metrics without bound.
            let label = if st.models().contains_key(&model) {
                model.as_str()
            } else {
                "_unknown"
            };
            st.metrics
                .request(label, None, route, r.status().as_u16(), started.elapsed());
            return r;
        }
    };
    let r = match tokio::time::timeout(
        st.limits.timeout,
        predict(&st, addr.ip(), &key, &m, parsed, body, v1),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => {
            st.metrics.overloaded("timeout");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("no answer within {} s", st.limits.timeout.as_secs_f64()),
            )
            .with_header(header::RETRY_AFTER, "1")
            .into_response()
        }
    };
    st.metrics.request(
        &model,
        Some(m.version),
        route,
        r.status().as_u16(),
        started.elapsed(),
    );
    r
}

/// Requests of at most this many rows are predicted on the async worker itself: a few
/// microseconds of trees cost less than handing the work to the blocking pool and back
/// (which `bench/serve.sh` measured as most of the CPU of a one-row request).
pub const INLINE_ROWS: usize = 8;

/// Runs `f` (inference of `rows` rows) inline when it is small, else on the blocking pool.
///
/// # Errors
/// A panic in `f`, on the blocking pool.
pub async fn off_the_reactor<T: Send + 'static>(
    rows: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if rows <= INLINE_ROWS {
        Ok(f())
    } else {
        tokio::task::spawn_blocking(f).await
    }
}

/// A request's inputs, checked against what its model takes.
pub(crate) enum Inputs {
    /// Rows for a tabular model.
    Table(oip::Parsed),
    /// Tensors for a graph.
    Tensors(crate::onnx::tensor::Request),
}

/// Parses and validates a request body for `m`: V2 or `/v1` rows for a tabular model (within
/// its training ranges), V2 tensors for a graph.
fn parse(st: &AppState, m: &LoadedModel, body: &[u8], v1: bool) -> Result<Inputs, Problem> {
    match &m.runner {
        Runner::Builtin(model) => {
            let parsed = if v1 {
                oip::parse_v1(body, &model.meta, st.limits.max_batch)
            } else {
                oip::parse_v2(body, &model.meta, st.limits.max_batch)
            }?;
            oip::validate(&parsed, &model.meta, st.limits.range_margin)?;
            Ok(Inputs::Table(parsed))
        }
        Runner::Onnx(_) | Runner::Upstream(_) if v1 => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!(
                "{} takes V2 tensors: ask it at /v2/models/{}/infer",
                m.name, m.name
            ),
        )),
        Runner::Onnx(onnx) => tensors(st, body, onnx.inputs()),
        Runner::Upstream(u) => tensors(st, body, u.inputs()),
    }
}

/// V2 tensors checked against a graph's (or an upstream's) declared inputs.
fn tensors(
    st: &AppState,
    body: &[u8],
    inputs: &[crate::onnx::tensor::Port],
) -> Result<Inputs, Problem> {
    crate::onnx::tensor::parse_request(
        body,
        inputs,
        crate::onnx::tensor::Bounds {
            // A value takes at least two bytes of JSON: no body within the limit holds more.
            max_elements: st.limits.max_body / 2 + 1,
            max_batch: st.limits.max_batch,
        },
    )
    .map(Inputs::Tensors)
}

/// Extraction hold and concurrency limit: the permit to run one admitted request.
fn hold(
    st: &Arc<AppState>,
    ip: IpAddr,
    key: &KeyInfo,
    m: &LoadedModel,
) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    if let Err(held) = st.extraction.admit(&key.id, &m.name) {
        st.metrics.rate_limited("extraction");
        st.event(
            "serve.extraction",
            ip,
            Some(key.id.clone()),
            format!(
                "{} on {}: request refused ({})",
                held.kind,
                m.name,
                if held.blocked { "blocked" } else { "throttled" }
            ),
        );
        let secs = held.retry_after.as_secs().max(1);
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "abnormal-usage-detected",
            format!(
                "this key's queries look like model extraction ({}); it is {} for {secs} s",
                held.kind,
                if held.blocked {
                    "blocked"
                } else {
                    "throttled to one request per second"
                }
            ),
        )
        .with_type(problem::ABNORMAL_USAGE)
        .with_header(header::RETRY_AFTER, secs.to_string())
        .into_response());
    }
    Arc::clone(&st.in_flight).try_acquire_owned().map_err(|_| {
        st.metrics.overloaded("concurrency");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "{} inferences are already in flight",
                st.limits.max_concurrency
            ),
        )
        .with_header(header::RETRY_AFTER, "1")
        .into_response()
    })
}

/// What an inference on the blocking pool came to: its result, or the problem it raised
/// (a run terminated at its time limit counted as a timeout), a panic as 500, and 503 when the
/// model failed its integrity check meanwhile.
fn finished<T>(
    st: &AppState,
    m: &LoadedModel,
    out: Result<Result<T, Problem>, tokio::task::JoinError>,
) -> Result<T, Response> {
    let x = match out {
        Ok(Ok(x)) => x,
        Ok(Err(p)) => {
            if p.status() == StatusCode::SERVICE_UNAVAILABLE {
                st.metrics.overloaded("timeout");
            }
            return Err(p.into_response());
        }
        Err(_) => {
            return Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "inference failed",
            )
            .into_response());
        }
    };
    if !m.intact.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "model-integrity",
            "the model failed its integrity check",
        )
        .into_response());
    }
    Ok(x)
}

/// Inference and the monitors for one admitted request.
pub(crate) async fn predict(
    st: &Arc<AppState>,
    ip: IpAddr,
    key: &KeyInfo,
    m: &Arc<LoadedModel>,
    inputs: Inputs,
    body: Bytes,
    v1: bool,
) -> Response {
    let permit = match hold(st, ip, key, m) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let parsed = match inputs {
        Inputs::Table(p) => p,
        Inputs::Tensors(req) => return predict_tensors(st, ip, key, m, req, body, permit).await,
    };
    let (st2, m2, key_id) = (Arc::clone(st), Arc::clone(m), key.id.clone());
    let t = std::time::Instant::now();
    #[cfg(debug_assertions)]
    let rows = if st.debug_delay.is_zero() {
        parsed.rows
    } else {
        usize::MAX
    };
    #[cfg(not(debug_assertions))]
    let rows = parsed.rows;
    // The permit is held until the model is done, even if the request times out first.
    let out = off_the_reactor(rows, move || {
        let _permit = permit;
        #[cfg(debug_assertions)]
        std::thread::sleep(st2.debug_delay);
        let scored = oip::run(&m2, &parsed)?;
        st2.observe(ip, &key_id, &m2, &parsed, &scored);
        Ok::<_, Problem>((scored, parsed.id))
    })
    .await;
    st.metrics.inference(t.elapsed());
    let (scored, id) = match finished(st, m, out) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let policy = st.monitoring.anomaly;
    if let Some(a) = &scored.anomaly
        && let Some(refused) = anomalies(st, ip, key, m, a)
    {
        return refused;
    }
    let classes = m.builtin().map_or(&[][..], |b| &b.meta.classes[..]);
    let v = oip::render(
        m,
        classes,
        &scored,
        id,
        v1,
        policy == monitor::AnomalyPolicy::Flag,
    );
    st.sample_payload(ip, &key.id, m, &body, &v);
    axum::Json(v).into_response()
}

/// Records the rows a companion detector scored anomalous (metrics and audit, as the policy
/// says) and, under `reject`, the refusal to send instead of the answer.
fn anomalies(
    st: &AppState,
    ip: IpAddr,
    key: &KeyInfo,
    m: &LoadedModel,
    a: &[(f64, bool)],
) -> Option<Response> {
    let policy = st.monitoring.anomaly;
    let rows: Vec<usize> = a
        .iter()
        .enumerate()
        .filter(|(_, (_, f))| *f)
        .map(|(i, _)| i)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let action = match policy {
        monitor::AnomalyPolicy::Log => "logged",
        monitor::AnomalyPolicy::Flag => "flagged",
        monitor::AnomalyPolicy::Reject => "rejected",
    };
    st.metrics.anomalies(&m.name, action, rows.len() as u64);
    st.event(
        if policy == monitor::AnomalyPolicy::Reject {
            "serve.anomaly-rejected"
        } else {
            "serve.anomaly"
        },
        ip,
        Some(key.id.clone()),
        format!(
            "{}@{}: rows {rows:?} scored anomalous ({action})",
            m.name, m.version
        ),
    );
    (policy == monitor::AnomalyPolicy::Reject).then(|| {
        let errors: Vec<Value> = rows
            .iter()
            .take(100)
            .filter_map(|&i| a.get(i).map(|(s, _)| json!({"row": i, "anomaly_score": s})))
            .collect();
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "anomalous-input",
            format!("{} of the rows are unlike the training data", rows.len()),
        )
        .with(json!({"errors": errors}))
        .into_response()
    })
}

/// A graph's inference: run on the blocking pool under the model's time limit, the rows fed
/// to the extraction detector, the outputs hardened as the model's output mode says.
async fn predict_tensors(
    st: &Arc<AppState>,
    ip: IpAddr,
    key: &KeyInfo,
    m: &Arc<LoadedModel>,
    req: crate::onnx::tensor::Request,
    body: Bytes,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Response {
    let t = std::time::Instant::now();
    if let Runner::Upstream(u) = &m.runner {
        let out = u.infer(&req).await;
        drop(permit);
        st.metrics.inference(t.elapsed());
        let (x, schema) = crate::onnx::tensor::extraction_rows(&req);
        st.observe_rows(ip, &key.id, m, &x, &schema, &[]);
        return match finished(st, m, Ok(out)) {
            Ok(outputs) => render_tensors(st, ip, key, m, outputs, req.id, &body),
            Err(r) => r,
        };
    }
    // A blocking thread only once a session is free: waiting happens here, on the reactor.
    let Ok(run) = Arc::clone(&m.runs).acquire_owned().await else {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the model is unloading",
        )
        .into_response();
    };
    let (st2, m2, key_id) = (Arc::clone(st), Arc::clone(m), key.id.clone());
    let out = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _run = run;
        let Runner::Onnx(onnx) = &m2.runner else {
            return Err(Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "not an ONNX model",
            ));
        };
        let outputs = onnx.infer(&req).map_err(|e| match e {
            crate::onnx::OnnxError::Timeout(_) => {
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", e.to_string())
                    .with_header(header::RETRY_AFTER, "1")
            }
            // The worker could not start or died mid-run: the gateway's side of the failure.
            crate::onnx::OnnxError::Worker(_) => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "model-worker-failed",
                e.to_string(),
            ),
            other => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "inference-failed",
                other.to_string(),
            ),
        })?;
        // A tabular input the model's recorded reference describes is monitored like a
        // rampart model's rows: drift against the training statistics, the companion
        // detector, the extraction detector at the training scale.
        let mut anomaly = None;
        if let Some(x) = m2.reference.as_ref().and_then(|r| r.rows(&req)) {
            if let Some(d) = &m2.detector {
                anomaly = Some(oip::detect(d, &x, req.rows)?);
            }
            m2.window.push(&x);
            st2.observe_rows(ip, &key_id, &m2, &x, m2.schema(), &[]);
        } else {
            let (x, schema) = crate::onnx::tensor::extraction_rows(&req);
            st2.observe_rows(ip, &key_id, &m2, &x, &schema, &[]);
        }
        Ok((outputs, req.id, anomaly))
    })
    .await;
    st.metrics.inference(t.elapsed());
    let (mut outputs, id, anomaly) = match finished(st, m, out) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Some(a) = &anomaly {
        if let Some(refused) = anomalies(st, ip, key, m, a) {
            return refused;
        }
        if st.monitoring.anomaly == monitor::AnomalyPolicy::Flag {
            use crate::onnx::tensor::{Data, Tensor};
            outputs.push(Tensor {
                name: "anomaly_score".into(),
                shape: vec![a.len()],
                data: Data::Fp64(a.iter().map(|(s, _)| *s).collect()),
                parameters: None,
            });
            outputs.push(Tensor {
                name: "is_anomaly".into(),
                shape: vec![a.len()],
                data: Data::Bool(a.iter().map(|(_, f)| *f).collect()),
                parameters: None,
            });
        }
    }
    render_tensors(st, ip, key, m, outputs, id, &body)
}

/// A graph's or an upstream's outputs as the caller sees them: hardened by the model's output
/// mode, sampled to the audit log when payload logging is on.
fn render_tensors(
    st: &AppState,
    ip: IpAddr,
    key: &KeyInfo,
    m: &LoadedModel,
    outputs: Vec<crate::onnx::tensor::Tensor>,
    id: Option<String>,
    body: &[u8],
) -> Response {
    let outputs: Vec<Value> = crate::onnx::harden(outputs, &m.output)
        .iter()
        .map(crate::onnx::tensor::Tensor::to_json)
        .collect();
    let mut v = json!({
        "model_name": m.name,
        "model_version": m.version.to_string(),
        "outputs": outputs,
    });
    if let (Some(id), Value::Object(o)) = (id, &mut v) {
        o.insert("id".into(), json!(id));
    }
    st.sample_payload(ip, &key.id, m, body, &v);
    axum::Json(v).into_response()
}

pub(crate) async fn metrics_route(
    (State(st), ConnectInfo(addr), method, uri, headers): Ctx,
) -> Response {
    if let Err(r) = admit(
        &st,
        addr.ip(),
        &headers,
        Req::bodiless(&method, &uri),
        Role::Admin,
        None,
    ) {
        return r;
    }
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )
        .body(Body::from({
            let mut text = st.metrics.render();
            text.push_str(&format!(
                "# HELP rampart_shared_state_local_decisions_total Limit and nonce decisions taken in this process because the shared state store could not be reached.\n\
                 # TYPE rampart_shared_state_local_decisions_total counter\n\
                 rampart_shared_state_local_decisions_total {}\n",
                st.limiters.local_decisions()
            ));
            text
        }))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Whether a method is one the gateway answers (for the 405 problem).
#[must_use]
pub fn known_method(m: &Method) -> bool {
    m == Method::GET || m == Method::POST
}
