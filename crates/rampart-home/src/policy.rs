//! `rampart.toml`: the policy. Parsed strictly (unknown keys are errors: a typo in a security
//! policy must not silently weaken it), validated (trusted keys parse and match their
//! fingerprints), and refused outright if it contains private key material.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rampart_crypto::PublicKey;
use serde::{Deserialize, Serialize};

use crate::HomeError;

/// Markers of private key material that must never appear in the policy file.
const SECRET_MARKERS: &[&str] = &["PRIVATE KEY", "AGE-SECRET-KEY-"];

/// The parsed policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Policy {
    /// Format version of the policy file.
    #[serde(default = "one")]
    pub version: u32,
    /// Where datasets may come from.
    #[serde(default)]
    pub data: DataPolicy,
    /// Which public keys rampart trusts.
    #[serde(default)]
    pub trust: TrustPolicy,
    /// Audit log settings.
    #[serde(default)]
    pub audit: AuditPolicy,
    /// Promotion gates for the registry.
    #[serde(default)]
    pub gates: GatesPolicy,
    /// Model-file scanning.
    #[serde(default)]
    pub scan: ScanPolicy,
    /// Sandboxed training.
    #[serde(default)]
    pub train: TrainPolicy,
    /// LLM guardrails.
    #[serde(default)]
    pub guard: GuardPolicy,
    /// Where shared state lives when several machines work together.
    #[serde(default)]
    pub storage: StoragePolicy,
}

/// `[storage]`: where the registry and the gateway's shared state live. Every part defaults to
/// the home (SQLite, files, in-process); a URL moves it to a server that several machines
/// share. URLs here must not carry secrets: the password comes from the environment
/// (`PGPASSWORD`), or the whole URL from `RAMPART_STORAGE_*`, which overrides the file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct StoragePolicy {
    /// Registry metadata, approvals and API keys: `postgres://USER@HOST:PORT/DATABASE`
    /// (default: the home's SQLite files). Environment: `RAMPART_STORAGE_REGISTRY`.
    #[serde(default)]
    pub registry: Option<String>,
    /// Model blobs in S3-compatible object storage: `s3://BUCKET/PREFIX` (default: files in
    /// the home). Endpoint, region and credentials come from the environment the AWS way
    /// (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, …). Environment:
    /// `RAMPART_STORAGE_BLOBS`.
    #[serde(default)]
    pub blobs: Option<String>,
    /// The gateway's rate-limit cells and signed-request nonces in Redis
    /// (`redis://HOST:PORT/DB`, `rediss://` for TLS; default: each gateway process its own).
    /// Environment: `RAMPART_STORAGE_SHARED_STATE` (which may carry the password).
    #[serde(default)]
    pub shared_state: Option<String>,
    /// What a gateway does while `shared_state` cannot be reached: `closed` (default: every
    /// request refused with 503) or `local` (this replica decides alone, counted and audited).
    #[serde(default)]
    pub shared_state_fallback: SharedFallback,
    /// Every signed audit checkpoint also written to PostgreSQL (`postgres://…`), so
    /// `rampart audit verify --anchor` detects a log cut back or rewritten after it.
    /// Environment: `RAMPART_STORAGE_AUDIT_ANCHOR`.
    #[serde(default)]
    pub audit_anchor: Option<String>,
    /// Every audit record also shipped to a SIEM as RFC 5424 syslog: `syslog+tcp://HOST:PORT`
    /// or `syslog+tls://HOST:PORT[?ca=/path/ca.pem]` (default: nowhere). Environment:
    /// `RAMPART_STORAGE_SIEM`.
    #[serde(default)]
    pub siem: Option<String>,
}

/// What a gateway does while its shared state store cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SharedFallback {
    /// Refuse every request (503).
    #[default]
    Closed,
    /// Decide in this process (per-replica limits), counted and audited.
    Local,
}

/// A storage URL that cannot be used, and why (the message never holds the URL's secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StorageUrlError(pub String);

/// The environment variable that overrides `[storage] blobs`.
pub const ENV_STORAGE_BLOBS: &str = "RAMPART_STORAGE_BLOBS";

/// The environment variable that overrides `[storage] shared_state`.
pub const ENV_STORAGE_SHARED_STATE: &str = "RAMPART_STORAGE_SHARED_STATE";

/// The environment variable that overrides `[storage] registry`.
pub const ENV_STORAGE_REGISTRY: &str = "RAMPART_STORAGE_REGISTRY";

/// The environment variable that overrides `[storage] audit_anchor`.
pub const ENV_STORAGE_AUDIT_ANCHOR: &str = "RAMPART_STORAGE_AUDIT_ANCHOR";

/// The environment variable that overrides `[storage] siem`.
pub const ENV_STORAGE_SIEM: &str = "RAMPART_STORAGE_SIEM";

/// Where a part of the storage lives.
#[derive(Debug, Clone)]
pub enum Backend {
    /// In the home (the one-machine default).
    Home,
    /// A PostgreSQL database.
    Postgres(Box<rampart_postgres::Target>),
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Home => f.write_str("the home"),
            Self::Postgres(t) => write!(f, "{t}"),
        }
    }
}

impl StoragePolicy {
    /// Where the registry's metadata lives: `RAMPART_STORAGE_REGISTRY`, else `registry`, else
    /// the home.
    ///
    /// # Errors
    /// A URL that is not PostgreSQL's, carries a password in the file, or asks for
    /// `sslmode=prefer` (named by where it was read).
    pub fn registry(&self) -> Result<Backend, StorageUrlError> {
        Ok(
            match postgres_url(
                ENV_STORAGE_REGISTRY,
                self.registry.as_deref(),
                "storage.registry",
            )? {
                Some(t) => Backend::Postgres(Box::new(t)),
                None => Backend::Home,
            },
        )
    }

    /// The shared state URL and whether it was read from the file (which may not carry a
    /// password): `RAMPART_STORAGE_SHARED_STATE`, else `shared_state`.
    #[must_use]
    pub fn shared_state(&self) -> Option<(String, bool)> {
        match std::env::var(ENV_STORAGE_SHARED_STATE) {
            Ok(u) if !u.trim().is_empty() => Some((u.trim().to_owned(), false)),
            _ => self
                .shared_state
                .as_ref()
                .map(|u| (u.trim().to_owned(), true)),
        }
    }

    /// The blobs' object storage URL: `RAMPART_STORAGE_BLOBS`, else `blobs`.
    #[must_use]
    pub fn blobs(&self) -> Option<String> {
        match std::env::var(ENV_STORAGE_BLOBS) {
            Ok(u) if !u.trim().is_empty() => Some(u.trim().to_owned()),
            _ => self.blobs.as_ref().map(|u| u.trim().to_owned()),
        }
    }

    /// Where audit checkpoints are anchored: `RAMPART_STORAGE_AUDIT_ANCHOR`, else
    /// `audit_anchor`, else nowhere.
    ///
    /// # Errors
    /// As [`StoragePolicy::registry`].
    pub fn audit_anchor(&self) -> Result<Option<rampart_postgres::Target>, StorageUrlError> {
        postgres_url(
            ENV_STORAGE_AUDIT_ANCHOR,
            self.audit_anchor.as_deref(),
            "storage.audit_anchor",
        )
    }

    /// Where audit records are shipped: `RAMPART_STORAGE_SIEM`, else `siem`, else nowhere.
    ///
    /// # Errors
    /// A URL that is not `syslog+tcp://` or `syslog+tls://` (named by where it was read).
    pub fn siem(&self) -> Result<Option<rampart_audit::siem::Target>, StorageUrlError> {
        let (url, from) = match std::env::var(ENV_STORAGE_SIEM) {
            Ok(u) if !u.trim().is_empty() => (u, ENV_STORAGE_SIEM),
            _ => match &self.siem {
                Some(u) => (u.clone(), "storage.siem"),
                None => return Ok(None),
            },
        };
        rampart_audit::siem::Target::parse(url.trim())
            .map(Some)
            .map_err(|e| StorageUrlError(format!("{from}: {e}")))
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.siem {
            rampart_audit::siem::Target::parse(url.trim())
                .map_err(|e| format!("storage.siem: {e}"))?;
        }
        if let Some(url) = &self.blobs {
            if url.contains('@') || url.contains('?') {
                return Err(
                    "storage.blobs must be s3://BUCKET/PREFIX without credentials or \
                     parameters: credentials come from the environment (AWS_ACCESS_KEY_ID, \
                     AWS_SECRET_ACCESS_KEY), never rampart.toml"
                        .into(),
                );
            }
            if !url.starts_with("s3://") {
                return Err(format!("storage.blobs: {url:?} is not s3://BUCKET/PREFIX"));
            }
        }
        for (key, value) in [
            ("registry", &self.registry),
            ("audit_anchor", &self.audit_anchor),
        ] {
            if let Some(url) = value {
                rampart_postgres::Target::parse(url.trim(), rampart_postgres::Origin::File)
                    .map_err(|e| format!("storage.{key}: {e}"))?;
            }
        }
        Ok(())
    }
}

/// A PostgreSQL URL from `env` (which may carry a password), else from the file's `value`.
fn postgres_url(
    env: &str,
    value: Option<&str>,
    key: &str,
) -> Result<Option<rampart_postgres::Target>, StorageUrlError> {
    let (url, origin, from) = match std::env::var(env) {
        Ok(u) if !u.trim().is_empty() => (u, rampart_postgres::Origin::Environment, env),
        _ => match value {
            Some(u) => (u.to_owned(), rampart_postgres::Origin::File, key),
            None => return Ok(None),
        },
    };
    rampart_postgres::Target::parse(url.trim(), origin)
        .map(Some)
        .map_err(|e| StorageUrlError(format!("{from}: {e}")))
}

/// `[guard]`: the LLM guardrails (`rampart guard check`, `rampart serve --guard`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GuardPolicy {
    /// Prompts whose injection score reaches this are blocked (0 to 1).
    #[serde(default = "default_guard_threshold")]
    pub threshold: f64,
    /// Whether the learned classifier adds to the score (the rules always run).
    #[serde(default = "default_true")]
    pub classifier: bool,
    /// Denied topics.
    #[serde(default)]
    pub topics: Vec<GuardTopic>,
    /// Output rails.
    #[serde(default)]
    pub output: GuardOutputPolicy,
    /// The tool calls a model may propose.
    #[serde(default)]
    pub tools: GuardToolsPolicy,
    /// An external moderation endpoint for answers, if any.
    #[serde(default)]
    pub moderation: Option<GuardModerationPolicy>,
}

/// `[guard.moderation]`: an OpenAI-compatible `/v1/moderations` endpoint the guard proxy
/// sends answers to after its own rails, and what each category it flags does.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GuardModerationPolicy {
    /// The endpoint (`https://…/v1/moderations`).
    pub url: String,
    /// The environment variable holding its bearer key (never the key itself).
    #[serde(default = "default_moderation_key_env")]
    pub key_env: String,
    /// The `model` to ask for, if the endpoint wants one.
    #[serde(default)]
    pub model: Option<String>,
    /// How long it may take, in milliseconds.
    #[serde(default = "default_moderation_timeout")]
    pub timeout_ms: u64,
    /// By category (`violence`, `self-harm/intent`, …): `block` or `flag` (logged, passed);
    /// a parent covers its subcategories.
    #[serde(default)]
    pub categories: BTreeMap<String, String>,
    /// A category not listed: `block` or `flag`.
    #[serde(default = "default_block")]
    pub default: String,
    /// An endpoint that fails or times out: `block` (fail closed) or `flag` (pass, logged).
    #[serde(default = "default_block")]
    pub on_error: String,
}

fn default_moderation_key_env() -> String {
    "RAMPART_MODERATION_KEY".into()
}
const fn default_moderation_timeout() -> u64 {
    5000
}
fn default_block() -> String {
    "block".into()
}

/// `[guard.tools]`: the tools a model may call and where they may send (the proxy checks
/// every tool call in an answer against it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GuardToolsPolicy {
    /// Tools the model may call; empty allows any.
    #[serde(default)]
    pub allowed: Vec<String>,
    /// Hosts URLs in a call's arguments may point to (subdomains included); empty allows any.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
}

const fn default_true() -> bool {
    true
}

fn default_guard_threshold() -> f64 {
    0.5
}

impl Default for GuardPolicy {
    fn default() -> Self {
        Self {
            threshold: default_guard_threshold(),
            classifier: true,
            topics: Vec::new(),
            output: GuardOutputPolicy::default(),
            tools: GuardToolsPolicy::default(),
            moderation: None,
        }
    }
}

/// `[[guard.topics]]`: a denied topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GuardTopic {
    /// Its name.
    pub name: String,
    /// Words or phrases that put a prompt on it.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Example prompts on it.
    #[serde(default)]
    pub examples: Vec<String>,
    /// The canned refusal.
    pub refusal: String,
}

/// `[guard.output]`: what an answer must not carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GuardOutputPolicy {
    /// Personal data in answers: redact, block or off (secrets always block).
    #[serde(default = "default_guard_pii")]
    pub pii: String,
    /// Banned words and phrases.
    #[serde(default)]
    pub banned: Vec<String>,
    /// Hosts links may point to (subdomains included); empty allows any.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Other links: redact or block.
    #[serde(default = "default_guard_links")]
    pub links: String,
    /// Harmful content in answers, per category (`[guard.output.harm]`).
    #[serde(default)]
    pub harm: GuardHarmPolicy,
}

/// `[guard.output.harm]`: what each harm category (`weapons`, `drugs`, `malware`, `fraud`,
/// `self-harm`, `sexual-minors`, `hate`, `violence`, `privacy`) does to an answer: `block`, `flag` (logged, passed)
/// or `off`. `privacy` not listed is at most flagged: `pii` already redacts the numbers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GuardHarmPolicy {
    /// For the categories not listed.
    #[serde(default = "default_block")]
    pub default: String,
    /// Per category.
    #[serde(default)]
    pub categories: BTreeMap<String, String>,
}

impl Default for GuardHarmPolicy {
    fn default() -> Self {
        Self {
            default: default_block(),
            categories: BTreeMap::new(),
        }
    }
}

/// The harm categories `[guard.output.harm]` may name.
pub const HARM_CATEGORIES: &[&str] = &[
    "weapons",
    "drugs",
    "malware",
    "fraud",
    "self-harm",
    "sexual-minors",
    "hate",
    "violence",
    "privacy",
];

fn default_guard_pii() -> String {
    "redact".into()
}
fn default_guard_links() -> String {
    "redact".into()
}

impl Default for GuardOutputPolicy {
    fn default() -> Self {
        Self {
            pii: default_guard_pii(),
            banned: Vec::new(),
            allowed_domains: Vec::new(),
            links: default_guard_links(),
            harm: GuardHarmPolicy::default(),
        }
    }
}

/// A size in bytes: an integer, or text with a unit (`512MiB`, `8GiB`, `1.5G`, `4096`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SizeText", into = "u64")]
pub struct Size(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeText {
    Bytes(u64),
    Text(String),
}

impl TryFrom<SizeText> for Size {
    type Error = SizeError;
    fn try_from(v: SizeText) -> Result<Self, SizeError> {
        match v {
            SizeText::Bytes(b) => Ok(Self(b)),
            SizeText::Text(t) => parse_size(&t).map(Self),
        }
    }
}

/// `4GiB`, `512MB`, `1024` ([`parse_size`]).
impl std::str::FromStr for Size {
    type Err = SizeError;
    fn from_str(text: &str) -> Result<Self, SizeError> {
        parse_size(text).map(Self)
    }
}

impl From<Size> for u64 {
    fn from(s: Size) -> Self {
        s.0
    }
}

/// Parses a size: digits with an optional fraction and unit (B, K/KB/KiB, M/MB/MiB,
/// G/GB/GiB, T/TB/TiB; decimal units are powers of 1000, binary ones of 1024, a bare letter
/// is binary).
///
/// A text that is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a size (e.g. 4096, 512MiB, 8GiB)")]
pub struct SizeError {
    /// The text.
    pub text: String,
}

/// # Errors
/// A [`SizeError`] naming the text when it is not a size.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let bad = || SizeError {
        text: text.to_owned(),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "K" | "KiB" => 1024.0,
        "KB" => 1e3,
        "M" | "MiB" => 1024.0 * 1024.0,
        "MB" => 1e6,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "GB" => 1e9,
        "T" | "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "TB" => 1e12,
        _ => return Err(bad()),
    };
    let bytes = (value * scale).round();
    if !bytes.is_finite() || !(1.0..=9.0e18).contains(&bytes) {
        return Err(bad());
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(bytes as u64)
}

/// `[train]`: the sandbox every training run gets. Limits apply per process (CPU, memory,
/// file size, open files) or to the whole run (wall-clock timeout, processes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TrainPolicy {
    /// Wall-clock limit of a run, in seconds.
    #[serde(default = "default_train_timeout")]
    pub timeout: u64,
    /// CPU time per process, in seconds.
    #[serde(default = "default_train_timeout")]
    pub cpu: u64,
    /// Address space per process.
    #[serde(default = "default_train_memory")]
    pub memory: Size,
    /// Largest file a trainer may write.
    #[serde(default = "default_train_memory")]
    pub file_size: Size,
    /// Open files per process.
    #[serde(default = "default_train_open_files")]
    pub open_files: u64,
    /// Processes and threads in the sandbox.
    #[serde(default = "default_train_processes")]
    pub processes: u64,
    /// Extra environment variables passed to trainers (never `RAMPART_*` or secret-looking
    /// names).
    #[serde(default)]
    pub env: Vec<String>,
    /// Extra paths trainers may read (an interpreter or library outside the system paths).
    #[serde(default)]
    pub read: Vec<PathBuf>,
    /// The Python interpreter a trainer's `python`/`python3` command runs (a venv's, a
    /// conda env's), instead of the one found on `PATH`.
    #[serde(default)]
    pub python: Option<PathBuf>,
    /// Expose the NVIDIA GPU device nodes to trainers.
    #[serde(default)]
    pub gpu: bool,
}

fn default_train_timeout() -> u64 {
    3600
}
fn default_train_memory() -> Size {
    Size(8 << 30)
}
fn default_train_open_files() -> u64 {
    1024
}
fn default_train_processes() -> u64 {
    256
}

impl Default for TrainPolicy {
    fn default() -> Self {
        Self {
            timeout: default_train_timeout(),
            cpu: default_train_timeout(),
            memory: default_train_memory(),
            file_size: default_train_memory(),
            open_files: default_train_open_files(),
            processes: default_train_processes(),
            env: Vec::new(),
            read: Vec::new(),
            python: None,
            gpu: false,
        }
    }
}

/// Model-file scanning policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ScanPolicy {
    /// Imports allowed beyond the built-in allowlist (`module.name`, or `module.*`).
    /// Dangerous imports cannot be allowed.
    #[serde(default)]
    pub allow: Vec<String>,
    /// The lowest severity that fails a scan: info, low, medium (unknown imports), high, critical.
    #[serde(default = "default_fail_on")]
    pub fail_on: rampart_scan::Severity,
    /// The severity given to a file named like a model whose content cannot be parsed
    /// (default medium: it fails a scan at the default `fail_on`).
    #[serde(default = "default_fail_on")]
    pub unanalysable: rampart_scan::Severity,
    /// Severity per finding rule (`torchscript-code = "low"`, `hf-remote-code = "high"`):
    /// any rule may be raised; one whose default is critical (code that runs on load) may not
    /// be lowered.
    #[serde(default)]
    pub severity: std::collections::BTreeMap<String, rampart_scan::Severity>,
}

const fn default_fail_on() -> rampart_scan::Severity {
    rampart_scan::Severity::Medium
}

impl ScanPolicy {
    /// The scanner settings this policy describes.
    #[must_use]
    pub fn config(&self) -> rampart_scan::ScanConfig {
        rampart_scan::ScanConfig {
            allow: self.allow.clone(),
            unanalysable: Some(self.unanalysable),
            severity: self.severity.clone().into_iter().collect(),
            ..rampart_scan::ScanConfig::default()
        }
    }
}

impl Default for ScanPolicy {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            fail_on: default_fail_on(),
            unanalysable: default_fail_on(),
            severity: std::collections::BTreeMap::new(),
        }
    }
}

const fn one() -> u32 {
    1
}

/// Authorised data locations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DataPolicy {
    /// Directories datasets may be read from. Empty authorises nothing.
    #[serde(default)]
    pub roots: Vec<PathBuf>,
    /// Dataset digests (`sha256:` + hex of the file's bytes) accepted without a signature.
    #[serde(default)]
    pub pins: Vec<String>,
    /// Accept data files with more than one hard link (off: such a file may also be a file
    /// outside the roots, linked in).
    #[serde(default)]
    pub allow_hard_links: bool,
    /// Personal data and secrets: detection and redaction.
    #[serde(default)]
    pub pii: PiiPolicy,
    /// Poisoning checks.
    #[serde(default)]
    pub checks: ChecksPolicy,
}

/// `[data.pii]`: how personal data and secrets are found and redacted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PiiPolicy {
    /// Redact the clean rows during `rampart data ingest` (what is stored is the redacted data).
    #[serde(default)]
    pub on_ingest: bool,
    /// The operator for entities not listed: replace, mask, mask:N, remove, hash, encrypt, keep.
    #[serde(default = "default_pii_operator")]
    pub default: String,
    /// Operators per entity (`EMAIL = "hash"`).
    #[serde(default)]
    pub entities: BTreeMap<String, String>,
    /// Operators per column (`notes = "replace"`); they win over the entity operators.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Findings under this confidence are ignored.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f32,
}

fn default_pii_operator() -> String {
    "replace".into()
}

const fn default_min_confidence() -> f32 {
    0.5
}

impl Default for PiiPolicy {
    fn default() -> Self {
        Self {
            on_ingest: false,
            default: default_pii_operator(),
            entities: BTreeMap::new(),
            columns: BTreeMap::new(),
            min_confidence: default_min_confidence(),
        }
    }
}

/// `[data.checks]`: the poisoning checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ChecksPolicy {
    /// Run the checks during `rampart data ingest`; a check at or above `fail_on` refuses the
    /// dataset.
    #[serde(default)]
    pub on_ingest: bool,
    /// The lowest severity that fails: low, medium, high.
    #[serde(default = "default_checks_fail_on")]
    pub fail_on: String,
}

fn default_checks_fail_on() -> String {
    "high".into()
}

impl Default for ChecksPolicy {
    fn default() -> Self {
        Self {
            on_ingest: false,
            fail_on: default_checks_fail_on(),
        }
    }
}

/// Trusted verifier keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TrustPolicy {
    /// The keys, by name.
    #[serde(default)]
    pub keys: Vec<TrustedKey>,
    /// Certificate authorities, by name: a model or dataset signed with the certificate
    /// method verifies when its chain leads to one of them.
    #[serde(default)]
    pub certificates: Vec<TrustedCertificate>,
    /// Sigstore signers, by name: a model or dataset signed with Sigstore verifies when its
    /// Fulcio certificate was issued to one of these identities by its issuer (checked offline
    /// against the pinned Sigstore trusted root).
    #[serde(default)]
    pub sigstore: Vec<TrustedIdentity>,
}

/// One trusted Sigstore signer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TrustedIdentity {
    /// A human name, unique in the policy (among keys, certificates and identities).
    pub name: String,
    /// The certificate's subject alternative name (an email address or a URI), exactly.
    pub identity: String,
    /// The OIDC issuer that vouched for it (e.g. `https://accounts.google.com`,
    /// `https://token.actions.githubusercontent.com`), exactly.
    pub issuer: String,
}

impl TrustedIdentity {
    /// As the verifier takes it.
    #[must_use]
    pub fn to_identity(&self) -> rampart_crypto::sigstore::Identity {
        rampart_crypto::sigstore::Identity {
            identity: self.identity.clone(),
            issuer: self.issuer.clone(),
        }
    }
}

/// One trusted certificate authority (a root of the certificate method).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TrustedCertificate {
    /// A human name, unique in the policy (among keys and certificates).
    pub name: String,
    /// `sha256:` + hex SHA-256 of the certificate's DER.
    pub fingerprint: String,
    /// The subject, for people (checked against the certificate).
    pub subject: String,
    /// The certificate: base64 of its DER (the PEM body on one line).
    pub certificate: String,
}

impl TrustedCertificate {
    /// The certificate's DER.
    ///
    /// # Errors
    /// When the stored text is not base64.
    pub fn der(&self) -> Result<Vec<u8>, base64::DecodeError> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(self.certificate.as_bytes())
    }
}

/// One trusted public key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TrustedKey {
    /// A human name, unique in the policy.
    pub name: String,
    /// `sha256:` + hex SHA-256 of the canonical public key PEM (the model-signing key hint).
    pub fingerprint: String,
    /// The public key: base64 of its SubjectPublicKeyInfo DER (the PEM body on one line).
    pub public_key: String,
}

impl TrustedKey {
    /// Parses the stored key.
    ///
    /// # Errors
    /// When the stored text is not an ECDSA (P-256/384/521) public key.
    pub fn parse(&self) -> Result<PublicKey, rampart_crypto::KeyError> {
        PublicKey::from_pem(&spki_base64_to_pem(&self.public_key))
    }
}

/// Audit log settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditPolicy {
    /// Long-running processes write a signed checkpoint every this many records (every command
    /// also writes one when it ends).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
}

const fn default_checkpoint_every() -> u64 {
    100
}

impl Default for AuditPolicy {
    fn default() -> Self {
        Self {
            checkpoint_every: default_checkpoint_every(),
        }
    }
}

/// Gates per target stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "RawGates")]
#[non_exhaustive]
pub struct GatesPolicy {
    /// Conditions for entering staging.
    pub staging: GatePolicy,
    /// Conditions for entering production.
    pub production: GatePolicy,
}

impl Default for GatesPolicy {
    fn default() -> Self {
        Self {
            staging: GatePolicy::staging(),
            production: GatePolicy::production(),
        }
    }
}

/// What a model version must show to enter a stage. Fields left out of the file keep the
/// stage's safe default; turning a check off has to be written down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GatePolicy {
    /// A signature by a trusted key.
    pub require_signature: bool,
    /// A clean scan of every file.
    pub require_scan_clean: bool,
    /// Provenance present and naming this digest.
    pub require_provenance: bool,
    /// The dataset lineage in the provenance verifies.
    pub require_lineage: bool,
    /// Metric bounds, e.g. `{ accuracy = 0.9 }`: each reported metric at least this, or at
    /// most this for a loss (`rampart_ml::metrics::LOWER_IS_BETTER`: log_loss, loss, mse,
    /// rmse, mae, error_rate).
    pub min_metrics: BTreeMap<String, f64>,
    /// `min_metrics` are checked only against the metrics rampart computed on held-out rows
    /// (recorded in the signed provenance); `false` falls back to the trainer's self-reported
    /// `metrics.json` when none were computed. Production requires computed ones by default.
    pub require_computed_metrics: bool,
    /// Signed approvals needed.
    pub approvals: u32,
    /// Whether the registrant is barred from approving their own version.
    pub two_person_rule: bool,
}

impl GatePolicy {
    /// The staging defaults: signature, scan and provenance.
    #[must_use]
    pub fn staging() -> Self {
        Self {
            require_signature: true,
            require_scan_clean: true,
            require_provenance: true,
            require_lineage: false,
            min_metrics: BTreeMap::new(),
            require_computed_metrics: false,
            approvals: 0,
            two_person_rule: false,
        }
    }

    /// Only a signature over the stored files: what a rollback target and a served model must
    /// show.
    #[must_use]
    pub fn signature_only() -> Self {
        Self {
            require_signature: true,
            require_scan_clean: false,
            require_provenance: false,
            require_lineage: false,
            min_metrics: BTreeMap::new(),
            require_computed_metrics: false,
            approvals: 0,
            two_person_rule: false,
        }
    }

    /// The production defaults: staging's plus one approval, and metric bounds checked
    /// against computed metrics only.
    #[must_use]
    pub fn production() -> Self {
        Self {
            approvals: 1,
            require_computed_metrics: true,
            ..Self::staging()
        }
    }

    fn merged(mut self, raw: RawGate) -> Self {
        self.require_signature = raw.require_signature.unwrap_or(self.require_signature);
        self.require_scan_clean = raw.require_scan_clean.unwrap_or(self.require_scan_clean);
        self.require_provenance = raw.require_provenance.unwrap_or(self.require_provenance);
        self.require_lineage = raw.require_lineage.unwrap_or(self.require_lineage);
        self.min_metrics = raw.min_metrics.unwrap_or(self.min_metrics);
        self.require_computed_metrics = raw
            .require_computed_metrics
            .unwrap_or(self.require_computed_metrics);
        self.approvals = raw.approvals.unwrap_or(self.approvals);
        self.two_person_rule = raw.two_person_rule.unwrap_or(self.two_person_rule);
        self
    }
}

/// The file form of `[gates]`: every field optional, merged onto the stage's defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGates {
    #[serde(default)]
    staging: Option<RawGate>,
    #[serde(default)]
    production: Option<RawGate>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGate {
    require_signature: Option<bool>,
    require_scan_clean: Option<bool>,
    require_provenance: Option<bool>,
    require_lineage: Option<bool>,
    min_metrics: Option<BTreeMap<String, f64>>,
    require_computed_metrics: Option<bool>,
    approvals: Option<u32>,
    two_person_rule: Option<bool>,
}

impl From<RawGates> for GatesPolicy {
    fn from(raw: RawGates) -> Self {
        Self {
            staging: GatePolicy::staging().merged(raw.staging.unwrap_or_default()),
            production: GatePolicy::production().merged(raw.production.unwrap_or_default()),
        }
    }
}

impl Policy {
    /// Parses and validates policy text. `path` is used in messages only.
    ///
    /// # Errors
    /// [`HomeError::SecretInPolicy`] when private key material appears anywhere in the text,
    /// [`HomeError::Policy`] for syntax errors, unknown keys, bad or mismatched trusted keys and
    /// duplicate names.
    pub fn parse(text: &str, path: &Path) -> Result<Self, HomeError> {
        if let Some(marker) = SECRET_MARKERS.iter().find(|m| text.contains(*m)) {
            return Err(HomeError::SecretInPolicy {
                path: path.into(),
                marker,
            });
        }
        let policy: Self = toml::from_str(text).map_err(|e| HomeError::Policy {
            path: path.into(),
            reason: e.to_string().trim().replace('\n', " "),
        })?;
        policy.validate(path)?;
        Ok(policy)
    }

    fn validate(&self, path: &Path) -> Result<(), HomeError> {
        let bad = |reason: String| HomeError::Policy {
            path: path.into(),
            reason,
        };
        if self.version != 1 {
            return Err(bad(format!(
                "version {} is not supported (this rampart reads version 1)",
                self.version
            )));
        }
        self.storage.validate().map_err(bad)?;
        for pin in &self.data.pins {
            let ok = pin
                .strip_prefix("sha256:")
                .is_some_and(|h| rampart_crypto::Digest::from_hex(h).is_ok());
            if !ok {
                return Err(bad(format!(
                    "data.pins: {pin:?} is not sha256: followed by 64 hex digits"
                )));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for t in &self.trust.sigstore {
            if !names.insert(t.name.as_str()) {
                return Err(bad(format!(
                    "trusted Sigstore identity name {:?} appears twice",
                    t.name
                )));
            }
            if !rampart_crypto::sigstore::plausible(&t.to_identity()) {
                return Err(bad(format!(
                    "trust.sigstore {:?}: identity and issuer must be non-empty, without spaces",
                    t.name
                )));
            }
        }
        for c in &self.trust.certificates {
            if !names.insert(c.name.as_str()) {
                return Err(bad(format!(
                    "trusted certificate name {:?} appears twice",
                    c.name
                )));
            }
            let der = c
                .der()
                .map_err(|e| bad(format!("trusted certificate {:?}: {e}", c.name)))?;
            let subject = rampart_crypto::x509::subject_of(&der)
                .map_err(|e| bad(format!("trusted certificate {:?}: {e}", c.name)))?;
            let fingerprint = rampart_crypto::sha256(&der).reference().to_string();
            if fingerprint != c.fingerprint || subject != c.subject {
                return Err(bad(format!(
                    "trusted certificate {:?}: its fingerprint or subject does not match the certificate ({fingerprint}, {subject})",
                    c.name
                )));
            }
        }
        for key in &self.trust.keys {
            if !names.insert(key.name.as_str()) {
                return Err(bad(format!(
                    "trusted key name {:?} appears twice",
                    key.name
                )));
            }
            let public = key
                .parse()
                .map_err(|e| bad(format!("trusted key {:?}: {e}", key.name)))?;
            if public.fingerprint().to_string() != key.fingerprint {
                return Err(bad(format!(
                    "trusted key {:?}: fingerprint {} does not match its public key ({})",
                    key.name,
                    key.fingerprint,
                    public.fingerprint()
                )));
            }
        }
        for (rule, value) in &self.scan.severity {
            let Some((_, default, _)) = rampart_scan::RULES.iter().find(|r| r.0 == rule) else {
                return Err(bad(format!(
                    "scan.severity: {rule:?} is not a scanner rule (`rampart scan --format json` names them)"
                )));
            };
            if *default == rampart_scan::Severity::Critical && value < default {
                return Err(bad(format!(
                    "scan.severity.{rule}: a critical rule (code that runs when the file is loaded) cannot be lowered"
                )));
            }
        }
        if let Some(bad_entry) = self
            .scan
            .allow
            .iter()
            .find(|a| a.is_empty() || !a.contains('.'))
        {
            return Err(bad(format!(
                "scan.allow entry {bad_entry:?} must be module.name or module.*"
            )));
        }
        if !matches!(self.data.checks.fail_on.as_str(), "low" | "medium" | "high") {
            return Err(bad(format!(
                "data.checks.fail_on {:?} is not one of low, medium, high",
                self.data.checks.fail_on
            )));
        }
        if !(0.0..=1.0).contains(&self.data.pii.min_confidence) {
            return Err(bad("data.pii.min_confidence must be between 0 and 1".into()));
        }
        let t = &self.train;
        if t.timeout == 0 || t.cpu == 0 || t.open_files < 16 || t.processes < 2 {
            return Err(bad(
                "train: timeout and cpu must be positive, open_files at least 16, processes at least 2".into(),
            ));
        }
        if let Some(name) = t
            .env
            .iter()
            .find(|n| n.to_ascii_uppercase().starts_with("RAMPART_"))
        {
            return Err(bad(format!(
                "train.env: {name} is rampart's own; RAMPART_* variables never reach a trainer"
            )));
        }
        if self.audit.checkpoint_every == 0 {
            return Err(bad("audit.checkpoint_every must be at least 1".into()));
        }
        let g = &self.guard;
        if !(g.threshold > 0.0 && g.threshold <= 1.0) {
            return Err(bad("guard.threshold must be in (0, 1]".into()));
        }
        if !matches!(g.output.pii.as_str(), "redact" | "block" | "off") {
            return Err(bad(format!(
                "guard.output.pii {:?} is not redact, block or off",
                g.output.pii
            )));
        }
        if !matches!(g.output.links.as_str(), "redact" | "block") {
            return Err(bad(format!(
                "guard.output.links {:?} is not redact or block",
                g.output.links
            )));
        }
        let harm = &g.output.harm;
        for (what, act) in std::iter::once(("default", &harm.default))
            .chain(harm.categories.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if what != "default" && !HARM_CATEGORIES.contains(&what) {
                return Err(bad(format!(
                    "guard.output.harm.categories: {what:?} is not a harm category (one of {})",
                    HARM_CATEGORIES.join(", ")
                )));
            }
            if !matches!(act.as_str(), "block" | "flag" | "off") {
                return Err(bad(format!(
                    "guard.output.harm: {what} = {act:?} is not block, flag or off"
                )));
            }
        }
        for t in &g.topics {
            if t.name.trim().is_empty()
                || t.refusal.trim().is_empty()
                || (t.keywords.is_empty() && t.examples.is_empty())
            {
                return Err(bad(format!(
                    "guard.topics {:?}: a topic needs a name, a refusal, and keywords or examples",
                    t.name
                )));
            }
        }
        Ok(())
    }

    /// The trusted public keys with their names.
    #[must_use]
    pub fn trusted_keys(&self) -> Vec<(String, PublicKey)> {
        // Keys were validated in `parse`; a key that fails here cannot be trusted anyway.
        self.trust
            .keys
            .iter()
            .filter_map(|k| k.parse().ok().map(|p| (k.name.clone(), p)))
            .collect()
    }

    /// The trusted keys alone, without their names.
    #[must_use]
    pub fn trusted_public_keys(&self) -> Vec<PublicKey> {
        self.trusted_keys().into_iter().map(|(_, k)| k).collect()
    }

    /// The trusted Sigstore identities.
    #[must_use]
    pub fn trusted_identities(&self) -> Vec<rampart_crypto::sigstore::Identity> {
        self.trust
            .sigstore
            .iter()
            .map(TrustedIdentity::to_identity)
            .collect()
    }

    /// The trusted certificate authorities (DER), for the certificate method.
    #[must_use]
    pub fn trusted_roots(&self) -> Vec<Vec<u8>> {
        // Validated in `parse`.
        self.trust
            .certificates
            .iter()
            .filter_map(|c| c.der().ok())
            .collect()
    }
}

/// The one-line form stored in the policy: the PEM body without armour or line breaks.
#[must_use]
pub(crate) fn public_key_to_spki_base64(key: &PublicKey) -> String {
    key.to_pem()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

fn spki_base64_to_pem(b64: &str) -> String {
    let body: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let cut = rest.char_indices().nth(64).map_or(rest.len(), |(i, _)| i);
        let (line, tail) = rest.split_at(cut);
        pem.push_str(line);
        pem.push('\n');
        rest = tail;
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

/// The commented default policy written by `rampart init`, trusting the home's own key.
pub(crate) fn default_policy_text(home_key: &PublicKey) -> String {
    format!(
        r#"# rampart policy. Secrets never go here: private keys live in keys/ (mode 0600) or come
# from RAMPART_* environment variables (a .env file in the working directory is read too).
# Unknown keys are errors, so a typo cannot silently weaken the policy.
version = 1

[data]
# Directories datasets may be read from (`rampart data roots add DIR`). Empty authorises nothing.
# A file is read only from its root's own mount (not through a bind mount inside it).
roots = []
# allow_hard_links = false   # a hard-linked file may be a file outside the roots, linked in

# Personal data and secrets (`rampart data pii`). Left out, these are the defaults.
# [data.pii]
# on_ingest = false        # redact the clean rows during `rampart data ingest`
# default = "replace"      # replace (<TYPE>), mask / mask:N, remove, hash (HMAC pseudonym keyed
#                          # by keys/pii.key), encrypt (age; `rampart data pii reveal`), keep
# entities = {{ EMAIL = "hash", CREDIT_CARD = "mask:4" }}
# columns = {{ notes = "replace" }}
# min_confidence = 0.5

# Poisoning checks (`rampart data check FILE --schema S`).
# [data.checks]
# on_ingest = false        # run them during `rampart data ingest`; a check that fires refuses it
# fail_on = "high"         # low, medium or high

[audit]
# Long-running processes (the gateway) sign a checkpoint every N records; every command signs
# one when it ends.
checkpoint_every = 100

[scan]
# Imports allowed in model pickles beyond the built-in allowlist ("module.name" or "module.*").
# Dangerous imports (os, subprocess, eval, ...) can never be allowed.
allow = []
# The lowest severity that fails `rampart scan` and the registry's scan gate:
# info, low, medium (anything not allowlisted), high, critical.
fail_on = "medium"
# The severity of a file named like a model (.pt, .pkl, .bin, .onnx, ...) whose content the
# scanner cannot parse: it is never reported clean.
# unanalysable = "medium"
# The severity of any finding rule, e.g. TorchScript code or Hugging Face remote code.
# Critical rules (code that runs on load) can be raised but never lowered.
# [scan.severity]
# torchscript-code = "medium"
# hf-remote-code = "medium"

# Promotion gates. Left out, a field keeps the safe default shown here.
[gates.staging]
# require_signature = true
# require_scan_clean = true
# require_provenance = true
# require_lineage = false
# min_metrics = {{ accuracy = 0.9 }}
# Metric bounds read the metrics rampart computed on held-out rows; false lets the
# trainer's self-reported metrics.json stand in when none were computed.
# require_computed_metrics = false
# approvals = 0

[gates.production]
# require_signature = true
# require_scan_clean = true
# require_provenance = true
# require_lineage = false
# require_computed_metrics = true
# approvals = 1
# two_person_rule = false

# LLM guardrails (`rampart guard check`, `rampart serve --guard`). Left out, the defaults.
# [guard]
# threshold = 0.5          # injection score at which a prompt is blocked
# classifier = true        # the learned classifier adds to the rules' score
# [[guard.topics]]
# name = "financial-advice"
# keywords = ["stock tips", "investment advice"]
# examples = ["which stocks should I buy"]
# refusal = "I can't help with financial advice."
# [guard.output]
# pii = "redact"           # personal data in answers: redact, block or off (secrets always block)
# banned = []              # words and phrases an answer must not contain
# allowed_domains = []     # hosts links may point to (subdomains included); empty: any
# links = "redact"         # other links: redact or block
# [guard.output.harm]      # answers that instruct in a harm, sexualise minors, or carry slurs
# default = "block"        # block, flag (logged, passed) or off
# categories = {{ malware = "flag" }}  # weapons, drugs, malware, fraud, self-harm, sexual-minors, hate, violence, privacy (flag unless listed)
# [guard.tools]            # tool calls a model proposes through `serve --guard`
# allowed = []             # tools it may call; empty: any
# allowed_domains = []     # hosts URLs in a call's arguments may point to; empty: any
# [guard.moderation]       # an OpenAI-compatible moderation endpoint, after rampart's rails
# url = "https://api.openai.com/v1/moderations"
# key_env = "RAMPART_MODERATION_KEY"  # the variable holding its key
# model = "omni-moderation-latest"
# timeout_ms = 5000
# default = "block"        # a flagged category: block, or flag (logged, passed)
# on_error = "block"       # the endpoint failing: block (fail closed) or flag
# categories = {{ "violence/graphic" = "flag" }}

# Sigstore signers whose bundles rampart accepts, checked offline against the Sigstore trusted
# root (`rampart trust add-identity --identity ID --issuer URL`):
# [[trust.sigstore]]
# name = "release-ci"
# identity = "https://github.com/ORG/REPO/.github/workflows/release.yml@refs/heads/main"
# issuer = "https://token.actions.githubusercontent.com"

# Public keys whose signatures rampart accepts (`rampart trust add|list|remove`).
# `public_key` is the base64 SubjectPublicKeyInfo (the PEM body on one line).
[[trust.keys]]
name = "home"
fingerprint = "{fingerprint}"
public_key = "{public_key}"
"#,
        fingerprint = home_key.fingerprint(),
        public_key = public_key_to_spki_base64(home_key),
    )
}

/// Adds a trusted key to the policy text, keeping comments and layout.
pub(crate) fn add_trusted_key(
    text: &str,
    path: &Path,
    name: &str,
    key: &PublicKey,
) -> Result<(String, TrustedKey), HomeError> {
    let policy = Policy::parse(text, path)?;
    let fingerprint = key.fingerprint().to_string();
    if policy
        .trust
        .keys
        .iter()
        .any(|k| k.name == name || k.fingerprint == fingerprint)
        || policy.trust.certificates.iter().any(|c| c.name == name)
    {
        return Err(HomeError::TrustExists {
            path: path.into(),
            name: name.into(),
            fingerprint,
        });
    }
    let mut doc = parse_doc(text, path)?;
    let keys = trust_array(&mut doc, path, "keys")?;
    let entry = TrustedKey {
        name: name.into(),
        fingerprint,
        public_key: public_key_to_spki_base64(key),
    };
    let mut table = toml_edit::Table::new();
    table.insert("name", toml_edit::value(entry.name.clone()));
    table.insert("fingerprint", toml_edit::value(entry.fingerprint.clone()));
    table.insert("public_key", toml_edit::value(entry.public_key.clone()));
    keys.push(table);
    let out = doc.to_string();
    Policy::parse(&out, path)?;
    Ok((out, entry))
}

/// Adds a trusted certificate authority (DER) under `name`.
pub(crate) fn add_trusted_certificate(
    text: &str,
    path: &Path,
    name: &str,
    der: &[u8],
) -> Result<(String, TrustedCertificate), HomeError> {
    use base64::Engine as _;
    let policy = Policy::parse(text, path)?;
    let fingerprint = rampart_crypto::sha256(der).reference().to_string();
    let subject = rampart_crypto::x509::subject_of(der).map_err(|e| HomeError::Policy {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if policy.trust.keys.iter().any(|k| k.name == name)
        || policy
            .trust
            .certificates
            .iter()
            .any(|c| c.name == name || c.fingerprint == fingerprint)
    {
        return Err(HomeError::TrustExists {
            path: path.into(),
            name: name.into(),
            fingerprint,
        });
    }
    let entry = TrustedCertificate {
        name: name.into(),
        fingerprint,
        subject,
        certificate: base64::engine::general_purpose::STANDARD.encode(der),
    };
    let mut doc = parse_doc(text, path)?;
    let list = trust_array(&mut doc, path, "certificates")?;
    let mut table = toml_edit::Table::new();
    table.insert("name", toml_edit::value(entry.name.clone()));
    table.insert("fingerprint", toml_edit::value(entry.fingerprint.clone()));
    table.insert("subject", toml_edit::value(entry.subject.clone()));
    table.insert("certificate", toml_edit::value(entry.certificate.clone()));
    list.push(table);
    let out = doc.to_string();
    Policy::parse(&out, path)?;
    Ok((out, entry))
}

/// Adds a trusted Sigstore identity under `name`.
pub(crate) fn add_trusted_identity(
    text: &str,
    path: &Path,
    name: &str,
    identity: &rampart_crypto::sigstore::Identity,
) -> Result<(String, TrustedIdentity), HomeError> {
    let policy = Policy::parse(text, path)?;
    if policy.trust.keys.iter().any(|k| k.name == name)
        || policy.trust.certificates.iter().any(|c| c.name == name)
        || policy
            .trust
            .sigstore
            .iter()
            .any(|t| t.name == name || t.to_identity() == *identity)
    {
        return Err(HomeError::TrustExists {
            path: path.into(),
            name: name.into(),
            fingerprint: identity.to_string(),
        });
    }
    let entry = TrustedIdentity {
        name: name.into(),
        identity: identity.identity.clone(),
        issuer: identity.issuer.clone(),
    };
    let mut doc = parse_doc(text, path)?;
    let list = trust_array(&mut doc, path, "sigstore")?;
    let mut table = toml_edit::Table::new();
    table.insert("name", toml_edit::value(entry.name.clone()));
    table.insert("identity", toml_edit::value(entry.identity.clone()));
    table.insert("issuer", toml_edit::value(entry.issuer.clone()));
    list.push(table);
    let out = doc.to_string();
    Policy::parse(&out, path)?;
    Ok((out, entry))
}

/// Removes the trusted Sigstore identity with this name.
pub(crate) fn remove_trusted_identity(
    text: &str,
    path: &Path,
    what: &str,
) -> Result<(String, TrustedIdentity), HomeError> {
    let policy = Policy::parse(text, path)?;
    let (index, removed) = policy
        .trust
        .sigstore
        .iter()
        .enumerate()
        .find(|(_, t)| t.name == what || t.identity == what)
        .map(|(i, t)| (i, t.clone()))
        .ok_or_else(|| HomeError::TrustNotFound {
            path: path.into(),
            what: what.into(),
        })?;
    let mut doc = parse_doc(text, path)?;
    trust_array(&mut doc, path, "sigstore")?.remove(index);
    let out = doc.to_string();
    Policy::parse(&out, path)?;
    Ok((out, removed))
}

/// Removes the trusted certificate with this name or fingerprint.
pub(crate) fn remove_trusted_certificate(
    text: &str,
    path: &Path,
    what: &str,
) -> Result<(String, TrustedCertificate), HomeError> {
    let policy = Policy::parse(text, path)?;
    let wanted = format!("sha256:{}", what.trim_start_matches("sha256:"));
    let (index, removed) = policy
        .trust
        .certificates
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == what || c.fingerprint == wanted)
        .map(|(i, c)| (i, c.clone()))
        .ok_or_else(|| HomeError::TrustNotFound {
            path: path.into(),
            what: what.into(),
        })?;
    let mut doc = parse_doc(text, path)?;
    trust_array(&mut doc, path, "certificates")?.remove(index);
    let out = doc.to_string();
    Policy::parse(&out, path)?;
    Ok((out, removed))
}

/// `[[trust.NAME]]`, created if missing.
fn trust_array<'d>(
    doc: &'d mut toml_edit::DocumentMut,
    path: &Path,
    name: &str,
) -> Result<&'d mut toml_edit::ArrayOfTables, HomeError> {
    let trust = doc
        .entry("trust")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .ok_or_else(|| HomeError::Policy {
            path: path.into(),
            reason: "`trust` must be a table".into(),
        })?;
    trust
        .entry(name)
        .or_insert_with(|| toml_edit::Item::ArrayOfTables(toml_edit::ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| HomeError::Policy {
            path: path.into(),
            reason: format!("`trust.{name}` must be an array of tables ([[trust.{name}]])"),
        })
}

/// Removes the trusted key with this name or fingerprint (`sha256:…` or bare hex).
pub(crate) fn remove_trusted_key(
    text: &str,
    path: &Path,
    what: &str,
) -> Result<(String, TrustedKey), HomeError> {
    let policy = Policy::parse(text, path)?;
    let wanted_fp = rampart_crypto::Fingerprint::from_hex(what)
        .ok()
        .map(|f| f.to_string());
    let index = policy
        .trust
        .keys
        .iter()
        .position(|k| k.name == what || Some(&k.fingerprint) == wanted_fp.as_ref())
        .ok_or_else(|| HomeError::TrustNotFound {
            path: path.into(),
            what: what.into(),
        })?;
    let removed =
        policy
            .trust
            .keys
            .get(index)
            .cloned()
            .ok_or_else(|| HomeError::TrustNotFound {
                path: path.into(),
                what: what.into(),
            })?;
    let mut doc = parse_doc(text, path)?;
    trust_array(&mut doc, path, "keys")?.remove(index);
    let out = doc.to_string();
    Policy::parse(&out, path)?;
    Ok((out, removed))
}

/// `data.roots` with `dir` added (keeping the file's comments and layout); adding one that is
/// already listed is an error.
pub(crate) fn add_data_root(text: &str, path: &Path, dir: &Path) -> Result<String, HomeError> {
    let dir_text = dir.to_str().ok_or_else(|| HomeError::Policy {
        path: path.into(),
        reason: format!("{} is not valid UTF-8", dir.display()),
    })?;
    add_to_data_list(text, path, "roots", dir_text, "a data root")
}

/// `data.roots` without `dir` (matched exactly as listed); removing one that is not listed
/// is an error.
pub(crate) fn remove_data_root(text: &str, path: &Path, dir: &Path) -> Result<String, HomeError> {
    let dir_text = dir.to_str().unwrap_or_default();
    remove_from_data_list(text, path, "roots", dir_text, "a data root").map_err(|e| match e {
        HomeError::Policy { path, reason } => HomeError::Policy {
            path,
            reason: reason.replace(dir_text, &dir.display().to_string()),
        },
        other => other,
    })
}

/// `data.pins` with `digest` (`sha256:` + hex) added.
pub(crate) fn add_data_pin(text: &str, path: &Path, digest: &str) -> Result<String, HomeError> {
    add_to_data_list(text, path, "pins", digest, "pinned")
}

/// `data.pins` without `digest`.
pub(crate) fn remove_data_pin(text: &str, path: &Path, digest: &str) -> Result<String, HomeError> {
    remove_from_data_list(text, path, "pins", digest, "pinned")
}

fn add_to_data_list(
    text: &str,
    path: &Path,
    key: &str,
    value: &str,
    what: &str,
) -> Result<String, HomeError> {
    let mut doc = parse_doc(text, path)?;
    let not_table = || HomeError::Policy {
        path: path.into(),
        reason: format!("`data` must be a table with a `{key}` array"),
    };
    let data = doc
        .entry("data")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .ok_or_else(not_table)?;
    let list = data
        .entry(key)
        .or_insert_with(|| toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .ok_or_else(not_table)?;
    if list.iter().any(|v| v.as_str() == Some(value)) {
        return Err(HomeError::Policy {
            path: path.into(),
            reason: format!("{value} is already {what}"),
        });
    }
    list.push(value);
    let out = doc.to_string();
    Policy::parse(&out, path)?;
    Ok(out)
}

fn remove_from_data_list(
    text: &str,
    path: &Path,
    key: &str,
    value: &str,
    what: &str,
) -> Result<String, HomeError> {
    let mut doc = parse_doc(text, path)?;
    let list = doc
        .get_mut("data")
        .and_then(|d| d.get_mut(key))
        .and_then(toml_edit::Item::as_array_mut);
    let not_listed = |none: bool| HomeError::Policy {
        path: path.into(),
        reason: if none {
            format!("{value} is not {what} (none are listed)")
        } else {
            format!("{value} is not {what}")
        },
    };
    let Some(list) = list else {
        return Err(not_listed(true));
    };
    let before = list.len();
    list.retain(|v| v.as_str() != Some(value));
    if list.len() == before {
        return Err(not_listed(false));
    }
    let out = doc.to_string();
    Policy::parse(&out, path)?;
    Ok(out)
}

fn parse_doc(text: &str, path: &Path) -> Result<toml_edit::DocumentMut, HomeError> {
    text.parse::<toml_edit::DocumentMut>()
        .map_err(|e| HomeError::Policy {
            path: path.into(),
            reason: e.to_string().trim().replace('\n', " "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_crypto::SigningKey;

    #[test]
    fn data_roots_are_added_and_removed_keeping_comments() {
        let path = Path::new("rampart.toml");
        let text = "version = 1\n\n[data]\n# where datasets live\nroots = []\n";
        let out = add_data_root(text, path, Path::new("/srv/data")).unwrap();
        assert!(out.contains("# where datasets live"), "{out}");
        let policy = Policy::parse(&out, path).unwrap();
        assert_eq!(policy.data.roots, vec![PathBuf::from("/srv/data")]);
        assert!(add_data_root(&out, path, Path::new("/srv/data")).is_err());
        let out = add_data_root(&out, path, Path::new("/mnt/x")).unwrap();
        let out = remove_data_root(&out, path, Path::new("/srv/data")).unwrap();
        let policy = Policy::parse(&out, path).unwrap();
        assert_eq!(policy.data.roots, vec![PathBuf::from("/mnt/x")]);
        assert!(remove_data_root(&out, path, Path::new("/srv/data")).is_err());
    }

    fn p() -> &'static Path {
        Path::new("rampart.toml")
    }

    #[test]
    fn default_text_parses_with_safe_defaults() {
        let key = SigningKey::generate().public_key();
        let text = default_policy_text(&key);
        let policy = Policy::parse(&text, p()).unwrap();
        assert!(policy.data.roots.is_empty());
        assert_eq!(policy.trusted_keys().len(), 1);
        assert_eq!(policy.trusted_keys()[0].1, key);
        assert!(policy.gates.staging.require_signature);
        assert_eq!(policy.gates.staging.approvals, 0);
        assert_eq!(policy.gates.production.approvals, 1);
        assert!(!policy.gates.production.two_person_rule);
    }

    #[test]
    fn partial_gate_keeps_other_defaults() {
        let policy = Policy::parse(
            "[gates.production]\nmin_metrics = { accuracy = 0.9 }\n",
            p(),
        )
        .unwrap();
        assert_eq!(policy.gates.production.approvals, 1);
        assert!(policy.gates.production.require_scan_clean);
        assert_eq!(policy.gates.production.min_metrics["accuracy"], 0.9);
        // Production checks metric bounds against computed metrics unless told otherwise.
        assert!(policy.gates.production.require_computed_metrics);
        assert!(!policy.gates.staging.require_computed_metrics);
        let lenient = Policy::parse(
            "[gates.production]\nrequire_computed_metrics = false\n",
            p(),
        )
        .unwrap();
        assert!(!lenient.gates.production.require_computed_metrics);
    }

    #[test]
    fn typos_and_secrets_are_refused() {
        let err = Policy::parse("[gates.staging]\nrequire_signatur = false\n", p()).unwrap_err();
        assert!(err.to_string().contains("require_signatur"), "{err}");
        let err = Policy::parse("# -----BEGIN PRIVATE KEY-----\nversion = 1\n", p()).unwrap_err();
        assert!(matches!(
            err,
            HomeError::SecretInPolicy {
                marker: "PRIVATE KEY",
                ..
            }
        ));
        let err = Policy::parse("x = \"AGE-SECRET-KEY-1ABC\"\n", p()).unwrap_err();
        assert!(matches!(err, HomeError::SecretInPolicy { .. }));
        assert!(!err.to_string().contains("1ABC"));
    }

    #[test]
    fn guard_tools_are_read_and_their_typos_refused() {
        let policy = Policy::parse(
            "[guard.tools]\nallowed = [\"search\"]\nallowed_domains = [\"example.com\"]\n",
            p(),
        )
        .unwrap();
        assert_eq!(policy.guard.tools.allowed, ["search"]);
        assert_eq!(policy.guard.tools.allowed_domains, ["example.com"]);
        assert!(
            Policy::parse("", p())
                .unwrap()
                .guard
                .tools
                .allowed
                .is_empty()
        );
        let err = Policy::parse("[guard.tools]\nallow = [\"x\"]\n", p()).unwrap_err();
        assert!(err.to_string().contains("allow"), "{err}");
        let policy = Policy::parse(
            "[guard.moderation]\nurl = \"https://m.example/v1/moderations\"\n[guard.moderation.categories]\n\"self-harm\" = \"flag\"\n",
            p(),
        )
        .unwrap();
        let m = policy.guard.moderation.unwrap();
        assert_eq!(
            (m.key_env.as_str(), m.on_error.as_str(), m.timeout_ms),
            ("RAMPART_MODERATION_KEY", "block", 5000)
        );
        assert_eq!(
            m.categories.get("self-harm").map(String::as_str),
            Some("flag")
        );
        assert!(Policy::parse("[guard.moderation]\nkey_env = \"K\"\n", p()).is_err());
        // Harm categories: block by default, per category as written; a name or an action
        // rampart does not know is an error that names it.
        let policy = Policy::parse(
            "[guard.output.harm]\ndefault = \"flag\"\n[guard.output.harm.categories]\nweapons = \"block\"\n",
            p(),
        )
        .unwrap();
        let h = &policy.guard.output.harm;
        assert_eq!(h.default, "flag");
        assert_eq!(
            h.categories.get("weapons").map(String::as_str),
            Some("block")
        );
        assert_eq!(
            Policy::parse("", p()).unwrap().guard.output.harm.default,
            "block"
        );
        let err =
            Policy::parse("[guard.output.harm.categories]\ngore = \"block\"\n", p()).unwrap_err();
        assert!(
            err.to_string().contains("\"gore\" is not a harm category"),
            "{err}"
        );
        let err =
            Policy::parse("[guard.output.harm.categories]\nhate = \"warn\"\n", p()).unwrap_err();
        assert!(err.to_string().contains("hate = \"warn\""), "{err}");
    }

    #[test]
    fn mismatched_fingerprint_is_refused() {
        let key = SigningKey::generate().public_key();
        let other = SigningKey::generate().public_key();
        let text = default_policy_text(&key).replace(
            &key.fingerprint().to_string(),
            &other.fingerprint().to_string(),
        );
        let err = Policy::parse(&text, p()).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn add_and_remove_keep_comments() {
        let home = SigningKey::generate().public_key();
        let alice = SigningKey::generate().public_key();
        let text = default_policy_text(&home);
        let (text, added) = add_trusted_key(&text, p(), "alice", &alice).unwrap();
        assert!(text.contains("# Promotion gates."));
        assert_eq!(added.fingerprint, alice.fingerprint().to_string());
        let policy = Policy::parse(&text, p()).unwrap();
        assert_eq!(policy.trusted_keys().len(), 2);
        assert!(matches!(
            add_trusted_key(&text, p(), "alice", &SigningKey::generate().public_key()),
            Err(HomeError::TrustExists { .. })
        ));
        assert!(matches!(
            add_trusted_key(&text, p(), "bob", &alice),
            Err(HomeError::TrustExists { .. })
        ));
        let (text, removed) =
            remove_trusted_key(&text, p(), &alice.fingerprint().to_hex()).unwrap();
        assert_eq!(removed.name, "alice");
        let (text, _) = remove_trusted_key(&text, p(), "home").unwrap();
        assert!(Policy::parse(&text, p()).unwrap().trusted_keys().is_empty());
        assert!(text.contains("# Promotion gates."));
        assert!(matches!(
            remove_trusted_key(&text, p(), "home"),
            Err(HomeError::TrustNotFound { .. })
        ));
    }
}
