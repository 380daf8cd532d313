//! `rampart encrypt | decrypt | rekey`: age files at rest, interoperable with the `age` CLI.

use rampart_audit::Action;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rampart_audit::Outcome;
use rampart_crypto::age_file::{self, Recipients};
use rampart_home::secure_fs;
use rampart_ingest::rekey;
use serde_json::json;

use crate::cli::{DecryptArgs, EncryptArgs, Format, RecipientArgs, RekeyArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status, age_err};
use crate::outfile::{is_stdio, write_output};
use crate::output;
use crate::unlock::{PASSPHRASE_ENV, required_passphrase, unlock};

/// The new passphrase for `rekey --passphrase`.
pub const NEW_PASSPHRASE_ENV: &str = "RAMPART_AGE_NEW_PASSPHRASE";
/// Fault injection for the crash tests: `rekey:written` or `rekey:verified` makes `rekey`
/// exit abruptly (code 86) at that step, as a crash or power cut would.
const FAULT_ENV: &str = "RAMPART_FAULT_INJECT";

fn recipients(
    ctx: &Ctx,
    args: &RecipientArgs,
    passphrase_file: Option<&Path>,
    passphrase_env: &str,
    default_home: bool,
) -> Result<Recipients, CliError> {
    if args.passphrase {
        return Ok(Recipients::Passphrase(required_passphrase(
            passphrase_file,
            passphrase_env,
        )?));
    }
    let mut list = args.recipients.clone();
    for f in &args.recipients_files {
        let text = secure_fs::read_small_file(f)?;
        list.extend(Recipients::parse_file(&text).map_err(|e| age_err(f, e))?);
    }
    if list.is_empty() && default_home {
        ctx.home.require().map_err(|e| {
            CliError::from(e).hint("pass -r age1… or --passphrase, or create a home")
        })?;
        list.push(ctx.home.age_identity()?.0.recipient());
    }
    Recipients::parse(&list).map_err(|e| age_err(Path::new("recipients"), e))
}

fn open_input(path: &Path) -> Result<Box<dyn Read + Send>, CliError> {
    if is_stdio(path) {
        return Ok(Box::new(io::stdin()));
    }
    let f = File::open(path).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot open {}", path.display())))
    })?;
    Ok(Box::new(age_file::buffered(f)))
}

pub fn encrypt(ctx: &Ctx, args: &EncryptArgs) -> Result<Status, CliError> {
    let to = recipients(
        ctx,
        &args.to,
        args.passphrase_file.as_deref(),
        PASSPHRASE_ENV,
        true,
    )?;
    let out = match &args.output {
        Some(o) => o.clone(),
        None if is_stdio(&args.path) => PathBuf::from("-"),
        None => with_suffix(&args.path, ".age"),
    };
    let mut input = open_input(&args.path)?;
    let (bytes, digest) = write_output(&out, args.force, |w| {
        age_file::encrypt(&mut input, w, &to, args.to.armor).map_err(|e| age_err(&args.path, e))
    })?;
    ctx.audit(
        ctx.event(Action::Encrypt, Outcome::Ok)
            .subject_path(args.path.display().to_string())
            .subject_digest(digest.reference())
            .detail("output", out.display().to_string())
            .detail("recipients", to.describe().join(", "))
            .detail("bytes", bytes),
    )?;
    report(ctx, "encrypted", &args.path, &out, bytes, &to.describe())
}

pub fn decrypt(ctx: &Ctx, args: &DecryptArgs) -> Result<Status, CliError> {
    let keys = unlock(ctx, &args.unlock)?;
    let out = match &args.output {
        Some(o) => o.clone(),
        None if is_stdio(&args.path) => PathBuf::from("-"),
        None => strip_age(&args.path).ok_or_else(|| {
            CliError::input(anyhow::anyhow!(
                "{} does not end in .age: say where the plaintext goes",
                args.path.display()
            ))
            .hint("pass -o OUT (or -o - for standard output)")
        })?,
    };
    let input = open_input(&args.path)?;
    let result = write_output(&out, args.force, |w| {
        age_file::decrypt(input, w, &keys).map_err(|e| age_err(&args.path, e))
    });
    let (bytes, digest) = match result {
        Ok(v) => v,
        Err(e) => {
            ctx.audit_refusal(
                ctx.event(Action::Decrypt, Outcome::Failed)
                    .subject_path(args.path.display().to_string())
                    .detail("reason", e.message()),
            );
            return Err(e);
        }
    };
    ctx.audit(
        ctx.event(Action::Decrypt, Outcome::Ok)
            .subject_path(args.path.display().to_string())
            .subject_digest(digest.reference())
            .detail("output", out.display().to_string())
            .detail("bytes", bytes),
    )?;
    report(ctx, "decrypted", &args.path, &out, bytes, &[])
}

pub fn rekey(ctx: &Ctx, args: &RekeyArgs) -> Result<Status, CliError> {
    let keys = unlock(ctx, &args.unlock)?;
    let to = recipients(
        ctx,
        &args.to,
        args.new_passphrase_file.as_deref(),
        NEW_PASSPHRASE_ENV,
        false,
    )
    .map_err(|e| e.hint("name the new recipients with -r age1… / -R FILE, or --passphrase"))?;
    let policy = ctx.policy_or_default()?;
    let path = &args.path;
    let done = rekey::rekey(
        &ctx.session(&policy)?,
        path,
        &keys,
        &to,
        args.to.armor,
        &mut |step| {
            fault(match step {
                rekey::Step::Written => "rekey:written",
                rekey::Step::Verified => "rekey:verified",
            });
        },
    )?;
    let bytes = done.bytes;
    report(ctx, "re-encrypted", path, path, bytes, &to.describe())
}

fn fault(point: &str) {
    if std::env::var(FAULT_ENV).is_ok_and(|v| v == point) {
        eprintln!("rampart: fault injected at {point}");
        std::process::exit(86);
    }
}

fn report(
    ctx: &Ctx,
    what: &str,
    input: &Path,
    out: &Path,
    bytes: u64,
    recipients: &[String],
) -> Result<Status, CliError> {
    if is_stdio(out) {
        return Ok(Status::Ok);
    }
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            what: input, "output": out, "bytes": bytes, "recipients": recipients,
        }))?,
        Format::Human => {
            let to = if recipients.is_empty() {
                String::new()
            } else {
                format!(" for {}", recipients.join(", "))
            };
            output::print(&format!(
                "{what} {} → {} ({}){to}\n",
                input.display(),
                out.display(),
                output::bytes(bytes)
            ))?;
        }
    }
    Ok(Status::Ok)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn strip_age(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".age")?;
    (!stem.is_empty()).then(|| path.with_file_name(stem))
}
