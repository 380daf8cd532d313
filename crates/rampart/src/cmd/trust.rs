//! `rampart trust add | add-identity | sigstore-root | list | remove`: parses, calls
//! `rampart_home::trust` (which audits every change and refusal), prints.

use rampart_crypto::PublicKey;
use rampart_home::trust::{self, Removed};
use serde_json::json;

use crate::cli::{Format, TrustArgs, TrustCommand};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &TrustArgs) -> Result<Status, CliError> {
    let policy = ctx.home.load_policy()?;
    let s = ctx.session(&policy)?;
    match &args.command {
        TrustCommand::Add { pubkey, name } if is_certificate(pubkey) => {
            let text = rampart_home::secure_fs::read_small_file(pubkey)?;
            let name = name.clone().unwrap_or_else(|| {
                pubkey
                    .file_stem()
                    .map_or_else(|| "ca".into(), |s| s.to_string_lossy().into_owned())
            });
            for entry in trust::add_certificates(&s, &name, &text, pubkey)? {
                print_named(ctx, "trusted", &entry.name, &entry.fingerprint)?;
            }
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
            let entry = trust::add_key(&s, &name, &key, pubkey)?;
            print_named(ctx, "trusted", &entry.name, &entry.fingerprint)?;
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
            let entry = trust::add_identity(&s, &name, &id)?;
            print_named(ctx, "trusted", &entry.name, &id.to_string())?;
        }
        TrustCommand::SigstoreRoot { file } => {
            let text = rampart_home::secure_fs::read_small_file(file)?;
            let (root, digest) = trust::set_sigstore_root(&s, text.as_bytes(), file)
                .map_err(|e| {
                    CliError::from(e).hint("pass a Sigstore trusted_root.json (media type application/vnd.dev.sigstore.trustedroot+json)")
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
        TrustCommand::Remove { key } => match trust::remove(&s, key)? {
            Removed::Key(e) => print_named(ctx, "removed", &e.name, &e.fingerprint)?,
            Removed::Certificate(e) => print_named(ctx, "removed", &e.name, &e.fingerprint)?,
            Removed::Identity(e) => {
                print_named(ctx, "removed", &e.name, &e.to_identity().to_string())?;
            }
        },
        TrustCommand::List => list(ctx, &policy)?,
    }
    Ok(Status::Ok)
}

fn list(ctx: &Ctx, policy: &rampart_home::Policy) -> Result<(), CliError> {
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
    Ok(())
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
