//! `rampart data pii scan | redact | reveal`, `rampart data check --schema`, `rampart data drift`,
//! and PII redaction and poisoning checks as steps of `rampart data ingest`.

use crate::Scratch;

const PEOPLE: &str = "id,name,email,notes\n\
1,Ann Lee,ann@example.com,\"call +1 415-555-2671, SSN 536-22-1234\"\n\
2,Bob Stone,bob@example.org,nothing here\n\
3,Cara Diaz,ann@example.com,card 4111 1111 1111 1111\n";

fn scratch() -> Scratch {
    let s = Scratch::init();
    std::fs::create_dir_all(s.path().join("ds")).unwrap();
    std::fs::write(s.path().join("ds/people.csv"), PEOPLE).unwrap();
    s.rampart(&["data", "roots", "add", "ds"])
        .assert()
        .success();
    s
}

fn read(s: &Scratch, rel: &str) -> String {
    std::fs::read_to_string(s.path().join(rel)).unwrap()
}

/// Appends TOML to the home's rampart.toml.
fn add_policy(s: &Scratch, toml: &str) {
    let policy = s.home().join("rampart.toml");
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str(toml);
    std::fs::write(&policy, text).unwrap();
}

fn audit_json(s: &Scratch) -> String {
    s.run(&["--format", "json", "audit", "show"]).1
}

#[test]
fn scan_reports_counts_and_masked_samples_only() {
    let s = scratch();
    let (code, out, err) = s.run(&["--format", "json", "data", "pii", "scan", "ds/people.csv"]);
    assert_eq!(code, 1, "findings exit 1: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 3);
    assert_eq!(v["by_entity"]["EMAIL"], 3);
    assert_eq!(v["by_entity"]["PHONE"], 1);
    assert_eq!(v["by_entity"]["US_SSN"], 1);
    assert_eq!(v["by_entity"]["CREDIT_CARD"], 1);
    assert_eq!(v["by_entity"]["PERSON"], 3);
    let email = &v["columns"][2];
    assert_eq!(email["column"], "email");
    assert_eq!(email["entities"]["EMAIL"]["rows"], 3);
    assert_eq!(email["entities"]["EMAIL"]["rules"]["email"], 3);
    for raw in ["ann@", "bob@", "555-2671", "536-22", "4111 1111", "Ann Lee"] {
        assert!(!out.contains(raw), "{raw} in the report");
        assert!(!audit_json(&s).contains(raw), "{raw} in the audit log");
    }
    assert!(audit_json(&s).contains("data.pii.scan"));
    // A file with nothing in it exits 0.
    std::fs::write(s.path().join("ds/clean.csv"), "a,b\n1,2\nx,y\n").unwrap();
    let (code, out, _) = s.run(&["data", "pii", "scan", "ds/clean.csv"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 findings"));
    // Only data roots are read.
    std::fs::write(s.path().join("outside.csv"), PEOPLE).unwrap();
    let (code, _, err) = s.run(&["data", "pii", "scan", "outside.csv"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("data roots") || err.contains("not inside"),
        "{err}"
    );
}

#[test]
fn redact_with_operators_per_entity_and_column() {
    let s = scratch();
    let (code, _, err) = s.run(&[
        "data",
        "pii",
        "redact",
        "ds/people.csv",
        "-o",
        "out.csv",
        "--entity",
        "EMAIL=hash",
        "--entity",
        "CREDIT_CARD=mask:4",
        "--column",
        "name=remove",
    ]);
    assert_eq!(code, 0, "{err}");
    let out = read(&s, "out.csv");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "id,name,email,notes");
    assert!(lines[1].starts_with("1,,<EMAIL:"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(",\"call <PHONE>, SSN <US_SSN>\""),
        "{}",
        lines[1]
    );
    assert!(
        lines[3].ends_with(",card **** **** **** 1111"),
        "{}",
        lines[3]
    );
    // The same address in two rows gets one pseudonym.
    let pseudo = |l: &str| l.split(',').nth(2).unwrap().to_owned();
    assert_eq!(pseudo(lines[1]), pseudo(lines[3]));
    assert_ne!(pseudo(lines[1]), pseudo(lines[2]));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(s.path().join("out.csv"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Stable across files with the same key (the home's keys/pii.key), different under another.
    std::fs::write(s.path().join("ds/other.csv"), "contact\nann@example.com\n").unwrap();
    s.rampart(&[
        "data",
        "pii",
        "redact",
        "ds/other.csv",
        "-o",
        "other.csv",
        "--default",
        "hash",
    ])
    .assert()
    .success();
    assert_eq!(
        read(&s, "other.csv").lines().nth(1).unwrap(),
        pseudo(lines[1])
    );
    let mut cmd = s.rampart(&[
        "data",
        "pii",
        "redact",
        "ds/other.csv",
        "-o",
        "other2.csv",
        "--default",
        "hash",
    ]);
    cmd.env("RAMPART_PII_KEY", "00112233445566778899aabbccddeeff");
    cmd.assert().success();
    assert_ne!(read(&s, "other2.csv"), read(&s, "other.csv"));
    // A short key, a bad operator and an unknown column are refused with exit 2.
    let mut cmd = s.rampart(&[
        "data",
        "pii",
        "redact",
        "ds/other.csv",
        "-o",
        "x.csv",
        "--default",
        "hash",
    ]);
    cmd.env("RAMPART_PII_KEY", "0011");
    cmd.assert().code(2);
    let (code, _, err) = s.run(&[
        "data",
        "pii",
        "redact",
        "ds/people.csv",
        "-o",
        "y.csv",
        "--default",
        "scramble",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("scramble"), "{err}");
    let (code, _, err) = s.run(&[
        "data",
        "pii",
        "redact",
        "ds/people.csv",
        "-o",
        "y.csv",
        "--column",
        "nope=remove",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("nope"), "{err}");
    assert!(
        !s.path().join("y.csv").exists(),
        "nothing written on refusal"
    );
    // Existing outputs are not replaced without --force.
    let (code, _, err) = s.run(&["data", "pii", "redact", "ds/people.csv", "-o", "out.csv"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn redact_with_a_schema_takes_personal_columns_whole() {
    let s = scratch();
    std::fs::write(
        s.path().join("ds/tax.csv"),
        "id,tin,city\n1,K-447193,Leeds\n2,,York\n",
    )
    .unwrap();
    std::fs::write(
        s.path().join("tax.toml"),
        "version = 1\n[[columns]]\nname = \"id\"\ntype = \"int\"\n\
         [[columns]]\nname = \"tin\"\ntype = \"string\"\nnullable = true\npersonal = true\n\
         [[columns]]\nname = \"city\"\ntype = \"string\"\n",
    )
    .unwrap();
    let redact = |extra: &[&str]| {
        let mut args = vec!["data", "pii", "redact", "ds/tax.csv", "-o", "-"];
        args.extend_from_slice(extra);
        s.run(&args)
    };
    let (code, plain, err) = redact(&[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        plain.contains("K-447193"),
        "no schema, no redaction: {plain}"
    );
    let (code, out, err) = redact(&["--schema", "tax.toml", "--column", "tin=mask:2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "id,tin,city\n1,*-****93,Leeds\n2,,York\n");
    // A schema whose personal column the file lacks names it and writes nothing.
    std::fs::write(
        s.path().join("other.toml"),
        "version = 1\n[[columns]]\nname = \"ssn\"\ntype = \"string\"\npersonal = true\n",
    )
    .unwrap();
    let (code, out, err) = redact(&["--schema", "other.toml"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("\"ssn\""), "{err}");
    assert!(!out.contains("K-447193"), "{out}");
}

#[test]
fn encrypt_then_reveal_round_trips_and_needs_the_identity() {
    let s = scratch();
    s.rampart(&[
        "data",
        "pii",
        "redact",
        "ds/people.csv",
        "-o",
        "ds/enc.csv",
        "--default",
        "encrypt",
    ])
    .assert()
    .success();
    let enc = read(&s, "ds/enc.csv");
    assert!(
        enc.contains("<EMAIL:age:") && !enc.contains("ann@"),
        "{enc}"
    );
    let (code, out, err) = s.run(&["data", "pii", "reveal", "ds/enc.csv", "-o", "-"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, PEOPLE);
    // Another home's identity cannot reveal it.
    let other = tempfile::tempdir().unwrap();
    let home2 = other.path().join("h");
    s.rampart(&["--home", home2.to_str().unwrap(), "init"])
        .assert()
        .success();
    s.rampart(&[
        "--home",
        home2.to_str().unwrap(),
        "data",
        "roots",
        "add",
        "ds",
    ])
    .assert()
    .success();
    let (code, _, err) = s.run(&[
        "--home",
        home2.to_str().unwrap(),
        "data",
        "pii",
        "reveal",
        "ds/enc.csv",
        "-o",
        "-",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn free_text_mode_and_malformed_csv() {
    let s = scratch();
    std::fs::write(
        s.path().join("ds/log.txt"),
        "user jane@example.com logged in from 10.1.2.3\nkey AKIAIOSFODNN7EXAMPLE\nnothing\n",
    )
    .unwrap();
    let (code, _, err) = s.run(&[
        "data",
        "pii",
        "redact",
        "--text",
        "ds/log.txt",
        "-o",
        "log.txt",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        read(&s, "log.txt"),
        "user <EMAIL> logged in from <IP_ADDRESS>\nkey <AWS_ACCESS_KEY>\nnothing\n"
    );
    std::fs::write(s.path().join("ds/bad.csv"), "a,b\n1,\"x\"y\n").unwrap();
    let (code, _, err) = s.run(&["data", "pii", "redact", "ds/bad.csv", "-o", "bad.csv"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("line 2") && err.contains("quarantine"),
        "{err}"
    );
    assert!(!s.path().join("bad.csv").exists());
}

/// A labelled table: x1, x2 from a seeded generator, a region, y = 1 when x1 + x2 > 1.
fn table(seed: u64, n: usize) -> Vec<String> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        #[allow(clippy::cast_precision_loss)]
        let v = (state >> 11) as f64 / (1u64 << 53) as f64;
        v
    };
    (0..n)
        .map(|i| {
            let (a, b) = (next(), next());
            let region = ["n", "s", "e", "w"][i % 4];
            format!("{i},{a:.6},{b:.6},{region},{}", u8::from(a + b > 1.0))
        })
        .collect()
}

const CHECK_SCHEMA: &str = "version = 1\n[label]\ncolumn = \"y\"\nclasses = [\"0\", \"1\"]\n\
[[columns]]\nname = \"id\"\ntype = \"int\"\nunique = true\n\
[[columns]]\nname = \"x1\"\ntype = \"float\"\n\
[[columns]]\nname = \"x2\"\ntype = \"float\"\n\
[[columns]]\nname = \"region\"\ntype = \"category\"\nallowed = [\"n\", \"s\", \"e\", \"w\"]\n\
[[columns]]\nname = \"y\"\ntype = \"int\"\n";

fn write_table(s: &Scratch, name: &str, rows: &[String]) {
    let mut text = String::from("id,x1,x2,region,y\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    std::fs::write(s.path().join("ds").join(name), text).unwrap();
}

#[test]
fn poisoning_checks_exit_1_on_planted_problems_and_0_on_clean_data() {
    let s = scratch();
    std::fs::write(s.path().join("schema.toml"), CHECK_SCHEMA).unwrap();
    write_table(&s, "ref.csv", &table(1, 2000));
    write_table(&s, "clean.csv", &table(2, 2000));
    let (code, out, err) = s.run(&[
        "data",
        "check",
        "ds/clean.csv",
        "--schema",
        "schema.toml",
        "--reference",
        "ds/ref.csv",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no check at or above"), "{out}");
    // Flip every label of the second half: label distribution and class shift fire.
    let mut flipped = table(2, 2000);
    for r in flipped.iter_mut().skip(1000) {
        if r.ends_with(",1") {
            r.replace_range(r.len() - 1.., "0");
        }
    }
    write_table(&s, "flipped.csv", &flipped);
    let (code, out, _) = s.run(&[
        "--format",
        "json",
        "data",
        "check",
        "ds/flipped.csv",
        "--schema",
        "schema.toml",
        "--reference",
        "ds/ref.csv",
    ]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["fired"], true);
    let sev = |id: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["severity"]
            .clone()
    };
    assert_eq!(sev("label-distribution"), "high");
    assert_eq!(sev("feature-shift"), "pass");
    // A flood of copies with conflicting labels, without a reference.
    let mut flood = table(2, 2000);
    let copy = flood[5].clone();
    for k in 0..60 {
        let mut r = copy.clone();
        let flip = if r.ends_with(",1") { "0" } else { "1" };
        r.replace_range(r.len() - 1.., flip);
        r.replace_range(..r.find(',').unwrap(), &(5000 + k).to_string());
        flood.push(r);
    }
    write_table(&s, "flood.csv", &flood);
    let (code, out, _) = s.run(&["data", "check", "ds/flood.csv", "--schema", "schema.toml"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("high   conflicting-duplicates"), "{out}");
    assert!(out.contains("high   near-duplicate-flood"), "{out}");
    // --fail-on decides the exit code; the audit log keeps severities, not rows.
    let (code, _, _) = s.run(&[
        "data",
        "check",
        "ds/clean.csv",
        "--schema",
        "schema.toml",
        "--fail-on",
        "low",
    ]);
    assert_eq!(code, 0);
    let (code, _, err) = s.run(&[
        "data",
        "check",
        "ds/clean.csv",
        "--schema",
        "schema.toml",
        "--fail-on",
        "extreme",
    ]);
    assert_eq!(code, 2, "{err}");
    let log = audit_json(&s);
    assert!(log.contains("data.poison-check") && log.contains("near-duplicate-flood"));
    // Without --schema, `data check` is still the location check.
    let (code, out, _) = s.run(&["data", "check", "ds/clean.csv"]);
    assert_eq!(code, 0);
    assert!(out.contains("is authorised"), "{out}");
}

#[test]
fn drift_reports_psi_and_ks_per_column() {
    let s = scratch();
    write_table(&s, "ref.csv", &table(1, 1500));
    write_table(&s, "same.csv", &table(2, 1500));
    let shifted: Vec<String> = table(2, 1500)
        .into_iter()
        .map(|r| {
            let mut f: Vec<String> = r.split(',').map(str::to_owned).collect();
            f[1] = format!("{:.6}", f[1].parse::<f64>().unwrap() + 0.5);
            f.join(",")
        })
        .collect();
    write_table(&s, "shifted.csv", &shifted);
    let (code, out, err) = s.run(&[
        "--format",
        "json",
        "data",
        "drift",
        "ds/ref.csv",
        "ds/same.csv",
        "--ignore",
        "id",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for col in ["x1", "x2", "region", "y"] {
        let c = &v["columns"][col];
        assert!(c["psi"].as_f64().unwrap() < 0.1, "{col}: {c}");
        assert_eq!(c["drift"], false);
    }
    assert!(v["columns"]["x1"]["ks_pvalue"].as_f64().unwrap() > 0.001);
    assert!(v["columns"]["region"]["ks_statistic"].is_null());
    assert!(v["columns"].get("id").is_none());
    let (code, out, _) = s.run(&[
        "--format",
        "json",
        "data",
        "drift",
        "ds/ref.csv",
        "ds/shifted.csv",
        "--bins",
        "equal-width:10",
    ]);
    assert_eq!(code, 1, "drift exits 1: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["columns"]["x1"]["drift"], true);
    assert!(v["columns"]["x1"]["ks_statistic"].as_f64().unwrap() > 0.4);
    assert_eq!(v["columns"]["x2"]["drift"], false);
    let (code, _, err) = s.run(&[
        "data",
        "drift",
        "ds/ref.csv",
        "ds/same.csv",
        "--bins",
        "quantiles",
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn ingest_redacts_and_checks_when_the_policy_says_so() {
    let s = scratch();
    let schema = "version = 1\n[[columns]]\nname = \"id\"\ntype = \"int\"\nunique = true\n\
        [[columns]]\nname = \"name\"\ntype = \"string\"\n[[columns]]\nname = \"email\"\ntype = \"string\"\n\
        [[columns]]\nname = \"notes\"\ntype = \"string\"\npersonal = true\n";
    std::fs::write(s.path().join("people.toml"), schema).unwrap();
    add_policy(
        &s,
        "\n[data.pii]\non_ingest = true\nentities = { EMAIL = \"hash\" }\n",
    );
    let policy = s.home().join("rampart.toml");
    let (code, out, err) = s.run(&[
        "--format",
        "json",
        "data",
        "ingest",
        "ds/people.csv",
        "--schema",
        "people.toml",
        "--allow-unsigned",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stored = v["path"].as_str().unwrap();
    let (code, plain, err) = s.run(&["decrypt", stored, "-o", "-"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        plain.starts_with("id,name,email,notes\n1,<PERSON>,<EMAIL:"),
        "{plain}"
    );
    assert!(
        !plain.contains("ann@") && !plain.contains("536-22-1234"),
        "{plain}"
    );
    // The schema marks notes personal: every note goes whole, recognised or not.
    assert!(!plain.contains("nothing here"), "{plain}");
    assert!(plain.contains(",<PERSONAL_DATA>\n"), "{plain}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v["manifest"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(manifest["pii"]["by_entity"]["EMAIL"], 3);
    assert_eq!(manifest["pii"]["redacted"], manifest["pii"]["findings"]);
    let log = audit_json(&s);
    assert!(log.contains("\"EMAIL\":3"), "{log}");
    assert!(!log.contains("ann@"));

    // The poisoning checks as an ingest step: a flood of conflicting copies is refused.
    std::fs::write(s.path().join("schema.toml"), CHECK_SCHEMA).unwrap();
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text = text.replace("on_ingest = true\nentities", "on_ingest = false\nentities");
    text.push_str("\n[data.checks]\non_ingest = true\n");
    std::fs::write(&policy, text).unwrap();
    let mut flood = table(3, 1000);
    for k in 0..40 {
        let mut r = flood[0].clone();
        let flip = if r.ends_with(",1") { "0" } else { "1" };
        r.replace_range(r.len() - 1.., flip);
        r.replace_range(..r.find(',').unwrap(), &(9000 + k).to_string());
        flood.push(r);
    }
    write_table(&s, "flood.csv", &flood);
    let before = std::fs::read_dir(s.home().join("store/datasets"))
        .unwrap()
        .count();
    let (code, out, err) = s.run(&[
        "data",
        "ingest",
        "ds/flood.csv",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("nothing was stored"), "{err}");
    assert!(out.contains("conflicting-duplicates"), "{out}");
    assert_eq!(
        std::fs::read_dir(s.home().join("store/datasets"))
            .unwrap()
            .count(),
        before
    );
    write_table(&s, "fine.csv", &table(3, 1000));
    let (code, out, err) = s.run(&[
        "data",
        "ingest",
        "ds/fine.csv",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    assert_eq!(code, 0, "{out}{err}");
}

/// `rampart data drift` against numpy and scipy (the interop venv): PSI with edges at
/// `np.quantile(reference, [.1, …, .9])`, bins `(-inf, e1) [e1, e2) … [e9, +inf)`, shares
/// floored at 1e-4 without renormalising; PSI over categories; `scipy.stats.ks_2samp` in its
/// default mode, exact for the small samples and asymptotic for the large ones.
#[test]
fn drift_matches_numpy_and_scipy() {
    let s = scratch();
    let write = |name: &str, n: usize, seed: u64, shift: f64| {
        let mut state = seed;
        let mut text = String::from("x,k,c\n");
        for i in 0..n {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            #[allow(clippy::cast_precision_loss)]
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            // A skewed column with ties (k) and a continuous one (x).
            let x = (u * 10.0).powi(2) + shift;
            let k = (u * 7.0).floor() + if shift > 0.0 { 1.0 } else { 0.0 };
            let c = ["a", "b", "c", "d"][(i * 7 + usize::from(shift > 0.0) * (i % 3)) % 4];
            text.push_str(&format!("{x:.4},{k},{c}\n"));
        }
        std::fs::write(s.path().join("ds").join(name), text).unwrap();
    };
    for (n_ref, n_cur) in [(180, 130), (12_000, 10_500)] {
        write("r.csv", n_ref, 1, 0.0);
        write("c.csv", n_cur, 2, 3.0);
        let (code, out, err) =
            s.run(&["--format", "json", "data", "drift", "ds/r.csv", "ds/c.csv"]);
        assert!(code == 0 || code == 1, "{err}");
        let ours: serde_json::Value = serde_json::from_str(&out).unwrap();
        let script = r#"
import csv, json, sys
import numpy as np
from scipy import stats
d = sys.argv[1]
def cols(p):
    rows = list(csv.DictReader(open(p)))
    return {k: [r[k] for r in rows] for k in rows[0]}
r, c = cols(d + "/r.csv"), cols(d + "/c.csv")
def psi_shares(a, b):
    a, b = np.maximum(a, 1e-4), np.maximum(b, 1e-4)
    return float(np.sum((b - a) * np.log(b / a)))
def shares(v, e):
    idx = np.searchsorted(e, v, side="right")
    return np.bincount(idx, minlength=len(e) + 1) / len(v)
out = {}
for k in ("x", "k"):
    a, b = np.array(r[k], float), np.array(c[k], float)
    e = np.quantile(a, np.arange(1, 10) / 10)
    t = stats.ks_2samp(a, b)
    out[k] = {"psi": psi_shares(shares(a, e), shares(b, e)), "ks_statistic": float(t.statistic), "ks_pvalue": float(t.pvalue)}
cats = sorted(set(r["c"]) | set(c["c"]))
a = np.array([r["c"].count(x) for x in cats]) / len(r["c"])
b = np.array([c["c"].count(x) for x in cats]) / len(c["c"])
out["c"] = {"psi": psi_shares(a, b)}
print(json.dumps(out))
"#;
        let (ok, text) = crate::interop::python(
            &s.path().join("ds"),
            &format!("import sys; sys.argv=['', '.']\n{script}"),
        );
        assert!(ok, "{text}");
        let theirs: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        for col in ["x", "k", "c"] {
            let (a, b) = (&ours["columns"][col], &theirs[col]);
            let close = |x: f64, y: f64, tol: f64| {
                (x - y).abs() <= tol * y.abs().max(1e-300) || (x - y).abs() < 1e-12
            };
            assert!(
                close(a["psi"].as_f64().unwrap(), b["psi"].as_f64().unwrap(), 1e-9),
                "{col} psi: {a} vs {b}"
            );
            if col != "c" {
                assert!(
                    close(
                        a["ks_statistic"].as_f64().unwrap(),
                        b["ks_statistic"].as_f64().unwrap(),
                        1e-12
                    ),
                    "{col} D: {a} vs {b}"
                );
                assert!(
                    close(
                        a["ks_pvalue"].as_f64().unwrap(),
                        b["ks_pvalue"].as_f64().unwrap(),
                        1e-7
                    ),
                    "{col} p: {a} vs {b}"
                );
            }
        }
    }
}

/// Parquet through the same paths: scan, and redaction and checks as ingest steps; pyarrow
/// writes the input and reads the stored result back.
#[test]
fn parquet_datasets_are_scanned_redacted_and_checked() {
    let s = scratch();
    let (ok, text) = crate::interop::python(
        &s.path().join("ds"),
        "import pyarrow as pa, pyarrow.parquet as pq\n\
         n = 300\n\
         pq.write_table(pa.table({'id': list(range(n)), \
           'email': [f'user{i}@example.com' for i in range(n)], \
           'x': [float(i % 17) for i in range(n)], \
           'y': [str(i % 2) for i in range(n)]}), 'p.parquet')\n",
    );
    assert!(ok, "{text}");
    let (code, out, err) = s.run(&["--format", "json", "data", "pii", "scan", "ds/p.parquet"]);
    assert_eq!(code, 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 300);
    assert_eq!(v["by_entity"]["EMAIL"], 300);
    let schema = "version = 1\n[label]\ncolumn = \"y\"\nclasses = [\"0\", \"1\"]\n\
        [[columns]]\nname = \"id\"\ntype = \"int\"\nunique = true\n\
        [[columns]]\nname = \"email\"\ntype = \"string\"\n\
        [[columns]]\nname = \"x\"\ntype = \"float\"\n\
        [[columns]]\nname = \"y\"\ntype = \"category\"\nallowed = [\"0\", \"1\"]\n";
    std::fs::write(s.path().join("p.toml"), schema).unwrap();
    let (code, out, err) = s.run(&[
        "--format",
        "json",
        "data",
        "check",
        "ds/p.parquet",
        "--schema",
        "p.toml",
    ]);
    assert!(code == 0 || code == 1, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["rows"], 300);
    add_policy(&s, "\n[data.pii]\non_ingest = true\ndefault = \"hash\"\n");
    let (code, out, err) = s.run(&[
        "--format",
        "json",
        "data",
        "ingest",
        "ds/p.parquet",
        "--schema",
        "p.toml",
        "--allow-unsigned",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let stored = v["path"].as_str().unwrap().to_owned();
    assert!(stored.ends_with("data.parquet.age"), "{stored}");
    s.rampart(&["decrypt", &stored, "-o", "ds/back.parquet"])
        .assert()
        .success();
    let (ok, text) = crate::interop::python(
        &s.path().join("ds"),
        "import pyarrow.parquet as pq\n\
         t = pq.read_table('back.parquet')\n\
         e = t.column('email').to_pylist()\n\
         assert len(e) == 300 and all(v.startswith('<EMAIL:') for v in e), e[:3]\n\
         assert len(set(e)) == 300\n\
         assert t.column('x').to_pylist()[:3] == [0.0, 1.0, 2.0]\n\
         print('ok')\n",
    );
    assert!(ok && text.contains("ok"), "{text}");
}

/// National identifiers made and judged by python-stdnum 2.2 (an independent implementation
/// of each check digit): every valid one, written in its usual layout after its usual word, is
/// found as its entity; every one with a wrong check digit in the same place is not.
#[test]
fn national_identifiers_agree_with_python_stdnum() {
    let s = scratch();
    let venv = crate::interop::venv("venv-stdnum", &["python-stdnum==2.2"]);
    let script = r#"
import json, random, sys
from stdnum import luhn, verhoeff
from stdnum.gb import nhs
from stdnum.de import idnr
from stdnum.fr import nir
from stdnum.es import dni, nie
from stdnum.it import codicefiscale as cf
from stdnum.nl import bsn
from stdnum.in_ import aadhaar, pan
from stdnum.ca import sin
from stdnum.au import tfn
from stdnum.us import itin, ein
r = random.Random(2026)
D = lambda n: ''.join(r.choice('0123456789') for _ in range(n))
U = lambda n: ''.join(r.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZ') for _ in range(n))
def other_last(v, ok):
    for c in r.sample('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ', 36):
        w = v[:-1] + c
        if c != v[-1] and (c.isdigit() == v[-1].isdigit()) and not ok(w):
            return w
def idnr_body():
    while True:
        ds = r.sample('0123456789', 9)
        ds.insert(r.randrange(10), r.choice(ds))
        v = ''.join(ds)
        if v[0] != '0':
            return v
def gen(kind):
    if kind == 'UK_NHS':
        while True:
            v = D(9)
            for c in r.sample('0123456789', 10):
                if nhs.is_valid(v + c):
                    return v + c, nhs.is_valid, lambda x: f'NHS number {x[:3]} {x[3:6]} {x[6:]}'
    if kind == 'DE_TAX_ID':
        while True:
            v = idnr_body()
            for c in r.sample('0123456789', 10):
                if idnr.is_valid(v + c):
                    return v + c, idnr.is_valid, lambda x: f'Steuer-ID {x[:2]} {x[2:5]} {x[5:8]} {x[8:]}'
    if kind == 'FR_NIR':
        v = r.choice('12') + D(2) + '%02d' % r.randint(1, 12) + r.choice(['%02d' % r.randint(1, 95), '2A', '2B']) + D(6)
        v += nir.calc_check_digits(v)
        return v, nir.is_valid, lambda x: f'NIR {x[0]} {x[1:3]} {x[3:5]} {x[5:7]} {x[7:10]} {x[10:13]} {x[13:]}'
    if kind == 'ES_NIF':
        v = D(8); v += dni.calc_check_digit(v)
        return v, dni.is_valid, lambda x: f'DNI {x}'
    if kind == 'ES_NIE':
        v = r.choice('XYZ') + D(7); v += nie.calc_check_digit(v)
        return v, nie.is_valid, lambda x: f'NIE {x}'
    if kind == 'IT_FISCAL_CODE':
        v = U(6) + D(2) + r.choice('ABCDEHLMPRST') + '%02d' % (r.randint(1, 28) + r.choice([0, 40])) + U(1) + D(3)
        v += cf.calc_check_digit(v)
        return v, cf.is_valid, lambda x: f'codice fiscale {x}'
    if kind == 'NL_BSN':
        while True:
            v = D(8)
            for c in r.sample('0123456789', 10):
                if bsn.is_valid(v + c):
                    return v + c, bsn.is_valid, lambda x: f'BSN {x}'
    if kind == 'IN_AADHAAR':
        v = str(r.randint(2, 9)) + D(10); v += verhoeff.calc_check_digit(v)
        return v, aadhaar.is_valid, lambda x: f'Aadhaar {x[:4]} {x[4:8]} {x[8:]}'
    if kind == 'CA_SIN':
        v = r.choice('1234567') + D(7); v += luhn.calc_check_digit(v)
        return v, sin.is_valid, lambda x: f'SIN {x[:3]} {x[3:6]} {x[6:]}'
    if kind == 'AU_TFN':
        while True:
            v = D(8)
            for c in r.sample('0123456789', 10):
                if tfn.is_valid(v + c):
                    return v + c, tfn.is_valid, lambda x: f'TFN {x[:3]} {x[3:6]} {x[6:]}'
    raise SystemExit(kind)
kinds = ['UK_NHS', 'DE_TAX_ID', 'FR_NIR', 'ES_NIF', 'ES_NIE', 'IT_FISCAL_CODE', 'NL_BSN',
         'IN_AADHAAR', 'CA_SIN', 'AU_TFN']
lines, expect = [], []
for kind in kinds:
    for _ in range(60):
        v, ok, fmt = gen(kind)
        assert ok(v), (kind, v)
        lines.append(fmt(v)); expect.append([kind, True])
        w = other_last(v, ok)
        lines.append(fmt(w)); expect.append([kind, False])
open(sys.argv[1], 'w').write('\n'.join(lines) + '\n')
json.dump(expect, open(sys.argv[2], 'w'))
"#;
    let text = s.path().join("ds/ids.txt");
    let expect_path = s.path().join("expect.json");
    let out = std::process::Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .arg(&text)
        .arg(&expect_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expect: Vec<(String, bool)> =
        serde_json::from_str(&std::fs::read_to_string(&expect_path).unwrap()).unwrap();
    let (code, _, err) = s.run(&[
        "data",
        "pii",
        "scan",
        "--text",
        "ds/ids.txt",
        "--findings",
        "found.jsonl",
    ]);
    assert_eq!(code, 1, "{err}");
    let mut by_row: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for line in read(&s, "found.jsonl").lines() {
        let f: serde_json::Value = serde_json::from_str(line).unwrap();
        by_row
            .entry(usize::try_from(f["row"].as_u64().unwrap()).unwrap())
            .or_default()
            .push(f["entity"].as_str().unwrap().to_owned());
    }
    let lines: Vec<String> = read(&s, "ds/ids.txt").lines().map(String::from).collect();
    let mut wrong = Vec::new();
    for (i, (kind, valid)) in expect.iter().enumerate() {
        let got = by_row.get(&(i + 1)).cloned().unwrap_or_default();
        if got.contains(kind) != *valid {
            wrong.push(format!("{:?} (valid: {valid}) → {got:?}", lines[i]));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} disagreements:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
