//! The program's view of the filesystem, planned by the parent before anything runs.
//!
//! Every path of the spec is resolved component by component on the host: each symbolic link
//! met on the way is recorded (to be recreated in the new root with the same text) and the
//! real path is bound at its own place. So a path the program was given works inside exactly
//! as outside, and nothing that was not named is there.
//!
//! Socket files and FIFOs are channels to whatever listens on the host, and a read-only
//! mount does not close them: they are looked for in every readable directory (on the same
//! mount; nested mounts are not bound) and refused before the run.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::spec::Spec;

/// One bind mount of the view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// The real path (no symbolic link in it), the same outside and inside.
    pub path: PathBuf,
    /// A directory (otherwise a file).
    pub dir: bool,
    /// Read-write (otherwise read-only).
    pub write: bool,
}

/// The planned view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    /// Symbolic links to recreate: (path, link text).
    pub links: Vec<(PathBuf, PathBuf)>,
    /// Bind mounts, parents before children.
    pub binds: Vec<Bind>,
    /// The scratch tmpfs, at its real path.
    pub scratch: Option<PathBuf>,
    /// Hidden directories, at their real paths: an empty tmpfs over each that a bind makes
    /// visible, mounted in depth order with the binds (so a bind inside one, such as the run's
    /// own output under a hidden home, still shows through).
    pub hide: Vec<PathBuf>,
    /// The working directory, at its real path.
    pub cwd: PathBuf,
    /// Device nodes to expose besides the standard ones (real paths under `/dev`).
    pub devices: Vec<PathBuf>,
}

/// What stage 1 reads: the spec and how to build its view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Launch {
    /// The spec.
    pub spec: Spec,
    /// The view.
    pub view: View,
    /// When the caller is root: the unprivileged uid and gid the program runs as.
    pub run_as: Option<u32>,
    /// A memory cgroup holds the tree; otherwise stage 1 accounts memory itself.
    #[serde(default)]
    pub memory_cgroup: bool,
}

/// Why a view cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// A path does not resolve.
    #[error("{what} {path}: {source}")]
    Resolve {
        /// Which kind of path.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A readable path holds a channel to the host.
    #[error(
        "{path} is a {kind} inside the readable path {under}: a sandboxed program could talk to whatever listens on it; move it out or name a narrower path"
    )]
    Channel {
        /// The socket or FIFO.
        path: PathBuf,
        /// `socket` or `FIFO`.
        kind: &'static str,
        /// The readable path that holds it.
        under: PathBuf,
    },
    /// A readable directory is too large to check.
    #[error(
        "{path} holds more than {max} entries; it is too large to check for sockets: name the directories the program needs"
    )]
    TooLarge {
        /// The directory.
        path: PathBuf,
        /// The bound.
        max: usize,
    },
}

/// Most directory entries checked under one readable path.
pub const MAX_WALK_ENTRIES: usize = 1_000_000;

/// Most symbolic links followed resolving one path (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Resolves `path` (absolute, or relative to the working directory) without trusting any
/// link in it: returns the real path and every link met, as (link path, link text).
///
/// # Errors
/// When a component is missing or unreadable, or there are too many links.
pub fn resolve(path: &Path) -> std::io::Result<(PathBuf, Vec<(PathBuf, PathBuf)>)> {
    let path = std::path::absolute(path)?;
    let mut queue: VecDeque<OsString> = VecDeque::new();
    let mut links = Vec::new();
    let mut real = PathBuf::from("/");
    let push = |queue: &mut VecDeque<OsString>, p: &Path, front: bool| {
        let parts: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some(OsString::from("..")),
                _ => None,
            })
            .collect();
        if front {
            for part in parts.into_iter().rev() {
                queue.push_front(part);
            }
        } else {
            queue.extend(parts);
        }
    };
    push(&mut queue, &path, false);
    while let Some(part) = queue.pop_front() {
        if part == ".." {
            real.pop();
            continue;
        }
        let next = real.join(&part);
        let meta = std::fs::symlink_metadata(&next)?;
        if meta.file_type().is_symlink() {
            if links.len() >= MAX_LINKS {
                return Err(std::io::Error::other("too many levels of symbolic links"));
            }
            let target = std::fs::read_link(&next)?;
            links.push((next, target.clone()));
            if target.is_absolute() {
                real = PathBuf::from("/");
            }
            push(&mut queue, &target, true);
        } else {
            real = next;
        }
    }
    Ok((real, links))
}

/// Roots whose trees belong to the system (owned by root, written by the package manager):
/// not walked for sockets.
const SYSTEM_TREES: &[&str] = &["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc"];

fn is_system(path: &Path) -> bool {
    SYSTEM_TREES.iter().any(|t| path.starts_with(t))
}

/// Looks for sockets and FIFOs under `dir` on its own mount, at most
/// [`MAX_WALK_ENTRIES`] entries.
fn check_channels(dir: &Path, under: &Path) -> Result<(), ViewError> {
    let resolve_err = |path: &Path, source| ViewError::Resolve {
        what: "readable path",
        path: path.to_path_buf(),
        source,
    };
    let top = std::fs::symlink_metadata(dir).map_err(|e| resolve_err(dir, e))?;
    let device = top.dev();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            // Unreadable here is unreadable inside too.
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_WALK_ENTRIES {
                return Err(ViewError::TooLarge {
                    path: under.to_path_buf(),
                    max: MAX_WALK_ENTRIES,
                });
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let kind_name = if kind.is_socket() {
                Some("socket")
            } else if kind.is_fifo() {
                Some("FIFO")
            } else {
                None
            };
            if let Some(kind) = kind_name {
                return Err(ViewError::Channel {
                    path: entry.path(),
                    kind,
                    under: under.to_path_buf(),
                });
            }
            if kind.is_dir()
                && let Ok(m) = entry.metadata()
                && m.dev() == device
            {
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

fn add_links(all: &mut Vec<(PathBuf, PathBuf)>, links: Vec<(PathBuf, PathBuf)>) {
    for l in links {
        if !all.contains(&l) {
            all.push(l);
        }
    }
}

/// Plans the view of `spec`.
///
/// # Errors
/// A path that does not resolve, a socket or FIFO in a readable path, a readable directory
/// too large to check.
pub fn plan(spec: &Spec) -> Result<View, ViewError> {
    let mut view = View::default();
    let mut binds: Vec<Bind> = Vec::new();
    for (what, paths, write) in [
        ("readable path", &spec.read, false),
        ("writable path", &spec.write, true),
    ] {
        for p in paths {
            let (real, links) = resolve(p).map_err(|source| ViewError::Resolve {
                what,
                path: p.clone(),
                source,
            })?;
            let meta = std::fs::metadata(&real).map_err(|source| ViewError::Resolve {
                what,
                path: p.clone(),
                source,
            })?;
            let kind = meta.file_type();
            if kind.is_socket() || kind.is_fifo() {
                return Err(ViewError::Channel {
                    path: p.clone(),
                    kind: if kind.is_socket() { "socket" } else { "FIFO" },
                    under: p.clone(),
                });
            }
            if meta.is_dir() && !is_system(&real) {
                check_channels(&real, p)?;
            }
            add_links(&mut view.links, links);
            binds.push(Bind {
                path: real,
                dir: meta.is_dir(),
                write,
            });
        }
    }
    let real_of = |p: &Path, links: &mut Vec<(PathBuf, PathBuf)>| -> PathBuf {
        // A path that does not exist yet is used as given (it is created inside).
        match resolve(p) {
            Ok((real, l)) => {
                add_links(links, l);
                real
            }
            Err(_) => std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
        }
    };
    for h in &spec.hide {
        let r = real_of(h, &mut view.links);
        view.hide.push(r);
    }
    // Parents first; a path inside another bind of the same kind is already there, unless a
    // hidden directory lies between the two.
    binds.sort_by(|a, b| {
        a.path
            .components()
            .count()
            .cmp(&b.path.components().count())
            .then(a.path.cmp(&b.path))
    });
    for b in binds {
        let nearest = view
            .binds
            .iter()
            .filter(|k| k.dir && b.path.starts_with(&k.path))
            .max_by_key(|k| k.path.components().count());
        let hidden_between = |k: &Bind| {
            view.hide
                .iter()
                .any(|h| h.starts_with(&k.path) && h != &k.path && b.path.starts_with(h))
        };
        match nearest {
            Some(k) if k.write == b.write && !hidden_between(k) => {}
            _ => {
                if !view.binds.iter().any(|k| k.path == b.path) {
                    view.binds.push(b);
                } else if b.write {
                    // Named both readable and writable: writable wins.
                    for k in &mut view.binds {
                        if k.path == b.path {
                            k.write = true;
                        }
                    }
                }
            }
        }
    }
    if let Some(s) = &spec.scratch {
        view.scratch = Some(real_of(s, &mut view.links));
    }
    view.cwd = real_of(&spec.cwd, &mut view.links);
    for d in &spec.devices {
        let (real, links) = resolve(d).map_err(|source| ViewError::Resolve {
            what: "device",
            path: d.clone(),
            source,
        })?;
        add_links(&mut view.links, links);
        view.devices.push(real);
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn links_are_recorded_and_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("a")).unwrap();
        std::fs::write(real.join("a/f"), "x").unwrap();
        std::os::unix::fs::symlink("a", real.join("rel")).unwrap();
        std::os::unix::fs::symlink(real.join("rel"), real.join("abs")).unwrap();
        let (r, links) = resolve(&real.join("abs/f")).unwrap();
        assert_eq!(r, real.join("a/f"));
        assert_eq!(
            links,
            vec![
                (real.join("abs"), real.join("rel")),
                (real.join("rel"), PathBuf::from("a")),
            ]
        );
        std::os::unix::fs::symlink("loop", real.join("loop")).unwrap();
        assert!(resolve(&real.join("loop")).is_err());
        assert!(resolve(&real.join("missing/x")).is_err());
    }

    #[test]
    fn sockets_and_fifos_in_readable_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("deep/er");
        std::fs::create_dir_all(&sub).unwrap();
        let _l = std::os::unix::net::UnixListener::bind(sub.join("agent.sock")).unwrap();
        let spec = |read: Vec<PathBuf>| Spec {
            program: "/bin/true".into(),
            args: vec![],
            env: vec![],
            cwd: "/".into(),
            read,
            write: vec![],
            scratch: None,
            devices: vec![],
            hide: vec![],
            limits: crate::Limits::default(),
            strict: true,
            simulate_missing: vec![],
        };
        let e = plan(&spec(vec![dir.path().to_path_buf()])).unwrap_err();
        assert!(
            matches!(&e, ViewError::Channel { kind: "socket", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("agent.sock"), "{e}");
        let e = plan(&spec(vec![sub.join("agent.sock")])).unwrap_err();
        assert!(matches!(&e, ViewError::Channel { .. }), "{e}");
        let other = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&other.path().join("pipe"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = plan(&spec(vec![other.path().to_path_buf()])).unwrap_err();
        assert!(matches!(&e, ViewError::Channel { kind: "FIFO", .. }), "{e}");
    }

    #[test]
    fn nested_binds_of_one_kind_collapse() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(real.join("a/b/out")).unwrap();
        let s = Spec {
            program: "/bin/true".into(),
            args: vec![],
            env: vec![],
            cwd: real.join("a"),
            read: vec![real.join("a/b"), real.join("a")],
            write: vec![real.join("a/b/out")],
            scratch: Some(real.join("scratch-not-yet")),
            devices: vec![],
            hide: vec![],
            limits: crate::Limits::default(),
            strict: true,
            simulate_missing: vec![],
        };
        let v = plan(&s).unwrap();
        let binds: Vec<(&Path, bool)> = v
            .binds
            .iter()
            .map(|b| (b.path.as_path(), b.write))
            .collect();
        assert_eq!(
            binds,
            vec![
                (real.join("a").as_path(), false),
                (real.join("a/b/out").as_path(), true)
            ]
        );
        assert_eq!(v.scratch, Some(real.join("scratch-not-yet")));
    }
}
