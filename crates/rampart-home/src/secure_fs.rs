//! File helpers that keep the invariants: private files are 0600 from the moment they exist,
//! writes are atomic (temp file, fsync, rename, fsync of the directory), and key files are only
//! read when their permissions are tight.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use zeroize::Zeroizing;

use crate::HomeError;

/// The largest key or policy file rampart will read.
pub const MAX_SMALL_FILE_BYTES: u64 = 1024 * 1024;

/// Creates a directory (and parents) and sets the leaf to mode 0700.
///
/// # Errors
/// On any filesystem failure.
pub fn create_private_dir(path: &Path) -> Result<(), HomeError> {
    fs::create_dir_all(path).map_err(HomeError::io("cannot create directory", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .map_err(HomeError::io("cannot set permissions on", path))
}

/// Creates a new file with mode 0600 and the given contents; fails if it exists (never
/// overwrites). The file is fsynced, and so is its directory.
///
/// # Errors
/// [`HomeError::Io`] with `ErrorKind::AlreadyExists` when the file exists.
pub fn create_private_file(path: &Path, contents: &[u8]) -> Result<(), HomeError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(HomeError::io("cannot create", path))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(HomeError::io("cannot write", path))?;
    sync_parent(path)
}

/// Replaces (or creates) `path` atomically: a temp file in the same directory, written,
/// fsynced, given `mode`, renamed over the target, then the directory fsynced. A crash leaves
/// either the old or the new contents, never a mix.
///
/// # Errors
/// On any filesystem failure; the target is then untouched.
pub fn atomic_write(path: &Path, contents: &[u8], mode: u32) -> Result<(), HomeError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = locked_temp(dir, 0o600)?;
    tmp.write_all(contents)
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(mode))
        })
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(HomeError::io("cannot write", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| HomeError::io("cannot replace", path)(e.error))?;
    sync_parent(path)
}

/// A file written in place of `target` without ever exposing a partial result: the bytes go to
/// a temporary file beside it (created with `mode`), and [`AtomicFile::commit`] fsyncs it and
/// renames it over (or, without `replace`, next to a missing) target, then fsyncs the directory.
/// Dropped without a commit, the temporary file is removed and the target is untouched.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    target: std::path::PathBuf,
}

impl AtomicFile {
    /// Starts writing `target` (its directory must exist).
    ///
    /// # Errors
    /// When the temporary file cannot be created.
    pub fn create(target: &Path, mode: u32) -> Result<Self, HomeError> {
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = locked_temp(dir, mode)?;
        Ok(Self {
            tmp,
            target: target.to_path_buf(),
        })
    }

    /// The file being written.
    #[must_use]
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Where the bytes are until the commit.
    #[must_use]
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Like [`AtomicFile::commit`], to another path in the same directory (for content-addressed
    /// names known only once the bytes are written).
    ///
    /// # Errors
    /// As [`AtomicFile::commit`].
    pub fn commit_to(mut self, target: &Path, replace: bool) -> Result<(), HomeError> {
        self.target = target.to_path_buf();
        self.commit(replace)
    }

    /// Makes the written bytes the target. Without `replace`, an existing target is an error
    /// (`ErrorKind::AlreadyExists`) and stays as it was.
    ///
    /// # Errors
    /// On any filesystem failure; the target is then untouched.
    pub fn commit(self, replace: bool) -> Result<(), HomeError> {
        let target = self.target;
        self.tmp
            .as_file()
            .sync_all()
            .map_err(HomeError::io("cannot write", self.tmp.path()))?;
        let persisted = if replace {
            self.tmp.persist(&target)
        } else {
            self.tmp.persist_noclobber(&target)
        };
        persisted.map_err(|e| HomeError::io("cannot create", &target)(e.error))?;
        sync_parent(&target)
    }
}

/// Prefix of the temporary files written beside their targets.
const TEMP_PREFIX: &str = ".rampart-tmp-";

/// A temporary file in `dir`, created with `mode` and held under an exclusive lock for as long
/// as it is open, after sweeping `dir` of the ones a killed writer left (see [`sweep_stale`]).
fn locked_temp(dir: &Path, mode: u32) -> Result<tempfile::NamedTempFile, HomeError> {
    use std::os::unix::fs::MetadataExt as _;
    sweep_stale(dir);
    // Another writer's sweep can take a file between its creation and its lock (it is then
    // unlocked, so it looks left behind). Once locked, the file is checked to be still at its
    // name; if it was taken, a new one is made.
    for _ in 0..8 {
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(fs::Permissions::from_mode(mode))
            .tempfile_in(dir)
            .map_err(HomeError::io("cannot create a temporary file in", dir))?;
        tmp.as_file()
            .lock()
            .map_err(HomeError::io("cannot lock", tmp.path()))?;
        let held = tmp
            .as_file()
            .metadata()
            .map_err(HomeError::io("cannot inspect", tmp.path()))?;
        let still_there = fs::symlink_metadata(tmp.path())
            .is_ok_and(|m| m.dev() == held.dev() && m.ino() == held.ino());
        if still_there {
            return Ok(tmp);
        }
    }
    Err(HomeError::io("cannot keep a temporary file in", dir)(
        std::io::Error::other("it was removed each time before it could be locked"),
    ))
}

/// Removes the temporary files a killed writer left in `dir`: regular files named
/// `.rampart-tmp-*`, owned by this user, that no live process holds locked. (A writer locks its
/// temporary file as soon as it exists and holds the lock until the rename, so a file nobody
/// can lock is in use, and a lockable one is a leftover; a kill releases the lock.) Returns how
/// many were removed. Best effort: what cannot be examined is left alone.
pub fn sweep_stale(dir: &Path) -> usize {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let me = nix::unistd::geteuid().as_raw();
    let mut removed = 0;
    for entry in entries.flatten().take(100_000) {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::options()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
            .open(&path)
        else {
            continue;
        };
        let Ok(meta) = file.metadata() else { continue };
        if !meta.is_file() || meta.uid() != me || file.try_lock().is_err() {
            continue;
        }
        // Still the same file at that name (not replaced since it was opened)?
        let same = fs::symlink_metadata(&path)
            .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
        if same && fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn sync_parent(path: &Path) -> Result<(), HomeError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(HomeError::io("cannot sync directory", dir))
}

/// Reads a private key file after checking, on the opened file, that it is a regular file,
/// owned by this user or root, and not accessible by group or others (like ssh).
///
/// # Errors
/// [`HomeError::LoosePermissions`], [`HomeError::ForeignOwner`], [`HomeError::NotRegularFile`],
/// or I/O errors.
pub fn read_private_file(path: &Path) -> Result<Zeroizing<String>, HomeError> {
    let (file, meta) = open_regular(path)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(HomeError::LoosePermissions {
            path: path.into(),
            mode,
        });
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(HomeError::ForeignOwner {
            path: path.into(),
            owner: meta.uid(),
        });
    }
    read_bounded(file, path).map(Zeroizing::new)
}

/// Reads a small public file (policy, public key), at most [`MAX_SMALL_FILE_BYTES`].
///
/// # Errors
/// On I/O failure, a non-UTF-8 file or one over the size limit.
pub fn read_small_file(path: &Path) -> Result<String, HomeError> {
    let (file, _) = open_regular(path)?;
    read_bounded(file, path)
}

/// Reads a whole file of at most `max` bytes (a signature bundle, an attestation): opened
/// without blocking and only if it is a regular file, so a FIFO or device planted in its
/// place is refused instead of waited on; a larger file is refused, never truncated.
///
/// # Errors
/// [`HomeError::NotRegularFile`], [`HomeError::TooLarge`], I/O errors.
pub fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, HomeError> {
    let (file, _) = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(HomeError::io("cannot read", path))?;
    if bytes.len() as u64 > max {
        return Err(HomeError::TooLarge {
            path: path.into(),
            max,
        });
    }
    Ok(bytes)
}

/// Opens a file to stream it (a base model, a trainer's code): without blocking, so a FIFO or
/// device planted in its place is refused instead of waited on, and only if it is a regular
/// file.
///
/// # Errors
/// [`HomeError::NotRegularFile`], I/O errors.
pub fn open_regular_file(path: &Path) -> Result<File, HomeError> {
    open_regular(path).map(|(f, _)| f)
}

/// Opens `path` for reading without blocking (a FIFO would otherwise wait for a writer
/// forever) and only if the descriptor is a regular file.
fn open_regular(path: &Path) -> Result<(File, fs::Metadata), HomeError> {
    let file = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(HomeError::io("cannot open", path))?;
    let meta = file
        .metadata()
        .map_err(HomeError::io("cannot stat", path))?;
    if !meta.is_file() {
        return Err(HomeError::NotRegularFile { path: path.into() });
    }
    Ok((file, meta))
}

fn read_bounded(file: File, path: &Path) -> Result<String, HomeError> {
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_SMALL_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(HomeError::io("cannot read", path))?;
    if bytes.len() as u64 > MAX_SMALL_FILE_BYTES {
        return Err(HomeError::Io {
            action: "refusing to read (larger than 1 MiB)",
            path: path.into(),
            source: std::io::Error::from(std::io::ErrorKind::FileTooLarge),
        });
    }
    String::from_utf8(std::mem::take(&mut *bytes)).map_err(|e| {
        // Zeroize the rejected bytes too.
        drop(Zeroizing::new(e.into_bytes()));
        HomeError::Io {
            action: "refusing to read (not UTF-8 text)",
            path: path.into(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temps(dir: &Path) -> usize {
        fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(TEMP_PREFIX)
            })
            .count()
    }

    /// A leftover (unlocked) temporary file is swept; one a live writer holds is not; other
    /// names are never touched. Writers racing in one directory (each sweeping the others'
    /// files between their creation and their lock) all succeed and leave nothing behind.
    #[test]
    fn leftovers_are_swept_and_racing_writers_survive_each_others_sweeps() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".rampart-tmp-left"), b"killed").unwrap();
        fs::write(dir.path().join("data.csv"), b"x").unwrap();
        let held = AtomicFile::create(&dir.path().join("out"), 0o600).unwrap();
        assert_eq!(
            temps(dir.path()),
            1,
            "the leftover was swept, the held file kept"
        );
        assert_eq!(sweep_stale(dir.path()), 0);
        drop(held);
        assert_eq!(temps(dir.path()), 0);
        assert!(dir.path().join("data.csv").exists());

        std::thread::scope(|scope| {
            for t in 0..6 {
                let d = dir.path();
                scope.spawn(move || {
                    for i in 0..40 {
                        atomic_write(&d.join(format!("f{t}-{i}")), b"content", 0o644).unwrap();
                    }
                });
            }
        });
        assert_eq!(temps(dir.path()), 0);
        assert_eq!(fs::read(dir.path().join("f5-39")).unwrap(), b"content");
    }

    #[test]
    fn private_file_is_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        create_private_file(&path, b"secret").unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = create_private_file(&path, b"other").unwrap_err();
        assert!(
            matches!(again, HomeError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
        );
        assert_eq!(&*read_private_file(&path).unwrap(), "secret");
    }

    /// A FIFO given as a key, certificate, policy or trusted-root file is refused at once:
    /// a plain open would wait for a writer forever.
    #[test]
    fn fifos_are_refused_without_hanging() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("root.json");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            read_small_file(&fifo),
            Err(HomeError::NotRegularFile { .. })
        ));
        assert!(matches!(
            read_private_file(&fifo),
            Err(HomeError::NotRegularFile { .. })
        ));
        assert!(matches!(
            read_small_file(dir.path()),
            Err(HomeError::NotRegularFile { .. })
        ));
    }

    #[test]
    fn loose_permissions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        create_private_file(&path, b"secret").unwrap();
        for mode in [0o640, 0o604, 0o644, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = read_private_file(&path).unwrap_err();
            assert!(
                matches!(err, HomeError::LoosePermissions { mode: m, .. } if m == mode),
                "{mode:o}"
            );
            assert!(err.to_string().contains("chmod 600"));
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_private_file(&path).is_ok());
    }

    #[test]
    fn directories_are_not_key_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(matches!(
            read_private_file(dir.path()),
            Err(HomeError::NotRegularFile { .. })
        ));
    }

    #[test]
    fn atomic_write_replaces_whole_file_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        atomic_write(&path, b"one", 0o644).unwrap();
        atomic_write(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // No temporary files left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
