//! Sigstore bundles verified offline: a short-lived Fulcio certificate bound to an OIDC
//! identity, and the Rekor transparency-log entry that recorded the signature.
//!
//! Everything is checked against a pinned [`TrustedRoot`] (Sigstore's public-good
//! `trusted_root.json` is compiled in; a private deployment passes its own), with no network
//! access:
//!
//! 1. the log entry's *signed entry timestamp* (Rekor's promise, signed with the log's key)
//!    establishes when the signature was made;
//! 2. its *inclusion proof* is recomputed from the entry up to the root hash, and the signed
//!    *checkpoint* that commits to that root is verified with the log's key;
//! 3. the entry is the one for this envelope (same payload hash, signature and certificate);
//! 4. the certificate chains to a Fulcio authority of the trusted root valid at that time, and
//!    the certificate itself was valid then;
//! 5. its embedded *signed certificate timestamp* verifies with a CT log key of the trusted
//!    root (the certificate was publicly logged);
//! 6. it may sign code (`digitalSignature`, `codeSigning`), and its subject alternative name and
//!    OIDC issuer extension match an identity the caller trusts;
//! 7. the DSSE signature verifies with its key.
//!
//! The formats are those of sigstore-python and sigstore-go (read for facts): RFC 6962 Merkle
//! hashing, the transparency-dev signed-note checkpoint, RFC 8785 JSON for the promise, and
//! RFC 6962's precertificate `digitally-signed` structure for SCTs. ASN.1 is parsed by the
//! RustCrypto `x509-cert` crate; SCT lists by its `tls_codec`-based decoder.

use base64::Engine as _;
use serde::Deserialize;
use sha2::Digest as _;
use x509_cert::Certificate;
use x509_cert::der::asn1::Utf8StringRef;
use x509_cert::der::{Decode as _, Encode as _};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::sct::{
    HashAlgorithm, SignatureAlgorithm, SignedCertificateTimestampList, Version,
};
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, SubjectAltName};

use crate::{Hash, PublicKey};

/// Sigstore's public-good trusted root (Fulcio, Rekor, CT logs, timestamp authorities), pinned.
/// See `crates/rampart-crypto/data/README.md` for where it comes from and how to replace it.
pub const PUBLIC_GOOD_TRUSTED_ROOT: &str =
    include_str!("../data/sigstore-public-good-trusted-root.json");
/// The largest trusted root read.
pub const MAX_TRUSTED_ROOT_BYTES: usize = 4 * 1024 * 1024;
/// Most entries of each kind a trusted root may hold.
const MAX_ROOT_ITEMS: usize = 256;
/// The longest inclusion proof accepted (a tree of 2^64 leaves needs 64).
const MAX_PROOF_HASHES: usize = 64;
/// The largest canonicalized log entry body read.
const MAX_BODY_BYTES: usize = 1024 * 1024;

const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
const OID_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const OID_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";
const OID_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";

/// Why a Sigstore bundle (or a trusted root) was not accepted. Every message names what to do
/// or what did not match.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigstoreError {
    /// The trusted root is unreadable.
    #[error("the Sigstore trusted root is unusable: {0}")]
    TrustedRoot(String),
    /// The bundle's Sigstore material is not of the expected shape.
    #[error("malformed Sigstore material: {0}")]
    Malformed(String),
    /// Something valid that this verifier does not handle (and so does not accept).
    #[error("unsupported Sigstore bundle: {0}")]
    Unsupported(String),
    /// The certificate does not chain to a Fulcio authority of the trusted root.
    #[error("the signing certificate is not from a trusted Fulcio authority: {0}")]
    Chain(String),
    /// The certificate's identity or issuer is not one the verifier trusts.
    #[error("{0}")]
    Identity(String),
    /// The embedded signed certificate timestamp does not verify.
    #[error("the signing certificate's signed certificate timestamp does not verify: {0}")]
    Sct(String),
    /// The transparency-log entry, its proof or its promise does not verify.
    #[error("the transparency log entry does not verify: {0}")]
    Log(String),
    /// The time of signing is outside the certificate's validity.
    #[error("{0}")]
    Time(String),
    /// The envelope's signature does not verify with the certificate's key.
    #[error("the signature does not verify with the key of the Sigstore certificate for {0}")]
    BadSignature(String),
}

/// A signer the verifier trusts: the certificate's subject alternative name (an email address
/// or a URI, such as a CI workflow) and the OIDC issuer that vouched for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The subject alternative name, exactly.
    pub identity: String,
    /// The OIDC issuer URL, exactly.
    pub issuer: String,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (issuer {})", self.identity, self.issuer)
    }
}

/// What a verified Sigstore bundle says about who signed and when.
#[derive(Debug, Clone)]
pub struct SigstoreSigner {
    /// The identity that matched.
    pub identity: Identity,
    /// The certificate's key (ephemeral: it signed this one envelope).
    pub key: PublicKey,
    /// When the log recorded the signature (seconds since the Unix epoch).
    pub integrated_time: u64,
    /// The entry's index in the log.
    pub log_index: u64,
    /// The log's URL, from the trusted root.
    pub log_url: String,
    /// Subjects from the signing certificate up to the Fulcio root.
    pub path: Vec<String>,
    /// SHA-256 of the signing certificate's DER (hex).
    pub certificate_fingerprint: String,
}

#[derive(Debug, Clone)]
struct TimeRange {
    start: Option<u64>,
    end: Option<u64>,
}

impl TimeRange {
    fn contains(&self, t: u64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

#[derive(Debug, Clone)]
struct LogKey {
    id: Vec<u8>,
    /// The key, or why it cannot be used.
    key: Result<PublicKey, String>,
    valid: TimeRange,
    url: String,
}

#[derive(Debug, Clone)]
struct Authority {
    /// DER, issuing certificate first, root last.
    chain: Vec<Vec<u8>>,
    valid: TimeRange,
    uri: String,
}

/// A Sigstore trusted root: the Fulcio authorities, Rekor logs and CT logs verification trusts.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    tlogs: Vec<LogKey>,
    ctlogs: Vec<LogKey>,
    authorities: Vec<Authority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: String,
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: RawPublicKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPublicKey {
    #[serde(default)]
    raw_bytes: Option<String>,
    #[serde(default)]
    key_details: Option<String>,
    #[serde(default)]
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    #[serde(default)]
    uri: String,
    cert_chain: RawCertChain,
    #[serde(default)]
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
struct RawCertChain {
    certificates: Vec<RawCert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCert {
    raw_bytes: String,
}

fn b64(text: &str, what: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim().as_bytes())
        .map_err(|e| format!("{what} is not base64: {e}"))
}

/// A Unix time as RFC 3339 (UTC), for messages.
#[must_use]
pub fn when(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{t} (Unix seconds)"))
}

fn rfc3339(text: &str, what: &str) -> Result<u64, String> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{what}: {text:?} is not an RFC 3339 time: {e}"))?;
    u64::try_from(t.unix_timestamp()).map_err(|_| format!("{what}: {text:?} is before 1970"))
}

fn range(raw: Option<&RawRange>, what: &str) -> Result<TimeRange, String> {
    let Some(raw) = raw else {
        return Ok(TimeRange {
            start: None,
            end: None,
        });
    };
    Ok(TimeRange {
        start: raw.start.as_deref().map(|s| rfc3339(s, what)).transpose()?,
        end: raw.end.as_deref().map(|s| rfc3339(s, what)).transpose()?,
    })
}

fn log_key(raw: &RawLog, what: &str) -> Result<LogKey, String> {
    let id = b64(&raw.log_id.key_id, &format!("{what} logId"))?;
    let details = raw.public_key.key_details.clone().unwrap_or_default();
    let key = match &raw.public_key.raw_bytes {
        None => Err(format!("{what} {} has no key", raw.base_url)),
        Some(bytes) => {
            let der = b64(bytes, &format!("{what} key"))?;
            PublicKey::from_spki_der(&der).map_err(|_| {
                format!(
                    "{what} {} uses a {details} key; only ECDSA (P-256, P-384, P-521) log keys are supported",
                    raw.base_url
                )
            })
        }
    };
    Ok(LogKey {
        id,
        key,
        valid: range(raw.public_key.valid_for.as_ref(), what)?,
        url: raw.base_url.clone(),
    })
}

impl TrustedRoot {
    /// Sigstore's public-good instance, as pinned in this build.
    ///
    /// # Errors
    /// Only if the compiled-in file were damaged.
    pub fn public_good() -> Result<Self, SigstoreError> {
        Self::from_json(PUBLIC_GOOD_TRUSTED_ROOT.as_bytes())
    }

    /// Reads a `trusted_root.json` (media type `application/vnd.dev.sigstore.trustedroot+json`).
    ///
    /// # Errors
    /// [`SigstoreError::TrustedRoot`] naming the part that is wrong.
    pub fn from_json(bytes: &[u8]) -> Result<Self, SigstoreError> {
        let bad = SigstoreError::TrustedRoot;
        if bytes.len() > MAX_TRUSTED_ROOT_BYTES {
            return Err(bad(format!("larger than {MAX_TRUSTED_ROOT_BYTES} bytes")));
        }
        let raw: RawRoot = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if !raw
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
        {
            return Err(bad(format!(
                "media type {:?} is not a Sigstore trusted root",
                raw.media_type
            )));
        }
        if raw.tlogs.len() > MAX_ROOT_ITEMS
            || raw.ctlogs.len() > MAX_ROOT_ITEMS
            || raw.certificate_authorities.len() > MAX_ROOT_ITEMS
        {
            return Err(bad(format!("more than {MAX_ROOT_ITEMS} entries of a kind")));
        }
        let tlogs = raw
            .tlogs
            .iter()
            .map(|l| log_key(l, "transparency log"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let ctlogs = raw
            .ctlogs
            .iter()
            .map(|l| log_key(l, "CT log"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let mut authorities = Vec::new();
        for ca in &raw.certificate_authorities {
            if ca.cert_chain.certificates.is_empty()
                || ca.cert_chain.certificates.len() > crate::x509::MAX_CHAIN
            {
                return Err(bad(format!(
                    "certificate authority {} has {} certificates",
                    ca.uri,
                    ca.cert_chain.certificates.len()
                )));
            }
            let chain = ca
                .cert_chain
                .certificates
                .iter()
                .map(|c| {
                    let der = b64(&c.raw_bytes, "a certificate authority's certificate")?;
                    crate::x509::subject_of(&der).map_err(|e| e.to_string())?;
                    Ok(der)
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(bad)?;
            authorities.push(Authority {
                chain,
                valid: range(ca.valid_for.as_ref(), "certificate authority").map_err(bad)?,
                uri: ca.uri.clone(),
            });
        }
        if tlogs.is_empty() || authorities.is_empty() {
            return Err(bad(
                "it names no transparency log or no certificate authority".into(),
            ));
        }
        Ok(Self {
            tlogs,
            ctlogs,
            authorities,
        })
    }

    /// One line saying what the root holds, for `rampart trust` output.
    #[must_use]
    pub fn describe(&self) -> String {
        let names = |logs: &[LogKey]| {
            logs.iter()
                .map(|l| l.url.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut cas: Vec<&str> = self.authorities.iter().map(|a| a.uri.as_str()).collect();
        cas.dedup();
        format!(
            "{} certificate authorit{} ({}), {} transparency log(s) ({}), {} CT log(s)",
            self.authorities.len(),
            if self.authorities.len() == 1 {
                "y"
            } else {
                "ies"
            },
            cas.join(", "),
            self.tlogs.len(),
            names(&self.tlogs),
            self.ctlogs.len()
        )
    }
}

/// The parts of the bundle a Sigstore verification needs.
#[derive(Debug, Clone, Copy)]
pub struct Material<'a> {
    /// The signing certificate (DER).
    pub certificate: &'a [u8],
    /// The bundle's `tlogEntries`.
    pub tlog_entries: &'a [serde_json::Value],
    /// Whether the bundle's media type is v0.1, whose entries may lack an inclusion proof.
    pub v0_1: bool,
    /// The envelope's payload type.
    pub payload_type: &'a str,
    /// The envelope's payload.
    pub payload: &'a [u8],
    /// The envelope's (first and only) signature.
    pub signature: &'a [u8],
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(deserialize_with = "int64")]
    log_index: u64,
    log_id: RawLogId,
    kind_version: RawKindVersion,
    #[serde(default, deserialize_with = "opt_int64")]
    integrated_time: Option<u64>,
    #[serde(default)]
    inclusion_promise: Option<RawPromise>,
    #[serde(default)]
    inclusion_proof: Option<RawProof>,
    canonicalized_body: String,
}

#[derive(Deserialize)]
struct RawKindVersion {
    kind: String,
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPromise {
    signed_entry_timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProof {
    #[serde(deserialize_with = "int64")]
    log_index: u64,
    root_hash: String,
    #[serde(deserialize_with = "int64")]
    tree_size: u64,
    hashes: Vec<String>,
    #[serde(default)]
    checkpoint: Option<RawCheckpoint>,
}

#[derive(Deserialize)]
struct RawCheckpoint {
    envelope: String,
}

/// Protobuf JSON writes 64-bit integers as strings; accept a string or a number.
fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        serde_json::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| serde::de::Error::custom("not a non-negative integer")),
        _ => Err(serde::de::Error::custom("expected an integer")),
    }
}

fn opt_int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    int64(d).map(Some)
}

/// The body of a `dsse` v0.0.1 Rekor entry (the parts that bind it to the bundle).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseBody {
    api_version: String,
    kind: String,
    spec: DsseSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DsseSpec {
    payload_hash: HashValue,
    signatures: Vec<DsseBodySignature>,
}

#[derive(Deserialize)]
struct HashValue {
    algorithm: String,
    value: String,
}

#[derive(Deserialize)]
struct DsseBodySignature {
    signature: String,
    verifier: String,
}

/// RFC 6962's hash of a leaf.
pub(crate) fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962's hash of an interior node.
pub(crate) fn node(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Recomputes the RFC 6962 root from a leaf and its audit path.
fn merkle_root(leaf: &[u8], index: u64, size: u64, hashes: &[Vec<u8>]) -> Result<[u8; 32], String> {
    if index >= size {
        return Err(format!(
            "the inclusion proof places entry {index} in a tree of {size}"
        ));
    }
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones() as usize;
    let inner = inner as usize;
    if hashes.len() != inner + border {
        return Err(format!(
            "the inclusion proof has {} hashes; a leaf at {index} of {size} needs {}",
            hashes.len(),
            inner + border
        ));
    }
    let mut seed = leaf_hash(leaf);
    for (i, sibling) in hashes.iter().enumerate() {
        seed = if i < inner && (index >> i) & 1 == 0 {
            node(&seed, sibling)
        } else {
            node(sibling, &seed)
        };
    }
    Ok(seed)
}

/// Verifies a signed-note checkpoint with the log's key; returns (tree size, root hash).
fn verify_checkpoint(text: &str, log: &LogKey, key: &PublicKey) -> Result<(u64, Vec<u8>), String> {
    let Some(split) = text.find("\n\n") else {
        return Err("the checkpoint has no blank line before its signatures".into());
    };
    if text.matches("\n\n").count() != 1 {
        return Err("the checkpoint has more than one blank line".into());
    }
    let note = text.get(..=split).unwrap_or_default();
    let sigs = text.get(split + 2..).unwrap_or_default();
    let mut lines = note.lines();
    let origin = lines
        .next()
        .filter(|o| !o.is_empty())
        .ok_or("the checkpoint has no origin line")?;
    // A signed note's signature line names its key; the log signs under its origin's name
    // (`rekor.sigstore.dev` for the origin `rekor.sigstore.dev - <tree id>`). A line under
    // another name is another key's, whatever its key hash says.
    let signer = origin.split(' ').next().unwrap_or_default();
    let size: u64 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or("the checkpoint's second line is not a tree size")?;
    let root = lines
        .next()
        .ok_or("the checkpoint has no root hash line")
        .map(|l| b64(l, "the checkpoint's root hash"))??;
    let hint = log.id.get(..4).unwrap_or_default();
    let mut found = false;
    for line in sigs.lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            continue;
        };
        let Some((name, sig)) = rest.split_once(' ') else {
            continue;
        };
        if name != signer {
            continue;
        }
        let Ok(sig) = b64(sig, "a checkpoint signature") else {
            continue;
        };
        if sig.len() < 5 || sig.get(..4) != Some(hint) {
            continue;
        }
        found = true;
        if key
            .verify_with(
                Hash::Sha256,
                note.as_bytes(),
                sig.get(4..).unwrap_or_default(),
            )
            .is_ok()
        {
            return Ok((size, root));
        }
    }
    Err(if found {
        "the checkpoint's signature does not verify with the log's key".into()
    } else {
        format!(
            "the checkpoint carries no signature by the log's key ({})",
            hex::encode(hint)
        )
    })
}

/// The precertificate TBS: the certificate's TBS without its SCT list extension.
pub(crate) fn precert_tbs(cert: &Certificate) -> Result<Vec<u8>, String> {
    let mut tbs = cert.tbs_certificate.clone();
    if let Some(exts) = tbs.extensions.as_mut() {
        exts.retain(|e| e.extn_id.to_string() != OID_SCT_LIST);
    }
    tbs.to_der().map_err(|e| e.to_string())
}

/// RFC 6962's `digitally-signed` data of a precertificate SCT.
pub(crate) fn sct_signed_data(
    timestamp_ms: u64,
    issuer_spki: &[u8],
    tbs: &[u8],
    extensions: &[u8],
) -> Result<Vec<u8>, String> {
    let tbs_len = u32::try_from(tbs.len())
        .ok()
        .filter(|l| *l < 1 << 24)
        .ok_or("the certificate is too large for an SCT")?;
    let ext_len = u16::try_from(extensions.len()).map_err(|_| "SCT extensions too long")?;
    let mut signed = Vec::with_capacity(tbs.len() + 64);
    signed.push(0); // sct_version v1
    signed.push(0); // signature_type certificate_timestamp
    signed.extend_from_slice(&timestamp_ms.to_be_bytes());
    signed.extend_from_slice(&1u16.to_be_bytes()); // entry_type precert_entry
    signed.extend_from_slice(&sha2::Sha256::digest(issuer_spki));
    signed.extend_from_slice(tbs_len.to_be_bytes().get(1..).unwrap_or_default());
    signed.extend_from_slice(tbs);
    signed.extend_from_slice(&ext_len.to_be_bytes());
    signed.extend_from_slice(extensions);
    Ok(signed)
}

fn verify_sct(cert: &Certificate, issuer_spki: &[u8], root: &TrustedRoot) -> Result<(), String> {
    let ext = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id.to_string() == OID_SCT_LIST)
        .ok_or("the certificate carries no SCT (it was not logged in certificate transparency)")?;
    let list = SignedCertificateTimestampList::from_der(ext.extn_value.as_bytes())
        .map_err(|e| format!("the SCT list: {e}"))?;
    let scts = list
        .parse_timestamps()
        .map_err(|e| format!("the SCT list: {e:?}"))?;
    let [one] = scts.as_slice() else {
        return Err(format!("expected one SCT, found {}", scts.len()));
    };
    let sct = one
        .parse_timestamp()
        .map_err(|e| format!("the SCT: {e:?}"))?;
    if !matches!(sct.version, Version::V1) {
        return Err("the SCT is not version 1".into());
    }
    if !matches!(sct.signature.algorithm.hash, HashAlgorithm::Sha256)
        || !matches!(sct.signature.algorithm.signature, SignatureAlgorithm::Ecdsa)
    {
        return Err("the SCT is not signed with ECDSA and SHA-256".into());
    }
    if issuer_spki.is_empty() {
        return Err("the certificate's issuer is unknown".into());
    }
    let tbs = precert_tbs(cert)?;
    let signed = sct_signed_data(sct.timestamp, issuer_spki, &tbs, sct.extensions.as_slice())?;
    let log = root
        .ctlogs
        .iter()
        .find(|l| l.id == sct.log_id.key_id)
        .ok_or_else(|| {
            format!(
                "it was logged by CT log {}, which the trusted root does not name",
                hex::encode(sct.log_id.key_id)
            )
        })?;
    // A retired CT log key (outside its validity in the trusted root) vouches for nothing.
    let logged = sct.timestamp / 1000;
    if !log.valid.contains(logged) {
        return Err(format!(
            "CT log {} was not trusted at {}, when the SCT says it logged the certificate",
            log.url,
            when(logged)
        ));
    }
    let key = log.key.as_ref().map_err(Clone::clone)?;
    key.verify_with(Hash::Sha256, &signed, sct.signature.signature.as_slice())
        .map_err(|_| format!("the signature of CT log {} does not verify", log.url))
}

fn general_names(cert: &Certificate) -> Result<Vec<String>, String> {
    let Some((_, san)) = cert
        .tbs_certificate
        .get::<SubjectAltName>()
        .map_err(|e| format!("subjectAltName: {e}"))?
    else {
        return Ok(Vec::new());
    };
    Ok(san
        .0
        .iter()
        .filter_map(|n| match n {
            GeneralName::Rfc822Name(s) | GeneralName::UniformResourceIdentifier(s) => {
                Some(s.to_string())
            }
            _ => None,
        })
        .collect())
}

fn oidc_issuer(cert: &Certificate) -> Result<Option<String>, String> {
    let exts: Vec<_> = cert.tbs_certificate.extensions.iter().flatten().collect();
    if let Some(e) = exts.iter().find(|e| e.extn_id.to_string() == OID_ISSUER_V2) {
        let s = Utf8StringRef::from_der(e.extn_value.as_bytes())
            .map_err(|e| format!("the OIDC issuer extension: {e}"))?;
        return Ok(Some(s.as_str().to_owned()));
    }
    if let Some(e) = exts.iter().find(|e| e.extn_id.to_string() == OID_ISSUER_V1) {
        return std::str::from_utf8(e.extn_value.as_bytes())
            .map(|s| Some(s.to_owned()))
            .map_err(|_| "the OIDC issuer extension is not UTF-8".into());
    }
    Ok(None)
}

/// Parses the bundle's single log entry.
fn entry(material: &Material<'_>) -> Result<RawEntry, SigstoreError> {
    let [one] = material.tlog_entries else {
        return Err(SigstoreError::Malformed(format!(
            "{} transparency log entries (exactly one is expected)",
            material.tlog_entries.len()
        )));
    };
    serde_json::from_value(one.clone())
        .map_err(|e| SigstoreError::Malformed(format!("tlogEntries[0]: {e}")))
}

/// Checks that the log entry is the record of this envelope and this certificate.
fn check_body(body: &[u8], material: &Material<'_>, kind: &RawKindVersion) -> Result<(), String> {
    if (kind.kind.as_str(), kind.version.as_str()) != ("dsse", "0.0.1") {
        return Err(format!(
            "a {} {} entry: only dsse 0.0.1 entries (what model_signing and sigstore-python write for DSSE envelopes) are supported",
            kind.kind, kind.version
        ));
    }
    let body: DsseBody =
        serde_json::from_slice(body).map_err(|e| format!("the entry body: {e}"))?;
    if body.kind != kind.kind || body.api_version != kind.version {
        return Err(format!(
            "the entry body is a {} {} entry, the bundle says {} {}",
            body.kind, body.api_version, kind.kind, kind.version
        ));
    }
    let payload_hash = hex::encode(sha2::Sha256::digest(material.payload));
    if body.spec.payload_hash.algorithm != "sha256"
        || !body
            .spec
            .payload_hash
            .value
            .eq_ignore_ascii_case(&payload_hash)
    {
        return Err(
            "the log entry records another payload than the bundle's envelope (payload hash)"
                .into(),
        );
    }
    let [recorded] = body.spec.signatures.as_slice() else {
        return Err(format!(
            "the log entry records {} signatures, the envelope has one",
            body.spec.signatures.len()
        ));
    };
    if b64(&recorded.signature, "the recorded signature")? != material.signature {
        return Err("the log entry records another signature than the envelope's".into());
    }
    let pem = b64(&recorded.verifier, "the recorded verifier")?;
    let pem = String::from_utf8(pem).map_err(|_| "the recorded verifier is not PEM")?;
    let recorded_cert = crate::x509::certificates_from_pem(&pem)
        .map_err(|e| format!("the recorded verifier: {e}"))?;
    if recorded_cert.first().map(Vec::as_slice) != Some(material.certificate) {
        return Err("the log entry records another certificate than the bundle's".into());
    }
    Ok(())
}

/// Verifies the log entry (promise, proof, checkpoint, binding); returns the verified time,
/// index and log URL.
fn verify_log(
    e: &RawEntry,
    body: &[u8],
    material: &Material<'_>,
    root: &TrustedRoot,
) -> Result<(u64, String), SigstoreError> {
    let log_err = SigstoreError::Log;
    let id = b64(&e.log_id.key_id, "logId.keyId").map_err(SigstoreError::Malformed)?;
    let log = root.tlogs.iter().find(|l| l.id == id).ok_or_else(|| {
        log_err(format!(
            "it is in log {}, which the trusted root does not name (a private Rekor needs --trusted-root)",
            hex::encode(&id)
        ))
    })?;
    let key = log
        .key
        .as_ref()
        .map_err(|e| SigstoreError::Unsupported(e.clone()))?;
    check_body(body, material, &e.kind_version).map_err(log_err)?;

    // 1. The promise: the log signed (body, time, log, index) when it accepted the entry.
    let (Some(time), Some(promise)) = (e.integrated_time, e.inclusion_promise.as_ref()) else {
        return Err(SigstoreError::Unsupported(
            "the entry has no signed entry timestamp, so the time of signing cannot be established offline (RFC 3161 timestamps alone are not supported)".into(),
        ));
    };
    if !log.valid.contains(time) {
        return Err(log_err(format!(
            "the log's key was not valid at {time}, when the entry claims to be integrated"
        )));
    }
    let canonical = format!(
        "{{\"body\":\"{}\",\"integratedTime\":{time},\"logID\":\"{}\",\"logIndex\":{}}}",
        base64::engine::general_purpose::STANDARD.encode(body),
        hex::encode(&id),
        e.log_index
    );
    let set = b64(&promise.signed_entry_timestamp, "signedEntryTimestamp")
        .map_err(SigstoreError::Malformed)?;
    key.verify_with(Hash::Sha256, canonical.as_bytes(), &set)
        .map_err(|_| {
            log_err(format!(
                "the signed entry timestamp does not verify with the key of {} (the entry's body, time or index was changed)",
                log.url
            ))
        })?;

    // 2. The proof: the entry is in the tree whose root the log signed.
    match &e.inclusion_proof {
        Some(proof) => {
            if proof.hashes.len() > MAX_PROOF_HASHES {
                return Err(SigstoreError::Malformed(format!(
                    "an inclusion proof of {} hashes",
                    proof.hashes.len()
                )));
            }
            let hashes = proof
                .hashes
                .iter()
                .map(|h| b64(h, "an inclusion proof hash"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(SigstoreError::Malformed)?;
            let root_hash = b64(&proof.root_hash, "rootHash").map_err(SigstoreError::Malformed)?;
            let computed =
                merkle_root(body, proof.log_index, proof.tree_size, &hashes).map_err(log_err)?;
            if computed.as_slice() != root_hash.as_slice() {
                return Err(log_err(format!(
                    "the inclusion proof does not lead from the entry to the root hash {} (computed {})",
                    hex::encode(&root_hash),
                    hex::encode(computed)
                )));
            }
            let checkpoint = proof.checkpoint.as_ref().ok_or_else(|| {
                SigstoreError::Malformed("the inclusion proof has no checkpoint".into())
            })?;
            let (size, signed_root) =
                verify_checkpoint(&checkpoint.envelope, log, key).map_err(log_err)?;
            if size != proof.tree_size || signed_root != root_hash {
                return Err(log_err(
                    "the signed checkpoint is for another tree than the inclusion proof".into(),
                ));
            }
        }
        None if material.v0_1 => {}
        None => {
            return Err(SigstoreError::Malformed(
                "the entry has no inclusion proof (required from bundle v0.2 on)".into(),
            ));
        }
    }
    Ok((time, log.url.clone()))
}

/// Verifies a Sigstore bundle's material offline against `root`, accepting only a certificate
/// issued to one of `identities`.
///
/// # Errors
/// [`SigstoreError`] naming the first check that failed.
pub fn verify(
    material: &Material<'_>,
    root: &TrustedRoot,
    identities: &[Identity],
) -> Result<SigstoreSigner, SigstoreError> {
    let e = entry(material)?;
    let body = b64(&e.canonicalized_body, "canonicalizedBody").map_err(SigstoreError::Malformed)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(SigstoreError::Malformed(format!(
            "a log entry body of {} bytes",
            body.len()
        )));
    }
    let (time, log_url) = verify_log(&e, &body, material, root)?;

    let cert = Certificate::from_der(material.certificate)
        .map_err(|e| SigstoreError::Malformed(format!("the signing certificate: {e}")))?;
    let v = &cert.tbs_certificate.validity;
    let (from, to) = (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    );
    if time < from || time > to {
        return Err(SigstoreError::Time(format!(
            "the signing certificate was valid from {} to {}, but the log recorded the signature at {}: the certificate had {} when it was used",
            when(from),
            when(to),
            when(time),
            if time < from {
                "not yet begun"
            } else {
                "expired"
            }
        )));
    }

    // The chain, at the time of signing, to an authority valid then.
    let mut chain_error = None;
    let mut verified = None;
    for ca in root.authorities.iter().filter(|a| a.valid.contains(time)) {
        let Some((anchor, intermediates)) = ca.chain.split_last() else {
            continue;
        };
        let mut chain = vec![material.certificate.to_vec()];
        chain.extend(intermediates.iter().cloned());
        match crate::x509::verify_chain_at(&chain, std::slice::from_ref(anchor), Some(time)) {
            Ok(v) => {
                verified = Some(v);
                break;
            }
            Err(e) => chain_error = Some(e.to_string()),
        }
    }
    let chain = verified.ok_or_else(|| {
        SigstoreError::Chain(chain_error.unwrap_or_else(|| {
            format!("no certificate authority of the trusted root was valid at {time}")
        }))
    })?;

    verify_sct(&cert, &chain.issuer_spki, root).map_err(SigstoreError::Sct)?;

    let digital_signature = cert
        .tbs_certificate
        .get::<KeyUsage>()
        .map_err(|e| SigstoreError::Malformed(format!("keyUsage: {e}")))?
        .is_some_and(|(_, k)| k.digital_signature());
    let code_signing = cert
        .tbs_certificate
        .get::<ExtendedKeyUsage>()
        .map_err(|e| SigstoreError::Malformed(format!("extendedKeyUsage: {e}")))?
        .is_some_and(|(_, eku)| eku.0.iter().any(|o| o.to_string() == OID_CODE_SIGNING));
    if !digital_signature || !code_signing {
        return Err(SigstoreError::Chain(
            "the certificate lacks keyUsage digitalSignature or extendedKeyUsage codeSigning"
                .into(),
        ));
    }

    let names = general_names(&cert).map_err(SigstoreError::Malformed)?;
    let issuer = oidc_issuer(&cert).map_err(SigstoreError::Malformed)?;
    let found = format!(
        "{} (issuer {})",
        if names.is_empty() {
            "no identity".to_owned()
        } else {
            names.join(", ")
        },
        issuer.as_deref().unwrap_or("none")
    );
    if identities.is_empty() {
        return Err(SigstoreError::Identity(format!(
            "no Sigstore identity is trusted: the certificate is for {found}; pass --identity and --issuer, or trust the signer with `rampart trust add-identity`"
        )));
    }
    let matched = identities
        .iter()
        .find(|want| names.contains(&want.identity) && issuer.as_deref() == Some(&want.issuer))
        .ok_or_else(|| {
            SigstoreError::Identity(format!(
                "the Sigstore certificate was issued to {found}, not to {}",
                match identities {
                    [one] => one.to_string(),
                    _ => "any trusted identity".into(),
                }
            ))
        })?;

    let key = chain.key.clone();
    key.verify(
        &crate::dsse::pae(material.payload_type, material.payload),
        material.signature,
    )
    .map_err(|_| SigstoreError::BadSignature(matched.to_string()))?;

    Ok(SigstoreSigner {
        identity: matched.clone(),
        key,
        integrated_time: time,
        log_index: e.log_index,
        log_url,
        path: chain.path,
        certificate_fingerprint: chain.fingerprint,
    })
}

/// Whether a string is a plausible identity to trust (an email address or a URI): used to
/// refuse empty or whitespace values in the policy.
#[must_use]
pub fn plausible(identity: &Identity) -> bool {
    let ok = |s: &str| !s.is_empty() && !s.chars().any(char::is_whitespace);
    ok(&identity.identity) && ok(&identity.issuer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::sigstore_testing::{audit_path as path, tree_hash as tree};

    #[test]
    fn the_pinned_public_good_root_loads() {
        let root = TrustedRoot::public_good().unwrap();
        assert!(root.describe().contains("https://rekor.sigstore.dev"));
        assert_eq!(root.authorities.len(), 2);
    }

    #[test]
    fn inclusion_proofs_match_the_rfc_6962_definition_for_every_leaf_of_small_trees() {
        for n in 1..=17usize {
            let leaves: Vec<Vec<u8>> = (0..n).map(|i| format!("leaf {i}").into_bytes()).collect();
            let root = tree(&leaves);
            for m in 0..n {
                let p = path(m, &leaves);
                assert_eq!(
                    merkle_root(&leaves[m], m as u64, n as u64, &p).unwrap(),
                    root,
                    "leaf {m} of {n}"
                );
                // Another leaf's data, or the right data at another index, fails.
                if n > 1 {
                    let other = (m + 1) % n;
                    assert_ne!(
                        merkle_root(&leaves[other], m as u64, n as u64, &p).ok(),
                        Some(root)
                    );
                }
            }
        }
        assert!(merkle_root(b"x", 5, 5, &[]).is_err());
        assert!(merkle_root(b"x", 0, 4, &[]).is_err());
    }
}
