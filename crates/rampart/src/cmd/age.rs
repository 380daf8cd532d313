//! `rampart encrypt | decrypt | rekey`: age files at rest, interoperable with the `age` CLI.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rampart_crypto::age_file::{self, Recipients};
use rampart_ingest::{crypt, rekey};
use serde_json::json;

use crate::cli::{DecryptArgs, EncryptArgs, Format, RecipientArgs, RekeyArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
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
    crypt::recipients(
        &ctx.home,
        &args.recipients,
        &args.recipients_files,
        default_home,
    )
    .map_err(|e| {
        let missing_home = matches!(e, rampart_ingest::IngestError::Home(_));
        let e = CliError::from(e);
        if missing_home {
            e.hint("pass -r age1… or --passphrase, or create a home")
        } else {
            e
        }
    })
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
    let policy = ctx.policy_or_default()?;
    let s = ctx.session(&policy)?;
    let (bytes, _) = write_output(&out, args.force, |w| {
        let done = crypt::encrypt(&s, (&args.path, &mut input), (&out, w), &to, args.to.armor)?;
        Ok(done)
    })?;
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
    let policy = ctx.policy_or_default()?;
    let s = ctx.session(&policy)?;
    let (bytes, _) = write_output(&out, args.force, |w| {
        Ok(crypt::decrypt(&s, (&args.path, input), (&out, w), &keys)?)
    })?;
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
