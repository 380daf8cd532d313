//! API keys as a service: creating one (its request-signing secret sealed to the home's age
//! identity, the key committed only once its `apikey.create` record is in the log) and
//! revoking one (likewise `apikey.revoke`), over any [`ApiKeyStore`].

use rampart_audit::{Action, AuditError, Outcome, Unrecorded};
use rampart_home::{HomeError, Session};

use crate::keys::{ApiKeyStore, KeyInfo, KeyStoreError, NewKey, SealError};

/// Why a key was not created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The request is wrong (a zero rate or burst).
    #[error("{0}")]
    Request(String),
    /// No such key.
    #[error("no API key {0}")]
    NotFound(String),
    /// The store.
    #[error(transparent)]
    Store(#[from] KeyStoreError),
    /// The home (its age identity).
    #[error(transparent)]
    Home(#[from] HomeError),
    /// The record could not be written, so nothing changed.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl rampart_home::Classify for AdminError {
    fn kind(&self) -> rampart_home::ErrorKind {
        use rampart_home::ErrorKind;
        match self {
            Self::Request(_) | Self::NotFound(_) => ErrorKind::Input,
            Self::Home(h) => h.kind(),
            Self::Store(_) | Self::Audit(_) => ErrorKind::Internal,
        }
    }
}

fn unrecorded(e: Unrecorded<KeyStoreError>) -> AdminError {
    match e {
        Unrecorded::Audit(a) => AdminError::Audit(a),
        Unrecorded::Change(c) => AdminError::Store(c),
    }
}

/// Creates a key; returns it with its token, which exists nowhere else (the store keeps a
/// hash). The key's request-signing secret is sealed to the home's age identity.
///
/// # Errors
/// See [`AdminError`]; nothing is stored on any of them.
pub fn create(
    s: &Session<'_>,
    store: &dyn ApiKeyStore,
    new: &NewKey<'_>,
) -> Result<(KeyInfo, zeroize::Zeroizing<String>), AdminError> {
    if new.rate == 0 || new.burst == 0 {
        return Err(AdminError::Request(
            "--rate and --burst must be positive".into(),
        ));
    }
    let (id, _) = s.home.age_identity()?;
    let recipient = id.as_age().to_public();
    let seal = move |k: &[u8]| -> Result<String, SealError> {
        let mut out = Vec::new();
        rampart_crypto::age_file::encrypt(
            &mut &k[..],
            &mut out,
            &rampart_crypto::age_file::Recipients::Keys(vec![recipient.clone()]),
            true,
        )
        .map_err(|e| SealError(e.to_string()))?;
        String::from_utf8(out).map_err(|e| SealError(e.to_string()))
    };
    let (info, token) = s
        .audit
        .recorded(|rec| {
            store.create_key(new, &seal, &mut |info| {
                rec.write(
                    s.audit
                        .event(Action::ApikeyCreate, Outcome::Ok)
                        .subject_path(format!("apikey:{}", info.id))
                        .detail("role", new.role.as_str())
                        .detail("model", new.model.unwrap_or_default())
                        .detail("rate", new.rate)
                        .detail("burst", new.burst),
                )
            })
        })
        .map_err(unrecorded)?;
    Ok((info, zeroize::Zeroizing::new(token)))
}

/// Revokes key `id`: every replica refuses it on its next request.
///
/// # Errors
/// [`AdminError::NotFound`], the store's, the audit log's.
pub fn revoke(s: &Session<'_>, store: &dyn ApiKeyStore, id: &str) -> Result<(), AdminError> {
    let revoked = s
        .audit
        .recorded(|rec| {
            store.revoke_key(id, &mut |id| {
                rec.write(
                    s.audit
                        .event(Action::ApikeyRevoke, Outcome::Ok)
                        .subject_path(format!("apikey:{id}")),
                )
            })
        })
        .map_err(unrecorded)?;
    if revoked {
        Ok(())
    } else {
        Err(AdminError::NotFound(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::keys::{KeyStore, Role};
    use rampart_audit::{Auditor, MemorySink};

    #[test]
    fn keys_are_created_and_revoked_on_record_with_their_secret_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let home = rampart_home::Home::resolve(Some(&dir.path().join("home")));
        home.init().unwrap();
        let policy = home.load_policy().unwrap();
        let sink = MemorySink::new();
        let s = Session {
            home: &home,
            policy: &policy,
            audit: Auditor::new(Some(&sink), "tester"),
        };
        let store = KeyStore::open(&dir.path().join("keys.db")).unwrap();
        let new = NewKey {
            role: Role::Predict,
            model: Some("credit"),
            rate: 5,
            burst: 10,
            expires: None,
            label: "ci",
        };
        let (info, token) = create(&s, &store, &new).unwrap();
        assert!(token.starts_with("rk_"), "a token, shown once");
        assert_eq!(info.model.as_deref(), Some("credit"));
        // The request-signing secret is stored sealed to the home's identity.
        let sealed = store.sealed_secret(&info.id).unwrap().unwrap();
        assert!(
            sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"),
            "{sealed}"
        );
        let zero = NewKey { rate: 0, ..new };
        assert!(matches!(
            create(&s, &store, &zero),
            Err(AdminError::Request(_))
        ));
        revoke(&s, &store, &info.id).unwrap();
        assert!(store.key(&info.id).unwrap().unwrap().revoked);
        assert!(matches!(
            revoke(&s, &store, "nope"),
            Err(AdminError::NotFound(_))
        ));
        assert_eq!(
            sink.actions(),
            [
                ("apikey.create".to_owned(), "ok".to_owned()),
                ("apikey.revoke".to_owned(), "ok".to_owned()),
            ]
        );
    }
}
