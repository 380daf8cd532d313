//! The gateway's state: the served models, the key store, the limits and monitors, and what
//! a deployment plugs in (the loader, the unsealer, the redactor, the shared stores).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::admission::reason_is_redaction;
use crate::keys::ApiKeyStore;
use crate::*;

/// What answers a served model's requests.
// One per served model, behind an `Arc`: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Runner {
    /// One of rampart's tabular models (named features, classes, training statistics).
    Builtin(rampart_ml::Model),
    /// An ONNX graph, run by ONNX Runtime.
    Onnx(crate::onnx::OnnxModel),
    /// A model on an existing V2 server (`--upstream`).
    Upstream(crate::upstream::Upstream),
}

/// The training rows' statistics of an ONNX model's one rank-2 numeric input, recorded when
/// rampart scored it after training: what its drift is measured against, and what a
/// companion anomaly detector must take.
#[derive(Debug, Clone, PartialEq)]
pub struct InputReference {
    /// The graph input they describe.
    pub input: String,
    /// One per column of that input, in order.
    pub stats: Vec<rampart_ml::model::FeatureStats>,
}

impl InputReference {
    /// The reference a registry version records (`{"input", "input_schema"}`), if it is one
    /// and fits `inputs`: a single numeric rank-2 input of that name whose width is open or
    /// the number of columns described.
    #[must_use]
    pub fn of(recorded: Option<&Value>, inputs: &[crate::onnx::tensor::Port]) -> Option<Self> {
        use crate::onnx::tensor::Datatype;
        let r = recorded?;
        let input = r.get("input")?.as_str()?.to_owned();
        let stats: Vec<rampart_ml::model::FeatureStats> =
            serde_json::from_value(r.get("input_schema")?.clone()).ok()?;
        let [port] = inputs else { return None };
        let width = i64::try_from(stats.len()).ok()?;
        let fits = port.name == input
            && !stats.is_empty()
            && !matches!(port.datatype, Datatype::Bytes | Datatype::Bool)
            && port.shape.as_ref().is_some_and(|s| {
                s.len() == 2 && matches!(s.get(1), Some(&w) if w == -1 || w == width)
            });
        fits.then_some(Self { input, stats })
    }

    /// A request's rows, when it sends this input as `[rows, columns]` numbers.
    #[must_use]
    pub fn rows(&self, req: &crate::onnx::tensor::Request) -> Option<Vec<f32>> {
        use crate::onnx::tensor::Data;
        let [t] = req.inputs.as_slice() else {
            return None;
        };
        if t.name != self.input || t.shape.len() != 2 || t.shape.get(1) != Some(&self.stats.len()) {
            return None;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        Some(match &t.data {
            Data::Fp32(v) => v.clone(),
            Data::Fp64(v) => v.iter().map(|x| *x as f32).collect(),
            Data::Int64(v) => v.iter().map(|x| *x as f32).collect(),
            Data::Int32(v) => v.iter().map(|x| *x as f32).collect(),
            Data::Bool(_) | Data::Bytes(_) => return None,
        })
    }
}

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
    pub runner: Runner,
    /// The stored files it was loaded from, with their digests: re-hashed while serving.
    pub sources: Vec<(std::path::PathBuf, rampart_crypto::Digest)>,
    /// How its outputs are shaped.
    pub output: OutputMode,
    /// Cleared when a re-verification fails: the model then answers 503 until restarted.
    pub intact: std::sync::atomic::AtomicBool,
    /// The companion isolation forest scoring its inputs, if one is configured.
    pub detector: Option<rampart_ml::Model>,
    /// An ONNX model's reference input statistics, when its registry version records them.
    pub reference: Option<InputReference>,
    /// The latest rows asked about, for drift.
    pub(crate) window: Box<dyn monitor::DriftWindowStore>,
    /// Features whose drift is above the threshold now (audited once per crossing).
    pub(crate) drifting: Mutex<std::collections::BTreeSet<usize>>,
    /// Runs of an ONNX model that may hold a blocking thread at once (its sessions): the
    /// rest wait on the reactor, not in threads contending for the sessions.
    pub(crate) runs: Arc<tokio::sync::Semaphore>,
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
            detector,
            window: Box::new(Mutex::new(monitor::DriftWindow::new(1000, features))),
            ..Self::of(name, version, root, Runner::Builtin(model), sources, output)
        }
    }

    /// An ONNX model to serve (no detector: those guard rampart's tabular models).
    #[must_use]
    pub fn onnx(
        name: String,
        version: i64,
        root: String,
        model: crate::onnx::OnnxModel,
        sources: Vec<(std::path::PathBuf, rampart_crypto::Digest)>,
        output: OutputMode,
    ) -> Self {
        Self::of(name, version, root, Runner::Onnx(model), sources, output)
    }

    /// A model served by an existing V2 server: not from the registry (version 0, no
    /// stored files to watch), behind the same chain.
    #[must_use]
    pub fn upstream(name: String, upstream: crate::upstream::Upstream, output: OutputMode) -> Self {
        Self::of(
            name,
            0,
            String::new(),
            Runner::Upstream(upstream),
            Vec::new(),
            output,
        )
    }

    /// Intact, without a detector or a drift window.
    fn of(
        name: String,
        version: i64,
        root: String,
        runner: Runner,
        sources: Vec<(std::path::PathBuf, rampart_crypto::Digest)>,
        output: OutputMode,
    ) -> Self {
        Self {
            name,
            version,
            root,
            sources,
            output,
            intact: std::sync::atomic::AtomicBool::new(true),
            detector: None,
            reference: None,
            window: Box::new(Mutex::new(monitor::DriftWindow::new(0, 0))),
            drifting: Mutex::new(std::collections::BTreeSet::new()),
            runs: Arc::new(tokio::sync::Semaphore::new(match &runner {
                Runner::Onnx(m) => m.sessions().max(1),
                Runner::Builtin(_) | Runner::Upstream(_) => tokio::sync::Semaphore::MAX_PERMITS,
            })),
            runner,
        }
    }

    /// The tabular model, when it is one of rampart's.
    #[must_use]
    pub const fn builtin(&self) -> Option<&rampart_ml::Model> {
        match &self.runner {
            Runner::Builtin(m) => Some(m),
            Runner::Onnx(_) | Runner::Upstream(_) => None,
        }
    }

    /// The training statistics its inputs are compared with (drift): a rampart model's own,
    /// an ONNX model's recorded reference, else none.
    #[must_use]
    pub fn schema(&self) -> &[rampart_ml::model::FeatureStats] {
        match (&self.runner, &self.reference) {
            (Runner::Builtin(m), _) => &m.meta.input_schema,
            (_, Some(r)) => &r.stats,
            _ => &[],
        }
    }

    /// An ONNX model's reference input statistics and the companion detector taking the same
    /// columns (checked by the loader).
    #[must_use]
    pub fn with_reference(
        self,
        reference: Option<InputReference>,
        detector: Option<rampart_ml::Model>,
    ) -> Self {
        Self {
            reference,
            detector,
            ..self
        }
    }

    /// Features per drift-window row, when drift is computed for this model.
    fn drift_features(&self) -> Option<usize> {
        match (&self.runner, &self.reference) {
            (Runner::Builtin(m), _) => Some(m.meta.features.len()),
            (_, Some(r)) => Some(r.stats.len()),
            _ => None,
        }
    }

    /// Sets the drift window's length in rows; in `shared` (Redis, merged over the replicas
    /// serving this version) when given, else in this process.
    #[must_use]
    pub fn with_drift_window(
        self,
        rows: usize,
        shared: Option<&Arc<crate::shared::RedisState>>,
    ) -> Self {
        let Some(features) = self.drift_features() else {
            return self;
        };
        let window: Box<dyn monitor::DriftWindowStore> = match shared {
            Some(redis) => {
                Box::new(redis.drift_window(&self.name, self.version, &self.root, rows, features))
            }
            None => Box::new(Mutex::new(monitor::DriftWindow::new(rows, features))),
        };
        Self { window, ..self }
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
    /// Longest a client may take to send its request's headers, and then its body (408):
    /// a slow sender does not hold a connection open.
    pub read_timeout: std::time::Duration,
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
            read_timeout: std::time::Duration::from_secs(10),
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
    pub(crate) models: std::sync::RwLock<Arc<BTreeMap<String, Arc<LoadedModel>>>>,
    pub(crate) loader: Option<Loader>,
    pub(crate) keys: Mutex<Box<dyn ApiKeyStore>>,
    pub(crate) limits: ServeLimits,
    pub(crate) limiters: Box<dyn limits::RateLimitStore>,
    /// The metrics.
    pub metrics: metrics::Metrics,
    pub(crate) events: Option<std::sync::mpsc::SyncSender<SecurityEvent>>,
    pub(crate) unseal: Option<Unseal>,
    pub(crate) hmac_cache: Mutex<std::collections::HashMap<String, zeroize::Zeroizing<Vec<u8>>>>,
    pub(crate) nonces: Box<dyn httpsig::NonceStore>,
    /// The `@authority` values a signed request may name (unset or empty: any).
    pub(crate) public_names: std::sync::OnceLock<Vec<String>>,
    pub(crate) monitoring: Monitoring,
    pub(crate) extraction: Box<dyn monitor::ExtractionState>,
    pub(crate) redact: Option<Redact>,
    pub(crate) in_flight: Arc<tokio::sync::Semaphore>,
    pub(crate) sampled: std::sync::atomic::AtomicU64,
    pub(crate) guard: Option<guard_proxy::GuardProxy>,
    /// Debug builds only: `RAMPART_SERVE_DEBUG_INFER_DELAY_MS` slows each inference, so the
    /// tests can hold requests in flight (concurrency and timeout limits).
    #[cfg(debug_assertions)]
    pub(crate) debug_delay: std::time::Duration,
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

    /// Rate-limit cells kept elsewhere (Redis, shared by every replica).
    #[must_use]
    pub fn with_limiters(mut self, limiters: impl limits::RateLimitStore + 'static) -> Self {
        self.limiters = Box::new(limiters);
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
    pub(crate) fn hmac_for(&self, id: &str) -> Option<zeroize::Zeroizing<Vec<u8>>> {
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
        // Upstream models are not the registry's: a reload keeps them.
        for (name, m) in old.iter() {
            if matches!(m.runner, Runner::Upstream(_)) && !next.contains_key(name) {
                next.insert(name.clone(), Arc::clone(m));
            }
        }
        *self
            .models
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        self.metrics.reload("ok");
        Ok(changes)
    }

    pub(crate) fn event(
        &self,
        action: &'static str,
        ip: IpAddr,
        key: Option<String>,
        reason: impl Into<String>,
    ) {
        let reason: String = reason.into();
        let allowed = matches!(
            action,
            "serve.payload"
                | "serve.reload"
                | "serve.anomaly"
                | "serve.drift"
                | "serve.shared-state-local"
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

impl AppState {
    /// Feeds the drift window and the extraction detector (on the blocking thread).
    pub(crate) fn observe(
        &self,
        ip: IpAddr,
        key: &str,
        m: &LoadedModel,
        p: &oip::Parsed,
        s: &oip::Scored,
    ) {
        let Some(model) = m.builtin() else { return };
        m.window.push(&p.x);
        self.observe_rows(ip, key, m, &p.x, &model.meta.input_schema, &s.preds);
    }

    /// Feeds the extraction detector what `key` asked of `m` (`x` row-major, one value per
    /// feature of `schema`).
    pub(crate) fn observe_rows(
        &self,
        ip: IpAddr,
        key: &str,
        m: &LoadedModel,
        x: &[f32],
        schema: &[rampart_ml::model::FeatureStats],
        preds: &[rampart_ml::Prediction],
    ) {
        if let Some(alert) = self.extraction.observe(key, &m.name, x, schema, preds) {
            self.extraction_alert(ip, key, &m.name, &alert);
        }
        self.report_extraction_alerts(Some((ip, key)));
    }

    fn extraction_alert(&self, ip: IpAddr, key: &str, model: &str, alert: &monitor::Alert) {
        self.metrics.extraction_alert(alert.kind);
        tracing::warn!("key {key} on {model}: {}", alert.detail);
        self.event(
            "serve.extraction",
            ip,
            Some(key.to_owned()),
            format!("{} on {model}: {}", alert.kind, alert.detail),
        );
    }

    /// Reports the alerts the extraction store raised off the request path (a shared store
    /// judges after the request was answered): counted, logged and audited like the others,
    /// under `current`'s address when it is the same key's request, else `0.0.0.0` (unknown).
    pub(crate) fn report_extraction_alerts(&self, current: Option<(IpAddr, &str)>) {
        for (k, model, alert) in self.extraction.take_alerts() {
            let ip = match current {
                Some((ip, key)) if key == k => ip,
                _ => IpAddr::from([0, 0, 0, 0]),
            };
            self.extraction_alert(ip, &k, &model, &alert);
        }
    }

    /// Logs this prediction's payload, PII-redacted, if it is one of the sampled ones.
    pub(crate) fn sample_payload(
        &self,
        ip: IpAddr,
        key: &str,
        m: &LoadedModel,
        body: &[u8],
        out: &Value,
    ) {
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
