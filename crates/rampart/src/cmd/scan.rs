//! `rampart scan`.

use std::sync::atomic::{AtomicUsize, Ordering};

use rampart_home::scan::{self, ScanRequest, Scanned};
use rampart_scan::{FileReport, Severity, report};

use crate::cli::{Format, ScanArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &ScanArgs, quiet: bool) -> Result<Status, CliError> {
    // The policy is optional here: scanning works without a home.
    let policy = if ctx.home.exists() {
        Some(ctx.home.load_policy()?)
    } else {
        None
    };
    let req = ScanRequest {
        paths: args.paths.clone(),
        allow: args.allow.clone(),
        fail_on: args.fail_on,
    };
    let bar = if quiet {
        None
    } else {
        output::progress(quiet, "scanning")
    };
    let done = AtomicUsize::new(0);
    let got = scan::scan(&ctx.auditor()?, policy.as_ref(), &req, &|_| {
        done.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = &bar {
            b.set_message(format!("scanning ({} files)", done.load(Ordering::Relaxed)));
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let Scanned {
        reports,
        fail_on,
        flagged,
        unreadable,
    } = got?;
    tracing::info!(files = reports.len(), flagged, unreadable, "scan finished");
    match ctx.format {
        Format::Json => output::print_json(&report::to_json(&reports, fail_on))?,
        Format::Sarif => {
            output::print_json(&report::to_sarif(&reports, env!("CARGO_PKG_VERSION")))?;
        }
        Format::Human => output::print(&human(&reports, fail_on, args.imports))?,
    }
    if unreadable > 0 {
        return Err(CliError::input(anyhow::anyhow!(
            "{unreadable} file(s) could not be scanned and are not known to be clean"
        ))
        .hint("see the report above; a gate treats an unreadable file as a failed scan"));
    }
    Ok(if flagged > 0 {
        Status::Findings
    } else {
        Status::Ok
    })
}

fn human(reports: &[FileReport], fail_on: Severity, imports: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for r in reports {
        let verdict = match (r.error.is_some(), r.max_severity()) {
            (true, _) => "UNREADABLE".to_owned(),
            (false, Some(s)) if s >= fail_on => format!("FLAGGED ({})", s.as_str()),
            _ => "clean".to_owned(),
        };
        let _ = writeln!(
            out,
            "{}  [{}, {}]  {verdict}",
            r.path.display(),
            r.format,
            output::bytes(r.size)
        );
        for f in &r.findings {
            let mut place = f.location.join(" > ");
            if let Some(o) = f.offset {
                if !place.is_empty() {
                    place.push(' ');
                }
                let _ = write!(place, "@{o}");
            }
            let _ = writeln!(
                out,
                "  {:<8} {:<34} {:<24} {}",
                f.severity.as_str(),
                f.rule,
                place,
                f.message
            );
        }
        if imports {
            for i in &r.imports {
                let _ = writeln!(
                    out,
                    "  import   {:<10} {:<34} {} @{}",
                    format!("{:?}", i.class).to_lowercase(),
                    i.import,
                    i.location.join(" > "),
                    i.offset
                );
            }
        }
    }
    let flagged = reports
        .iter()
        .filter(|r| r.max_severity().is_some_and(|s| s >= fail_on))
        .count();
    let _ = writeln!(
        out,
        "{} file(s) scanned, {flagged} flagged at or above {}",
        reports.len(),
        fail_on.as_str()
    );
    out
}
