//! `rampart audit verify | show`.

use rampart_audit::AuditLog;
use rampart_home::audit;

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
        AuditCommand::Verify { anchor } => verify(ctx, log, *anchor),
        AuditCommand::Show { action, since } => show(ctx, log, action.as_deref(), since.as_deref()),
    }
}

fn verify(ctx: &Ctx, log: &AuditLog, anchored: bool) -> Result<Status, CliError> {
    let policy = ctx.home.load_policy()?;
    let mut report = audit::verify_log(&ctx.session(&policy)?, log)?;
    let anchor = if anchored && report.failure.is_none() {
        let a = audit::verify_anchor(&ctx.session(&policy)?, log)?;
        report.failure.clone_from(&a.failure);
        Some(a)
    } else {
        None
    };
    if report.failure.is_some() {
        // Sealing a tampered log would vouch for the damage.
        ctx.dont_seal();
    }
    match ctx.format {
        Format::Json | Format::Sarif => match &anchor {
            Some(a) => output::print_json(&serde_json::json!({"log": report, "anchor": a}))?,
            None => output::print_json(&report)?,
        },
        Format::Human => {
            let anchored = anchor.as_ref().map_or_else(String::new, |a| {
                format!(
                    "; matches the {} checkpoints anchored (newest seq {})",
                    a.anchored,
                    a.last_anchored_seq.unwrap_or(0)
                )
            });
            let text = match &report.failure {
                None => format!(
                    "audit log intact: {} records, {} signed checkpoints, head seq {}{}{anchored}\n",
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

fn show(
    ctx: &Ctx,
    log: &AuditLog,
    action: Option<&str>,
    since: Option<&str>,
) -> Result<Status, CliError> {
    let filter = audit::Filter::new(action, since)?;
    let mut text = String::new();
    if ctx.format == Format::Human {
        text.push_str("SEQ    TIME                         ACTOR         ACTION                OUTCOME  SUBJECT\n");
    }
    for record in log.records()?.filter(|r| filter.matches(r)) {
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
