//! Moving a version between homes (into an air-gapped one): a tar archive holding
//!
//! - `export.json`: a DSSE bundle, signed by the exporting home's key, whose payload is the
//!   version's metadata (files, signature and provenance blobs, metrics, schema, lineage,
//!   registrant, approvals);
//! - `blobs/<sha256>`: every blob it names.
//!
//! Import trusts nothing in the archive until it is checked: the bundle must verify with a key
//! the importing home trusts, every blob must hash to its name, and the model's own signature,
//! scan and provenance are checked again as at registration.

use std::io::{Read, Write};
use std::path::Path;

use rampart_crypto::dsse::{UnverifiedBundle, sign_bundle};
use rampart_crypto::oms;
use rampart_crypto::provenance::verify_attestation;
use rampart_crypto::{Digest, PublicKey, SigningKey};
use rampart_scan::{ScanConfig, Severity};
use serde::{Deserialize, Serialize};

use crate::BlobStore as _;
use crate::candidate::{check_against_signature, scan_one};
use crate::{MAX_BUNDLE_BYTES, NewVersion, Registry, RegistryError, VersionContent, VersionInfo};

/// The export format.
pub const FORMAT: &str = "rampart-model-export/v2";
const MANIFEST: &str = "export.json";

/// An approval carried in an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CarriedApproval {
    /// Fingerprint.
    pub approver_key: String,
    /// Name.
    pub approver: String,
    /// The signed bundle.
    pub bundle: String,
}

/// The signed metadata of an export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportManifest {
    /// [`FORMAT`].
    pub format: String,
    /// Model name.
    pub name: String,
    /// Its version number in the exporting home.
    pub version: i64,
    /// What it is, as the exporting registry recorded it (the importing home re-checks the
    /// signature, blobs, scan and provenance and records its own signer).
    pub content: VersionContent,
    /// Registration time.
    pub created_at: String,
    /// Approvals.
    pub approvals: Vec<CarriedApproval>,
    /// Export time.
    pub exported_at: String,
    /// Exported by.
    pub exported_by: String,
}

fn refused(m: impl Into<String>) -> RegistryError {
    RegistryError::Refused(m.into())
}

fn append(
    t: &mut tar::Builder<impl Write>,
    name: &str,
    size: u64,
    data: &mut dyn Read,
) -> Result<(), RegistryError> {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o444);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(0);
    t.append_data(&mut h, name, data)
        .map_err(|source| RegistryError::Io {
            path: name.into(),
            source,
        })
}

/// Writes `v` as a signed archive to `out`.
///
/// # Errors
/// A missing or corrupted blob, I/O errors.
pub fn export(
    reg: &Registry,
    v: &VersionInfo,
    key: &SigningKey,
    actor: &str,
    out: &mut dyn Write,
) -> Result<ExportManifest, RegistryError> {
    let manifest = ExportManifest {
        format: FORMAT.into(),
        name: v.name.clone(),
        version: v.version,
        content: v.content.clone(),
        created_at: v.created_at.clone(),
        approvals: reg
            .approvals(v)?
            .into_iter()
            .map(|a| CarriedApproval {
                approver_key: a.approver_key,
                approver: a.approver,
                bundle: a.bundle,
            })
            .collect(),
        exported_at: crate::now(),
        exported_by: actor.to_owned(),
    };
    let payload = serde_json::to_vec(&manifest).map_err(|e| refused(e.to_string()))?;
    let bundle = sign_bundle(key, &payload);
    let mut t = tar::Builder::new(out);
    append(
        &mut t,
        MANIFEST,
        bundle.len() as u64,
        &mut bundle.as_slice(),
    )?;
    let mut digests: Vec<Digest> = v.files.iter().map(|f| f.sha256).collect();
    digests.push(v.signature);
    digests.extend(v.provenance);
    digests.sort();
    digests.dedup();
    for d in digests {
        // Verified before it leaves: a corrupted blob is never exported.
        let size = reg.blobs().verify(&d)?;
        let tmp = tempfile::NamedTempFile::new().map_err(|source| RegistryError::Io {
            path: "tmp".into(),
            source,
        })?;
        let _ = std::fs::remove_file(tmp.path());
        reg.blobs().copy_to(&d, tmp.path(), size)?;
        let mut f = std::fs::File::open(tmp.path()).map_err(|source| RegistryError::Io {
            path: tmp.path().to_path_buf(),
            source,
        })?;
        append(&mut t, &format!("blobs/{}", d.to_hex()), size, &mut f)?;
    }
    t.into_inner()
        .and_then(std::io::Write::flush)
        .map_err(|source| RegistryError::Io {
            path: "export".into(),
            source,
        })?;
    Ok(manifest)
}

/// Reads an archive into the registry as the next version of `name` (default: the exported
/// name), after checking everything: the model's signature by one of `keys`, or a certificate
/// or Sigstore signature trusted by `anchors`.
///
/// # Errors
/// [`RegistryError::Refused`] naming what does not verify.
#[allow(clippy::too_many_arguments)]
pub fn import(
    reg: &mut Registry,
    archive: &Path,
    name: Option<&str>,
    keys: &[PublicKey],
    anchors: &oms::Anchors,
    scan: &ScanConfig,
    fail_on: Severity,
    actor: &str,
    record: crate::Witness<'_, crate::Registration>,
) -> Result<(VersionInfo, ExportManifest, String), RegistryError> {
    let file = std::fs::File::open(archive).map_err(|source| RegistryError::Io {
        path: archive.to_path_buf(),
        source,
    })?;
    let mut t = tar::Archive::new(std::io::BufReader::new(file));
    let mut entries = t
        .entries()
        .map_err(|e| refused(format!("{}: not an export archive: {e}", archive.display())))?;
    let bad_entry = |e: std::io::Error| refused(format!("{}: {e}", archive.display()));
    // 1. The signed manifest comes first (export writes it first): it is verified before a
    //    single blob byte is read, and says which blobs of which sizes may follow.
    let mut first = entries
        .next()
        .ok_or_else(|| {
            refused(format!(
                "{}: empty archive, no {MANIFEST}",
                archive.display()
            ))
        })?
        .map_err(bad_entry)?;
    let first_path = first
        .path()
        .map_err(|e| refused(e.to_string()))?
        .to_string_lossy()
        .into_owned();
    if first_path != MANIFEST || first.header().entry_type() != tar::EntryType::Regular {
        return Err(refused(format!(
            "{}: the first entry is {first_path:?}, not the signed {MANIFEST}",
            archive.display()
        )));
    }
    let mut bundle = Vec::new();
    (&mut first)
        .take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bundle)
        .map_err(|e| refused(e.to_string()))?;
    if bundle.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(refused("the export manifest is too large"));
    }
    let verified = UnverifiedBundle::parse(&bundle)
        .map_err(|e| refused(format!("{MANIFEST}: {e}")))?
        .verify(keys)
        .map_err(|e| {
            refused(format!(
                "{MANIFEST}: {e}: the exporting home's key is not trusted here (rampart trust add)"
            ))
        })?;
    let m: ExportManifest = serde_json::from_slice(&verified.payload)
        .map_err(|e| refused(format!("{MANIFEST}: {e}")))?;
    if m.format != FORMAT {
        return Err(refused(format!(
            "{MANIFEST}: format {:?} is not {FORMAT}",
            m.format
        )));
    }
    for f in &m.content.files {
        f.relative_path()?;
    }
    // Each blob the manifest names, with the most bytes it may have.
    let mut expected: std::collections::BTreeMap<Digest, u64> =
        m.content.files.iter().map(|f| (f.sha256, f.size)).collect();
    expected
        .entry(m.content.signature)
        .or_insert(MAX_BUNDLE_BYTES);
    if let Some(p) = m.content.provenance {
        expected.entry(p).or_insert(MAX_BUNDLE_BYTES);
    }
    // 2. Blobs go to a staging store beside the registry, removed on every path; only after
    //    every check below passes are they copied into the registry's store.
    let staging_dir = tempfile::Builder::new()
        .prefix(".import-")
        .tempdir_in(&reg.dir)
        .map_err(|source| RegistryError::Io {
            path: reg.dir.clone(),
            source,
        })?;
    let staged = crate::blob::FsBlobStore::new(staging_dir.path());
    let mut seen = std::collections::BTreeSet::new();
    for entry in entries {
        let mut entry = entry.map_err(bad_entry)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(refused(format!(
                "{}: only regular files belong in an export",
                archive.display()
            )));
        }
        let path = entry
            .path()
            .map_err(|e| refused(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let named = path
            .strip_prefix("blobs/")
            .and_then(|hex| Digest::from_hex(hex).ok())
            .ok_or_else(|| refused(format!("{}: unexpected entry {path:?}", archive.display())))?;
        let Some(&most) = expected.get(&named) else {
            return Err(refused(format!(
                "{path}: not a blob the signed manifest names; refused before reading it"
            )));
        };
        let size = entry.header().size().map_err(bad_entry)?;
        let exact = m.content.files.iter().any(|f| f.sha256 == named);
        if (exact && size != most) || size > most {
            return Err(refused(format!(
                "{path}: {size} bytes where the signed manifest allows {most}; refused before reading it"
            )));
        }
        if !seen.insert(named) {
            return Err(refused(format!("{path}: appears twice")));
        }
        let got = staged.put(&mut (&mut entry).take(most))?;
        if got != named {
            return Err(refused(format!(
                "{path}: its content is sha256:{got}: the archive was modified"
            )));
        }
    }
    if let Some(missing) = expected.keys().find(|d| !seen.contains(*d)) {
        return Err(refused(format!(
            "{}: blob sha256:{missing} named by the manifest is missing",
            archive.display()
        )));
    }
    let exporter = verified.key.fingerprint().to_string();
    let staged_store: &dyn crate::BlobStore = &staged;
    // The model itself, as at registration.
    let sig = staged_store.read(&m.content.signature, MAX_BUNDLE_BYTES)?;
    let (signed, signer) = oms::verify_bundle_signer(&sig, keys, anchors)
        .map_err(|e| refused(format!("the model's signature does not verify here: {e}")))?;
    if signed.subject_digest != m.content.root {
        return Err(refused("the model's signature is over another root digest"));
    }
    let expectations = oms::file_expectations(&signed).map_err(|e| refused(e.to_string()))?;
    check_against_signature(staged_store, &m.content.files, &expectations)
        .map_err(|e| refused(e.to_string()))?;
    let dir = tempfile::tempdir().map_err(|source| RegistryError::Io {
        path: "tmp".into(),
        source,
    })?;
    let mut scans = Vec::new();
    for (i, f) in m.content.files.iter().enumerate() {
        let p = dir.path().join(i.to_string());
        staged_store.copy_to(&f.sha256, &p, f.size)?;
        scans.push(scan_one(&p, &f.name, scan, fail_on).map_err(refused)?);
    }
    if let Some(p) = &m.content.provenance {
        let bytes = staged_store.read(p, MAX_BUNDLE_BYTES)?;
        let att = verify_attestation(&bytes, keys)
            .map_err(|e| refused(format!("the provenance does not verify here: {e}")))?;
        if let Some(f) = m.content.files.iter().find(|f| !att.covers(&f.sha256)) {
            return Err(refused(format!("the provenance does not name {}", f.name)));
        }
    }
    // 3. Everything verified: the blobs enter the registry's store.
    for d in expected.keys() {
        let path = staged.path_of(d);
        let mut f = std::fs::File::open(&path).map_err(|source| RegistryError::Io {
            path: path.clone(),
            source,
        })?;
        reg.blobs().put(&mut f)?;
    }
    drop(staging_dir);
    let target = name.unwrap_or(&m.name);
    let v = reg.insert_version(
        target,
        &NewVersion {
            content: VersionContent {
                signer: signer.key.to_string(),
                signer_identity: signer.identity,
                scan: serde_json::json!({"fail_on": fail_on.as_str(), "files": scans}),
                ..m.content.clone()
            },
            source: format!("import:{}:{}@{}", archive.display(), m.name, m.version),
        },
        actor,
        &format!("import of {}@{} exported by {exporter}", m.name, m.version),
        record,
    )?;
    // The approvals travel with the version; the import's record covers them.
    for a in &m.approvals {
        let _ = reg.add_approval(
            &v,
            &a.approver_key,
            &a.approver,
            &a.bundle,
            false,
            &mut |_| Ok(()),
        );
    }
    Ok((v, m, exporter))
}
