//! `rampart trust add | list | remove`.

use std::fs;

use crate::Scratch;

#[test]
fn add_list_remove_round_trip_keeps_policy_comments() {
    let s = Scratch::init();
    let other = Scratch::init();
    other
        .rampart(&["keys", "export-public", "-o", "alice.pub.pem"])
        .assert()
        .success();
    let alice = other.path().join("alice.pub.pem");
    let fp = other.json(&["keys", "show"])["signing_key"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();

    let added = s.json(&["trust", "add", alice.to_str().unwrap()]);
    assert_eq!(added["trusted"]["name"], "alice");
    assert_eq!(added["trusted"]["fingerprint"], fp.as_str());
    let listed = s.json(&["trust", "list"]);
    let names: Vec<_> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["home", "alice"]);
    assert!(
        fs::read_to_string(s.home().join("rampart.toml"))
            .unwrap()
            .contains("# Promotion gates.")
    );

    // The same key again, under another name: refused, exit 2.
    let (code, _, err) = s.run(&["trust", "add", alice.to_str().unwrap(), "--name", "alice2"]);
    assert_eq!(code, 2);
    assert!(err.contains("already"), "{err}");

    // Remove by fingerprint.
    let removed = s.json(&["trust", "remove", &fp]);
    assert_eq!(removed["removed"]["name"], "alice");
    assert_eq!(
        s.json(&["trust", "list"])["keys"].as_array().unwrap().len(),
        1
    );
    let (code, _, err) = s.run(&["trust", "remove", "alice"]);
    assert_eq!(code, 2);
    assert!(err.contains("trust list"), "{err}");

    // Every change is on record.
    let (_, shown, _) = s.run(&["--format", "json", "audit", "show", "--action", "trust"]);
    let actions: Vec<String> = shown
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}:{}",
                v["action"].as_str().unwrap(),
                v["outcome"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        ["trust.add:ok", "trust.add:denied", "trust.remove:ok"]
    );
}

#[test]
fn bad_public_keys_are_input_errors() {
    let s = Scratch::init();
    fs::write(
        s.path().join("junk.pem"),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let (code, _, err) = s.run(&["trust", "add", "junk.pem"]);
    assert_eq!(code, 2);
    assert!(err.contains("junk.pem") && err.contains("P-256"), "{err}");
    // A private key offered as a public key is refused and not echoed.
    let (code, _, err) = s.run(&["trust", "add", ".rampart/keys/signing.key.pem"]);
    assert_eq!(code, 2);
    assert!(!err.contains("BEGIN PRIVATE KEY"), "{err}");
    let (code, _, err) = s.run(&["trust", "add", "missing.pem"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.pem"), "{err}");
}

#[test]
fn policy_with_secrets_or_typos_is_refused() {
    let s = Scratch::init();
    let policy = s.home().join("rampart.toml");
    let original = fs::read_to_string(&policy).unwrap();
    fs::write(
        &policy,
        original.replace("checkpoint_every = 100", "checkpoint_evry = 100"),
    )
    .unwrap();
    let (code, _, err) = s.run(&["trust", "list"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("checkpoint_evry") && err.contains("rampart.toml"),
        "{err}"
    );
    let key = fs::read_to_string(s.home().join("keys/age.key")).unwrap();
    fs::write(
        &policy,
        format!("# oops\n# {}\n{original}", key.lines().last().unwrap()),
    )
    .unwrap();
    let (code, _, err) = s.run(&["trust", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("private key material"), "{err}");
    assert!(!err.contains(key.lines().last().unwrap()), "{err}");
}
