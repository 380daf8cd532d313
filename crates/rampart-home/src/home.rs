//! The home directory: where it is, how it is created, and how keys are loaded from it.

use std::fmt;
use std::path::{Path, PathBuf};

use rampart_crypto::{AgeIdentity, PublicKey, SigningKey};
use zeroize::Zeroizing;

use crate::HomeError;
use crate::env::{ENV_AGE_IDENTITY, ENV_AGE_IDENTITY_FILE, ENV_HOME};
use crate::env::{ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE};
use crate::policy::{self, Policy, TrustedKey};
use crate::secure_fs;

/// Where a private key was loaded from (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file.
    File(PathBuf),
    /// An environment variable holding the key.
    Env(&'static str),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

/// What `init` created.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitReport {
    /// The home directory.
    pub root: PathBuf,
    /// Fingerprint of the new signing key.
    pub signing_fingerprint: rampart_crypto::Fingerprint,
    /// The new age recipient.
    pub age_recipient: String,
    /// Whether `rampart.toml` was written (false when one already existed and was kept).
    pub policy_written: bool,
}

impl InitReport {
    /// Records the new home (`home.init`) — once its audit log exists, that is, after
    /// [`Home::init`]; `by` names what created it when that was not `rampart init` (the
    /// pipeline).
    ///
    /// # Errors
    /// The audit log's.
    pub fn record(
        &self,
        audit: &rampart_audit::Auditor<'_>,
        by: Option<&str>,
    ) -> Result<(), rampart_audit::AuditError> {
        let mut event = audit
            .event(rampart_audit::Action::HomeInit, rampart_audit::Outcome::Ok)
            .subject_path(self.root.display().to_string())
            .detail("signing_key", self.signing_fingerprint.to_string())
            .detail("age_recipient", self.age_recipient.clone())
            .detail("policy_written", self.policy_written);
        if let Some(by) = by {
            event = event.detail("by", by);
        }
        audit.record(event)
    }
}

/// A rampart home directory.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home named by `flag`, else `$RAMPART_HOME`, else `./.rampart`.
    #[must_use]
    pub fn resolve(flag: Option<&Path>) -> Self {
        let root = flag.map(Path::to_path_buf).unwrap_or_else(|| {
            std::env::var_os(ENV_HOME)
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(".rampart"), PathBuf::from)
        });
        Self { root }
    }

    /// A home at exactly this path.
    #[must_use]
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The home directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `rampart.toml`.
    #[must_use]
    pub fn policy_path(&self) -> PathBuf {
        self.root.join("rampart.toml")
    }
    /// `keys/`.
    #[must_use]
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
    /// `keys/signing.key.pem`.
    #[must_use]
    pub fn signing_key_path(&self) -> PathBuf {
        self.keys_dir().join("signing.key.pem")
    }
    /// `keys/signing.pub.pem`.
    #[must_use]
    pub fn signing_public_key_path(&self) -> PathBuf {
        self.keys_dir().join("signing.pub.pem")
    }
    /// `keys/age.key`.
    #[must_use]
    pub fn age_identity_path(&self) -> PathBuf {
        self.keys_dir().join("age.key")
    }
    /// `keys/age.pub`.
    #[must_use]
    pub fn age_recipient_path(&self) -> PathBuf {
        self.keys_dir().join("age.pub")
    }
    /// `audit/`.
    #[must_use]
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }

    /// Whether the home has been initialised (its policy file exists).
    #[must_use]
    pub fn exists(&self) -> bool {
        self.policy_path().is_file()
    }

    /// Fails with [`HomeError::NotInitialised`] unless the home exists.
    ///
    /// # Errors
    /// When there is no policy file.
    pub fn require(&self) -> Result<(), HomeError> {
        if self.exists() {
            Ok(())
        } else {
            Err(HomeError::NotInitialised {
                home: self.root.clone(),
            })
        }
    }

    /// Creates the home: directories (0700), a P-256 signing key and an age identity (0600,
    /// never overwritten), their public halves, and the default `rampart.toml` trusting the new
    /// signing key (an existing policy file is kept).
    ///
    /// # Errors
    /// [`HomeError::AlreadyInitialised`] if any key file exists — nothing is changed then.
    pub fn init(&self) -> Result<InitReport, HomeError> {
        for existing in [self.signing_key_path(), self.age_identity_path()] {
            if existing.exists() || existing.is_symlink() {
                return Err(HomeError::AlreadyInitialised {
                    home: self.root.clone(),
                    existing,
                });
            }
        }
        secure_fs::create_private_dir(&self.root)?;
        secure_fs::create_private_dir(&self.keys_dir())?;
        secure_fs::create_private_dir(&self.audit_dir())?;

        let signing = SigningKey::generate();
        let age = AgeIdentity::generate();
        let created = now_rfc3339();
        self.create_key(
            &self.signing_key_path(),
            &signing.to_pkcs8_pem().map_err(|source| HomeError::Key {
                source_name: "a new key".into(),
                source,
            })?,
        )?;
        self.create_key(&self.age_identity_path(), &age.to_text(&created))?;

        let public = signing.public_key();
        secure_fs::atomic_write(
            &self.signing_public_key_path(),
            public.to_pem().as_bytes(),
            0o644,
        )?;
        secure_fs::atomic_write(
            &self.age_recipient_path(),
            format!("{}\n", age.recipient()).as_bytes(),
            0o644,
        )?;
        let policy_written = !self.policy_path().exists();
        if policy_written {
            secure_fs::atomic_write(
                &self.policy_path(),
                policy::default_policy_text(&public).as_bytes(),
                0o644,
            )?;
        }
        Ok(InitReport {
            root: self.root.clone(),
            signing_fingerprint: public.fingerprint(),
            age_recipient: age.recipient(),
            policy_written,
        })
    }

    fn create_key(&self, path: &Path, pem: &Zeroizing<String>) -> Result<(), HomeError> {
        secure_fs::create_private_file(path, pem.as_bytes()).map_err(|e| match e {
            HomeError::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                HomeError::AlreadyInitialised {
                    home: self.root.clone(),
                    existing: path.into(),
                }
            }
            other => other,
        })
    }

    /// Reads and validates `rampart.toml`.
    ///
    /// # Errors
    /// [`HomeError::NotInitialised`] if it is missing, else parse and validation errors.
    pub fn load_policy(&self) -> Result<Policy, HomeError> {
        self.require()?;
        let path = self.policy_path();
        let text = secure_fs::read_small_file(&path)?;
        Policy::parse(&text, &path)
    }

    /// The signing key: `$RAMPART_SIGNING_KEY` (PEM text), else the file named by
    /// `$RAMPART_SIGNING_KEY_FILE`, else `keys/signing.key.pem`. Key files must be 0600.
    ///
    /// # Errors
    /// Missing key, loose permissions, or unparseable key.
    pub fn signing_key(&self) -> Result<(SigningKey, KeySource), HomeError> {
        let (text, source) = load_secret(
            ENV_SIGNING_KEY,
            ENV_SIGNING_KEY_FILE,
            self.signing_key_path(),
            "signing key",
        )?;
        SigningKey::from_pem(&text)
            .map(|k| (k, source.clone()))
            .map_err(|e| HomeError::Key {
                source_name: source.to_string(),
                source: e,
            })
    }

    /// The age identity: `$RAMPART_AGE_IDENTITY`, else `$RAMPART_AGE_IDENTITY_FILE`, else
    /// `keys/age.key`. Key files must be 0600.
    ///
    /// # Errors
    /// Missing key, loose permissions, or unparseable identity.
    pub fn age_identity(&self) -> Result<(AgeIdentity, KeySource), HomeError> {
        let (text, source) = load_secret(
            ENV_AGE_IDENTITY,
            ENV_AGE_IDENTITY_FILE,
            self.age_identity_path(),
            "age identity",
        )?;
        AgeIdentity::from_text(&text)
            .map(|k| (k, source.clone()))
            .map_err(|e| HomeError::Key {
                source_name: source.to_string(),
                source: e,
            })
    }

    /// Where the PII pseudonymisation key lives.
    #[must_use]
    pub fn pii_key_path(&self) -> PathBuf {
        self.keys_dir().join("pii.key")
    }

    /// The key of the `hash` redaction operator: `$RAMPART_PII_KEY` (hex), else
    /// `$RAMPART_PII_KEY_FILE`, else `keys/pii.key`, which is created (32 random bytes as hex,
    /// mode 0600) the first time a home needs it. The same key gives the same pseudonyms, so
    /// keep it as long as pseudonymised data must stay joinable.
    ///
    /// # Errors
    /// Loose permissions, a key that is not hex or shorter than 16 bytes, or no home.
    pub fn pii_key(&self) -> Result<(Zeroizing<Vec<u8>>, KeySource), HomeError> {
        use crate::env::{ENV_PII_KEY, ENV_PII_KEY_FILE};
        let default = self.pii_key_path();
        if std::env::var_os(ENV_PII_KEY).is_none()
            && std::env::var_os(ENV_PII_KEY_FILE).is_none()
            && !default.exists()
        {
            self.require()?;
            let mut key = Zeroizing::new([0u8; 32]);
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, key.as_mut());
            let text = Zeroizing::new(format!("{}\n", hex::encode(key.as_ref())));
            secure_fs::create_private_file(&default, text.as_bytes())?;
        }
        let (text, source) = load_secret(ENV_PII_KEY, ENV_PII_KEY_FILE, default, "PII key")?;
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|k| k.len() >= 16)
            .ok_or_else(|| HomeError::BadPiiKey {
                source_name: source.to_string(),
            })?;
        Ok((Zeroizing::new(bytes), source))
    }

    /// The home's public signing key, from `keys/signing.pub.pem` (no secret needed).
    ///
    /// # Errors
    /// When the file is missing or not an ECDSA (P-256/384/521) public key.
    pub fn signing_public_key(&self) -> Result<PublicKey, HomeError> {
        let path = self.signing_public_key_path();
        let text = secure_fs::read_small_file(&path)?;
        PublicKey::from_pem(&text).map_err(|source| HomeError::Key {
            source_name: path.display().to_string(),
            source,
        })
    }

    /// Adds a trusted key to `rampart.toml` (comments kept, written atomically). `record` is
    /// called with the entry after every check and before the file changes; its error leaves
    /// the policy unchanged ([`HomeError::Unrecorded`]).
    ///
    /// # Errors
    /// When the name or fingerprint is already trusted, the change cannot be recorded, or the
    /// policy cannot be read/written.
    pub fn trust_add(
        &self,
        name: &str,
        key: &PublicKey,
        record: Witness<'_, TrustedKey>,
    ) -> Result<TrustedKey, HomeError> {
        self.edit_policy(
            |text, path| policy::add_trusted_key(text, path, name, key),
            record,
        )
    }

    /// Removes a trusted key by name or fingerprint (`record` as for [`Home::trust_add`]).
    ///
    /// # Errors
    /// When no key matches, the change cannot be recorded, or the policy cannot be read/written.
    pub fn trust_remove(
        &self,
        what: &str,
        record: Witness<'_, TrustedKey>,
    ) -> Result<TrustedKey, HomeError> {
        self.edit_policy(
            |text, path| policy::remove_trusted_key(text, path, what),
            record,
        )
    }

    /// Trusts a certificate authority (DER) for the certificate method (`record` as for
    /// [`Home::trust_add`]).
    ///
    /// # Errors
    /// When the name or certificate is already trusted, the certificate does not parse, the
    /// change cannot be recorded, or the policy cannot be read/written.
    pub fn trust_add_certificate(
        &self,
        name: &str,
        der: &[u8],
        record: Witness<'_, crate::policy::TrustedCertificate>,
    ) -> Result<crate::policy::TrustedCertificate, HomeError> {
        self.edit_policy(
            |text, path| policy::add_trusted_certificate(text, path, name, der),
            record,
        )
    }

    /// Stops trusting a certificate authority, by name or fingerprint.
    ///
    /// # Errors
    /// When none matches, the change cannot be recorded, or the policy cannot be read/written.
    pub fn trust_remove_certificate(
        &self,
        what: &str,
        record: Witness<'_, crate::policy::TrustedCertificate>,
    ) -> Result<crate::policy::TrustedCertificate, HomeError> {
        self.edit_policy(
            |text, path| policy::remove_trusted_certificate(text, path, what),
            record,
        )
    }

    /// Trusts a Sigstore signer (identity + OIDC issuer) under `name` (`record` as for
    /// [`Home::trust_add`]).
    ///
    /// # Errors
    /// When the name or identity is already trusted, the change cannot be recorded, or the
    /// policy cannot be read/written.
    pub fn trust_add_identity(
        &self,
        name: &str,
        identity: &rampart_crypto::sigstore::Identity,
        record: Witness<'_, crate::policy::TrustedIdentity>,
    ) -> Result<crate::policy::TrustedIdentity, HomeError> {
        self.edit_policy(
            |text, path| policy::add_trusted_identity(text, path, name, identity),
            record,
        )
    }

    /// Stops trusting a Sigstore signer, by name or identity.
    ///
    /// # Errors
    /// When none matches, the change cannot be recorded, or the policy cannot be read/written.
    pub fn trust_remove_identity(
        &self,
        what: &str,
        record: Witness<'_, crate::policy::TrustedIdentity>,
    ) -> Result<crate::policy::TrustedIdentity, HomeError> {
        self.edit_policy(
            |text, path| policy::remove_trusted_identity(text, path, what),
            record,
        )
    }

    /// Where an installed Sigstore trusted root lives (`rampart trust sigstore-root`).
    #[must_use]
    pub fn sigstore_root_path(&self) -> PathBuf {
        self.root.join("sigstore").join("trusted_root.json")
    }

    /// The Sigstore trusted root: the one installed in the home, else the public-good root
    /// pinned in this build.
    ///
    /// # Errors
    /// When the installed file cannot be read or is not a valid trusted root.
    pub fn sigstore_root(&self) -> Result<rampart_crypto::sigstore::TrustedRoot, HomeError> {
        let path = self.sigstore_root_path();
        let bad = |reason: String| HomeError::Policy {
            path: path.clone(),
            reason,
        };
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                rampart_crypto::sigstore::TrustedRoot::public_good().map_err(|e| bad(e.to_string()))
            }
            _ => {
                let text = crate::secure_fs::read_small_file(&path)?;
                rampart_crypto::sigstore::TrustedRoot::from_json(text.as_bytes())
                    .map_err(|e| bad(e.to_string()))
            }
        }
    }

    /// Installs a Sigstore trusted root (validated first), replacing the pinned one for this
    /// home. `record` runs before the file changes.
    ///
    /// # Errors
    /// When the file is not a valid trusted root, the change cannot be recorded, or it cannot
    /// be written.
    pub fn set_sigstore_root(
        &self,
        json: &[u8],
        record: Witness<'_, rampart_crypto::sigstore::TrustedRoot>,
    ) -> Result<rampart_crypto::sigstore::TrustedRoot, HomeError> {
        let path = self.sigstore_root_path();
        let root = rampart_crypto::sigstore::TrustedRoot::from_json(json).map_err(|e| {
            HomeError::Policy {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        self.require()?;
        record(&root).map_err(|reason| HomeError::Unrecorded {
            path: path.clone(),
            reason,
        })?;
        let dir = path.parent().unwrap_or(&self.root);
        secure_fs::create_private_dir(dir)?;
        secure_fs::atomic_write(&path, json, 0o644)?;
        Ok(root)
    }

    /// Everything the policy trusts beyond public keys, for verifying certificate and Sigstore
    /// bundles: the certificate authorities, and — when any Sigstore identity is trusted — the
    /// identities with the Sigstore trusted root.
    ///
    /// # Errors
    /// When a Sigstore identity is trusted and the trusted root is unusable.
    pub fn anchors(&self, policy: &Policy) -> Result<rampart_crypto::oms::Anchors, HomeError> {
        let identities = policy.trusted_identities();
        let sigstore = if identities.is_empty() {
            None
        } else {
            Some(rampart_crypto::oms::SigstoreTrust {
                root: std::sync::Arc::new(self.sigstore_root()?),
                identities,
            })
        };
        Ok(rampart_crypto::oms::Anchors {
            cert_roots: policy.trusted_roots(),
            sigstore,
        })
    }

    /// Reads the policy, computes the edit, has it recorded, then writes it atomically.
    fn edit_policy<T>(
        &self,
        edit: impl FnOnce(&str, &Path) -> Result<(String, T), HomeError>,
        record: Witness<'_, T>,
    ) -> Result<T, HomeError> {
        self.require()?;
        let path = self.policy_path();
        let text = secure_fs::read_small_file(&path)?;
        let (out, value) = edit(&text, &path)?;
        record(&value).map_err(|reason| HomeError::Unrecorded {
            path: path.clone(),
            reason,
        })?;
        secure_fs::atomic_write(&path, out.as_bytes(), 0o644)?;
        Ok(value)
    }
}

/// Called with a change after its checks and before it takes effect, to record it (the audit
/// log); an error refuses the change.
pub type Witness<'a, T> = &'a mut dyn FnMut(&T) -> Result<(), rampart_audit::NotRecorded>;

impl Home {
    /// Adds a directory to `data.roots`, stored as its canonical absolute path (so later
    /// checks compare real paths). The directory must exist.
    ///
    /// # Errors
    /// When it is not a directory, is already listed, or the policy cannot be read/written.
    pub fn data_root_add(
        &self,
        dir: &Path,
        record: Witness<'_, PathBuf>,
    ) -> Result<PathBuf, HomeError> {
        self.require()?;
        let real = std::fs::canonicalize(dir).map_err(HomeError::io("cannot resolve", dir))?;
        if !real.is_dir() {
            return Err(HomeError::Policy {
                path: self.policy_path(),
                reason: format!("{} is not a directory", dir.display()),
            });
        }
        self.edit_policy(
            |text, path| Ok((policy::add_data_root(text, path, &real)?, real.clone())),
            record,
        )
    }

    /// The content-addressed dataset store: `store/datasets/<sha256 of the clean CSV>/`.
    #[must_use]
    pub fn dataset_store(&self) -> PathBuf {
        self.root.join("store").join("datasets")
    }

    /// Where training runs go by default: `runs/`.
    #[must_use]
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Scratch space for runs in progress (decrypted inputs): `tmp/`.
    #[must_use]
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Pins a dataset digest (`sha256:` + hex) in `data.pins`: that exact content is accepted
    /// without a signature.
    ///
    /// # Errors
    /// When it is already pinned, malformed, or the policy cannot be read/written.
    pub fn data_pin_add(&self, digest: &str, record: Witness<'_, ()>) -> Result<(), HomeError> {
        self.edit_policy(
            |text, path| Ok((policy::add_data_pin(text, path, digest)?, ())),
            record,
        )
    }

    /// Removes a pinned digest.
    ///
    /// # Errors
    /// When it is not pinned, or the policy cannot be read/written.
    pub fn data_pin_remove(&self, digest: &str, record: Witness<'_, ()>) -> Result<(), HomeError> {
        self.edit_policy(
            |text, path| Ok((policy::remove_data_pin(text, path, digest)?, ())),
            record,
        )
    }

    /// Removes a directory from `data.roots` (as listed, or by its canonical path).
    ///
    /// # Errors
    /// When it is not listed, or the policy cannot be read/written.
    pub fn data_root_remove(
        &self,
        dir: &Path,
        record: Witness<'_, PathBuf>,
    ) -> Result<PathBuf, HomeError> {
        self.require()?;
        let listed = self.load_policy()?.data.roots;
        let target = if listed.iter().any(|r| r == dir) {
            dir.to_path_buf()
        } else {
            std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
        };
        self.edit_policy(
            |text, path| {
                Ok((
                    policy::remove_data_root(text, path, &target)?,
                    target.clone(),
                ))
            },
            record,
        )
    }
}

fn load_secret(
    env_value: &'static str,
    env_file: &'static str,
    default_path: PathBuf,
    what: &'static str,
) -> Result<(Zeroizing<String>, KeySource), HomeError> {
    if let Ok(value) = std::env::var(env_value)
        && !value.trim().is_empty()
    {
        return Ok((Zeroizing::new(value), KeySource::Env(env_value)));
    }
    let path = std::env::var_os(env_file)
        .filter(|v| !v.is_empty())
        .map_or(default_path, PathBuf::from);
    if !path.exists() {
        return Err(HomeError::MissingKey {
            what,
            path,
            var: env_file,
        });
    }
    let text = secure_fs::read_private_file(&path)?;
    Ok((text, KeySource::File(path)))
}

use rampart_crypto::now_rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn init_creates_private_layout_and_refuses_second_run() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("h"));
        let report = home.init().unwrap();
        assert!(report.policy_written);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(home.root()), 0o700);
        assert_eq!(mode(&home.keys_dir()), 0o700);
        assert_eq!(mode(&home.signing_key_path()), 0o600);
        assert_eq!(mode(&home.age_identity_path()), 0o600);
        let policy = home.load_policy().unwrap();
        assert_eq!(
            policy.trusted_keys()[0].1.fingerprint(),
            report.signing_fingerprint
        );
        assert_eq!(
            home.signing_public_key().unwrap().fingerprint(),
            report.signing_fingerprint
        );

        let before = std::fs::read(home.signing_key_path()).unwrap();
        let err = home.init().unwrap_err();
        assert!(matches!(err, HomeError::AlreadyInitialised { .. }));
        assert_eq!(std::fs::read(home.signing_key_path()).unwrap(), before);
    }
}
