//! `rampart data roots | check`: the policy edits, each refusal (exit 2, named rule, audited)
//! and acceptance through `..` and inside symlinks.

use std::os::unix::fs::symlink;

use crate::Scratch;

#[test]
fn roots_are_managed_and_checked_on_the_real_path() {
    let s = Scratch::init();
    std::fs::create_dir_all(s.path().join("datasets/a")).unwrap();
    std::fs::create_dir_all(s.path().join("private")).unwrap();
    std::fs::write(s.path().join("datasets/a/train.csv"), "x\n1\n").unwrap();
    std::fs::write(s.path().join("private/secret.csv"), "x\n2\n").unwrap();

    // Nothing is authorised until a root is added.
    let (code, _, err) = s.run(&["data", "check", "datasets/a/train.csv"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("data.roots") && err.contains("rampart data roots add"),
        "{err}"
    );

    let v = s.json(&["data", "roots", "add", "datasets"]);
    let real = std::fs::canonicalize(s.path().join("datasets")).unwrap();
    assert_eq!(v["authorised"], real.display().to_string());
    let v = s.json(&["data", "roots", "list"]);
    assert_eq!(v["roots"], serde_json::json!([real.display().to_string()]));
    let (code, _, err) = s.run(&["data", "roots", "add", "datasets"]);
    assert_eq!(code, 2, "adding twice: {err}");
    let (code, _, err) = s.run(&["data", "roots", "add", "datasets/a/train.csv"]);
    assert_eq!(code, 2, "a file is not a root: {err}");

    let v = s.json(&["data", "check", "datasets/a/../a/train.csv"]);
    assert_eq!(v["authorised"], true);
    symlink(
        s.path().join("datasets/a/train.csv"),
        s.path().join("datasets/link.csv"),
    )
    .unwrap();
    assert_eq!(
        s.json(&["data", "check", "datasets/link.csv"])["authorised"],
        true
    );

    for escape in [
        "datasets/../private/secret.csv",
        "datasets/evil.csv",
        "datasets/evil-dir/secret.csv",
    ] {
        if escape == "datasets/evil.csv" {
            symlink(s.path().join("private/secret.csv"), s.path().join(escape)).unwrap();
        }
        if escape == "datasets/evil-dir/secret.csv" {
            symlink(s.path().join("private"), s.path().join("datasets/evil-dir")).unwrap();
        }
        let (code, _, err) = s.run(&["data", "check", escape]);
        assert_eq!(code, 2, "{escape}: {err}");
        assert!(
            err.contains(escape) && err.contains("outside every data root"),
            "{err}"
        );
    }
    let (code, _, err) = s.run(&["data", "check", "/dev/null"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("data.file-types") || err.contains("data.roots"),
        "{err}"
    );

    // Every decision is in the audit log, refusals included.
    let log = std::fs::read_to_string(s.home().join("audit/audit.jsonl")).unwrap();
    assert!(log.contains("\"data.roots.add\""));
    assert!(log.matches("\"data.access\"").count() >= 6, "{log}");
    assert!(log.contains("denied"), "{log}");
    s.rampart(&["audit", "verify"]).assert().success();

    s.json(&["data", "roots", "remove", "datasets"]);
    assert_eq!(
        s.json(&["data", "roots", "list"])["roots"],
        serde_json::json!([])
    );
    let (code, ..) = s.run(&["data", "check", "datasets/a/train.csv"]);
    assert_eq!(code, 2);
    let (code, ..) = s.run(&["data", "roots", "remove", "datasets"]);
    assert_eq!(code, 2, "removing what is not listed");
}
