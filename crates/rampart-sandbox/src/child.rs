//! The two helper stages. Both are this crate's code, run by re-executing the helper binary,
//! so that no unsafe `pre_exec` hook is needed.
//!
//! **Stage 1** (a child of the caller): closes every inherited descriptor above 2, reads the
//! [`Launch`] from its stdin (a Unix socket the parent holds the other end of), unshares the
//! mount, network, IPC, PID and UTS namespaces (and the user namespace, mapping the caller to
//! root inside, unless the caller is root), and builds the program's root filesystem from
//! nothing: a tmpfs, `pivot_root` into it with the old root at `/.oldroot`, then the view's
//! symbolic links, read-only and read-write bind mounts of exactly the planned paths (never
//! recursive, `nosuid`, `nodev`), a minimal `/dev`, the size-capped scratch tmpfs, empty
//! tmpfs over hidden directories. It then starts stage 2 (PID 1 of the new PID namespace)
//! and enforces the wall-clock limit: on timeout it kills PID 1, and the kernel kills
//! everything else in the namespace.
//!
//! **Stage 2** (PID 1): mounts a fresh `/proc`, detaches the old root, makes `/` read-only,
//! sets the rlimits, marks itself not dumpable, empties the capability bounding set, drops
//! to the unprivileged uid when the caller was root, restricts itself with Landlock and
//! seccomp, starts the program (stdin `/dev/null`), reaps orphans, and exits with the
//! program's status (`128 + signal` when it was killed).
//!
//! Status lines (JSON) go back over the stages' stdin sockets, never through a file: the
//! program has neither the sockets (they are closed on exec) nor a way to take them (no
//! `ptrace`, no `pidfd_getfd`, stage 2 not dumpable). Whether the run succeeded is decided by
//! the parent from stage 1's exit status, which the kernel reports.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd as _, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use landlock::{ABI, Access, AccessFs, RulesetCreatedAttr, path_beneath_rules};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, unshare};
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{Gid, Pid, Uid};
use serde_json::{Value, json};

use crate::spec::MAX_SPEC_BYTES;
use crate::view::Launch;

/// argv\[1\] of stage 1.
pub const STAGE1: &str = "__rampart-sandbox-stage1";
/// argv\[1\] of stage 2.
pub const STAGE2: &str = "__rampart-sandbox-stage2";

/// Exit code of a stage that could not set the sandbox up.
pub const SETUP_FAILED: i32 = 125;

/// Devices every program may use.
pub const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Where the old root hangs while the new one is built.
const OLD_ROOT: &str = "/.oldroot";

/// Status lines back to the previous stage, over the stage's stdin socket.
struct Status(Option<UnixStream>);

impl Status {
    fn stdin() -> Self {
        Self(
            std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .ok()
                .map(UnixStream::from),
        )
    }

    fn write(&mut self, v: &Value) {
        if let Some(s) = &mut self.0 {
            let mut line = v.to_string();
            line.push('\n');
            let _ = s.write_all(line.as_bytes());
        }
    }

    fn relay(&mut self, bytes: &[u8]) {
        if let Some(s) = &mut self.0 {
            let _ = s.write_all(bytes);
        }
    }
}

/// Closes every descriptor above 2 that this process inherited: whatever the caller's
/// caller left open (a connected socket, a file opened for append) never reaches the program.
fn close_inherited() {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(d) => d
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .filter(|fd| *fd > 2)
            .collect(),
        Err(_) => return,
    };
    for fd in fds {
        // The directory's own descriptor is gone by now; EBADF is harmless.
        let _ = nix::unistd::close(fd);
    }
}

/// Sets close-on-exec on every descriptor above 2.
fn cloexec_all() {
    let Ok(d) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = d
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
}

fn read_launch() -> Result<Launch, String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_SPEC_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the spec: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("bad spec: {e}"))
}

/// A step that failed: fatal when strict, recorded as missing otherwise.
fn step(
    status: &mut Status,
    launch: &Launch,
    name: &str,
    result: Result<(), String>,
) -> Result<(), i32> {
    let spec = &launch.spec;
    // Tests of the refusal path stand in for a kernel without the feature (debug builds
    // only: a release build ignores the list).
    let result = if cfg!(debug_assertions) && spec.simulate_missing.iter().any(|m| m == name) {
        Err(format!("{name} is unavailable (simulated)"))
    } else {
        result
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if spec.strict => {
            status.write(&json!({"error": e, "step": name}));
            Err(SETUP_FAILED)
        }
        Err(e) => {
            status.write(&json!({"missing": name, "reason": e}));
            Ok(())
        }
    }
}

fn write_file(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{path}: {e}"))
}

/// Reads the launch, arranges to die with the parent, then runs `body`; returns the exit code.
fn stage(body: fn(&Launch, &mut Status) -> Result<i32, i32>) -> i32 {
    let launch = match read_launch() {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "rampart-sandbox: {e}");
            return SETUP_FAILED;
        }
    };
    let mut status = Status::stdin();
    let mut run = || {
        step(
            &mut status,
            &launch,
            "parent-death signal",
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| e.to_string()),
        )?;
        body(&launch, &mut status)
    };
    match run() {
        Ok(code) | Err(code) => code,
    }
}

/// Stage 1; returns the process exit code.
#[must_use]
pub fn stage1() -> i32 {
    close_inherited();
    stage(stage1_inner)
}

fn mkdir_all(path: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .create(path)
        .map_err(|e| format!("mkdir {}: {e}", path.display()))
}

fn ensure_file(path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        mkdir_all(parent)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(()),
        Err(_) => File::create(path)
            .map(drop)
            .map_err(|e| format!("create {}: {e}", path.display())),
    }
}

fn old(path: &Path) -> PathBuf {
    Path::new(OLD_ROOT).join(path.strip_prefix("/").unwrap_or(path))
}

/// The mount flags that a bind-remount must keep (the kernel refuses to clear locked ones).
fn kept_flags(path: &Path) -> MsFlags {
    let mut flags = MsFlags::empty();
    if let Ok(s) = statvfs(path) {
        let f = s.flags();
        for (st, ms) in [
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
            (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        ] {
            if f.contains(st) {
                flags |= ms;
            }
        }
    }
    flags
}

fn bind(src: &Path, dst: &Path, write: bool) -> Result<(), String> {
    mount(Some(src), dst, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(|e| format!("bind {}: {e}", dst.display()))?;
    let mut flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | kept_flags(dst);
    if !write {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, dst, None::<&str>, flags, None::<&str>)
        .map_err(|e| format!("remount {}: {e}", dst.display()))
}

fn tmpfs(dst: &Path, options: &str, flags: MsFlags) -> Result<(), String> {
    mount(Some("tmpfs"), dst, Some("tmpfs"), flags, Some(options))
        .map_err(|e| format!("tmpfs {}: {e}", dst.display()))
}

/// Builds the new root and pivots into it; the old root stays at [`OLD_ROOT`] for stage 2 to
/// detach once it has mounted `/proc`.
fn build_root(launch: &Launch) -> Result<(), String> {
    let view = &launch.view;
    let spec = &launch.spec;
    let base = ["/tmp", "/mnt", "/var/tmp", "/run", "/dev"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_dir())
        .ok_or("no directory to build the root on")?;
    tmpfs(
        base,
        "size=16m,nr_inodes=65536,mode=0755",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )?;
    let put_old = base.join(OLD_ROOT.trim_start_matches('/'));
    mkdir_all(&put_old)?;
    nix::unistd::pivot_root(base, &put_old).map_err(|e| format!("pivot_root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    for (link, target) in &view.links {
        if let Some(parent) = link.parent() {
            mkdir_all(parent)?;
        }
        if std::fs::symlink_metadata(link).is_err() {
            std::os::unix::fs::symlink(target, link)
                .map_err(|e| format!("symlink {}: {e}", link.display()))?;
        }
    }
    // Binds and hidden directories together, parents first; at one path the hiding comes
    // after the bind it covers.
    let mut mounts: Vec<(&Path, Option<&crate::view::Bind>)> = view
        .binds
        .iter()
        .map(|b| (b.path.as_path(), Some(b)))
        .chain(view.hide.iter().map(|h| (h.as_path(), None)))
        .collect();
    mounts.sort_by_key(|(p, b)| (p.components().count(), b.is_none()));
    let mut hidden = Vec::new();
    for (path, b) in mounts {
        match b {
            Some(b) => {
                if b.dir {
                    if !b.path.is_dir() {
                        mkdir_all(&b.path)?;
                    }
                } else {
                    ensure_file(&b.path)?;
                }
                bind(&old(&b.path), &b.path, b.write)?;
            }
            // Only where a bind made it visible; writable until the binds inside are made.
            None if path.is_dir() => {
                tmpfs(
                    path,
                    "size=64k,nr_inodes=256,mode=0755",
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                )?;
                hidden.push(path);
            }
            None => {}
        }
    }

    // /dev: the harmless devices, the GPU's when asked, and no terminal of the host.
    let dev = Path::new("/dev");
    mkdir_all(dev)?;
    let dev_owner = launch
        .run_as
        .map(|id| format!(",uid={id},gid={id}"))
        .unwrap_or_default();
    tmpfs(
        dev,
        "size=1m,nr_inodes=1024,mode=0755",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
    )?;
    for d in DEVICES
        .iter()
        .map(PathBuf::from)
        .chain(view.devices.iter().cloned())
    {
        if old(&d).exists() {
            ensure_file(&d)?;
            mount(
                Some(&old(&d)),
                &d,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| format!("bind {}: {e}", d.display()))?;
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = std::os::unix::fs::symlink(target, dev.join(name));
    }
    let shm = dev.join("shm");
    mkdir_all(&shm)?;
    let scratch_size = spec.limits.scratch_bytes.max(1 << 20);
    tmpfs(
        &shm,
        &format!("size={scratch_size},mode=1777{dev_owner}"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
    )?;
    if let Some(s) = &view.scratch {
        mkdir_all(s)?;
        tmpfs(
            s,
            &format!("size={scratch_size},mode=0700{dev_owner}"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        )?;
    }
    if !view.cwd.is_dir() {
        // An empty directory: the program starts somewhere that exists.
        let _ = mkdir_all(&view.cwd);
    }
    mkdir_all(Path::new("/proc"))?;
    for h in hidden {
        make_read_only(h)?;
    }
    Ok(())
}

fn stage1_inner(launch: &Launch, status: &mut Status) -> Result<i32, i32> {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let userns = launch.run_as.is_none();
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS;
    if userns {
        flags |= CloneFlags::CLONE_NEWUSER;
    }
    let unshared = unshare(flags).map_err(|e| format!("unshare: {e}"));
    let namespaces = unshared.is_ok();
    step(status, launch, "namespaces", unshared)?;
    let mut built = false;
    if namespaces {
        if userns {
            step(
                status,
                launch,
                "uid map",
                write_file("/proc/self/setgroups", "deny")
                    .and_then(|()| write_file("/proc/self/uid_map", &format!("0 {uid} 1")))
                    .and_then(|()| write_file("/proc/self/gid_map", &format!("0 {gid} 1"))),
            )?;
        }
        step(
            status,
            launch,
            "private mounts",
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| format!("make / private: {e}")),
        )?;
        let result = build_root(launch);
        built = result.is_ok();
        step(status, launch, "root filesystem", result)?;
    }
    let mut launch2 = launch.clone();
    // Stage 2 learns whether it has an old root to detach from the view: none when the root
    // could not be built (a non-strict run).
    if !built {
        launch2.view = crate::view::View::default();
    }
    let launch_json = serde_json::to_vec(&launch2).map_err(|_| SETUP_FAILED)?;
    // Block SIGCHLD before the child exists, so its end cannot be missed.
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let sigchld = chld
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK))
        .ok();
    let exe = if built {
        old(Path::new("/proc/self/exe"))
    } else {
        PathBuf::from("/proc/self/exe")
    };
    let (mut ours, theirs) = match UnixStream::pair() {
        Ok(p) => p,
        Err(e) => {
            status.write(&json!({"error": format!("socketpair: {e}"), "step": "stage 2"}));
            return Err(SETUP_FAILED);
        }
    };
    let mut child = match Command::new(&exe)
        .arg(STAGE2)
        .env_clear()
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            status
                .write(&json!({"error": format!("cannot start stage 2: {e}"), "step": "stage 2"}));
            return Err(SETUP_FAILED);
        }
    };
    let _ = ours.write_all(&launch_json);
    let _ = ours.shutdown(std::net::Shutdown::Write);
    let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|_| SETUP_FAILED)?);
    // No threads here (none can be created once the PID namespace is unshared): SIGCHLD,
    // blocked and read from a signalfd, wakes the wait as soon as stage 2 ends; the poll's
    // timeout is the wall-clock limit. (`Command` resets the signal mask in its children.)
    let deadline = Instant::now() + Duration::from_millis(launch.spec.limits.wall_ms);
    let mut timed_out = false;
    let mut stopped: Option<(String, String)> = None;
    let watch = Watch::new(launch, built);
    let tick = if watch.memory {
        Duration::from_millis(50)
    } else {
        Duration::from_millis(250)
    };
    let _ = ours.set_nonblocking(true);
    let mut relayed = 0u64;
    let mut eof = false;
    // Stage 2's status lines, passed on as they come (bounded).
    let mut relay = |ours: &mut UnixStream, status: &mut Status, eof: &mut bool| {
        let mut buf = [0u8; 4096];
        loop {
            match ours.read(&mut buf) {
                Ok(0) => {
                    *eof = true;
                    break;
                }
                Ok(n) => {
                    if relayed <= crate::MAX_STATUS_BYTES {
                        relayed += n as u64;
                        status.relay(buf.get(..n).unwrap_or_default());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        *eof = true;
                    }
                    break;
                }
            }
        }
    };
    loop {
        if !eof {
            relay(&mut ours, status, &mut eof);
        }
        // WNOWAIT: the pid stays ours (not reused) until `wait` below reaps it.
        match waitid(
            Id::Pid(pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        ) {
            Ok(WaitStatus::StillAlive) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) | Err(_) => break,
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            // PID 1 of the namespace: its death takes every other process with it.
            let _ = kill(pid, Signal::SIGKILL);
            break;
        }
        if let Some(over) = watch.check() {
            stopped = Some(over);
            let _ = kill(pid, Signal::SIGKILL);
            break;
        }
        let wait = (deadline - now).min(tick);
        match &sigchld {
            Some(fd) => {
                let mut fds = vec![PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                if !eof {
                    fds.push(PollFd::new(ours.as_fd(), PollFlags::POLLIN));
                }
                let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
                if matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
                    let _ = fd.read_signal();
                }
            }
            None => std::thread::sleep(wait.min(Duration::from_millis(5))),
        }
    }
    let code = match child.wait() {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt as _;
            s.code()
                .or_else(|| s.signal().map(|sig| 128 + sig))
                .unwrap_or(SETUP_FAILED)
        }
        Err(_) => SETUP_FAILED,
    };
    let _ = ours.set_nonblocking(false);
    let _ = ours.set_read_timeout(Some(Duration::from_secs(1)));
    if !eof {
        relay(&mut ours, status, &mut eof);
    }
    if timed_out {
        status.write(&json!({"timeout": true}));
    }
    if let Some((limit, message)) = stopped {
        status.write(&json!({"limit": limit, "message": message}));
    }
    Ok(code)
}

/// Limits stage 1 watches itself while the program runs: the output's size and file count
/// (so a trainer cannot fill the disk before collection refuses it) and, without a memory
/// cgroup, the tree's memory.
struct Watch {
    output: Vec<PathBuf>,
    output_bytes: u64,
    memory: bool,
    memory_bytes: u64,
    tmpfs: Vec<PathBuf>,
}

/// Most entries counted in the output before the run is stopped.
pub const MAX_OUTPUT_ENTRIES: usize = 10_000;

impl Watch {
    fn new(launch: &Launch, built: bool) -> Self {
        let l = &launch.spec.limits;
        let mut tmpfs: Vec<PathBuf> = launch.view.scratch.iter().cloned().collect();
        tmpfs.push(PathBuf::from("/dev/shm"));
        Self {
            output: if built {
                launch
                    .view
                    .binds
                    .iter()
                    .filter(|b| b.write && b.dir)
                    .map(|b| b.path.clone())
                    .collect()
            } else {
                Vec::new()
            },
            output_bytes: l.output_bytes,
            memory: built && !launch.memory_cgroup,
            memory_bytes: l.memory_bytes,
            tmpfs,
        }
    }

    /// The limit that was passed, and what was measured.
    fn check(&self) -> Option<(String, String)> {
        use std::os::unix::fs::MetadataExt as _;
        for dir in &self.output {
            let mut used = 0u64;
            let mut entries = 0usize;
            let mut stack = vec![dir.clone()];
            while let Some(d) = stack.pop() {
                let Ok(list) = std::fs::read_dir(&d) else {
                    continue;
                };
                for e in list.flatten() {
                    entries += 1;
                    if entries > MAX_OUTPUT_ENTRIES {
                        return Some((
                            "output".into(),
                            format!(
                                "more than {MAX_OUTPUT_ENTRIES} entries in {}",
                                dir.display()
                            ),
                        ));
                    }
                    if let Ok(m) = e.metadata() {
                        used = used.saturating_add(m.blocks().saturating_mul(512));
                        if m.is_dir() {
                            stack.push(e.path());
                        }
                    }
                }
            }
            if used > self.output_bytes {
                return Some((
                    "output".into(),
                    format!(
                        "{used} bytes written to {}, over {} (--max-output)",
                        dir.display(),
                        self.output_bytes
                    ),
                ));
            }
        }
        if self.memory {
            let used = tree_memory().saturating_add(
                self.tmpfs
                    .iter()
                    .filter_map(|p| statvfs(p).ok())
                    .map(|v| {
                        (v.blocks().saturating_sub(v.blocks_free()))
                            .saturating_mul(v.fragment_size())
                    })
                    .sum::<u64>(),
            );
            if used > self.memory_bytes {
                return Some((
                    "memory".into(),
                    format!(
                        "{used} bytes resident in the sandbox's processes and scratch, over {} (--memory; no memory cgroup was writable, so the sandbox accounts it)",
                        self.memory_bytes
                    ),
                ));
            }
        }
        None
    }
}

/// Resident bytes of every process in the sandbox's PID namespace (its `/proc`).
fn tree_memory() -> u64 {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096);
    let Ok(list) = std::fs::read_dir("/proc") else {
        return 0;
    };
    list.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("statm")).ok())
        .filter_map(|t| t.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages.saturating_mul(page))
        .sum()
}

fn rlimits(launch: &Launch) -> Result<(), String> {
    let l = &launch.spec.limits;
    let set =
        |r: Resource, v: u64, name: &str| setrlimit(r, v, v).map_err(|e| format!("{name}: {e}"));
    set(Resource::RLIMIT_CPU, l.cpu_seconds, "RLIMIT_CPU")?;
    set(Resource::RLIMIT_AS, l.memory_bytes, "RLIMIT_AS")?;
    set(Resource::RLIMIT_FSIZE, l.file_size_bytes, "RLIMIT_FSIZE")?;
    set(Resource::RLIMIT_NOFILE, l.open_files, "RLIMIT_NOFILE")?;
    set(Resource::RLIMIT_NPROC, l.processes, "RLIMIT_NPROC")?;
    set(Resource::RLIMIT_CORE, 0, "RLIMIT_CORE")
}

fn landlock(launch: &Launch) -> Result<String, String> {
    let spec = &launch.spec;
    let abi = ABI::V6;
    let e = |e: landlock::RulesetError| format!("landlock: {e}");
    for p in spec.read.iter().chain(&spec.write) {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(format!("landlock: {} does not exist", p.display()));
        }
    }
    let devices: Vec<PathBuf> = DEVICES
        .iter()
        .map(PathBuf::from)
        .chain(launch.view.devices.iter().cloned())
        .filter(|p| p.exists())
        .collect();
    let dev_dir: Vec<PathBuf> = if launch.view.binds.is_empty() {
        Vec::new()
    } else {
        vec![PathBuf::from("/dev")]
    };
    let mut writable: Vec<PathBuf> = spec.write.clone();
    writable.extend(launch.view.scratch.iter().cloned());
    if Path::new("/dev/shm").is_dir() && !launch.view.binds.is_empty() {
        writable.push(PathBuf::from("/dev/shm"));
    }
    let status = crate::confine::ruleset(abi)
        .map_err(e)?
        .add_rules(path_beneath_rules(&spec.read, AccessFs::from_read(abi)))
        .map_err(e)?
        .add_rules(path_beneath_rules(["/proc"], AccessFs::from_read(abi)))
        .map_err(e)?
        .add_rules(path_beneath_rules(&devices, AccessFs::from_file(abi)))
        .map_err(e)?
        // The view's own /dev holds nothing but those devices: it may be listed.
        .add_rules(path_beneath_rules(
            dev_dir.iter(),
            AccessFs::ReadDir | AccessFs::ReadFile,
        ))
        .map_err(e)?
        .add_rules(path_beneath_rules(&writable, AccessFs::from_all(abi)))
        .map_err(e)?
        .restrict_self()
        .map_err(e)?;
    crate::confine::enforced(&status.ruleset)
}

fn drop_capabilities(which: &[caps::CapSet]) -> Result<(), String> {
    for set in which {
        caps::clear(None, *set).map_err(|e| format!("capabilities ({set:?}): {e}"))?;
    }
    Ok(())
}

fn seccomp() -> Result<(), String> {
    let programs = crate::filter::programs().map_err(|e| format!("seccomp: {e}"))?;
    for p in &programs {
        seccompiler::apply_filter(p).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

/// Mounts `/proc` for the new PID namespace, detaches the old root, makes `/` read-only.
fn finish_root() -> Result<(), String> {
    mount_proc()?;
    umount2(OLD_ROOT, MntFlags::MNT_DETACH).map_err(|e| format!("detach the old root: {e}"))?;
    let _ = std::fs::remove_dir(OLD_ROOT);
    for p in ["/", "/dev"] {
        make_read_only(Path::new(p))?;
    }
    Ok(())
}

/// Remounts a mount read-only, `nosuid`, `nodev`, keeping the flags the kernel locked.
fn make_read_only(path: &Path) -> Result<(), String> {
    mount(
        None::<&str>,
        path,
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | kept_flags(path),
        None::<&str>,
    )
    .map_err(|e| format!("make {} read-only: {e}", path.display()))
}

/// A fresh `/proc` for the new PID namespace.
fn mount_proc() -> Result<(), String> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("mount /proc: {e}"))
}

/// Becomes the unprivileged uid and gid `id` (which owns nothing on the host), dropping every
/// capability and supplementary group.
fn become_unprivileged(id: u32) -> Result<(), String> {
    let (u, g) = (Uid::from_raw(id), Gid::from_raw(id));
    nix::unistd::setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    nix::unistd::setresgid(g, g, g).map_err(|e| format!("setresgid {id}: {e}"))?;
    nix::unistd::setresuid(u, u, u).map_err(|e| format!("setresuid {id}: {e}"))?;
    if nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).is_ok() {
        return Err("could regain root after dropping it".into());
    }
    Ok(())
}

/// Stage 2; returns the process exit code.
#[must_use]
pub fn stage2() -> i32 {
    stage(stage2_inner)
}

fn stage2_inner(launch: &Launch, status: &mut Status) -> Result<i32, i32> {
    let spec = &launch.spec;
    let in_namespace = std::process::id() == 1;
    if in_namespace {
        if Path::new(OLD_ROOT).is_dir() {
            step(status, launch, "root filesystem", finish_root())?;
        } else {
            step(status, launch, "proc", mount_proc())?;
        }
        let _ = nix::unistd::sethostname("rampart-sandbox");
    } else {
        step(status, launch, "pid namespace", Err("not PID 1".into()))?;
    }
    cloexec_all();
    step(status, launch, "rlimits", rlimits(launch))?;
    // Nothing the program does may read this process's memory or descriptors.
    step(
        status,
        launch,
        "not dumpable",
        nix::sys::prctl::set_dumpable(false).map_err(|e| format!("PR_SET_DUMPABLE: {e}")),
    )?;
    step(
        status,
        launch,
        "capabilities",
        drop_capabilities(&[
            caps::CapSet::Ambient,
            caps::CapSet::Inheritable,
            caps::CapSet::Bounding,
        ]),
    )?;
    if let Some(id) = launch.run_as {
        step(status, launch, "unprivileged user", become_unprivileged(id))?;
    }
    let mut landlock_status = String::from("not enforced");
    step(
        status,
        launch,
        "landlock",
        landlock(launch).map(|s| landlock_status = s),
    )?;
    // Nothing below needs privilege in the namespace.
    step(
        status,
        launch,
        "capabilities",
        drop_capabilities(&[caps::CapSet::Effective, caps::CapSet::Permitted]),
    )?;
    step(status, launch, "seccomp", seccomp())?;
    let child = Command::new(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            status.write(&json!({
                "error": crate::explain_spawn(&spec.program, &e),
                "step": "exec",
            }));
            return Err(SETUP_FAILED);
        }
    };
    status.write(&json!({"started": true, "landlock": landlock_status}));
    let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|_| SETUP_FAILED)?);
    loop {
        // As PID 1, adopted orphans are ours to reap; only the program's end matters.
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => {
                status.write(&json!({"exit": code}));
                return Ok(code);
            }
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => {
                status.write(&json!({"signal": sig as i32, "name": sig.as_str()}));
                return Ok(128 + sig as i32);
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                status.write(&json!({"error": format!("wait: {e}"), "step": "wait"}));
                return Err(SETUP_FAILED);
            }
        }
    }
}
