//! What to run and under which limits: the spec the parent hands to the helper stages.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Resource limits. Each is enforced by the kernel on every process of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Wall-clock time for the whole process tree, in milliseconds.
    pub wall_ms: u64,
    /// CPU time per process (`RLIMIT_CPU`), in seconds.
    pub cpu_seconds: u64,
    /// Address space per process (`RLIMIT_AS`), in bytes.
    pub memory_bytes: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`), in bytes.
    pub file_size_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Processes and threads in the sandbox (`RLIMIT_NPROC`, plus a pids cgroup where the
    /// kernel does not count the caller's processes, i.e. for root).
    pub processes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_ms: 3_600_000,
            cpu_seconds: 3_600,
            memory_bytes: 8 << 30,
            file_size_bytes: 8 << 30,
            open_files: 1024,
            processes: 256,
        }
    }
}

/// One sandboxed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// The program (an absolute path; see [`crate::resolve_program`]).
    pub program: PathBuf,
    /// Its arguments (not including the program).
    pub args: Vec<String>,
    /// The complete environment of the child (already scrubbed by [`crate::scrub_env`]).
    pub env: Vec<(String, String)>,
    /// Working directory (must be readable under the rules below).
    pub cwd: PathBuf,
    /// Readable (and executable) paths: files or directories, everything beneath them.
    pub read: Vec<PathBuf>,
    /// Read-write paths.
    pub write: Vec<PathBuf>,
    /// Directories hidden behind an empty read-only tmpfs inside the sandbox (e.g. the key
    /// directory), on top of Landlock denying them.
    pub hide: Vec<PathBuf>,
    /// Limits.
    pub limits: Limits,
    /// Refuse to run when any protection cannot be applied. `false` only for an explicit,
    /// audited `--allow-unsandboxed`.
    pub strict: bool,
    /// Steps to treat as unavailable, to test the refusal path (`namespaces`, `landlock`,
    /// `seccomp`, …). Honoured by debug builds only.
    #[serde(default)]
    pub simulate_missing: Vec<String>,
    /// Where the helper stages write their status lines (a file the parent created; the
    /// sandboxed program cannot reach it).
    pub status_file: PathBuf,
}

/// Largest spec the helper reads.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;
