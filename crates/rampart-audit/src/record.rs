//! Events (what a caller reports) and records (what the log stores).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::canonical;

/// The `prev` of the first record.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Domain separation for record hashes.
const RECORD_TAG: &[u8] = b"rampart.audit.record.v1\0";

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// A policy or check refused it.
    Denied,
    /// It was attempted and failed (e.g. a verification failed).
    Failed,
    /// It could not run (an internal or I/O error).
    Error,
}

impl Outcome {
    /// The lower-case name stored in the log.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Error => "error",
        }
    }
}

/// What an action was about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// A file or directory path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A content digest (`sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// One event to append. Never put secrets or raw personal data in an event: it is stored in
/// clear and kept forever.
#[derive(Debug, Clone)]
pub struct Event {
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) outcome: Outcome,
    pub(crate) subject: Subject,
    pub(crate) details: Map<String, Value>,
}

impl Event {
    /// An event: who (`actor`: an OS user or an API key id), what (`action`, dotted, e.g.
    /// `model.promote`) and how it ended.
    #[must_use]
    pub fn new(actor: impl Into<String>, action: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            outcome,
            subject: Subject::default(),
            details: Map::new(),
        }
    }

    /// Sets the subject path.
    #[must_use]
    pub fn subject_path(mut self, path: impl Into<String>) -> Self {
        self.subject.path = Some(path.into());
        self
    }

    /// Sets the subject digest.
    #[must_use]
    pub fn subject_digest(mut self, digest: impl Into<String>) -> Self {
        self.subject.digest = Some(digest.into());
        self
    }

    /// Adds one detail.
    #[must_use]
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// The record that follows this one when the change it recorded was then not made (it is
    /// written before the change, so that no change happens unrecorded): the same action and
    /// subject, outcome `error`, and why in `aborted`.
    #[must_use]
    pub fn aborted(&self, reason: impl Into<String>) -> Self {
        let mut details = Map::new();
        details.insert("aborted".into(), Value::String(reason.into()));
        Self {
            actor: self.actor.clone(),
            action: self.action.clone(),
            outcome: Outcome::Error,
            subject: self.subject.clone(),
            details,
        }
    }
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When it was appended, RFC 3339 UTC.
    pub time: String,
    /// Who: an OS user name or an API key id.
    pub actor: String,
    /// What, e.g. `trust.add`.
    pub action: String,
    /// On what.
    #[serde(default)]
    pub subject: Subject,
    /// How it ended.
    pub outcome: Outcome,
    /// Anything else worth keeping (never secrets).
    #[serde(default)]
    pub details: Map<String, Value>,
    /// The previous record's hash.
    pub prev: String,
    /// This record's hash.
    pub hash: String,
}

impl Record {
    pub(crate) fn seal(seq: u64, time: String, event: Event, prev: String) -> Self {
        let mut record = Self {
            seq,
            time,
            actor: event.actor,
            action: event.action,
            subject: event.subject,
            outcome: event.outcome,
            details: event.details,
            prev,
            hash: String::new(),
        };
        record.hash = hash_of(&record.to_value());
        record
    }

    /// The record as JSON.
    #[must_use]
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The stored line: canonical JSON of the whole record (hash included), no newline.
    #[must_use]
    pub fn to_line(&self) -> String {
        canonical::to_string(&self.to_value())
    }
}

/// The hash of a record given as JSON: the `hash` member, if present, is left out.
pub(crate) fn hash_of(value: &Value) -> String {
    let mut without = value.clone();
    if let Value::Object(map) = &mut without {
        map.remove("hash");
    }
    let mut hasher = rampart_crypto::Sha256Hasher::new();
    hasher.update(RECORD_TAG);
    hasher.update(canonical::to_string(&without).as_bytes());
    hasher.finish().to_hex()
}
