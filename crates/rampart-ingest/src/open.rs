//! Opening a dataset file for reading: from an authorised root only (checked on the opened
//! handle), its access audited, its plaintext as a stream (`.age` files, recognised by their
//! header, are decrypted in memory).

use std::io::Read;
use std::path::{Path, PathBuf};

use rampart_audit::{Action, Outcome};
use rampart_crypto::age_file::{self, Unlock};
use rampart_data::paths::Kind;
use rampart_data::{PathError, open_authorised_with};
use rampart_home::Session;

use crate::IngestError;
use crate::store::{DatasetStore, dataset_ref};

/// An opened dataset.
pub struct Dataset {
    /// Its plaintext.
    pub reader: Box<dyn Read + Send>,
    /// Its real path (a stored dataset: the encrypted file).
    pub real: PathBuf,
    /// Whether it was age-encrypted.
    pub encrypted: bool,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("real", &self.real)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

/// Audits a refused dataset path and returns it as the error.
#[must_use]
pub fn refused(s: &Session<'_>, path: &Path, e: PathError) -> IngestError {
    let (outcome, rule) = match &e {
        PathError::Refused { rule, .. } => (Outcome::Denied, *rule),
        _ => (Outcome::Error, "io"),
    };
    let event = s
        .audit
        .event(Action::DataAccess, outcome)
        .subject_path(path.display().to_string())
        .detail("rule", rule)
        .detail("reason", e.to_string());
    match s.audit.refusal(event) {
        Some(audit) => IngestError::Audit(audit),
        None => IngestError::Path(e),
    }
}

/// The keys that decrypt a dataset: given, or loaded only when the file turns out to be
/// encrypted.
#[derive(Clone, Copy)]
pub enum Keys<'k> {
    /// These.
    Given(&'k Unlock),
    /// Whatever this returns, called only for an age file.
    Lazy(&'k dyn Fn() -> Result<Unlock, IngestError>),
}

impl std::fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Given(_) => "Keys::Given",
            Self::Lazy(_) => "Keys::Lazy",
        })
    }
}

/// Opens one dataset file from an authorised root, decrypting it with `keys` when it is an
/// age file.
///
/// # Errors
/// The path is refused (audited), is a directory, or cannot be read or decrypted (audited).
pub fn open_file(s: &Session<'_>, path: &Path, keys: Keys<'_>) -> Result<Dataset, IngestError> {
    let data = &s.policy.data;
    let a = open_authorised_with(path, &data.roots, data.allow_hard_links)
        .map_err(|e| refused(s, path, e))?;
    if a.kind != Kind::File {
        return Err(IngestError::Request(format!(
            "{} is a directory; this command reads one file",
            path.display()
        )));
    }
    let mut buffered = age_file::buffered(a.file);
    let encrypted =
        age_file::looks_like_age(&mut buffered).map_err(|source| IngestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let reader: Box<dyn Read + Send> = if encrypted {
        let loaded;
        let keys = match keys {
            Keys::Given(k) => k,
            Keys::Lazy(f) => {
                loaded = f()?;
                &loaded
            }
        };
        match age_file::decrypting_reader(buffered, keys) {
            Ok(r) => r,
            Err(source) => {
                let event = s
                    .audit
                    .event(Action::DataAccess, Outcome::Failed)
                    .subject_path(a.real.display().to_string())
                    .detail("reason", source.to_string());
                if let Some(e) = s.audit.refusal(event) {
                    return Err(e.into());
                }
                return Err(IngestError::Age {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    } else {
        Box::new(buffered)
    };
    s.audit.record(
        s.audit
            .event(Action::DataAccess, Outcome::Ok)
            .subject_path(a.real.display().to_string())
            .detail("requested", path.display().to_string())
            .detail("root", a.root.display().to_string())
            .detail("encrypted", encrypted),
    )?;
    Ok(Dataset {
        reader,
        real: a.real,
        encrypted,
    })
}

/// The home's own keys (its age identity): what stored datasets are encrypted to.
///
/// # Errors
/// The identity cannot be loaded.
pub fn home_keys(s: &Session<'_>) -> Result<Unlock, IngestError> {
    let (id, _) = s.home.age_identity()?;
    Ok(Unlock::identities(vec![id.as_age().clone()]))
}

/// Opens a stored dataset by its reference (`sha256:HEX`) with the home's identity; the
/// access is audited with `purpose`. The reader checks the content against the address at
/// its end.
///
/// # Errors
/// No such dataset, or it cannot be opened.
pub fn open_stored(
    s: &Session<'_>,
    reference: &str,
    purpose: &str,
) -> Result<(crate::store::StoredDataset, crate::store::VerifiedReader), IngestError> {
    let store = DatasetStore::of(s.home);
    let ds = store.lookup(reference)?;
    let reader = store.open(&ds, &home_keys(s)?)?;
    s.audit.record(
        s.audit
            .event(Action::DataAccess, Outcome::Ok)
            .subject_path(ds.data.display().to_string())
            .subject_digest(dataset_ref(&ds.digest))
            .detail("store", true)
            .detail("purpose", purpose),
    )?;
    Ok((ds, reader))
}

/// Copies a stored dataset's plaintext into `out`, checking it against its content address;
/// the access is audited with `purpose` once the copy is known to be intact, and a store
/// that was tampered with is audited as a denied access and returned as
/// [`IngestError::Tampered`].
///
/// # Errors
/// No such dataset, it cannot be decrypted, it was tampered with, or `out` fails.
pub fn copy_stored(
    s: &Session<'_>,
    reference: &str,
    purpose: &str,
    out: &mut dyn std::io::Write,
) -> Result<(crate::store::StoredDataset, u64), IngestError> {
    let store = DatasetStore::of(s.home);
    let ds = store.lookup(reference)?;
    let mut reader = store.open(&ds, &home_keys(s)?)?;
    let copied = match std::io::copy(&mut reader, out) {
        Ok(n) => n,
        Err(e) => {
            if let Some(t) = crate::store::TamperedStore::find(&e) {
                let event = s
                    .audit
                    .event(Action::DataAccess, Outcome::Denied)
                    .subject_path(ds.data.display().to_string())
                    .subject_digest(reference.to_owned())
                    .detail("reason", format!("content is {}", t.got));
                if let Some(a) = s.audit.refusal(event) {
                    return Err(a.into());
                }
                return Err(IngestError::Tampered {
                    path: t.path.clone(),
                    want: t.want.clone(),
                    got: t.got.clone(),
                });
            }
            return Err(IngestError::Read {
                path: ds.data.clone(),
                source: e,
            });
        }
    };
    s.audit.record(
        s.audit
            .event(Action::DataAccess, Outcome::Ok)
            .subject_path(ds.data.display().to_string())
            .subject_digest(reference.to_owned())
            .detail("store", true)
            .detail("purpose", purpose),
    )?;
    Ok((ds, copied))
}
