//! A pids cgroup for one run.
//!
//! `RLIMIT_NPROC` is not enforced for a process whose real user is root, so when the caller is
//! root the process limit comes from the pids controller instead (cgroup v1 or v2): a child
//! cgroup of our own with `pids.max`, into which the helper is moved before it reads its spec,
//! so nothing it starts escapes the count.

use std::fs;
use std::path::{Path, PathBuf};

/// A cgroup created for one run; removed on drop.
#[derive(Debug)]
pub struct PidsCgroup {
    dir: PathBuf,
}

/// Finds the directory of our own cgroup in the pids hierarchy.
fn own_pids_dir() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    // v1: a `cgroup` mount whose super options name `pids`.
    for line in mountinfo.lines() {
        let (left, right) = line.split_once(" - ")?;
        let mut r = right.split(' ');
        let fstype = r.next()?;
        let _source = r.next();
        let options = r.next().unwrap_or("");
        let mount_point = left.split(' ').nth(4)?;
        if fstype == "cgroup" && options.split(',').any(|o| o == "pids") {
            let own = cgroups.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let _id = parts.next()?;
                let controllers = parts.next()?;
                let path = parts.next()?;
                controllers.split(',').any(|c| c == "pids").then_some(path)
            })?;
            return Some(Path::new(mount_point).join(own.trim_start_matches('/')));
        }
    }
    // v2: the unified hierarchy, if it offers pids to our children.
    for line in mountinfo.lines() {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next() == Some("cgroup2") {
            let mount_point = left.split(' ').nth(4)?;
            let own = cgroups.lines().find_map(|l| l.strip_prefix("0::"))?;
            let dir = Path::new(mount_point).join(own.trim_start_matches('/'));
            let control = fs::read_to_string(dir.join("cgroup.subtree_control")).ok()?;
            if control.split_whitespace().any(|c| c == "pids") {
                return Some(dir);
            }
        }
    }
    None
}

impl PidsCgroup {
    /// Creates a child cgroup limited to `max` processes, or `None` when the pids controller
    /// is not available to us.
    #[must_use]
    pub fn create(max: u64) -> Option<Self> {
        let parent = own_pids_dir()?;
        let mut n = 0u32;
        loop {
            let dir = parent.join(format!("rampart-sandbox-{}-{n}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => {
                    let cg = Self { dir };
                    fs::write(cg.dir.join("pids.max"), max.to_string()).ok()?;
                    return Some(cg);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 64 => n += 1,
                Err(_) => return None,
            }
        }
    }

    /// Moves a process into the cgroup.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn add(&self, pid: u32) -> std::io::Result<()> {
        fs::write(self.dir.join("cgroup.procs"), pid.to_string())
    }

    /// How many times a fork was refused because the limit was reached.
    #[must_use]
    pub fn limit_hits(&self) -> u64 {
        fs::read_to_string(self.dir.join("pids.events"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("max ").map(|v| v.trim().parse().ok()))
            })
            .flatten()
            .unwrap_or(0)
    }
}

impl Drop for PidsCgroup {
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
