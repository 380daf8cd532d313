//! `rampart audit verify | show`.

use rampart_audit::Action;
use rampart_audit::{AuditLog, Outcome, Record};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{AuditArgs, AuditCommand, Format};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &AuditArgs) -> Result<Status, CliError> {
    ctx.home.require()?;
    let log = ctx.audit_log()?.ok_or_else(|| {
        CliError::input(anyhow::anyhow!(
            "no audit log in {}",
            ctx.home.root().display()
        ))
    })?;
    match &args.command {
        AuditCommand::Verify => verify(ctx, log),
        AuditCommand::Show { action, since } => show(ctx, log, action.as_deref(), since.as_deref()),
    }
}

fn verify(ctx: &Ctx, log: &AuditLog) -> Result<Status, CliError> {
    // Checkpoints may be signed by the home's key or any trusted key (e.g. a previous home key).
    let mut keys = vec![ctx.home.signing_public_key()?];
    keys.extend(ctx.home.load_policy()?.trusted_public_keys());
    let mut report = log.verify(&keys)?;
    if report.failure.is_none() && report.records == 0 {
        // `rampart init` records itself, so an initialised home never has an empty log: its
        // records were deleted (and the files recreated empty, or replaced).
        let held: Vec<&str> = [
            ("registry", ctx.home.root().join("registry")),
            ("API keys", ctx.home.root().join("serve").join("apikeys.db")),
            ("datasets", ctx.home.dataset_store()),
            ("runs", ctx.home.runs_dir()),
        ]
        .into_iter()
        .filter(|(_, p)| p.exists())
        .map(|(what, _)| what)
        .collect();
        report.failure = Some(rampart_audit::Failure {
            seq: 1,
            kind: rampart_audit::FailureKind::Truncated,
            reason: format!(
                "the log has no records, but this home was initialised (init records itself){}: its audit records were deleted",
                if held.is_empty() {
                    String::new()
                } else {
                    format!(" and holds {}", held.join(", "))
                }
            ),
        });
    }
    let outcome = if report.failure.is_some() {
        Outcome::Failed
    } else {
        Outcome::Ok
    };
    let mut event = ctx
        .event(Action::AuditVerify, outcome)
        .detail("records", report.records)
        .detail("checkpoints", report.checkpoints);
    if let Some(f) = &report.failure {
        event = event
            .detail("first_bad_seq", f.seq)
            .detail("reason", f.reason.clone());
        ctx.dont_seal();
    }
    // Recording the verification must not hide a failure: a tampered tail may refuse appends.
    if let Err(e) = ctx.audit(event)
        && report.failure.is_none()
    {
        return Err(e);
    }
    match ctx.format {
        Format::Json | Format::Sarif => {
            output::print_json(&serde_json::to_value(&report).unwrap_or_default())?;
        }
        Format::Human => {
            let text = match &report.failure {
                None => format!(
                    "audit log intact: {} records, {} signed checkpoints, head seq {}{}\n",
                    report.records,
                    report.checkpoints,
                    report.head_seq,
                    if report.unsigned_tail > 0 {
                        format!(
                            " ({} records after the last checkpoint)",
                            report.unsigned_tail
                        )
                    } else {
                        String::new()
                    }
                ),
                Some(f) => format!(
                    "audit log FAILED verification at seq {}: {}\n",
                    f.seq, f.reason
                ),
            };
            output::print(&text)?;
        }
    }
    Ok(if report.failure.is_some() {
        Status::Findings
    } else {
        Status::Ok
    })
}

fn parse_since(text: &str) -> Result<OffsetDateTime, CliError> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, date_format)
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| {
            CliError::input(anyhow::anyhow!("--since {text:?} is not a time"))
                .hint("use RFC 3339 (2026-11-22T10:00:00Z) or a date (2026-11-22)")
        })
}

fn show(
    ctx: &Ctx,
    log: &AuditLog,
    action: Option<&str>,
    since: Option<&str>,
) -> Result<Status, CliError> {
    let since = since.map(parse_since).transpose()?;
    let wanted = |r: &Record| {
        let action_ok = action.is_none_or(|a| {
            r.action == a
                || r.action
                    .strip_prefix(a)
                    .is_some_and(|rest| rest.starts_with('.'))
        });
        let time_ok =
            since.is_none_or(|s| OffsetDateTime::parse(&r.time, &Rfc3339).is_ok_and(|t| t >= s));
        action_ok && time_ok
    };
    let mut text = String::new();
    if ctx.format == Format::Human {
        text.push_str("SEQ    TIME                         ACTOR         ACTION                OUTCOME  SUBJECT\n");
    }
    for record in log.records()?.filter(wanted) {
        match ctx.format {
            Format::Json | Format::Sarif => {
                text.push_str(&record.to_line());
                text.push('\n');
            }
            Format::Human => {
                let subject = [
                    record.subject.path.as_deref(),
                    record.subject.digest.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
                text.push_str(&format!(
                    "{:<6} {:<28} {:<13} {:<21} {:<8} {}\n",
                    record.seq,
                    record.time,
                    record.actor,
                    record.action,
                    record.outcome.as_str(),
                    subject
                ));
            }
        }
        if text.len() > 64 * 1024 {
            output::product(&text)?;
            text.clear();
        }
    }
    output::product(&text)?;
    Ok(Status::Ok)
}
