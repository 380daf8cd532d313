//! GPUs, opt-in: which device nodes a run that asks for the GPU gets.
//!
//! Without `--gpu` no GPU device exists inside the sandbox (its `/dev` is built from nothing).
//! With it, the NVIDIA device nodes found under `/dev` are bound into the sandbox's `/dev`
//! and allowed by Landlock (including their ioctls, which seccomp does not filter). The
//! driver's user-space libraries live under the system library paths, which are readable
//! already.

use std::path::{Path, PathBuf};

/// The NVIDIA device nodes under `dev` (normally `/dev`): `nvidia0…`, `nvidiactl`,
/// `nvidia-uvm`, `nvidia-uvm-tools`, `nvidia-modeset`, and the `nvidia-caps` directory's
/// nodes. Character devices only.
#[must_use]
pub fn nvidia_devices(dev: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::FileTypeExt as _;
    let mut found = Vec::new();
    let mut dirs = vec![dev.to_path_buf()];
    if dev.join("nvidia-caps").is_dir() {
        dirs.push(dev.join("nvidia-caps"));
    }
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let is_nvidia = name.to_str().is_some_and(|n| n.starts_with("nvidia"));
            if is_nvidia && e.file_type().is_ok_and(|t| t.is_char_device()) {
                found.push(e.path());
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    #[test]
    fn only_nvidia_character_devices_are_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nvidia0"), "a plain file").unwrap();
        std::fs::write(dir.path().join("null"), "").unwrap();
        assert!(super::nvidia_devices(dir.path()).is_empty());
    }
}
