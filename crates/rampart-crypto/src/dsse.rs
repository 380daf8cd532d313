//! DSSE (Dead Simple Signing Envelope) v1 and the Sigstore bundle that carries one.
//!
//! The signature covers the pre-authentication encoding
//! `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`, never the JSON around it, so
//! the envelope can be re-serialised freely. Bundles are parsed strictly (unknown fields in the
//! bundle, verification material, envelope and signature layers are errors, as
//! `model_signing` does) and with size limits. Two methods are supported: the *key* method (a
//! `publicKey` hint) and the *certificate* method (an `x509CertificateChain`, validated by
//! [`crate::x509`] against roots the verifier trusts). A bundle with a transparency-log entry is a
//! *Sigstore* bundle, verified offline by [`crate::sigstore`].

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::{PublicKey, SigningKey};

/// The bundle media type written.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Every bundle media type read: v0.3 in both spellings, and v0.1 / v0.2, which older
/// sigstore-python and model_signing releases wrote for Sigstore bundles.
pub const BUNDLE_MEDIA_TYPES: &[&str] = &[
    BUNDLE_MEDIA_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];
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
    /// The bundle's certificate chain is not trusted or may not sign.
    #[error(transparent)]
    Certificate(#[from] crate::x509::X509Error),
    /// A Sigstore bundle that does not verify offline (log entry, Fulcio chain, identity, …).
    #[error(transparent)]
    Sigstore(#[from] crate::sigstore::SigstoreError),
}

/// model_signing v0.2.0's encoding (a bug it still verifies for compatibility): `DSSEV1`, and
/// the payload written as Python's `repr` of a bytes object.
fn pae_compat(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let quote = if payload.contains(&b'\'') && !payload.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut repr = String::with_capacity(payload.len() + 3);
    repr.push('b');
    repr.push(quote);
    for &b in payload {
        match b {
            b'\\' => repr.push_str("\\\\"),
            b'\t' => repr.push_str("\\t"),
            b'\n' => repr.push_str("\\n"),
            b'\r' => repr.push_str("\\r"),
            _ if char::from(b) == quote => {
                repr.push('\\');
                repr.push(quote);
            }
            0x20..=0x7e => repr.push(char::from(b)),
            _ => repr.push_str(&format!("\\x{b:02x}")),
        }
    }
    repr.push(quote);
    format!(
        "DSSEV1 {} {payload_type} {} {repr}",
        payload_type.len(),
        payload.len()
    )
    .into_bytes()
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    certificates: Vec<RawCert>,
}

/// A Sigstore bundle holding one DSSE envelope, parsed but not yet verified.
#[derive(Debug, Clone)]
pub struct UnverifiedBundle {
    hint: Option<String>,
    /// The certificate method's chain (DER, signing certificate first); empty for the key
    /// method.
    chain: Vec<Vec<u8>>,
    payload_type: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
    /// Sigstore's transparency-log entries (empty for the key and certificate methods).
    tlog_entries: Vec<serde_json::Value>,
    /// The media type is v0.1 (entries may lack an inclusion proof).
    v0_1: bool,
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
        if !BUNDLE_MEDIA_TYPES.contains(&raw.media_type.as_str()) {
            return Err(BundleError::Unsupported(format!(
                "media type {:?} (expected {BUNDLE_MEDIA_TYPE:?} or an earlier Sigstore bundle version)",
                raw.media_type
            )));
        }
        let v0_1 = raw.media_type.ends_with("version=0.1");
        let material = raw.verification_material;
        let mut chain = Vec::new();
        let mut certs: Vec<RawCert> = Vec::new();
        if let Some(c) = material.x509_certificate_chain {
            let c: RawChain = serde_json::from_value(c)
                .map_err(|e| BundleError::Malformed(format!("x509CertificateChain: {e}")))?;
            certs.extend(c.certificates);
        }
        if let Some(c) = material.certificate {
            certs.push(
                serde_json::from_value(c)
                    .map_err(|e| BundleError::Malformed(format!("certificate: {e}")))?,
            );
        }
        if certs.len() > crate::x509::MAX_CHAIN {
            return Err(BundleError::Malformed(format!(
                "{} certificates (the limit is {})",
                certs.len(),
                crate::x509::MAX_CHAIN
            )));
        }
        for c in certs {
            chain.push(b64().decode(c.raw_bytes.as_bytes()).map_err(|e| {
                BundleError::Malformed(format!("a certificate is not base64: {e}"))
            })?);
        }
        if material.tlog_entries.len() > 16 {
            return Err(BundleError::Malformed(format!(
                "{} transparency log entries",
                material.tlog_entries.len()
            )));
        }
        if !material.tlog_entries.is_empty() && chain.is_empty() {
            return Err(BundleError::Unsupported(
                "a transparency log entry for a public-key signature: only Sigstore certificate bundles carry log entries".into(),
            ));
        }
        let public_key = match (material.public_key, chain.is_empty()) {
            (Some(k), true) => k,
            (None, false) => RawPublicKey {
                hint: None,
                raw_bytes: None,
                key_details: None,
            },
            (Some(_), false) => {
                return Err(BundleError::Malformed(
                    "verificationMaterial has both a publicKey and certificates".into(),
                ));
            }
            (None, true) => {
                return Err(BundleError::Malformed(
                    "verificationMaterial has neither a publicKey nor a certificate".into(),
                ));
            }
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
            chain,
            payload_type: envelope.payload_type,
            payload,
            signature,
            tlog_entries: material.tlog_entries,
            v0_1,
        })
    }

    /// model_signing signs in-toto statements only.
    fn check_payload_type(&self) -> Result<(), BundleError> {
        if self.payload_type == IN_TOTO_PAYLOAD_TYPE {
            Ok(())
        } else {
            Err(BundleError::Malformed(format!(
                "payload type {:?} is not {IN_TOTO_PAYLOAD_TYPE:?}",
                self.payload_type
            )))
        }
    }

    /// Whether this is a Sigstore bundle (a Fulcio certificate and a transparency-log entry).
    #[must_use]
    pub fn is_sigstore(&self) -> bool {
        !self.tlog_entries.is_empty()
    }

    /// Verifies a Sigstore bundle offline (see [`crate::sigstore`]): the log entry against
    /// `root`, the certificate's chain, SCT and identity (one of `identities`), then the
    /// signature.
    ///
    /// # Errors
    /// [`BundleError::Sigstore`] naming the check that failed.
    pub fn verify_sigstore(
        self,
        root: &crate::sigstore::TrustedRoot,
        identities: &[crate::sigstore::Identity],
    ) -> Result<(VerifiedPayload, crate::sigstore::SigstoreSigner), BundleError> {
        let Some(certificate) = self.chain.first().filter(|_| self.is_sigstore()) else {
            return Err(BundleError::Unsupported(
                "not a Sigstore bundle (it has no transparency log entry): verify it with its key or certificate chain".into(),
            ));
        };
        let signer = crate::sigstore::verify(
            &crate::sigstore::Material {
                certificate,
                tlog_entries: &self.tlog_entries,
                v0_1: self.v0_1,
                payload_type: &self.payload_type,
                payload: &self.payload,
                signature: &self.signature,
            },
            root,
            identities,
        )?;
        self.check_payload_type()?;
        Ok((
            VerifiedPayload {
                payload: self.payload,
                key: signer.key.clone(),
            },
            signer,
        ))
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
        if !self.chain.is_empty() {
            return Err(BundleError::Unsupported(
                "a certificate bundle: verify it against its certificate roots (--cert-chain)"
                    .into(),
            ));
        }
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
        self.check_payload_type()?;
        Ok(VerifiedPayload {
            payload: self.payload,
            key: key.clone(),
        })
    }
}

impl UnverifiedBundle {
    /// Whether the bundle uses the certificate method.
    #[must_use]
    pub fn has_certificates(&self) -> bool {
        !self.chain.is_empty()
    }

    /// Verifies a certificate-method bundle: the chain against `roots` (DER; see
    /// [`crate::x509::verify_chain`]), then the first signature with the signing certificate's
    /// key — with the curve's hash, or as model_signing v0.2 signed (its compatibility
    /// encoding, SHA-256), which model_signing also accepts.
    ///
    /// # Errors
    /// [`BundleError::Certificate`] when the chain is not trusted,
    /// [`BundleError::BadSignature`] when the signature does not verify.
    pub fn verify_certificate(
        self,
        roots: &[Vec<u8>],
    ) -> Result<(VerifiedPayload, crate::x509::VerifiedChain), BundleError> {
        if self.chain.is_empty() {
            return Err(BundleError::Unsupported(
                "a key bundle has no certificate: verify it with a public key".into(),
            ));
        }
        if self.is_sigstore() {
            return Err(BundleError::Unsupported(
                "a Sigstore bundle (Fulcio certificate, Rekor entry): verify it with --sigstore --identity ID --issuer URL, or trust the signer with `rampart trust add-identity`".into(),
            ));
        }
        let chain = crate::x509::verify_chain(&self.chain, roots)?;
        let key = &chain.key;
        let ok = key
            .verify(&pae(&self.payload_type, &self.payload), &self.signature)
            .is_ok()
            || key
                .verify_with(
                    crate::Hash::Sha256,
                    &pae_compat(&self.payload_type, &self.payload),
                    &self.signature,
                )
                .is_ok();
        if !ok {
            return Err(BundleError::BadSignature(format!(
                "the key of certificate {}",
                chain.path.first().map_or("", String::as_str)
            )));
        }
        self.check_payload_type()?;
        Ok((
            VerifiedPayload {
                payload: self.payload,
                key: key.clone(),
            },
            chain,
        ))
    }
}

/// Signs `payload` with the certificate method: `chain` is the signing certificate (DER) —
/// whose key must be `key`'s, as model_signing requires — then the certificates above it.
///
/// # Errors
/// [`BundleError::Certificate`] when the first certificate is unreadable or holds another key.
pub fn sign_bundle_with_certificates(
    key: &SigningKey,
    chain: &[Vec<u8>],
    payload: &[u8],
) -> Result<Vec<u8>, BundleError> {
    let leaf = chain.first().ok_or_else(|| {
        crate::x509::X509Error::Malformed("no signing certificate was given".into())
    })?;
    if crate::x509::public_key_of(leaf)? != key.public_key() {
        return Err(crate::x509::X509Error::NotForSigning(
            "the signing certificate holds another key than the signing key".into(),
        )
        .into());
    }
    let certificates: Vec<serde_json::Value> = chain
        .iter()
        .map(|c| serde_json::json!({"rawBytes": b64().encode(c)}))
        .collect();
    Ok(signed_bundle(
        key,
        RawMaterial {
            public_key: None,
            x509_certificate_chain: Some(serde_json::json!({ "certificates": certificates })),
            certificate: None,
            tlog_entries: Vec::new(),
            timestamp_verification_data: None,
        },
        payload,
    ))
}

/// The bundle JSON: `material`, and a DSSE envelope over `payload` signed by `key`.
fn signed_bundle(key: &SigningKey, material: RawMaterial, payload: &[u8]) -> Vec<u8> {
    let signature = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, payload));
    let bundle = RawBundle {
        media_type: BUNDLE_MEDIA_TYPE.into(),
        verification_material: material,
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

/// Signs `payload` (an in-toto statement) and returns the bundle JSON, exactly in the shape
/// model_signing writes: compact, key hint set, `tlogEntries: []`, `keyid: ""`.
#[must_use]
pub fn sign_bundle(key: &SigningKey, payload: &[u8]) -> Vec<u8> {
    signed_bundle(
        key,
        RawMaterial {
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
        payload,
    )
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
