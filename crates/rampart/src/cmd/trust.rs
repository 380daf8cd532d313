//! `rampart trust add | add-identity | sigstore-root | list | remove`.

use rampart_audit::Action;
use rampart_audit::Outcome;
use rampart_crypto::PublicKey;
use serde_json::json;

use crate::cli::{Format, TrustArgs, TrustCommand};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &TrustArgs) -> Result<Status, CliError> {
    match &args.command {
        TrustCommand::Add { pubkey, name } if is_certificate(pubkey) => {
            add_certificate(ctx, pubkey, name.as_deref())?;
        }
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
                        ctx.event(Action::TrustAdd, Outcome::Ok)
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
                        ctx.event(Action::TrustAdd, Outcome::Denied)
                            .subject_path(pubkey.display().to_string())
                            .subject_digest(key.fingerprint().to_string())
                            .detail("reason", e.message()),
                    );
                    return Err(e);
                }
            }
        }
        TrustCommand::AddIdentity {
            identity,
            issuer,
            name,
        } => {
            let id = rampart_crypto::sigstore::Identity {
                identity: identity.clone(),
                issuer: issuer.clone(),
            };
            let name = name.clone().unwrap_or_else(|| identity.clone());
            let added = ctx.recorded(|rec| {
                ctx.home.trust_add_identity(&name, &id, &mut |entry| {
                    rec.write(
                        ctx.event(Action::TrustAdd, Outcome::Ok)
                            .detail("name", entry.name.clone())
                            .detail("sigstore_identity", entry.identity.clone())
                            .detail("issuer", entry.issuer.clone()),
                    )
                })
            });
            match added {
                Ok(entry) => print_named(ctx, "trusted", &entry.name, &id.to_string())?,
                Err(e) => {
                    ctx.audit_refusal(
                        ctx.event(Action::TrustAdd, Outcome::Denied)
                            .detail("sigstore_identity", identity.clone())
                            .detail("issuer", issuer.clone())
                            .detail("reason", e.message()),
                    );
                    return Err(e);
                }
            }
        }
        TrustCommand::SigstoreRoot { file } => {
            let text = rampart_home::secure_fs::read_small_file(file)?;
            let digest = format!(
                "sha256:{}",
                rampart_crypto::sha256(text.as_bytes()).to_hex()
            );
            let root = ctx
                .recorded(|rec| {
                    ctx.home.set_sigstore_root(text.as_bytes(), &mut |root| {
                        rec.write(
                            ctx.event(Action::TrustSigstoreRoot, Outcome::Ok)
                                .subject_path(file.display().to_string())
                                .subject_digest(digest.clone())
                                .detail("root", root.describe()),
                        )
                    })
                })
                .map_err(|e| {
                    e.hint("pass a Sigstore trusted_root.json (media type application/vnd.dev.sigstore.trustedroot+json)")
                })?;
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "sigstore_root": {"sha256": digest, "holds": root.describe()},
                }))?,
                Format::Human => output::print(&format!(
                    "installed the Sigstore trusted root {digest}: {}\n",
                    root.describe()
                ))?,
            }
        }
        TrustCommand::Remove { key }
            if ctx
                .home
                .load_policy()?
                .trust
                .sigstore
                .iter()
                .any(|t| &t.name == key || &t.identity == key) =>
        {
            let entry = ctx.recorded(|rec| {
                ctx.home.trust_remove_identity(key, &mut |entry| {
                    rec.write(
                        ctx.event(Action::TrustRemove, Outcome::Ok)
                            .detail("name", entry.name.clone())
                            .detail("sigstore_identity", entry.identity.clone())
                            .detail("issuer", entry.issuer.clone()),
                    )
                })
            })?;
            print_named(
                ctx,
                "removed",
                &entry.name,
                &entry.to_identity().to_string(),
            )?;
        }
        TrustCommand::Remove { key }
            if ctx.home.load_policy()?.trust.certificates.iter().any(|c| {
                &c.name == key
                    || c.fingerprint == format!("sha256:{}", key.trim_start_matches("sha256:"))
            }) =>
        {
            let entry = ctx.recorded(|rec| {
                ctx.home.trust_remove_certificate(key, &mut |entry| {
                    rec.write(
                        ctx.event(Action::TrustRemove, Outcome::Ok)
                            .subject_digest(entry.fingerprint.clone())
                            .detail("name", entry.name.clone())
                            .detail("certificate", entry.subject.clone()),
                    )
                })
            })?;
            print_named(ctx, "removed", &entry.name, &entry.fingerprint)?;
        }
        TrustCommand::Remove { key } => {
            let entry = ctx.recorded(|rec| {
                ctx.home.trust_remove(key, &mut |entry| {
                    rec.write(
                        ctx.event(Action::TrustRemove, Outcome::Ok)
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
                    "certificates": policy.trust.certificates.iter().map(|c| json!({"name": c.name, "fingerprint": c.fingerprint, "subject": c.subject})).collect::<Vec<_>>(),
                    "sigstore": policy.trust.sigstore.iter().map(|t| json!({"name": t.name, "identity": t.identity, "issuer": t.issuer})).collect::<Vec<_>>(),
                }))?,
                Format::Human => {
                    let width = policy
                        .trust
                        .keys
                        .iter()
                        .map(|k| k.name.len())
                        .chain(policy.trust.certificates.iter().map(|c| c.name.len()))
                        .chain(policy.trust.sigstore.iter().map(|t| t.name.len()))
                        .max()
                        .unwrap_or(4)
                        .max(4);
                    let mut text = format!("{:width$}  FINGERPRINT\n", "NAME");
                    for k in &policy.trust.keys {
                        text.push_str(&format!("{:width$}  {}\n", k.name, k.fingerprint));
                    }
                    for c in &policy.trust.certificates {
                        text.push_str(&format!(
                            "{:width$}  {}  certificate authority {}\n",
                            c.name, c.fingerprint, c.subject
                        ));
                    }
                    for t in &policy.trust.sigstore {
                        text.push_str(&format!(
                            "{:width$}  sigstore identity {} (issuer {})\n",
                            t.name, t.identity, t.issuer
                        ));
                    }
                    if policy.trust.keys.is_empty()
                        && policy.trust.certificates.is_empty()
                        && policy.trust.sigstore.is_empty()
                    {
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
    print_named(ctx, verb, &entry.name, &entry.fingerprint)
}

fn print_named(ctx: &Ctx, verb: &str, name: &str, fingerprint: &str) -> Result<(), CliError> {
    match ctx.format {
        Format::Json | Format::Sarif => {
            output::print_json(&json!({verb: {"name": name, "fingerprint": fingerprint}}))
        }
        Format::Human => output::print(&format!("{verb} {name} {fingerprint}\n")),
    }
}

/// Whether the file is a PEM certificate (else it is read as a public key).
fn is_certificate(path: &std::path::Path) -> bool {
    rampart_home::secure_fs::read_small_file(path)
        .is_ok_and(|t| t.contains("-----BEGIN CERTIFICATE-----"))
}

/// `trust add CA.pem`: every certificate in the file becomes a trusted authority (one file,
/// one name: a second certificate gets `NAME-2`, …).
fn add_certificate(ctx: &Ctx, file: &std::path::Path, name: Option<&str>) -> Result<(), CliError> {
    let text = rampart_home::secure_fs::read_small_file(file)?;
    let certs = rampart_crypto::x509::certificates_from_pem(&text).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot use {}", file.display())))
    })?;
    let base = name.map_or_else(
        || {
            file.file_stem()
                .map_or_else(|| "ca".into(), |s| s.to_string_lossy().into_owned())
        },
        str::to_owned,
    );
    for (i, der) in certs.iter().enumerate() {
        let name = if i == 0 {
            base.clone()
        } else {
            format!("{base}-{}", i + 1)
        };
        let added = ctx.recorded(|rec| {
            ctx.home.trust_add_certificate(&name, der, &mut |entry| {
                rec.write(
                    ctx.event(Action::TrustAdd, Outcome::Ok)
                        .subject_path(file.display().to_string())
                        .subject_digest(entry.fingerprint.clone())
                        .detail("name", entry.name.clone())
                        .detail("certificate", entry.subject.clone()),
                )
            })
        });
        match added {
            Ok(entry) => print_named(ctx, "trusted", &entry.name, &entry.fingerprint)?,
            Err(e) => {
                ctx.audit_refusal(
                    ctx.event(Action::TrustAdd, Outcome::Denied)
                        .subject_path(file.display().to_string())
                        .detail("reason", e.message()),
                );
                return Err(e);
            }
        }
    }
    Ok(())
}
