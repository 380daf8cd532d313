//! Prometheus metrics in the text exposition format, `rampart_` prefix, base units. Labels
//! are bounded: model names and versions come from the served set, routes and codes from a
//! fixed list, reasons from [`crate::keys::AuthFailure`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Histogram buckets (seconds): tens of microseconds to ten seconds.
pub const BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    n: u64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        let s = d.as_secs_f64();
        for (c, b) in self.counts.iter_mut().zip(BUCKETS) {
            if s <= *b {
                *c += 1;
            }
        }
        self.sum += s;
        self.n += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.n);
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.n);
    }
}

/// (version, route, code) → requests.
type PerModel = BTreeMap<(Option<i64>, &'static str, u16), u64>;

#[derive(Debug, Default)]
struct Inner {
    /// model → (version, route, code) → count: the hot path looks up by `&str`, allocating
    /// only for a model's first request.
    requests: BTreeMap<String, PerModel>,
    durations: Histogram,
    inference: Histogram,
    auth_failures: BTreeMap<String, u64>,
    rate_limited: BTreeMap<&'static str, u64>,
    loaded: BTreeMap<(String, i64, String), u64>,
    audit_dropped: u64,
    integrity: BTreeMap<String, u64>,
    reloads: BTreeMap<&'static str, u64>,
    anomalies: BTreeMap<(String, &'static str), u64>,
    drift: BTreeMap<String, Vec<(String, f64)>>,
    extraction: BTreeMap<&'static str, u64>,
    overloaded: BTreeMap<&'static str, u64>,
    guard: BTreeMap<&'static str, u64>,
}

/// The registry of metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        let mut g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut g);
    }

    /// A finished request.
    pub fn request(
        &self,
        model: &str,
        version: Option<i64>,
        route: &'static str,
        code: u16,
        took: Duration,
    ) {
        self.with(|i| {
            let per_model = match i.requests.get_mut(model) {
                Some(m) => m,
                None => i.requests.entry(model.to_owned()).or_default(),
            };
            *per_model.entry((version, route, code)).or_default() += 1;
            i.durations.observe(took);
        });
    }

    /// Time spent in the model.
    pub fn inference(&self, took: Duration) {
        self.with(|i| i.inference.observe(took));
    }

    /// A failed authentication.
    pub fn auth_failure(&self, reason: &str) {
        self.with(|i| *i.auth_failures.entry(reason.to_owned()).or_default() += 1);
    }

    /// A request refused by a limiter (`ip`, `key`, `auth`).
    pub fn rate_limited(&self, which: &'static str) {
        self.with(|i| *i.rate_limited.entry(which).or_default() += 1);
    }

    /// A model being served.
    pub fn model_loaded(&self, model: &str, version: i64, digest: &str) {
        self.with(|i| {
            i.loaded
                .insert((model.to_owned(), version, digest.to_owned()), 1);
        });
    }

    /// A reload (`ok` or `error`).
    pub fn reload(&self, result: &'static str) {
        self.with(|i| *i.reloads.entry(result).or_default() += 1);
    }

    /// A served model that failed re-verification.
    pub fn integrity_failure(&self, model: &str) {
        self.with(|i| *i.integrity.entry(model.to_owned()).or_default() += 1);
    }

    /// Rows scored anomalous, by model and what was done (`logged`, `flagged`, `rejected`).
    pub fn anomalies(&self, model: &str, action: &'static str, n: u64) {
        self.with(|i| *i.anomalies.entry((model.to_owned(), action)).or_default() += n);
    }

    /// The latest drift scores of a model's features (replacing the previous ones).
    pub fn drift(&self, model: &str, scores: Vec<(String, f64)>) {
        self.with(|i| {
            i.drift.insert(model.to_owned(), scores);
        });
    }

    /// An extraction pattern detected (`budget`, `sweep`, `boundary`).
    pub fn extraction_alert(&self, kind: &'static str) {
        self.with(|i| *i.extraction.entry(kind).or_default() += 1);
    }

    /// A request refused for capacity (`concurrency`) or time (`timeout`).
    pub fn overloaded(&self, why: &'static str) {
        self.with(|i| *i.overloaded.entry(why).or_default() += 1);
    }

    /// A prompt or answer blocked by the guardrails (`input`, `output`).
    pub fn guard_block(&self, rail: &'static str) {
        self.with(|i| *i.guard.entry(rail).or_default() += 1);
    }

    /// A security event that could not be queued for the audit log.
    pub fn audit_dropped(&self) {
        self.with(|i| i.audit_dropped += 1);
    }

    /// The exposition text.
    #[must_use]
    pub fn render(&self) -> String {
        let g = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut o = String::new();
        o.push_str("# HELP rampart_requests_total Requests by model, version, route and status code.\n# TYPE rampart_requests_total counter\n");
        for (m, per) in &g.requests {
            for ((v, r, c), n) in per {
                let v = v.map(|v| v.to_string()).unwrap_or_default();
                let _ = writeln!(
                    o,
                    "rampart_requests_total{{model=\"{}\",version=\"{v}\",route=\"{r}\",code=\"{c}\"}} {n}",
                    esc(m)
                );
            }
        }
        o.push_str("# HELP rampart_request_duration_seconds Time from request to response.\n# TYPE rampart_request_duration_seconds histogram\n");
        g.durations
            .render(&mut o, "rampart_request_duration_seconds", "");
        o.push_str("# HELP rampart_inference_duration_seconds Time spent in the model.\n# TYPE rampart_inference_duration_seconds histogram\n");
        g.inference
            .render(&mut o, "rampart_inference_duration_seconds", "");
        o.push_str("# HELP rampart_auth_failures_total Failed authentications by reason.\n# TYPE rampart_auth_failures_total counter\n");
        for (r, n) in &g.auth_failures {
            let _ = writeln!(
                o,
                "rampart_auth_failures_total{{reason=\"{}\"}} {n}",
                esc(r)
            );
        }
        o.push_str("# HELP rampart_rate_limited_total Requests refused by a rate limiter.\n# TYPE rampart_rate_limited_total counter\n");
        for (w, n) in &g.rate_limited {
            let _ = writeln!(o, "rampart_rate_limited_total{{limiter=\"{w}\"}} {n}");
        }
        o.push_str("# HELP rampart_model_loaded_info The models being served.\n# TYPE rampart_model_loaded_info gauge\n");
        for ((m, v, d), n) in &g.loaded {
            let _ = writeln!(
                o,
                "rampart_model_loaded_info{{model=\"{}\",version=\"{v}\",digest=\"{}\"}} {n}",
                esc(m),
                esc(d)
            );
        }
        o.push_str("# HELP rampart_model_integrity_failures_total Served models whose stored files stopped matching.\n# TYPE rampart_model_integrity_failures_total counter\n");
        for (m, n) in &g.integrity {
            let _ = writeln!(
                o,
                "rampart_model_integrity_failures_total{{model=\"{}\"}} {n}",
                esc(m)
            );
        }
        o.push_str("# HELP rampart_model_reloads_total Model reloads by result.\n# TYPE rampart_model_reloads_total counter\n");
        for (r, n) in &g.reloads {
            let _ = writeln!(o, "rampart_model_reloads_total{{result=\"{r}\"}} {n}");
        }
        o.push_str("# HELP rampart_anomalies_total Rows the model's isolation forest scored anomalous.\n# TYPE rampart_anomalies_total counter\n");
        for ((m, a), n) in &g.anomalies {
            let _ = writeln!(
                o,
                "rampart_anomalies_total{{model=\"{}\",action=\"{a}\"}} {n}",
                esc(m)
            );
        }
        o.push_str("# HELP rampart_drift_score Population stability index of each feature over the rolling window, against training (feature \"_max\": the largest).\n# TYPE rampart_drift_score gauge\n");
        for (m, scores) in &g.drift {
            for (f, v) in scores {
                let _ = writeln!(
                    o,
                    "rampart_drift_score{{model=\"{}\",feature=\"{}\"}} {v}",
                    esc(m),
                    esc(f)
                );
            }
        }
        o.push_str("# HELP rampart_extraction_alerts_total Model-extraction patterns detected, by kind.\n# TYPE rampart_extraction_alerts_total counter\n");
        for (k, n) in &g.extraction {
            let _ = writeln!(o, "rampart_extraction_alerts_total{{kind=\"{k}\"}} {n}");
        }
        o.push_str("# HELP rampart_overloaded_total Requests refused for capacity or time.\n# TYPE rampart_overloaded_total counter\n");
        for (k, n) in &g.overloaded {
            let _ = writeln!(o, "rampart_overloaded_total{{reason=\"{k}\"}} {n}");
        }
        o.push_str("# HELP rampart_guard_blocks_total Prompts and answers blocked by the guardrails.\n# TYPE rampart_guard_blocks_total counter\n");
        for (k, n) in &g.guard {
            let _ = writeln!(o, "rampart_guard_blocks_total{{rail=\"{k}\"}} {n}");
        }
        o.push_str("# HELP rampart_audit_events_dropped_total Security events not queued for the audit log.\n# TYPE rampart_audit_events_dropped_total counter\n");
        let _ = writeln!(o, "rampart_audit_events_dropped_total {}", g.audit_dropped);
        o
    }
}
