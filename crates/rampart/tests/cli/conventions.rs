//! Conventions every command follows: exit codes, one-line errors with hints, JSON errors,
//! completions, JSON logs.

use crate::Scratch;

#[test]
fn usage_errors_exit_2_without_backtraces() {
    let s = Scratch::new();
    let (code, _, err) = s.run(&["no-such-command"]);
    assert_eq!(code, 2);
    assert!(err.contains("unrecognized subcommand"), "{err}");
    let (code, _, _) = s.run(&["--format", "yaml", "keys", "show"]);
    assert_eq!(code, 2);
    let (code, out, _) = s.run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: rampart"));
}

#[test]
fn missing_home_is_an_input_error_with_a_hint() {
    let s = Scratch::new();
    let (code, out, err) = s.run(&["keys", "show"]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: no rampart home at .rampart") && err.contains("rampart init"),
        "{err}"
    );
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
    let (code, _, err) = s.run(&["--format", "json", "audit", "verify"]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&err).unwrap();
    assert_eq!(v["exit_code"], 2);
    assert!(v["error"].as_str().unwrap().contains("no rampart home"));
}

#[test]
fn completions_for_each_shell() {
    let s = Scratch::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, out, _) = s.run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}");
        assert!(out.contains("rampart") && out.contains("audit"), "{shell}");
    }
}

#[test]
fn json_logs_are_json_lines() {
    let s = Scratch::init();
    std::fs::set_permissions(
        s.home().join("keys/signing.key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    // The checkpoint at the end of the command cannot be signed: a warning, in JSON.
    let (_, _, err) = s.run(&[
        "--log-format",
        "json",
        "keys",
        "export-public",
        "-o",
        "x.pem",
    ]);
    let warnings: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w["level"] == "WARN" && w["message"].as_str().unwrap().contains("checkpoint")),
        "{err}"
    );
    let (_, _, err) = s.run(&["-q", "keys", "export-public", "-o", "y.pem"]);
    assert!(!err.contains("WARN"), "{err}");
}
