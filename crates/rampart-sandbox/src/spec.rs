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
    /// Memory, in bytes: the address space of each process (`RLIMIT_AS`) and, where a memory
    /// cgroup is writable, the whole tree's memory (anonymous, page cache and the scratch
    /// tmpfs together).
    pub memory_bytes: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`), in bytes.
    pub file_size_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Processes and threads in the sandbox (`RLIMIT_NPROC`, counted for the unprivileged
    /// uid the program runs as, plus a pids cgroup where one is writable).
    pub processes: u64,
    /// Size of the scratch tmpfs (`HOME`, `TMPDIR`) and of `/dev/shm`, in bytes.
    #[serde(default = "default_scratch")]
    pub scratch_bytes: u64,
    /// Total bytes the program may leave in its output, checked before anything is hashed.
    #[serde(default = "default_output")]
    pub output_bytes: u64,
}

const fn default_scratch() -> u64 {
    1 << 30
}

const fn default_output() -> u64 {
    4 << 30
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
            scratch_bytes: default_scratch(),
            output_bytes: default_output(),
        }
    }
}

/// One sandboxed run.
///
/// The program sees a root filesystem built from nothing: the paths in `read` (read-only) and
/// `write` (read-write) at their own paths, a size-capped tmpfs at `scratch`, a fresh `/proc`,
/// a minimal `/dev`, and nothing else of the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// The program (an absolute path; see [`crate::resolve_program`]).
    pub program: PathBuf,
    /// Its arguments (not including the program).
    pub args: Vec<String>,
    /// The complete environment of the child (already scrubbed by [`crate::scrub_env`]).
    pub env: Vec<(String, String)>,
    /// Working directory (created empty when nothing below provides it).
    pub cwd: PathBuf,
    /// Readable (and executable) paths: files or directories, everything beneath them on the
    /// same mount. Socket files and FIFOs inside them are refused before the run.
    pub read: Vec<PathBuf>,
    /// Read-write paths (the output directory).
    pub write: Vec<PathBuf>,
    /// A private, size-capped tmpfs mounted at this path (`HOME`, `TMPDIR`); nothing of the
    /// host's directory of that name is visible.
    #[serde(default)]
    pub scratch: Option<PathBuf>,
    /// Extra device nodes exposed in `/dev` (GPU devices; see [`crate::gpu`]).
    #[serde(default)]
    pub devices: Vec<PathBuf>,
    /// Directories hidden behind an empty read-only tmpfs inside the sandbox (e.g. the key
    /// directory), should a readable path contain them.
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
}

/// Largest spec the helper reads.
pub const MAX_SPEC_BYTES: u64 = 1 << 20;
