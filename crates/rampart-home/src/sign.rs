//! Signing a model in the OpenSSF model-signing format as a service: the bundle written
//! beside the model atomically, audited as `sign` (ok, or failed with the reason).

use std::path::{Path, PathBuf};

use rampart_audit::{Action, AuditError, Outcome};
use rampart_crypto::SigningKey;
use rampart_crypto::oms::{self, Method, OmsError, SignOptions};

use crate::{HomeError, Session};

/// Why a model was not signed (recorded as a failed `sign`, except a failure to record).
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The model could not be signed (unreadable, a symlink not allowed, …).
    #[error("cannot sign {}: {source}", path.display())]
    Model {
        /// The model.
        path: PathBuf,
        /// Why.
        source: OmsError,
    },
    /// The signature could not be written.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The audit log refused the record.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl SignError {
    /// Whether the user can fix it: everything but an I/O failure that is not a missing file
    /// or a permission, a write, or the log.
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        match self {
            Self::Model {
                source: OmsError::Io { source, .. },
                ..
            } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ),
            Self::Model { .. } => true,
            Self::Home(h) => h.is_user_error(),
            Self::Audit(_) => false,
        }
    }
}

/// What was signed.
#[derive(Debug)]
pub struct Signed {
    /// The signed manifest and the key.
    pub signed: oms::Signed,
    /// `files`, or `shards:SIZE`.
    pub method: String,
}

/// Signs the model at `path` (a file or a directory) with `key` and writes the bundle to
/// `opts.signature_path` (0644, atomically). `progress` is told the bytes hashed.
///
/// # Errors
/// See [`SignError`].
pub fn sign_model(
    s: &Session<'_>,
    path: &Path,
    key: &SigningKey,
    opts: &SignOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Signed, SignError> {
    let subject = path.display().to_string();
    let signed = match oms::sign_model(path, key, opts, progress) {
        Ok(signed) => signed,
        Err(source) => {
            let event = s
                .audit
                .event(Action::Sign, Outcome::Failed)
                .subject_path(&subject)
                .detail("reason", source.to_string());
            let e = SignError::Model {
                path: path.to_path_buf(),
                source,
            };
            return Err(s.audit.refusal(event).map_or(e, SignError::Audit));
        }
    };
    let sig = &opts.signature_path;
    crate::secure_fs::atomic_write(sig, &signed.bundle, 0o644)?;
    let m = &signed.manifest;
    let method = match m.method {
        Method::Files => "files".to_owned(),
        Method::Shards { shard_size } => format!("shards:{shard_size}"),
    };
    s.audit.record(
        s.audit
            .event(Action::Sign, Outcome::Ok)
            .subject_path(&subject)
            .subject_digest(m.root.reference())
            .detail("key", signed.key.to_string())
            .detail("method", method.clone())
            .detail("files", m.files)
            .detail("bytes", m.bytes)
            .detail("signature", sig.display().to_string()),
    )?;
    Ok(Signed { signed, method })
}
