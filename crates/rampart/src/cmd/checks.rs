//! `rampart data check FILE --schema S [--reference TRUSTED]` (the poisoning checks) and
//! `rampart data drift REFERENCE CURRENT`.

use std::path::Path;

use rampart_ingest::checks;

use crate::cli::{CheckArgs, DriftArgs, Format};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use crate::unlock::open_dataset;

pub fn check(ctx: &Ctx, args: &CheckArgs, schema_path: &Path) -> Result<Status, CliError> {
    let policy = ctx.home.load_policy()?;
    let s = ctx.session(&policy)?;
    let current = open_dataset(ctx, &args.path, &args.unlock)?;
    let reference = match args.reference.as_deref() {
        Some(r) => Some((r, open_dataset(ctx, r, &args.unlock)?)),
        None => None,
    };
    let c = checks::check(
        &s,
        &args.path,
        current,
        schema_path,
        reference,
        args.fail_on,
    )?;
    crate::report::poison(ctx, &args.path, &c.report, c.threshold)?;
    Ok(if c.fired {
        Status::Findings
    } else {
        Status::Ok
    })
}

pub fn drift(ctx: &Ctx, args: &DriftArgs) -> Result<Status, CliError> {
    let policy = ctx.home.load_policy()?;
    let s = ctx.session(&policy)?;
    let reference = open_dataset(ctx, &args.reference, &args.unlock)?;
    let current = open_dataset(ctx, &args.current, &args.unlock)?;
    let req = checks::DriftRequest {
        bins: args.bins,
        threshold: args.threshold,
        ignore: args.ignore.clone(),
    };
    let report = checks::drift(
        &s,
        (&args.reference, reference),
        (&args.current, current),
        &req,
    )?;
    let drifted = report.drifted();
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&report)?,
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
