//! `rampart data ingest`: the ingest service (`rampart-ingest`) with the flags as its request,
//! and its outcome printed.

use rampart_ingest::redact::RedactOverrides;
use rampart_ingest::{IngestOutcome, IngestRequest, RejectReason};
use serde_json::json;

use crate::cli::{Format, IngestArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use crate::report;

/// The request the flags describe.
pub fn request(args: &IngestArgs) -> Result<IngestRequest, CliError> {
    Ok(IngestRequest {
        path: args.path.clone(),
        schema: args.schema.clone(),
        signature: args.sig.clone(),
        expect_sha256: args.expect_sha256.clone(),
        allow_unsigned: args.allow_unsigned,
        max_reject_rate: args.max_reject_rate,
        max_row_bytes: args.max_row_bytes,
        redact: args.redact.then(|| RedactOverrides {
            default: args.redact_default.clone(),
            entities: args.redact_entity.clone(),
            columns: args.redact_column.clone(),
            recipients: Vec::new(),
        }),
        checks: args.checks,
        reference: args.reference.clone(),
        fail_on: args.fail_on,
    })
}

pub fn run(ctx: &Ctx, args: &IngestArgs) -> Result<Status, CliError> {
    ctx.home.require()?;
    let req = request(args)?;
    let policy = ctx.home.load_policy()?;
    if args.allow_unsigned {
        eprintln!(
            "WARNING: --allow-unsigned: {} is ingested even if it is neither signed nor pinned; \
             this is recorded in the audit log",
            args.path.display()
        );
    }
    let keys = crate::unlock::unlock(ctx, &args.unlock)?;
    let session = ctx.session(&policy)?;
    let outcome = rampart_ingest::ingest(&session, &req, &keys)?;
    match outcome {
        IngestOutcome::Rejected(r) => {
            match r.reason {
                RejectReason::RejectRate { rate, max } => {
                    report::validation(ctx, &args.path, &r.schema_digest, &r.report, None, None)?;
                    eprintln!(
                        "refused: {:.2}% of the rows were rejected, above --max-reject-rate {max}; nothing was stored",
                        rate * 100.0,
                    );
                }
                RejectReason::Checks { checks, threshold } => {
                    report::poison(ctx, &args.path, &checks, threshold)?;
                    eprintln!("refused: the poisoning checks fired; nothing was stored");
                }
            }
            Ok(Status::Findings)
        }
        IngestOutcome::Stored(i) => {
            let c = &i.committed;
            let name = i.integrity.name();
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "dataset": i.dataset(),
                    "path": c.data,
                    "manifest": c.manifest,
                    "integrity": name,
                    "already_stored": c.already_stored,
                    "report": i.report,
                }))?,
                Format::Human => {
                    report::validation(
                        ctx,
                        &args.path,
                        &i.manifest.schema.sha256,
                        &i.report,
                        None,
                        None,
                    )?;
                    output::print(&format!(
                        "integrity: {name}{}\nstored dataset {} → {}{}\n",
                        i.manifest
                            .source
                            .signed_by
                            .as_ref()
                            .map(|k| format!(" by {k}"))
                            .unwrap_or_default(),
                        i.dataset(),
                        c.data.display(),
                        if c.already_stored {
                            " (already there)"
                        } else {
                            ""
                        }
                    ))?;
                }
            }
            Ok(Status::Ok)
        }
    }
}
