//! Editing where data may come from, as a service: data roots (directories every dataset must
//! lie in) and pins (digests of files accepted unsigned), each change written to the policy
//! only once its `data.*` record is in the audit log.

use std::path::{Path, PathBuf};

use rampart_audit::{Action, Auditor, Outcome};

use crate::Home;
use crate::trust::{EditError, unrecorded};

/// Authorises directory `dir` (recorded by its real path, which is returned).
///
/// # Errors
/// The home's (not a directory, already a root, the policy), the audit log's.
pub fn add_root(home: &Home, audit: &Auditor<'_>, dir: &Path) -> Result<PathBuf, EditError> {
    audit
        .recorded(|rec| {
            home.data_root_add(dir, &mut |real| {
                rec.write(
                    audit
                        .event(Action::DataRootsAdd, Outcome::Ok)
                        .subject_path(real.display().to_string()),
                )
            })
        })
        .map_err(unrecorded)
}

/// Removes data root `dir`; returns the root removed.
///
/// # Errors
/// The home's (no such root, the policy), the audit log's.
pub fn remove_root(home: &Home, audit: &Auditor<'_>, dir: &Path) -> Result<PathBuf, EditError> {
    audit
        .recorded(|rec| {
            home.data_root_remove(dir, &mut |gone| {
                rec.write(
                    audit
                        .event(Action::DataRootsRemove, Outcome::Ok)
                        .subject_path(gone.display().to_string()),
                )
            })
        })
        .map_err(unrecorded)
}

/// Pins `digest` (`sha256:<hex>`, of the file at `path`): that content is accepted unsigned.
///
/// # Errors
/// The home's (already pinned, the policy), the audit log's.
pub fn pin(home: &Home, audit: &Auditor<'_>, digest: &str, path: &Path) -> Result<(), EditError> {
    audit
        .recorded(|rec| {
            home.data_pin_add(digest, &mut |()| {
                rec.write(
                    audit
                        .event(Action::DataPin, Outcome::Ok)
                        .subject_path(path.display().to_string())
                        .subject_digest(digest.to_owned()),
                )
            })
        })
        .map_err(unrecorded)
}

/// Removes the pin of `digest`.
///
/// # Errors
/// The home's (not pinned, the policy), the audit log's.
pub fn unpin(home: &Home, audit: &Auditor<'_>, digest: &str) -> Result<(), EditError> {
    audit
        .recorded(|rec| {
            home.data_pin_remove(digest, &mut |()| {
                rec.write(
                    audit
                        .event(Action::DataUnpin, Outcome::Ok)
                        .subject_digest(digest.to_owned()),
                )
            })
        })
        .map_err(unrecorded)
}
