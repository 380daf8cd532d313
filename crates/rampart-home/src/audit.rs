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
}

impl crate::Classify for LogError {
    fn kind(&self) -> crate::ErrorKind {
        match self {
            Self::Home(h) => h.kind(),
            Self::Audit(_) => crate::ErrorKind::Internal,
            Self::Since(_) => crate::ErrorKind::Input,
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
    let outcome = if report.failure.is_some() {
        Outcome::Failed
    } else {
        Outcome::Ok
    };
    let mut event = s
        .audit
        .event(Action::AuditVerify, outcome)
        .detail("records", report.records)
        .detail("checkpoints", report.checkpoints);
    if let Some(f) = &report.failure {
        event = event
            .detail("first_bad_seq", f.seq)
            .detail("reason", f.reason.clone());
    }
    match s.audit.record(event) {
        Err(e) if report.failure.is_none() => Err(e.into()),
        _ => Ok(report),
    }
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
