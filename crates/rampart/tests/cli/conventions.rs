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

/// `-q` silences every human summary — the exit status tells the result — while what a command
/// exists to print (a listing, an exported key, a new token, predictions) still prints, and
/// errors still go to stderr.
#[test]
fn quiet_means_quiet() {
    let s = Scratch::new();
    let mut csv = String::from("x,y,label\n");
    for i in 0..60 {
        let c = if i % 2 == 0 { 0.0 } else { 5.0 };
        csv.push_str(&format!("{},{},{}\n", c + f64::from(i % 7) * 0.1, c, i % 2));
    }
    std::fs::write(s.path().join("d.csv"), csv).unwrap();
    std::fs::write(s.path().join("w.bin"), vec![3u8; 64]).unwrap();
    // Another signer's key (P-384, made by openssl) to trust.
    for args in [
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "other.pem",
        ][..],
        &["ec", "-in", "other.pem", "-pubout", "-out", "other.pub.pem"][..],
    ] {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .current_dir(s.path())
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let silent: &[&[&str]] = &[
        &["init"],
        &[
            "ml",
            "train",
            "--data",
            "d.csv",
            "--label",
            "label",
            "--model",
            "logistic",
            "-o",
            "m.safetensors",
        ],
        &[
            "ml",
            "eval",
            "--model",
            "m.safetensors",
            "--data",
            "d.csv",
            "--label",
            "label",
        ],
        &[
            "ml",
            "predict",
            "--model",
            "m.safetensors",
            "--data",
            "d.csv",
            "-o",
            "p.csv",
        ],
        &["sign", "w.bin"],
        &["verify", "w.bin"],
        &["scan", "m.safetensors"],
        &["keys", "export-public", "-o", "home.pub.pem"],
        &["trust", "add", "other.pub.pem", "--name", "other"],
        &["trust", "remove", "other"],
        &["data", "roots", "add", "."],
        &["data", "infer-schema", "d.csv", "-o", "schema.toml"],
        &["data", "validate", "d.csv", "--schema", "schema.toml"],
        &["data", "pii", "scan", "d.csv"],
        &["audit", "verify"],
    ];
    for args in silent {
        let mut all = vec!["-q"];
        all.extend_from_slice(args);
        let (code, out, err) = s.run(&all);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        assert_eq!(out, "", "{args:?} printed a summary under -q");
        assert!(
            !err.contains("wrote") && !err.contains("WARN"),
            "{args:?}: {err}"
        );
    }
    // Without -q the same commands do say something (so the test can fail).
    let (_, out, _) = s.run(&["sign", "w.bin"]);
    assert!(out.contains("signed"), "{out}");
    let (_, out, _) = s.run(&[
        "ml",
        "eval",
        "--model",
        "m.safetensors",
        "--data",
        "d.csv",
        "--label",
        "label",
    ]);
    assert!(!out.is_empty());

    // Products print under -q.
    let (code, out, _) = s.run(&["-q", "keys", "export-public"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("-----BEGIN PUBLIC KEY-----"), "{out}");
    let (code, out, _) = s.run(&["-q", "apikey", "create", "--role", "predict"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 1, "only the token: {out}");
    let (_, out, _) = s.run(&["-q", "model", "list"]);
    assert!(out.starts_with("MODEL"), "{out}");
    let (_, out, _) = s.run(&[
        "-q",
        "ml",
        "predict",
        "--model",
        "m.safetensors",
        "--data",
        "d.csv",
        "-o",
        "-",
    ]);
    assert!(out.lines().count() > 60, "{out}");
    let (_, out, _) = s.run(&["-q", "--format", "json", "scan", "m.safetensors"]);
    assert!(out.starts_with('{'), "{out}");
    // Errors still reach stderr.
    let (code, out, err) = s.run(&["-q", "verify", "nothing-here"]);
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert!(err.contains("nothing-here"), "{err}");
}

/// Every command of the README's tour exists, and every flag the tour shows for it is one the
/// command takes (checked against its `--help`), so the tour cannot drift from the CLI.
#[test]
fn the_readme_tour_matches_the_cli() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .unwrap();
    let s = Scratch::new();
    let mut checked = 0;
    for line in readme.lines().filter(|l| l.starts_with("| `rampart ")) {
        let span = line
            .trim_start_matches("| `")
            .split('`')
            .next()
            .unwrap()
            .replace("\\|", "|");
        let mut tokens = span.split_whitespace().skip(1).peekable();
        let mut words = Vec::new();
        while let Some(t) = tokens.peek() {
            let first = t.split('|').next().unwrap();
            if first.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !first.starts_with('-')
            {
                words.push(first.to_owned());
                tokens.next();
            } else {
                break;
            }
        }
        let flags: Vec<String> = span
            .split(|c: char| c.is_whitespace() || "[]()|…".contains(c))
            .filter(|t| t.starts_with('-') && t.len() > 1 && t != &"--")
            .map(|t| t.trim_end_matches('=').to_owned())
            .collect();
        let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
        args.push("--help");
        let (code, help, err) = s.run(&args);
        assert_eq!(
            code,
            0,
            "README: `{span}`: `rampart {}` is not a command: {err}",
            words.join(" ")
        );
        for f in &flags {
            let shown = if f.starts_with("--") {
                help.contains(&format!("{f} "))
                    || help.contains(&format!("{f}\n"))
                    || help.contains(&format!("{f}="))
            } else {
                help.contains(&format!("{f}, ")) || help.contains(&format!("{f} "))
            };
            assert!(
                shown,
                "README: `{span}`: `rampart {}` takes no {f}\n{help}",
                words.join(" ")
            );
        }
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} tour rows found");
}

/// The command files only parse, call and print: what two commands share lives in a library
/// or in one of the binary's shared modules (`context`, `report`, `unlock`, `outfile`,
/// `hyper`), never in another command's file.
#[test]
fn no_command_file_imports_another() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd");
    let mut offenders = Vec::new();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "mod.rs") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if code.contains("crate::cmd::") || code.contains("super::") {
                offenders.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        files > 10,
        "read {files} command files from {}",
        dir.display()
    );
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}
