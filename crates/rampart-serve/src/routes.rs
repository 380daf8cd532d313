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
        .route("/metrics", get(metrics_route))
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not-found", "no such route").into_response()
        })
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
    let meta = &m.model.meta;
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
        let parsed = if v1 {
            oip::parse_v1(&body, &m.model.meta, st.limits.max_batch)
        } else {
            oip::parse_v2(&body, &m.model.meta, st.limits.max_batch)
        }
        .map_err(IntoResponse::into_response)?;
        oip::validate(&parsed, &m.model.meta, st.limits.range_margin)
            .map_err(IntoResponse::into_response)?;
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

/// Extraction hold, concurrency limit, inference and the monitors for one admitted request.
pub(crate) async fn predict(
    st: &Arc<AppState>,
    ip: IpAddr,
    key: &KeyInfo,
    m: &Arc<LoadedModel>,
    parsed: oip::Parsed,
    body: Bytes,
    v1: bool,
) -> Response {
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
        return Problem::new(
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
        .into_response();
    }
    let Ok(permit) = Arc::clone(&st.in_flight).try_acquire_owned() else {
        st.metrics.overloaded("concurrency");
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!(
                "{} inferences are already in flight",
                st.limits.max_concurrency
            ),
        )
        .with_header(header::RETRY_AFTER, "1")
        .into_response();
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
    let (scored, id) = match out {
        Ok(Ok(x)) => x,
        Ok(Err(p)) => return p.into_response(),
        Err(_) => {
            return Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "inference failed",
            )
            .into_response();
        }
    };
    if !m.intact.load(std::sync::atomic::Ordering::SeqCst) {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "model-integrity",
            "the model failed its integrity check",
        )
        .into_response();
    }
    let policy = st.monitoring.anomaly;
    if let Some(a) = &scored.anomaly
        && a.iter().any(|(_, f)| *f)
    {
        let rows: Vec<usize> = a
            .iter()
            .enumerate()
            .filter(|(_, (_, f))| *f)
            .map(|(i, _)| i)
            .collect();
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
        if policy == monitor::AnomalyPolicy::Reject {
            let errors: Vec<Value> = rows
                .iter()
                .take(100)
                .filter_map(|&i| a.get(i).map(|(s, _)| json!({"row": i, "anomaly_score": s})))
                .collect();
            return Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "anomalous-input",
                format!("{} of the rows are unlike the training data", rows.len()),
            )
            .with(json!({"errors": errors}))
            .into_response();
        }
    }
    let v = oip::render(m, &scored, id, v1, policy == monitor::AnomalyPolicy::Flag);
    st.sample_payload(ip, &key.id, m, &body, &v);
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
        .body(Body::from(st.metrics.render()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Whether a method is one the gateway answers (for the 405 problem).
#[must_use]
pub fn known_method(m: &Method) -> bool {
    m == Method::GET || m == Method::POST
}
