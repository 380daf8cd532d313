//! How a gateway is set up, every setting typed and checked once: [`ServeConfig`] is both the
//! library's configuration and, with the `clap` feature, `rampart serve`'s flags.
//! [`crate::home::start`] serves a home's registry with it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::monitor::{AnomalyPolicy, ExtractionAction, ExtractionConfig};
use crate::{Monitoring, OutputMode, ServeError, ServeLimits};

/// A positive, finite number of seconds (below 10⁹).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds(pub Duration);

impl FromStr for Seconds {
    type Err = ServeError;
    fn from_str(text: &str) -> Result<Self, ServeError> {
        match text.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Self(Duration::from_secs_f64(s))),
            _ => Err(ServeError::Setting {
                text: text.to_owned(),
                expected: "a positive number of seconds",
            }),
        }
    }
}

/// A fraction from 0 to 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fraction(pub f64);

impl FromStr for Fraction {
    type Err = ServeError;
    fn from_str(text: &str) -> Result<Self, ServeError> {
        match text.trim().parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => Ok(Self(f)),
            _ => Err(ServeError::Setting {
                text: text.to_owned(),
                expected: "a fraction from 0 to 1",
            }),
        }
    }
}

/// `MODEL=VALUE`: a setting for one served model.
#[derive(Debug, Clone, PartialEq)]
pub struct PerModel<T> {
    /// The model's name.
    pub model: String,
    /// Its setting.
    pub value: T,
}

fn per_model<T>(
    text: &str,
    expected: &'static str,
    value: impl FnOnce(&str) -> Result<T, ServeError>,
) -> Result<PerModel<T>, ServeError> {
    let (model, v) = text
        .split_once('=')
        .filter(|(m, v)| !m.is_empty() && !v.is_empty())
        .ok_or_else(|| ServeError::Setting {
            text: text.to_owned(),
            expected,
        })?;
    Ok(PerModel {
        model: model.to_owned(),
        value: value(v)?,
    })
}

impl FromStr for PerModel<OutputMode> {
    type Err = ServeError;
    fn from_str(text: &str) -> Result<Self, ServeError> {
        per_model(text, "MODEL=MODE", OutputMode::parse)
    }
}

/// The base URL of an existing KServe V2 server (`http://HOST:PORT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl(pub String);

impl FromStr for PerModel<UpstreamUrl> {
    type Err = ServeError;
    fn from_str(text: &str) -> Result<Self, ServeError> {
        per_model(
            text,
            "NAME=URL (http://HOST:PORT of a KServe V2 server)",
            |u| {
                if u.starts_with("http://") || u.starts_with("https://") {
                    Ok(UpstreamUrl(u.to_owned()))
                } else {
                    Err(ServeError::Setting {
                        text: text.to_owned(),
                        expected: "NAME=URL (http://HOST:PORT of a KServe V2 server)",
                    })
                }
            },
        )
    }
}

/// The registry reference of an isolation forest guarding a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detector(pub String);

impl FromStr for PerModel<Detector> {
    type Err = ServeError;
    fn from_str(text: &str) -> Result<Self, ServeError> {
        per_model(text, "MODEL=DETECTOR", |d| Ok(Detector(d.to_owned())))
    }
}

impl FromStr for AnomalyPolicy {
    type Err = ServeError;
    fn from_str(text: &str) -> Result<Self, ServeError> {
        Self::parse(text)
    }
}

impl FromStr for ExtractionAction {
    type Err = ServeError;
    fn from_str(text: &str) -> Result<Self, ServeError> {
        match text {
            "block" => Ok(Self::Block),
            "throttle" => Ok(Self::Throttle),
            _ => Err(ServeError::Setting {
                text: text.to_owned(),
                expected: "block or throttle",
            }),
        }
    }
}

/// Everything a gateway over a home's registry is set up with. [`Default`] is what
/// `rampart serve` does with no flags.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct ServeConfig {
    /// A model to serve (NAME, meaning NAME@production, or any registry reference);
    /// repeatable. Default: every model with a production version.
    #[cfg_attr(feature = "clap", arg(long = "model", value_name = "REF"))]
    pub models: Vec<String>,
    /// Address to listen on.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")
    )]
    pub bind: SocketAddr,
    /// A name clients reach this server by (`host` or `host:port`, as in their Host header);
    /// repeatable. A signed request's `@authority` must be one of them. Default: the bind
    /// address and, on loopback or a wildcard address, localhost and this machine's name.
    #[cfg_attr(
        feature = "clap",
        arg(long = "public-name", value_name = "HOST[:PORT]")
    )]
    pub public_names: Vec<String>,
    /// Allow plain HTTP on a non-loopback address (audited).
    #[cfg_attr(feature = "clap", arg(long))]
    pub insecure_http: bool,
    /// Serve HTTPS with this certificate chain (PEM).
    #[cfg_attr(feature = "clap", arg(long, value_name = "PEM", requires = "tls_key"))]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM, mode 0600).
    #[cfg_attr(feature = "clap", arg(long, value_name = "PEM", requires = "tls_cert"))]
    pub tls_key: Option<PathBuf>,
    /// Largest request body in bytes.
    #[cfg_attr(feature = "clap", arg(long, value_name = "BYTES", default_value_t = 1 << 20))]
    pub max_body: usize,
    /// Most rows per request.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = 1024))]
    pub max_batch: usize,
    /// Accept values this fraction of the training range beyond it.
    #[cfg_attr(feature = "clap", arg(long, value_name = "F", default_value_t = 0.1))]
    pub range_margin: f64,
    /// Requests per second per client address.
    #[cfg_attr(feature = "clap", arg(long, value_name = "R", default_value_t = 200))]
    pub ip_rate: u32,
    /// Burst per client address.
    #[cfg_attr(feature = "clap", arg(long, value_name = "B", default_value_t = 400))]
    pub ip_burst: u32,
    /// What callers see of a model's predictions: MODEL=raw|round:N|label|bins|bins:A,B,…
    /// (repeatable; default raw).
    #[cfg_attr(feature = "clap", arg(long = "output", value_name = "MODEL=MODE"))]
    pub output: Vec<PerModel<OutputMode>>,
    /// Re-hash the served models' stored files this often (seconds); a mismatch stops
    /// serving that model (503) and is audited.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "SECONDS", default_value = "10")
    )]
    pub verify_every: Seconds,
    /// Check the registry this often (seconds) and swap in new production versions, without
    /// dropping requests (SIGHUP does the same at once).
    #[cfg_attr(feature = "clap", arg(long, value_name = "SECONDS"))]
    pub reload_every: Option<Seconds>,
    /// Serve NAME from an existing KServe V2 server (Triton, KServe, MLServer) at URL, behind
    /// the whole chain: requests are checked against the server's own metadata and rebuilt
    /// before they are forwarded (repeatable). A server that wants credentials gets the
    /// gateway's own bearer token from `RAMPART_UPSTREAM_TOKEN_<NAME>` (never the client's).
    #[cfg_attr(feature = "clap", arg(long = "upstream", value_name = "NAME=URL"))]
    pub upstream: Vec<PerModel<UpstreamUrl>>,
    /// Score MODEL's inputs with an isolation forest from the registry (a reference such as
    /// credit-iforest, meaning @production), trained on the same features; repeatable.
    #[cfg_attr(feature = "clap", arg(long = "anomaly", value_name = "MODEL=DETECTOR"))]
    pub anomaly: Vec<PerModel<Detector>>,
    /// What an anomalous row does: log (count and audit), flag (also return
    /// rampart.anomaly_score) or reject (422).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "POLICY", default_value = "flag")
    )]
    pub anomaly_policy: AnomalyPolicy,
    /// Rows per model in the rolling drift window.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "ROWS", default_value_t = 1000)
    )]
    pub drift_window: usize,
    /// Compute drift this often (seconds), off the request path.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "SECONDS", default_value = "5")
    )]
    pub drift_every: Seconds,
    /// Audit a feature whose PSI goes above this.
    #[cfg_attr(feature = "clap", arg(long, value_name = "PSI", default_value_t = 0.2))]
    pub drift_threshold: f64,
    /// Rows a key may ask about per hour before it is blocked (0: no budget).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "ROWS", default_value_t = 100_000)
    )]
    pub extraction_budget: u64,
    /// What a key showing an extraction pattern (sweep, boundary probing) gets: block or
    /// throttle (one request per second).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "ACTION", default_value = "block")
    )]
    pub extraction_action: ExtractionAction,
    /// How long a block or throttle lasts (seconds).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "SECONDS", default_value = "300")
    )]
    pub extraction_cooldown: Seconds,
    /// Turn extraction detection off.
    #[cfg_attr(feature = "clap", arg(long))]
    pub no_extraction_detection: bool,
    /// Log this fraction of predictions (request and response, PII-redacted) to the audit log.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "FRACTION", default_value = "0")
    )]
    pub log_payloads: Fraction,
    /// Most inferences in flight; more get 503 with Retry-After.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = 256))]
    pub max_concurrency: usize,
    /// Longest a request may take (seconds) before it gets 503.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "SECONDS", default_value = "10")
    )]
    pub request_timeout: Seconds,
    /// Sessions of each ONNX model answering side by side (0: one per core for a model of at
    /// most 64 MiB, else one); each holds its own copy of the weights.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value = "0"))]
    pub onnx_sessions: usize,
    /// Most memory (MiB) each ONNX session's worker process may hold, the model included: a
    /// request that needs more fails with an error naming the allowance, and the gateway is
    /// untouched.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "MIB", default_value_t = 2048, value_parser = clap::value_parser!(u64).range(16..=1 << 30))
    )]
    pub onnx_memory: u64,
    /// Run ONNX models in the gateway's own process instead of memory-capped workers: faster
    /// for small models, but a graph that allocates without bound takes the gateway's memory.
    /// For models you trust.
    #[cfg_attr(feature = "clap", arg(long))]
    pub onnx_in_process: bool,
    /// The program that runs an ONNX worker (set by the binary: itself, `onnx-worker`); `None`
    /// means the running program with the argument `onnx-worker`.
    #[cfg_attr(feature = "clap", arg(skip))]
    pub onnx_worker: Option<crate::onnx::Isolation>,
    /// Longest a client may take to send a request's headers, and then its body (seconds).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "SECONDS", default_value = "10")
    )]
    pub read_timeout: Seconds,
    /// Also proxy POST /v1/chat/completions to an OpenAI-compatible upstream through the
    /// guardrails of `[guard]` (models are then optional).
    #[cfg_attr(feature = "clap", arg(long, requires = "guard_upstream"))]
    pub guard: bool,
    /// The upstream's base URL, up to /v1 (e.g. <https://api.openai.com/v1>).
    #[cfg_attr(feature = "clap", arg(long, value_name = "URL"))]
    pub guard_upstream: Option<String>,
    /// The environment variable holding the upstream's API key (never logged).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "VAR", default_value = "RAMPART_GUARD_UPSTREAM_KEY")
    )]
    pub guard_upstream_key_env: String,
    /// Forward personal data in prompts as it is, instead of redacting it.
    #[cfg_attr(feature = "clap", arg(long))]
    pub guard_keep_input_pii: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let limits = ServeLimits::default();
        let monitoring = Monitoring::default();
        let extraction = ExtractionConfig::default();
        Self {
            models: Vec::new(),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_names: Vec::new(),
            insecure_http: false,
            tls_cert: None,
            tls_key: None,
            max_body: limits.max_body,
            max_batch: limits.max_batch,
            range_margin: limits.range_margin,
            ip_rate: limits.ip_rate,
            ip_burst: limits.ip_burst,
            output: Vec::new(),
            verify_every: Seconds(Duration::from_secs(10)),
            reload_every: None,
            anomaly: Vec::new(),
            upstream: Vec::new(),
            anomaly_policy: monitoring.anomaly,
            drift_window: 1000,
            drift_every: Seconds(Duration::from_secs(5)),
            drift_threshold: monitoring.drift_threshold,
            extraction_budget: extraction.budget,
            extraction_action: extraction.action,
            extraction_cooldown: Seconds(extraction.cooldown),
            no_extraction_detection: !extraction.enabled,
            log_payloads: Fraction(monitoring.payload_sample),
            max_concurrency: limits.max_concurrency,
            request_timeout: Seconds(limits.timeout),
            onnx_sessions: 0,
            onnx_memory: 2048,
            onnx_in_process: false,
            onnx_worker: None,
            read_timeout: Seconds(limits.read_timeout),
            guard: false,
            guard_upstream: None,
            guard_upstream_key_env: "RAMPART_GUARD_UPSTREAM_KEY".into(),
            guard_keep_input_pii: false,
        }
    }
}

/// Reloads and integrity checks run no more often than this.
const LEAST_INTERVAL: Duration = Duration::from_millis(100);

impl ServeConfig {
    /// How ONNX models run: `None` in process (`--onnx-in-process`), else in workers of
    /// `--onnx-memory` MiB each, started by [`ServeConfig::onnx_worker`] or this program's
    /// `onnx-worker` command.
    ///
    /// # Errors
    /// When this program's path cannot be read.
    pub fn onnx_isolation(&self) -> Result<Option<crate::onnx::Isolation>, ServeError> {
        if self.onnx_in_process {
            return Ok(None);
        }
        let memory = self.onnx_memory.saturating_mul(1 << 20);
        let isolation = match &self.onnx_worker {
            Some(i) => {
                let mut i = i.clone();
                i.memory = memory;
                i
            }
            None => crate::onnx::Isolation::rampart(memory).map_err(|e| ServeError::Refused {
                reason: format!("the ONNX worker is this program, whose path cannot be read: {e}"),
                hint: "run ONNX models in process with --onnx-in-process",
            })?,
        };
        Ok(Some(isolation))
    }

    /// The request limits.
    #[must_use]
    pub fn limits(&self) -> ServeLimits {
        ServeLimits {
            max_body: self.max_body,
            max_batch: self.max_batch,
            ip_rate: self.ip_rate,
            ip_burst: self.ip_burst,
            range_margin: self.range_margin,
            max_concurrency: self.max_concurrency.max(1),
            timeout: self.request_timeout.0,
            read_timeout: self.read_timeout.0,
            ..ServeLimits::default()
        }
    }

    /// The monitoring and defence settings.
    #[must_use]
    pub fn monitoring(&self) -> Monitoring {
        Monitoring {
            anomaly: self.anomaly_policy,
            drift_threshold: self.drift_threshold,
            drift_min_rows: self.drift_window.clamp(1, 100),
            extraction: ExtractionConfig {
                enabled: !self.no_extraction_detection,
                budget: self.extraction_budget,
                action: self.extraction_action,
                cooldown: self.extraction_cooldown.0,
                ..ExtractionConfig::default()
            },
            payload_sample: self.log_payloads.0,
        }
    }

    /// How [`crate::run`] serves.
    #[must_use]
    pub fn run_options(&self) -> crate::RunOptions {
        crate::RunOptions {
            bind: self.bind,
            tls: self.tls_cert.clone().zip(self.tls_key.clone()),
            public_names: self.public_names.clone(),
            reload_every: self.reload_every.map(|s| s.0.max(LEAST_INTERVAL)),
            drift_every: self.drift_every.0,
            verify_every: self.verify_every.0.max(LEAST_INTERVAL),
        }
    }

    /// Whether this serves plain HTTP on an address other hosts can reach.
    #[must_use]
    pub fn plain_http_exposed(&self) -> bool {
        self.tls_cert.is_none() && !self.bind.ip().is_loopback()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_or_name_what_they_take() {
        assert_eq!(
            "2.5".parse::<Seconds>().unwrap().0,
            Duration::from_millis(2500)
        );
        for bad in ["0", "-1", "nan", "inf", "1e10", "soon"] {
            let e = bad.parse::<Seconds>().unwrap_err().to_string();
            assert!(e.contains("positive number of seconds"), "{bad}: {e}");
        }
        assert!("1.5".parse::<Fraction>().is_err());
        assert_eq!("0.25".parse::<Fraction>().unwrap().0, 0.25);
        let o: PerModel<OutputMode> = "credit=round:2".parse().unwrap();
        assert_eq!(
            (o.model.as_str(), o.value),
            ("credit", OutputMode::Round(2))
        );
        for bad in ["credit", "=raw", "credit=", "credit=loud"] {
            assert!(bad.parse::<PerModel<OutputMode>>().is_err(), "{bad}");
        }
        let d: PerModel<Detector> = "credit=credit-iforest@3".parse().unwrap();
        assert_eq!(d.value, Detector("credit-iforest@3".into()));
        assert_eq!(
            "throttle".parse::<ExtractionAction>().unwrap(),
            ExtractionAction::Throttle
        );
        assert!("ban".parse::<ExtractionAction>().is_err());
    }

    #[test]
    fn the_config_carries_into_limits_monitoring_and_run_options() {
        let c = ServeConfig {
            max_concurrency: 0,
            drift_window: 5000,
            verify_every: Seconds(Duration::from_millis(1)),
            reload_every: Some(Seconds(Duration::from_secs(3))),
            no_extraction_detection: true,
            extraction_action: ExtractionAction::Throttle,
            bind: "0.0.0.0:9000".parse().unwrap(),
            ..ServeConfig::default()
        };
        assert_eq!(c.limits().max_concurrency, 1);
        let m = c.monitoring();
        assert_eq!(m.drift_min_rows, 100);
        assert!(!m.extraction.enabled);
        assert_eq!(m.extraction.action, ExtractionAction::Throttle);
        let r = c.run_options();
        assert_eq!(r.verify_every, LEAST_INTERVAL);
        assert_eq!(r.reload_every, Some(Duration::from_secs(3)));
        assert!(c.plain_http_exposed());
        assert!(!ServeConfig::default().plain_http_exposed());
    }

    /// The flags' defaults are [`ServeConfig::default`]: a library caller and `rampart serve`
    /// with no flags set up the same gateway.
    #[cfg(feature = "clap")]
    #[test]
    fn flag_defaults_are_the_library_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            config: ServeConfig,
        }
        let flags = Cli::parse_from(["serve"]).config;
        assert_eq!(
            format!("{flags:?}"),
            format!("{:?}", ServeConfig::default())
        );
        let e = Cli::try_parse_from(["serve", "--output", "credit"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("MODEL=MODE"), "{e}");
    }
}
