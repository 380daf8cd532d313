//! `rampart encrypt | decrypt | rekey`, and interop with the `age` command-line tool (Debian
//! package `age`, installed by .ci/run). These tests fail, never skip, when `age` is missing.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Scratch;

/// The `age` CLI, or a failure that says how to get it.
fn age_cli(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("age")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `age` ({e}): apt-get install age"))
}

fn keygen(dir: &Path, name: &str) -> String {
    let out = Command::new("age-keygen")
        .args(["-o", name])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `age-keygen` ({e}): apt-get install age"));
    assert!(out.status.success());
    std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned()
}

/// Runs `age` under a pseudo-terminal (`script`), which is the only place it reads a
/// passphrase from, typing `lines` into it.
fn age_with_tty(dir: &Path, args: &str, lines: &[&str]) -> bool {
    let mut child = Command::new("script")
        .args(["-qec", &format!("age {args}"), "/dev/null"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `script` ({e}): apt-get install bsdutils"));
    let mut stdin = child.stdin.take().unwrap();
    for l in lines {
        std::thread::sleep(std::time::Duration::from_millis(700));
        stdin.write_all(format!("{l}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    drop(stdin);
    child.wait_with_output().unwrap().status.success()
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| u8::try_from(i * 7 % 251).unwrap()).collect()
}

fn recipient(s: &Scratch) -> String {
    s.run(&["keys", "export-public", "--age"])
        .1
        .trim()
        .to_owned()
}

#[test]
fn round_trip_defaults_to_the_home_identity_and_is_private() {
    let s = Scratch::init();
    let plain = data(300_000);
    std::fs::write(s.path().join("d.csv"), &plain).unwrap();
    let v = s.json(&["encrypt", "d.csv"]);
    assert_eq!(v["recipients"][0], recipient(&s));
    let ct = std::fs::read(s.path().join("d.csv.age")).unwrap();
    assert!(ct.starts_with(b"age-encryption.org/v1\n"));
    let mode = std::fs::metadata(s.path().join("d.csv.age"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Refuses to overwrite the plaintext that is still there.
    let (code, _, err) = s.run(&["decrypt", "d.csv.age"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("refusing to overwrite"), "{err}");
    std::fs::remove_file(s.path().join("d.csv")).unwrap();
    s.rampart(&["decrypt", "d.csv.age"]).assert().success();
    assert_eq!(std::fs::read(s.path().join("d.csv")).unwrap(), plain);

    // Standard output, and audited both ways.
    let out = s
        .rampart(&["decrypt", "d.csv.age", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, plain);
    let (_, log, _) = s.run(&["--format", "json", "audit", "show"]);
    for action in ["\"encrypt\"", "\"decrypt\""] {
        assert!(log.contains(action), "{action} not audited: {log}");
    }
}

#[test]
fn wrong_key_tampered_and_not_age_are_refused() {
    let s = Scratch::init();
    std::fs::write(s.path().join("d.csv"), data(200_000)).unwrap();
    let other = keygen(s.path(), "other.key");
    s.rampart(&["encrypt", "d.csv", "-r", &other, "-o", "o.age"])
        .assert()
        .success();
    let (code, _, err) = s.run(&["decrypt", "o.age", "-o", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("none of the given identities"), "{err}");
    assert!(!s.path().join("x").exists(), "no partial output");
    s.rampart(&["decrypt", "o.age", "-o", "x", "-i", "other.key"])
        .assert()
        .success();

    s.rampart(&["encrypt", "d.csv", "-o", "t.age"])
        .assert()
        .success();
    let mut ct = std::fs::read(s.path().join("t.age")).unwrap();
    let at = ct.len() - 100;
    ct[at] ^= 0x40;
    std::fs::write(s.path().join("t.age"), &ct).unwrap();
    let (code, _, err) = s.run(&["decrypt", "t.age", "-o", "y"]);
    assert_eq!(code, 2);
    assert!(err.contains("corrupt or truncated"), "{err}");
    assert!(
        !s.path().join("y").exists(),
        "no partial plaintext left behind"
    );

    let (code, _, err) = s.run(&["decrypt", "d.csv", "-o", "z"]);
    assert_eq!(code, 2);
    assert!(err.contains("not an age file"), "{err}");
    let (code, _, err) = s.run(&["encrypt", "d.csv", "-r", "age1bogus", "-o", "b.age"]);
    assert_eq!(code, 2);
    assert!(err.contains("age1bogus"), "{err}");
}

#[test]
fn age_cli_decrypts_ours_and_we_decrypt_its_files() {
    let s = Scratch::init();
    let plain = data(1_000_000);
    std::fs::write(s.path().join("d.bin"), &plain).unwrap();
    let theirs = keygen(s.path(), "their.key");

    // Ours → age: binary and armored, to a recipient of theirs.
    for armor in [false, true] {
        let mut args = vec![
            "encrypt", "d.bin", "-r", &theirs, "-o", "ours.age", "--force",
        ];
        if armor {
            args.push("--armor");
        }
        s.rampart(&args).assert().success();
        let out = age_cli(&["-d", "-i", "their.key", "ours.age"], s.path());
        assert!(
            out.status.success(),
            "age -d failed (armor {armor}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, plain);
    }

    // age → ours: to the home's recipient, binary and armored.
    let home_r = recipient(&s);
    for (flag, name) in [("-r", "cli.age"), ("-a", "cli.asc")] {
        let mut args = vec!["-r", home_r.as_str(), "-o", name];
        if flag == "-a" {
            args.insert(0, "-a");
        }
        args.push("d.bin");
        assert!(age_cli(&args, s.path()).status.success());
        let out = s.rampart(&["decrypt", name, "-o", "-"]).output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, plain);
    }
}

#[test]
fn passphrase_files_interoperate_with_the_age_cli() {
    let s = Scratch::init();
    let plain = data(100_000);
    std::fs::write(s.path().join("d.bin"), &plain).unwrap();

    // No passphrase given: a clear error, nothing written.
    let (code, _, err) = s.run(&["encrypt", "d.bin", "--passphrase", "-o", "p.age"]);
    assert_eq!(code, 2);
    assert!(err.contains("RAMPART_AGE_PASSPHRASE"), "{err}");
    s.rampart(&["encrypt", "d.bin", "--passphrase", "-o", "p.age"])
        .env("RAMPART_AGE_PASSPHRASE", "tide pool anchor")
        .assert()
        .success();
    assert!(age_with_tty(
        s.path(),
        "-d -o p.out p.age",
        &["tide pool anchor"]
    ));
    assert_eq!(std::fs::read(s.path().join("p.out")).unwrap(), plain);

    assert!(age_with_tty(
        s.path(),
        "-p -o q.age d.bin",
        &["quiet harbour", "quiet harbour"]
    ));
    // From a 0600 passphrase file; a wrong one is refused.
    std::fs::write(s.path().join("pw"), "quiet harbour\n").unwrap();
    std::fs::set_permissions(s.path().join("pw"), std::fs::Permissions::from_mode(0o600)).unwrap();
    s.rampart(&["decrypt", "q.age", "--passphrase-file", "pw", "-o", "q.out"])
        .assert()
        .success();
    assert_eq!(std::fs::read(s.path().join("q.out")).unwrap(), plain);
    let out = s
        .rampart(&["decrypt", "q.age", "-o", "r.out"])
        .env("RAMPART_AGE_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("passphrase does not decrypt"));
    // A passphrase file others can read is refused.
    std::fs::set_permissions(s.path().join("pw"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, _) = s.run(&["decrypt", "q.age", "--passphrase-file", "pw", "-o", "s.out"]);
    assert_eq!(code, 2);
}

#[test]
fn rekey_replaces_only_after_the_new_file_verifies() {
    let s = Scratch::init();
    let plain = data(400_000);
    std::fs::write(s.path().join("d.csv"), &plain).unwrap();
    s.rampart(&["encrypt", "d.csv", "-o", "d.age"])
        .assert()
        .success();
    let new_r = keygen(s.path(), "new.key");

    // Without a key for the new recipient there is no proof: refused, old file untouched.
    let before = std::fs::read(s.path().join("d.age")).unwrap();
    let (code, _, err) = s.run(&["rekey", "d.age", "-r", &new_r]);
    assert_eq!(code, 2);
    assert!(err.contains("-i FILE"), "{err}");
    assert_eq!(std::fs::read(s.path().join("d.age")).unwrap(), before);

    // A crash after writing, and after verifying: the old file is intact and still opens with
    // the old key, and no stray plaintext appears.
    for point in ["rekey:written", "rekey:verified"] {
        let out = s
            .rampart(&["rekey", "d.age", "-r", &new_r, "-i", "new.key"])
            .env("RAMPART_FAULT_INJECT", point)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(86), "{point}");
        assert_eq!(std::fs::read(s.path().join("d.age")).unwrap(), before);
        let got = s
            .rampart(&["decrypt", "d.age", "-o", "-"])
            .output()
            .unwrap();
        assert_eq!(got.stdout, plain, "{point}");
    }
    // Each crash (an exit without clean-up, as a kill) left its temporary file, and each run
    // swept the one before: one is left …
    let leftovers = || {
        std::fs::read_dir(s.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".rampart-tmp-")
            })
            .count()
    };
    assert_eq!(leftovers(), 1);

    // … and the next run sweeps them, while it writes its own.
    s.rampart(&["rekey", "d.age", "-r", &new_r, "-i", "new.key"])
        .assert()
        .success();
    assert_eq!(leftovers(), 0);
    // The home key no longer opens it; the new key does, with the age CLI too.
    let (code, _, _) = s.run(&["decrypt", "d.age", "-o", "-"]);
    assert_eq!(code, 2);
    let out = age_cli(&["-d", "-i", "new.key", "d.age"], s.path());
    assert!(out.status.success());
    assert_eq!(out.stdout, plain);
    let mode = std::fs::metadata(s.path().join("d.age"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "rekey keeps the file's mode");

    // Rekey to a passphrase, then back to the home.
    s.rampart(&["rekey", "d.age", "-i", "new.key", "--passphrase"])
        .env("RAMPART_AGE_NEW_PASSPHRASE", "rotate me")
        .assert()
        .success();
    let home_r = recipient(&s);
    s.rampart(&["rekey", "d.age", "-r", &home_r])
        .env("RAMPART_AGE_PASSPHRASE", "rotate me")
        .assert()
        .success();
    let got = s
        .rampart(&["decrypt", "d.age", "-o", "-"])
        .output()
        .unwrap();
    assert_eq!(got.stdout, plain);
}

/// A `rekey` killed with SIGKILL mid-write leaves its temporary file (nothing runs after a
/// kill); the next run in that directory removes it, and the original is intact throughout.
#[test]
fn a_killed_rekey_leaves_nothing_after_the_next_run() {
    let s = Scratch::init();
    let plain = data(64 << 20);
    std::fs::write(s.path().join("big.csv"), &plain).unwrap();
    s.rampart(&["encrypt", "big.csv", "-o", "big.age"])
        .assert()
        .success();
    let before = std::fs::read(s.path().join("big.age")).unwrap();
    let new_r = keygen(s.path(), "new.key");
    let temps = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(s.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".rampart-tmp-")
            })
            .collect()
    };
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rampart"))
        .args(["rekey", "big.age", "-r", &new_r, "-i", "new.key"])
        .current_dir(s.path())
        .env_remove("RAMPART_HOME")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it is writing (its temporary file has bytes), then kill it.
    let started = std::time::Instant::now();
    while !temps()
        .iter()
        .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "rekey ended before it could be killed"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(temps().len(), 1, "the kill left its temporary file");
    assert_eq!(std::fs::read(s.path().join("big.age")).unwrap(), before);
    // The next run sweeps it (and succeeds).
    s.rampart(&["rekey", "big.age", "-r", &new_r, "-i", "new.key"])
        .assert()
        .success();
    assert!(temps().is_empty(), "{:?}", temps());
}
