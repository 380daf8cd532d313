//! Editing the home's trust as a service: keys, certificate authorities, Sigstore identities
//! and the Sigstore trusted root, each change written to the policy only once its `trust.*`
//! record is in the audit log, and each refusal recorded as denied.

use std::path::Path;

use rampart_audit::{Action, AuditError, Event, Outcome, Unrecorded};
use rampart_crypto::PublicKey;
use rampart_crypto::sigstore::{Identity, TrustedRoot};

use crate::{HomeError, Session, TrustedCertificate, TrustedIdentity, TrustedKey};

/// Why the policy (its trust, data roots or pins) was not changed.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The home refused it (a name or fingerprint already trusted, none to remove, a bad
    /// file, the policy).
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The record could not be written, so nothing changed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The file holds no certificate.
    #[error("{}: {reason}", path.display())]
    Certificates {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
}

pub(crate) fn unrecorded(e: Unrecorded<HomeError>) -> EditError {
    match e {
        Unrecorded::Audit(a) => EditError::Audit(a),
        Unrecorded::Change(c) => EditError::Home(c),
    }
}

/// A change's result: a refusal is recorded as denied (a failure to record it is returned in
/// its place).
fn refused<T>(s: &Session<'_>, got: Result<T, EditError>, denied: Event) -> Result<T, EditError> {
    match got {
        Ok(v) => Ok(v),
        Err(e @ EditError::Audit(_)) => Err(e),
        Err(e) => {
            let event = denied.detail("reason", e.to_string());
            Err(s.audit.refusal(event).map_or(e, EditError::Audit))
        }
    }
}

/// Trusts `key` under `name` (read from `source`, which the record names).
///
/// # Errors
/// See [`EditError`]; a refusal is recorded.
pub fn add_key(
    s: &Session<'_>,
    name: &str,
    key: &PublicKey,
    source: &Path,
) -> Result<TrustedKey, EditError> {
    let got = s
        .audit
        .recorded(|rec| {
            s.home.trust_add(name, key, &mut |entry| {
                rec.write(
                    s.audit
                        .event(Action::TrustAdd, Outcome::Ok)
                        .subject_path(source.display().to_string())
                        .subject_digest(entry.fingerprint.clone())
                        .detail("name", entry.name.clone()),
                )
            })
        })
        .map_err(unrecorded);
    let denied = s
        .audit
        .event(Action::TrustAdd, Outcome::Denied)
        .subject_path(source.display().to_string())
        .subject_digest(key.fingerprint().to_string());
    refused(s, got, denied)
}

/// Trusts every certificate in the PEM `text` (read from `source`) as a certificate authority:
/// the first as `name`, the next as `NAME-2`, … Stops at the first refusal.
///
/// # Errors
/// See [`EditError`]; a refusal is recorded.
pub fn add_certificates(
    s: &Session<'_>,
    name: &str,
    text: &str,
    source: &Path,
) -> Result<Vec<TrustedCertificate>, EditError> {
    let certs =
        rampart_crypto::x509::certificates_from_pem(text).map_err(|e| EditError::Certificates {
            path: source.to_path_buf(),
            reason: e.to_string(),
        });
    let denied = || {
        s.audit
            .event(Action::TrustAdd, Outcome::Denied)
            .subject_path(source.display().to_string())
    };
    let certs = refused(s, certs, denied())?;
    let mut added = Vec::new();
    for (i, der) in certs.iter().enumerate() {
        let name = if i == 0 {
            name.to_owned()
        } else {
            format!("{name}-{}", i + 1)
        };
        let got = s
            .audit
            .recorded(|rec| {
                s.home.trust_add_certificate(&name, der, &mut |entry| {
                    rec.write(
                        s.audit
                            .event(Action::TrustAdd, Outcome::Ok)
                            .subject_path(source.display().to_string())
                            .subject_digest(entry.fingerprint.clone())
                            .detail("name", entry.name.clone())
                            .detail("certificate", entry.subject.clone()),
                    )
                })
            })
            .map_err(unrecorded);
        added.push(refused(s, got, denied())?);
    }
    Ok(added)
}

/// Trusts a Sigstore identity (certificate identity and OIDC issuer) under `name`.
///
/// # Errors
/// See [`EditError`]; a refusal is recorded.
pub fn add_identity(
    s: &Session<'_>,
    name: &str,
    id: &Identity,
) -> Result<TrustedIdentity, EditError> {
    let got = s
        .audit
        .recorded(|rec| {
            s.home.trust_add_identity(name, id, &mut |entry| {
                rec.write(
                    s.audit
                        .event(Action::TrustAdd, Outcome::Ok)
                        .detail("name", entry.name.clone())
                        .detail("sigstore_identity", entry.identity.clone())
                        .detail("issuer", entry.issuer.clone()),
                )
            })
        })
        .map_err(unrecorded);
    let denied = s
        .audit
        .event(Action::TrustAdd, Outcome::Denied)
        .detail("sigstore_identity", id.identity.clone())
        .detail("issuer", id.issuer.clone());
    refused(s, got, denied)
}

/// Installs a Sigstore trusted root (`trusted_root.json`, read from `source`); returns it
/// with the file's `sha256:<hex>`.
///
/// # Errors
/// See [`EditError`].
pub fn set_sigstore_root(
    s: &Session<'_>,
    json: &[u8],
    source: &Path,
) -> Result<(TrustedRoot, String), EditError> {
    let digest = rampart_crypto::sha256(json).reference().to_string();
    let root = s
        .audit
        .recorded(|rec| {
            s.home.set_sigstore_root(json, &mut |root| {
                rec.write(
                    s.audit
                        .event(Action::TrustSigstoreRoot, Outcome::Ok)
                        .subject_path(source.display().to_string())
                        .subject_digest(digest.clone())
                        .detail("root", root.describe()),
                )
            })
        })
        .map_err(unrecorded)?;
    Ok((root, digest))
}

/// What [`remove`] took out of the trust.
#[derive(Debug, Clone)]
pub enum Removed {
    /// A key.
    Key(TrustedKey),
    /// A certificate authority.
    Certificate(TrustedCertificate),
    /// A Sigstore identity.
    Identity(TrustedIdentity),
}

/// Removes what `what` names: a Sigstore identity (by name or identity), a certificate
/// authority (by name or fingerprint), else a key (by name or fingerprint).
///
/// # Errors
/// Nothing matches, or the record could not be written (nothing changed).
pub fn remove(s: &Session<'_>, what: &str) -> Result<Removed, EditError> {
    let trust = &s.policy.trust;
    let fingerprint = format!("sha256:{}", what.trim_start_matches("sha256:"));
    let removed = s.audit.recorded(|rec| {
        if trust
            .sigstore
            .iter()
            .any(|t| t.name == what || t.identity == what)
        {
            return s
                .home
                .trust_remove_identity(what, &mut |entry| {
                    rec.write(
                        s.audit
                            .event(Action::TrustRemove, Outcome::Ok)
                            .detail("name", entry.name.clone())
                            .detail("sigstore_identity", entry.identity.clone())
                            .detail("issuer", entry.issuer.clone()),
                    )
                })
                .map(Removed::Identity);
        }
        if trust
            .certificates
            .iter()
            .any(|c| c.name == what || c.fingerprint == fingerprint)
        {
            return s
                .home
                .trust_remove_certificate(what, &mut |entry| {
                    rec.write(
                        s.audit
                            .event(Action::TrustRemove, Outcome::Ok)
                            .subject_digest(entry.fingerprint.clone())
                            .detail("name", entry.name.clone())
                            .detail("certificate", entry.subject.clone()),
                    )
                })
                .map(Removed::Certificate);
        }
        s.home
            .trust_remove(what, &mut |entry| {
                rec.write(
                    s.audit
                        .event(Action::TrustRemove, Outcome::Ok)
                        .subject_digest(entry.fingerprint.clone())
                        .detail("name", entry.name.clone()),
                )
            })
            .map(Removed::Key)
    });
    removed.map_err(unrecorded)
}

/// The home's public key as others need it to trust this home: the signing key's PEM, or
/// (with `age`) the age recipient, one line.
///
/// # Errors
/// The key file cannot be read or parsed.
pub fn public_key_text(home: &crate::Home, age: bool) -> Result<String, HomeError> {
    if age {
        let text = crate::secure_fs::read_small_file(&home.age_recipient_path())?;
        Ok(format!("{}\n", text.trim()))
    } else {
        Ok(home.signing_public_key()?.to_pem())
    }
}

/// Writes [`public_key_text`] to `path` and records `keys.export-public`.
///
/// # Errors
/// The key, the write (an input error naming the file), or the record.
pub fn export_public(
    home: &crate::Home,
    audit: &rampart_audit::Auditor<'_>,
    age: bool,
    path: &Path,
) -> Result<(), EditError> {
    let text = public_key_text(home, age)?;
    std::fs::write(path, text).map_err(|source| HomeError::Io {
        action: "cannot write",
        path: path.to_path_buf(),
        source,
    })?;
    audit.record(
        audit
            .event(Action::KeysExportPublic, Outcome::Ok)
            .subject_path(path.display().to_string())
            .detail(
                "key",
                if age {
                    "age-recipient"
                } else {
                    "signing-public-key"
                },
            ),
    )?;
    Ok(())
}
