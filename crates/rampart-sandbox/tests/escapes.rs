//! Escape attempts, one per run, each of which must fail, and the channels the red team
//! found, each closed. The programs are Debian's `/usr/bin/python3` and `/bin/sh`.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{run, sandbox, spec};
use rampart_sandbox::{MemoryScope, Outcome, SandboxError, Spec};

const PY: &str = "/usr/bin/python3";

fn python(code: &str) -> Spec {
    spec(PY, &["-c", code])
}

fn killed_by_seccomp(r: &rampart_sandbox::Report) -> bool {
    matches!(r.outcome, Outcome::Signaled { signal, .. } if signal == libc::SIGSYS)
}

/// A directory others can traverse (tempdirs are 0700; the program may run as another uid).
fn open_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// A listener on a host Unix socket that records whether anyone connected.
fn listen(path: &Path) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let l = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).unwrap();
    l.set_nonblocking(true).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..400 {
            if let Ok((mut s, _)) = l.accept() {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = vec![0u8; 1024];
                let n = s.read(&mut buf).unwrap_or(0);
                let _ = s.write_all(b"reply");
                let _ = tx.send(buf[..n].to_vec());
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    });
    rx
}

const CONNECT: &str = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1]); s.sendall(b'TRAINING DATA'); print('CONNECTED', s.recv(10))\nexcept OSError as e:\n print('refused', e)\n";

#[test]
fn host_pathname_unix_sockets_are_not_in_the_view() {
    let dir = open_tempdir();
    // A socket in a temp directory, and one in a home-like directory.
    let home = dir.path().join("home/alice/.ssh");
    std::fs::create_dir_all(&home).unwrap();
    for sock in [dir.path().join("docker.sock"), home.join("agent.sock")] {
        let rx = listen(&sock);
        let s = spec(PY, &["-c", CONNECT, sock.to_str().unwrap()]);
        let (r, out, err) = run(&s);
        assert!(r.success(), "{} {err}", r.explain());
        assert!(out.contains("refused"), "{out}");
        assert!(!out.contains("CONNECTED"), "{out}");
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    }
}

#[test]
fn a_socket_inside_a_readable_directory_is_refused_before_the_run() {
    let dir = open_tempdir();
    let code = dir.path().join("code");
    std::fs::create_dir_all(code.join("sub")).unwrap();
    let _rx = listen(&code.join("sub/db.sock"));
    let mut s = spec("/bin/true", &[]);
    s.read.push(code.clone());
    let e = sandbox().run(&s, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, SandboxError::View(_)), "{e}");
    assert!(e.to_string().contains("db.sock"), "{e}");
    assert!(e.to_string().contains("socket"), "{e}");
}

#[test]
fn an_abstract_unix_socket_of_the_host_is_unreachable() {
    use std::os::linux::net::SocketAddrExt as _;
    let name = format!("rampart-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    l.set_nonblocking(true).unwrap();
    let code = format!(
        "import socket\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect('\\0{name}'); print('CONNECTED')\nexcept OSError as e:\n print('refused', e)\n"
    );
    let (r, out, err) = run(&python(&code));
    assert!(r.success(), "{} {err}", r.explain());
    assert!(out.contains("refused"), "{out}");
    assert!(l.accept().is_err());
}

#[test]
fn every_socket_family_but_unix_kills_the_program() {
    for (family, kind) in [
        ("AF_INET", "SOCK_STREAM"),
        ("AF_INET", "SOCK_DGRAM"),
        ("AF_INET6", "SOCK_DGRAM"),
        ("AF_NETLINK", "SOCK_RAW"),
        ("AF_VSOCK", "SOCK_STREAM"),
        ("AF_PACKET", "SOCK_RAW"),
    ] {
        let code = format!(
            "import socket\nsocket.socket(socket.{family}, socket.{kind})\nprint('OPENED')\n"
        );
        let (r, out, _) = run(&python(&code));
        assert!(killed_by_seccomp(&r), "{family}: {:?} {out}", r.outcome);
        assert!(!out.contains("OPENED"));
        assert!(r.explain().contains("forbids"), "{}", r.explain());
    }
    // The trainer's own processes may still talk over AF_UNIX.
    let (r, out, err) = run(&python(
        "import socket\na,b=socket.socketpair()\na.sendall(b'hi')\nprint(b.recv(2))\n",
    ));
    assert!(r.success(), "{} {err}", r.explain());
    assert!(out.contains("b'hi'"), "{out}");
}

/// Clears close-on-exec, as a careless caller of rampart would leave a descriptor.
fn inheritable(fd: i32) {
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
}

#[test]
fn inherited_descriptors_never_reach_the_program() {
    let dir = open_tempdir();
    let appended = dir.path().join("append.log");
    std::fs::write(&appended, "").unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    let append = std::fs::OpenOptions::new()
        .append(true)
        .open(&appended)
        .unwrap();
    let read = std::fs::File::open(&secret).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    for fd in [append.as_raw_fd(), read.as_raw_fd(), tcp.as_raw_fd()] {
        inheritable(fd);
    }
    let code = format!(
        "import os\nfor fd in ({}, {}, {}):\n  for op in ('w', 'r'):\n    try:\n      if op == 'w': os.write(fd, b'LEAKED'); print('wrote', fd)\n      else: print('read', fd, os.read(fd, 100))\n    except OSError as e: print(fd, op, e.errno)\nprint(sorted(int(f) for f in os.listdir('/proc/self/fd')))\n",
        append.as_raw_fd(),
        read.as_raw_fd(),
        tcp.as_raw_fd()
    );
    let (r, out, err) = run(&python(&code));
    assert!(r.success(), "{} {err}", r.explain());
    assert!(!out.contains("wrote") && !out.contains("read "), "{out}");
    assert!(!out.contains("TOP SECRET"), "{out}");
    assert!(out.contains("[0, 1, 2, 3]"), "{out}");
    assert_eq!(std::fs::read_to_string(&appended).unwrap(), "");
    server
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(
        server.read(&mut buf).is_err(),
        "data arrived on the TCP socket"
    );
}

#[test]
fn the_outcome_cannot_be_forged_through_a_pidfd() {
    // pidfd_open(1) + pidfd_getfd would hand the program stage 2's descriptors.
    let (r, out, _) = run(&python(
        "import os\nfd = os.pidfd_open(1)\nprint('GOT', fd)\n",
    ));
    assert!(killed_by_seccomp(&r), "{:?} {out}", r.outcome);
    assert!(!r.success());
    assert!(!out.contains("GOT"));
    // Through the raw system call number too (pidfd_getfd = 438 on x86-64 and arm64).
    let (r, out, _) = run(&python(
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('RC', libc.syscall(438, 0, 0, 0))\n",
    ));
    assert!(killed_by_seccomp(&r), "{:?} {out}", r.outcome);
}

#[test]
fn host_files_keep_their_mode_times_and_attributes() {
    let dir = open_tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let file = data.join("dataset.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = std::fs::metadata(&file).unwrap();
    let code = "import os,sys\np=sys.argv[1]\nfor name, f in (('chmod', lambda: os.chmod(p, 0o6777)), ('utime', lambda: os.utime(p, (0, 0))), ('xattr', lambda: os.setxattr(p, 'user.evil', b'1')), ('chown', lambda: os.chown(p, 0, 0)), ('write', lambda: open(p, 'a').write('x'))):\n  try:\n    f(); print('CHANGED', name)\n  except OSError as e: print(name, e.errno)\n";
    let mut s = spec(PY, &["-c", code, file.to_str().unwrap()]);
    s.read.push(data.clone());
    let (r, out, err) = run(&s);
    assert!(r.success(), "{} {err}", r.explain());
    assert!(!out.contains("CHANGED"), "{out}");
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(before.mode(), after.mode());
    assert_eq!(before.mtime(), after.mtime());
    assert_eq!(before.uid(), after.uid());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "a,b\n1,2\n");
    let listed = std::process::Command::new("getfattr")
        .arg("-d")
        .arg(&file)
        .output();
    if let Ok(o) = listed {
        assert!(!String::from_utf8_lossy(&o.stdout).contains("evil"));
    }
}

#[test]
fn secrets_of_the_host_are_not_in_the_view() {
    let code = "import os\nfor p in ('/etc/shadow', '/root', '/home', '/var/run', '/run', '/sys', '/tmp/x', '/proc/1/environ'):\n  try:\n    if os.path.isdir(p): print(p, 'LISTED', os.listdir(p))\n    else: print(p, 'READ', open(p, 'rb').read()[:200])\n  except OSError as e: print(p, 'absent', e.errno)\n";
    let (r, out, err) = run(&python(code));
    assert!(r.success(), "{} {err}", r.explain());
    for p in [
        "/etc/shadow",
        "/root",
        "/home",
        "/var/run",
        "/run",
        "/sys",
        "/tmp/x",
    ] {
        assert!(out.contains(&format!("{p} absent 2")), "{p}: {out}");
    }
    // PID 1 is the sandbox's own stage 2, with an empty environment.
    assert!(
        out.contains("/proc/1/environ READ b''") || out.contains("/proc/1/environ absent"),
        "{out}"
    );
}

#[test]
fn the_whole_tree_shares_one_memory_limit() {
    // 8 children of 400 MB each under 512 MiB: each fits RLIMIT_AS, together they do not.
    let code = "import os,time\npids=[]\nfor i in range(8):\n  pid=os.fork()\n  if pid==0:\n    b=b'\\x01'*(400<<20)\n    time.sleep(3)\n    os._exit(0)\n  pids.append(pid)\nbad=0\nfor p in pids:\n  _,st=os.waitpid(p,0)\n  if st!=0: bad+=1\nprint('killed', bad)\nraise SystemExit(1 if bad else 0)\n";
    let mut s = python(code);
    s.limits.memory_bytes = 512 << 20;
    let (r, out, err) = run(&s);
    assert_eq!(
        r.memory_scope,
        MemoryScope::Tree,
        "no writable memory cgroup here"
    );
    assert!(!r.success(), "{out} {err}");
    assert!(r.memory_limit_hits > 0, "{:?} {out}", r.outcome);
    assert!(r.explain().contains("memory limit"), "{}", r.explain());
}

#[test]
fn the_scratch_tmpfs_stops_at_its_cap() {
    let dir = open_tempdir();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let mut s = spec(
        "/bin/sh",
        &[
            "-c",
            &format!(
                "dd if=/dev/zero of={}/fill bs=1M count=64 2>&1; ls -l {}; echo done",
                scratch.display(),
                scratch.display()
            ),
        ],
    );
    s.scratch = Some(scratch.clone());
    s.limits.scratch_bytes = 8 << 20;
    let (r, out, err) = run(&s);
    assert!(r.success(), "{} {err}", r.explain());
    assert!(out.contains("No space left on device"), "{out}");
    // Nothing of it reached the host.
    assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0);
}

#[test]
fn a_daemon_does_not_outlive_the_run() {
    let marker = format!("{}.5151", std::process::id());
    let s = spec(
        "/bin/sh",
        &[
            "-c",
            &format!("setsid sleep {marker} > /dev/null 2>&1 & exit 0"),
        ],
    );
    let (r, _, _) = run(&s);
    assert!(r.success(), "{}", r.explain());
    std::thread::sleep(Duration::from_millis(200));
    let left = common::survivors(&marker);
    assert!(left.is_empty(), "survivors: {left:?}");
}

#[test]
fn device_nodes_are_exposed_only_when_asked() {
    let dir = open_tempdir();
    let node = dir.path().join("nvidia0");
    // A character device with the numbers of /dev/null stands in for a GPU.
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    // As NVIDIA's nodes are: read-write for all (mknod applies the umask).
    std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o666)).unwrap();
    let check = format!(
        "if [ -c {n} ] && echo x > {n}; then echo PRESENT; else echo ABSENT; fi; echo DEV: $(ls /dev)",
        n = node.display()
    );
    let (r, out, err) = run(&spec("/bin/sh", &["-c", &check]));
    assert!(r.success(), "{} {err}", r.explain());
    assert!(out.contains("ABSENT"), "{out}");
    let dev = out.lines().find(|l| l.starts_with("DEV:")).unwrap();
    assert_eq!(
        dev,
        "DEV: fd full null random shm stderr stdin stdout urandom zero"
    );
    let mut s = spec("/bin/sh", &["-c", &check]);
    s.devices = vec![node.clone()];
    let (r, out, err) = run(&s);
    assert!(r.success(), "{} {err}", r.explain());
    assert!(out.contains("PRESENT"), "{out} {err}");
}

/// Runs the helper binary by hand (`rampart-sandbox-exec SPEC.json`) under `wrapper`.
fn run_exec(wrapper: &[&str], s: &Spec) -> (bool, String) {
    let dir = open_tempdir();
    let bin = dir.path().join("rampart-sandbox-exec");
    std::fs::copy(env!("CARGO_BIN_EXE_rampart-sandbox-exec"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(s).unwrap()).unwrap();
    std::fs::set_permissions(&spec_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = std::process::Command::new(wrapper[0]);
    cmd.args(&wrapper[1..]).arg(&bin).arg(&spec_path);
    let o = cmd.output().unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn as_root_without_cgroups_a_fork_bomb_is_held() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs as root, as CI does"
    );
    // A container without cgroup delegation: a private mount namespace with every cgroup
    // hierarchy unmounted.
    let wrapper = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "for d in $(awk '$3 ~ /^cgroup/ {print $2}' /proc/self/mounts | sort -r); do umount -l \"$d\"; done; if awk '$3 ~ /^cgroup/' /proc/self/mounts | grep -q .; then echo STILL-MOUNTED; exit 9; fi; exec \"$0\" \"$@\"",
    ];
    let (ok, out) = run_exec(&wrapper, &spec("/bin/sh", &["-c", "echo clean run; id -u"]));
    assert!(ok, "{out}");
    assert!(out.contains("clean run"), "{out}");
    let code = "import os,time\nn=0\ntry:\n  for i in range(500):\n    pid=os.fork()\n    if pid==0:\n      time.sleep(2); os._exit(0)\n    n+=1\nexcept OSError as e:\n  print('refused errno', e.errno)\nprint('forked', n)\n";
    let mut s = python(code);
    s.limits.processes = 20;
    let (_, out) = run_exec(&wrapper, &s);
    assert!(out.contains("refused errno 11"), "{out}");
    let forked: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("forked "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(forked < 20, "{forked} forks under a limit of 20: {out}");
}

#[test]
fn an_unprivileged_caller_runs_in_a_user_namespace() {
    let wrapper = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ];
    let (ok, out) = run_exec(
        &wrapper,
        &spec(
            "/bin/sh",
            &[
                "-c",
                "echo uid=$(id -u); cat /etc/shadow 2>&1; grep CapEff /proc/self/status",
            ],
        ),
    );
    assert!(ok, "{out}");
    assert!(out.contains("uid=0"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains("No such file"), "{out}");
}

#[test]
fn without_a_memory_cgroup_the_sandbox_accounts_the_trees_memory() {
    // An unprivileged caller has no writable memory cgroup: stage 1 sums the tree itself.
    let code = "import os,time\nfor i in range(8):\n  if os.fork()==0:\n    b=b'\\x01'*(400<<20)\n    time.sleep(5)\n    os._exit(0)\ntime.sleep(6)\nprint('NOT STOPPED')\n";
    let mut s = python(code);
    s.limits.memory_bytes = 512 << 20;
    let wrapper = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ];
    let (ok, out) = run_exec(&wrapper, &s);
    assert!(!ok, "{out}");
    assert!(
        out.contains("stopped the program at its memory limit"),
        "{out}"
    );
    assert!(!out.contains("NOT STOPPED"), "{out}");
}

#[test]
fn the_output_is_bounded_while_the_program_runs() {
    let dir = open_tempdir();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Bytes: 1 MiB at a time, well past an 8 MiB bound, never reaching collection.
    let code = format!(
        "import os,time\nfor i in range(64):\n  open(os.path.join({:?}, f'part{{i}}'), 'wb').write(b'\\x01' * (1 << 20))\n  time.sleep(0.02)\nprint('NOT STOPPED')\n",
        out_dir.display().to_string()
    );
    let mut s = python(&code);
    s.write = vec![out_dir.clone()];
    s.limits.output_bytes = 8 << 20;
    let (r, out, _) = run(&s);
    assert!(
        matches!(&r.outcome, Outcome::Stopped { limit, .. } if limit == "output"),
        "{:?} {out}",
        r.outcome
    );
    assert!(!out.contains("NOT STOPPED"));
    let written: u64 = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(written < 24 << 20, "{written} bytes written");
    // Files: ten thousand empty ones are enough to stop it.
    let many = dir.path().join("many");
    std::fs::create_dir(&many).unwrap();
    let code = format!(
        "import os\nfor i in range(200000):\n  open(os.path.join({:?}, str(i)), 'w').close()\nprint('NOT STOPPED')\n",
        many.display().to_string()
    );
    let mut s = python(&code);
    s.write = vec![many.clone()];
    let (r, out, _) = run(&s);
    assert!(
        matches!(&r.outcome, Outcome::Stopped { limit, .. } if limit == "output"),
        "{:?} {out}",
        r.outcome
    );
    assert!(r.explain().contains("entries"), "{}", r.explain());
}

#[test]
fn a_killed_runs_cgroup_is_removed_by_the_next_run() {
    assert!(nix::unistd::geteuid().is_root(), "CI runs this as root");
    // The pids hierarchy of this machine (cgroup v1 here; v2 has no separate mount).
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(root) = mounts.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let opts = right.split(' ').nth(2)?;
        (right.starts_with("cgroup ") && opts.split(',').any(|o| o == "pids"))
            .then(|| PathBuf::from(left.split(' ').nth(4).unwrap()))
    }) else {
        panic!("no pids cgroup hierarchy on this machine: {mounts}");
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own = own
        .lines()
        .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_owned()))
        .unwrap();
    let parent = root.join(own.trim_start_matches('/'));
    // A pid that is not running (the kernel's maximum is never a live one here).
    let stale = parent.join("rampart-sandbox-4194304-0");
    std::fs::create_dir(&stale).unwrap();
    let (r, _, _) = run(&spec("/bin/true", &[]));
    assert!(r.success());
    assert!(!stale.exists(), "{} was left", stale.display());
}

#[test]
fn stage_two_is_out_of_the_programs_reach() {
    // PID 1 is stage 2: its memory, its descriptors (the status socket) and its root.
    let code = "import os\nfor p in ('/proc/1/mem', '/proc/1/fd/0', '/proc/1/environ'):\n  try:\n    f = open(p, 'rb'); print('OPENED', p, f.read(16))\n  except OSError as e: print('refused', p, e.errno)\ntry:\n  print('FDS', os.listdir('/proc/1/fd'))\nexcept OSError as e: print('refused fds', e.errno)\n";
    let (r, out, err) = run(&python(code));
    assert!(r.success(), "{} {err}", r.explain());
    assert!(!out.contains("OPENED /proc/1/mem"), "{out}");
    assert!(!out.contains("OPENED /proc/1/fd/0"), "{out}");
    assert!(!out.contains("FDS"), "{out}");
}

#[test]
fn a_link_to_a_socket_directory_is_refused_like_the_directory() {
    let dir = open_tempdir();
    let real = dir.path().join("run");
    std::fs::create_dir(&real).unwrap();
    let _rx = listen(&real.join("docker.sock"));
    std::os::unix::fs::symlink(&real, dir.path().join("innocent")).unwrap();
    std::os::unix::fs::symlink(real.join("docker.sock"), dir.path().join("data.csv")).unwrap();
    for p in ["innocent", "data.csv"] {
        let mut s = spec("/bin/true", &[]);
        s.read.push(dir.path().join(p));
        let e = sandbox().run(&s, &mut |_, _| {}).unwrap_err();
        assert!(e.to_string().contains("socket"), "{p}: {e}");
    }
}
