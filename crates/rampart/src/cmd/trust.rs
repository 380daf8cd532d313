//! `rampart trust add | list | remove`.

use rampart_audit::Outcome;
use rampart_crypto::PublicKey;
use serde_json::json;

use crate::cli::{Format, TrustArgs, TrustCommand};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &TrustArgs) -> Result<Status, CliError> {
    match &args.command {
        TrustCommand::Add { pubkey, name } => {
            let text = rampart_home::secure_fs::read_small_file(pubkey)?;
            let key = PublicKey::from_pem(&text).map_err(|e| {
                CliError::input(
                    anyhow::Error::new(e).context(format!("cannot use {}", pubkey.display())),
                )
                .hint("export a key with `rampart keys export-public` or `openssl ec -pubout`")
            })?;
            let name = name.clone().unwrap_or_else(|| {
                pubkey.file_stem().map_or_else(
                    || "key".into(),
                    |s| s.to_string_lossy().trim_end_matches(".pub").to_owned(),
                )
            });
            let added = ctx.recorded(|rec| {
                ctx.home.trust_add(&name, &key, &mut |entry| {
                    rec.write(
                        ctx.event("trust.add", Outcome::Ok)
                            .subject_path(pubkey.display().to_string())
                            .subject_digest(entry.fingerprint.clone())
                            .detail("name", entry.name.clone()),
                    )
                })
            });
            match added {
                Ok(entry) => print_one(ctx, "trusted", &entry)?,
                Err(e) => {
                    ctx.audit_refusal(
                        ctx.event("trust.add", Outcome::Denied)
                            .subject_path(pubkey.display().to_string())
                            .subject_digest(key.fingerprint().to_string())
                            .detail("reason", e.message()),
                    );
                    return Err(e);
                }
            }
        }
        TrustCommand::Remove { key } => {
            let entry = ctx.recorded(|rec| {
                ctx.home.trust_remove(key, &mut |entry| {
                    rec.write(
                        ctx.event("trust.remove", Outcome::Ok)
                            .subject_digest(entry.fingerprint.clone())
                            .detail("name", entry.name.clone()),
                    )
                })
            })?;
            print_one(ctx, "removed", &entry)?;
        }
        TrustCommand::List => {
            let policy = ctx.home.load_policy()?;
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "keys": policy.trust.keys.iter().map(|k| json!({"name": k.name, "fingerprint": k.fingerprint})).collect::<Vec<_>>(),
                }))?,
                Format::Human => {
                    let width = policy
                        .trust
                        .keys
                        .iter()
                        .map(|k| k.name.len())
                        .max()
                        .unwrap_or(4)
                        .max(4);
                    let mut text = format!("{:width$}  FINGERPRINT\n", "NAME");
                    for k in &policy.trust.keys {
                        text.push_str(&format!("{:width$}  {}\n", k.name, k.fingerprint));
                    }
                    if policy.trust.keys.is_empty() {
                        text = "no trusted keys: signatures cannot be verified until you `rampart trust add KEY.pem`\n".into();
                    }
                    output::product(&text)?;
                }
            }
        }
    }
    Ok(Status::Ok)
}

fn print_one(ctx: &Ctx, verb: &str, entry: &rampart_home::TrustedKey) -> Result<(), CliError> {
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(
            &json!({verb: {"name": entry.name, "fingerprint": entry.fingerprint}}),
        ),
        Format::Human => output::print(&format!("{verb} {} {}\n", entry.name, entry.fingerprint)),
    }
}
