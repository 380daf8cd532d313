//! Verifying a model's OpenSSF model-signing signature as a service: with the home's trust
//! (its keys, certificate authorities and Sigstore identities) or with what the caller names,
//! audited as `verify` — ok, failed (the signature does not hold: an outcome, not an error) or
//! error (the model could not be read).

use std::path::{Path, PathBuf};

use rampart_audit::{Action, AuditError, Outcome};
use rampart_crypto::PublicKey;
use rampart_crypto::oms::{self, OmsError, SigstoreTrust, VerifyOptions};

use crate::{HomeError, Session};

/// What a signature must chain to.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The home's trusted keys, certificate authorities and Sigstore identities.
    Home,
    /// These keys only.
    Keys(Vec<PublicKey>),
    /// A certificate chaining to these roots (DER).
    CertRoots(Vec<Vec<u8>>),
    /// A Sigstore bundle for one of these identities under this trusted root.
    Sigstore(SigstoreTrust),
}

/// Why a model could not be verified (a signature that does not hold is not one of these: it
/// is [`Verification::Failed`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The model path does not exist.
    #[error("{} does not exist", .0.display())]
    Missing(PathBuf),
    /// The signature file cannot be read (audited as an error).
    #[error("cannot read the signature {}: {source}", path.display())]
    Signature {
        /// The file.
        path: PathBuf,
        /// Why.
        source: HomeError,
    },
    /// The attestation file cannot be read (audited as an error).
    #[error("cannot read the attestation {}: {source}", path.display())]
    Attestation {
        /// The file.
        path: PathBuf,
        /// Why.
        source: HomeError,
    },
    /// [`Trust::Home`] in a home that trusts nothing.
    #[error("no trusted keys in {}", .0.display())]
    NoTrust(PathBuf),
    /// A file of the model could not be read (audited as an error).
    #[error("cannot verify {}: {source}", path.display())]
    Unreadable {
        /// The model.
        path: PathBuf,
        /// Why.
        source: OmsError,
    },
    /// A file naming what to trust (a key, certificate authorities, a Sigstore root) cannot
    /// be used.
    #[error("cannot use {} as {what}: {reason}", path.display())]
    TrustFile {
        /// The file.
        path: PathBuf,
        /// What it was read as.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The home (its policy, anchors).
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The audit log refused the record.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// What a caller names to trust instead of the home's trust.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrustFiles<'a> {
    /// Public keys (PEM).
    pub keys: &'a [PathBuf],
    /// Certificate authorities (PEM).
    pub cert_chain: &'a [PathBuf],
    /// A Sigstore identity and issuer, under this trusted root (else the home's installed
    /// one, else the pinned public-good root).
    pub sigstore: Option<(&'a str, &'a str, Option<&'a Path>)>,
}

fn trust_file(path: &Path, what: &'static str, reason: impl std::fmt::Display) -> VerifyError {
    VerifyError::TrustFile {
        path: path.to_path_buf(),
        what,
        reason: reason.to_string(),
    }
}

/// Public keys read from PEM files.
///
/// # Errors
/// [`VerifyError::TrustFile`] naming a file that is not a public key.
pub fn keys_from_files(files: &[PathBuf]) -> Result<Vec<PublicKey>, VerifyError> {
    files
        .iter()
        .map(|f| {
            let text = crate::secure_fs::read_small_file(f)?;
            PublicKey::from_pem(&text).map_err(|e| trust_file(f, "a public key", e))
        })
        .collect()
}

impl Trust {
    /// The trust `files` name — a Sigstore identity, else certificate authorities, else keys
    /// — or, when they name nothing, the home's (which must exist).
    ///
    /// # Errors
    /// A file that cannot be used; no home for [`Trust::Home`].
    pub fn from_files(home: &crate::Home, files: &TrustFiles<'_>) -> Result<Self, VerifyError> {
        if let Some((identity, issuer, root)) = files.sigstore {
            let root = match root {
                Some(f) => {
                    let text = crate::secure_fs::read_small_file(f)?;
                    rampart_crypto::sigstore::TrustedRoot::from_json(text.as_bytes())
                        .map_err(|e| trust_file(f, "a Sigstore trusted root", e))?
                }
                None => home.sigstore_root()?,
            };
            return Ok(Self::Sigstore(SigstoreTrust {
                root: std::sync::Arc::new(root),
                identities: vec![rampart_crypto::sigstore::Identity {
                    identity: identity.to_owned(),
                    issuer: issuer.to_owned(),
                }],
            }));
        }
        if !files.cert_chain.is_empty() {
            let mut roots = Vec::new();
            for f in files.cert_chain {
                let text = crate::secure_fs::read_small_file(f)?;
                roots.extend(
                    rampart_crypto::x509::certificates_from_pem(&text)
                        .map_err(|e| trust_file(f, "trusted roots", e))?,
                );
            }
            return Ok(Self::CertRoots(roots));
        }
        if files.keys.is_empty() {
            home.require()?;
            return Ok(Self::Home);
        }
        Ok(Self::Keys(keys_from_files(files.keys)?))
    }
}

/// The home's trusted keys; a home that trusts none is [`VerifyError::NoTrust`].
///
/// # Errors
/// No home, its policy, or no trusted key.
pub fn home_keys(home: &crate::Home) -> Result<Vec<PublicKey>, VerifyError> {
    home.require()?;
    let keys = home.load_policy()?.trusted_public_keys();
    if keys.is_empty() {
        return Err(VerifyError::NoTrust(home.policy_path()));
    }
    Ok(keys)
}

impl VerifyError {
    /// Whether the caller can fix it (everything but the home's own failures and the log's).
    #[must_use]
    pub fn is_user_error(&self) -> bool {
        match self {
            Self::Home(h) => h.is_user_error(),
            Self::Audit(_) => false,
            _ => true,
        }
    }
}

/// The result of a verification that could be carried out.
#[derive(Debug)]
pub enum Verification {
    /// The signature holds over exactly these files.
    Verified(Box<oms::Verified>),
    /// It does not (the files changed, the key is not trusted, the bundle is damaged).
    Failed(OmsError),
}

/// Verifies the model at `path` (a file or a directory) against the signature at
/// `opts.signature_path` with `trust`; `opts` says what to ignore (its `cert_roots` and
/// `sigstore` are set from `trust`). `progress` is told the bytes hashed.
///
/// # Errors
/// See [`VerifyError`].
pub fn verify_model(
    s: &Session<'_>,
    path: &Path,
    trust: Trust,
    mut opts: VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Verification, VerifyError> {
    if !path.exists() {
        return Err(VerifyError::Missing(path.to_path_buf()));
    }
    let sig = opts.signature_path.clone();
    let subject = path.display().to_string();
    let bundle = match crate::secure_fs::read_limited(&sig, rampart_crypto::dsse::MAX_BUNDLE_BYTES)
    {
        Ok(b) => b,
        Err(source) => {
            let e = VerifyError::Signature {
                path: sig.clone(),
                source,
            };
            let event = s
                .audit
                .event(Action::Verify, Outcome::Error)
                .subject_path(&subject)
                .detail("reason", e.to_string());
            return Err(s.audit.refusal(event).map_or(e, VerifyError::Audit));
        }
    };
    let keys = match trust {
        Trust::Home => {
            let anchors = s.home.anchors(s.policy)?;
            let keys = s.policy.trusted_public_keys();
            if keys.is_empty() && anchors.cert_roots.is_empty() && anchors.sigstore.is_none() {
                return Err(VerifyError::NoTrust(s.home.policy_path()));
            }
            opts.cert_roots = anchors.cert_roots;
            opts.sigstore = anchors.sigstore;
            keys
        }
        Trust::Keys(keys) => keys,
        Trust::CertRoots(roots) => {
            opts.cert_roots = roots;
            Vec::new()
        }
        Trust::Sigstore(t) => {
            opts.sigstore = Some(t);
            Vec::new()
        }
    };
    match oms::verify_model(path, &bundle, &keys, &opts, progress) {
        Ok(v) => {
            let sigstore = v.sigstore.as_ref().map(|s| {
                serde_json::json!({
                    "identity": s.identity.identity, "issuer": s.identity.issuer,
                    "log": s.log_url, "log_index": s.log_index,
                    "integrated_time": s.integrated_time,
                })
            });
            s.audit.record(
                s.audit
                    .event(Action::Verify, Outcome::Ok)
                    .subject_path(&subject)
                    .subject_digest(v.signed.subject_digest.reference())
                    .detail("key", v.key.to_string())
                    .detail(
                        "certificate",
                        v.certificate_path.clone().unwrap_or_default(),
                    )
                    .detail("sigstore", sigstore.unwrap_or_default())
                    .detail("files", v.files)
                    .detail("signature", sig.display().to_string()),
            )?;
            Ok(Verification::Verified(Box::new(v)))
        }
        Err(OmsError::Io {
            action,
            path: at,
            source,
        }) if at != path || source.kind() != std::io::ErrorKind::NotFound => {
            let source = OmsError::Io {
                action,
                path: at,
                source,
            };
            let event = s
                .audit
                .event(Action::Verify, Outcome::Error)
                .subject_path(&subject)
                .detail("reason", source.to_string());
            if let Some(a) = s.audit.refusal(event) {
                return Err(a.into());
            }
            Err(VerifyError::Unreadable {
                path: path.to_path_buf(),
                source,
            })
        }
        Err(e) => {
            s.audit.record(
                s.audit
                    .event(Action::Verify, Outcome::Failed)
                    .subject_path(&subject)
                    .detail("reason", e.to_string())
                    .detail("signature", sig.display().to_string()),
            )?;
            Ok(Verification::Failed(e))
        }
    }
}

/// The result of checking an attestation that could be read.
#[derive(Debug)]
pub enum Attestation {
    /// It verifies with a trusted key (and names the subject asked for).
    Verified(Box<rampart_crypto::provenance::VerifiedAttestation>),
    /// It does not: the reason.
    Failed(String),
}

/// Checks the DSSE attestation (an in-toto statement, SLSA provenance) at `path` with the
/// home's trusted keys (`Trust::Home`) or named keys (`Trust::Keys`; other trusts are
/// refused as [`VerifyError::NoTrust`]), and that it names `subject` when one is given.
/// Audited as `attest.verify`: ok, failed, or error when the file cannot be read.
///
/// # Errors
/// See [`VerifyError`].
pub fn verify_attestation(
    s: &Session<'_>,
    path: &Path,
    trust: Trust,
    subject: Option<&rampart_crypto::Digest>,
) -> Result<Attestation, VerifyError> {
    let keys = match trust {
        Trust::Home => s.policy.trusted_public_keys(),
        Trust::Keys(keys) => keys,
        Trust::CertRoots(_) | Trust::Sigstore(_) => Vec::new(),
    };
    if keys.is_empty() {
        return Err(VerifyError::NoTrust(s.home.policy_path()));
    }
    let subject_path = path.display().to_string();
    let bytes = match crate::secure_fs::read_limited(path, rampart_crypto::dsse::MAX_BUNDLE_BYTES) {
        Ok(b) => b,
        Err(source) => {
            let e = VerifyError::Attestation {
                path: path.to_path_buf(),
                source,
            };
            let event = s
                .audit
                .event(Action::AttestVerify, Outcome::Error)
                .subject_path(&subject_path)
                .detail("reason", e.to_string());
            return Err(s.audit.refusal(event).map_or(e, VerifyError::Audit));
        }
    };
    let checked = rampart_crypto::provenance::verify_attestation(&bytes, &keys)
        .map_err(|e| e.to_string())
        .and_then(|v| match subject {
            Some(d) if !v.covers(d) => {
                Err(format!("sha256:{d} is not a subject of this attestation"))
            }
            _ => Ok(v),
        });
    match checked {
        Ok(v) => {
            s.audit.record(
                s.audit
                    .event(Action::AttestVerify, Outcome::Ok)
                    .subject_path(&subject_path)
                    .detail("key", v.key.to_string())
                    .detail("predicate_type", v.predicate_type.clone()),
            )?;
            Ok(Attestation::Verified(Box::new(v)))
        }
        Err(reason) => {
            s.audit.record(
                s.audit
                    .event(Action::AttestVerify, Outcome::Failed)
                    .subject_path(&subject_path)
                    .detail("reason", reason.clone()),
            )?;
            Ok(Attestation::Failed(reason))
        }
    }
}
