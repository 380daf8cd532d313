//! The home's audit log checked as a service: [`verify_log`] verifies the hash chain and the
//! signed checkpoints with the home's keys, treats an empty log in an initialised home as
//! truncated (`init` records itself), and records the verification; [`Filter`] selects
//! records for `rampart audit show`.

use rampart_audit::{Action, AuditError, AuditLog, Failure, FailureKind, Outcome, Record};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{HomeError, Session};

/// Why the log could not be verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The home's keys or policy.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The log could not be read, or an intact log refused the verification's record.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A `since` that is not a time.
    #[error("{0:?} is not a time")]
    Since(String),
    /// The audit anchor or SIEM is not configured, or its URL is refused.
    #[error("{0}")]
    Anchor(String),
}

impl crate::Classify for LogError {
    fn kind(&self) -> crate::ErrorKind {
        match self {
            Self::Home(h) => h.kind(),
            Self::Audit(_) => crate::ErrorKind::Internal,
            Self::Since(_) | Self::Anchor(_) => crate::ErrorKind::Input,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Since(_) => {
                Some("use RFC 3339 (2026-11-22T10:00:00Z) or a date (2026-11-22)".into())
            }
            _ => None,
        }
    }
}

/// Verifies `log` (the session's home's) and records `audit.verify`, ok or failed. Checkpoints
/// may be signed by the home's key or any key it trusts (a previous home key).
///
/// # Errors
/// The keys, the log; the record only when the log is intact (a tampered tail may refuse
/// appends, and that must not hide the failure).
pub fn verify_log(
    s: &Session<'_>,
    log: &AuditLog,
) -> Result<rampart_audit::VerifyReport, LogError> {
    let home = s.home;
    let mut keys = vec![home.signing_public_key()?];
    keys.extend(s.policy.trusted_public_keys());
    let mut report = log.verify(&keys)?;
    if report.failure.is_none() && report.records == 0 {
        let held: Vec<&str> = [
            ("registry", home.root().join("registry")),
            ("API keys", home.root().join("serve").join("apikeys.db")),
            ("datasets", home.dataset_store()),
            ("runs", home.runs_dir()),
        ]
        .into_iter()
        .filter(|(_, p)| p.exists())
        .map(|(what, _)| what)
        .collect();
        let holds = if held.is_empty() {
            String::new()
        } else {
            format!(" and holds {}", held.join(", "))
        };
        report.failure = Some(Failure {
            seq: 1,
            kind: FailureKind::Truncated,
            reason: format!(
                "the log has no records, but this home was initialised (init records itself){holds}: its audit records were deleted"
            ),
        });
    }
    let details = [
        ("records", report.records),
        ("checkpoints", report.checkpoints),
    ];
    record_verification(s, report.failure.as_ref(), &details)?;
    Ok(report)
}

/// Records `audit.verify` (ok, or failed with the first bad seq and why). A record the log
/// refuses is an error only when nothing was found: a tampered tail may refuse appends, and
/// that must not hide the failure.
fn record_verification(
    s: &Session<'_>,
    failure: Option<&Failure>,
    details: &[(&str, u64)],
) -> Result<(), LogError> {
    let outcome = if failure.is_some() {
        Outcome::Failed
    } else {
        Outcome::Ok
    };
    let mut event = s.audit.event(Action::AuditVerify, outcome);
    for (k, v) in details {
        event = event.detail(*k, *v);
    }
    if let Some(f) = failure {
        event = event
            .detail("first_bad_seq", f.seq)
            .detail("reason", f.reason.clone());
    }
    match s.audit.record(event) {
        Err(e) if failure.is_none() => Err(e.into()),
        _ => Ok(()),
    }
}

/// The home's audit log, its checkpoints also anchored where `[storage] audit_anchor` (or
/// `RAMPART_STORAGE_AUDIT_ANCHOR`) says.
///
/// # Errors
/// The log cannot be opened; the anchor's URL is refused or it cannot be reached.
pub fn open_log(home: &crate::Home, policy: &crate::Policy) -> Result<AuditLog, LogError> {
    let log = AuditLog::open(&home.audit_dir())?;
    let log = match anchor(policy)? {
        Some(a) => log.with_anchor(a),
        None => log,
    };
    Ok(
        match policy.storage.siem().map_err(|e| LogError::Anchor(e.0))? {
            Some(target) => log.with_siem(
                rampart_audit::siem::Syslog::start(target).map_err(|e| LogError::Anchor(e.0))?,
            ),
            None => log,
        },
    )
}

/// The anchor `policy` names, connected.
///
/// # Errors
/// The URL is refused, or the database cannot be reached or migrated.
pub fn anchor(
    policy: &crate::Policy,
) -> Result<Option<std::sync::Arc<dyn rampart_audit::anchor::Anchor>>, LogError> {
    match policy
        .storage
        .audit_anchor()
        .map_err(|e| LogError::Anchor(e.0))?
    {
        Some(target) => Ok(Some(std::sync::Arc::new(
            rampart_audit::anchor::PgAnchor::open(&target)?,
        ))),
        None => Ok(None),
    }
}

/// Compares the session's log with every checkpoint anchored under the home's key
/// (`rampart audit verify --anchor`) and records `audit.verify` with what it found.
///
/// # Errors
/// [`LogError::Anchor`] when no anchor is configured; the anchor or the log cannot be read.
pub fn verify_anchor(
    s: &Session<'_>,
    log: &AuditLog,
) -> Result<rampart_audit::anchor::AnchorReport, LogError> {
    let anchor = log.anchor().ok_or_else(|| {
        LogError::Anchor(
            "no audit anchor is configured: set [storage] audit_anchor in rampart.toml or \
             RAMPART_STORAGE_AUDIT_ANCHOR"
                .into(),
        )
    })?;
    let key = s.home.signing_public_key()?;
    let report = rampart_audit::anchor::check(log, anchor, &key)?;
    let anchored = u64::try_from(report.anchored).unwrap_or(u64::MAX);
    record_verification(s, report.failure.as_ref(), &[("anchored", anchored)])?;
    Ok(report)
}

/// Which records `rampart audit show` lists.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// An action, or a prefix of actions (`trust` matches `trust.add`).
    pub action: Option<String>,
    /// Records at or after this time.
    pub since: Option<OffsetDateTime>,
}

impl Filter {
    /// `action` as given; `since` as RFC 3339 or a date (midnight UTC).
    ///
    /// # Errors
    /// [`LogError::Since`] for a time that does not parse.
    pub fn new(action: Option<&str>, since: Option<&str>) -> Result<Self, LogError> {
        let since = since
            .map(|text| {
                OffsetDateTime::parse(text, &Rfc3339).or_else(|_| {
                    let date = time::macros::format_description!("[year]-[month]-[day]");
                    time::Date::parse(text, date)
                        .map(|d| d.midnight().assume_utc())
                        .map_err(|_| LogError::Since(text.to_owned()))
                })
            })
            .transpose()?;
        Ok(Self {
            action: action.map(str::to_owned),
            since,
        })
    }

    /// Whether `r` is wanted.
    #[must_use]
    pub fn matches(&self, r: &Record) -> bool {
        let action_ok = self.action.as_deref().is_none_or(|a| {
            r.action == a
                || r.action
                    .strip_prefix(a)
                    .is_some_and(|rest| rest.starts_with('.'))
        });
        let time_ok = self
            .since
            .is_none_or(|s| OffsetDateTime::parse(&r.time, &Rfc3339).is_ok_and(|t| t >= s));
        action_ok && time_ok
    }
}
