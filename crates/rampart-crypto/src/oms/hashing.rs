//! The hashing engine: streaming SHA-256, parallel across files and across shards of one file
//! (rayon), with bounded memory — each worker holds one buffer, whatever the model's size.
//!
//! Files are opened with `O_NOFOLLOW | O_NONBLOCK` and checked to be regular *after* opening,
//! so a file swapped for a symlink or a FIFO between enumeration and hashing is refused rather
//! than followed or blocked on.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::OmsError;
use super::tree::ModelFile;
use crate::{Digest, Sha256Hasher};

/// Bytes read per call; one such buffer per worker thread.
pub const CHUNK_BYTES: usize = 1 << 20;
/// model_signing's default shard size (1 GB).
pub const DEFAULT_SHARD_SIZE: u64 = 1_000_000_000;

/// How a model is serialized into resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One SHA-256 per file (model_signing's default; verifiable by its CLI).
    Files,
    /// One SHA-256 per `shard_size` byte range of each file (parallel within a file).
    Shards {
        /// Bytes per shard.
        shard_size: u64,
    },
}

/// One manifest entry: a file (files method) or a byte range of one (shards method).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `path` (files) or `path:start:end` (shards).
    pub name: String,
    /// The file the resource belongs to.
    pub file: String,
    /// Byte range within the file (the whole file for the files method).
    pub start: u64,
    /// End of the range, exclusive.
    pub end: u64,
    /// SHA-256 of the bytes.
    pub digest: Digest,
}

/// A unit of hashing work.
#[derive(Debug, Clone)]
pub(crate) struct Task<'a> {
    pub file: &'a ModelFile,
    pub start: u64,
    pub end: u64,
    pub whole: bool,
}

/// The resources a set of files produces under `method`, before hashing (names and ranges).
/// Empty files yield a resource under the files method and none under shards, as
/// model_signing does.
pub(crate) fn plan(files: &[ModelFile], method: Method) -> Vec<Task<'_>> {
    let mut tasks = Vec::new();
    for file in files {
        match method {
            Method::Files => tasks.push(Task {
                file,
                start: 0,
                end: file.size,
                whole: true,
            }),
            Method::Shards { shard_size } => {
                let mut start = 0;
                while start < file.size {
                    let end = start.saturating_add(shard_size).min(file.size);
                    tasks.push(Task {
                        file,
                        start,
                        end,
                        whole: false,
                    });
                    start = end;
                }
            }
        }
    }
    tasks
}

impl Task<'_> {
    pub(crate) fn name(&self) -> String {
        if self.whole {
            self.file.name.clone()
        } else {
            format!("{}:{}:{}", self.file.name, self.start, self.end)
        }
    }
}

/// Hashes every task in parallel. `progress` receives byte counts as they are hashed; `stop`
/// lets a caller cancel. The result keeps the tasks' order.
pub(crate) fn run(
    tasks: &[Task<'_>],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<Resource>, OmsError> {
    let failed = AtomicBool::new(false);
    // Big tasks first, so one large file does not start last and run alone.
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tasks.get(i).map_or(0, |t| t.end - t.start)));
    let mut results: Vec<(usize, Resource)> = order
        .par_iter()
        .map_init(
            || vec![0u8; CHUNK_BYTES],
            |buf, &i| {
                if failed.load(Ordering::Relaxed) {
                    return Err(OmsError::Cancelled);
                }
                let task = tasks.get(i).ok_or(OmsError::Cancelled)?;
                let digest = hash_task(task, buf, progress)
                    .inspect_err(|_| failed.store(true, Ordering::Relaxed))?;
                Ok((
                    i,
                    Resource {
                        name: task.name(),
                        file: task.file.name.clone(),
                        start: task.start,
                        end: task.end,
                        digest,
                    },
                ))
            },
        )
        .collect::<Result<_, _>>()?;
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

fn open_regular(path: &Path, follow: bool) -> Result<File, OmsError> {
    let mut flags = libc::O_NONBLOCK;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(OmsError::io("cannot open", path))?;
    let meta = file.metadata().map_err(OmsError::io("cannot stat", path))?;
    if !meta.is_file() {
        return Err(OmsError::NotAFile { path: path.into() });
    }
    Ok(file)
}

fn hash_task(
    task: &Task<'_>,
    buf: &mut [u8],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Digest, OmsError> {
    let path = &task.file.path;
    // A symlink was already vetted by enumeration (and only exists there if allowed), so
    // following is right for links and refusing is right for everything else.
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let mut file = open_regular(path, is_link)?;
    let mut hasher = Sha256Hasher::new();
    if task.whole {
        loop {
            let n = file.read(buf).map_err(OmsError::io("cannot read", path))?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
            progress(n as u64);
        }
    } else {
        let mut offset = task.start;
        while offset < task.end {
            let want = usize::try_from(task.end - offset)
                .unwrap_or(usize::MAX)
                .min(buf.len());
            let chunk = buf.get_mut(..want).unwrap_or_default();
            let n = file
                .read_at(chunk, offset)
                .map_err(OmsError::io("cannot read", path))?;
            if n == 0 {
                return Err(OmsError::Changed { path: path.clone() });
            }
            hasher.update(chunk.get(..n).unwrap_or_default());
            offset += n as u64;
            progress(n as u64);
        }
    }
    Ok(hasher.finish())
}

/// The OMS root digest: SHA-256 over the raw resource digests in listed order.
#[must_use]
pub fn root_digest<'a>(digests: impl IntoIterator<Item = &'a Digest>) -> Digest {
    let mut hasher = Sha256Hasher::new();
    for d in digests {
        hasher.update(d.as_bytes());
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_files_and_skip_empty_ones() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &data).unwrap();
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        let files = vec![
            ModelFile {
                name: "big".into(),
                path: dir.path().join("big"),
                size: 2500,
            },
            ModelFile {
                name: "empty".into(),
                path: dir.path().join("empty"),
                size: 0,
            },
        ];
        let tasks = plan(&files, Method::Shards { shard_size: 1000 });
        let names: Vec<_> = tasks.iter().map(Task::name).collect();
        assert_eq!(names, ["big:0:1000", "big:1000:2000", "big:2000:2500"]);
        let total = std::sync::atomic::AtomicU64::new(0);
        let out = run(&tasks, &|n| {
            total.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(total.into_inner(), 2500);
        assert_eq!(out[1].digest, crate::sha256(&data[1000..2000]));
        let whole = run(&plan(&files, Method::Files), &|_| {}).unwrap();
        assert_eq!(whole[0].digest, crate::sha256(&data));
        assert_eq!(whole[1].digest, crate::sha256(b""));
    }
}
