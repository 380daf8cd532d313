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

const SCHEMA: &str = "version = 1\n[label]\ncolumn = \"y\"\nclasses = [\"0\", \"1\"]\n\
[[columns]]\nname = \"id\"\ntype = \"int\"\nunique = true\n\
[[columns]]\nname = \"email\"\ntype = \"string\"\nregex = \"[a-z]+@[a-z]+\\\\.com\"\n\
[[columns]]\nname = \"y\"\ntype = \"int\"\n";

/// A home with `ds/` authorised, a schema, and a CSV with two bad rows of five.
fn validation_scratch() -> Scratch {
    scratch_with(
        SCHEMA,
        "id,email,y\n1,a@b.com,0\n2,nope,1\n3,c@d.com,1\n3,e@f.com,0\n4,g@h.com,1\n",
    )
}

/// `rampart data validate ds/d.csv --schema schema.toml -o CLEAN --quarantine REJECTS EXTRA…`.
fn validate_to(s: &Scratch, clean: &str, rejects: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "data",
        "validate",
        "ds/d.csv",
        "--schema",
        "schema.toml",
        "-o",
        clean,
        "--quarantine",
        rejects,
    ];
    args.extend_from_slice(extra);
    s.run(&args)
}

/// A home with `ds/` authorised, `schema.toml` and `ds/d.csv`.
fn scratch_with(schema: &str, csv: &str) -> Scratch {
    let s = Scratch::init();
    std::fs::create_dir_all(s.path().join("ds")).unwrap();
    std::fs::write(s.path().join("schema.toml"), schema).unwrap();
    std::fs::write(s.path().join("ds/d.csv"), csv).unwrap();
    s.rampart(&["data", "roots", "add", "ds"])
        .assert()
        .success();
    s
}

#[test]
fn validate_splits_rows_and_reconciles() {
    let s = validation_scratch();
    let (code, out, err) = validate_to(&s, "clean.csv", "rejects.csv", &[]);
    assert_eq!(code, 1, "rows were rejected: {err}");
    assert!(
        out.contains("5 rows read = 3 accepted + 2 rejected (reconciled)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(s.path().join("clean.csv")).unwrap(),
        "id,email,y\n1,a@b.com,0\n3,c@d.com,1\n4,g@h.com,1\n"
    );
    let q = std::fs::read_to_string(s.path().join("rejects.csv")).unwrap();
    assert!(q.contains("\n2,3,email,regex,"), "{q}");
    assert!(q.contains("\n4,5,id,unique,"), "{q}");
    for f in ["clean.csv", "rejects.csv"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(s.path().join(f)).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // Outputs are not overwritten without --force.
    let (code, _, err) = s.run(&[
        "data",
        "validate",
        "ds/d.csv",
        "--schema",
        "schema.toml",
        "-o",
        "clean.csv",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("refusing to overwrite"), "{err}");

    let (_, out, _) = s.run(&[
        "--format",
        "json",
        "data",
        "validate",
        "ds/d.csv",
        "--schema",
        "schema.toml",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["report"]["reconciled"], true);
    assert_eq!(v["report"]["by_column"]["id"]["unique"], 1);
    assert!(v["schema"].as_str().unwrap().starts_with("sha256:"));
}

#[test]
fn validate_refuses_unauthorised_paths_and_bad_headers() {
    let s = validation_scratch();
    std::fs::write(s.path().join("elsewhere.csv"), "id,email,y\n").unwrap();
    let (code, _, err) = s.run(&[
        "data",
        "validate",
        "elsewhere.csv",
        "--schema",
        "schema.toml",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("data.roots"), "{err}");
    let (_, log, _) = s.run(&[
        "--format",
        "json",
        "audit",
        "show",
        "--action",
        "data.access",
    ]);
    assert!(
        log.contains("\"denied\"") || log.contains("Denied") || log.contains("denied"),
        "{log}"
    );

    std::fs::write(s.path().join("ds/h.csv"), "id,mail,y\n1,a@b.com,0\n").unwrap();
    let (code, _, err) = s.run(&["data", "validate", "ds/h.csv", "--schema", "schema.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("`mail`") && err.contains("`email`"), "{err}");

    std::fs::write(
        s.path().join("bad.toml"),
        "version = 1\n[[columns]]\nname = \"id\"\ntype = \"int\"\nregex = \"x\"\n",
    )
    .unwrap();
    let (code, _, err) = s.run(&["data", "validate", "ds/d.csv", "--schema", "bad.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("column `id`: regex applies"), "{err}");
}

#[test]
fn encrypted_datasets_are_validated_in_memory_and_schemas_inferred() {
    let s = validation_scratch();
    s.rampart(&["encrypt", "ds/d.csv", "-o", "ds/d.csv.age"])
        .assert()
        .success();
    std::fs::remove_file(s.path().join("ds/d.csv")).unwrap();
    let v = {
        let (code, out, err) = s.run(&[
            "--format",
            "json",
            "data",
            "validate",
            "ds/d.csv.age",
            "--schema",
            "schema.toml",
        ]);
        assert_eq!(code, 1, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    assert_eq!(v["report"]["accepted"], 3);
    // Nothing but the encrypted file is in the dataset directory.
    let names: Vec<_> = std::fs::read_dir(s.path().join("ds"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("d.csv.age")]);

    let (code, out, err) = s.run(&["data", "infer-schema", "ds/d.csv.age", "--label", "y"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("# Proposed by"), "{out}");
    std::fs::write(s.path().join("inferred.toml"), &out).unwrap();
    let (code, _, err) = s.run(&[
        "data",
        "validate",
        "ds/d.csv.age",
        "--schema",
        "inferred.toml",
    ]);
    // The sample repeats id 3 and has a non-email, so the proposal accepts all of it.
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("name = \"y\"\ntype = \"int\""), "{out}");
}

/// Data roots mean the data: a bind mount of /etc made inside a root (as any user can in a
/// user namespace) and a hard link to a file outside the roots both pass every path check, and
/// are refused by mount and by link count. `unshare` (util-linux) runs the bind mount in a
/// private mount namespace; .ci/run installs it.
#[test]
fn bind_mounts_and_hard_links_inside_a_root_are_refused() {
    let s = Scratch::init();
    std::fs::create_dir_all(s.path().join("datasets/etcb")).unwrap();
    std::fs::write(s.path().join("outside.csv"), "x\n1\n").unwrap();
    s.rampart(&["data", "roots", "add", "datasets"])
        .assert()
        .success();

    let bin = assert_cmd::cargo::cargo_bin("rampart");
    let out = std::process::Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c"])
        .arg("mount --bind /etc datasets/etcb && exec \"$0\" data check datasets/etcb/passwd")
        .arg(&bin)
        .current_dir(s.path())
        .env_remove("RAMPART_HOME")
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare ({e}): apt-get install util-linux"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "the bind mount was accepted: {err}"
    );
    assert!(err.contains("on another mount than its root"), "{err}");

    std::fs::hard_link(
        s.path().join("outside.csv"),
        s.path().join("datasets/passwd.csv"),
    )
    .unwrap();
    let (code, _, err) = s.run(&["data", "check", "datasets/passwd.csv"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("2 hard links") && err.contains("data.allow_hard_links"),
        "{err}"
    );
    // Ingest refuses it too, and the refusal is audited.
    std::fs::write(
        s.path().join("schema.toml"),
        "version = 1\n[[columns]]\nname = \"x\"\ntype = \"int\"\n",
    )
    .unwrap();
    let (code, _, err) = s.run(&[
        "data",
        "ingest",
        "datasets/passwd.csv",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("2 hard links"), "{err}");
    let log = std::fs::read_to_string(s.home().join("audit/audit.jsonl")).unwrap();
    assert!(log.contains("hard links"), "{log}");
}

/// Outputs safe to open: formula cells in the quarantine and the redacted file get a leading
/// `'` by default; clean rows stay byte for byte unless `--safe-csv always`; `never` keeps
/// everything as read. Negative numbers are data and are never touched.
#[test]
fn csv_outputs_are_neutralised_against_formula_injection() {
    let s = scratch_with(
        "version = 1\n[[columns]]\nname = \"id\"\ntype = \"int\"\n\
         [[columns]]\nname = \"note\"\ntype = \"string\"\n\
         [[columns]]\nname = \"score\"\ntype = \"int\"\n",
        "id,note,score\n1,\"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-5\n=cmd|' /C calc'!A0,x,1\n2,@SUM(1+1),+3\n",
    );
    let validate = |mode: &str, clean: &str, rejects: &str| {
        validate_to(&s, clean, rejects, &["--safe-csv", mode])
    };
    let read = |f: &str| std::fs::read_to_string(s.path().join(f)).unwrap();

    assert_eq!(validate("auto", "c1.csv", "q1.csv").0, 1);
    let q = read("q1.csv");
    assert!(q.contains(",\"'=cmd|' /C calc'!A0,x,1\"\n"), "{q}");
    let c = read("c1.csv");
    assert!(
        c.contains("\"=HYPERLINK(") && c.contains("2,@SUM(1+1),+3"),
        "{c}"
    );

    assert_eq!(validate("always", "c2.csv", "q2.csv").0, 1);
    let c = read("c2.csv");
    assert!(
        c.contains("1,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-5\n"),
        "{c}"
    );
    assert!(c.contains("2,'@SUM(1+1),+3\n"), "{c}");

    assert_eq!(validate("never", "c3.csv", "q3.csv").0, 1);
    assert!(!read("q3.csv").contains("'=cmd"));
    assert_eq!(read("c3.csv"), read("c1.csv"));

    // The redacted file, by default.
    std::fs::write(
        s.path().join("ds/p.csv"),
        "name,email\n\"=HYPERLINK(\"\"http://evil\"\")\",bob@example.com\n",
    )
    .unwrap();
    s.rampart(&["data", "pii", "redact", "ds/p.csv", "-o", "r.csv"])
        .assert()
        .success();
    let r = read("r.csv");
    assert!(
        r.contains("'=HYPERLINK") && !r.contains("bob@example.com"),
        "{r}"
    );
}
