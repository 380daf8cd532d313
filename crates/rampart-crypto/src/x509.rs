//! X.509 certificate chains for model-signing's certificate method: the bundle carries the
//! signing certificate (and intermediates); the verifier trusts some roots.
//!
//! Path validation follows what model_signing asks of OpenSSL, nothing looser:
//! * the chain is built from the signing certificate through the bundle's intermediates to one
//!   of the given roots, each link's signature checked with the issuer's key (ECDSA P-256/384/521
//!   with SHA-256/384/512, or RSA PKCS#1 v1.5 of 2048 bits or more with SHA-256/384/512);
//! * every certificate on the path is valid at the signing certificate's `notBefore` (the time
//!   model_signing verifies at: a signature made while the certificate was valid stays valid);
//! * every issuer is a CA (`basicConstraints cA`), may sign certificates (`keyUsage
//!   keyCertSign` when key usage is present) and respects its `pathLenConstraint`;
//! * an unknown critical extension anywhere fails the path;
//! * the signing certificate may sign (`keyUsage digitalSignature`, or `extendedKeyUsage
//!   codeSigning`) and holds an ECDSA key on a curve model_signing accepts.
//!
//! Parsing uses the RustCrypto `x509-cert` crate (strict DER); limits bound what a bundle may
//! carry.

use rsa::pkcs1v15;
use rsa::pkcs8::DecodePublicKey as _;
use rsa::signature::Verifier as _;
use x509_cert::Certificate;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

use crate::ecdsa::{Hash, PublicKey};

/// Most certificates a bundle's chain may hold.
pub const MAX_CHAIN: usize = 10;
/// The largest certificate accepted.
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Most roots read from the files given.
pub const MAX_ROOTS: usize = 1000;
/// The longest path walked.
const MAX_DEPTH: usize = 10;
/// Most link signatures checked while building one path: candidates that share a name and a
/// key could otherwise make path building try every ordering of the bundle's certificates.
const MAX_SIGNATURE_CHECKS: u32 = 64;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_ECDSA_SHA512: &str = "1.2.840.10045.4.3.4";
const OID_RSA_SHA256: &str = "1.2.840.113549.1.1.11";
const OID_RSA_SHA384: &str = "1.2.840.113549.1.1.12";
const OID_RSA_SHA512: &str = "1.2.840.113549.1.1.13";
const OID_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
/// Extensions this validator understands (basic constraints, key usage, extended key usage,
/// subject alternative name, subject and authority key identifiers).
const HANDLED: &[&str] = &[
    "2.5.29.19",
    "2.5.29.15",
    "2.5.29.37",
    "2.5.29.17",
    "2.5.29.14",
    "2.5.29.35",
];

/// Why a chain was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum X509Error {
    /// A certificate or root file could not be parsed.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// No path to a trusted root, or a link on it is invalid.
    #[error("the certificate chain is not trusted: {0}")]
    Untrusted(String),
    /// The signing certificate may not sign, or its key is not one model_signing uses.
    #[error("the signing certificate cannot sign models: {0}")]
    NotForSigning(String),
}

/// A chain that validated.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// The signing certificate's key.
    pub key: PublicKey,
    /// Subjects from the signing certificate up to the trusted root.
    pub path: Vec<String>,
    /// The signing certificate's SHA-256 fingerprint (hex, of its DER).
    pub fingerprint: String,
    /// The time the chain was checked at (the signing certificate's `notBefore`, or the time
    /// given to [`verify_chain_at`]), seconds since the Unix epoch.
    pub checked_at: u64,
    /// The DER SubjectPublicKeyInfo of the certificate that issued the signing certificate
    /// (empty when the signing certificate is itself a trusted root).
    pub issuer_spki: Vec<u8>,
}

/// Reads every certificate of a PEM file (roots or a chain). Refuses a file with none.
///
/// # Errors
/// [`X509Error::Malformed`] naming what is wrong.
pub fn certificates_from_pem(text: &str) -> Result<Vec<Vec<u8>>, X509Error> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let block = rest.get(start..).unwrap_or_default();
        let end = block
            .find("-----END CERTIFICATE-----")
            .ok_or_else(|| X509Error::Malformed("a PEM block has no END line".into()))?;
        let pem = block
            .get(..end + "-----END CERTIFICATE-----".len())
            .unwrap_or_default();
        let (label, der) = x509_cert::der::pem::decode_vec(pem.as_bytes())
            .map_err(|e| X509Error::Malformed(format!("PEM: {e}")))?;
        if label != "CERTIFICATE" {
            return Err(X509Error::Malformed(format!("a {label} block")));
        }
        if out.len() >= MAX_ROOTS {
            return Err(X509Error::Malformed(format!(
                "more than {MAX_ROOTS} certificates"
            )));
        }
        parse(&der)?;
        out.push(der);
        rest = block.get(end..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(X509Error::Malformed(
            "no `BEGIN CERTIFICATE` block in the file".into(),
        ));
    }
    Ok(out)
}

fn parse(der: &[u8]) -> Result<Certificate, X509Error> {
    if der.len() > MAX_CERT_BYTES {
        return Err(X509Error::Malformed(format!(
            "a certificate of {} bytes (the limit is {MAX_CERT_BYTES})",
            der.len()
        )));
    }
    Certificate::from_der(der).map_err(|e| X509Error::Malformed(e.to_string()))
}

fn subject(c: &Certificate) -> String {
    c.tbs_certificate.subject.to_string()
}

fn validity(c: &Certificate) -> (u64, u64) {
    let v = &c.tbs_certificate.validity;
    (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    )
}

/// Unknown critical extensions fail closed.
fn check_critical(c: &Certificate) -> Result<(), X509Error> {
    for ext in c.tbs_certificate.extensions.iter().flatten() {
        let oid = ext.extn_id.to_string();
        if ext.critical && !HANDLED.contains(&oid.as_str()) {
            return Err(X509Error::Untrusted(format!(
                "{} has a critical extension {oid} this verifier does not process",
                subject(c)
            )));
        }
    }
    Ok(())
}

fn basic_constraints(c: &Certificate) -> Result<Option<BasicConstraints>, X509Error> {
    c.tbs_certificate
        .get::<BasicConstraints>()
        .map(|o| o.map(|(_, b)| b))
        .map_err(|e| X509Error::Malformed(format!("{}: basicConstraints: {e}", subject(c))))
}

fn key_usage(c: &Certificate) -> Result<Option<KeyUsage>, X509Error> {
    c.tbs_certificate
        .get::<KeyUsage>()
        .map(|o| o.map(|(_, k)| k))
        .map_err(|e| X509Error::Malformed(format!("{}: keyUsage: {e}", subject(c))))
}

/// Whether `issuer`'s key made `cert`'s signature.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<bool, X509Error> {
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| X509Error::Malformed(e.to_string()))?;
    let sig = cert.signature.raw_bytes();
    let spki = &issuer.tbs_certificate.subject_public_key_info;
    let spki_der = spki
        .to_der()
        .map_err(|e| X509Error::Malformed(e.to_string()))?;
    let alg = cert.signature_algorithm.oid.to_string();
    let key_alg = spki.algorithm.oid.to_string();
    match (key_alg.as_str(), alg.as_str()) {
        (OID_EC_PUBLIC_KEY, OID_ECDSA_SHA256 | OID_ECDSA_SHA384 | OID_ECDSA_SHA512) => {
            let Ok(key) = PublicKey::from_spki_der(&spki_der) else {
                return Err(X509Error::Untrusted(format!(
                    "{}: its EC key is not on P-256, P-384 or P-521",
                    subject(issuer)
                )));
            };
            let hash = match alg.as_str() {
                OID_ECDSA_SHA256 => Hash::Sha256,
                OID_ECDSA_SHA384 => Hash::Sha384,
                _ => Hash::Sha512,
            };
            Ok(key.verify_with(hash, &tbs, sig).is_ok())
        }
        (OID_RSA, OID_RSA_SHA256 | OID_RSA_SHA384 | OID_RSA_SHA512) => {
            let key = rsa::RsaPublicKey::from_public_key_der(&spki_der)
                .map_err(|e| X509Error::Malformed(format!("{}: RSA key: {e}", subject(issuer))))?;
            if rsa::traits::PublicKeyParts::size(&key) < 256 {
                return Err(X509Error::Untrusted(format!(
                    "{}: an RSA key under 2048 bits",
                    subject(issuer)
                )));
            }
            let Ok(signature) = pkcs1v15::Signature::try_from(sig) else {
                return Ok(false);
            };
            Ok(match alg.as_str() {
                OID_RSA_SHA256 => pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                    .verify(&tbs, &signature)
                    .is_ok(),
                OID_RSA_SHA384 => pkcs1v15::VerifyingKey::<sha2::Sha384>::new(key)
                    .verify(&tbs, &signature)
                    .is_ok(),
                _ => pkcs1v15::VerifyingKey::<sha2::Sha512>::new(key)
                    .verify(&tbs, &signature)
                    .is_ok(),
            })
        }
        _ => Err(X509Error::Untrusted(format!(
            "{} is signed with algorithm {alg} by a {key_alg} key: only ECDSA and RSA PKCS#1 v1.5 with SHA-2 are accepted",
            subject(cert)
        ))),
    }
}

/// `issuer` may issue certificates with `below` CA certificates under it on the path.
fn check_issuer(issuer: &Certificate, below: usize) -> Result<(), X509Error> {
    check_critical(issuer)?;
    let bc = basic_constraints(issuer)?;
    if !bc.as_ref().is_some_and(|b| b.ca) {
        return Err(X509Error::Untrusted(format!(
            "{} issued a certificate but is not a CA (basicConstraints)",
            subject(issuer)
        )));
    }
    if let Some(limit) = bc.and_then(|b| b.path_len_constraint)
        && below > usize::from(limit)
    {
        return Err(X509Error::Untrusted(format!(
            "{} allows {limit} CA certificate(s) below it (pathLenConstraint), the path has {below}",
            subject(issuer)
        )));
    }
    if key_usage(issuer)?.is_some_and(|k| !k.key_cert_sign()) {
        return Err(X509Error::Untrusted(format!(
            "{} may not sign certificates (keyUsage has no keyCertSign)",
            subject(issuer)
        )));
    }
    Ok(())
}

fn valid_at(c: &Certificate, at: u64) -> Result<(), X509Error> {
    let (from, to) = validity(c);
    if at < from || at > to {
        return Err(X509Error::Untrusted(format!(
            "{} is valid from {} to {} (Unix seconds), not at {at}, the time of signing",
            subject(c),
            from,
            to
        )));
    }
    Ok(())
}

/// Finds a path from `current` to a root. `intermediates_used` counts the CA certificates
/// already below the next issuer.
fn build(
    current: &Certificate,
    pool: &[Certificate],
    used: &mut Vec<usize>,
    roots: &[Certificate],
    at: u64,
    path: &mut Vec<String>,
    checks: &std::cell::Cell<u32>,
) -> Result<(), X509Error> {
    if path.len() > MAX_DEPTH {
        return Err(X509Error::Untrusted(format!(
            "no trusted root within {MAX_DEPTH} certificates"
        )));
    }
    let signed_by = |cert: &Certificate, issuer: &Certificate| {
        checks.set(checks.get() + 1);
        if checks.get() > MAX_SIGNATURE_CHECKS {
            return Err(X509Error::Untrusted(format!(
                "no path found within {MAX_SIGNATURE_CHECKS} signature checks"
            )));
        }
        signed_by(cert, issuer)
    };
    let exhausted = || checks.get() > MAX_SIGNATURE_CHECKS;
    let issuer_name = &current.tbs_certificate.issuer;
    let below = used.len();
    let mut last_error = None;
    for root in roots
        .iter()
        .filter(|r| &r.tbs_certificate.subject == issuer_name)
    {
        match signed_by(current, root) {
            Err(e) if exhausted() => return Err(e),
            Ok(true) => {
                check_issuer(root, below)?;
                valid_at(root, at)?;
                path.push(subject(root));
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => last_error = Some(e),
        }
    }
    for (i, cand) in pool.iter().enumerate() {
        if used.contains(&i) || &cand.tbs_certificate.subject != issuer_name {
            continue;
        }
        match signed_by(current, cand) {
            Err(e) if exhausted() => return Err(e),
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        }
        let step = check_issuer(cand, below).and_then(|()| valid_at(cand, at));
        if let Err(e) = step {
            last_error = Some(e);
            continue;
        }
        used.push(i);
        path.push(subject(cand));
        match build(cand, pool, used, roots, at, path, checks) {
            Ok(()) => return Ok(()),
            Err(e) if exhausted() => return Err(e),
            Err(e) => {
                last_error = Some(e);
                used.pop();
                path.pop();
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        X509Error::Untrusted(format!(
            "nothing among the trusted roots or the bundle's certificates issued {} (issuer {issuer_name})",
            subject(current)
        ))
    }))
}

/// A certificate's subject, checking that it parses (and is within the size limit).
///
/// # Errors
/// [`X509Error::Malformed`].
pub fn subject_of(der: &[u8]) -> Result<String, X509Error> {
    parse(der).map(|c| subject(&c))
}

/// The ECDSA key a certificate (DER) holds.
///
/// # Errors
/// [`X509Error::Malformed`] or [`X509Error::NotForSigning`] for another kind of key.
pub fn public_key_of(der: &[u8]) -> Result<PublicKey, X509Error> {
    let c = parse(der)?;
    let spki = c
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| X509Error::Malformed(e.to_string()))?;
    PublicKey::from_spki_der(&spki).map_err(|_| {
        X509Error::NotForSigning(format!(
            "{}: its key is not ECDSA on P-256, P-384 or P-521",
            subject(&c)
        ))
    })
}

/// Validates `chain` (DER, the signing certificate first, then the intermediates the bundle
/// carries) against `roots` (DER) and returns the signing key.
///
/// # Errors
/// [`X509Error`] saying which certificate failed and why.
pub fn verify_chain(chain: &[Vec<u8>], roots: &[Vec<u8>]) -> Result<VerifiedChain, X509Error> {
    verify_chain_at(chain, roots, None)
}

/// [`verify_chain`] at a given time (seconds since the Unix epoch) instead of the signing
/// certificate's `notBefore`: for Sigstore, whose certificates live ten minutes and are checked
/// at the time the transparency log recorded the signature.
///
/// # Errors
/// As [`verify_chain`].
pub fn verify_chain_at(
    chain: &[Vec<u8>],
    roots: &[Vec<u8>],
    at: Option<u64>,
) -> Result<VerifiedChain, X509Error> {
    if chain.is_empty() {
        return Err(X509Error::Malformed(
            "the bundle holds no certificate".into(),
        ));
    }
    if chain.len() > MAX_CHAIN {
        return Err(X509Error::Malformed(format!(
            "a chain of {} certificates (the limit is {MAX_CHAIN})",
            chain.len()
        )));
    }
    if roots.is_empty() {
        return Err(X509Error::Untrusted(
            "no certificate authority is trusted: pass --cert-chain CA.pem, or trust one with `rampart trust add CA.pem`".into(),
        ));
    }
    let certs: Vec<Certificate> = chain.iter().map(|d| parse(d)).collect::<Result<_, _>>()?;
    let anchors: Vec<Certificate> = roots.iter().map(|d| parse(d)).collect::<Result<_, _>>()?;
    let (leaf, pool) = certs
        .split_first()
        .ok_or_else(|| X509Error::Malformed("empty chain".into()))?;
    let at = at.unwrap_or(validity(leaf).0);
    check_critical(leaf)?;
    valid_at(leaf, at)?;
    let mut path = vec![subject(leaf)];
    let leaf_der = chain.first().map(Vec::as_slice).unwrap_or_default();
    let mut issuer_spki = Vec::new();
    if !roots.iter().any(|r| r.as_slice() == leaf_der) {
        build(
            leaf,
            pool,
            &mut Vec::new(),
            &anchors,
            at,
            &mut path,
            &std::cell::Cell::new(0),
        )?;
        // The issuer is the certificate named second on the path that signed the leaf.
        let issuer = anchors
            .iter()
            .chain(pool.iter())
            .filter(|c| {
                path.get(1).is_some_and(|s| *s == subject(c))
                    && c.tbs_certificate.subject == leaf.tbs_certificate.issuer
            })
            .find(|c| signed_by(leaf, c).unwrap_or(false));
        if let Some(issuer) = issuer {
            issuer_spki = issuer
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| X509Error::Malformed(e.to_string()))?;
        }
    }
    // The signing certificate may sign: key usage digitalSignature, or extended key usage
    // codeSigning (model_signing's rule).
    let digital_signature = key_usage(leaf)?.is_some_and(|k| k.digital_signature());
    let code_signing = leaf
        .tbs_certificate
        .get::<ExtendedKeyUsage>()
        .map_err(|e| X509Error::Malformed(format!("extendedKeyUsage: {e}")))?
        .is_some_and(|(_, eku)| eku.0.iter().any(|o| o.to_string() == OID_CODE_SIGNING));
    if !digital_signature && !code_signing {
        return Err(X509Error::NotForSigning(format!(
            "{} has neither keyUsage digitalSignature nor extendedKeyUsage codeSigning",
            subject(leaf)
        )));
    }
    let spki = leaf
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| X509Error::Malformed(e.to_string()))?;
    let key = PublicKey::from_spki_der(&spki).map_err(|_| {
        X509Error::NotForSigning(format!(
            "{}: its key is not ECDSA on P-256, P-384 or P-521",
            subject(leaf)
        ))
    })?;
    Ok(VerifiedChain {
        key,
        path,
        fingerprint: crate::sha256(leaf_der).to_hex(),
        checked_at: at,
        issuer_spki,
    })
}
