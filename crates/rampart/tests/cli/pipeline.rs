//! `rampart pipeline`: the credit-risk example end to end in a fresh home, resumed, tampered
//! with, and failing where it should.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Scratch;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/credit-risk")
}

/// A scratch directory holding a copy of the example (so its data root is the copy), with no
/// home yet.
fn scratch() -> Scratch {
    let s = Scratch::new();
    let to = s.path().join("credit-risk");
    std::fs::create_dir_all(to.join("data")).unwrap();
    for f in ["pipeline.toml", "schema.toml"] {
        std::fs::copy(example().join(f), to.join(f)).unwrap();
    }
    for f in ["applications.csv", "reference.csv"] {
        std::fs::copy(example().join("data").join(f), to.join("data").join(f)).unwrap();
    }
    s
}

const SPEC: &str = "credit-risk/pipeline.toml";

fn run(s: &Scratch, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["--format", "json", "pipeline", "run", SPEC];
    args.extend_from_slice(extra);
    let (code, out, err) = s.run(&args);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"));
    (code, v, err)
}

fn statuses(v: &Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn decrypt(s: &Scratch, file: &Path) -> String {
    let out = s.path().join("plain.csv");
    let _ = std::fs::remove_file(&out);
    s.rampart(&[
        "decrypt",
        file.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
    .assert()
    .success();
    std::fs::read_to_string(out).unwrap()
}

/// Every audit record (`audit show --format json` writes JSON Lines).
fn audit_records(s: &Scratch) -> Vec<Value> {
    let (code, out, err) = s.run(&["--format", "json", "audit", "show"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn example_runs_end_to_end_resumes_and_refuses_tampering() {
    let s = scratch();
    assert!(!s.home().exists());
    let (code, v, err) = run(&s, &[]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert!(err.contains("creating one"), "{err}");
    assert!(
        statuses(&v).iter().all(|(_, st)| st == "ran"),
        "{:?}",
        statuses(&v)
    );
    assert_eq!(v["registry"]["stage"], "staging");
    assert_eq!(v["registry"]["version"], 1);
    // Every step ran in this process (only the trainer is a child, in the sandbox, and it
    // has no home): one command, so one sealing checkpoint of the audit log. A child
    // `rampart` per step would have sealed the log once each.
    let checkpoints =
        std::fs::read_to_string(s.home().join("audit").join("checkpoints.jsonl")).unwrap();
    assert_eq!(checkpoints.lines().count(), 1, "{checkpoints}");

    // The model is in staging.
    let shown = s.json(&["model", "show", "credit-risk@staging"]);
    assert_eq!(shown["version"], 1);
    assert_eq!(shown["stage"], "staging");

    // Its signature and provenance verify, and the provenance names the ingested dataset.
    let status = s.json(&["pipeline", "status", SPEC]);
    let record = |step: &str| {
        status["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == step)
            .unwrap()["record"]
            .clone()
    };
    let ingest = record("ingest");
    let dataset = ingest["outputs"]["dataset"].as_str().unwrap().to_owned();
    let run_dir = PathBuf::from(record("train")["outputs"]["run_dir"].as_str().unwrap());
    s.rampart(&[
        "verify",
        run_dir.join("model").to_str().unwrap(),
        "--sig",
        run_dir.join("model.sig").to_str().unwrap(),
    ])
    .assert()
    .success();
    let att = s.json(&[
        "attest",
        "verify",
        run_dir.join("provenance.json").to_str().unwrap(),
    ]);
    let dep = att["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "dataset")
        .unwrap()
        .clone();
    assert_eq!(
        format!("sha256:{}", dep["sha256"].as_str().unwrap()),
        dataset
    );
    // … which is the one the ingest stored and audited.
    let records = audit_records(&s);
    let ingested: Vec<&Value> = records
        .iter()
        .filter(|r| r["action"] == "data.ingest" && r["outcome"] == "ok")
        .collect();
    assert_eq!(ingested.len(), 1);
    assert_eq!(ingested[0]["details"]["dataset"], dataset.as_str());
    assert_eq!(shown["lineage"][0]["sha256"], dep["sha256"]);

    // The training data is redacted: no raw personal value of the source survives.
    let stored = PathBuf::from(ingest["outputs"]["data"].as_str().unwrap());
    let plain = decrypt(&s, &stored);
    let digest = {
        let mut h = rampart_crypto::Sha256Hasher::new();
        h.update(plain.as_bytes());
        format!("sha256:{}", h.finish().to_hex())
    };
    assert_eq!(
        digest, dataset,
        "the store holds the dataset under its content address"
    );
    let source = std::fs::read_to_string(example().join("data/applications.csv")).unwrap();
    let mut src = csv::Reader::from_reader(source.as_bytes());
    let header = src.headers().unwrap().clone();
    let col = |n: &str| header.iter().position(|h| h == n).unwrap();
    let mut raw = Vec::new();
    for rec in src.records().take(200) {
        let rec = rec.unwrap();
        for c in ["name", "email", "phone", "ssn"] {
            raw.push(rec[col(c)].to_owned());
        }
    }
    for value in &raw {
        assert!(
            !plain.contains(value.as_str()),
            "{value} survived redaction"
        );
    }
    let mut red = csv::Reader::from_reader(plain.as_bytes());
    let rh = red.headers().unwrap().clone();
    let rcol = |n: &str| rh.iter().position(|h| h == n).unwrap();
    let first = red.records().next().unwrap().unwrap();
    assert!(first[rcol("email")].starts_with("<EMAIL:"), "{:?}", &first);
    assert!(first[rcol("name")].starts_with("<PERSON:"), "{:?}", &first);
    assert_eq!(&first[rcol("ssn")], "");
    assert!(
        first[rcol("phone")].starts_with("+* ***-***-"),
        "{:?}",
        &first
    );
    // The model was not trained on them.
    let features: Vec<&str> = shown["input_schema"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for c in [
        "applicant_id",
        "name",
        "email",
        "phone",
        "ssn",
        "address",
        "default",
    ] {
        assert!(!features.contains(&c), "{c} is a feature: {features:?}");
    }

    // The audit log verifies and holds every step.
    s.rampart(&["audit", "verify"]).assert().success();
    let actions: BTreeSet<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "pipeline.run",
        "pipeline.step",
        "data.access",
        "data.ingest",
        "train.run",
        "train.provenance",
        "verify",
        "attest.verify",
        "model.register",
        "model.promote",
    ] {
        assert!(actions.contains(a), "no {a} record: {actions:?}");
    }
    let steps: BTreeSet<&str> = records
        .iter()
        .filter(|r| r["action"] == "pipeline.step" && r["outcome"] == "ok")
        .map(|r| r["details"]["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 5, "{steps:?}");

    // The report: self-contained HTML with the figures, masked PII, the digests and the audit.
    let report: Value =
        serde_json::from_slice(&std::fs::read(v["report"]["json"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["data"]["counts"]["rejected"], 4);
    assert_eq!(report["data"]["dataset"], dataset.as_str());
    assert_eq!(report["registry"]["stage"], "staging");
    assert!(report["audit"].as_array().unwrap().len() >= 10);
    let pii_cols: BTreeSet<&str> = report["data"]["pii"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["entities"].as_object().unwrap().is_empty())
        .map(|c| c["column"].as_str().unwrap())
        .collect();
    for c in ["name", "email", "phone", "ssn", "address"] {
        assert!(pii_cols.contains(c), "{c}: {pii_cols:?}");
    }
    let html = std::fs::read_to_string(v["report"]["html"].as_str().unwrap()).unwrap();
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "confusion matrix and ROC curve"
    );
    assert!(html.contains(&dataset));
    assert!(html.contains("label-distribution"));
    assert_eq!(
        html.matches(">verified</span>").count(),
        2,
        "signature and provenance"
    );
    assert!(!html.contains("NOT verified"));
    assert!(!html.contains("<script") && !html.contains("src=\"http"));
    for value in &raw {
        assert!(!html.contains(value.as_str()), "{value} is in the report");
    }

    // A second run reuses every step, after verifying it, and registers nothing new.
    let (code, v2, err) = run(&s, &[]);
    assert_eq!(code, 0, "{v2}\n{err}");
    assert!(
        statuses(&v2).iter().all(|(_, st)| st == "reused"),
        "{:?}",
        statuses(&v2)
    );
    assert_eq!(v2["registry"]["version"], 1);
    assert_ne!(s.run(&["model", "show", "credit-risk@2"]).0, 0);

    // A tampered intermediate artifact makes the next run fail loudly, and keep failing.
    let model = run_dir.join("model/model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    let mut perm = std::fs::metadata(&model).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&model, perm).unwrap();
    std::fs::write(&model, &bytes).unwrap();
    for _ in 0..2 {
        let (code, v3, err) = run(&s, &[]);
        assert_eq!(code, 1, "{v3}");
        assert_eq!(v3["failed_step"], "train");
        let reason = v3["reason"].as_str().unwrap();
        assert!(
            reason.contains("model.safetensors changed after the step produced it"),
            "{reason}"
        );
        assert!(reason.contains("--from train"), "{reason}");
        assert!(err.contains("FAILED"), "{err}");
        assert_eq!(
            statuses(&v3),
            [
                ("ingest", "reused"),
                ("train", "failed"),
                ("verify", "not-run"),
                ("register", "not-run"),
                ("promote", "not-run")
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }
    let refusals = audit_records(&s)
        .into_iter()
        .filter(|r| r["action"] == "pipeline.step" && r["outcome"] == "failed")
        .count();
    assert_eq!(refusals, 2, "each refused reuse is audited");
    // Rebuilding on purpose trains, signs and registers a new version.
    let (code, v4, err) = run(&s, &["--from", "train"]);
    assert_eq!(code, 0, "{v4}\n{err}");
    assert_eq!(statuses(&v4)[0].1, "reused");
    assert_eq!(statuses(&v4)[1].1, "ran");
    assert_eq!(v4["registry"]["version"], 2);
    s.rampart(&["audit", "verify"]).assert().success();
}

#[test]
fn a_failing_step_stops_the_run_and_leaves_what_ran() {
    let s = scratch();
    let spec = s.path().join(SPEC);
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        text.replace(
            "min_metrics = { accuracy = 0.75, roc_auc = 0.8 }",
            "min_metrics = { accuracy = 0.999 }",
        ),
    )
    .unwrap();
    let (code, v, _) = run(&s, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["failed_step"], "promote");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("accuracy") && reason.contains("0.999"),
        "{reason}"
    );
    // Everything before it is there to inspect; the version is registered but in no stage.
    let shown = s.json(&["model", "show", "credit-risk@1"]);
    assert_eq!(shown["stage"], "none");
    let status = s.json(&["pipeline", "status", "credit-risk"]);
    let steps = status["steps"].as_array().unwrap();
    assert_eq!(steps[3]["record"]["status"], "ok");
    assert_eq!(steps[4]["record"]["status"], "failed");
    let report: Value =
        serde_json::from_slice(&std::fs::read(v["report"]["json"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["registry"]["stage"], "none");
    let html = std::fs::read_to_string(v["report"]["html"].as_str().unwrap()).unwrap();
    assert!(html.contains("Failed at promote."));

    // A changed source is refused at ingest by the pin, and nothing after it runs.
    let data = s.path().join("credit-risk/data/applications.csv");
    let mut csv = std::fs::read_to_string(&data).unwrap();
    csv = csv.replacen(",no\n", ",yes\n", 1);
    std::fs::write(&data, csv).unwrap();
    let (code, v, _) = run(&s, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["failed_step"], "ingest");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("integrity") || reason.contains("pinned"),
        "{reason}"
    );
    s.rampart(&["audit", "verify"]).assert().success();
}

#[test]
fn bad_specs_are_refused_naming_the_key() {
    let s = scratch();
    let spec = s.path().join(SPEC);
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        text.replace("[checks]\n", "[checks]\nrefrence = \"x\"\n"),
    )
    .unwrap();
    let (code, _, err) = s.run(&["pipeline", "run", SPEC]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("refrence") && err.contains("pipeline.toml"),
        "{err}"
    );
    assert!(!s.home().exists(), "nothing is created for a bad spec");
    std::fs::write(&spec, &text).unwrap();
    let (code, _, err) = s.run(&["pipeline", "run", SPEC, "--from", "sign"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("ingest, train, verify, register, promote"),
        "{err}"
    );
    // A built-in model's settings are checked against the spec before anything runs.
    for (from, to, needle) in [
        ("trees = 200", "tres = 200", "\"tres\""),
        (
            "kind = \"random-forest\"",
            "kind = \"random-forrest\"",
            "random-forrest",
        ),
    ] {
        std::fs::write(&spec, text.replace(from, to)).unwrap();
        let (code, _, err) = s.run(&["pipeline", "run", SPEC]);
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains(needle) && err.contains("[train.model]"),
            "{err}"
        );
        assert!(
            err.contains("pipeline.toml") || needle.contains("forrest"),
            "{err}"
        );
    }
    assert!(!s.home().exists(), "nothing is created for a bad spec");
}

/// A user's trainer: it reads the redacted data the pipeline ingested, counts any personal
/// value it can still see, and writes a one-tensor safetensors model and its metrics.
const TRAINER: &str = r#"
import csv, json, os, re, struct
rows = list(csv.DictReader(open(os.environ["RAMPART_DATA"])))
seen = sum(1 for r in rows for c in ("name", "email", "phone", "ssn")
           if r[c] and not r[c].startswith(("<", "+* ")))
seen += sum(1 for r in rows if re.search(r"\d{3}-\d{2}-\d{4}", ",".join(r.values())))
pred = ["yes" if int(r["late_payments"]) >= 2 else "no" for r in rows]
cm = [[0, 0], [0, 0]]
for p, r in zip(pred, rows):
    cm[r["default"] == "yes"][p == "yes"] += 1
header = json.dumps({"threshold": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
header += b" " * (-len(header) % 8)
with open(os.path.join(os.environ["RAMPART_OUTPUT"], "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + struct.pack("<f", 2.0))
json.dump({"kind": "late-payments-rule", "rows": len(rows), "personal_values_seen": seen,
           "accuracy": (cm[0][0] + cm[1][1]) / len(rows), "classes": ["no", "yes"],
           "confusion_matrix": cm},
          open(os.path.join(os.environ["RAMPART_OUTPUT"], "metrics.json"), "w"))
"#;

#[test]
fn a_users_trainer_sees_only_redacted_data_and_its_code_is_an_input() {
    assert!(
        Path::new("/usr/bin/python3").is_file(),
        "the sandbox tests need /usr/bin/python3"
    );
    let s = scratch();
    let dir = s.path().join("credit-risk");
    std::fs::write(dir.join("trainer.py"), TRAINER).unwrap();
    let spec = dir.join("pipeline.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    let start = text.find("[train.model]").unwrap();
    let end = text.find("[train.limits]").unwrap();
    let text = format!(
        "{}[train.trainer]\ncommand = [\"/usr/bin/python3\", \"trainer.py\"]\nread = [\"trainer.py\"]\n\n{}",
        &text[..start],
        &text[end..]
    )
    .replace(
        "min_metrics = { accuracy = 0.75, roc_auc = 0.8 }",
        "min_metrics = { accuracy = 0.5 }",
    );
    std::fs::write(&spec, text).unwrap();
    let (code, v, err) = run(&s, &[]);
    assert_eq!(code, 0, "{v}\n{err}");
    assert_eq!(v["registry"]["stage"], "staging");
    let report: Value =
        serde_json::from_slice(&std::fs::read(v["report"]["json"].as_str().unwrap()).unwrap())
            .unwrap();
    let m = &report["training"]["metrics"];
    assert_eq!(m["kind"], "late-payments-rule");
    // A fifth of the 1996 rows were held out before the trainer started.
    assert_eq!(m["rows"], 1596);
    // Its one-tensor file is not a model rampart can run: its accuracy stays the trainer's
    // own, labelled so, and staging (which does not require computed metrics) takes it.
    assert_eq!(m["source"], "self-reported", "{m}");
    assert!(
        m["not_scored"]
            .as_str()
            .unwrap()
            .contains("not a rampart model"),
        "{m}"
    );
    assert_eq!(
        m["personal_values_seen"], 0,
        "the trainer saw personal data"
    );
    // The trainer's code is in the provenance.
    let run_dir = report["training"]["run_dir"].as_str().unwrap();
    let att = s.json(&["attest", "verify", &format!("{run_dir}/provenance.json")]);
    assert!(
        att["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"].as_str().unwrap_or("").ends_with("trainer.py")),
        "{}",
        att["dependencies"]
    );
    // Changing the trainer re-runs training (and what follows), not the ingest.
    std::fs::write(dir.join("trainer.py"), format!("{TRAINER}\n# v2\n")).unwrap();
    let (code, v2, err) = run(&s, &[]);
    assert_eq!(code, 0, "{v2}\n{err}");
    let st: Vec<String> = statuses(&v2).into_iter().map(|(_, s)| s).collect();
    assert_eq!(st, ["reused", "ran", "ran", "ran", "ran"]);
    assert_eq!(v2["registry"]["version"], 2);
}

#[test]
fn the_example_serves_the_readmes_curl() {
    let s = scratch();
    let (code, v, err) = run(&s, &[]);
    assert_eq!(code, 0, "{v}\n{err}");
    // The request body documented in the README's quick start.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let body = readme
        .split("-d '")
        .nth(1)
        .and_then(|r| r.split('\'').next())
        .unwrap();
    assert!(readme.contains("serve --model credit-risk@staging"));
    let token = crate::serve::key(&s, &["--role", "predict"]);
    let srv = crate::serve::start(&s, &["--model", "credit-risk@staging"]);
    let (status, _, answer) = crate::serve::curl(
        "POST",
        &format!("http://{}/v1/models/credit-risk:predict", srv.addr),
        &[crate::serve::auth(&token), crate::serve::JSON.to_owned()],
        Some(body),
    );
    srv.stop();
    assert_eq!(status, 200, "{answer}");
    let a: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(a["model"], "credit-risk");
    let p = &a["predictions"][0];
    assert!(p["label"] == "yes" || p["label"] == "no", "{a}");
    let total =
        p["probabilities"]["yes"].as_f64().unwrap() + p["probabilities"]["no"].as_f64().unwrap();
    assert!((total - 1.0).abs() < 1e-6, "{a}");
}
