//! `rampart data check FILE --schema S [--reference TRUSTED]` (the poisoning checks) and
//! `rampart data drift REFERENCE CURRENT`.

use rampart_audit::Action;
use std::path::Path;

use rampart_audit::Outcome;
use rampart_data::drift::{Binning, DriftReport};
use rampart_data::frame::{DEFAULT_NULLS, Frame};
use rampart_data::poison::{Columns, PoisonReport, Severity};
use rampart_data::schema::Schema;
use serde_json::json;

use crate::cli::{CheckArgs, DriftArgs, Format, UnlockArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use crate::unlock::open_dataset;
use rampart_ingest::load_schema;

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

/// Reads a table, CSV or Parquet (Parquet is spooled into the home's private `runs/`
/// first), naming the file in errors.
pub fn frame_from(
    ctx: &Ctx,
    reader: impl std::io::Read,
    path: &Path,
    nulls: &[&str],
) -> Result<Frame, CliError> {
    let runs = ctx.home.root().join("runs");
    rampart_home::secure_fs::create_private_dir(&runs)?;
    rampart_data::stream::frame_any(reader, nulls, &runs).map_err(|source| {
        rampart_ingest::IngestError::Frame {
            path: path.to_path_buf(),
            source,
        }
        .into()
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
            Action::DataPoisonCheck,
            if fired { Outcome::Failed } else { Outcome::Ok },
        )
        .subject_path(args.path.display().to_string())
        .detail("schema", schema_digest)
        .detail(
            "reference",
            args.reference.as_ref().map(|r| r.display().to_string()),
        )
        .detail("rows", report.rows)
        .detail("checks", report.audit_summary()),
    )?;
    crate::report::poison(ctx, &args.path, &report, threshold)?;
    Ok(if fired { Status::Findings } else { Status::Ok })
}

pub fn drift(ctx: &Ctx, args: &DriftArgs) -> Result<Status, CliError> {
    let bins: Binning = args
        .bins
        .parse()
        .map_err(|e: rampart_data::drift::BadBinning| CliError::input(e))?;
    let reference = load_frame(ctx, &args.reference, &args.unlock, DEFAULT_NULLS)?;
    let current = load_frame(ctx, &args.current, &args.unlock, DEFAULT_NULLS)?;
    let report: DriftReport =
        rampart_data::drift::drift(&reference, &current, bins, args.threshold, &args.ignore)
            .map_err(|e| CliError::input(anyhow::anyhow!(e)))?;
    let drifted = report.drifted();
    ctx.audit(
        ctx.event(
            Action::DataDrift,
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
