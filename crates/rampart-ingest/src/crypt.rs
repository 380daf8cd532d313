//! age files at rest, interoperable with the `age` CLI: [`encrypt`] and [`decrypt`] as
//! services, each recorded (`encrypt`, `decrypt`, a failed decryption too); re-encryption in
//! place is [`crate::rekey`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rampart_audit::{Action, Outcome};
use rampart_crypto::Digest;
use rampart_crypto::age_file::{self, Recipients, Unlock};
use rampart_home::{Home, Session};

use crate::IngestError;

/// The recipients `age1…` strings and recipients files (`-R`, one per line, `#` comments)
/// name; with none, the home's own identity when `default_home`.
///
/// # Errors
/// [`IngestError::Age`] naming the file or `recipients` for one that does not parse (or
/// none at all); the home's error loading its identity.
pub fn recipients(
    home: &Home,
    given: &[String],
    files: &[PathBuf],
    default_home: bool,
) -> Result<Recipients, IngestError> {
    let age = |path: &Path, source| IngestError::Age {
        path: path.to_path_buf(),
        source,
    };
    let mut list = given.to_vec();
    for f in files {
        let text = rampart_home::secure_fs::read_small_file(f)?;
        list.extend(Recipients::parse_file(&text).map_err(|e| age(f, e))?);
    }
    if list.is_empty() && default_home {
        home.require()?;
        list.push(home.age_identity()?.0.recipient());
    }
    Recipients::parse(&list).map_err(|e| age(Path::new("recipients"), e))
}

/// Encrypts `input` (read from `path`) to `to` into `out` (written to `output`) and records
/// `encrypt` with the plaintext's digest, size and recipients. Returns both.
///
/// # Errors
/// [`IngestError::Age`] naming `path`; the record.
pub fn encrypt(
    s: &Session<'_>,
    (path, input): (&Path, &mut dyn Read),
    (output, out): (&Path, &mut dyn Write),
    to: &Recipients,
    armor: bool,
) -> Result<(u64, Digest), IngestError> {
    let (bytes, digest) =
        age_file::encrypt(input, out, to, armor).map_err(|source| IngestError::Age {
            path: path.to_path_buf(),
            source,
        })?;
    s.audit.record(
        s.audit
            .event(Action::Encrypt, Outcome::Ok)
            .subject_path(path.display().to_string())
            .subject_digest(digest.reference())
            .detail("output", output.display().to_string())
            .detail("recipients", to.describe().join(", "))
            .detail("bytes", bytes),
    )?;
    Ok((bytes, digest))
}

/// Decrypts `input` (read from `path`) with `keys` into `out` (written to `output`) and
/// records `decrypt` with the plaintext's digest and size — or, when it does not decrypt,
/// a failed `decrypt` with the reason.
///
/// # Errors
/// [`IngestError::Age`] naming `path` (with [`crate::age_hint`]'s advice); the record, which
/// wins over the decryption's error when both fail.
pub fn decrypt(
    s: &Session<'_>,
    (path, input): (&Path, impl Read + Send),
    (output, out): (&Path, &mut dyn Write),
    keys: &Unlock,
) -> Result<(u64, Digest), IngestError> {
    let (bytes, digest) = match age_file::decrypt(input, out, keys) {
        Ok(done) => done,
        Err(source) => {
            let e = IngestError::Age {
                path: path.to_path_buf(),
                source,
            };
            let event = s
                .audit
                .event(Action::Decrypt, Outcome::Failed)
                .subject_path(path.display().to_string())
                .detail("reason", e.to_string());
            return Err(s.audit.refusal(event).map_or(e, IngestError::Audit));
        }
    };
    s.audit.record(
        s.audit
            .event(Action::Decrypt, Outcome::Ok)
            .subject_path(path.display().to_string())
            .subject_digest(digest.reference())
            .detail("output", output.display().to_string())
            .detail("bytes", bytes),
    )?;
    Ok((bytes, digest))
}
