//! ECDSA P-256 keys: generation, PEM encoding, fingerprints, DER signatures.
//!
//! Security notes:
//! * The private key is held by `p256::ecdsa::SigningKey`, which zeroizes on drop; the PEM text
//!   we read or write is held in [`zeroize::Zeroizing`] buffers.
//! * `Debug` on [`SigningKey`] prints only the public fingerprint.
//! * Signatures are deterministic (RFC 6979), so no randomness failure can leak the key.

use std::fmt;

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use zeroize::Zeroizing;

use crate::digest::{Digest, sha256};

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a P-256 private key in PKCS#8 or SEC1 PEM.
    #[error(
        "not an unencrypted ECDSA P-256 private key in PEM (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`)"
    )]
    BadPrivateKey,
    /// The text is not a P-256 public key in SubjectPublicKeyInfo PEM.
    #[error("not an ECDSA P-256 public key in PEM (`BEGIN PUBLIC KEY`, SubjectPublicKeyInfo)")]
    BadPublicKey,
    /// Encoding a key failed (an internal error).
    #[error("could not encode the key as PEM")]
    Encode,
}

/// A signature did not verify, or is not DER.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The bytes are not an ASN.1 DER ECDSA signature.
    #[error("the signature is not a DER-encoded ECDSA signature")]
    Malformed,
    /// Well-formed, but not made by this key over these bytes.
    #[error("the signature does not match the key and the signed bytes")]
    Invalid,
}

/// The SHA-256 of a public key's canonical PEM text (the OpenSSF model-signing key hint).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(Digest);

impl Fingerprint {
    /// The underlying digest.
    #[must_use]
    pub const fn digest(&self) -> &Digest {
        &self.0
    }

    /// Lower-case hex, as model-signing writes it in `publicKey.hint`.
    #[must_use]
    pub fn to_hex(&self) -> String {
        self.0.to_hex()
    }

    /// Parses `sha256:HEX` or bare `HEX`.
    ///
    /// # Errors
    /// When the text is not a SHA-256 digest.
    pub fn from_hex(text: &str) -> Result<Self, crate::DigestParseError> {
        Digest::from_hex(text).map(Self)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0.to_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: p256::ecdsa::VerifyingKey,
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`). CRLF line endings and
    /// compressed points are accepted; the canonical form is re-derived.
    ///
    /// # Errors
    /// [`KeyError::BadPublicKey`] for anything else.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let normalised = pem.replace("\r\n", "\n");
        p256::ecdsa::VerifyingKey::from_public_key_pem(normalised.trim())
            .map(|key| Self { key })
            .map_err(|_| KeyError::BadPublicKey)
    }

    /// The canonical PEM: SPKI DER with an uncompressed point, base64 in 64-column lines, LF line
    /// endings, trailing newline — byte for byte what OpenSSL and Python's `cryptography` write.
    #[must_use]
    pub fn to_pem(&self) -> String {
        // Encoding a valid in-memory key cannot fail; an empty string would only make the
        // fingerprint not match anything, never match a wrong key.
        self.key
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// SHA-256 of [`Self::to_pem`].
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(sha256(self.to_pem().as_bytes()))
    }

    /// Verifies a DER ECDSA-SHA256 signature over `message`.
    ///
    /// # Errors
    /// [`SignatureError::Malformed`] when `der` is not DER, [`SignatureError::Invalid`] when it
    /// does not verify.
    pub fn verify(&self, message: &[u8], der: &[u8]) -> Result<(), SignatureError> {
        let sig = p256::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::Malformed)?;
        self.key
            .verify(message, &sig)
            .map_err(|_| SignatureError::Invalid)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

/// An ECDSA P-256 private key.
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
}

impl SigningKey {
    /// A new random key from the operating system's CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        Self {
            key: p256::ecdsa::SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// Reads an unencrypted PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM.
    ///
    /// # Errors
    /// [`KeyError::BadPrivateKey`] for anything else. The error never contains key material.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let normalised = Zeroizing::new(pem.replace("\r\n", "\n"));
        let text = normalised.trim();
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(text) {
            return Ok(Self { key });
        }
        p256::SecretKey::from_sec1_pem(text)
            .map(|secret| Self { key: secret.into() })
            .map_err(|_| KeyError::BadPrivateKey)
    }

    /// The PKCS#8 PEM, in a buffer that is zeroized when dropped.
    ///
    /// # Errors
    /// [`KeyError::Encode`] if encoding fails (an internal error).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| KeyError::Encode)
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: *self.key.verifying_key(),
        }
    }

    /// Signs `message` with ECDSA-SHA256 and returns the ASN.1 DER signature.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let sig: p256::ecdsa::Signature = self.key.sign(message);
        sig.to_der().as_bytes().to_vec()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({}, private)",
            self.public_key().fingerprint()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The throw-away test key pair from the model-signing interop vectors.
    const TEST_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE";

    #[test]
    fn generated_key_round_trips_through_pem() {
        let key = SigningKey::generate();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let public = key.public_key().to_pem();
        assert!(public.starts_with(TEST_PUB.split("MFkw").next().unwrap()));
        assert!(public.ends_with("-----END PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::from_pem(&public).unwrap(), key.public_key());
        // CRLF input gives the same canonical key and fingerprint.
        let crlf = public.replace('\n', "\r\n");
        assert_eq!(
            PublicKey::from_pem(&crlf).unwrap().fingerprint(),
            key.public_key().fingerprint()
        );
    }

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let sig = key.sign(b"message");
        assert!(key.public_key().verify(b"message", &sig).is_ok());
        assert!(matches!(
            key.public_key().verify(b"massage", &sig),
            Err(SignatureError::Invalid)
        ));
        assert!(matches!(
            other.public_key().verify(b"message", &sig),
            Err(SignatureError::Invalid)
        ));
        assert!(matches!(
            key.public_key().verify(b"message", b"\x30\x02junk"),
            Err(SignatureError::Malformed)
        ));
    }

    #[test]
    fn debug_never_shows_private_material() {
        let key = SigningKey::generate();
        let pem = key.to_pkcs8_pem().unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("sha256:"));
        let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
        assert!(!debug.contains(&body));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(KeyError::BadPrivateKey)
        ));
        assert!(matches!(
            PublicKey::from_pem("hello"),
            Err(KeyError::BadPublicKey)
        ));
    }
}
