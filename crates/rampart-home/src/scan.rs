//! `rampart scan` and `rampart convert` as services: model files scanned under the policy's
//! `[scan]` settings (or the defaults without a home), every file's verdict recorded (`scan`:
//! ok, failed at or above the threshold, error when it could not be read — never reported
//! clean); a file's tensors rewritten as safetensors, the outcome recorded.

use std::collections::BTreeSet;
use std::path::PathBuf;

use rampart_audit::{Action, AuditError, Auditor, Outcome};
use rampart_scan::convert::ConvertError;
use rampart_scan::{FileReport, ScanConfig, Severity};

use crate::{Classify, ErrorKind, Policy};

/// What to scan.
#[derive(Debug, Clone, Default)]
pub struct ScanRequest {
    /// Files or directories (walked).
    pub paths: Vec<PathBuf>,
    /// Imports allowed beyond the allowlist (`module.name` or `module.*`).
    pub allow: Vec<String>,
    /// The lowest severity that fails (default: the policy's, else medium).
    pub fail_on: Option<Severity>,
}

/// What a scan found.
#[derive(Debug)]
pub struct Scanned {
    /// One report per file.
    pub reports: Vec<FileReport>,
    /// The threshold applied.
    pub fail_on: Severity,
    /// Files with a finding at or above it.
    pub flagged: usize,
    /// Files that could not be analysed (not known to be clean).
    pub unreadable: usize,
}

/// Why a scan did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The request is wrong (a path that does not exist, a malformed `allow`).
    #[error("{0}")]
    Request(String),
    /// A path could not be walked.
    #[error("cannot scan {}: {source}", path.display())]
    Walk {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A verdict could not be recorded.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl Classify for ScanError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Request(_) | Self::Walk { .. } => ErrorKind::Input,
            Self::Audit(a) => a.kind(),
        }
    }
}

/// Scans every path of `req`, telling `on_file` of each file as it is done, and records each
/// file's verdict.
///
/// # Errors
/// See [`ScanError`]; a file that cannot be read is a report with an error, not an error.
pub fn scan(
    audit: &Auditor<'_>,
    policy: Option<&Policy>,
    req: &ScanRequest,
    on_file: &(dyn Fn(&FileReport) + Sync),
) -> Result<Scanned, ScanError> {
    let fail_on = req
        .fail_on
        .unwrap_or_else(|| policy.map_or(Severity::Medium, |p| p.scan.fail_on));
    let mut cfg = policy.map_or_else(ScanConfig::default, |p| p.scan.config());
    cfg.allow.extend(req.allow.iter().cloned());
    if let Some(a) = cfg.allow.iter().find(|a| a.is_empty() || !a.contains('.')) {
        return Err(ScanError::Request(format!(
            "--allow {a:?} must be module.name or module.*"
        )));
    }
    let mut reports: Vec<FileReport> = Vec::new();
    for path in &req.paths {
        if !path.exists() {
            return Err(ScanError::Request(format!(
                "{} does not exist",
                path.display()
            )));
        }
        let found =
            rampart_scan::scan_path(path, &cfg, on_file).map_err(|source| ScanError::Walk {
                path: path.clone(),
                source,
            })?;
        reports.extend(found);
    }
    for r in &reports {
        audit.record(verdict(audit, r, fail_on))?;
    }
    let unreadable = reports.iter().filter(|r| r.error.is_some()).count();
    let flagged = reports
        .iter()
        .filter(|r| r.max_severity().is_some_and(|s| s >= fail_on))
        .count();
    Ok(Scanned {
        reports,
        fail_on,
        flagged,
        unreadable,
    })
}

/// One file's `scan` record: the format, the count of findings, the worst severity and the
/// rules at or above the threshold.
fn verdict(audit: &Auditor<'_>, r: &FileReport, fail_on: Severity) -> rampart_audit::Event {
    let max = r.max_severity();
    let outcome = if r.error.is_some() {
        Outcome::Error
    } else if max.is_some_and(|s| s >= fail_on) {
        Outcome::Failed
    } else {
        Outcome::Ok
    };
    let mut event = audit
        .event(Action::Scan, outcome)
        .subject_path(r.path.display().to_string())
        .detail("format", r.format.clone())
        .detail("findings", r.findings.len())
        .detail("max_severity", max.map(Severity::as_str));
    let rules: BTreeSet<&str> = r
        .findings
        .iter()
        .filter(|f| f.severity >= fail_on)
        .map(|f| f.rule)
        .collect();
    if !rules.is_empty() {
        event = event.detail("rules", rules.into_iter().collect::<Vec<_>>());
    }
    event
}

/// What [`convert`] did with a file.
#[derive(Debug)]
pub enum Conversion {
    /// Written as safetensors.
    Converted(rampart_scan::convert::Converted),
    /// Refused (a file that would run code, or that holds no tensors): a finding, recorded
    /// as denied.
    Refused(ConvertError),
}

/// Why a conversion could not be carried out (recorded as an error).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertFailed {
    /// The file could not be read or converted.
    #[error("cannot convert {}: {source}", input.display())]
    Convert {
        /// The input.
        input: PathBuf,
        /// Why.
        source: ConvertError,
    },
    /// The outcome could not be recorded.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl Classify for ConvertFailed {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Convert {
                source: ConvertError::Io { .. },
                ..
            }
            | Self::Audit(_) => ErrorKind::Internal,
            Self::Convert { .. } => ErrorKind::Input,
        }
    }

    fn hint(&self) -> Option<String> {
        match self.kind() {
            ErrorKind::Input => Some("`rampart scan` tells what the file is".into()),
            _ => None,
        }
    }
}

/// `rampart convert`: a model file's tensors rewritten as safetensors without running it
/// (`rampart_scan::convert`), the outcome recorded (`convert`: ok, denied, or error).
///
/// # Errors
/// See [`ConvertFailed`].
pub fn convert(
    audit: &Auditor<'_>,
    input: &std::path::Path,
    output: &std::path::Path,
) -> Result<Conversion, ConvertFailed> {
    let event = |outcome| {
        audit
            .event(Action::Convert, outcome)
            .subject_path(input.display().to_string())
    };
    match rampart_scan::convert::convert(input, output) {
        Ok(c) => {
            audit.record(
                event(Outcome::Ok)
                    .detail("output", output.display().to_string())
                    .detail("layout", c.layout.clone())
                    .detail("tensors", c.tensors.len())
                    .detail("bytes", c.bytes),
            )?;
            Ok(Conversion::Converted(c))
        }
        Err(e @ ConvertError::Refused { .. }) => {
            audit.record(event(Outcome::Denied).detail("reason", e.to_string()))?;
            Ok(Conversion::Refused(e))
        }
        Err(source) => {
            let denied = event(Outcome::Error).detail("reason", source.to_string());
            let e = ConvertFailed::Convert {
                input: input.to_path_buf(),
                source,
            };
            Err(audit.refusal(denied).map_or(e, ConvertFailed::Audit))
        }
    }
}
