//! ECDSA keys on the NIST curves OpenSSF model-signing accepts — P-256, P-384 and P-521 —
//! with the hash it pairs with each (SHA-256, SHA-384, SHA-512): generation, PEM encoding,
//! fingerprints, DER signatures.
//!
//! Security notes:
//! * Private keys are held by the RustCrypto `SigningKey` types, which zeroize on drop; the PEM
//!   text we read or write is held in [`zeroize::Zeroizing`] buffers.
//! * `Debug` on [`SigningKey`] prints only the public fingerprint.
//! * P-256 and P-384 signatures are deterministic (RFC 6979), so no randomness failure can leak
//!   the key; P-521 signatures draw their nonce from the operating system's CSPRNG (the `p521`
//!   crate offers no RFC 6979 signer), as OpenSSL's do.

use std::fmt;

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use zeroize::Zeroizing;

use crate::digest::{Digest, sha256};

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a P-256/384/521 private key in PKCS#8 or SEC1 PEM.
    #[error(
        "not an unencrypted ECDSA private key on P-256, P-384 or P-521 in PEM (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`)"
    )]
    BadPrivateKey,
    /// The text is not a P-256/384/521 public key in SubjectPublicKeyInfo PEM.
    #[error(
        "not an ECDSA public key on P-256, P-384 or P-521 in PEM (`BEGIN PUBLIC KEY`, SubjectPublicKeyInfo)"
    )]
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

/// The curves model-signing accepts, each with its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Curve {
    /// NIST P-256 (secp256r1) with SHA-256.
    P256,
    /// NIST P-384 (secp384r1) with SHA-384.
    P384,
    /// NIST P-521 (secp521r1) with SHA-512.
    P521,
}

impl Curve {
    /// `P-256`, `P-384`, `P-521`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// `ecdsa-p256-sha256`, `ecdsa-p384-sha384`, `ecdsa-p521-sha512`.
    #[must_use]
    pub const fn algorithm(self) -> &'static str {
        match self {
            Self::P256 => "ecdsa-p256-sha256",
            Self::P384 => "ecdsa-p384-sha384",
            Self::P521 => "ecdsa-p521-sha512",
        }
    }

    /// The hash signatures on this curve use, as model-signing pairs them.
    #[must_use]
    pub const fn hash(self) -> &'static str {
        match self {
            Self::P256 => "SHA-256",
            Self::P384 => "SHA-384",
            Self::P521 => "SHA-512",
        }
    }

    /// Parses `p256`, `P-256`, `secp256r1`, `prime256v1` and the like.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "p256" | "secp256r1" | "prime256v1" => Some(Self::P256),
            "p384" | "secp384r1" => Some(Self::P384),
            "p521" | "secp521r1" => Some(Self::P521),
            _ => None,
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A SHA-2 hash, for signatures whose hash is named apart from the curve (X.509 signature
/// algorithms, model_signing v0.2's SHA-256 on every curve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Self::Sha256 => sha2::Sha256::digest(message).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(message).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }
}

#[derive(Clone)]
enum Verifying {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

/// An ECDSA public key on P-256, P-384 or P-521.
#[derive(Clone)]
pub struct PublicKey {
    key: Verifying,
    /// The canonical PEM, computed once: it is the key's identity (fingerprint, equality).
    pem: String,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.pem == other.pem
    }
}

impl Eq for PublicKey {}

impl PublicKey {
    fn new(key: Verifying) -> Self {
        // Encoding a valid in-memory key cannot fail; an empty string would only make the
        // fingerprint not match anything, never match a wrong key.
        let pem = match &key {
            Verifying::P256(k) => k.to_public_key_pem(LineEnding::LF).ok(),
            Verifying::P384(k) => k.to_public_key_pem(LineEnding::LF).ok(),
            Verifying::P521(k) => {
                p521::PublicKey::from_sec1_bytes(k.to_encoded_point(false).as_bytes())
                    .ok()
                    .and_then(|p| p.to_public_key_pem(LineEnding::LF).ok())
            }
        }
        .unwrap_or_default();
        Self { key, pem }
    }

    /// Reads a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`) on P-256, P-384 or
    /// P-521. CRLF line endings and compressed points are accepted; the canonical form is
    /// re-derived.
    ///
    /// # Errors
    /// [`KeyError::BadPublicKey`] for anything else.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let normalised = pem.replace("\r\n", "\n");
        let (label, der) = x509_cert::der::pem::decode_vec(normalised.trim().as_bytes())
            .map_err(|_| KeyError::BadPublicKey)?;
        if label != "PUBLIC KEY" {
            return Err(KeyError::BadPublicKey);
        }
        Self::from_spki_der(&der)
    }

    /// Reads a DER SubjectPublicKeyInfo (as in an X.509 certificate) on P-256, P-384 or P-521.
    ///
    /// # Errors
    /// [`KeyError::BadPublicKey`] for anything else.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(Self::new(Verifying::P256(k)));
        }
        if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(der) {
            return Ok(Self::new(Verifying::P384(k)));
        }
        p521::PublicKey::from_public_key_der(der)
            .ok()
            .and_then(|p| {
                p521::ecdsa::VerifyingKey::from_sec1_bytes(p.to_encoded_point(false).as_bytes())
                    .ok()
            })
            .map(|k| Self::new(Verifying::P521(k)))
            .ok_or(KeyError::BadPublicKey)
    }

    /// Verifies a DER ECDSA signature over `message` hashed with `hash` (whatever the curve).
    ///
    /// # Errors
    /// As [`Self::verify`].
    pub fn verify_with(
        &self,
        hash: Hash,
        message: &[u8],
        der: &[u8],
    ) -> Result<(), SignatureError> {
        use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
        let digest = hash.digest(message);
        match &self.key {
            Verifying::P256(k) => {
                let sig =
                    p256::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::Malformed)?;
                k.verify_prehash(&digest, &sig)
            }
            Verifying::P384(k) => {
                let sig =
                    p384::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::Malformed)?;
                k.verify_prehash(&digest, &sig)
            }
            Verifying::P521(k) => {
                let sig =
                    p521::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::Malformed)?;
                k.verify_prehash(&digest, &sig)
            }
        }
        .map_err(|_| SignatureError::Invalid)
    }

    /// The curve.
    #[must_use]
    pub const fn curve(&self) -> Curve {
        match self.key {
            Verifying::P256(_) => Curve::P256,
            Verifying::P384(_) => Curve::P384,
            Verifying::P521(_) => Curve::P521,
        }
    }

    /// The canonical PEM: SPKI DER with an uncompressed point, base64 in 64-column lines, LF line
    /// endings, trailing newline — byte for byte what OpenSSL and Python's `cryptography` write.
    #[must_use]
    pub fn to_pem(&self) -> String {
        self.pem.clone()
    }

    /// SHA-256 of [`Self::to_pem`].
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint(sha256(self.pem.as_bytes()))
    }

    /// Verifies a DER ECDSA signature over `message`, hashed with the curve's hash
    /// ([`Curve::hash`]).
    ///
    /// # Errors
    /// [`SignatureError::Malformed`] when `der` is not DER, [`SignatureError::Invalid`] when it
    /// does not verify.
    pub fn verify(&self, message: &[u8], der: &[u8]) -> Result<(), SignatureError> {
        match &self.key {
            Verifying::P256(k) => {
                let sig =
                    p256::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::Malformed)?;
                k.verify(message, &sig)
            }
            Verifying::P384(k) => {
                let sig =
                    p384::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::Malformed)?;
                k.verify(message, &sig)
            }
            Verifying::P521(k) => {
                let sig =
                    p521::ecdsa::Signature::from_der(der).map_err(|_| SignatureError::Malformed)?;
                k.verify(message, &sig)
            }
        }
        .map_err(|_| SignatureError::Invalid)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, {})", self.curve(), self.fingerprint())
    }
}

enum Secret {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
}

/// An ECDSA private key on P-256, P-384 or P-521.
pub struct SigningKey {
    key: Secret,
}

impl SigningKey {
    /// A new random P-256 key from the operating system's CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        Self::generate_on(Curve::P256)
    }

    /// A new random key on `curve` from the operating system's CSPRNG.
    #[must_use]
    pub fn generate_on(curve: Curve) -> Self {
        let rng = &mut rand_core::OsRng;
        Self {
            key: match curve {
                Curve::P256 => Secret::P256(p256::ecdsa::SigningKey::random(rng)),
                Curve::P384 => Secret::P384(p384::ecdsa::SigningKey::random(rng)),
                Curve::P521 => Secret::P521(p521::ecdsa::SigningKey::random(rng)),
            },
        }
    }

    /// Reads an unencrypted PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM on P-256,
    /// P-384 or P-521.
    ///
    /// # Errors
    /// [`KeyError::BadPrivateKey`] for anything else. The error never contains key material.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let normalised = Zeroizing::new(pem.replace("\r\n", "\n"));
        let text = normalised.trim();
        let key = if let Ok(k) =
            p256::SecretKey::from_pkcs8_pem(text).or_else(|_| p256::SecretKey::from_sec1_pem(text))
        {
            Secret::P256(k.into())
        } else if let Ok(k) =
            p384::SecretKey::from_pkcs8_pem(text).or_else(|_| p384::SecretKey::from_sec1_pem(text))
        {
            Secret::P384(k.into())
        } else {
            let k = p521::SecretKey::from_pkcs8_pem(text)
                .or_else(|_| p521::SecretKey::from_sec1_pem(text))
                .map_err(|_| KeyError::BadPrivateKey)?;
            let bytes = Zeroizing::new(k.to_bytes());
            Secret::P521(
                p521::ecdsa::SigningKey::from_bytes(&bytes).map_err(|_| KeyError::BadPrivateKey)?,
            )
        };
        Ok(Self { key })
    }

    /// The curve.
    #[must_use]
    pub const fn curve(&self) -> Curve {
        match self.key {
            Secret::P256(_) => Curve::P256,
            Secret::P384(_) => Curve::P384,
            Secret::P521(_) => Curve::P521,
        }
    }

    /// The PKCS#8 PEM, in a buffer that is zeroized when dropped.
    ///
    /// # Errors
    /// [`KeyError::Encode`] if encoding fails (an internal error).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        match &self.key {
            Secret::P256(k) => k.to_pkcs8_pem(LineEnding::LF),
            Secret::P384(k) => k.to_pkcs8_pem(LineEnding::LF),
            Secret::P521(k) => p521::SecretKey::from_bytes(&Zeroizing::new(k.to_bytes()))
                .map_err(|_| p256::pkcs8::Error::KeyMalformed)
                .and_then(|s| s.to_pkcs8_pem(LineEnding::LF)),
        }
        .map_err(|_| KeyError::Encode)
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        PublicKey::new(match &self.key {
            Secret::P256(k) => Verifying::P256(*k.verifying_key()),
            Secret::P384(k) => Verifying::P384(*k.verifying_key()),
            Secret::P521(k) => Verifying::P521(p521::ecdsa::VerifyingKey::from(k)),
        })
    }

    /// Signs `message` with ECDSA and the curve's hash ([`Curve::hash`]) and returns the ASN.1
    /// DER signature.
    #[must_use]
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            Secret::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            Secret::P384(k) => {
                let sig: p384::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
            Secret::P521(k) => {
                let sig: p521::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({}, {}, private)",
            self.curve(),
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
    fn every_curve_signs_verifies_and_round_trips() {
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            let key = SigningKey::generate_on(curve);
            assert_eq!(key.curve(), curve);
            let public = key.public_key();
            assert_eq!(public.curve(), curve);
            let back = SigningKey::from_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
            assert_eq!(back.public_key(), public, "{curve}");
            assert_eq!(PublicKey::from_pem(&public.to_pem()).unwrap(), public);
            let sig = key.sign(b"message");
            assert!(public.verify(b"message", &sig).is_ok(), "{curve}");
            assert!(matches!(
                public.verify(b"massage", &sig),
                Err(SignatureError::Invalid)
            ));
            for other in [Curve::P256, Curve::P384, Curve::P521] {
                let wrong = SigningKey::generate_on(other).public_key();
                assert!(
                    wrong.verify(b"message", &sig).is_err(),
                    "{curve} vs {other}"
                );
            }
        }
    }

    /// The hash is the curve's: a P-384 signature over the SHA-256 of the message (what a
    /// P-256-only verifier would compute) does not verify, and the P-384 signer hashes with
    /// SHA-384 (checked against p384's prehash verifier).
    #[test]
    fn each_curve_uses_its_own_hash() {
        use p384::ecdsa::signature::hazmat::PrehashVerifier as _;
        use sha2::Digest as _;
        let key = SigningKey::generate_on(Curve::P384);
        let sig = key.sign(b"message");
        let Verifying::P384(vk) = &key.public_key().key else {
            panic!("not P-384")
        };
        let parsed = p384::ecdsa::Signature::from_der(&sig).unwrap();
        assert!(
            vk.verify_prehash(&sha2::Sha384::digest(b"message"), &parsed)
                .is_ok()
        );
        assert!(
            vk.verify_prehash(&sha2::Sha256::digest(b"message"), &parsed)
                .is_err()
        );
        assert_eq!(Curve::parse("secp521r1"), Some(Curve::P521));
        assert_eq!(Curve::P521.hash(), "SHA-512");
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
