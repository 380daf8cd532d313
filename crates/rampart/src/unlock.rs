//! The keys a command has at hand to decrypt age files: the home's identity, `-i` files, and a
//! passphrase from a 0600 file or the environment; and dataset files opened with them.

use std::path::Path;

use rampart_crypto::age_file::{self, SecretString, Unlock};
use rampart_home::secure_fs;

use crate::cli::UnlockArgs;
use crate::context::Ctx;
use crate::error::{CliError, age_err};

/// The environment variable holding a passphrase (the only place besides a 0600 file).
pub const PASSPHRASE_ENV: &str = "RAMPART_AGE_PASSPHRASE";
/// A passphrase from a 0600 file or the environment, zeroized on drop.
pub fn read_passphrase(file: Option<&Path>, env: &str) -> Result<Option<SecretString>, CliError> {
    if let Some(f) = file {
        let text = secure_fs::read_private_file(f)?;
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            return Err(CliError::input(anyhow::anyhow!(
                "{}: the passphrase file is empty",
                f.display()
            )));
        }
        return Ok(Some(SecretString::from(line.to_owned())));
    }
    match std::env::var(env) {
        Ok(p) if !p.is_empty() => Ok(Some(SecretString::from(p))),
        _ => Ok(None),
    }
}

pub fn required_passphrase(file: Option<&Path>, env: &str) -> Result<SecretString, CliError> {
    read_passphrase(file, env)?.ok_or_else(|| {
        CliError::input(anyhow::anyhow!("no passphrase given")).hint(format!(
            "set ${env} or pass the passphrase file option (mode 0600)"
        ))
    })
}

/// Every key at hand: the home's identity (if there is a home), `-i` files, the passphrase.
pub fn unlock(ctx: &Ctx, args: &UnlockArgs) -> Result<Unlock, CliError> {
    let mut keys = Unlock {
        identities: Vec::new(),
        passphrase: read_passphrase(args.passphrase_file.as_deref(), PASSPHRASE_ENV)?,
    };
    if ctx.home.exists() || std::env::var_os("RAMPART_AGE_IDENTITY").is_some() {
        let (id, _) = ctx.home.age_identity()?;
        keys.identities.push(id.as_age().clone());
    }
    for f in &args.identities {
        let text = secure_fs::read_private_file(f)?;
        keys.identities
            .extend(age_file::parse_identities(&text).map_err(|e| age_err(f, e))?);
    }
    Ok(keys)
}

/// The keys at hand, loaded only when a library service asks (for an age file). When loading
/// them fails, that error — with its hint — is the one the user sees, not the service's
/// rewording of it.
pub struct LazyKeys<'a> {
    ctx: &'a Ctx,
    args: &'a UnlockArgs,
    failed: std::cell::RefCell<Option<CliError>>,
}

impl<'a> LazyKeys<'a> {
    /// The keys `args` names (none: the home's identity and the passphrase environment).
    pub const fn new(ctx: &'a Ctx, args: &'a UnlockArgs) -> Self {
        Self {
            ctx,
            args,
            failed: std::cell::RefCell::new(None),
        }
    }

    /// Loads them, as a service's key callback.
    pub fn load(&self) -> Result<Unlock, rampart_ingest::IngestError> {
        unlock(self.ctx, self.args).map_err(|e| {
            let text = e.message();
            *self.failed.borrow_mut() = Some(e);
            rampart_ingest::IngestError::Request(text)
        })
    }

    /// The error to show for a service's failure: the keys' own, if loading them failed.
    pub fn error(&self, e: impl Into<CliError>) -> CliError {
        self.failed.take().unwrap_or_else(|| e.into())
    }
}

/// No `-i` files and no passphrase file: the home's identity and the environment.
pub static NO_UNLOCK_ARGS: UnlockArgs = UnlockArgs {
    identities: Vec::new(),
    passphrase_file: None,
};

/// A dataset file from an authorised root, its access audited, decrypted in memory when it is
/// an age file (with the keys `unlock` names, loaded only then).
pub fn open_dataset(
    ctx: &Ctx,
    path: &Path,
    unlock_args: &UnlockArgs,
) -> Result<rampart_ingest::open::Dataset, CliError> {
    let policy = ctx.home.load_policy()?;
    let session = ctx.session(&policy)?;
    let keys = LazyKeys::new(ctx, unlock_args);
    let load = || keys.load();
    rampart_ingest::open::open_file(&session, path, rampart_ingest::open::Keys::Lazy(&load))
        .map_err(|e| keys.error(e))
}
