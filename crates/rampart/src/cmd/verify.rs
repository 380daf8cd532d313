//! `rampart verify`.

use rampart_crypto::oms::{OmsError, VerifyOptions};
use rampart_home::verify::{self, Trust, TrustFiles, Verification};
use serde_json::json;

use crate::cli::{Format, VerifyArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &VerifyArgs, quiet: bool) -> Result<Status, CliError> {
    let sig = args
        .sig
        .clone()
        .unwrap_or_else(|| rampart_crypto::oms::default_signature_path(&args.path));
    // A certificate bundle is checked against its roots, a Sigstore bundle against the
    // trusted root and the identity asked for; keys are for key bundles. None given: the
    // home's trusted keys, certificate authorities and Sigstore identities.
    let sigstore = match (args.sigstore, &args.identity, &args.issuer) {
        (true, Some(identity), Some(issuer)) => Some((
            identity.as_str(),
            issuer.as_str(),
            args.trusted_root.as_deref(),
        )),
        _ => None,
    };
    let files = TrustFiles {
        keys: &args.key,
        cert_chain: &args.cert_chain,
        sigstore,
    };
    let trust = Trust::from_files(&ctx.home, &files)?;
    let mut opts = VerifyOptions::new(&sig);
    opts.ignore.clone_from(&args.ignore);
    opts.ignore_unsigned_files = args.ignore_unsigned_files;
    opts.ignore_git_paths = !args.no_ignore_git;
    opts.allow_symlinks = args.allow_symlinks.then_some(true);
    let policy = ctx.policy_or_default()?;
    let bar = output::progress(quiet, "verifying");
    let result = verify::verify_model(&ctx.session(&policy)?, &args.path, trust, opts, &|n| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let path_text = args.path.display().to_string();
    match result? {
        Verification::Verified(v) => {
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "verified": true,
                    "path": path_text,
                    "subject": {"name": v.signed.subject_name, "sha256": v.signed.subject_digest.to_hex()},
                    "key": v.key.to_string(),
                    "certificate_path": v.certificate_path,
                    "sigstore": v.sigstore.as_ref().map(|s| json!({
                        "identity": s.identity.identity,
                        "issuer": s.identity.issuer,
                        "log": s.log_url,
                        "log_index": s.log_index,
                        "integrated_time": s.integrated_time,
                        "certificate_path": s.path,
                    })),
                    "files": v.files,
                    "bytes": v.bytes,
                    "ignored": v.ignored,
                }))?,
                Format::Human => output::print(&format!(
                    "verified {path_text}: {} files, {}, signed by {}{}\n",
                    v.files,
                    output::bytes(v.bytes),
                    v.key,
                    v.certificate_path
                        .as_ref()
                        .map(|p| format!(" (certificate {})", p.join(" ← ")))
                        .or_else(|| v.sigstore.as_ref().map(|s| format!(
                            " (Sigstore: {}, logged at {} as entry {} of {})",
                            s.identity, s.integrated_time, s.log_index, s.log_url
                        )))
                        .unwrap_or_default()
                ))?,
            }
            Ok(Status::Ok)
        }
        Verification::Failed(e) => {
            let (modified, added, removed) = match &e {
                OmsError::Mismatch {
                    modified,
                    added,
                    removed,
                } => (modified.clone(), added.clone(), removed.clone()),
                _ => Default::default(),
            };
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "verified": false,
                    "path": path_text,
                    "error": e.to_string(),
                    "modified": modified,
                    "added": added,
                    "removed": removed,
                }))?,
                Format::Human => {
                    let mut text =
                        format!("verification FAILED for {path_text}: {}\n", headline(&e));
                    for (what, list) in [
                        ("modified", &modified),
                        ("added", &added),
                        ("removed", &removed),
                    ] {
                        for name in list {
                            text.push_str(&format!("  {what:<9} {name}\n"));
                        }
                    }
                    output::print(&text)?;
                }
            }
            Ok(Status::Findings)
        }
    }
}

fn headline(e: &OmsError) -> String {
    match e {
        OmsError::Mismatch { .. } => "the files do not match the signature".into(),
        other => other.to_string(),
    }
}
