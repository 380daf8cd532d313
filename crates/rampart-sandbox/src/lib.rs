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
//! | any network connection | empty network namespace (loopback down); seccomp kills on every socket family but `AF_UNIX` (so no `AF_INET*`, `AF_PACKET`, `AF_NETLINK`, `AF_VSOCK`) and on io_uring; Landlock denies TCP bind and connect |
//! | a host service on a Unix socket (Docker, ssh-agent, D-Bus, a database) | a root filesystem built from nothing ([`view`], [`child`]): only the planned paths are there; sockets and FIFOs inside readable paths are refused before the run; abstract sockets stay in the empty network namespace and Landlock's abstract-socket scope |
//! | reading keys, other datasets, `/root`, `/etc/shadow`, the host's `/proc` | not in the view; Landlock (read only the listed paths); a fresh `/proc` of the new PID namespace; no `/sys` |
//! | writing or changing host files (content, mode, times, xattrs) | the view is read-only but for the output and the scratch tmpfs; when rampart runs as root the program runs as an unprivileged uid that owns nothing ([`unprivileged_id`]) |
//! | inherited descriptors | stage 1 closes every descriptor above 2 first; stdin is `/dev/null` |
//! | forging the outcome | success is stage 1's exit status as the kernel reports it; status lines travel on sockets the program never holds; `pidfd_open`, `pidfd_getfd`, `process_madvise` are denied and stage 2 is not dumpable |
//! | signalling or tracing host processes | PID namespace; Landlock signal scope; seccomp kills on `ptrace`, `process_vm_*`, pidfd calls |
//! | privilege from root inside the user namespace | empty capability bounding set; `no_new_privs`; every mount `nosuid`, `nodev` |
//! | kernel attack surface | seccomp kills on mount, namespaces, bpf, perf, keyrings, kexec, modules, userfaultfd, … |
//! | fork bombs, memory, disk, descriptors, CPU | `RLIMIT_NPROC` (the program's uid is never root, and a pids cgroup where writable), a memory cgroup for the whole tree where writable (`RLIMIT_AS` per process always), a size-capped scratch tmpfs, `RLIMIT_FSIZE`, `RLIMIT_NOFILE`, `RLIMIT_CPU` |
//! | running forever | wall-clock timeout: PID 1 of the namespace is killed, which kills the whole tree |
//! | secrets in the environment | [`scrub_env`]: an allowlist; `RAMPART_*` and secret-looking names or values never pass |

pub mod cgroup;
pub mod child;
pub mod confine;
pub mod filter;
pub mod gpu;
pub mod interp;
pub mod spec;
pub mod view;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use spec::{Limits, Spec};
pub use view::ViewError;

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

/// `main` of a test binary that runs the real sandbox with itself as the helper (so it has no
/// libtest harness): the helper stage when started as one, else each case whose name contains
/// one of the non-flag arguments (all without any), a panic counted as a failure. Exits 1
/// when a case failed.
pub fn test_main(cases: &[(&str, fn())]) {
    if let Some(code) = helper_main() {
        std::process::exit(code);
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut failed = 0;
    for (name, case) in cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        if std::panic::catch_unwind(*case).is_ok() {
            println!("test {name} ... ok");
        } else {
            println!("test {name} ... FAILED");
            failed += 1;
        }
    }
    if failed > 0 {
        println!("{failed} failed");
        std::process::exit(1);
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
    /// The program's view cannot be built as asked (a socket in a readable path, …).
    #[error(transparent)]
    View(#[from] ViewError),
    /// A root run's program, which runs as an unprivileged uid, could not read this path.
    #[error(
        "{path} (mode {mode:04o}) is not readable by the unprivileged user a sandboxed program runs as when rampart runs as root; make it readable (chmod o+rX) or copy it somewhere readable"
    )]
    NotReadable {
        /// The path.
        path: PathBuf,
        /// Its mode.
        mode: u32,
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
    /// The sandbox stopped the whole tree at a limit it watches itself (memory without a
    /// cgroup, output bytes, output files).
    Stopped {
        /// Which limit (`memory`, `output`).
        limit: String,
        /// What was measured.
        message: String,
    },
    /// The sandbox could not be set up; the program never ran.
    SetupFailed {
        /// The step (`namespaces`, `landlock`, `seccomp`, `exec`, …).
        step: String,
        /// What went wrong.
        message: String,
    },
}

/// What the memory limit applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryScope {
    /// The whole process tree, by a memory cgroup (scratch tmpfs included).
    Tree,
    /// The whole process tree, by stage 1's accounting (resident memory of every process in
    /// the PID namespace plus the scratch tmpfs, every 50 ms; the tree is killed past the
    /// limit), because no memory cgroup was writable. `RLIMIT_AS` still caps each process, so
    /// the overshoot is what the tree can allocate in one interval.
    Accounted,
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
    /// Processes killed at the memory limit by the memory cgroup (when one was used).
    pub memory_limit_hits: u64,
    /// What the memory limit applied to.
    pub memory_scope: MemoryScope,
    /// The unprivileged uid (and gid) the program ran as, when rampart ran as root.
    pub run_as: Option<u32>,
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
            Outcome::Exited(c @ (126 | 127)) => format!(
                "the program exited with status {c}: a program or shared library it tried to run was not found or not executable inside the sandbox (the log names it); add its directory with --read DIR, or name the interpreter with --python PATH"
            ),
            Outcome::Exited(c) => format!("the program exited with status {c}"),
            Outcome::TimedOut => format!(
                "the program ran past the wall-clock limit of {} s; the sandbox killed its whole process tree",
                l.wall_ms.div_ceil(1000)
            ),
            Outcome::Stopped { limit, message } => {
                format!("the sandbox stopped the program at its {limit} limit: {message}")
            }
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
                libc::SIGKILL if self.memory_limit_hits > 0 => format!(
                    "the program was killed ({name}) at the memory limit of {} bytes for the whole sandbox",
                    l.memory_bytes
                ),
                _ => format!("the program was killed by {name}"),
            },
            Outcome::SetupFailed { step, message } => {
                format!("the sandbox could not be set up ({step}): {message}")
            }
        };
        if self.memory_limit_hits > 0 && !text.contains("memory limit") {
            text.push_str(&format!(
                "; the memory limit of {} bytes killed {} process(es)",
                l.memory_bytes, self.memory_limit_hits
            ));
        }
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

/// Whether a variable name looks like it carries a secret: `RAMPART_*`, or a name with a
/// word such as KEY, TOKEN, SECRET, PASS (PASSWORD, PASSWD, DB_PASS), CREDENTIAL, AUTH,
/// COOKIE, SESSION, PRIVATE, DSN, or one ending in PWD (but `PWD` and `OLDPWD`).
#[must_use]
pub fn secret_looking(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("RAMPART_")
        || [
            "KEY",
            "TOKEN",
            "SECRET",
            "PASS",
            "CREDENTIAL",
            "CREDS",
            "AUTH",
            "COOKIE",
            "SESSION",
            "PRIVATE",
            "DSN",
            "CONNECTION_STRING",
        ]
        .iter()
        .any(|w| upper.contains(w))
        || (upper.ends_with("PWD") && upper != "PWD" && upper != "OLDPWD")
}

/// Whether a value carries a credential: a URL with a password (`scheme://user:pass@host`).
#[must_use]
pub fn secret_value(value: &str) -> bool {
    value.split_whitespace().any(|word| {
        let Some((_, rest)) = word.split_once("://") else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

/// The environment a sandboxed program gets: only the variables of `from` named in `allow`
/// (and [`DEFAULT_ENV`]), never a `RAMPART_*` or secret-looking name, nor a value holding a
/// credential ([`secret_value`]). Returns the environment and the names that were asked for
/// but refused.
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
        if !wanted {
            continue;
        }
        if secret_value(value) {
            if !refused.iter().any(|r| r == name) {
                refused.push(name.to_owned());
            }
        } else if !secret_looking(name) {
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

pub use interp::{ResolveError, Resolved, resolve_program};

/// The sandbox runner.
#[derive(Debug, Clone)]
pub struct Sandbox {
    helper: PathBuf,
}

/// Largest status stream read back.
pub(crate) const MAX_STATUS_BYTES: u64 = 64 << 10;

/// First of the uids (and gids) a program runs as when rampart runs as root: one per run,
/// `UNPRIVILEGED_BASE + pid % 65536`, far above any account or container range, so it owns
/// nothing on the host and `RLIMIT_NPROC` counts only this run's processes.
pub const UNPRIVILEGED_BASE: u32 = 0x7FF0_0000;

/// Most entries whose ownership is handed back after a root run.
const MAX_CHOWN_ENTRIES: usize = 100_000;

/// The uid a root run's program gets.
#[must_use]
pub fn unprivileged_id() -> u32 {
    UNPRIVILEGED_BASE + std::process::id() % 65_536
}

/// Why a spawn inside the sandbox failed, naming what was not visible and how to add it.
pub(crate) fn explain_spawn(program: &Path, e: &std::io::Error) -> String {
    let shown = program.display();
    let interpreter = std::fs::File::open(program).ok().and_then(|f| {
        let mut head = Vec::new();
        f.take(256).read_to_end(&mut head).ok()?;
        let line = head.strip_prefix(b"#!")?;
        let line = line.split(|b| *b == b'\n').next()?;
        let text = String::from_utf8_lossy(line);
        text.split_whitespace().next().map(str::to_owned)
    });
    match (e.raw_os_error(), interpreter) {
        (Some(libc::ENOENT), Some(i)) if !Path::new(&i).exists() => format!(
            "cannot start {shown}: its interpreter {i} (named on its first line) is not visible in the sandbox; add its directory with --read DIR, or run the interpreter yourself (--exec -- python3 {shown}, --python PATH)"
        ),
        (Some(libc::ENOENT), _) => format!(
            "cannot start {shown}: it, or the interpreter or a shared library it needs, is not visible in the sandbox; add its directory with --read DIR"
        ),
        (Some(libc::EACCES), _) => format!(
            "cannot start {shown}: permission denied inside the sandbox; the program and every directory above it must be readable and executable by the sandbox's user (when rampart runs as root, an unprivileged uid: chmod o+rx)"
        ),
        _ => format!("cannot start {shown}: {e}"),
    }
}

/// Refuses a readable path the unprivileged uid of a root run could not read: it would fail
/// inside with a bare permission error.
fn check_world_readable(spec: &Spec) -> Result<(), SandboxError> {
    use std::os::unix::fs::PermissionsExt as _;
    for p in spec.read.iter().chain(std::iter::once(&spec.program)) {
        let Ok(meta) = std::fs::metadata(p) else {
            continue;
        };
        let mode = meta.permissions().mode();
        let need = if meta.is_dir() || p == &spec.program {
            0o005
        } else {
            0o004
        };
        if mode & need != need {
            return Err(SandboxError::NotReadable {
                path: p.clone(),
                mode: mode & 0o7777,
            });
        }
    }
    Ok(())
}

/// Hands every entry under `dir` (not following links) to `uid`/`gid`.
fn chown_tree(dir: &Path, uid: u32, gid: u32) {
    use nix::fcntl::AtFlags;
    use nix::unistd::{Gid, Uid, fchownat};
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(p) = stack.pop() {
        seen += 1;
        if seen > MAX_CHOWN_ENTRIES {
            return;
        }
        let _ = fchownat(
            None,
            &p,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
            && let Ok(entries) = std::fs::read_dir(&p)
        {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
}

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
    /// When a path in the spec is missing or holds a socket, when a root run's program could
    /// not read a path it was given, or when the helper cannot be started.
    #[allow(clippy::too_many_lines)]
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
        let view = view::plan(spec)?;
        let caller_uid = nix::unistd::getuid().as_raw();
        let caller_gid = nix::unistd::getgid().as_raw();
        let root = nix::unistd::geteuid().is_root();
        let run_as = root.then(unprivileged_id);
        if let Some(id) = run_as {
            check_world_readable(spec)?;
            for w in &spec.write {
                nix::unistd::chown(
                    w,
                    Some(nix::unistd::Uid::from_raw(id)),
                    Some(nix::unistd::Gid::from_raw(id)),
                )
                .map_err(|e| SandboxError::Io(std::io::Error::from(e)))?;
            }
        }
        let missing = Vec::new();
        let pids = cgroup::Cgroup::create(cgroup::Controller::Pids, spec.limits.processes);
        let memory = cgroup::Cgroup::create(cgroup::Controller::Memory, spec.limits.memory_bytes);
        let launch = view::Launch {
            spec: spec.clone(),
            view,
            run_as,
            memory_cgroup: memory.is_some(),
        };
        let launch_json = serde_json::to_vec(&launch).map_err(std::io::Error::other)?;
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let started = Instant::now();
        let mut child = Command::new(&self.helper)
            .arg(child::STAGE1)
            .env_clear()
            .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        for cg in [&pids, &memory].into_iter().flatten() {
            if let Err(e) = cg.add(child.id()) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SandboxError::Unsupported(format!(
                    "the limits (cannot join {}: {e})",
                    cg.dir().display()
                )));
            }
        }
        // The helper reads its launch only after it is in the cgroups.
        ours.write_all(&launch_json)?;
        ours.shutdown(std::net::Shutdown::Write)?;
        let status_reader = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = (&mut ours).take(MAX_STATUS_BYTES).read_to_end(&mut text);
            // Drain the rest so the helper never blocks on a full socket.
            let _ = std::io::copy(&mut ours, &mut std::io::sink());
            String::from_utf8_lossy(&text).into_owned()
        });
        // Bounded: a program writing faster than the caller consumes waits on its pipe
        // instead of growing this process's memory.
        let (tx, rx) = mpsc::sync_channel::<(Stream, Vec<u8>)>(64);
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
        let kernel = child.wait()?;
        for r in readers {
            let _ = r.join();
        }
        let elapsed = started.elapsed();
        let text = status_reader.join().unwrap_or_default();
        if run_as.is_some() {
            // The program's uid owns nothing once the run is over.
            for w in &spec.write {
                chown_tree(w, caller_uid, caller_gid);
            }
        }
        let report = parse_status(&text, missing);
        Ok(Report {
            outcome: reconcile(report.outcome, kernel),
            elapsed,
            missing: report.missing,
            landlock: report.landlock,
            process_limit_hits: pids.as_ref().map_or(0, cgroup::Cgroup::limit_hits),
            memory_limit_hits: memory.as_ref().map_or(0, cgroup::Cgroup::limit_hits),
            memory_scope: if memory.is_some() {
                MemoryScope::Tree
            } else {
                MemoryScope::Accounted
            },
            run_as,
            limits: spec.limits.clone(),
        })
    }
}

struct Parsed {
    outcome: Option<Outcome>,
    missing: Vec<(String, String)>,
    landlock: Option<String>,
}

fn parse_status(text: &str, mut missing: Vec<(String, String)>) -> Parsed {
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
        } else if let Some(limit) = s("limit") {
            outcome = Some(Outcome::Stopped {
                limit,
                message: s("message").unwrap_or_default(),
            });
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
    Parsed {
        outcome,
        missing,
        landlock,
    }
}

/// The outcome, checked against what the kernel says of stage 1: success is never taken from
/// a status line alone.
fn reconcile(said: Option<Outcome>, kernel: std::process::ExitStatus) -> Outcome {
    use std::os::unix::process::ExitStatusExt as _;
    let kernel_code = kernel.code();
    match said {
        Some(Outcome::Exited(0)) if kernel_code == Some(0) => Outcome::Exited(0),
        Some(Outcome::Exited(0)) | None => match (kernel_code, kernel.signal()) {
            (Some(0), _) => Outcome::SetupFailed {
                step: "helper".into(),
                message: "the sandbox helper ended without a report".into(),
            },
            (Some(c), _) => Outcome::Exited(c),
            (None, Some(sig)) => Outcome::Signaled {
                signal: sig,
                name: nix::sys::signal::Signal::try_from(sig)
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            },
            (None, None) => Outcome::SetupFailed {
                step: "helper".into(),
                message: "the sandbox helper ended without a status".into(),
            },
        },
        Some(other) => other,
    }
}
