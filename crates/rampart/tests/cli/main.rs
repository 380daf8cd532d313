//! End-to-end tests of the `rampart` binary: one test binary, one module per area.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod age;
mod audit;
mod conventions;
mod data;
mod guard;
mod home;
mod ingest;
mod interop;
mod ml;
mod model;
mod pii;
mod pipeline;
mod scan;
mod serve;
mod sign;
mod sigstore;
mod snapshots;
mod storage;
mod train;
mod trust;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A scratch working directory with its own home at `./.rampart`.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A freshly initialised one.
    pub fn init() -> Self {
        let s = Self::new();
        s.rampart(&["init"]).assert().success();
        s
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.path().join(".rampart")
    }

    /// `rampart ARGS` run in the scratch directory with a clean RAMPART_* environment.
    pub fn rampart(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("rampart").unwrap();
        cmd.current_dir(self.path()).args(args);
        for (key, _) in std::env::vars() {
            if key.starts_with("RAMPART_") || key == "NO_COLOR" {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// Runs and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.rampart(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["--format", "json"];
        full.extend_from_slice(args);
        let (code, out, err) = self.run(&full);
        assert_eq!(code, 0, "rampart {args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}
