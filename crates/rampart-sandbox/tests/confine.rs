//! `confine::confine_self` in a process of its own (this test binary started again, since
//! confinement cannot be undone): a path it was given stays readable, nothing else opens, no
//! TCP connection is made, and an `AF_INET` socket kills the process with `SIGSYS`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;

const ENTRY_ENV: &str = "RAMPART_TEST_CONFINE_DIR";
/// Set when the confined process may make new Unix sockets.
const SOCKETS_ENV: &str = "RAMPART_TEST_CONFINE_SOCKETS";

/// Not a test: what the confined process runs (started by the test below; on its own it
/// returns at once).
#[test]
fn confined_process_entry() {
    let Some(dir) = std::env::var_os(ENTRY_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    // Opened before: still usable after.
    let held = std::fs::File::open("/etc/hostname");
    let sockets = std::env::var_os(SOCKETS_ENV).is_some();
    let confined =
        rampart_sandbox::confine::confine_self(std::slice::from_ref(&dir), sockets).unwrap();
    println!("MARK landlock {}", confined.landlock);
    println!(
        "MARK allowed {}",
        std::fs::read_to_string(dir.join("ok.txt")).is_ok()
    );
    println!(
        "MARK other {}",
        std::fs::read_to_string("/etc/passwd").is_ok()
    );
    println!(
        "MARK write {}",
        std::fs::write(dir.join("new.txt"), b"x").is_ok()
    );
    println!("MARK held {}", held.is_ok());
    let unix = std::os::unix::net::UnixStream::pair().is_ok();
    println!("MARK unix {unix}");
    use std::io::Write as _;
    std::io::stdout().flush().unwrap();
    // Killed here when Unix sockets are allowed; refused otherwise.
    let tcp = std::net::TcpStream::connect("127.0.0.1:9");
    println!(
        "MARK tcp {}",
        tcp.map_err(|e| e.raw_os_error())
            .err()
            .flatten()
            .unwrap_or_default()
    );
    std::process::exit(0);
}

/// The confined process's marks and how it ended.
fn confined(sockets: bool) -> (Vec<String>, std::process::ExitStatus, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.txt"), b"fine").unwrap();
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "confined_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ENTRY_ENV, dir.path());
    if sockets {
        cmd.env(SOCKETS_ENV, "1");
    }
    let out = cmd.output().unwrap();
    let marks = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("MARK ").nth(1))
        .map(str::to_owned)
        .collect();
    (marks, out.status, dir)
}

#[test]
fn a_confined_process_opens_nothing_new_and_is_killed_for_a_network_socket() {
    let (marks, status, dir) = confined(true);
    assert!(marks[0].starts_with("landlock "), "{marks:?}");
    assert_eq!(
        &marks[1..],
        [
            "allowed true",
            "other false",
            "write false",
            "held true",
            "unix true"
        ],
        "{marks:?}"
    );
    assert_eq!(status.signal(), Some(libc::SIGSYS), "{status:?} {marks:?}");
    assert!(!dir.path().join("new.txt").exists());
}

/// Without new sockets, every socket call is refused (`EACCES`), Unix ones too, and the
/// process goes on.
#[test]
fn without_new_sockets_every_socket_call_is_refused_and_the_process_lives() {
    let (marks, status, _dir) = confined(false);
    assert_eq!(
        &marks[1..],
        [
            "allowed true",
            "other false",
            "write false",
            "held true",
            "unix false",
            &format!("tcp {}", libc::EACCES),
        ],
        "{marks:?}"
    );
    assert!(status.success(), "{status:?} {marks:?}");
}
