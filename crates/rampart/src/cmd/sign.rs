//! `rampart sign`.

use std::path::{Path, PathBuf};

use rampart_crypto::SigningKey;
use rampart_crypto::oms::{Method, SignOptions};
use rampart_home::sign::Signed;
use serde_json::json;

use crate::cli::{Format, SignArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

/// The signature path model_signing users expect: `DIR/model.sig` or `FILE.sig`.
pub fn default_sig(path: &Path) -> PathBuf {
    rampart_crypto::oms::default_signature_path(path)
}

/// The signing key from `--key FILE` (permission-checked) or the home.
fn load_key(ctx: &Ctx, key: Option<&Path>) -> Result<(SigningKey, String), CliError> {
    if let Some(path) = key {
        let text = rampart_home::secure_fs::read_private_file(path)?;
        let key = SigningKey::from_pem(&text).map_err(|e| {
            CliError::input(
                anyhow::Error::new(e)
                    .context(format!("cannot use {} as a signing key", path.display())),
            )
        })?;
        return Ok((key, path.display().to_string()));
    }
    ctx.home.require().map_err(|e| {
        CliError::from(e).hint("pass --key FILE, or create a home with `rampart init`")
    })?;
    let (key, source) = ctx.home.signing_key()?;
    Ok((key, source.to_string()))
}

pub fn run(ctx: &Ctx, args: &SignArgs, quiet: bool) -> Result<Status, CliError> {
    let (key, _source) = load_key(ctx, args.key.as_deref())?;
    let sig = args.sig.clone().unwrap_or_else(|| default_sig(&args.path));
    let mut opts = SignOptions::new(&sig);
    opts.ignore.clone_from(&args.ignore);
    opts.ignore_git_paths = !args.no_ignore_git;
    opts.allow_symlinks = args.allow_symlinks;
    for f in args.cert.iter().chain(&args.cert_chain) {
        let text = rampart_home::secure_fs::read_small_file(f)?;
        opts.certificate_chain
            .extend(
                rampart_crypto::x509::certificates_from_pem(&text).map_err(|e| {
                    CliError::input(
                        anyhow::Error::new(e)
                            .context(format!("cannot read certificates from {}", f.display())),
                    )
                })?,
            );
    }
    if args.sharded {
        if args.shard_size == 0 {
            return Err(CliError::input(anyhow::anyhow!(
                "--shard-size must be positive"
            )));
        }
        opts.method = Method::Shards {
            shard_size: args.shard_size,
        };
        tracing::warn!(
            "sharded signatures verify with rampart and the model_signing Python API, not with the model_signing CLI"
        );
    }
    let policy = ctx.policy_or_default()?;
    let bar = output::progress(quiet, "hashing");
    let result =
        rampart_home::sign::sign_model(&ctx.session(&policy)?, &args.path, &key, &opts, &|n| {
            if let Some(b) = &bar {
                b.inc(n);
            }
        });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let path_text = args.path.display().to_string();
    let Signed { signed, method } = result?;
    let m = &signed.manifest;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "path": path_text,
            "signature": sig,
            "subject": {"name": m.subject_name, "sha256": m.root.to_hex()},
            "key": signed.key.to_string(),
            "method": method,
            "files": m.files,
            "bytes": m.bytes,
            "ignored": m.ignored,
        }))?,
        Format::Human => output::print(&format!(
            "signed {path_text}: {} files, {}, root sha256:{}\n  key        {}\n  signature  {}\n",
            m.files,
            output::bytes(m.bytes),
            m.root,
            signed.key,
            sig.display()
        ))?,
    }
    Ok(Status::Ok)
}
