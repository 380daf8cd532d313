//! Cgroups for one run: a pids cgroup and a memory cgroup, where writable.
//!
//! The helper is moved into each before it reads its spec, so nothing it starts escapes the
//! count. The pids cgroup backs `RLIMIT_NPROC` (which the kernel already applies to the
//! unprivileged uid the program runs as); the memory cgroup is the one limit on the whole
//! tree's memory (without it, `RLIMIT_AS` still caps each process). Groups are named
//! `rampart-sandbox-PID-N`; those whose process is gone (a killed run) are removed by the
//! next run.

use std::fs;
use std::path::{Path, PathBuf};

/// Which controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// `pids`.
    Pids,
    /// `memory`.
    Memory,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Self::Pids => "pids",
            Self::Memory => "memory",
        }
    }
}

/// A cgroup created for one run; removed on drop.
#[derive(Debug)]
pub struct Cgroup {
    dir: PathBuf,
    controller: Controller,
    v2: bool,
}

/// Finds the directory of our own cgroup in the hierarchy holding `controller`, and whether
/// it is cgroup v2.
fn own_dir(controller: &str) -> Option<(PathBuf, bool)> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    // v1: a `cgroup` mount whose super options name the controller.
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or("");
        let _source = r.next();
        let options = r.next().unwrap_or("");
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        if fstype == "cgroup" && options.split(',').any(|o| o == controller) {
            let own = cgroups.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let _id = parts.next()?;
                let controllers = parts.next()?;
                let path = parts.next()?;
                controllers
                    .split(',')
                    .any(|c| c == controller)
                    .then_some(path)
            })?;
            return Some((
                Path::new(mount_point).join(own.trim_start_matches('/')),
                false,
            ));
        }
    }
    // v2: the unified hierarchy, if it offers the controller to our children.
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split(' ').next() == Some("cgroup2") {
            let mount_point = left.split(' ').nth(4)?;
            let own = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
            let dir = Path::new(mount_point).join(own.trim_start_matches('/'));
            let control = fs::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
            if control.split_whitespace().any(|c| c == controller) {
                return Some((dir, true));
            }
        }
    }
    None
}

/// Removes the groups of earlier runs whose process is gone.
fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("rampart-sandbox-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            // Fails (harmlessly) while a process is still inside.
            let _ = fs::remove_dir(e.path());
        }
    }
}

impl Cgroup {
    /// Creates a child cgroup limited to `max` (processes, or bytes of memory), or `None`
    /// when the controller is not available to us.
    #[must_use]
    pub fn create(controller: Controller, max: u64) -> Option<Self> {
        let (parent, v2) = own_dir(controller.name())?;
        sweep(&parent);
        let mut n = 0u32;
        loop {
            let dir = parent.join(format!("rampart-sandbox-{}-{n}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => {
                    let cg = Self {
                        dir,
                        controller,
                        v2,
                    };
                    let ok = match (controller, v2) {
                        (Controller::Pids, _) => cg.set("pids.max", &max.to_string()),
                        (Controller::Memory, false) => {
                            let ok = cg.set("memory.limit_in_bytes", &max.to_string());
                            // Swap counted too, where the kernel accounts it.
                            let _ = cg.set("memory.memsw.limit_in_bytes", &max.to_string());
                            ok
                        }
                        (Controller::Memory, true) => {
                            let ok = cg.set("memory.max", &max.to_string());
                            let _ = cg.set("memory.swap.max", "0");
                            let _ = cg.set("memory.oom.group", "1");
                            ok
                        }
                    };
                    return ok.then_some(cg);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 64 => n += 1,
                Err(_) => return None,
            }
        }
    }

    fn set(&self, file: &str, value: &str) -> bool {
        fs::write(self.dir.join(file), value).is_ok()
    }

    /// Moves a process into the cgroup.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// How many times the limit was hit: forks refused (pids), processes killed at the
    /// memory limit (memory).
    #[must_use]
    pub fn limit_hits(&self) -> u64 {
        let (file, key) = match (self.controller, self.v2) {
            (Controller::Pids, _) => ("pids.events", "max "),
            (Controller::Memory, true) => ("memory.events", "oom_kill "),
            (Controller::Memory, false) => ("memory.oom_control", "oom_kill "),
        };
        fs::read_to_string(self.dir.join(file))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix(key).map(|v| v.trim().parse().ok()))
            })
            .flatten()
            .unwrap_or(0)
    }

    /// The directory (for diagnostics and tests).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The processes are gone by now; the kernel may need a moment to release the cgroup.
        for _ in 0..50 {
            if fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}
