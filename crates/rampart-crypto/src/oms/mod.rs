//! OpenSSF Model Signing (OMS): sign and verify a model file or directory, interoperable with
//! the `model_signing` 1.1.1 tool (private-key method).
//!
//! A signature is a Sigstore bundle ([`crate::dsse`]) around an in-toto Statement v1 whose
//! predicate (`https://model_signing/signature/v1.0`) lists every file's SHA-256 (files
//! method) or every shard's (shards method), and whose subject digest is the SHA-256 of those
//! digests in listed order. What rampart writes, model_signing verifies; what model_signing
//! writes (and the OMS v1.0 spec's forms where they differ), rampart verifies.
//!
//! ```no_run
//! use rampart_crypto::{SigningKey, oms};
//! let key = SigningKey::generate();
//! let opts = oms::SignOptions::new("model/model.sig");
//! let signed = oms::sign_model("model".as_ref(), &key, &opts, &|_| {})?;
//! std::fs::write("model/model.sig", &signed.bundle).unwrap();
//! let verified = oms::verify_model("model".as_ref(), &signed.bundle, &[key.public_key()],
//!     &oms::VerifyOptions::new("model/model.sig"), &|_| {})?;
//! # Ok::<(), oms::OmsError>(())
//! ```

mod hashing;
mod statement;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use hashing::{CHUNK_BYTES, DEFAULT_SHARD_SIZE, Method, Resource, root_digest};
pub use statement::{PREDICATE_TYPE, STATEMENT_TYPE, SignedManifest, SignedResource};
pub use tree::{GIT_IGNORES, IgnoreSet, MAX_DEPTH, MAX_FILES, ModelFile, component_order};

use crate::dsse::{self, BundleError, UnverifiedBundle};
use crate::{Digest, Fingerprint, PublicKey, SigningKey};

/// Why signing or verifying could not complete, or what verification found wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OmsError {
    /// A filesystem operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A symlink in the model, and symlinks are not allowed.
    #[error("{path} is a symlink; pass --allow-symlinks to follow symlinks")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// Not a regular file or directory (a FIFO, socket, device, or a link to a directory).
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file name that is not UTF-8.
    #[error("{path}: file names must be UTF-8 to be signed")]
    NonUtf8Name {
        /// The path.
        path: PathBuf,
    },
    /// A file changed size while it was being hashed.
    #[error("{path} changed while it was being hashed")]
    Changed {
        /// The path.
        path: PathBuf,
    },
    /// A size or count limit was exceeded.
    #[error("limit exceeded: {0}")]
    Limit(String),
    /// An empty model (OMS requires at least one file).
    #[error("{path} has no files to sign")]
    Empty {
        /// The model path.
        path: PathBuf,
    },
    /// Hashing was cancelled after another task failed.
    #[error("hashing cancelled")]
    Cancelled,
    /// The signature bundle is unusable or does not verify.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The signed statement is not a valid OMS manifest.
    #[error("the signed manifest is invalid: {0}")]
    Manifest(String),
    /// The subject digest does not match the listed resources.
    #[error(
        "the signed manifest is inconsistent: its subject digest {subject} is not the digest of its resources ({computed})"
    )]
    Inconsistent {
        /// The subject digest.
        subject: Digest,
        /// What the resources hash to.
        computed: Digest,
    },
    /// The model on disk differs from the signed manifest.
    #[error("{}", describe_mismatch(modified, added, removed))]
    Mismatch {
        /// Files whose contents (or size) differ.
        modified: Vec<String>,
        /// Files on disk that the signature does not cover.
        added: Vec<String>,
        /// Signed files missing from disk.
        removed: Vec<String>,
    },
}

fn describe_mismatch(modified: &[String], added: &[String], removed: &[String]) -> String {
    let mut parts = Vec::new();
    for (what, list) in [
        ("modified", modified),
        ("added", added),
        ("removed", removed),
    ] {
        if !list.is_empty() {
            parts.push(format!("{what}: {}", list.join(", ")));
        }
    }
    format!(
        "the model does not match its signature ({})",
        parts.join("; ")
    )
}

impl OmsError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// How to sign.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// Files or shards.
    pub method: Method,
    /// Paths to leave out (absolute, or relative to the working directory, or — when that
    /// lands outside the model — relative to the model). Recorded in the manifest.
    pub ignore: Vec<PathBuf>,
    /// Where the signature will be written; ignored if it lies inside the model.
    pub signature_path: PathBuf,
    /// Ignore the top-level `.git`, `.github`, `.gitignore`, `.gitattributes`.
    pub ignore_git_paths: bool,
    /// Follow symlinks instead of refusing them.
    pub allow_symlinks: bool,
    /// Sign with the certificate method: the signing certificate (DER; its key must be the
    /// signing key's), then the chain above it. Empty: the key method.
    pub certificate_chain: Vec<Vec<u8>>,
}

impl SignOptions {
    /// Defaults: files method, git paths ignored, no symlinks.
    #[must_use]
    pub fn new(signature_path: impl Into<PathBuf>) -> Self {
        Self {
            method: Method::Files,
            ignore: Vec::new(),
            signature_path: signature_path.into(),
            ignore_git_paths: true,
            allow_symlinks: false,
            certificate_chain: Vec::new(),
        }
    }
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Extra paths to leave out (as in [`SignOptions::ignore`]).
    pub ignore: Vec<PathBuf>,
    /// The signature file; ignored if it lies inside the model.
    pub signature_path: PathBuf,
    /// Ignore the top-level git paths.
    pub ignore_git_paths: bool,
    /// Tolerate files the signature does not list (signed files must still all match).
    pub ignore_unsigned_files: bool,
    /// Override the manifest's `allow_symlinks`.
    pub allow_symlinks: Option<bool>,
    /// Trusted roots (DER) for certificate-method bundles (model_signing's
    /// `verify certificate --certificate_chain`). A certificate bundle is refused without them.
    pub cert_roots: Vec<Vec<u8>>,
    /// The Sigstore trusted root and signer identities for Sigstore bundles (model_signing's
    /// `verify sigstore`). A Sigstore bundle is refused without them.
    pub sigstore: Option<SigstoreTrust>,
}

/// Who may sign with Sigstore: the pinned trusted root and the identities trusted.
#[derive(Debug, Clone)]
pub struct SigstoreTrust {
    /// Fulcio, Rekor and CT logs.
    pub root: std::sync::Arc<crate::sigstore::TrustedRoot>,
    /// Identities (subject alternative name + OIDC issuer) accepted as signers.
    pub identities: Vec<crate::sigstore::Identity>,
}

/// What a verifier trusts beyond public keys: certificate authorities (DER) and Sigstore
/// signers.
#[derive(Debug, Clone, Default)]
pub struct Anchors {
    /// Certificate-method roots.
    pub cert_roots: Vec<Vec<u8>>,
    /// Sigstore trust, when any Sigstore identity is trusted.
    pub sigstore: Option<SigstoreTrust>,
}

/// Who signed a bundle that verified.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The signing key's fingerprint (for the certificate and Sigstore methods, the
    /// certificate's key).
    pub key: Fingerprint,
    /// For the certificate method, the signing certificate's subject; for Sigstore, the
    /// identity and issuer; `None` for the key method.
    pub identity: Option<String>,
}

impl std::fmt::Display for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.identity {
            Some(id) => write!(f, "{id} (key {})", self.key),
            None => write!(f, "key {}", self.key),
        }
    }
}

impl VerifyOptions {
    /// Defaults matching `model_signing verify`.
    #[must_use]
    pub fn new(signature_path: impl Into<PathBuf>) -> Self {
        Self {
            ignore: Vec::new(),
            signature_path: signature_path.into(),
            ignore_git_paths: true,
            ignore_unsigned_files: false,
            allow_symlinks: None,
            cert_roots: Vec::new(),
            sigstore: None,
        }
    }
}

/// A model's manifest as computed from disk.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The subject name (the model's directory or file name).
    pub subject_name: String,
    /// The root digest.
    pub root: Digest,
    /// The method used.
    pub method: Method,
    /// Every resource, in model_signing's order.
    pub resources: Vec<Resource>,
    /// The ignore list applied (model-relative).
    pub ignored: Vec<String>,
    /// Files hashed.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// Whether symlinks were followed.
    pub allow_symlinks: bool,
}

fn build_ignores(model: &Path, user: &[PathBuf], signature: &Path, git: bool) -> IgnoreSet {
    let mut set = IgnoreSet::default();
    if git {
        for g in GIT_IGNORES {
            set.add(g);
        }
    }
    for path in user.iter().map(PathBuf::as_path).chain([signature]) {
        if let Some(rel) = tree::relative_to_root(model, path) {
            set.add(&rel);
        } else if path.is_relative() && model.is_dir() {
            // Relative to the working directory it lies outside the model: read it as
            // model-relative (`--ignore tokenizer` from anywhere).
            if let Some(rel) = tree::relative_to_root(model, &model.join(path)) {
                set.add(&rel);
            }
        }
    }
    set
}

/// Computes a model's manifest: enumerate, then hash in parallel. The library API behind
/// signing, also used to digest datasets and registry artifacts.
///
/// # Errors
/// Enumeration and I/O errors.
pub fn manifest(
    model: &Path,
    method: Method,
    ignore: &IgnoreSet,
    allow_symlinks: bool,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Manifest, OmsError> {
    if let Method::Shards { shard_size: 0 } = method {
        return Err(OmsError::Limit("shard size must be positive".into()));
    }
    let files = tree::enumerate(model, ignore, allow_symlinks)?;
    let tasks = hashing::plan(&files, method);
    let resources = hashing::run(&tasks, progress)?;
    Ok(Manifest {
        subject_name: tree::model_name(model),
        root: root_digest(resources.iter().map(|r| &r.digest)),
        method,
        ignored: ignore.to_strings(),
        files: files.len(),
        bytes: files.iter().map(|f| f.size).sum(),
        resources,
        allow_symlinks,
    })
}

/// The result of signing.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The bundle JSON to write to the signature file.
    pub bundle: Vec<u8>,
    /// The manifest that was signed.
    pub manifest: Manifest,
    /// The signing key's fingerprint.
    pub key: Fingerprint,
}

/// Signs a model file or directory.
///
/// # Errors
/// Enumeration/I/O errors and [`OmsError::Empty`].
pub fn sign_model(
    model: &Path,
    key: &SigningKey,
    opts: &SignOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Signed, OmsError> {
    let ignore = build_ignores(
        model,
        &opts.ignore,
        &opts.signature_path,
        opts.ignore_git_paths,
    );
    let manifest = manifest(model, opts.method, &ignore, opts.allow_symlinks, progress)?;
    if manifest.files == 0 {
        return Err(OmsError::Empty { path: model.into() });
    }
    let payload = statement::encode(&manifest);
    let bundle = if opts.certificate_chain.is_empty() {
        dsse::sign_bundle(key, &payload)
    } else {
        dsse::sign_bundle_with_certificates(key, &opts.certificate_chain, &payload)?
    };
    Ok(Signed {
        bundle,
        key: key.public_key().fingerprint(),
        manifest,
    })
}

/// A model that verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The key that signed it.
    pub key: Fingerprint,
    /// The signed manifest.
    pub signed: SignedManifest,
    /// Files checked.
    pub files: usize,
    /// Bytes hashed.
    pub bytes: u64,
    /// The ignore list that applied (model-relative), for the report.
    pub ignored: Vec<String>,
    /// For a certificate-method bundle: the validated path, signing certificate first.
    pub certificate_path: Option<Vec<String>>,
    /// For a Sigstore bundle: who signed, and where and when it was logged.
    pub sigstore: Option<crate::sigstore::SigstoreSigner>,
}

/// Verifies a bundle's signature by whichever method it uses.
fn verify_signature(
    unverified: UnverifiedBundle,
    keys: &[PublicKey],
    cert_roots: &[Vec<u8>],
    sigstore: Option<&SigstoreTrust>,
) -> Result<
    (
        dsse::VerifiedPayload,
        Option<crate::x509::VerifiedChain>,
        Option<crate::sigstore::SigstoreSigner>,
    ),
    OmsError,
> {
    if unverified.is_sigstore() {
        let Some(trust) = sigstore else {
            return Err(OmsError::Bundle(BundleError::Sigstore(
                crate::sigstore::SigstoreError::Identity(
                    "a Sigstore bundle, and no Sigstore identity is trusted: pass --sigstore --identity ID --issuer URL, or trust the signer with `rampart trust add-identity`".into(),
                ),
            )));
        };
        let (v, signer) = unverified.verify_sigstore(&trust.root, &trust.identities)?;
        Ok((v, None, Some(signer)))
    } else if sigstore.is_some() && keys.is_empty() && cert_roots.is_empty() {
        // Only Sigstore trust was offered (`verify --sigstore`) for a key or certificate bundle.
        Err(OmsError::Bundle(BundleError::Unsupported(
            "not a Sigstore bundle (it has no transparency log entry): verify it with --key PUB.pem or --cert-chain CA.pem".into(),
        )))
    } else if unverified.has_certificates() {
        let (v, chain) = unverified.verify_certificate(cert_roots)?;
        Ok((v, Some(chain), None))
    } else {
        Ok((unverified.verify(keys)?, None, None))
    }
}

/// Verifies a model against a bundle: the signature with one of `keys`, the manifest's
/// consistency, then the files — names and sizes first (no hashing when they already differ),
/// then contents.
///
/// # Errors
/// [`OmsError::Bundle`], [`OmsError::Manifest`], [`OmsError::Inconsistent`],
/// [`OmsError::Mismatch`] naming every modified, added and removed file, or I/O errors.
pub fn verify_model(
    model: &Path,
    bundle: &[u8],
    keys: &[PublicKey],
    opts: &VerifyOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Verified, OmsError> {
    let unverified = UnverifiedBundle::parse(bundle)?;
    let (verified, chain, sigstore) =
        verify_signature(unverified, keys, &opts.cert_roots, opts.sigstore.as_ref())?;
    let certificate_path = chain.map(|c| c.path);
    let mut signed = statement::decode(&verified.payload)?;
    let computed = root_digest(signed.resources.iter().map(|r| &r.digest));
    if computed != signed.subject_digest {
        return Err(OmsError::Inconsistent {
            subject: signed.subject_digest,
            computed,
        });
    }
    let is_file = std::fs::metadata(model)
        .map_err(OmsError::io("cannot read", model))?
        .is_file();
    if is_file {
        // model_signing names a single file ".", the OMS spec by its basename: accept both.
        let base = tree::model_name(model);
        for r in &mut signed.resources {
            if r.file == base {
                r.file = ".".into();
                r.name = match signed.method {
                    Method::Files => ".".into(),
                    Method::Shards { .. } => format!(".:{}:{}", r.start, r.end),
                };
            }
        }
    }
    let mut ignore = build_ignores(
        model,
        &opts.ignore,
        &opts.signature_path,
        opts.ignore_git_paths,
    );
    for p in &signed.ignore_paths {
        ignore.add(p);
    }
    let allow_symlinks = opts.allow_symlinks.unwrap_or(signed.allow_symlinks);
    let files = tree::enumerate(model, &ignore, allow_symlinks)?;

    // 1. Names and sizes, before any hashing.
    let expected_files: BTreeMap<&str, Option<u64>> = expected_file_sizes(&signed);
    let actual: BTreeMap<&str, &ModelFile> = files
        .iter()
        .filter(|f| !(matches!(signed.method, Method::Shards { .. }) && f.size == 0))
        .map(|f| (f.name.as_str(), f))
        .collect();
    let mut removed: Vec<String> = expected_files
        .keys()
        .filter(|n| !actual.contains_key(*n))
        .map(|n| (*n).to_owned())
        .collect();
    let mut added: Vec<String> = if opts.ignore_unsigned_files {
        Vec::new()
    } else {
        actual
            .keys()
            .filter(|n| !expected_files.contains_key(*n))
            .map(|n| (*n).to_owned())
            .collect()
    };
    let mut modified: Vec<String> = expected_files
        .iter()
        .filter_map(|(name, size)| {
            let f = actual.get(name)?;
            (size.is_some_and(|s| s != f.size)).then(|| (*name).to_owned())
        })
        .collect();
    if !(modified.is_empty() && added.is_empty() && removed.is_empty()) {
        for list in [&mut modified, &mut added, &mut removed] {
            list.sort_by(|a, b| component_order(a, b));
        }
        return Err(OmsError::Mismatch {
            modified,
            added,
            removed,
        });
    }

    // 2. Contents.
    let to_hash: Vec<ModelFile> = files
        .into_iter()
        .filter(|f| expected_files.contains_key(f.name.as_str()))
        .collect();
    let tasks = hashing::plan(&to_hash, signed.method);
    let resources = hashing::run(&tasks, progress)?;
    let got: BTreeMap<&str, &Digest> = resources
        .iter()
        .map(|r| (r.name.as_str(), &r.digest))
        .collect();
    let mut bad: BTreeSet<String> = BTreeSet::new();
    for r in &signed.resources {
        if got.get(r.name.as_str()) != Some(&&r.digest) {
            bad.insert(r.file.clone());
        }
    }
    // A shard layout that differs from the signed one (same size, other boundaries).
    let signed_names: BTreeSet<&str> = signed.resources.iter().map(|r| r.name.as_str()).collect();
    for r in &resources {
        if !signed_names.contains(r.name.as_str()) {
            bad.insert(r.file.clone());
        }
    }
    if !bad.is_empty() {
        let mut modified: Vec<String> = bad.into_iter().collect();
        modified.sort_by(|a, b| component_order(a, b));
        return Err(OmsError::Mismatch {
            modified,
            added: Vec::new(),
            removed: Vec::new(),
        });
    }
    Ok(Verified {
        key: verified.key.fingerprint(),
        files: to_hash.len(),
        bytes: to_hash.iter().map(|f| f.size).sum(),
        ignored: ignore.to_strings(),
        signed,
        certificate_path,
        sigstore,
    })
}

/// Verifies a bundle's signature with one of `keys` and the manifest's consistency, without
/// reading the signed files: for callers that hash a file as they consume it (so that what is
/// checked is exactly what is used, with no window to swap the file in between).
///
/// # Errors
/// [`OmsError::Bundle`], [`OmsError::Manifest`] or [`OmsError::Inconsistent`].
pub fn verify_bundle(
    bundle: &[u8],
    keys: &[PublicKey],
) -> Result<(SignedManifest, Fingerprint), OmsError> {
    verify_bundle_trusting(bundle, keys, &[])
}

/// [`verify_bundle`] for both methods: a key bundle with one of `keys`, a certificate bundle
/// through a chain to one of `roots` (DER). The fingerprint is the signing key's either way.
///
/// # Errors
/// As [`verify_bundle`].
pub fn verify_bundle_trusting(
    bundle: &[u8],
    keys: &[PublicKey],
    roots: &[Vec<u8>],
) -> Result<(SignedManifest, Fingerprint), OmsError> {
    let anchors = Anchors {
        cert_roots: roots.to_vec(),
        sigstore: None,
    };
    verify_bundle_signer(bundle, keys, &anchors).map(|(m, s)| (m, s.key))
}

/// [`verify_bundle`] for every method — a key bundle with one of `keys`, a certificate bundle
/// through a chain to one of `anchors.cert_roots`, a Sigstore bundle from one of
/// `anchors.sigstore`'s identities — returning who signed.
///
/// # Errors
/// As [`verify_bundle`].
pub fn verify_bundle_signer(
    bundle: &[u8],
    keys: &[PublicKey],
    anchors: &Anchors,
) -> Result<(SignedManifest, Signer), OmsError> {
    let unverified = UnverifiedBundle::parse(bundle)?;
    let (verified, chain, sigstore) = verify_signature(
        unverified,
        keys,
        &anchors.cert_roots,
        anchors.sigstore.as_ref(),
    )?;
    let signed = statement::decode(&verified.payload)?;
    let computed = root_digest(signed.resources.iter().map(|r| &r.digest));
    if computed != signed.subject_digest {
        return Err(OmsError::Inconsistent {
            subject: signed.subject_digest,
            computed,
        });
    }
    let identity = match (chain, sigstore) {
        (_, Some(s)) => Some(format!("sigstore:{}", s.identity)),
        (Some(c), None) => c.path.first().map(|s| format!("certificate:{s}")),
        (None, None) => None,
    };
    Ok((
        signed,
        Signer {
            key: verified.key.fingerprint(),
            identity,
        },
    ))
}

/// What a signed manifest says about one signed file (named `.` by model_signing, or by its
/// basename): its whole-file digest (files method), or its shard size and shard digests in
/// order (shards method).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileExpectation {
    /// SHA-256 of the whole file.
    Whole(Digest),
    /// SHA-256 of each `shard_size` slice, in order; the last may be shorter.
    Shards {
        /// The shard size.
        shard_size: u64,
        /// The digests.
        digests: Vec<Digest>,
        /// The file size.
        size: u64,
    },
}

/// Where a signature is looked for when none is named: `DIR/model.sig` for a directory,
/// `FILE.sig` beside a file.
#[must_use]
pub fn default_signature_path(path: &std::path::Path) -> std::path::PathBuf {
    if path.is_dir() {
        path.join("model.sig")
    } else {
        let mut name = path.as_os_str().to_owned();
        name.push(".sig");
        std::path::PathBuf::from(name)
    }
}

/// The expectation for a single-file subject called `file_name`.
///
/// # Errors
/// [`OmsError::Manifest`] when the manifest covers other files too (a directory signature) or
/// does not cover this one, or its shards do not tile the file.
pub fn single_file_expectation(
    signed: &SignedManifest,
    file_name: &str,
) -> Result<FileExpectation, OmsError> {
    if let Some(other) = signed
        .resources
        .iter()
        .find(|r| r.file != "." && r.file != file_name)
    {
        return Err(OmsError::Manifest(format!(
            "the signature covers {} too: it signs a directory, not the file {file_name}",
            other.file
        )));
    }
    let all = file_expectations(signed)?;
    let mut values = all.into_values();
    match (values.next(), values.next()) {
        (Some(one), None) => Ok(one),
        _ => Err(OmsError::Manifest(format!(
            "the signature does not describe the single file {file_name}"
        ))),
    }
}

/// What a signed manifest says about each file it covers, by model-relative name.
///
/// # Errors
/// [`OmsError::Manifest`] when a file is listed twice (files method) or its shards do not tile
/// it.
pub fn file_expectations(
    signed: &SignedManifest,
) -> Result<BTreeMap<String, FileExpectation>, OmsError> {
    let bad = |m: String| OmsError::Manifest(m);
    let mut by_file: BTreeMap<&str, Vec<&SignedResource>> = BTreeMap::new();
    for r in &signed.resources {
        by_file.entry(r.file.as_str()).or_default().push(r);
    }
    let mut out = BTreeMap::new();
    for (file, mut parts) in by_file {
        let expectation = match signed.method {
            Method::Files => match parts.as_slice() {
                [one] => FileExpectation::Whole(one.digest),
                _ => return Err(bad(format!("the signature lists {file} more than once"))),
            },
            Method::Shards { shard_size } => {
                parts.sort_by_key(|r| r.start);
                let mut at = 0;
                let count = parts.len();
                for (i, r) in parts.iter().enumerate() {
                    let full = r.end.checked_sub(r.start) == Some(shard_size);
                    if r.start != at || r.end <= r.start || (!full && i + 1 != count) {
                        return Err(bad(format!("the signed shards of {file} do not tile it")));
                    }
                    at = r.end;
                }
                FileExpectation::Shards {
                    shard_size,
                    digests: parts.iter().map(|r| r.digest).collect(),
                    size: at,
                }
            }
        };
        out.insert(file.to_owned(), expectation);
    }
    Ok(out)
}

/// Decodes and validates an OMS statement (the payload of a verified bundle). Exposed for
/// tools and fuzzing; [`verify_model`] calls it after the signature check.
///
/// # Errors
/// [`OmsError::Manifest`] for anything that is not a valid OMS statement.
pub fn decode_statement(payload: &[u8]) -> Result<SignedManifest, OmsError> {
    statement::decode(payload)
}

/// Each signed file with its size when the manifest tells it (shards always do; files only
/// with rampart's `size` extension).
fn expected_file_sizes(signed: &SignedManifest) -> BTreeMap<&str, Option<u64>> {
    let mut out: BTreeMap<&str, Option<u64>> = BTreeMap::new();
    for r in &signed.resources {
        let size = match signed.method {
            Method::Files => r.size_hint,
            Method::Shards { .. } => Some(r.end),
        };
        let entry = out.entry(r.file.as_str()).or_insert(size);
        if let (Some(a), Some(b)) = (*entry, size) {
            *entry = Some(a.max(b));
        }
    }
    out
}
