//! `rampart scan`.

use rampart_audit::Action;
use std::sync::atomic::{AtomicUsize, Ordering};

use rampart_audit::Outcome;
use rampart_scan::{FileReport, ScanConfig, Severity, report};

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
    let fail_on = match &args.fail_on {
        Some(text) => Severity::parse(text)
            .ok_or_else(|| CliError::input(anyhow::anyhow!("unknown severity {text:?}")))?,
        None => policy.as_ref().map_or(Severity::Medium, |p| p.scan.fail_on),
    };
    let mut cfg = policy
        .as_ref()
        .map_or_else(ScanConfig::default, |p| p.scan.config());
    cfg.allow.extend(args.allow.iter().cloned());
    for a in &cfg.allow {
        if a.is_empty() || !a.contains('.') {
            return Err(CliError::input(anyhow::anyhow!(
                "--allow {a:?} must be module.name or module.*"
            )));
        }
    }

    let bar = if quiet {
        None
    } else {
        output::progress(quiet, "scanning")
    };
    let done = AtomicUsize::new(0);
    let mut reports: Vec<FileReport> = Vec::new();
    for path in &args.paths {
        if !path.exists() {
            return Err(CliError::input(anyhow::anyhow!(
                "{} does not exist",
                path.display()
            )));
        }
        let found = rampart_scan::scan_path(path, &cfg, &|_| {
            done.fetch_add(1, Ordering::Relaxed);
            if let Some(b) = &bar {
                b.set_message(format!("scanning ({} files)", done.load(Ordering::Relaxed)));
            }
        })
        .map_err(|e| {
            CliError::input(
                anyhow::Error::new(e).context(format!("cannot scan {}", path.display())),
            )
        })?;
        reports.extend(found);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }

    let unreadable = reports.iter().filter(|r| r.error.is_some()).count();
    let flagged = reports
        .iter()
        .filter(|r| r.max_severity().is_some_and(|s| s >= fail_on))
        .count();
    let outcome = if unreadable > 0 {
        Outcome::Error
    } else if flagged > 0 {
        Outcome::Failed
    } else {
        Outcome::Ok
    };
    for r in &reports {
        let max = r.max_severity();
        let mut event = ctx
            .event(
                Action::Scan,
                if r.error.is_some() {
                    Outcome::Error
                } else if max.is_some_and(|s| s >= fail_on) {
                    Outcome::Failed
                } else {
                    Outcome::Ok
                },
            )
            .subject_path(r.path.display().to_string())
            .detail("format", r.format.clone())
            .detail("findings", r.findings.len())
            .detail("max_severity", max.map(Severity::as_str));
        let rules: std::collections::BTreeSet<&str> = r
            .findings
            .iter()
            .filter(|f| f.severity >= fail_on)
            .map(|f| f.rule)
            .collect();
        if !rules.is_empty() {
            event = event.detail("rules", rules.into_iter().collect::<Vec<_>>());
        }
        ctx.audit(event)?;
    }
    tracing::info!(
        files = reports.len(),
        flagged,
        unreadable,
        outcome = outcome.as_str(),
        "scan finished"
    );

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
