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
//!   with `SIGSYS`; without `new_sockets`, every `socket`, `socketpair`, `connect`, `bind`,
//!   `listen` and `accept` fails with `EACCES` instead (a named Unix socket — a container
//!   runtime's, an agent's — is otherwise reachable, since Landlock does not govern
//!   `connect`; and a refusal, not a kill, because ONNX Runtime starts a thread during runs
//!   that opens a UDP socket, which must not take the worker down).
//!
//! No-new-privileges is set first (seccomp needs it without `CAP_SYS_ADMIN`).

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr,
    RulesetStatus, Scope, path_beneath_rules,
};

/// How the process was confined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confined {
    /// Landlock's status: fully or partially enforced (older kernel ABI).
    pub landlock: String,
}

/// A Landlock ruleset handling every filesystem and network right and every scope of `abi`:
/// nothing is allowed until a rule says so (the trainer sandbox's and the confined helper's).
///
/// # Errors
/// Landlock's own.
pub(crate) fn ruleset(abi: ABI) -> Result<RulesetCreated, landlock::RulesetError> {
    Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::from_all(abi))?
        .scope(Scope::from_all(abi))?
        .create()
}

/// How far a ruleset was enforced, or the refusal when this kernel does not enforce it.
///
/// # Errors
/// When Landlock is not enforced at all.
pub(crate) fn enforced(status: &RulesetStatus) -> Result<String, String> {
    match status {
        RulesetStatus::FullyEnforced => Ok("fully enforced".into()),
        RulesetStatus::PartiallyEnforced => Ok("partially enforced (older kernel ABI)".into()),
        RulesetStatus::NotEnforced => Err("landlock: not enforced by this kernel".into()),
    }
}

/// Why the process could not be confined.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// `PR_SET_NO_NEW_PRIVS` failed.
    #[error("no-new-privileges: {0}")]
    NoNewPrivileges(nix::Error),
    /// Landlock refused the ruleset, or this kernel does not enforce it.
    #[error("landlock: {0}")]
    Landlock(String),
    /// The seccomp filters could not be built or installed.
    #[error("seccomp: {0}")]
    Seccomp(#[from] seccompiler::Error),
}

/// Confines the calling process (see the module docs). `read` lists paths that stay
/// readable; `new_sockets` allows `AF_UNIX` sockets to be made and used (any other family
/// kills the process), else no socket call succeeds.
///
/// # Errors
/// When Landlock is not enforced by this kernel, or a step fails: the caller must then not
/// go on to handle the hostile input.
pub fn confine_self(read: &[PathBuf], new_sockets: bool) -> Result<Confined, ConfineError> {
    nix::sys::prctl::set_no_new_privs().map_err(ConfineError::NoNewPrivileges)?;
    let abi = ABI::V6;
    let e = |e: landlock::RulesetError| ConfineError::Landlock(e.to_string());
    let status = ruleset(abi)
        .map_err(e)?
        .add_rules(path_beneath_rules(read, AccessFs::from_read(abi)))
        .map_err(e)?
        .restrict_self()
        .map_err(e)?;
    let landlock = enforced(&status.ruleset)
        .map_err(|m| ConfineError::Landlock(m.trim_start_matches("landlock: ").to_owned()))?;
    let sockets = if new_sockets {
        crate::filter::Sockets::UnixOnly
    } else {
        crate::filter::Sockets::Refused
    };
    for p in &crate::filter::programs_for(sockets)? {
        seccompiler::apply_filter_all_threads(p)?;
    }
    Ok(Confined { landlock })
}
