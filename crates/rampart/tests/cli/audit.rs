//! `rampart audit verify | show` through the CLI, including tampering and concurrent writers.

use std::fs;

use crate::Scratch;

fn lines(path: &std::path::Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &std::path::Path, lines: &[String]) {
    fs::write(path, lines.join("\n") + "\n").unwrap();
}

/// A home with a few audited actions.
fn busy_home() -> Scratch {
    let s = Scratch::init();
    for i in 0..4 {
        s.rampart(&["keys", "export-public", "-o", &format!("pub{i}.pem")])
            .assert()
            .success();
    }
    s
}

#[test]
fn verify_reports_the_first_bad_seq_and_exits_1() {
    let s = busy_home();
    s.rampart(&["audit", "verify"]).assert().success();
    let log = s.home().join("audit/audit.jsonl");
    let mut l = lines(&log);
    l[2] = l[2].replace("pub1.pem", "elsewhere.pem");
    write_lines(&log, &l);
    let (code, out, _) = s.run(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq 3") && out.contains("edited"), "{out}");
    let (code, out, _) = s.run(&["--format", "json", "audit", "verify"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failure"]["seq"], 3);
    assert_eq!(v["failure"]["kind"], "edited");
    // The failed verification did not seal the tampered chain with a new checkpoint.
    let (code, ..) = s.run(&["audit", "verify"]);
    assert_eq!(code, 1);
}

#[test]
fn truncation_and_forged_checkpoints_fail_verification() {
    let s = busy_home();
    let log = s.home().join("audit/audit.jsonl");
    let mut l = lines(&log);
    let n = l.len();
    l.truncate(n - 2);
    write_lines(&log, &l);
    let (code, out, _) = s.run(&["--format", "json", "audit", "verify"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["failure"]["kind"], "truncated");
    assert_eq!(v["failure"]["seq"], n as u64 - 1);

    let s = busy_home();
    let cps = s.home().join("audit/checkpoints.jsonl");
    let mut c = lines(&cps);
    let last = c.len() - 1;
    let v: serde_json::Value = serde_json::from_str(&c[last]).unwrap();
    let sig = v["sig"].as_str().unwrap();
    let forged = if sig.starts_with('M') {
        sig.replacen('M', "N", 1)
    } else {
        format!("M{}", &sig[1..])
    };
    c[last] = c[last].replace(sig, &forged);
    write_lines(&cps, &c);
    let (code, out, _) = s.run(&["audit", "verify"]);
    assert_eq!(code, 1);
    assert!(out.contains("not signed by a trusted key"), "{out}");
}

#[test]
fn show_filters_by_action_and_time() {
    let s = busy_home();
    let (code, out, _) = s.run(&["audit", "show", "--action", "keys"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.lines()
            .filter(|l| l.contains("keys.export-public"))
            .count(),
        4
    );
    assert!(!out.contains("home.init"));
    let (_, out, _) = s.run(&["--format", "json", "audit", "show", "--since", "2999-01-01"]);
    assert_eq!(out, "");
    let (_, out, _) = s.run(&[
        "--format",
        "json",
        "audit",
        "show",
        "--since",
        "2000-01-01T00:00:00Z",
    ]);
    assert_eq!(out.lines().count(), 5);
    let (code, _, err) = s.run(&["audit", "show", "--since", "yesterday"]);
    assert_eq!(code, 2);
    assert!(err.contains("yesterday") && err.contains("hint:"), "{err}");
}

#[test]
fn concurrent_cli_processes_keep_a_valid_chain() {
    let s = Scratch::init();
    let children: Vec<_> = (0..8)
        .map(|i| {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("rampart"));
            cmd.current_dir(s.path())
                .args(["keys", "export-public", "-o", &format!("p{i}.pem")]);
            cmd.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let v = s.json(&["audit", "verify"]);
    assert_eq!(v["failure"], serde_json::Value::Null);
    assert_eq!(v["records"], 9);
}
