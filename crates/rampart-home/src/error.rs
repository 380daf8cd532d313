//! Errors from the home directory.

use std::path::PathBuf;

/// Why a home operation failed. Messages name the file and what to do; they never contain
/// secret values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// No home at the resolved location.
    #[error(
        "no rampart home at {home}; create one with `rampart init` (or set --home / RAMPART_HOME)"
    )]
    NotInitialised {
        /// The home directory looked at.
        home: PathBuf,
    },
    /// `init` found existing key material and refuses to overwrite it.
    #[error("{home} is already initialised: {existing} exists, and rampart never overwrites keys")]
    AlreadyInitialised {
        /// The home directory.
        home: PathBuf,
        /// The first existing key file found.
        existing: PathBuf,
    },
    /// A private key file is readable by group or others, or owned by someone else.
    #[error(
        "refusing to use {path}: permissions {mode:04o} are too open (private keys must not be readable by group or others); run `chmod 600 {path}`"
    )]
    LoosePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A private key file is owned by another user.
    #[error("refusing to use {path}: it is owned by uid {owner}, not by you or root")]
    ForeignOwner {
        /// The key file.
        path: PathBuf,
        /// The owning uid.
        owner: u32,
    },
    /// A file is over the size limit for what it is (it is not read, not truncated).
    #[error("refusing to read {path}: larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// A key path is not a regular file (a directory, FIFO, device, …).
    #[error("refusing to use {path}: not a regular file")]
    NotRegularFile {
        /// The offending path.
        path: PathBuf,
    },
    /// A key's text could not be parsed.
    #[error("cannot read the key from {source_name}")]
    Key {
        /// Where the key came from: a path or an environment variable name.
        source_name: String,
        /// Why.
        #[source]
        source: rampart_crypto::KeyError,
    },
    /// The PII pseudonymisation key is not hex or too short.
    #[error("the PII key from {source_name} is not at least 32 hex digits (16 bytes)")]
    BadPiiKey {
        /// Where the key came from: a path or an environment variable name.
        source_name: String,
    },
    /// A key is needed and none is configured.
    #[error("no {what} found: expected {path} or the environment variable {var}")]
    MissingKey {
        /// Which key.
        what: &'static str,
        /// The file looked for.
        path: PathBuf,
        /// The environment variable that can supply it.
        var: &'static str,
    },
    /// `rampart.toml` is not valid.
    #[error("{path} is not a valid rampart policy: {reason}")]
    Policy {
        /// The policy file.
        path: PathBuf,
        /// The parser's explanation (line and column included).
        reason: String,
    },
    /// `rampart.toml` appears to contain private key material.
    #[error(
        "{path} contains what looks like private key material ({marker}); secrets never belong in rampart.toml — move it to a key file (mode 0600) or a RAMPART_* environment variable"
    )]
    SecretInPolicy {
        /// The policy file.
        path: PathBuf,
        /// The marker that was found (e.g. `PRIVATE KEY`), never the secret itself.
        marker: &'static str,
    },
    /// A trusted key by that name or fingerprint already exists.
    #[error("a trusted key named {name:?} or with fingerprint {fingerprint} is already in {path}")]
    TrustExists {
        /// The policy file.
        path: PathBuf,
        /// The name asked for.
        name: String,
        /// The key's fingerprint.
        fingerprint: String,
    },
    /// No trusted key matched.
    #[error(
        "no trusted key named or with fingerprint {what:?} in {path}; see `rampart trust list`"
    )]
    TrustNotFound {
        /// The policy file.
        path: PathBuf,
        /// What was looked for.
        what: String,
    },
    /// The change was not made: it could not be recorded (the audit log) before taking effect.
    #[error("{path} left unchanged: {reason}")]
    Unrecorded {
        /// The file that would have changed.
        path: PathBuf,
        /// Why the record could not be written.
        reason: rampart_audit::NotRecorded,
    },
    /// The `.env` file could not be read.
    #[error("cannot read {path}: {reason}")]
    DotEnv {
        /// The file.
        path: PathBuf,
        /// Why (no values).
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done, e.g. "cannot write".
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl HomeError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    /// True when the cause is the caller's input or environment (exit 2) rather than an
    /// internal failure.
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        use std::io::ErrorKind as K;
        match self {
            Self::Io { source, .. } => matches!(
                source.kind(),
                K::NotFound
                    | K::PermissionDenied
                    | K::InvalidData
                    | K::FileTooLarge
                    | K::IsADirectory
                    | K::AlreadyExists
            ),
            Self::Unrecorded { .. } => false,
            _ => true,
        }
    }
}
