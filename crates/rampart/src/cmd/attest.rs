//! `rampart attest verify`.

use rampart_home::verify::{self, Attestation, Trust, TrustFiles};
use serde_json::json;

use crate::cli::{AttestArgs, AttestCommand, Format};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &AttestArgs) -> Result<Status, CliError> {
    let AttestCommand::Verify { file, key, subject } = &args.command;
    let files = TrustFiles {
        keys: key,
        ..TrustFiles::default()
    };
    let trust = Trust::from_files(&ctx.home, &files)?;
    let subject_digest = match subject {
        Some(p) => Some(
            rampart_crypto::oms::manifest(
                p,
                rampart_crypto::oms::Method::Files,
                &Default::default(),
                false,
                &|_| {},
            )
            .map_err(|e| {
                CliError::input(
                    anyhow::Error::new(e).context(format!("cannot hash {}", p.display())),
                )
            })
            .and_then(|m| {
                m.resources
                    .first()
                    .map(|r| r.digest)
                    .filter(|_| m.resources.len() == 1)
                    .ok_or_else(|| {
                        CliError::input(anyhow::anyhow!(
                            "--subject must be a file: {}",
                            p.display()
                        ))
                    })
            })?,
        ),
        None => None,
    };
    let file_text = file.display().to_string();
    let policy = ctx.policy_or_default()?;
    let result =
        verify::verify_attestation(&ctx.session(&policy)?, file, trust, subject_digest.as_ref())?;
    match result {
        Attestation::Verified(v) => {
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "verified": true,
                    "key": v.key.to_string(),
                    "predicate_type": v.predicate_type,
                    "builder": v.builder_id,
                    "build_type": v.build_type,
                    "subjects": v.subjects.iter().map(|s| json!({"name": s.name, "sha256": s.digest.to_hex()})).collect::<Vec<_>>(),
                    "dependencies": v.dependencies.iter().map(|s| json!({"name": s.name, "sha256": s.digest.to_hex(), "uri": s.uri})).collect::<Vec<_>>(),
                }))?,
                Format::Human => {
                    let mut text = format!(
                        "verified {file_text}: {} signed by {}\n",
                        v.predicate_type, v.key
                    );
                    if let Some(b) = &v.builder_id {
                        text.push_str(&format!("  builder     {b}\n"));
                    }
                    for s in &v.subjects {
                        text.push_str(&format!("  subject     {} sha256:{}\n", s.name, s.digest));
                    }
                    for d in &v.dependencies {
                        text.push_str(&format!("  dependency  {} sha256:{}\n", d.name, d.digest));
                    }
                    output::print(&text)?;
                }
            }
            Ok(Status::Ok)
        }
        Attestation::Failed(reason) => {
            match ctx.format {
                Format::Json | Format::Sarif => {
                    output::print_json(&json!({"verified": false, "error": reason}))?;
                }
                Format::Human => {
                    output::print(&format!("verification FAILED for {file_text}: {reason}\n"))?;
                }
            }
            Ok(Status::Findings)
        }
    }
}
