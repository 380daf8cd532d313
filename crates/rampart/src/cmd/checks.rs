//! `rampart data check FILE --schema S [--reference TRUSTED]` (the poisoning checks) and
//! `rampart data drift REFERENCE CURRENT`.

use std::path::Path;

use rampart_audit::Outcome;
use rampart_data::csv::ReaderOptions;
use rampart_data::drift::{Binning, DriftReport};
use rampart_data::frame::{DEFAULT_NULLS, Frame, FrameError, FrameLimits};
use rampart_data::poison::{Columns, PoisonReport, Severity};
use rampart_data::schema::Schema;
use serde_json::json;

use crate::cli::{CheckArgs, DriftArgs, Format, UnlockArgs};
use crate::cmd::data::{load_schema, open_dataset};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

/// Loads a whole dataset (CSV or Parquet) from an authorised root.
pub fn load_frame(
    ctx: &Ctx,
    path: &Path,
    unlock: &UnlockArgs,
    nulls: &[&str],
) -> Result<Frame, CliError> {
    let data = open_dataset(ctx, path, unlock)?;
    frame_from(ctx, data.reader, path, nulls)
}

/// Reads a table, CSV or Parquet (told by its magic; Parquet is spooled into the home's
/// private `runs/` first), naming the file in errors.
pub fn frame_from(
    ctx: &Ctx,
    reader: impl std::io::Read,
    path: &Path,
    nulls: &[&str],
) -> Result<Frame, CliError> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, reader);
    let is_parquet = std::io::BufRead::fill_buf(&mut reader)
        .map(|h| h.starts_with(rampart_data::parquet::MAGIC))
        .unwrap_or(false);
    let got = if is_parquet {
        let file = crate::cmd::data::spool(ctx, path, &mut reader)?;
        Frame::read_parquet(file, nulls, FrameLimits::default())
    } else {
        Frame::read_csv(
            reader,
            nulls,
            ReaderOptions::default(),
            FrameLimits::default(),
        )
    };
    got.map_err(|e| {
        let hint = matches!(e, FrameError::Csv { .. })
            .then_some("run `rampart data validate` first: it quarantines malformed rows");
        let err = CliError::input(anyhow::Error::new(e).context(path.display().to_string()));
        match hint {
            Some(h) => err.hint(h),
            None => err,
        }
    })
}

/// Runs the poisoning checks on a loaded table.
pub fn poison_checks(
    schema: &Schema,
    current: &Frame,
    reference: Option<&Frame>,
) -> Result<PoisonReport, CliError> {
    let cols = Columns::from_schema(schema).map_err(|e| CliError::input(anyhow::anyhow!(e)))?;
    rampart_data::poison::check(current, reference, &cols)
        .map_err(|e| CliError::input(anyhow::anyhow!(e)))
}

/// The severity that fails, from the flag or the policy.
pub fn fail_on(ctx: &Ctx, flag: Option<&str>) -> Result<Severity, CliError> {
    let policy = ctx.home.load_policy()?;
    flag.unwrap_or(&policy.data.checks.fail_on)
        .parse::<Severity>()
        .map_err(|e| CliError::input(anyhow::anyhow!("--fail-on: {e}")))
}

/// The audit record's summary of a poisoning report (check ids and severities, no values).
pub fn audit_summary(report: &PoisonReport) -> serde_json::Value {
    json!(
        report
            .checks
            .iter()
            .map(|c| (c.id, c.severity))
            .collect::<std::collections::BTreeMap<_, _>>()
    )
}

pub fn check(ctx: &Ctx, args: &CheckArgs, schema_path: &Path) -> Result<Status, CliError> {
    let threshold = fail_on(ctx, args.fail_on.as_deref())?;
    let (schema, schema_digest) = load_schema(schema_path)?;
    let nulls: Vec<&str> = schema.nulls.iter().map(String::as_str).collect();
    let current = load_frame(ctx, &args.path, &args.unlock, &nulls)?;
    let reference = args
        .reference
        .as_deref()
        .map(|r| load_frame(ctx, r, &args.unlock, &nulls))
        .transpose()?;
    let report = poison_checks(&schema, &current, reference.as_ref())?;
    let fired = report.worst() >= threshold;
    ctx.audit(
        ctx.event(
            "data.poison-check",
            if fired { Outcome::Failed } else { Outcome::Ok },
        )
        .subject_path(args.path.display().to_string())
        .detail("schema", schema_digest)
        .detail(
            "reference",
            args.reference.as_ref().map(|r| r.display().to_string()),
        )
        .detail("rows", report.rows)
        .detail("checks", audit_summary(&report)),
    )?;
    print_poison(ctx, &args.path, &report, threshold)?;
    Ok(if fired { Status::Findings } else { Status::Ok })
}

/// Prints a poisoning report.
pub fn print_poison(
    ctx: &Ctx,
    path: &Path,
    report: &PoisonReport,
    threshold: Severity,
) -> Result<(), CliError> {
    let fired = report.worst() >= threshold;
    match ctx.format {
        Format::Json | Format::Sarif => {
            let mut v = serde_json::to_value(report)
                .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
            if let Some(m) = v.as_object_mut() {
                m.insert("fail_on".into(), json!(threshold));
                m.insert("fired".into(), json!(fired));
            }
            output::print_json(&v)
        }
        Format::Human => {
            let mut s = format!(
                "{}: {} rows{}, label {}\n",
                path.display(),
                report.rows,
                report
                    .reference_rows
                    .map_or_else(String::new, |r| format!(" against a reference of {r}")),
                report.label
            );
            for c in &report.checks {
                let sev = serde_json::to_value(c.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                s.push_str(&format!("  {sev:<6} {:<24} {}\n", c.id, c.summary));
            }
            s.push_str(if fired {
                "poisoning checks fired at or above the policy severity\n"
            } else {
                "no check at or above the policy severity\n"
            });
            output::print(&s)
        }
    }
}

pub fn drift(ctx: &Ctx, args: &DriftArgs) -> Result<Status, CliError> {
    let bins: Binning = args
        .bins
        .parse()
        .map_err(|e: String| CliError::input(anyhow::anyhow!(e)))?;
    let reference = load_frame(ctx, &args.reference, &args.unlock, DEFAULT_NULLS)?;
    let current = load_frame(ctx, &args.current, &args.unlock, DEFAULT_NULLS)?;
    let report: DriftReport =
        rampart_data::drift::drift(&reference, &current, bins, args.threshold, &args.ignore)
            .map_err(|e| CliError::input(anyhow::anyhow!(e)))?;
    let drifted = report.drifted();
    ctx.audit(
        ctx.event(
            "data.drift",
            if drifted.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
        )
        .subject_path(args.current.display().to_string())
        .detail("reference", args.reference.display().to_string())
        .detail("drifted", json!(drifted)),
    )?;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(
            &serde_json::to_value(&report)
                .map_err(|e| CliError::internal(anyhow::Error::new(e)))?,
        )?,
        Format::Human => {
            let mut s = format!(
                "{} ({} rows) against {} ({} rows):\n",
                args.current.display(),
                report.current_rows,
                args.reference.display(),
                report.reference_rows
            );
            for (name, c) in &report.columns {
                s.push_str(&format!(
                    "  {name:<24} {:<11} PSI {:>8.4}{}  {}\n",
                    c.kind,
                    c.psi,
                    match (c.ks_statistic, c.ks_pvalue) {
                        (Some(d), Some(p)) => format!("  KS D {d:.4} p {p:.3e}"),
                        _ => String::new(),
                    },
                    if c.drift { "DRIFT" } else { "ok" }
                ));
            }
            output::print(&s)?;
        }
    }
    Ok(if drifted.is_empty() {
        Status::Ok
    } else {
        Status::Findings
    })
}
