//! `rampart init`.

use rampart_audit::Action;
use rampart_audit::Outcome;
use rampart_home::HomeError;
use serde_json::json;

use crate::cli::{Format, InitArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, _args: &InitArgs) -> Result<Status, CliError> {
    let root = ctx.home.root().display().to_string();
    let report = match ctx.home.init() {
        Ok(report) => report,
        Err(e @ HomeError::AlreadyInitialised { .. }) => {
            ctx.audit_refusal(
                ctx.event(Action::HomeInit, Outcome::Denied)
                    .subject_path(&root)
                    .detail("reason", "already initialised; keys are never overwritten"),
            );
            return Err(CliError::from(e).hint(
                "use this home as it is, or choose another with --home DIR; to rotate keys, move the old keys/ away first",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    report.record(&ctx.auditor()?, None)?;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "home": root,
            "signing_key": {
                "fingerprint": report.signing_fingerprint.to_string(),
                "public_key_file": ctx.home.signing_public_key_path(),
            },
            "age_recipient": report.age_recipient,
            "policy": ctx.home.policy_path(),
            "policy_written": report.policy_written,
        }))?,
        Format::Human => {
            let policy_line = if report.policy_written {
                format!(
                    "policy       {} (trusts the new signing key as \"home\")",
                    ctx.home.policy_path().display()
                )
            } else {
                format!(
                    "policy       {} (existing file kept)",
                    ctx.home.policy_path().display()
                )
            };
            output::print(&format!(
                "Initialised rampart home at {root}\n\
                 signing key  {}  ({}, private key 0600)\n\
                 age identity {}  ({})\n\
                 {policy_line}\n\
                 audit log    {}\n",
                report.signing_fingerprint,
                ctx.home.signing_public_key_path().display(),
                report.age_recipient,
                ctx.home.age_identity_path().display(),
                ctx.home.audit_dir().join("audit.jsonl").display(),
            ))?;
        }
    }
    Ok(Status::Ok)
}
