//! age X25519 identities in the text format `age-keygen` writes.

use std::fmt;

use secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

/// An age X25519 identity (private key) and its recipient (public key).
pub struct AgeIdentity {
    identity: age::x25519::Identity,
}

impl AgeIdentity {
    /// A fresh random identity.
    #[must_use]
    pub fn generate() -> Self {
        Self {
            identity: age::x25519::Identity::generate(),
        }
    }

    /// Reads an identity file as `age-keygen` writes it: comment lines starting with `#`, blank
    /// lines, and one `AGE-SECRET-KEY-1…` line.
    ///
    /// # Errors
    /// When there is not exactly one valid identity line. The error never contains key material.
    pub fn from_text(text: &str) -> Result<Self, crate::KeyError> {
        let mut found = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if found.is_some() {
                return Err(crate::KeyError::BadPrivateKey);
            }
            found = Some(
                line.parse::<age::x25519::Identity>()
                    .map_err(|_| crate::KeyError::BadPrivateKey)?,
            );
        }
        found
            .map(|identity| Self { identity })
            .ok_or(crate::KeyError::BadPrivateKey)
    }

    /// The identity file text, `age-keygen` style, zeroized on drop.
    #[must_use]
    pub fn to_text(&self, created: &str) -> Zeroizing<String> {
        let secret = self.identity.to_string();
        Zeroizing::new(format!(
            "# created: {created}\n# public key: {}\n{}\n",
            self.recipient(),
            secret.expose_secret()
        ))
    }

    /// The recipient string (`age1…`), safe to share.
    #[must_use]
    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    /// The underlying `age` identity, for decryption.
    #[must_use]
    pub const fn as_age(&self) -> &age::x25519::Identity {
        &self.identity
    }
}

impl fmt::Debug for AgeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgeIdentity({}, private)", self.recipient())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip() {
        let id = AgeIdentity::generate();
        let text = id.to_text("2026-01-01T00:00:00Z");
        assert!(text.contains("AGE-SECRET-KEY-1"));
        let back = AgeIdentity::from_text(&text).unwrap();
        assert_eq!(back.recipient(), id.recipient());
        assert!(back.recipient().starts_with("age1"));
        assert!(!format!("{id:?}").contains("AGE-SECRET"));
        assert!(AgeIdentity::from_text("# nothing\n").is_err());
        let twice = format!("{}{}", text.as_str(), text.as_str());
        assert!(AgeIdentity::from_text(&twice).is_err());
    }
}
