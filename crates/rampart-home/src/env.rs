//! Environment: variable names, the optional `.env` file, and who the OS user is.

use std::path::Path;

/// Overrides the home directory.
pub const ENV_HOME: &str = "RAMPART_HOME";
/// A path to the signing key PEM file (used instead of the home's `keys/signing.key.pem`).
pub const ENV_SIGNING_KEY_FILE: &str = "RAMPART_SIGNING_KEY_FILE";
/// The signing key PEM itself (for CI secrets); takes precedence over every file.
pub const ENV_SIGNING_KEY: &str = "RAMPART_SIGNING_KEY";
/// A path to the age identity file.
pub const ENV_AGE_IDENTITY_FILE: &str = "RAMPART_AGE_IDENTITY_FILE";
/// The age identity itself (`AGE-SECRET-KEY-1…`); takes precedence over every file.
pub const ENV_AGE_IDENTITY: &str = "RAMPART_AGE_IDENTITY";

/// The PII pseudonymisation key (hex, at least 16 bytes); takes precedence over the home's
/// `keys/pii.key`.
pub const ENV_PII_KEY: &str = "RAMPART_PII_KEY";
/// A path to the PII pseudonymisation key file.
pub const ENV_PII_KEY_FILE: &str = "RAMPART_PII_KEY_FILE";

/// Reads `.env` from `dir` (normally the working directory) if it exists. Variables already set
/// in the environment win; nothing is read from parent directories. Returns whether a file was
/// read.
///
/// # Errors
/// When the file exists but cannot be read or parsed; the message names the file and line,
/// never a value.
pub fn load_dotenv(dir: &Path) -> Result<bool, crate::HomeError> {
    let path = dir.join(".env");
    if !path.exists() {
        return Ok(false);
    }
    dotenvy::from_path(&path).map_err(|e| crate::HomeError::DotEnv {
        path: path.clone(),
        reason: match e {
            dotenvy::Error::LineParse(_, index) => {
                format!("cannot parse it near character {index}")
            }
            dotenvy::Error::Io(io) => io.to_string(),
            dotenvy::Error::EnvVar(_) => "a variable is not valid Unicode".to_owned(),
            _ => "cannot read it".to_owned(),
        },
    })?;
    Ok(true)
}

/// The name of the OS user running this process (`uid:N` if it has no passwd entry).
#[must_use]
pub fn os_user() -> String {
    let uid = nix::unistd::getuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid:{uid}"),
    }
}
