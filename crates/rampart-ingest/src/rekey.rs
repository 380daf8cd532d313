//! Re-encrypting an age file in place to new recipients, never losing it: the new file is
//! written beside the old one, synced, read back from disk and checked to decrypt to the same
//! bytes with a key for the new recipients, and only then renamed over the old one. A crash
//! at any step leaves the old file or the whole new one.

use std::io::{self, BufWriter, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};

use rampart_audit::{Action, Outcome};
use rampart_crypto::Digest;
use rampart_crypto::age_file::{self, AgeError, Recipients, Unlock};
use rampart_home::secure_fs::AtomicFile;
use rampart_home::{HomeError, Session};

use crate::ErrorKind;

/// The steps of a rekey, told to the caller as each completes (the crash tests stop there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The new file is written and synced beside the old one.
    Written,
    /// It was read back and decrypts to the same bytes.
    Verified,
}

/// What a rekey did.
#[derive(Debug, Clone)]
pub struct Rekeyed {
    /// Plaintext bytes.
    pub bytes: u64,
    /// Their SHA-256.
    pub digest: Digest,
}

/// Why a file was not re-encrypted (the original is unchanged in every case).
#[derive(Debug, thiserror::Error)]
pub enum RekeyError {
    /// No key at hand decrypts what would be written.
    #[error(
        "cannot prove the re-encrypted {} decrypts: none of the identities at hand belongs to a new recipient",
        path.display()
    )]
    NoVerifier {
        /// The file.
        path: PathBuf,
    },
    /// The file cannot be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It does not decrypt with the keys at hand, or is damaged.
    #[error("{}: {source}", path.display())]
    Age {
        /// The file.
        path: PathBuf,
        /// Why.
        source: AgeError,
    },
    /// What was written did not read back as the same bytes (audited).
    #[error("the re-encrypted {} did not verify ({reason}); the original is unchanged", path.display())]
    NotVerified {
        /// The file.
        path: PathBuf,
        /// What the read-back found.
        reason: String,
    },
    /// The new file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The home (the atomic file beside the old one).
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The audit log refused the record.
    #[error(transparent)]
    Audit(#[from] rampart_audit::AuditError),
}

impl rampart_home::Classify for RekeyError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::NoVerifier { .. } | Self::Open { .. } | Self::Age { .. } => ErrorKind::Input,
            Self::Home(h) if h.is_user_error() => ErrorKind::Input,
            _ => ErrorKind::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::NoVerifier { .. } => Some(
                "pass the new identity with -i FILE so rekey can check the new file before replacing the old one".into(),
            ),
            Self::Age { source, .. } => crate::age_hint(source).map(str::to_owned),
            _ => None,
        }
    }
}

/// Re-encrypts the age file `path` (decrypted with `keys`) to `to` in place, keeping its mode;
/// `at` is told each step as it completes. Audited as `rekey` (ok, or failed when the new
/// file does not read back).
///
/// # Errors
/// See [`RekeyError`]; the original is unchanged.
pub fn rekey(
    s: &Session<'_>,
    path: &Path,
    keys: &Unlock,
    to: &Recipients,
    armor: bool,
    at: &mut dyn FnMut(Step),
) -> Result<Rekeyed, RekeyError> {
    // Proving the new file decrypts needs a key for it: the new passphrase, or an identity we
    // hold for one of the new recipients.
    let verifier = match to {
        Recipients::Passphrase(p) => Unlock::passphrase(p.clone()),
        Recipients::Keys(_) => {
            let described = to.describe();
            let held: Vec<_> = keys
                .identities
                .iter()
                .filter(|i| described.contains(&i.to_public().to_string()))
                .cloned()
                .collect();
            if held.is_empty() {
                return Err(RekeyError::NoVerifier {
                    path: path.to_path_buf(),
                });
            }
            Unlock::identities(held)
        }
    };
    let age = |source| RekeyError::Age {
        path: path.to_path_buf(),
        source,
    };
    let source = std::fs::File::open(path).map_err(|source| RekeyError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = source
        .metadata()
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
        .unwrap_or(0o600);
    let mut plain = age_file::decrypting_reader(age_file::buffered(source), keys).map_err(age)?;

    // 1. Write the new file beside the old one.
    let mut next = AtomicFile::create(path, mode)?;
    let (bytes, digest) = {
        let w = BufWriter::new(next.file());
        age_file::encrypt(&mut plain, w, to, armor).map_err(|e| match e {
            AgeError::Io(io) if io.kind() == io::ErrorKind::InvalidData => age(AgeError::Corrupt(
                format!("{io}; the original is left as it was"),
            )),
            other => age(other),
        })?
    };
    next.file().sync_all().map_err(|source| RekeyError::Write {
        path: next.temp_path().to_path_buf(),
        source,
    })?;
    at(Step::Written);

    // 2. Read it back from disk and check it decrypts to the same bytes.
    let check = (|| {
        let f = next.file();
        f.seek(SeekFrom::Start(0))?;
        age_file::decrypt(age_file::buffered(&*f), &mut io::sink(), &verifier)
            .map_err(|e| io::Error::other(e.to_string()))
    })();
    let reason = match check {
        Ok((n, d)) if n == bytes && d == digest => None,
        Ok(_) => Some("it decrypts to different bytes".to_owned()),
        Err(e) => Some(e.to_string()),
    };
    if let Some(reason) = reason {
        let event = s
            .audit
            .event(Action::Rekey, Outcome::Failed)
            .subject_path(path.display().to_string())
            .detail("reason", reason.clone());
        if let Some(a) = s.audit.refusal(event) {
            return Err(a.into());
        }
        return Err(RekeyError::NotVerified {
            path: path.to_path_buf(),
            reason,
        });
    }
    at(Step::Verified);

    // 3. Replace atomically.
    next.commit(true)?;
    s.audit.record(
        s.audit
            .event(Action::Rekey, Outcome::Ok)
            .subject_path(path.display().to_string())
            .subject_digest(digest.reference())
            .detail("recipients", to.describe().join(", "))
            .detail("bytes", bytes),
    )?;
    Ok(Rekeyed { bytes, digest })
}
