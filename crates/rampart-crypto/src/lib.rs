//! Cryptographic vocabulary shared by every rampart crate.
//!
//! * [`Digest`]: a SHA-256 digest with a stable hex form, and [`sha256`] to make one.
//! * [`SigningKey`] / [`PublicKey`]: ECDSA keys on P-256, P-384 or P-521 ([`Curve`]) in PEM,
//!   the key types OpenSSF model-signing signs and verifies with. A key's [`Fingerprint`] is the SHA-256 of its canonical
//!   SubjectPublicKeyInfo PEM text, which is exactly the `publicKey.hint` that model-signing
//!   writes into its bundles, so a bundle names the key that signed it.
//! * [`AgeIdentity`]: an age X25519 identity in the format `age-keygen` writes, and
//!   [`age_file`]: streaming encryption at rest in the age format.
//!
//! Private material lives in zeroizing types and never implements `Debug` with its contents.
//!
//! ```
//! use rampart_crypto::SigningKey;
//! let key = SigningKey::generate();
//! let sig = key.sign(b"hello");
//! assert!(key.public_key().verify(b"hello", &sig).is_ok());
//! assert!(key.public_key().verify(b"hellO", &sig).is_err());
//! ```

pub mod age_file;
mod age_identity;
mod digest;
pub mod dsse;
mod ecdsa;
pub mod oms;
pub mod provenance;
pub mod sigstore;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod sigstore_testing;
pub mod x509;

pub use age_identity::AgeIdentity;

/// Now, UTC, as RFC 3339 (the one timestamp format every record, manifest and database row
/// of rampart uses).
#[must_use]
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
pub use digest::{Digest, DigestParseError, DigestRef, Sha256Hasher, sha256};
pub use ecdsa::{Curve, Fingerprint, Hash, KeyError, PublicKey, SignatureError, SigningKey};
