//! Authorised data locations.
//!
//! [`open_authorised`] opens first and checks second: it opens the path (following symlinks,
//! non-blocking so a FIFO cannot hang it), reads the *opened* file's type with `fstat` and its
//! real path from `/proc/self/fd`, and accepts it only if that real path lies inside one of
//! the canonicalised roots. The caller then reads through the returned handle, so swapping a
//! symlink or renaming a directory after the check changes nothing: the handle still refers to
//! the file that was checked. `..`, symlinks pointing out of a root, and paths through a
//! symlinked directory are all judged by where they really lead.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Why a path could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The policy forbids it; `rule` names the policy rule.
    #[error("{path}: refused by {rule}: {reason}")]
    Refused {
        /// The path as given.
        path: PathBuf,
        /// The rule (`data.roots`, `data.file-types`).
        rule: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// It could not be opened or inspected.
    #[error("{path}: {source}")]
    Io {
        /// The path as given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What an opened, authorised path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// An open handle to an authorised file or directory.
#[derive(Debug)]
pub struct Authorised {
    /// The handle that was checked; read through it.
    pub file: File,
    /// Its real path.
    pub real: PathBuf,
    /// The root it lies in (canonical).
    pub root: PathBuf,
    /// File or directory.
    pub kind: Kind,
}

/// Opens `path` if it is a regular file or a directory whose real path lies inside one of
/// `roots`, on the root's own mount, and (a file) with one link. Roots that do not exist are
/// ignored; an empty list authorises nothing.
///
/// # Errors
/// As [`open_authorised_with`].
pub fn open_authorised(path: &Path, roots: &[PathBuf]) -> Result<Authorised, PathError> {
    open_authorised_with(path, roots, false)
}

/// The mount id of an open file, from `/proc/self/fdinfo` (the kernel's `mnt_id`): two paths
/// under one directory name can still be on different mounts (a bind mount of `/etc` made
/// inside a root, possible for any user in a user namespace), and the path text does not show
/// it.
fn mount_id(file: &File) -> std::io::Result<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", file.as_raw_fd()))?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no mnt_id in /proc/self/fdinfo"))
}

/// [`open_authorised`], saying whether files with more than one hard link are accepted
/// (`data.allow_hard_links`): a hard link made inside a root to a file outside it (`ln
/// /etc/passwd ROOT/passwd.csv`) has a real path inside the root, and only its link count
/// gives it away.
///
/// # Errors
/// [`PathError::Refused`] for a path outside every root, an empty root list, a device, FIFO
/// or socket, a file on another mount than its root, or a hard-linked file;
/// [`PathError::Io`] when it cannot be opened or inspected.
pub fn open_authorised_with(
    path: &Path,
    roots: &[PathBuf],
    allow_hard_links: bool,
) -> Result<Authorised, PathError> {
    let refused = |rule, reason: String| PathError::Refused {
        path: path.to_path_buf(),
        rule,
        reason,
    };
    let io = |source| PathError::Io {
        path: path.to_path_buf(),
        source,
    };
    if roots.is_empty() {
        return Err(refused(
            "data.roots",
            "no data roots are configured, so no location is authorised".into(),
        ));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let ty = meta.file_type();
    let kind = if ty.is_file() {
        Kind::File
    } else if ty.is_dir() {
        Kind::Dir
    } else {
        let what = if ty.is_fifo() {
            "a FIFO"
        } else if ty.is_socket() {
            "a socket"
        } else if ty.is_char_device() {
            "a character device"
        } else if ty.is_block_device() {
            "a block device"
        } else {
            "not a regular file or directory"
        };
        return Err(refused(
            "data.file-types",
            format!("it is {what}; only regular files and directories are datasets"),
        ));
    };
    let real = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(io)?;
    if real.to_string_lossy().ends_with(" (deleted)") {
        return Err(refused(
            "data.roots",
            "the file was deleted while it was being opened".into(),
        ));
    }
    let canonical: Vec<PathBuf> = roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    match canonical.into_iter().find(|r| real.starts_with(r)) {
        Some(root) => {
            let root_mount = File::open(&root).and_then(|r| mount_id(&r)).map_err(io)?;
            if mount_id(&file).map_err(io)? != root_mount {
                return Err(refused(
                    "data.roots",
                    format!(
                        "it resolves to {}, which is on another mount than its root {} (a bind mount or a file system mounted inside the root); authorise that location itself if it holds data",
                        real.display(),
                        root.display()
                    ),
                ));
            }
            if kind == Kind::File && !allow_hard_links {
                use std::os::unix::fs::MetadataExt as _;
                if meta.nlink() > 1 {
                    return Err(refused(
                        "data.allow_hard_links",
                        format!(
                            "it has {} hard links, so the same file may also live outside the data roots; copy it into the root, or set data.allow_hard_links = true",
                            meta.nlink()
                        ),
                    ));
                }
            }
            Ok(Authorised {
                file,
                real,
                root,
                kind,
            })
        }
        None => Err(refused(
            "data.roots",
            format!(
                "it resolves to {}, which is outside every data root ({})",
                real.display(),
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("sub/data.csv"), "inside").unwrap();
        std::fs::write(outside.join("secret.csv"), "outside").unwrap();
        Fixture {
            _dir: dir,
            root,
            outside,
        }
    }

    fn rule(r: Result<Authorised, PathError>) -> &'static str {
        match r {
            Err(PathError::Refused { rule, .. }) => rule,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn inside_a_root_is_accepted_through_dotdot_and_symlinks_that_stay_inside() {
        let f = fixture();
        let roots = [f.root.clone()];
        let a = open_authorised(&f.root.join("sub/data.csv"), &roots).unwrap();
        assert_eq!(a.kind, Kind::File);
        assert!(a.real.ends_with("root/sub/data.csv"));
        let a = open_authorised(&f.root.join("sub/../sub/data.csv"), &roots).unwrap();
        assert!(a.real.ends_with("root/sub/data.csv"));
        symlink(f.root.join("sub/data.csv"), f.root.join("link.csv")).unwrap();
        assert!(open_authorised(&f.root.join("link.csv"), &roots).is_ok());
        let a = open_authorised(&f.root.join("sub"), &roots).unwrap();
        assert_eq!(a.kind, Kind::Dir);
    }

    /// A hard link inside a root to a file outside it passes every path check; its link count
    /// refuses it (unless the policy allows hard links).
    #[test]
    fn hard_links_are_refused_unless_allowed() {
        let f = fixture();
        let roots = [f.root.clone()];
        std::fs::hard_link(f.outside.join("secret.csv"), f.root.join("passwd.csv")).unwrap();
        let err = open_authorised(&f.root.join("passwd.csv"), &roots).unwrap_err();
        assert!(err.to_string().contains("2 hard links"), "{err}");
        assert_eq!(
            rule(open_authorised(&f.root.join("passwd.csv"), &roots)),
            "data.allow_hard_links"
        );
        assert!(open_authorised_with(&f.root.join("passwd.csv"), &roots, true).is_ok());
    }

    #[test]
    fn dotdot_and_symlink_escapes_are_refused() {
        let f = fixture();
        let roots = [f.root.clone()];
        let escape = f.root.join("sub/../../outside/secret.csv");
        assert_eq!(rule(open_authorised(&escape, &roots)), "data.roots");
        symlink(f.outside.join("secret.csv"), f.root.join("evil.csv")).unwrap();
        let e = open_authorised(&f.root.join("evil.csv"), &roots).unwrap_err();
        assert!(e.to_string().contains("outside every data root"), "{e}");
        assert!(e.to_string().contains("evil.csv"), "{e}");
        symlink(&f.outside, f.root.join("evil-dir")).unwrap();
        assert_eq!(
            rule(open_authorised(&f.root.join("evil-dir/secret.csv"), &roots)),
            "data.roots"
        );
        // A root that is a prefix by name only is not a parent.
        let sibling = f.root.with_file_name("root2");
        std::fs::create_dir_all(&sibling).unwrap();
        std::fs::write(sibling.join("x.csv"), "x").unwrap();
        assert_eq!(
            rule(open_authorised(&sibling.join("x.csv"), &roots)),
            "data.roots"
        );
        assert_eq!(
            rule(open_authorised(&f.root.join("sub/data.csv"), &[])),
            "data.roots"
        );
    }

    #[test]
    fn a_symlink_swapped_after_the_check_does_not_change_what_is_read() {
        let f = fixture();
        let link = f.root.join("data.csv");
        symlink(f.root.join("sub/data.csv"), &link).unwrap();
        let mut a = open_authorised(&link, std::slice::from_ref(&f.root)).unwrap();
        std::fs::remove_file(&link).unwrap();
        symlink(f.outside.join("secret.csv"), &link).unwrap();
        let mut text = String::new();
        a.file.read_to_string(&mut text).unwrap();
        assert_eq!(text, "inside");
        assert_eq!(
            rule(open_authorised(&link, std::slice::from_ref(&f.root))),
            "data.roots"
        );
    }

    #[test]
    fn devices_fifos_and_sockets_are_refused() {
        let f = fixture();
        let fifo = f.root.join("pipe");
        // mkfifo(1), which keeps this crate free of unsafe.
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert_eq!(
            rule(open_authorised(&fifo, std::slice::from_ref(&f.root))),
            "data.file-types"
        );
        let sock = f.root.join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        // Opening a socket fails with ENXIO before any check: still not accepted.
        assert!(open_authorised(&sock, std::slice::from_ref(&f.root)).is_err());
        symlink("/dev/null", f.root.join("null")).unwrap();
        let e = open_authorised(&f.root.join("null"), &[PathBuf::from("/")]).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }
}
