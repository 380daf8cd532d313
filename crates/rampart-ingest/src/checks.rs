//! The dataset commands that are not an ingest, as services over files
//! [`crate::open::open_file`] opened: whether a path is authorised ([`check_path`]), a schema
//! proposed from a sample ([`infer_schema`]), rows validated against a schema ([`validate`]),
//! the poisoning checks ([`poisoning`], which the ingest runs too) and drift between two
//! tables ([`drift`]). Each one that judges data records its verdict.

use std::io::{Read, Write};
use std::path::Path;

use rampart_audit::{Action, Outcome};
use rampart_data::drift::{Binning, DriftReport};
use rampart_data::frame::Frame;
use rampart_data::poison::{Columns, PoisonReport, Severity};
use rampart_data::schema::Schema;
use rampart_data::validate::{Report, ValidateOptions};
use rampart_home::Session;

use crate::IngestError;
use crate::open::Dataset;

/// The home's private spool directory for Parquet (`runs/`), created if needed.
fn spool_dir(s: &Session<'_>) -> Result<std::path::PathBuf, IngestError> {
    let runs = s.home.root().join("runs");
    rampart_home::secure_fs::create_private_dir(&runs)?;
    Ok(runs)
}

/// Whether `path` lies in an authorised data root: the access recorded (`data.access`), or
/// the refusal recorded and returned.
///
/// # Errors
/// [`IngestError::Path`] for a path outside the roots.
pub fn check_path(s: &Session<'_>, path: &Path) -> Result<rampart_data::Authorised, IngestError> {
    let data = &s.policy.data;
    let a = rampart_data::open_authorised_with(path, &data.roots, data.allow_hard_links)
        .map_err(|e| crate::open::refused(s, path, e))?;
    s.audit.record(
        s.audit
            .event(Action::DataAccess, Outcome::Ok)
            .subject_path(a.real.display().to_string())
            .detail("requested", path.display().to_string())
            .detail("root", a.root.display().to_string()),
    )?;
    Ok(a)
}

/// Proposes a schema from the first `rows` rows of `data` (CSV or Parquet).
///
/// # Errors
/// [`IngestError::Validate`] naming the file when it cannot be read as a table.
pub fn infer_schema(
    s: &Session<'_>,
    path: &Path,
    data: Dataset,
    rows: u64,
    label: Option<&str>,
) -> Result<rampart_data::infer::Inferred, IngestError> {
    rampart_data::stream::infer_any(data.reader, rows, label, &spool_dir(s)?).map_err(|source| {
        IngestError::Validate {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Validates `data` against `schema` (loaded from `schema_path`, whose digest is recorded),
/// the accepted rows into `clean` and the rejected ones, with their reasons, into
/// `quarantine`; records `data.validate` (failed when a row was rejected).
///
/// # Errors
/// The schema, the file, or the record.
pub fn validate<'w>(
    s: &Session<'_>,
    path: &Path,
    data: Dataset,
    schema_path: &Path,
    opts: &ValidateOptions,
    clean: Option<&'w mut (dyn Write + Send + 'w)>,
    quarantine: Option<&'w mut (dyn Write + 'w)>,
) -> Result<(Report, String), IngestError> {
    let (schema, schema_digest) = crate::load_schema(schema_path)?;
    let (report, _) = rampart_data::stream::validate_any(
        data.reader,
        &schema,
        opts,
        &spool_dir(s)?,
        clean,
        quarantine,
    )
    .map_err(|source| IngestError::Validate {
        path: path.to_path_buf(),
        source,
    })?;
    let outcome = if report.rejected == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    s.audit.record(
        s.audit
            .event(Action::DataValidate, outcome)
            .subject_path(data.real.display().to_string())
            .detail("schema", schema_digest.clone())
            .detail("rows", report.rows_read)
            .detail("accepted", report.accepted)
            .detail("rejected", report.rejected),
    )?;
    Ok((report, schema_digest))
}

/// Loads a whole table (CSV or Parquet), naming `path` in errors.
///
/// # Errors
/// [`IngestError::Frame`].
pub fn frame(
    s: &Session<'_>,
    path: &Path,
    reader: impl Read,
    nulls: &[&str],
) -> Result<Frame, IngestError> {
    rampart_data::stream::frame_any(reader, nulls, &spool_dir(s)?).map_err(|source| {
        IngestError::Frame {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The severity at which the poisoning checks fail: `flag`, else the policy's
/// `[data.checks] fail_on`.
///
/// # Errors
/// [`IngestError::Request`] naming the policy setting when it is not a severity.
pub fn threshold(s: &Session<'_>, flag: Option<Severity>) -> Result<Severity, IngestError> {
    match flag {
        Some(t) => Ok(t),
        None => s
            .policy
            .data
            .checks
            .fail_on
            .parse::<Severity>()
            .map_err(|e| {
                IngestError::Request(format!("[data.checks] fail_on in rampart.toml: {e}"))
            }),
    }
}

/// The poisoning checks of `schema`'s columns on `current`, against a trusted `reference`.
///
/// # Errors
/// [`IngestError::Checks`] when a column the schema names is missing.
pub fn poisoning(
    schema: &Schema,
    current: &Frame,
    reference: Option<&Frame>,
) -> Result<PoisonReport, IngestError> {
    let cols = Columns::from_schema(schema).map_err(IngestError::Checks)?;
    rampart_data::poison::check(current, reference, &cols).map_err(IngestError::Checks)
}

/// What [`check`] found.
#[derive(Debug)]
pub struct Checked {
    /// The checks.
    pub report: PoisonReport,
    /// The severity that fails.
    pub threshold: Severity,
    /// Whether a check reached it.
    pub fired: bool,
}

/// `rampart data check --schema`: the poisoning checks on `current` (opened from `path`),
/// against `reference` when given, recorded as `data.poison-check` (failed when one fired).
///
/// # Errors
/// The schema, a table, a missing column, or the record.
pub fn check(
    s: &Session<'_>,
    path: &Path,
    current: Dataset,
    schema_path: &Path,
    reference: Option<(&Path, Dataset)>,
    fail_on: Option<Severity>,
) -> Result<Checked, IngestError> {
    let threshold = threshold(s, fail_on)?;
    let (schema, schema_digest) = crate::load_schema(schema_path)?;
    let nulls: Vec<&str> = schema.nulls.iter().map(String::as_str).collect();
    let current = frame(s, path, current.reader, &nulls)?;
    let reference_path = reference.as_ref().map(|(p, _)| p.display().to_string());
    let reference = reference
        .map(|(p, d)| frame(s, p, d.reader, &nulls))
        .transpose()?;
    let report = poisoning(&schema, &current, reference.as_ref())?;
    let fired = report.worst() >= threshold;
    s.audit.record(
        s.audit
            .event(
                Action::DataPoisonCheck,
                if fired { Outcome::Failed } else { Outcome::Ok },
            )
            .subject_path(path.display().to_string())
            .detail("schema", schema_digest)
            .detail("reference", reference_path)
            .detail("rows", report.rows)
            .detail("checks", report.audit_summary()),
    )?;
    Ok(Checked {
        report,
        threshold,
        fired,
    })
}

/// How [`drift`] compares.
#[derive(Debug, Clone)]
pub struct DriftRequest {
    /// Numeric binning.
    pub bins: Binning,
    /// PSI at or above this is drift.
    pub threshold: f64,
    /// Columns left out.
    pub ignore: Vec<String>,
}

/// `rampart data drift`: each column of `current` against `reference` (PSI, and KS for
/// numbers), recorded as `data.drift` (failed when a column drifted).
///
/// # Errors
/// A table, columns that do not match, or the record.
pub fn drift(
    s: &Session<'_>,
    reference: (&Path, Dataset),
    current: (&Path, Dataset),
    req: &DriftRequest,
) -> Result<DriftReport, IngestError> {
    let nulls = rampart_data::frame::DEFAULT_NULLS;
    let reference_frame = frame(s, reference.0, reference.1.reader, nulls)?;
    let current_frame = frame(s, current.0, current.1.reader, nulls)?;
    let report = rampart_data::drift::drift(
        &reference_frame,
        &current_frame,
        req.bins,
        req.threshold,
        &req.ignore,
    )
    .map_err(|e| IngestError::Request(format!("{}: {e}", current.0.display())))?;
    let drifted = report.drifted();
    s.audit.record(
        s.audit
            .event(
                Action::DataDrift,
                if drifted.is_empty() {
                    Outcome::Ok
                } else {
                    Outcome::Failed
                },
            )
            .subject_path(current.0.display().to_string())
            .detail("reference", reference.0.display().to_string())
            .detail("drifted", serde_json::json!(drifted)),
    )?;
    Ok(report)
}
