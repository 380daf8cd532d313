//! DSSE (Dead Simple Signing Envelope) v1 and the Sigstore bundle that carries one.
//!
//! The signature covers the pre-authentication encoding
//! `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, never the JSON around it, so
//! the envelope can be re-serialised freely. Bundles are parsed strictly (unknown fields in the
//! bundle, verification material, envelope and signature layers are errors, as
//! `model_signing` does) and with size limits, and only the *key* method is supported: a
//! `publicKey` hint, no certificates, no transparency log.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{PublicKey, SigningKey};

/// The only bundle media type accepted and written.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The in-toto payload type.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The largest bundle file read.
pub const MAX_BUNDLE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a bundle could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bundle is not valid JSON or not of the expected shape.
    #[error("not a valid Sigstore bundle: {0}")]
    Malformed(String),
    /// A valid bundle using something rampart does not support.
    #[error("unsupported bundle: {0}")]
    Unsupported(String),
    /// The bundle names a key that is not the one offered / trusted.
    #[error("key mismatch: the bundle was signed by key {hint}, which is not {expected}")]
    KeyMismatch {
        /// The bundle's key hint.
        hint: String,
        /// What was expected (a fingerprint or "a trusted key").
        expected: String,
    },
    /// No trusted key verifies the signature.
    #[error("the signature does not verify with {0}")]
    BadSignature(String),
}

/// DSSE pre-authentication encoding.
#[must_use]
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawBundle {
    media_type: String,
    verification_material: RawMaterial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dsse_envelope: Option<RawEnvelope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_signature: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMaterial {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public_key: Option<RawPublicKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x509_certificate_chain: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<serde_json::Value>,
    #[serde(default)]
    tlog_entries: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp_verification_data: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPublicKey {
    #[serde(default)]
    hint: Option<String>,
    /// Legacy (model_signing < 1.1): the key itself. Ignored: the verifier's key decides.
    #[serde(default, skip_serializing)]
    #[allow(dead_code)]
    raw_bytes: Option<String>,
    #[serde(default, skip_serializing)]
    #[allow(dead_code)]
    key_details: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEnvelope {
    payload: String,
    payload_type: String,
    signatures: Vec<RawSignature>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignature {
    sig: String,
    #[serde(default)]
    keyid: Option<String>,
}

/// A Sigstore bundle (key method) holding one DSSE envelope, parsed but not yet verified.
#[derive(Debug, Clone)]
pub struct UnverifiedBundle {
    hint: Option<String>,
    payload_type: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// A bundle whose signature verified: the payload can be trusted to come from `key`.
#[derive(Debug, Clone)]
pub struct VerifiedPayload {
    /// The payload bytes (the in-toto statement).
    pub payload: Vec<u8>,
    /// The key that signed it.
    pub key: PublicKey,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl UnverifiedBundle {
    /// Parses bundle JSON. Strict about structure, lenient where model_signing is (missing
    /// `tlogEntries`, null or empty `hint`, `keyid` absent / null / empty, legacy `rawBytes`).
    ///
    /// # Errors
    /// [`BundleError::Malformed`] for anything that is not a well-formed key-method bundle.
    pub fn parse(bytes: &[u8]) -> Result<Self, BundleError> {
        if bytes.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(BundleError::Malformed(format!(
                "larger than {MAX_BUNDLE_BYTES} bytes"
            )));
        }
        let raw: RawBundle =
            serde_json::from_slice(bytes).map_err(|e| BundleError::Malformed(e.to_string()))?;
        if raw.media_type != BUNDLE_MEDIA_TYPE {
            return Err(BundleError::Unsupported(format!(
                "media type {:?} (expected {BUNDLE_MEDIA_TYPE:?})",
                raw.media_type
            )));
        }
        let material = raw.verification_material;
        if material.x509_certificate_chain.is_some() || material.certificate.is_some() {
            return Err(BundleError::Unsupported(
                "certificate-based bundles (only the private-key method is supported)".into(),
            ));
        }
        let Some(public_key) = material.public_key else {
            return Err(BundleError::Malformed(
                "verificationMaterial has no publicKey".into(),
            ));
        };
        if raw.message_signature.is_some() {
            return Err(BundleError::Unsupported(
                "messageSignature bundles (a DSSE envelope is required)".into(),
            ));
        }
        let envelope = raw
            .dsse_envelope
            .ok_or_else(|| BundleError::Malformed("no dsseEnvelope".into()))?;
        let first = envelope
            .signatures
            .first()
            .ok_or_else(|| BundleError::Malformed("the envelope has no signature".into()))?;
        let payload = b64()
            .decode(envelope.payload.as_bytes())
            .map_err(|e| BundleError::Malformed(format!("payload is not base64: {e}")))?;
        let signature = b64()
            .decode(first.sig.as_bytes())
            .map_err(|e| BundleError::Malformed(format!("signature is not base64: {e}")))?;
        let _ = &first.keyid;
        Ok(Self {
            hint: public_key.hint.filter(|h| !h.is_empty()),
            payload_type: envelope.payload_type,
            payload,
            signature,
        })
    }

    /// The key hint (hex SHA-256 of the signer's public key PEM), if the bundle has one.
    #[must_use]
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Verifies the first signature (as model_signing does) with one of `keys`. With a hint,
    /// only the key it names is tried, and a hint naming none of `keys` is a key mismatch.
    ///
    /// # Errors
    /// [`BundleError::KeyMismatch`], [`BundleError::BadSignature`], or
    /// [`BundleError::Malformed`] for a wrong payload type.
    pub fn verify(self, keys: &[PublicKey]) -> Result<VerifiedPayload, BundleError> {
        if keys.is_empty() {
            return Err(BundleError::BadSignature(
                "no key: none was given and no key is trusted".into(),
            ));
        }
        let candidates: Vec<&PublicKey> = match &self.hint {
            Some(hint) => {
                let matching: Vec<_> = keys
                    .iter()
                    .filter(|k| k.fingerprint().to_hex().eq_ignore_ascii_case(hint))
                    .collect();
                if matching.is_empty() {
                    return Err(BundleError::KeyMismatch {
                        hint: format!("sha256:{hint}"),
                        expected: match keys {
                            [one] => one.fingerprint().to_string(),
                            _ => "any trusted key".into(),
                        },
                    });
                }
                matching
            }
            None => keys.iter().collect(),
        };
        let signed = pae(&self.payload_type, &self.payload);
        let key = candidates
            .into_iter()
            .find(|k| k.verify(&signed, &self.signature).is_ok())
            .ok_or_else(|| {
                BundleError::BadSignature(match keys {
                    [one] => format!("key {}", one.fingerprint()),
                    _ => "any trusted key".into(),
                })
            })?;
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(BundleError::Malformed(format!(
                "payload type {:?} is not {IN_TOTO_PAYLOAD_TYPE:?}",
                self.payload_type
            )));
        }
        Ok(VerifiedPayload {
            payload: self.payload,
            key: key.clone(),
        })
    }
}

/// Signs `payload` (an in-toto statement) and returns the bundle JSON, exactly in the shape
/// model_signing writes: compact, key hint set, `tlogEntries: []`, `keyid: ""`.
#[must_use]
pub fn sign_bundle(key: &SigningKey, payload: &[u8]) -> Vec<u8> {
    let signature = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, payload));
    let bundle = RawBundle {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material: RawMaterial {
            public_key: Some(RawPublicKey {
                hint: Some(key.public_key().fingerprint().to_hex()),
                raw_bytes: None,
                key_details: None,
            }),
            x509_certificate_chain: None,
            certificate: None,
            tlog_entries: Vec::new(),
            timestamp_verification_data: None,
        },
        dsse_envelope: Some(RawEnvelope {
            payload: b64().encode(payload),
            payload_type: IN_TOTO_PAYLOAD_TYPE.into(),
            signatures: vec![RawSignature {
                sig: b64().encode(signature),
                keyid: Some(String::new()),
            }],
        }),
        message_signature: None,
    };
    serde_json::to_vec(&bundle).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn round_trip_and_tamper() {
        let key = SigningKey::generate();
        let bundle = sign_bundle(&key, b"{\"a\":1}");
        let text = String::from_utf8(bundle.clone()).unwrap();
        assert!(text.starts_with(r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":""#));
        assert!(text.contains(r#""tlogEntries":[]"#) && text.contains(r#""keyid":"""#));
        let verified = UnverifiedBundle::parse(&bundle)
            .unwrap()
            .verify(&[key.public_key()])
            .unwrap();
        assert_eq!(verified.payload, b"{\"a\":1}");
        let other = SigningKey::generate();
        assert!(matches!(
            UnverifiedBundle::parse(&bundle)
                .unwrap()
                .verify(&[other.public_key()]),
            Err(BundleError::KeyMismatch { .. })
        ));
        // Extra fields at the bundle layer are refused, as model_signing refuses them.
        let extra = text.replacen('{', r#"{"x-rampart":1,"#, 1);
        assert!(matches!(
            UnverifiedBundle::parse(extra.as_bytes()),
            Err(BundleError::Malformed(_))
        ));
        for cut in [0, 10, text.len() / 2, text.len() - 1] {
            assert!(UnverifiedBundle::parse(&bundle[..cut]).is_err());
        }
    }
}
