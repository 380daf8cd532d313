//! The sandbox end to end, through the crate's own helper binary.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{run, sandbox, spec};
use rampart_sandbox::Outcome;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn start_up_costs_less_than_50_ms() {
    let s = spec("/bin/true", &[]);
    // Warm the page cache first.
    assert!(run(&s).0.success());
    let sandboxed: Vec<Duration> = (0..11)
        .map(|_| {
            let t = Instant::now();
            let (r, _, _) = run(&s);
            assert!(r.success(), "{}", r.explain());
            t.elapsed()
        })
        .collect();
    let plain: Vec<Duration> = (0..11)
        .map(|_| {
            let t = Instant::now();
            assert!(
                std::process::Command::new("/bin/true")
                    .status()
                    .unwrap()
                    .success()
            );
            t.elapsed()
        })
        .collect();
    let (m, p) = (median(sandboxed), median(plain));
    eprintln!("sandboxed /bin/true: median {m:?}; plain: median {p:?}");
    assert!(
        m.saturating_sub(p) < Duration::from_millis(50),
        "sandbox start-up {m:?} (plain {p:?})"
    );
}

#[test]
fn the_program_sees_only_its_spec() {
    let mut s = spec(
        "/bin/sh",
        &[
            "-c",
            "env; echo uid=$(id -u); ls /proc | grep -c '^[0-9]'; hostname; grep -E '^(Cap(Eff|Prm|Bnd)|NoNewPrivs|Seccomp):' /proc/self/status",
        ],
    );
    s.env.push(("ONLY_THIS".into(), "1".into()));
    let (r, out, err) = run(&s);
    assert!(r.success(), "{} {err}", r.explain());
    assert_eq!(r.landlock.as_deref(), Some("fully enforced"));
    let env: Vec<&str> = out
        .lines()
        .filter(|l| l.contains('=') && !l.starts_with("uid="))
        .collect();
    assert!(env.contains(&"ONLY_THIS=1"), "{out}");
    assert!(
        env.iter().all(|l| l.starts_with("ONLY_THIS=")
            || l.starts_with("PATH=")
            || l.starts_with("PWD=")
            || l.starts_with("SHLVL=")
            || l.starts_with("_=")),
        "{env:?}"
    );
    // Without a single capability: root inside the user namespace, or (when the caller is
    // root) an unprivileged uid of its own.
    match r.run_as {
        Some(id) => {
            assert!(id >= rampart_sandbox::UNPRIVILEGED_BASE);
            assert!(out.contains(&format!("uid={id}")), "{out}");
        }
        None => assert!(out.contains("uid=0"), "{out}"),
    }
    for line in [
        "CapEff:\t0000000000000000",
        "CapPrm:\t0000000000000000",
        "CapBnd:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
    ] {
        assert!(out.contains(line), "{line} missing from {out}");
    }
    // The network namespace holds only the loopback interface, and it is down.
    let (r, net, _) = run(&spec(
        "/bin/sh",
        &[
            "-c",
            "tail -n +3 /proc/net/dev; echo routes $(tail -n +2 /proc/net/route | wc -l)",
        ],
    ));
    assert!(r.success());
    let ifaces: Vec<&str> = net
        .lines()
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .collect();
    assert_eq!(ifaces, vec!["lo"], "{net}");
    assert!(net.contains("routes 0"), "{net}");
    // A fresh PID namespace: a handful of processes, not the host's.
    let procs: usize = out
        .lines()
        .find(|l| l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty())
        .unwrap()
        .parse()
        .unwrap();
    assert!(procs <= 4, "{procs} processes visible: {out}");
    assert!(out.contains("rampart-sandbox"), "hostname: {out}");
}

#[test]
fn files_outside_the_rules_are_neither_read_nor_written() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("out");
    std::fs::create_dir(&allowed).unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "top secret").unwrap();
    let mut s = spec(
        "/bin/sh",
        &[
            "-c",
            &format!(
                "echo ok > {a}/written; cat {sec} && echo READ; echo x > {d}/escape && echo WROTE; cat /root/.profile && echo ROOT; exit 0",
                a = allowed.display(),
                sec = secret.display(),
                d = dir.path().display()
            ),
        ],
    );
    s.write = vec![allowed.clone()];
    let (r, out, err) = run(&s);
    assert!(r.success(), "{} {err}", r.explain());
    assert_eq!(
        std::fs::read_to_string(allowed.join("written")).unwrap(),
        "ok\n"
    );
    assert!(
        !out.contains("READ") && !out.contains("top secret"),
        "{out}"
    );
    assert!(
        !out.contains("WROTE") && !dir.path().join("escape").exists(),
        "{out}"
    );
    assert!(!out.contains("ROOT"), "{out}");
    // Nothing that was not given is there at all; the view around the output is read-only.
    assert!(err.contains("secret.txt: No such file"), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
}

#[test]
fn hidden_directories_are_empty_inside() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(keys.join("signing.key.pem"), "KEY").unwrap();
    let mut s = spec(
        "/bin/sh",
        &[
            "-c",
            &format!(
                "ls -a {}; cat {}/signing.key.pem; exit 0",
                keys.display(),
                keys.display()
            ),
        ],
    );
    // Even a rule that would allow reading it does not: the directory is covered.
    s.read.push(dir.path().to_path_buf());
    s.hide = vec![keys.clone()];
    let (r, out, err) = run(&s);
    assert!(r.success(), "{}", r.explain());
    assert!(!out.contains("KEY") && !out.contains("signing"), "{out}");
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn the_timeout_kills_the_whole_tree() {
    let marker = format!("{}.4242", std::process::id());
    let mut s = spec(
        "/bin/sh",
        &[
            "-c",
            &format!("(trap '' TERM; exec sleep {marker}) & sleep 100; wait"),
        ],
    );
    s.limits.wall_ms = 500;
    let t = Instant::now();
    let (r, _, _) = run(&s);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(r.outcome, Outcome::TimedOut);
    assert!(r.explain().contains("wall-clock limit"), "{}", r.explain());
    std::thread::sleep(Duration::from_millis(100));
    let left = common::survivors(&marker);
    assert!(left.is_empty(), "survivors: {left:?}");
}

#[test]
fn forbidden_system_calls_kill_the_program() {
    // unshare(2) from inside: a namespace escape attempt.
    let (r, _, _) = run(&spec("/usr/bin/unshare", &["--user", "/bin/true"]));
    assert!(
        matches!(r.outcome, Outcome::Signaled { signal, .. } if signal == libc::SIGSYS),
        "{:?}",
        r.outcome
    );
    assert!(r.explain().contains("forbids"), "{}", r.explain());
}

#[test]
fn missing_paths_are_refused_before_anything_runs() {
    let mut s = spec("/bin/true", &[]);
    s.read.push(PathBuf::from("/no/such/dir"));
    let e = sandbox().run(&s, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("/no/such/dir"), "{e}");
    let e = sandbox()
        .run(&spec("/no/such/program", &[]), &mut |_, _| {})
        .unwrap_err();
    assert!(e.to_string().contains("program"), "{e}");
}

#[test]
fn a_missing_protection_refuses_a_strict_run_and_is_reported_otherwise() {
    let mut s = spec("/bin/true", &[]);
    s.simulate_missing = vec!["seccomp".into()];
    let (r, _, _) = run(&s);
    assert!(
        matches!(&r.outcome, Outcome::SetupFailed { step, .. } if step == "seccomp"),
        "{:?}",
        r.outcome
    );
    assert!(
        r.explain().contains("could not be set up (seccomp)"),
        "{}",
        r.explain()
    );
    s.strict = false;
    let (r, _, _) = run(&s);
    assert!(r.success(), "{}", r.explain());
    assert_eq!(r.missing.len(), 1, "{:?}", r.missing);
    assert_eq!(r.missing[0].0, "seccomp");
}
