//! `rampart init` and `rampart keys`: layout, permissions, refusals, where secrets may appear.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use crate::Scratch;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_creates_the_layout_with_private_permissions() {
    let s = Scratch::new();
    let out = s.json(&["init"]);
    let home = s.home();
    assert_eq!(out["home"], ".rampart");
    assert_eq!(out["policy_written"], true);
    assert!(
        out["signing_key"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(out["age_recipient"].as_str().unwrap().starts_with("age1"));
    for dir in ["", "keys", "audit"] {
        assert_eq!(mode(&home.join(dir)), 0o700, "{dir}");
    }
    for key in [
        "keys/signing.key.pem",
        "keys/age.key",
        "audit/audit.jsonl",
        "audit/checkpoints.jsonl",
    ] {
        assert_eq!(mode(&home.join(key)), 0o600, "{key}");
    }
    let pem = fs::read_to_string(home.join("keys/signing.key.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let age = fs::read_to_string(home.join("keys/age.key")).unwrap();
    assert!(age.contains("# public key: age1"));
    // The policy trusts the new key under the name "home".
    let policy = fs::read_to_string(home.join("rampart.toml")).unwrap();
    assert!(policy.contains(out["signing_key"]["fingerprint"].as_str().unwrap()));
    // The init is on record and sealed by a checkpoint.
    let report = s.json(&["audit", "verify"]);
    assert_eq!(report["failure"], serde_json::Value::Null);
    assert!(report["checkpoints"].as_u64().unwrap() >= 1);
}

#[test]
fn second_init_refuses_and_changes_nothing() {
    let s = Scratch::init();
    let key = fs::read(s.home().join("keys/signing.key.pem")).unwrap();
    let age = fs::read(s.home().join("keys/age.key")).unwrap();
    let (code, _, err) = s.run(&["init"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("already initialised") && err.contains("never overwrites"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(
        fs::read(s.home().join("keys/signing.key.pem")).unwrap(),
        key
    );
    assert_eq!(fs::read(s.home().join("keys/age.key")).unwrap(), age);
    // The refusal is audited.
    let (_, shown, _) = s.run(&["--format", "json", "audit", "show", "--action", "home.init"]);
    assert!(
        shown.lines().any(|l| l.contains(r#""outcome":"denied""#)),
        "{shown}"
    );
}

#[test]
fn init_honours_home_flag_and_env() {
    let s = Scratch::new();
    s.rampart(&["init", "--home", "flag-home"])
        .assert()
        .success();
    assert!(s.path().join("flag-home/keys/signing.key.pem").is_file());
    s.rampart(&["init"])
        .env("RAMPART_HOME", s.path().join("env-home"))
        .assert()
        .success();
    assert!(s.path().join("env-home/rampart.toml").is_file());
    assert!(!s.home().exists());
}

#[test]
fn loose_key_permissions_are_refused() {
    let s = Scratch::init();
    for (file, mode) in [("keys/signing.key.pem", 0o644), ("keys/age.key", 0o640)] {
        let path = s.home().join(file);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let (code, _, err) = s.run(&["keys", "show"]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("too open") && err.contains("chmod 600"),
            "{err}"
        );
        assert!(err.contains(file), "{err}");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    s.rampart(&["keys", "show"]).assert().success();
}

#[test]
fn keys_come_from_env_or_dotenv_files() {
    let s = Scratch::init();
    let other = Scratch::init();
    let other_key = other.home().join("keys/signing.key.pem");
    let other_fp = other.json(&["keys", "show"])["signing_key"]["fingerprint"].clone();

    // RAMPART_SIGNING_KEY_FILE in the environment.
    let out = s
        .rampart(&["--format", "json", "keys", "show"])
        .env("RAMPART_SIGNING_KEY_FILE", &other_key)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signing_key"]["fingerprint"], other_fp);
    assert_eq!(
        v["signing_key"]["private_key_source"],
        other_key.display().to_string()
    );

    // The PEM itself in RAMPART_SIGNING_KEY.
    let pem = fs::read_to_string(&other_key).unwrap();
    let out = s
        .rampart(&["--format", "json", "keys", "show"])
        .env("RAMPART_SIGNING_KEY", &pem)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["signing_key"]["private_key_source"],
        "environment variable RAMPART_SIGNING_KEY"
    );
    assert_eq!(v["signing_key"]["fingerprint"], other_fp);
    assert!(!String::from_utf8_lossy(&out.stdout).contains(pem.lines().nth(1).unwrap()));

    // A .env file in the working directory.
    fs::write(
        s.path().join(".env"),
        format!("RAMPART_SIGNING_KEY_FILE={}\n", other_key.display()),
    )
    .unwrap();
    let v = s.json(&["keys", "show"]);
    assert_eq!(v["signing_key"]["fingerprint"], other_fp);
    // The environment wins over .env.
    let own = s.home().join("keys/signing.key.pem");
    let out = s
        .rampart(&["--format", "json", "keys", "show"])
        .env("RAMPART_SIGNING_KEY_FILE", &own)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["signing_key"]["private_key_source"],
        own.display().to_string()
    );
    // A broken .env is an input error naming the file, not a silent skip.
    fs::write(
        s.path().join(".env"),
        "RAMPART_SIGNING_KEY_FILE='unterminated\n",
    )
    .unwrap();
    let (code, _, err) = s.run(&["keys", "show"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(".env"), "{err}");
}

#[test]
fn private_material_never_leaves_the_key_files() {
    let s = Scratch::init();
    let other = Scratch::init();
    other
        .rampart(&["keys", "export-public", "-o", "other.pub.pem"])
        .assert()
        .success();
    let other_pub = other.path().join("other.pub.pem");
    let signing = fs::read_to_string(s.home().join("keys/signing.key.pem")).unwrap();
    let age = fs::read_to_string(s.home().join("keys/age.key")).unwrap();
    // Distinctive pieces of the private material: the PEM body lines and the age secret.
    let mut needles: Vec<String> = signing
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_owned)
        .collect();
    let age_secret = age
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_owned();
    needles.push(age_secret.clone());
    needles.push(age_secret[15..40].to_owned());

    // Exercise every command, capturing everything printed.
    let mut printed = String::new();
    for args in [
        vec!["keys", "show"],
        vec!["--format", "json", "keys", "show"],
        vec!["keys", "export-public"],
        vec!["keys", "export-public", "--age"],
        vec![
            "trust",
            "add",
            other_pub.to_str().unwrap(),
            "--name",
            "other",
        ],
        vec!["trust", "list"],
        vec!["-vvv", "audit", "verify"],
        vec!["--format", "json", "audit", "show"],
        vec!["init"],
    ] {
        let (_, out, err) = s.run(&args);
        printed.push_str(&out);
        printed.push_str(&err);
    }
    // Also with the key given through the environment, and a malformed one.
    let out = s
        .rampart(&["-vvv", "keys", "show"])
        .env("RAMPART_SIGNING_KEY", &signing)
        .output()
        .unwrap();
    printed.push_str(&String::from_utf8_lossy(&out.stdout));
    printed.push_str(&String::from_utf8_lossy(&out.stderr));
    let broken = signing.replace("A", "B");
    let out = s
        .rampart(&["keys", "show"])
        .env("RAMPART_SIGNING_KEY", &broken)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    printed.push_str(&String::from_utf8_lossy(&out.stderr));

    let mut files = Vec::new();
    let mut stack = vec![s.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with("keys/signing.key.pem") && !path.ends_with("keys/age.key") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    for needle in &needles {
        assert!(
            !printed.contains(needle.as_str()),
            "private material printed"
        );
        for file in &files {
            let text = String::from_utf8_lossy(&fs::read(file).unwrap()).into_owned();
            assert!(
                !text.contains(needle.as_str()),
                "private material in {}",
                file.display()
            );
        }
    }
}

#[test]
fn export_public_gives_pem_and_recipient() {
    let s = Scratch::init();
    let (code, pem, _) = s.run(&["keys", "export-public"]);
    assert_eq!(code, 0);
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----\n")
            && pem.ends_with("-----END PUBLIC KEY-----\n")
    );
    assert_eq!(
        pem,
        fs::read_to_string(s.home().join("keys/signing.pub.pem")).unwrap()
    );
    let (_, recipient, _) = s.run(&["keys", "export-public", "--age"]);
    assert!(recipient.trim().starts_with("age1"));
}
