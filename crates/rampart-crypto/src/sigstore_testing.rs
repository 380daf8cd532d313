//! A private Sigstore for tests (feature `testing`): a Fulcio-like CA, a Rekor-like log key
//! and a CT log key made on the spot, which issue short-lived identity certificates (with an
//! embedded SCT) and log DSSE envelopes (signed entry timestamp, inclusion proof in a small
//! tree, signed checkpoint) exactly in the formats [`crate::sigstore`] verifies — so tests can
//! make bundles that break one rule at a time (an expired certificate, a foreign CA, …) and
//! run the whole pipeline against a private trusted root.
//!
//! Real public-good bundles (model_signing's golden vectors) are what shows the verifier reads
//! Sigstore's formats; this module only complements them with cases Sigstore will not sign.

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
    SerialNumber,
};
use sha2::Digest as _;
use x509_cert::der::{Decode as _, Encode as _};

use crate::SigningKey;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn spki_der(key: &SigningKey) -> Result<Vec<u8>, String> {
    let pem = key.public_key().to_pem();
    x509_cert::der::pem::decode_vec(pem.as_bytes())
        .map(|(_, der)| der)
        .map_err(err)
}

fn unix(t: u64) -> Result<time::OffsetDateTime, String> {
    i64::try_from(t)
        .map_err(err)
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).map_err(err))
}

use crate::sigstore::{leaf_hash, node};

/// The largest power of two below `n` (n ≥ 2), where RFC 6962 splits a tree.
fn split(n: usize) -> usize {
    let k = n.next_power_of_two() / 2;
    if k == n { n / 2 } else { k }
}

/// The RFC 6962 tree hash of `leaves` (not empty), from the definition.
#[must_use]
pub fn tree_hash(leaves: &[Vec<u8>]) -> [u8; 32] {
    match leaves {
        [] => sha2::Sha256::digest(b"").into(),
        [one] => leaf_hash(one),
        _ => {
            let (l, r) = leaves.split_at(split(leaves.len()));
            node(&tree_hash(l), &tree_hash(r))
        }
    }
}

/// The audit path of leaf `m` (RFC 6962 §2.1.1), from the definition.
#[must_use]
pub fn audit_path(m: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    let (l, r) = leaves.split_at(k);
    if m < k {
        let mut p = audit_path(m, l);
        p.push(tree_hash(r).to_vec());
        p
    } else {
        let mut p = audit_path(m - k, r);
        p.push(tree_hash(l).to_vec());
        p
    }
}

/// A private Sigstore: CA, transparency log and CT log keys.
pub struct TestSigstore {
    ca_key: KeyPair,
    ca: rcgen::Certificate,
    rekor: SigningKey,
    ct: SigningKey,
}

/// An identity certificate and its key.
pub struct Issued {
    /// The certificate's key (sign the envelope with it).
    pub key: SigningKey,
    /// The certificate (DER).
    pub certificate: Vec<u8>,
}

impl TestSigstore {
    /// Makes the keys and the CA (valid 2020–2040).
    ///
    /// # Errors
    /// Only if key generation fails.
    pub fn new(name: &str) -> Result<Self, TestingError> {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::OrganizationName, name);
        p.distinguished_name
            .push(DnType::CommonName, format!("{name} fulcio"));
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2040, 1, 1);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = p.self_signed(&ca_key).map_err(err)?;
        Ok(Self {
            ca_key,
            ca,
            rekor: SigningKey::generate(),
            ct: SigningKey::generate(),
        })
    }

    fn log_id(key: &SigningKey) -> Result<Vec<u8>, String> {
        Ok(sha2::Sha256::digest(spki_der(key)?).to_vec())
    }

    /// The `trusted_root.json` naming this CA and these logs.
    ///
    /// # Errors
    /// Only if a key cannot be encoded.
    pub fn trusted_root_json(&self) -> Result<String, TestingError> {
        let log = |key: &SigningKey, url: &str| -> Result<serde_json::Value, String> {
            Ok(serde_json::json!({
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(&spki_der(key)?),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2020-01-01T00:00:00Z"}
                },
                "logId": {"keyId": b64(&Self::log_id(key)?)}
            }))
        };
        Ok(serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log(&self.rekor, "https://rekor.test.invalid")?],
            "certificateAuthorities": [{
                "subject": {"organization": "test", "commonName": "test fulcio"},
                "uri": "https://fulcio.test.invalid",
                "certChain": {"certificates": [{"rawBytes": b64(self.ca.der())}]},
                "validFor": {"start": "2020-01-01T00:00:00Z"}
            }],
            "ctlogs": [log(&self.ct, "https://ctfe.test.invalid")?],
            "timestampAuthorities": []
        })
        .to_string())
    }

    fn leaf(
        &self,
        key: &KeyPair,
        identity: &str,
        issuer: &str,
        valid: (u64, u64),
        serial: &[u8],
        sct: Option<Vec<u8>>,
    ) -> Result<rcgen::Certificate, String> {
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.distinguished_name = DistinguishedName::new();
        p.serial_number = Some(SerialNumber::from_slice(serial));
        p.not_before = unix(valid.0)?;
        p.not_after = unix(valid.1)?;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        let name = rcgen::Ia5String::try_from(identity).map_err(err)?;
        p.subject_alt_names = vec![if identity.contains('@') {
            SanType::Rfc822Name(name)
        } else {
            SanType::URI(name)
        }];
        let issuer_der = x509_cert::der::asn1::Utf8StringRef::new(issuer)
            .and_then(|s| s.to_der())
            .map_err(err)?;
        p.custom_extensions = vec![
            CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
                issuer.as_bytes().to_vec(),
            ),
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], issuer_der),
        ];
        if let Some(list) = sct {
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
                list,
            ));
        }
        p.signed_by(key, &self.ca, &self.ca_key).map_err(err)
    }

    /// The SCT list extension's content: one SCT by this CT log over `precert_tbs`.
    fn sct_list(&self, precert_tbs: &[u8], timestamp_ms: u64) -> Result<Vec<u8>, String> {
        let ca = x509_cert::Certificate::from_der(self.ca.der()).map_err(err)?;
        let issuer_spki = ca
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(err)?;
        let signed =
            crate::sigstore::sct_signed_data(timestamp_ms, &issuer_spki, precert_tbs, &[])?;
        let sig = self.ct.sign(&signed);
        let mut sct = vec![0u8];
        sct.extend_from_slice(&Self::log_id(&self.ct)?);
        sct.extend_from_slice(&timestamp_ms.to_be_bytes());
        sct.extend_from_slice(&[0, 0]); // no extensions
        sct.extend_from_slice(&[4, 3]); // sha256, ecdsa
        sct.extend_from_slice(&u16::try_from(sig.len()).map_err(err)?.to_be_bytes());
        sct.extend_from_slice(&sig);
        let mut list = u16::try_from(sct.len() + 2)
            .map_err(err)?
            .to_be_bytes()
            .to_vec();
        list.extend_from_slice(&u16::try_from(sct.len()).map_err(err)?.to_be_bytes());
        list.extend_from_slice(&sct);
        x509_cert::der::asn1::OctetString::new(list)
            .and_then(|o| o.to_der())
            .map_err(err)
    }

    /// Issues a certificate for `identity` (an email or a URI) vouched for by `issuer`, valid
    /// from `not_before` to `not_after` (Unix seconds), with an SCT from the CT log.
    ///
    /// # Errors
    /// When rcgen cannot build it, or the precertificate and the certificate disagree.
    pub fn issue(
        &self,
        identity: &str,
        issuer: &str,
        not_before: u64,
        not_after: u64,
    ) -> Result<Issued, TestingError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(err)?;
        let serial: Vec<u8> = sha2::Sha256::digest(key.public_key_der())
            .iter()
            .take(16)
            .map(|b| b & 0x7f)
            .collect();
        let valid = (not_before, not_after);
        let pre = self.leaf(&key, identity, issuer, valid, &serial, None)?;
        let pre = x509_cert::Certificate::from_der(pre.der()).map_err(err)?;
        let tbs = pre.tbs_certificate.to_der().map_err(err)?;
        let list = self.sct_list(&tbs, not_before * 1000)?;
        let cert = self.leaf(&key, identity, issuer, valid, &serial, Some(list))?;
        let parsed = x509_cert::Certificate::from_der(cert.der()).map_err(err)?;
        if crate::sigstore::precert_tbs(&parsed)? != tbs {
            return Err("the certificate does not match its precertificate".into());
        }
        Ok(Issued {
            key: SigningKey::from_pem(&key.serialize_pem()).map_err(err)?,
            certificate: cert.der().to_vec(),
        })
    }

    /// A v0.3 Sigstore bundle: `payload` (an in-toto statement) signed by `signer`, logged at
    /// `integrated_time` as entry 4 of a 7-entry tree.
    ///
    /// # Errors
    /// Only if encoding fails.
    pub fn bundle(
        &self,
        signer: &Issued,
        payload: &[u8],
        integrated_time: u64,
    ) -> Result<String, TestingError> {
        let payload_type = crate::dsse::IN_TOTO_PAYLOAD_TYPE;
        let sig = signer.key.sign(&crate::dsse::pae(payload_type, payload));
        let pem = x509_cert::der::pem::encode_string(
            "CERTIFICATE",
            x509_cert::der::pem::LineEnding::LF,
            &signer.certificate,
        )
        .map_err(err)?;
        let body = serde_json::json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hex::encode(sha2::Sha256::digest(payload))},
                "payloadHash": {"algorithm": "sha256", "value": hex::encode(sha2::Sha256::digest(payload))},
                "signatures": [{"signature": b64(&sig), "verifier": b64(pem.as_bytes())}]
            }
        })
        .to_string();
        let index = 4usize;
        let mut leaves: Vec<Vec<u8>> = (0..7).map(|i| format!("entry {i}").into_bytes()).collect();
        if let Some(slot) = leaves.get_mut(index) {
            *slot = body.clone().into_bytes();
        }
        let root = tree_hash(&leaves);
        let path = audit_path(index, &leaves);
        let log_id = Self::log_id(&self.rekor)?;
        let global_index = 1000 + index as u64;
        let canonical = format!(
            "{{\"body\":\"{}\",\"integratedTime\":{integrated_time},\"logID\":\"{}\",\"logIndex\":{global_index}}}",
            b64(body.as_bytes()),
            hex::encode(&log_id)
        );
        let set = self.rekor.sign(canonical.as_bytes());
        let note = format!(
            "rekor.test.invalid - 42\n{}\n{}\n",
            leaves.len(),
            b64(&root)
        );
        let mut note_sig = log_id.get(..4).unwrap_or_default().to_vec();
        note_sig.extend_from_slice(&self.rekor.sign(note.as_bytes()));
        let checkpoint = format!("{note}\n\u{2014} rekor.test.invalid {}\n", b64(&note_sig));
        Ok(serde_json::json!({
            "mediaType": crate::dsse::BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(&signer.certificate)},
                "tlogEntries": [{
                    "logIndex": global_index.to_string(),
                    "logId": {"keyId": b64(&log_id)},
                    "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                    "integratedTime": integrated_time.to_string(),
                    "inclusionPromise": {"signedEntryTimestamp": b64(&set)},
                    "inclusionProof": {
                        "logIndex": index.to_string(),
                        "rootHash": b64(&root),
                        "treeSize": leaves.len().to_string(),
                        "hashes": path.iter().map(|h| b64(h)).collect::<Vec<_>>(),
                        "checkpoint": {"envelope": checkpoint}
                    },
                    "canonicalizedBody": b64(body.as_bytes())
                }],
                "timestampVerificationData": {}
            },
            "dsseEnvelope": {
                "payload": b64(payload),
                "payloadType": payload_type,
                "signatures": [{"sig": b64(&sig)}]
            }
        })
        .to_string())
    }
}

/// A test trust root or bundle could not be made: why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TestingError(pub String);

impl From<String> for TestingError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for TestingError {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}
