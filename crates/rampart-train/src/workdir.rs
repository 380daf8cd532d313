//! A run's private working directory (the plaintext copy of the dataset, the scratch mount
//! point), removed on every exit path.
//!
//! - On a normal end, and on an error, by `Drop`.
//! - On `SIGINT`, `SIGTERM` or `SIGHUP`, by a signal thread that removes it and exits with
//!   `128 + signal`.
//! - After `SIGKILL` (or a power cut), by the next run: each directory holds a `.lock` file
//!   that its run keeps locked (`flock`); a directory whose lock can be taken belongs to no
//!   live run and is removed.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The prefix of run directories under the home's `tmp/`.
pub const PREFIX: &str = "train-";
/// The lock file inside each.
const LOCK: &str = ".lock";
/// A directory without a lock file (one being created) is left alone this long.
const GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// A locked, self-removing working directory.
#[derive(Debug)]
pub struct WorkDir {
    dir: Option<tempfile::TempDir>,
    _lock: Flock<File>,
    signals: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Removes the working directories under `root` that belong to no live run; returns them.
pub fn sweep(root: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return removed;
    };
    for e in entries.flatten() {
        let is_ours = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX));
        if !is_ours || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = e.path();
        let stale = match File::open(path.join(LOCK)) {
            // Taken: its run is gone (the kernel drops a dead process's locks).
            Ok(f) => Flock::lock(f, FlockArg::LockExclusiveNonblock).is_ok(),
            Err(_) => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > GRACE),
        };
        if stale && std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

impl WorkDir {
    /// Sweeps `root` of dead runs' directories, then creates a new one, locked, and removed
    /// when this value is dropped or the process is interrupted.
    ///
    /// # Errors
    /// When the directory, its lock or the signal handlers cannot be set up.
    pub fn create(root: &Path) -> std::io::Result<Self> {
        sweep(root);
        let dir = tempfile::Builder::new()
            .prefix(PREFIX)
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(root)?;
        let lock = File::create(dir.path().join(LOCK))?;
        let lock = Flock::lock(lock, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| std::io::Error::from(e))?;
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
        let handle = signals.handle();
        let path = dir.path().to_path_buf();
        let thread = std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let _ = std::fs::remove_dir_all(&path);
                std::process::exit(128 + sig);
            }
        });
        Ok(Self {
            dir: Some(dir),
            _lock: lock,
            signals: handle,
            thread: Some(thread),
        })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new(""), tempfile::TempDir::path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        self.signals.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_dead_runs_directory_is_swept_and_a_live_one_kept() {
        let root = tempfile::tempdir().unwrap();
        let live = WorkDir::create(root.path()).unwrap();
        // A crashed run: its lock file exists and nobody holds it.
        let dead = root.path().join("train-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), "").unwrap();
        std::fs::write(dead.join("plaintext.csv"), "ssn\n078-05-1120\n").unwrap();
        // One being created right now (no lock yet): left alone.
        let young = root.path().join("train-young");
        std::fs::create_dir(&young).unwrap();
        let removed = sweep(root.path());
        assert_eq!(removed, vec![dead.clone()]);
        assert!(!dead.exists() && young.exists() && live.path().exists());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(live.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = live.path().to_path_buf();
        drop(live);
        assert!(!path.exists());
    }
}
