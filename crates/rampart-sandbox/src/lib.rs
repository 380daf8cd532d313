//! Runs a child process with no network, no secrets, and access only to what it was given.
//!
//! [`Sandbox::run`] starts the helper binary (any binary whose `main` first calls
//! [`helper_main`]; rampart's own) as stage 1, which builds the namespaces and starts stage 2,
//! which restricts itself and then starts the program. See [`child`] for the steps and
//! [`filter`] for the seccomp rules. The layers, each enough on its own to stop the escape it
//! names:
//!
//! | escape | stopped by |
//! |---|---|
//! | any network connection | empty network namespace (loopback down); seccomp kills on `AF_INET`/`AF_INET6`/`AF_PACKET` sockets and io_uring; Landlock denies TCP bind and connect |
//! | reading keys, other datasets, `/root` | Landlock (read only the listed paths, the system paths and `/proc` of the new PID namespace); the key directory hidden behind an empty tmpfs |
//! | writing outside the output | Landlock (write only the listed paths) |
//! | signalling or tracing host processes | PID namespace; Landlock signal scope; seccomp kills on `ptrace`, `process_vm_*` |
//! | privilege from root inside the user namespace | empty capability bounding set; `no_new_privs` |
//! | kernel attack surface | seccomp kills on mount, namespaces, bpf, perf, keyrings, kexec, modules, userfaultfd, … |
//! | fork bombs, memory, disk, descriptors, CPU | `RLIMIT_NPROC` (and a pids cgroup when the caller is root, whom the kernel does not count), `RLIMIT_AS`, `RLIMIT_FSIZE`, `RLIMIT_NOFILE`, `RLIMIT_CPU` |
//! | running forever | wall-clock timeout: PID 1 of the namespace is killed, which kills the whole tree |
//! | secrets in the environment | [`scrub_env`]: an allowlist; `RAMPART_*` and secret-looking names never pass |

pub mod cgroup;
pub mod child;
pub mod filter;
pub mod spec;

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use spec::{Limits, Spec};

/// Runs a helper stage when this process was started as one. Call it first thing in `main`:
/// `if let Some(code) = rampart_sandbox::helper_main() { std::process::exit(code) }`.
#[must_use]
pub fn helper_main() -> Option<i32> {
    let arg = std::env::args_os().nth(1)?;
    if arg == child::STAGE1 {
        Some(child::stage1())
    } else if arg == child::STAGE2 {
        Some(child::stage2())
    } else {
        None
    }
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A path in the spec does not exist.
    #[error("{what} {path} does not exist")]
    Missing {
        /// Which kind of path.
        what: &'static str,
        /// The path.
        path: PathBuf,
    },
    /// The kernel or the machine lacks a protection and the run is strict.
    #[error("this machine cannot enforce {0}")]
    Unsupported(String),
    /// An I/O error starting or watching the helper.
    #[error("sandbox helper: {0}")]
    Io(#[from] std::io::Error),
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The program exited with this code.
    Exited(i32),
    /// The program was killed by this signal.
    Signaled {
        /// The signal number.
        signal: i32,
        /// Its name.
        name: String,
    },
    /// The wall-clock limit was reached; the whole tree was killed.
    TimedOut,
    /// The sandbox could not be set up; the program never ran.
    SetupFailed {
        /// The step (`namespaces`, `landlock`, `seccomp`, `exec`, …).
        step: String,
        /// What went wrong.
        message: String,
    },
}

/// What happened in one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Wall-clock time from spawn to the end.
    pub elapsed: Duration,
    /// Protections that were not applied (only in a non-strict run): (step, reason).
    pub missing: Vec<(String, String)>,
    /// Landlock's enforcement status.
    pub landlock: Option<String>,
    /// Forks refused by the pids cgroup (when one was used).
    pub process_limit_hits: u64,
    /// The limits in force.
    pub limits: Limits,
}

impl Report {
    /// The program exited 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.outcome == Outcome::Exited(0)
    }

    /// One sentence on how the run ended, naming the sandbox rule when one was hit.
    #[must_use]
    pub fn explain(&self) -> String {
        let l = &self.limits;
        let mut text = match &self.outcome {
            Outcome::Exited(0) => "the program exited successfully".to_owned(),
            Outcome::Exited(c) => format!("the program exited with status {c}"),
            Outcome::TimedOut => format!(
                "the program ran past the wall-clock limit of {} s; the sandbox killed its whole process tree",
                l.wall_ms.div_ceil(1000)
            ),
            Outcome::Signaled { signal, name } => match *signal {
                libc::SIGSYS => format!(
                    "the program was killed ({name}) for a system call the sandbox forbids: network sockets, ptrace, mount, namespaces, bpf, keyrings, kexec, modules (seccomp)"
                ),
                libc::SIGXCPU => format!(
                    "the program was killed ({name}) at the CPU-time limit of {} s",
                    l.cpu_seconds
                ),
                libc::SIGXFSZ => format!(
                    "the program was killed ({name}) writing past the file-size limit of {} bytes",
                    l.file_size_bytes
                ),
                _ => format!("the program was killed by {name}"),
            },
            Outcome::SetupFailed { step, message } => {
                format!("the sandbox could not be set up ({step}): {message}")
            }
        };
        if self.process_limit_hits > 0 {
            text.push_str(&format!(
                "; the process limit of {} refused {} fork(s)",
                l.processes, self.process_limit_hits
            ));
        }
        text
    }
}

/// Environment variables that pass by default.
pub const DEFAULT_ENV: &[&str] = &[
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_NUMERIC",
    "TZ",
    "TERM",
    "PYTHONHASHSEED",
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
];

/// Whether a variable name looks like it carries a secret.
#[must_use]
pub fn secret_looking(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("RAMPART_")
        || [
            "KEY",
            "TOKEN",
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "CREDENTIAL",
            "AUTH",
            "COOKIE",
            "SESSION",
        ]
        .iter()
        .any(|w| upper.contains(w))
}

/// The environment a sandboxed program gets: the variables of `from` named in `allow` (and
/// [`DEFAULT_ENV`]), never a `RAMPART_*` or secret-looking one. Returns the environment and
/// the names that were asked for but refused.
pub fn scrub_env<I>(from: I, allow: &[String]) -> (Vec<(String, String)>, Vec<String>)
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for name in allow {
        if secret_looking(name) {
            refused.push(name.clone());
        }
    }
    for (k, v) in from {
        let (Some(name), Some(value)) = (k.to_str(), v.to_str()) else {
            continue;
        };
        let wanted = DEFAULT_ENV.contains(&name) || allow.iter().any(|a| a == name);
        if wanted && !secret_looking(name) {
            kept.push((name.to_owned(), value.to_owned()));
        }
    }
    kept.sort();
    (kept, refused)
}

/// System paths a program commonly needs to read: the library and binary trees and the
/// harmless parts of `/etc` (not `/etc` as a whole: `/etc/shadow` is readable by its owner,
/// and inside the sandbox the program runs as the caller).
#[must_use]
pub fn system_read_paths() -> Vec<PathBuf> {
    [
        "/usr",
        "/lib",
        "/lib64",
        "/lib32",
        "/bin",
        "/sbin",
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/localtime",
        "/etc/timezone",
        "/etc/nsswitch.conf",
        "/etc/passwd",
        "/etc/group",
        "/etc/hosts",
        "/etc/host.conf",
        "/etc/gai.conf",
        "/etc/resolv.conf",
        "/etc/ssl",
        "/etc/ca-certificates",
        "/etc/alternatives",
        "/etc/mime.types",
        "/etc/os-release",
        "/etc/locale.alias",
        "/etc/python3",
        "/etc/python3.11",
        "/etc/matplotlibrc",
    ]
    .iter()
    .map(PathBuf::from)
    .filter(|p| p.exists())
    .collect()
}

/// Finds `program` (a path, or a name looked up in `path_var`) and returns its absolute
/// path and the directories its installation needs: for `PREFIX/bin/tool` both the prefix as
/// named (a virtual environment) and the prefix of the file it resolves to (the base
/// interpreter), otherwise the program's directory.
#[must_use]
pub fn resolve_program(
    program: &Path,
    path_var: Option<&OsStr>,
) -> Option<(PathBuf, Vec<PathBuf>)> {
    let found = if program.components().count() > 1 || program.is_absolute() {
        std::path::absolute(program).ok()?
    } else {
        std::env::split_paths(path_var?)
            .map(|d| d.join(program))
            .find(|p| p.is_file())?
    };
    let real = found.canonicalize().ok()?;
    let mut dirs = Vec::new();
    for p in [&found, &real] {
        let Some(dir) = p.parent() else { continue };
        let prefix = if dir.file_name() == Some(OsStr::new("bin")) {
            dir.parent().unwrap_or(dir)
        } else {
            dir
        };
        if prefix != Path::new("/") && !dirs.iter().any(|d: &PathBuf| d == prefix) {
            dirs.push(prefix.to_path_buf());
        }
    }
    Some((found, dirs))
}

/// The sandbox runner.
#[derive(Debug, Clone)]
pub struct Sandbox {
    helper: PathBuf,
}

/// Largest status file read back.
const MAX_STATUS_BYTES: u64 = 64 << 10;

impl Sandbox {
    /// A runner whose helper is `helper` (a binary that calls [`helper_main`]).
    #[must_use]
    pub fn new(helper: impl Into<PathBuf>) -> Self {
        Self {
            helper: helper.into(),
        }
    }

    /// A runner whose helper is the running executable.
    ///
    /// # Errors
    /// When the executable's path cannot be read.
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Self::new(std::env::current_exe()?))
    }

    /// Runs `spec`, passing the program's output to `on_output` as it arrives.
    ///
    /// # Errors
    /// When a path in the spec is missing, when the run is strict and the machine cannot
    /// enforce the process limit, or when the helper cannot be started.
    pub fn run(
        &self,
        spec: &Spec,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Report, SandboxError> {
        if !spec.program.is_file() {
            return Err(SandboxError::Missing {
                what: "program",
                path: spec.program.clone(),
            });
        }
        for (what, paths) in [
            ("readable path", &spec.read),
            ("writable path", &spec.write),
        ] {
            if let Some(p) = paths.iter().find(|p| std::fs::symlink_metadata(p).is_err()) {
                return Err(SandboxError::Missing {
                    what,
                    path: p.clone(),
                });
            }
        }
        let mut missing = Vec::new();
        // The kernel does not apply RLIMIT_NPROC to root; a pids cgroup does instead.
        let cgroup = if nix::unistd::geteuid().is_root() {
            let cg = cgroup::PidsCgroup::create(spec.limits.processes);
            if cg.is_none() {
                let why = "the process limit (RLIMIT_NPROC does not apply to root, and no pids cgroup is writable)";
                if spec.strict {
                    return Err(SandboxError::Unsupported(why.into()));
                }
                missing.push(("process limit".to_owned(), why.to_owned()));
            }
            cg
        } else {
            None
        };
        let status_file = tempfile::Builder::new()
            .prefix(".rampart-sandbox-")
            .tempfile()?;
        let mut spec = spec.clone();
        spec.status_file = status_file.path().to_path_buf();
        let spec_json = serde_json::to_vec(&spec).map_err(std::io::Error::other)?;
        let started = Instant::now();
        let mut child = Command::new(&self.helper)
            .arg(child::STAGE1)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(cg) = &cgroup
            && let Err(e) = cg.add(child.id())
        {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SandboxError::Unsupported(format!(
                "the process limit (cannot join the pids cgroup: {e})"
            )));
        }
        // The helper reads its spec only after it is in the cgroup.
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(&spec_json)?;
        }
        let (tx, rx) = mpsc::channel::<(Stream, Vec<u8>)>();
        let mut readers = Vec::new();
        let pipes: [(Stream, Option<Box<dyn Read + Send>>); 2] = [
            (
                Stream::Stdout,
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                Stream::Stderr,
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ];
        for (stream, pipe) in pipes {
            let Some(mut pipe) = pipe else { continue };
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx
                                .send((stream, buf.get(..n).unwrap_or_default().to_vec()))
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                }
            }));
        }
        drop(tx);
        // Backstop: stage 1 enforces the limit; if it were stuck, killing it kills the tree
        // (stage 2 dies with its parent, and the namespace with stage 2).
        let deadline =
            started + Duration::from_millis(spec.limits.wall_ms) + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok((stream, chunk)) => on_output(stream, &chunk),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    break;
                }
            }
        }
        let _ = child.wait()?;
        for r in readers {
            let _ = r.join();
        }
        let elapsed = started.elapsed();
        let mut text = String::new();
        std::fs::File::open(status_file.path())?
            .take(MAX_STATUS_BYTES)
            .read_to_string(&mut text)?;
        let mut outcome = None;
        let mut landlock = None;
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
            if let Some(m) = s("missing") {
                missing.push((m, s("reason").unwrap_or_default()));
            } else if let Some(e) = s("error") {
                outcome.get_or_insert(Outcome::SetupFailed {
                    step: s("step").unwrap_or_default(),
                    message: e,
                });
            } else if v.get("timeout").is_some() {
                outcome = Some(Outcome::TimedOut);
            } else if let Some(code) = v.get("exit").and_then(serde_json::Value::as_i64) {
                outcome.get_or_insert(Outcome::Exited(i32::try_from(code).unwrap_or(-1)));
            } else if let Some(sig) = v.get("signal").and_then(serde_json::Value::as_i64) {
                outcome.get_or_insert(Outcome::Signaled {
                    signal: i32::try_from(sig).unwrap_or(-1),
                    name: s("name").unwrap_or_default(),
                });
            } else if v.get("started").is_some() {
                landlock = s("landlock");
            }
        }
        let outcome = outcome.unwrap_or_else(|| Outcome::SetupFailed {
            step: "helper".into(),
            message: "the sandbox helper ended without a report".into(),
        });
        Ok(Report {
            outcome,
            elapsed,
            missing,
            landlock,
            process_limit_hits: cgroup.as_ref().map_or(0, cgroup::PidsCgroup::limit_hits),
            limits: spec.limits.clone(),
        })
    }
}
