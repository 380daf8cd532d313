//! Confining the calling process itself: for a helper that must handle hostile input once it
//! has loaded what it needs — the ONNX worker (`rampart-onnx`), which builds a model it did not
//! write after ONNX Runtime's library is loaded. It keeps what it already holds (memory, open
//! descriptors) and gets nothing new:
//!
//! - Landlock, every filesystem and network right handled: no file may be opened, created or
//!   listed beyond `read` (read-only), no TCP port bound or connected, no signal or abstract
//!   Unix socket outside the domain. It binds the calling thread and every thread it starts
//!   afterwards, so call it before starting any;
//! - the sandbox's seccomp filters ([`crate::filter`]) on every thread of the process: no
//!   socket but `AF_UNIX`, no ptrace, mount, namespaces, bpf, io_uring, keyrings…, killed
//!   with `SIGSYS`; without `new_sockets`, also no new socket of any family and no `connect`,
//!   `bind`, `listen` or `accept` (a named Unix socket — a container runtime's, an agent's —
//!   is otherwise reachable, since Landlock does not govern `connect`).
//!
//! No-new-privileges is set first (seccomp needs it without `CAP_SYS_ADMIN`).

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    Scope, path_beneath_rules,
};

/// How the process was confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confined {
    /// Landlock's status: fully or partially enforced (older kernel ABI).
    pub landlock: String,
}

/// Confines the calling process (see the module docs). `read` lists paths that stay
/// readable; `new_sockets` allows `AF_UNIX` sockets to be made and used.
///
/// # Errors
/// When Landlock is not enforced by this kernel, or a step fails: the caller must then not
/// go on to handle the hostile input.
pub fn confine_self(read: &[PathBuf], new_sockets: bool) -> Result<Confined, String> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| format!("no-new-privileges: {e}"))?;
    let abi = ABI::V6;
    let e = |e: landlock::RulesetError| format!("landlock: {e}");
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(e)?
        .handle_access(AccessNet::from_all(abi))
        .map_err(e)?
        .scope(Scope::from_all(abi))
        .map_err(e)?
        .create()
        .map_err(e)?
        .add_rules(path_beneath_rules(read, AccessFs::from_read(abi)))
        .map_err(e)?
        .restrict_self()
        .map_err(e)?;
    let landlock = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced".to_owned(),
        RulesetStatus::PartiallyEnforced => "partially enforced (older kernel ABI)".to_owned(),
        _ => return Err("landlock: not enforced by this kernel".into()),
    };
    let mut programs = crate::filter::programs().map_err(|e| format!("seccomp: {e}"))?;
    if !new_sockets {
        programs.push(no_sockets().map_err(|e| format!("seccomp: {e}"))?);
    }
    for p in &programs {
        seccompiler::apply_filter_all_threads(p).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(Confined { landlock })
}

/// A filter killing the process on any call that makes, names or reaches a socket.
fn no_sockets() -> Result<seccompiler::BpfProgram, seccompiler::Error> {
    use std::collections::BTreeMap;
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = [
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
    ]
    .into_iter()
    .map(|n| (n, Vec::new()))
    .collect();
    let filter = seccompiler::SeccompFilter::new(
        rules,
        seccompiler::SeccompAction::Allow,
        seccompiler::SeccompAction::KillProcess,
        crate::filter::arch(),
    )?;
    Ok(filter.try_into()?)
}
