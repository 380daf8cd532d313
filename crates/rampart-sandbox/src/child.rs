//! The two helper stages. Both are this crate's code, run by re-executing the helper binary,
//! so that no unsafe `pre_exec` hook is needed.
//!
//! **Stage 1** (a child of the caller): reads the spec, unshares the user, mount, network,
//! IPC, PID and UTS namespaces, maps the caller's uid/gid to root inside, makes every mount
//! private, hides the listed directories behind empty read-only tmpfs mounts, then starts
//! stage 2 (PID 1 of the new PID namespace) and enforces the wall-clock limit: on timeout it
//! kills PID 1, and the kernel kills everything else in the namespace.
//!
//! **Stage 2** (PID 1): mounts a fresh `/proc` for the new PID namespace, sets the rlimits,
//! empties the capability bounding set (so the program gets no capabilities even though it
//! runs as root inside the user namespace), restricts itself with Landlock (files, TCP, and
//! the signal and abstract-socket scopes) and seccomp, starts the program, reaps orphans, and
//! exits with the program's status.
//!
//! Both stages append JSON lines to the spec's status file, through a descriptor opened
//! before any restriction and closed on exec, so the program cannot write it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use landlock::{
    ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    Scope, path_beneath_rules,
};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::resource::{Resource, setrlimit};
use std::os::fd::AsFd as _;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::spec::{MAX_SPEC_BYTES, Spec};

/// argv\[1\] of stage 1.
pub const STAGE1: &str = "__rampart-sandbox-stage1";
/// argv\[1\] of stage 2.
pub const STAGE2: &str = "__rampart-sandbox-stage2";

/// Exit code of a stage that could not set the sandbox up.
pub const SETUP_FAILED: i32 = 125;

/// Devices every program may use.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

struct Status(Option<File>);

impl Status {
    fn open(path: &Path) -> Self {
        Self(OpenOptions::new().append(true).open(path).ok())
    }

    fn write(&mut self, v: &Value) {
        if let Some(f) = &mut self.0 {
            let mut line = v.to_string();
            line.push('\n');
            let _ = f.write_all(line.as_bytes());
        }
    }
}

fn read_spec() -> Result<Spec, String> {
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
    spec: &Spec,
    name: &str,
    result: Result<(), String>,
) -> Result<(), i32> {
    let strict = spec.strict;
    // Tests of the refusal path stand in for a kernel without the feature (debug builds
    // only: a release build ignores the list).
    let result = if cfg!(debug_assertions) && spec.simulate_missing.iter().any(|m| m == name) {
        Err(format!("{name} is unavailable (simulated)"))
    } else {
        result
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if strict => {
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

/// Reads the spec, opens the status file, arranges to die with the parent, then runs `body`;
/// returns the exit code.
fn stage(body: fn(&Spec, &mut Status) -> Result<i32, i32>) -> i32 {
    let spec = match read_spec() {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "rampart-sandbox: {e}");
            return SETUP_FAILED;
        }
    };
    let mut status = Status::open(&spec.status_file);
    let mut run = || {
        step(
            &mut status,
            &spec,
            "parent-death signal",
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| e.to_string()),
        )?;
        body(&spec, &mut status)
    };
    match run() {
        Ok(code) | Err(code) => code,
    }
}

/// Stage 1; returns the process exit code.
#[must_use]
pub fn stage1() -> i32 {
    stage(stage1_inner)
}

fn stage1_inner(spec: &Spec, status: &mut Status) -> Result<i32, i32> {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS;
    let unshared = unshare(flags).map_err(|e| format!("unshare: {e}"));
    let namespaces = unshared.is_ok();
    step(status, spec, "namespaces", unshared)?;
    if namespaces {
        step(
            status,
            spec,
            "uid map",
            write_file("/proc/self/setgroups", "deny")
                .and_then(|()| write_file("/proc/self/uid_map", &format!("0 {uid} 1")))
                .and_then(|()| write_file("/proc/self/gid_map", &format!("0 {gid} 1"))),
        )?;
        step(
            status,
            spec,
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
        for dir in &spec.hide {
            if dir.is_dir() {
                step(
                    status,
                    spec,
                    "hide",
                    mount(
                        Some("tmpfs"),
                        dir,
                        Some("tmpfs"),
                        MsFlags::MS_RDONLY
                            | MsFlags::MS_NOSUID
                            | MsFlags::MS_NODEV
                            | MsFlags::MS_NOEXEC,
                        Some("size=4k,mode=000"),
                    )
                    .map_err(|e| format!("hide {}: {e}", dir.display())),
                )?;
            }
        }
    }
    let spec_json = serde_json::to_vec(spec).map_err(|_| SETUP_FAILED)?;
    // Block SIGCHLD before the child exists, so its end cannot be missed.
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    let sigchld = chld
        .thread_block()
        .and_then(|()| SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK))
        .ok();
    let mut child = match Command::new("/proc/self/exe")
        .arg(STAGE2)
        .env_clear()
        .stdin(Stdio::piped())
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
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(&spec_json);
    }
    let pid = Pid::from_raw(i32::try_from(child.id()).map_err(|_| SETUP_FAILED)?);
    // No threads here (none can be created once the PID namespace is unshared): SIGCHLD,
    // blocked and read from a signalfd, wakes the wait as soon as stage 2 ends; the poll's
    // timeout is the wall-clock limit. (`Command` resets the signal mask in its children.)
    let deadline = Instant::now() + Duration::from_millis(spec.limits.wall_ms);
    let mut timed_out = false;
    loop {
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
        let wait = (deadline - now).min(Duration::from_secs(1));
        match &sigchld {
            Some(fd) => {
                let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
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
    if timed_out {
        status.write(&json!({"timeout": true}));
    }
    Ok(code)
}

fn rlimits(spec: &Spec) -> Result<(), String> {
    let l = &spec.limits;
    let set =
        |r: Resource, v: u64, name: &str| setrlimit(r, v, v).map_err(|e| format!("{name}: {e}"));
    set(Resource::RLIMIT_CPU, l.cpu_seconds, "RLIMIT_CPU")?;
    set(Resource::RLIMIT_AS, l.memory_bytes, "RLIMIT_AS")?;
    set(Resource::RLIMIT_FSIZE, l.file_size_bytes, "RLIMIT_FSIZE")?;
    set(Resource::RLIMIT_NOFILE, l.open_files, "RLIMIT_NOFILE")?;
    set(Resource::RLIMIT_NPROC, l.processes, "RLIMIT_NPROC")?;
    set(Resource::RLIMIT_CORE, 0, "RLIMIT_CORE")
}

fn landlock(spec: &Spec) -> Result<String, String> {
    let abi = ABI::V6;
    let e = |e: landlock::RulesetError| format!("landlock: {e}");
    for p in spec.read.iter().chain(&spec.write) {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(format!("landlock: {} does not exist", p.display()));
        }
    }
    let devices: Vec<&Path> = DEVICES
        .iter()
        .map(Path::new)
        .filter(|p| p.exists())
        .collect();
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(e)?
        .handle_access(AccessNet::from_all(abi))
        .map_err(e)?
        .scope(Scope::from_all(abi))
        .map_err(e)?
        .create()
        .map_err(e)?
        .add_rules(path_beneath_rules(&spec.read, AccessFs::from_read(abi)))
        .map_err(e)?
        .add_rules(path_beneath_rules(["/proc"], AccessFs::from_read(abi)))
        .map_err(e)?
        .add_rules(path_beneath_rules(&devices, AccessFs::from_file(abi)))
        .map_err(e)?
        .add_rules(path_beneath_rules(&spec.write, AccessFs::from_all(abi)))
        .map_err(e)?
        .restrict_self()
        .map_err(e)?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok("fully enforced".into()),
        RulesetStatus::PartiallyEnforced => Ok("partially enforced (older kernel ABI)".into()),
        _ => Err("landlock: not enforced by this kernel".into()),
    }
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

/// Stage 2; returns the process exit code.
#[must_use]
pub fn stage2() -> i32 {
    stage(stage2_inner)
}

fn stage2_inner(spec: &Spec, status: &mut Status) -> Result<i32, i32> {
    let in_namespace = std::process::id() == 1;
    if in_namespace {
        step(
            status,
            spec,
            "proc",
            mount(
                Some("proc"),
                "/proc",
                Some("proc"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .map_err(|e| format!("mount /proc: {e}")),
        )?;
        let _ = nix::unistd::sethostname("rampart-sandbox");
    } else {
        step(status, spec, "pid namespace", Err("not PID 1".into()))?;
    }
    step(status, spec, "rlimits", rlimits(spec))?;
    step(
        status,
        spec,
        "capabilities",
        drop_capabilities(&[
            caps::CapSet::Ambient,
            caps::CapSet::Inheritable,
            caps::CapSet::Bounding,
        ]),
    )?;
    let mut landlock_status = String::from("not enforced");
    step(
        status,
        spec,
        "landlock",
        landlock(spec).map(|s| landlock_status = s),
    )?;
    // Nothing below needs privilege in the namespace.
    step(
        status,
        spec,
        "capabilities",
        drop_capabilities(&[caps::CapSet::Effective, caps::CapSet::Permitted]),
    )?;
    step(status, spec, "seccomp", seccomp())?;
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
                "error": format!("cannot start {}: {e}", spec.program.display()),
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
