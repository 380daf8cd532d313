//! The inference gateway.
//!
//! Routes (Open Inference Protocol / KServe V2 REST, plus one plain JSON route):
//!
//! | route | role |
//! |---|---|
//! | `GET /v2/health/live`, `GET /v2/health/ready` | none |
//! | `GET /v2`, `GET /v2/models/{m}[/versions/{v}][/ready]` | predict |
//! | `POST /v2/models/{m}[/versions/{v}]/infer` | predict |
//! | `POST /v1/models/{m}:predict` (`{"instances": [{"feature": value, …}]}`) | predict |
//! | `GET /metrics` (Prometheus text) | admin |
//!
//! Every request passes, in order: the per-IP limiter, authentication (`Authorization: Bearer
//! rk_…` or `X-API-Key`; failures throttled on their own per-IP bucket and audited), the
//! role and model scope of the key, the per-key limiter (429 with `Retry-After`, `RateLimit`
//! and `RateLimit-Policy`), the body limit (413), the content type (415), parsing (400),
//! validation against the model's input schema (422, listing every bad field), then
//! inference on a blocking thread. Errors are `application/problem+json` (RFC 9457) with an
//! `error` member for KServe clients.

// Handlers return a ready `Response` as their error: it is the natural type here, and one
// allocation per refused request is not worth boxing for.
#![allow(clippy::result_large_err)]

mod error;
pub mod guard_proxy;
pub mod httpsig;
pub mod keys;
pub mod limits;
pub mod load;
pub mod metrics;
pub mod monitor;
pub mod oip;
pub mod problem;

pub use error::ServeError;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::keys::{ApiKeyStore, AuthFailure, KeyInfo, Role};
use crate::problem::Problem;

/// A model ready to serve.
#[derive(Debug)]
pub struct LoadedModel {
    /// Registry name.
    pub name: String,
    /// Registry version.
    pub version: i64,
    /// Root digest (OMS).
    pub root: String,
    /// The model.
    pub model: rampart_ml::Model,
    /// The stored files it was loaded from, with their digests: re-hashed while serving.
    pub sources: Vec<(std::path::PathBuf, rampart_crypto::Digest)>,
    /// How its outputs are shaped.
    pub output: OutputMode,
    /// Cleared when a re-verification fails: the model then answers 503 until restarted.
    pub intact: std::sync::atomic::AtomicBool,
    /// The companion isolation forest scoring its inputs, if one is configured.
    pub detector: Option<rampart_ml::Model>,
    /// The latest rows asked about, for drift.
    window: Box<dyn monitor::DriftWindowStore>,
    /// Features whose drift is above the threshold now (audited once per crossing).
    drifting: Mutex<std::collections::BTreeSet<usize>>,
}

impl LoadedModel {
    /// A model to serve; `sources` are the stored files re-hashed while it is served.
    #[must_use]
    pub fn new(
        name: String,
        version: i64,
        root: String,
        model: rampart_ml::Model,
        sources: Vec<(std::path::PathBuf, rampart_crypto::Digest)>,
        output: OutputMode,
        detector: Option<rampart_ml::Model>,
    ) -> Self {
        let features = model.meta.features.len();
        Self {
            name,
            version,
            root,
            model,
            sources,
            output,
            intact: std::sync::atomic::AtomicBool::new(true),
            detector,
            window: Box::new(Mutex::new(monitor::DriftWindow::new(1000, features))),
            drifting: Mutex::new(std::collections::BTreeSet::new()),
        }
    }

    /// Sets the drift window's length in rows.
    #[must_use]
    pub fn with_drift_window(self, rows: usize) -> Self {
        let features = self.model.meta.features.len();
        Self {
            window: Box::new(Mutex::new(monitor::DriftWindow::new(rows, features))),
            ..self
        }
    }

    /// Keeps the drift window elsewhere than in this process (a store every replica reaches,
    /// keyed by this model's name and version).
    #[must_use]
    pub fn with_drift_store(self, store: impl monitor::DriftWindowStore + 'static) -> Self {
        Self {
            window: Box::new(store),
            ..self
        }
    }
}

/// How much of a prediction a caller sees (starving model extraction and inversion).
#[derive(Debug, Clone, PartialEq)]
pub enum OutputMode {
    /// Labels and full-precision probabilities.
    Raw,
    /// Probabilities rounded to this many decimals.
    Round(u32),
    /// Labels only.
    Label,
    /// The label and a band of the top class's probability (names, ascending, evenly cut).
    Bins(Vec<String>),
}

impl OutputMode {
    /// Parses `raw`, `round:N`, `label`, `bins` (Low, Medium, High) or `bins:A,B,…`.
    ///
    /// # Errors
    /// [`ServeError::Setting`], naming the text.
    pub fn parse(text: &str) -> Result<Self, ServeError> {
        let bad = || ServeError::Setting {
            text: text.to_owned(),
            expected: "raw, round:N, label, bins or bins:NAME,NAME,…",
        };
        Ok(match text.split_once(':') {
            None if text == "raw" => Self::Raw,
            None if text == "label" => Self::Label,
            None if text == "bins" => {
                Self::Bins(vec!["Low".into(), "Medium".into(), "High".into()])
            }
            Some(("round", n)) => Self::Round(n.parse().ok().filter(|n| *n <= 15).ok_or_else(bad)?),
            Some(("bins", names)) => {
                let v: Vec<String> = names
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
                if v.len() < 2 {
                    return Err(bad());
                }
                Self::Bins(v)
            }
            _ => return Err(bad()),
        })
    }
}

/// A security event for the audit log (auth failures, limit hits, refusals).
#[derive(Debug, Clone)]
pub struct SecurityEvent {
    /// `serve.auth`, `serve.rate-limit`, `serve.forbidden`, …
    pub action: &'static str,
    /// The client address.
    pub ip: IpAddr,
    /// The key id, when one was presented and parsed.
    pub key: Option<String>,
    /// Why.
    pub reason: String,
    /// A record of something allowed (a sampled payload, a reload), not a refusal.
    pub allowed: bool,
}

/// Limits of the gateway.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Largest request body.
    pub max_body: usize,
    /// Most rows per request.
    pub max_batch: usize,
    /// Requests per second per client address.
    pub ip_rate: u32,
    /// Burst per client address.
    pub ip_burst: u32,
    /// Failed authentications per second per client address.
    pub auth_fail_rate: u32,
    /// Burst of failed authentications.
    pub auth_fail_burst: u32,
    /// Values may lie this fraction of the training range outside it.
    pub range_margin: f64,
    /// Most inferences in flight; more get 503 with `Retry-After`.
    pub max_concurrency: usize,
    /// Longest a request may take before it gets 503.
    pub timeout: std::time::Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_body: 1 << 20,
            max_batch: 1024,
            ip_rate: 200,
            ip_burst: 400,
            auth_fail_rate: 1,
            auth_fail_burst: 10,
            range_margin: 0.1,
            max_concurrency: 256,
            timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// Monitoring and defence settings.
#[derive(Debug, Clone)]
pub struct Monitoring {
    /// What an anomalous row does (for models with a detector).
    pub anomaly: monitor::AnomalyPolicy,
    /// Drift above this PSI is audited.
    pub drift_threshold: f64,
    /// Drift is computed once the window holds this many rows.
    pub drift_min_rows: usize,
    /// Extraction detection.
    pub extraction: monitor::ExtractionConfig,
    /// The fraction of predictions whose payload is logged to the audit log (PII-redacted).
    pub payload_sample: f64,
}

impl Default for Monitoring {
    fn default() -> Self {
        Self {
            anomaly: monitor::AnomalyPolicy::Flag,
            drift_threshold: 0.2,
            drift_min_rows: 100,
            extraction: monitor::ExtractionConfig::default(),
            payload_sample: 0.0,
        }
    }
}

/// Redacts personal data from a logged payload (the binary's PII engine).
pub type Redact = Box<dyn Fn(&str) -> String + Send + Sync>;

/// Loads the models to serve (the binary's registry loader), for hot reloads.
pub type Loader = Box<dyn Fn() -> Result<Vec<LoadedModel>, load::LoadError> + Send + Sync>;

/// Shared server state.
pub struct AppState {
    models: std::sync::RwLock<Arc<BTreeMap<String, Arc<LoadedModel>>>>,
    loader: Option<Loader>,
    keys: Mutex<Box<dyn ApiKeyStore>>,
    limits: ServeLimits,
    limiters: Box<dyn limits::RateLimitStore>,
    /// The metrics.
    pub metrics: metrics::Metrics,
    events: Option<std::sync::mpsc::SyncSender<SecurityEvent>>,
    unseal: Option<Unseal>,
    hmac_cache: Mutex<std::collections::HashMap<String, zeroize::Zeroizing<Vec<u8>>>>,
    nonces: Box<dyn httpsig::NonceStore>,
    /// The `@authority` values a signed request may name (unset or empty: any).
    public_names: std::sync::OnceLock<Vec<String>>,
    monitoring: Monitoring,
    extraction: Box<dyn monitor::ExtractionState>,
    redact: Option<Redact>,
    in_flight: Arc<tokio::sync::Semaphore>,
    sampled: std::sync::atomic::AtomicU64,
    guard: Option<guard_proxy::GuardProxy>,
    /// Debug builds only: `RAMPART_SERVE_DEBUG_INFER_DELAY_MS` slows each inference, so the
    /// tests can hold requests in flight (concurrency and timeout limits).
    #[cfg(debug_assertions)]
    debug_delay: std::time::Duration,
}

/// Opens a sealed HMAC key (the binary decrypts it with the home's age identity).
pub type Unseal = Box<dyn Fn(&str) -> Option<zeroize::Zeroizing<Vec<u8>>> + Send + Sync>;

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("models", &self.models().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AppState {
    /// State for these models, keys and limits; security events go to `events` (a bounded
    /// channel: when it is full the event is counted as dropped, never blocking a request).
    #[must_use]
    pub fn new(
        models: Vec<LoadedModel>,
        keys: impl ApiKeyStore + 'static,
        limits: ServeLimits,
        events: Option<std::sync::mpsc::SyncSender<SecurityEvent>>,
    ) -> Self {
        let metrics = metrics::Metrics::default();
        for m in &models {
            metrics.model_loaded(&m.name, m.version, &m.root);
        }
        Self {
            limiters: Box::new(limits::Limiters::new(&limits)),
            models: std::sync::RwLock::new(Arc::new(
                models
                    .into_iter()
                    .map(|m| (m.name.clone(), Arc::new(m)))
                    .collect(),
            )),
            loader: None,
            unseal: None,
            hmac_cache: Mutex::new(std::collections::HashMap::new()),
            nonces: Box::new(httpsig::Nonces::default()),
            public_names: std::sync::OnceLock::new(),
            keys: Mutex::new(Box::new(keys)),
            in_flight: Arc::new(tokio::sync::Semaphore::new(limits.max_concurrency.max(1))),
            limits,
            metrics,
            events,
            extraction: Box::new(monitor::Extraction::new(
                monitor::ExtractionConfig::default(),
            )),
            monitoring: Monitoring::default(),
            redact: None,
            sampled: std::sync::atomic::AtomicU64::new(0),
            guard: None,
            #[cfg(debug_assertions)]
            debug_delay: std::time::Duration::from_millis(
                std::env::var("RAMPART_SERVE_DEBUG_INFER_DELAY_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            ),
        }
    }

    /// Turns on the guardrail proxy (`POST /v1/chat/completions`).
    #[must_use]
    pub fn with_guard(mut self, g: guard_proxy::GuardProxy) -> Self {
        self.guard = Some(g);
        self
    }

    /// Sets the monitoring and defence settings.
    #[must_use]
    pub fn with_monitoring(mut self, m: Monitoring) -> Self {
        self.extraction = Box::new(monitor::Extraction::new(m.extraction.clone()));
        self.monitoring = m;
        self
    }

    /// Sets how sampled payloads are redacted before they are logged (without it, payloads
    /// are never logged).
    #[must_use]
    pub fn with_redact(mut self, r: Redact) -> Self {
        self.redact = Some(r);
        self
    }

    /// Extraction tracking kept elsewhere than in this process (a store every replica
    /// reaches, so queries spread across replicas count together). Call it after
    /// [`AppState::with_monitoring`], which sets up the in-process tracker.
    #[must_use]
    pub fn with_extraction(mut self, state: impl monitor::ExtractionState + 'static) -> Self {
        self.extraction = Box::new(state);
        self
    }

    /// Rate-limit cells kept elsewhere than in this process (a store every replica
    /// reaches, so N replicas enforce one limit).
    #[must_use]
    pub fn with_rate_limits(mut self, store: impl limits::RateLimitStore + 'static) -> Self {
        self.limiters = Box::new(store);
        self
    }

    /// Signed-request nonces kept where every server of the home sees them
    /// ([`httpsig::Nonces::shared`]).
    #[must_use]
    pub fn with_nonces(mut self, nonces: impl httpsig::NonceStore + 'static) -> Self {
        self.nonces = Box::new(nonces);
        self
    }

    /// Sets the names (`host` or `host:port`, compared without case) a signed request's
    /// `@authority` must be one of; once (they are known when the listener is bound, after the
    /// state is built). False if they were already set.
    pub fn set_public_names(&self, names: Vec<String>) -> bool {
        self.public_names
            .set(names.into_iter().map(|n| n.to_ascii_lowercase()).collect())
            .is_ok()
    }

    /// Sets how sealed HMAC keys are opened (enables signed requests).
    #[must_use]
    pub fn with_unseal(mut self, unseal: Unseal) -> Self {
        self.unseal = Some(unseal);
        self
    }

    /// The HMAC key of an API key, opened once and cached.
    fn hmac_for(&self, id: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        let unseal = self.unseal.as_ref()?;
        if let Some(k) = self.hmac_cache.lock().ok()?.get(id) {
            return Some(k.clone());
        }
        let sealed = self.keys.lock().ok()?.sealed_secret(id).ok()??;
        let key = unseal(&sealed)?;
        let mut cache = self.hmac_cache.lock().ok()?;
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(id.to_owned(), key.clone());
        Some(key)
    }

    /// Sets how to reload the models ([`AppState::reload`]).
    #[must_use]
    pub fn with_loader(mut self, loader: Loader) -> Self {
        self.loader = Some(loader);
        self
    }

    /// The models being served now (a snapshot: a reload swaps in a new map, requests in
    /// flight keep the model they started with).
    #[must_use]
    pub fn models(&self) -> Arc<BTreeMap<String, Arc<LoadedModel>>> {
        Arc::clone(
            &self
                .models
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Loads the models again and swaps them in if every one loads; otherwise keeps serving
    /// the current ones. Returns what changed (`name@old -> name@new`).
    ///
    /// # Errors
    /// The loader's error (nothing is swapped).
    pub fn reload(&self) -> Result<Vec<String>, ServeError> {
        let Some(loader) = &self.loader else {
            return Err(ServeError::NoLoader);
        };
        let fresh = match loader() {
            Ok(m) => m,
            Err(e) => {
                self.metrics.reload("error");
                return Err(e.into());
            }
        };
        let old = self.models();
        let mut changes = Vec::new();
        let mut next = BTreeMap::new();
        for m in fresh {
            match old.get(&m.name) {
                // Unchanged: keep the loaded one (and its integrity state).
                Some(o) if o.root == m.root && o.version == m.version => {
                    next.insert(m.name.clone(), Arc::clone(o));
                }
                o => {
                    changes.push(format!(
                        "{}@{} -> {}@{}",
                        m.name,
                        o.map_or("-".to_owned(), |o| o.version.to_string()),
                        m.name,
                        m.version
                    ));
                    self.metrics.model_loaded(&m.name, m.version, &m.root);
                    next.insert(m.name.clone(), Arc::new(m));
                }
            }
        }
        *self
            .models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        self.metrics.reload("ok");
        Ok(changes)
    }

    fn event(
        &self,
        action: &'static str,
        ip: IpAddr,
        key: Option<String>,
        reason: impl Into<String>,
    ) {
        let reason: String = reason.into();
        let allowed = matches!(
            action,
            "serve.payload" | "serve.reload" | "serve.anomaly" | "serve.drift"
        ) || (action == "serve.guard" && reason_is_redaction(&reason));
        if let Some(tx) = &self.events
            && tx
                .try_send(SecurityEvent {
                    action,
                    ip,
                    key,
                    reason,
                    allowed,
                })
                .is_err()
        {
            self.metrics.audit_dropped();
        }
    }
}

/// A guard event that redacted rather than refused.
fn reason_is_redaction(reason: &str) -> bool {
    reason.contains("redacted")
}

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

type Ctx = (
    State<Arc<AppState>>,
    ConnectInfo<SocketAddr>,
    Method,
    axum::http::Uri,
    HeaderMap,
);

/// What a signature covers besides the headers.
#[derive(Clone, Copy)]
struct Req<'a> {
    method: &'a Method,
    uri: &'a axum::http::Uri,
    body: &'a [u8],
}

impl<'a> Req<'a> {
    /// A request without a body (GET).
    const fn bodiless(method: &'a Method, uri: &'a axum::http::Uri) -> Self {
        Self {
            method,
            uri,
            body: &[],
        }
    }
}

/// Limits, authenticates and authorises one request.
fn admit(
    st: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    req: Req<'_>,
    need: Role,
    model: Option<&str>,
) -> Result<Arc<KeyInfo>, Response> {
    if let Err(wait) = st.limiters.ip(ip) {
        st.metrics.rate_limited("ip");
        return Err(limits::too_many(
            wait,
            st.limits.ip_burst,
            st.limits.ip_rate,
            "ip",
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // (metric label, message) of a failure.
    let result: Result<Arc<KeyInfo>, (&'static str, String)> =
        if headers.contains_key("signature-input") {
            let authority = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| req.uri.authority().map(axum::http::uri::Authority::as_str))
                .unwrap_or("");
            let parts = httpsig::Parts {
                method: req.method.as_str(),
                authority,
                path: req.uri.path(),
                query: req.uri.query(),
                headers,
                body: req.body,
            };
            match httpsig::verify(
                &parts,
                &|id| st.hmac_for(id),
                &*st.nonces,
                st.public_names.get().map_or(&[], Vec::as_slice),
                now,
            ) {
                Ok(id) => st
                    .keys
                    .lock()
                    .map_err(|_| AuthFailure::Invalid)
                    .and_then(|k| k.usable_key(&id, now))
                    .map_err(|f| (f.as_str(), format!("{} API key", f.as_str()))),
                Err(e) => Err(("signature", e.reason())),
            }
        } else {
            match token {
                None => Err(AuthFailure::Missing),
                Some(t) => st
                    .keys
                    .lock()
                    .map_err(|_| AuthFailure::Invalid)
                    .and_then(|k| k.authenticate_token(t.trim(), now)),
            }
            .map_err(|f| (f.as_str(), format!("{} API key", f.as_str())))
        };
    let key = match result {
        Ok(k) => k,
        Err((label, why)) => {
            st.metrics.auth_failure(label);
            if st.limiters.auth_failure(ip).is_err() {
                st.metrics.rate_limited("auth");
                return Err(limits::too_many(
                    std::time::Duration::from_secs(1),
                    st.limits.auth_fail_burst,
                    st.limits.auth_fail_rate,
                    "auth-failures",
                ));
            }
            let key_id = token
                .and_then(|t| t.strip_prefix("rk_"))
                .and_then(|t| t.split('_').next())
                .filter(|id| id.len() == 16)
                .map(str::to_owned);
            st.event("serve.auth", ip, key_id, why.clone());
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!("authentication failed: {why}"),
            )
            .with_header(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"rampart\", Signature",
            )
            .into_response());
        }
    };
    if need == Role::Admin && key.role != Role::Admin {
        st.event(
            "serve.forbidden",
            ip,
            Some(key.id.clone()),
            "needs the admin role",
        );
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this key does not have the admin role",
        )
        .into_response());
    }
    if let (Some(scope), Some(m)) = (&key.model, model)
        && scope != m
    {
        st.event(
            "serve.forbidden",
            ip,
            Some(key.id.clone()),
            format!("key is limited to model {scope}"),
        );
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this key may only use model {scope}"),
        )
        .into_response());
    }
    if let Err(wait) = st.limiters.key(&key) {
        st.metrics.rate_limited("key");
        st.event(
            "serve.rate-limit",
            ip,
            Some(key.id.clone()),
            "key rate limit",
        );
        return Err(limits::too_many(wait, key.burst, key.rate, "key"));
    }
    Ok(key)
}

fn find(st: &AppState, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, Response> {
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

async fn ready(State(st): State<Arc<AppState>>) -> StatusCode {
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

async fn server_metadata((State(st), ConnectInfo(addr), method, uri, headers): Ctx) -> Response {
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

fn metadata(m: &LoadedModel) -> Value {
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
type Params = Path<std::collections::HashMap<String, String>>;

async fn model_metadata(ctx: Ctx, Path(p): Params) -> Response {
    meta_common(ctx, &p, false)
}

async fn model_ready(ctx: Ctx, Path(p): Params) -> Response {
    meta_common(ctx, &p, true)
}

fn meta_common(
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

fn check_body(st: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<(), Response> {
    if body.len() > st.limits.max_body {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the body is larger than {} bytes", st.limits.max_body),
        )
        .into_response());
    }
    if headers.contains_key("inference-header-content-length") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "the binary tensor data extension is not supported: send the tensors as JSON (tritonclient: binary_data=False)",
        )
        .into_response());
    }
    // No Content-Type is read as JSON (KServe clients such as tritonclient send none; the
    // body is parsed strictly either way); a declared type other than JSON is refused.
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"));
    if ct.is_some_and(|ct| {
        !ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
    }) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send Content-Type: application/json",
        )
        .into_response());
    }
    Ok(())
}

/// The request as it arrives: the handlers take it whole rather than extracting headers,
/// method and URI one by one (each extractor copies what it takes, on every request).
type Raw = (
    State<Arc<AppState>>,
    ConnectInfo<SocketAddr>,
    Path<std::collections::HashMap<String, String>>,
    axum::extract::Request,
);

async fn infer((State(st), ConnectInfo(addr), Path(p), req): Raw) -> Response {
    let model = p.get("model").cloned().unwrap_or_default();
    let version = p.get("version").cloned();
    infer_common(st, addr, req, model, version, false).await
}

async fn predict_v1((State(st), ConnectInfo(addr), Path(p), req): Raw) -> Response {
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

/// Reads the body up to the limit: 413 past it (checked on `Content-Length` first).
async fn read_body(st: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the body is larger than {} bytes", st.limits.max_body),
        )
        .into_response()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.limits.max_body as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, st.limits.max_body)
        .await
        .map_err(|_| too_large())
}

async fn infer_common(
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
async fn predict(
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

impl AppState {
    /// Feeds the drift window and the extraction detector (on the blocking thread).
    fn observe(&self, ip: IpAddr, key: &str, m: &LoadedModel, p: &oip::Parsed, s: &oip::Scored) {
        m.window.push(&p.x);
        if let Some(alert) =
            self.extraction
                .observe(key, &m.name, &p.x, &m.model.meta.input_schema, &s.preds)
        {
            self.metrics.extraction_alert(alert.kind);
            tracing::warn!("key {key} on {}: {}", m.name, alert.detail);
            self.event(
                "serve.extraction",
                ip,
                Some(key.to_owned()),
                format!("{} on {}: {}", alert.kind, m.name, alert.detail),
            );
        }
    }

    /// Logs this prediction's payload, PII-redacted, if it is one of the sampled ones.
    fn sample_payload(&self, ip: IpAddr, key: &str, m: &LoadedModel, body: &[u8], out: &Value) {
        let rate = self.monitoring.payload_sample;
        let Some(redact) = &self.redact else { return };
        if rate <= 0.0 {
            return;
        }
        // Deterministic sampling: exactly `rate` of the predictions, evenly spread.
        let n = self
            .sampled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        #[allow(clippy::cast_precision_loss)]
        let (a, b) = ((n as f64 * rate).floor(), ((n + 1) as f64 * rate).floor());
        if a == b {
            return;
        }
        let mut request = String::from_utf8_lossy(body).into_owned();
        if request.len() > 8192 {
            let mut cut = 8192;
            while !request.is_char_boundary(cut) {
                cut -= 1;
            }
            request.truncate(cut);
            request.push('…');
        }
        let record = json!({
            "model": m.name,
            "version": m.version,
            "request": redact(&request),
            "response": redact(&out.to_string()),
        });
        self.event(
            "serve.payload",
            ip,
            Some(key.to_owned()),
            record.to_string(),
        );
    }
}

async fn metrics_route((State(st), ConnectInfo(addr), method, uri, headers): Ctx) -> Response {
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

/// Re-hashes every served model's stored files every `every` and as soon as one of them
/// changes on disk (inotify on their directories); a model whose files no longer match stops
/// serving (503), is counted and audited. Runs until the process ends.
pub async fn watch_integrity(state: Arc<AppState>, every: std::time::Duration) {
    use notify::Watcher as _;
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut watching: Option<(
        std::collections::BTreeSet<std::path::PathBuf>,
        notify::RecommendedWatcher,
    )> = None;
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        // Watch the directories of the files served now (they change on a reload).
        let dirs: std::collections::BTreeSet<std::path::PathBuf> = state
            .models()
            .values()
            .flat_map(|m| {
                m.sources
                    .iter()
                    .filter_map(|(p, _)| p.parent().map(std::path::Path::to_path_buf))
            })
            .collect();
        if watching.as_ref().is_none_or(|(d, _)| *d != dirs) {
            let w = Arc::clone(&wake);
            let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
                // Our own reads are not changes.
                if ev.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                    w.notify_one();
                }
            });
            match watcher {
                Ok(mut watcher) => {
                    for d in &dirs {
                        if let Err(e) = watcher.watch(d, notify::RecursiveMode::NonRecursive) {
                            tracing::warn!(
                                "cannot watch {} for changes (the timer still re-verifies it): {e}",
                                d.display()
                            );
                        }
                    }
                    watching = Some((dirs, watcher));
                }
                Err(e) => tracing::warn!(
                    "no file-change notifications (the timer still re-verifies): {e}"
                ),
            }
        }
        tokio::select! {
            _ = tick.tick() => {}
            () = wake.notified() => {}
        }
        for m in state.models().values() {
            if !m.intact.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let sources = m.sources.clone();
            let bad = tokio::task::spawn_blocking(move || {
                sources.iter().find_map(|(path, want)| {
                    let got = std::fs::File::open(path).and_then(|mut f| {
                        let mut h = rampart_crypto::Sha256Hasher::new();
                        std::io::copy(&mut f, &mut h)?;
                        Ok(h.finish())
                    });
                    match got {
                        Ok(d) if d == *want => None,
                        Ok(d) => Some(format!(
                            "{} now hashes to sha256:{d}, not sha256:{want}",
                            path.display()
                        )),
                        Err(e) => Some(format!("{}: {e}", path.display())),
                    }
                })
            })
            .await
            .ok()
            .flatten();
            if let Some(reason) = bad {
                m.intact.store(false, std::sync::atomic::Ordering::SeqCst);
                state.metrics.integrity_failure(&m.name);
                tracing::error!(
                    "{}@{}: integrity check failed, no longer serving it: {reason}",
                    m.name,
                    m.version
                );
                state.event(
                    "serve.tamper",
                    IpAddr::from([127, 0, 0, 1]),
                    None,
                    format!("{}@{}: {reason}", m.name, m.version),
                );
            }
        }
    }
}

/// Computes every served model's drift every `every`, off the request path: PSI per feature
/// over the rolling window against the training reference stored in the model, exported as
/// `rampart_drift_score` and audited when a feature crosses the threshold.
pub async fn watch_drift(state: Arc<AppState>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let st = Arc::clone(&state);
        let _ = tokio::task::spawn_blocking(move || st.drift_once()).await;
    }
}

impl AppState {
    /// One drift computation over every served model (see [`watch_drift`]).
    pub fn drift_once(&self) {
        let threshold = self.monitoring.drift_threshold;
        for m in self.models().values() {
            let schema = &m.model.meta.input_schema;
            if schema.is_empty() {
                continue;
            }
            let Some(window) = m.window.snapshot(self.monitoring.drift_min_rows) else {
                continue;
            };
            let scores = monitor::drift_scores(&window, schema);
            let max = scores.iter().copied().fold(0.0, f64::max);
            let mut series: Vec<(String, f64)> = schema
                .iter()
                .zip(&scores)
                .take(monitor::MAX_DRIFT_SERIES)
                .map(|(f, s)| (f.name.clone(), *s))
                .collect();
            series.push(("_max".into(), max));
            self.metrics.drift(&m.name, series);
            let Ok(mut drifting) = m.drifting.lock() else {
                continue;
            };
            for (j, (f, s)) in schema.iter().zip(&scores).enumerate() {
                let above = *s > threshold;
                if above && drifting.insert(j) {
                    tracing::warn!(
                        "{}@{}: feature {} drifted (PSI {s:.3} > {threshold})",
                        m.name,
                        m.version,
                        f.name
                    );
                    self.event(
                        "serve.drift",
                        IpAddr::from([127, 0, 0, 1]),
                        None,
                        format!(
                            "{}@{}: feature {} PSI {s:.4} over the last {} rows (threshold {threshold})",
                            m.name,
                            m.version,
                            f.name,
                            window.len() / schema.len()
                        ),
                    );
                } else if !above {
                    drifting.remove(&j);
                }
            }
        }
    }
}

/// Reloads on SIGHUP and every `every` (if given), auditing each change.
pub async fn watch_reload(state: Arc<AppState>, every: Option<std::time::Duration>) {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = every.map(tokio::time::interval);
    if let Some(t) = &mut tick {
        t.tick().await;
    }
    loop {
        tokio::select! {
            () = async { match &mut hup { Some(h) => { h.recv().await; } None => std::future::pending::<()>().await } } => {}
            () = async { match &mut tick { Some(t) => { t.tick().await; } None => std::future::pending::<()>().await } } => {}
        }
        let st = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || st.reload()).await {
            Ok(Ok(changes)) if !changes.is_empty() => {
                tracing::info!("reloaded: {}", changes.join(", "));
                state.event(
                    "serve.reload",
                    IpAddr::from([127, 0, 0, 1]),
                    None,
                    changes.join(", "),
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!("reload failed, still serving the loaded models: {e}");
                state.event(
                    "serve.reload",
                    IpAddr::from([127, 0, 0, 1]),
                    None,
                    format!("failed: {e}"),
                );
            }
            Err(_) => {}
        }
    }
}

/// Serves until `shutdown` resolves; in-flight requests finish first.
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves HTTPS (rustls, TLS 1.2 and 1.3) with the certificate chain and key in PEM files,
/// until `shutdown` resolves; in-flight requests get ten seconds to finish.
///
/// # Errors
/// Unreadable or invalid certificate or key, listener errors.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    cert: &std::path::Path,
    key: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "TLS certificate {} / key {}: {e}",
                    cert.display(),
                    key.display()
                ),
            )
        })?;
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum_server::from_tcp_rustls(listener, config)
        .handle(handle)
        .serve(app)
        .await
}

/// Whether a method is one the gateway answers (for the 405 problem).
#[must_use]
pub fn known_method(m: &Method) -> bool {
    m == Method::GET || m == Method::POST
}
