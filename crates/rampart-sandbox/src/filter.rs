//! The seccomp filters.
//!
//! Two filters are stacked (the kernel applies the strictest verdict):
//! - **deny**: calls that open the network or escape the sandbox kill the whole process with
//!   `SIGSYS`, so a violation is never mistaken for an ordinary error: sockets of every
//!   family but `AF_UNIX` (an allowlist: no `AF_INET*`, `AF_PACKET`, `AF_NETLINK`,
//!   `AF_VSOCK`, whose connections no network namespace confines), io_uring (it can open sockets without the
//!   `socket` call), ptrace and cross-process memory access, mount and the new mount API,
//!   namespaces (`unshare`, `setns`, `clone` with a `CLONE_NEW*` flag), pidfd calls
//!   (`pidfd_open`, `pidfd_getfd`: another process's descriptors), `process_madvise`,
//!   `kcmp`, bpf, perf events,
//!   keyrings, kexec, kernel modules, userfaultfd, `open_by_handle_at`, swap, reboot, clock
//!   and accounting changes, `chroot`, `pivot_root`, `iopl`/`ioperm`, `personality`;
//! - **clone3**: answers `ENOSYS`, because its flags live in memory a filter cannot read;
//!   libc then falls back to `clone`, whose flags the first filter checks.
//!
//! A call from another architecture (32-bit `int 0x80` on x86-64) kills the process.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Names of the denied calls, for reports and docs.
pub const DENIED: &[&str] = &[
    "socket(any family but AF_UNIX)",
    "socketpair(any family but AF_UNIX)",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_open",
    "pidfd_getfd",
    "process_madvise",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "clone(CLONE_NEW*)",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "iopl",
    "ioperm",
    "personality",
    "syslog",
    "quotactl",
    "lookup_dcookie",
];

fn arch() -> TargetArch {
    #[cfg(target_arch = "aarch64")]
    {
        TargetArch::aarch64
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        TargetArch::x86_64
    }
}

fn flag_set(index: u8, flag: u64) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(
        index,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(flag),
        flag,
    )
}

/// Calls denied outright (any arguments).
fn denied_numbers() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_open,
        libc::SYS_pidfd_getfd,
        libc::SYS_process_madvise,
        libc::SYS_kcmp,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_personality,
        libc::SYS_syslog,
        libc::SYS_quotactl,
        libc::SYS_lookup_dcookie,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([libc::SYS_iopl, libc::SYS_ioperm]);
    v
}

/// What a filtered process may do with sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sockets {
    /// `AF_UNIX` sockets only: any other family kills the process (a trainer).
    UnixOnly,
    /// None at all: `socket`, `socketpair`, `connect`, `bind`, `listen` and `accept` fail with
    /// `EACCES` (a helper keeping only descriptors it was given; a library's background
    /// thread probing the network gets an error, not a dead process).
    Refused,
}

/// The calls [`Sockets::Refused`] refuses.
const SOCKET_CALLS: [i64; 7] = [
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_connect,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
];

/// The two BPF programs of the trainer sandbox ([`Sockets::UnixOnly`]), in the order they
/// are to be installed.
///
/// # Errors
/// Only if seccompiler rejects the rules (a bug, caught by the tests).
pub fn programs() -> Result<Vec<BpfProgram>, seccompiler::Error> {
    programs_for(Sockets::UnixOnly)
}

/// The BPF programs for `sockets`, in the order they are to be installed: the deny filter,
/// the `clone3` filter, and for [`Sockets::Refused`] a third refusing socket calls.
///
/// # Errors
/// Only if seccompiler rejects the rules (a bug, caught by the tests).
pub fn programs_for(sockets: Sockets) -> Result<Vec<BpfProgram>, seccompiler::Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for n in denied_numbers() {
        rules.insert(n, Vec::new());
    }
    if sockets == Sockets::UnixOnly {
        // Any family but AF_UNIX: the rule matches (and kills) when the domain differs.
        let socket_rules = vec![SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            u64::from(libc::AF_UNIX.unsigned_abs()),
        )?])?];
        rules.insert(libc::SYS_socket, socket_rules.clone());
        rules.insert(libc::SYS_socketpair, socket_rules);
    }
    let ns_flags = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
    ];
    let mut clone_rules = Vec::new();
    for f in ns_flags {
        clone_rules.push(SeccompRule::new(vec![flag_set(
            0,
            u64::from(f.unsigned_abs()),
        )?])?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::KillProcess,
        arch(),
    )?;
    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    let clone3 = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(u32::try_from(libc::ENOSYS).unwrap_or(38)),
        arch(),
    )?;
    let mut out: Vec<BpfProgram> = vec![deny.try_into()?, clone3.try_into()?];
    if sockets == Sockets::Refused {
        let refused = SeccompFilter::new(
            SOCKET_CALLS.iter().map(|n| (*n, Vec::new())).collect(),
            SeccompAction::Allow,
            SeccompAction::Errno(u32::try_from(libc::EACCES).unwrap_or(13)),
            arch(),
        )?;
        out.push(refused.try_into()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_compile() {
        let p = super::programs().unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0].len() > super::denied_numbers().len());
    }
}
