//! `rampart keys show | export-public`.

use rampart_home::trust;
use serde_json::json;

use crate::cli::{Format, KeysArgs, KeysCommand};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &KeysArgs) -> Result<Status, CliError> {
    ctx.home.require()?;
    match &args.command {
        KeysCommand::Show => show(ctx),
        KeysCommand::ExportPublic { age, output } => export(ctx, *age, output.as_deref()),
    }
}

fn show(ctx: &Ctx) -> Result<Status, CliError> {
    // Load each private key only to report whether it is usable; nothing of it is printed.
    let signing = ctx.home.signing_key();
    let age = ctx.home.age_identity();
    let public = match &signing {
        Ok((key, _)) => key.public_key(),
        Err(_) => ctx.home.signing_public_key()?,
    };
    let (signing_source, signing_status) = status(&signing);
    let (age_source, age_status) = status(&age);
    let recipient = age.as_ref().map(|(id, _)| id.recipient()).ok().or_else(|| {
        std::fs::read_to_string(ctx.home.age_recipient_path())
            .ok()
            .map(|s| s.trim().to_owned())
    });
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "signing_key": {
                "algorithm": public.curve().algorithm(),
                "fingerprint": public.fingerprint().to_string(),
                "public_key_file": ctx.home.signing_public_key_path(),
                "private_key_source": signing_source,
                "status": signing_status,
            },
            "age_identity": {
                "recipient": recipient,
                "private_key_source": age_source,
                "status": age_status,
            },
        }))?,
        Format::Human => output::product(&format!(
            "signing key   ECDSA {} {}\n  public      {}\n  private     {signing_source} ({signing_status})\n\
             age identity  {}\n  private     {age_source} ({age_status})\n",
            public.curve(),
            public.fingerprint(),
            ctx.home.signing_public_key_path().display(),
            recipient.as_deref().unwrap_or("unknown"),
        ))?,
    }
    // Fail closed: a key that exists but may not be used (loose permissions, foreign owner,
    // unparseable) is an error to fix now, not at the next signature.
    for err in [signing.err(), age.err()].into_iter().flatten() {
        if !matches!(err, rampart_home::HomeError::MissingKey { .. }) {
            return Err(err.into());
        }
    }
    Ok(Status::Ok)
}

fn status<T>(
    loaded: &Result<(T, rampart_home::KeySource), rampart_home::HomeError>,
) -> (String, String) {
    match loaded {
        Ok((_, source)) => (source.to_string(), "ok".into()),
        Err(e) => ("unavailable".into(), e.to_string()),
    }
}

fn export(ctx: &Ctx, age: bool, output: Option<&std::path::Path>) -> Result<Status, CliError> {
    match output {
        Some(path) => trust::export_public(&ctx.home, &ctx.auditor()?, age, path)?,
        None => output::product(&trust::public_key_text(&ctx.home, age)?)?,
    }
    Ok(Status::Ok)
}
