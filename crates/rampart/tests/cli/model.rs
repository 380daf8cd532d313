//! `rampart model …`: registration refusals, each gate failing alone, approvals (forged,
//! untrusted, two-person rule), racing promotions, a corrupted blob, rollback, and export →
//! import into a fresh home.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Scratch;

const SCHEMA: &str = "version = 1\n[label]\ncolumn = \"label\"\nclasses = [\"0\", \"1\"]\n\
    [[columns]]\nname = \"x\"\ntype = \"float\"\n\
    [[columns]]\nname = \"y\"\ntype = \"float\"\n\
    [[columns]]\nname = \"label\"\ntype = \"int\"\n";

/// A home with an ingested dataset; returns the scratch and the dataset digest.
pub(crate) fn setup() -> (Scratch, String) {
    let s = Scratch::init();
    std::fs::create_dir_all(s.path().join("data")).unwrap();
    let mut rng = rampart_ml::split::SplitMix64::new(3);
    let mut text = String::from("x,y,label\n");
    for i in 0..200 {
        let c = if i % 2 == 0 { 0.0 } else { 4.0 };
        text.push_str(&format!(
            "{:.4},{:.4},{}\n",
            c + rng.normal(),
            c + rng.normal(),
            i % 2
        ));
    }
    std::fs::write(s.path().join("data/train.csv"), text).unwrap();
    std::fs::write(s.path().join("schema.toml"), SCHEMA).unwrap();
    s.rampart(&["data", "roots", "add", "data"])
        .assert()
        .success();
    let v = s.json(&[
        "data",
        "ingest",
        "data/train.csv",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    (s, v["dataset"].as_str().unwrap().to_owned())
}

/// Trains a built-in model in the sandbox into `runs/NAME`.
pub(crate) fn train(s: &Scratch, data: &str, name: &str, trees: &str) -> PathBuf {
    let out = format!("runs/{name}");
    s.json(&[
        "train",
        "--data",
        data,
        "--label",
        "label",
        "--model",
        "random-forest",
        "--trees",
        trees,
        "--output",
        &out,
    ]);
    s.path().join(out)
}

fn register(s: &Scratch, path: &Path, name: &str) -> Value {
    s.json(&["model", "register", path.to_str().unwrap(), "--name", name])
}

/// Replaces the one occurrence of `from` in the policy with `to`.
fn edit_policy(s: &Scratch, from: &str, to: &str) {
    let p = s.home().join("rampart.toml");
    let old = std::fs::read_to_string(&p).unwrap();
    assert_eq!(old.matches(from).count(), 1, "{from:?} in {old}");
    std::fs::write(&p, old.replace(from, to)).unwrap();
}

/// (exit code, parsed JSON stdout) of a promotion.
fn promote(s: &Scratch, r: &str, to: &str) -> (i32, Value) {
    let (code, out, err) = s.run(&["--format", "json", "model", "promote", r, "--to", to]);
    let v = serde_json::from_str(&out).unwrap_or_else(|_| serde_json::json!({"stderr": err}));
    (code, v)
}

fn failed_gates(v: &Value) -> Vec<String> {
    v["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["ok"] == false)
        .map(|g| g["gate"].as_str().unwrap().to_owned())
        .collect()
}

/// A second identity: its own home, key file and exported public key.
fn second_key(dir: &Path) -> (PathBuf, PathBuf) {
    let other = Scratch::init();
    let key = dir.join("approver.key.pem");
    std::fs::copy(other.home().join("keys/signing.key.pem"), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let public = dir.join("approver.pub.pem");
    other
        .rampart(&["keys", "export-public", "-o", public.to_str().unwrap()])
        .assert()
        .success();
    (key, public)
}

fn audit_log(s: &Scratch) -> String {
    std::fs::read_to_string(s.home().join("audit/audit.jsonl")).unwrap()
}

#[test]
fn register_resolves_versions_and_refuses_unsigned_tampered_flagged_and_foreign_provenance() {
    let (s, ds) = setup();
    let run = train(&s, &ds, "a", "5");
    let v1 = register(&s, &run, "credit");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["stage"], "none");
    assert_eq!(v1["lineage"][0]["sha256"], ds.trim_start_matches("sha256:"));
    assert_eq!(
        v1["input_schema"]["features"],
        serde_json::json!(["x", "y"])
    );
    let v2 = register(&s, &run, "credit");
    assert_eq!(v2["version"], 2);
    assert_eq!(s.json(&["model", "show", "credit"])["version"], 2);
    assert_eq!(s.json(&["model", "show", "credit@1"])["root"], v1["root"]);
    let (code, _, err) = s.run(&["model", "show", "credit@staging"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no version in staging"), "{err}");
    let (code, _, err) = s.run(&["model", "show", "credit@x"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not NAME"), "{err}");

    // Unsigned.
    std::fs::create_dir_all(s.path().join("plain")).unwrap();
    std::fs::copy(
        run.join("model/model.safetensors"),
        s.path().join("plain/model.safetensors"),
    )
    .unwrap();
    let (code, _, err) = s.run(&["model", "register", "plain", "--name", "credit"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not signed"), "{err}");
    // Tampered after signing.
    let tampered = s.path().join("tampered");
    copy_dir(&run, &tampered);
    let f = tampered.join("model/model.safetensors");
    let mut b = std::fs::read(&f).unwrap();
    let n = b.len();
    b[n - 1] ^= 1;
    std::fs::write(&f, b).unwrap();
    let (code, _, err) = s.run(&[
        "model",
        "register",
        tampered.to_str().unwrap(),
        "--name",
        "credit",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not verify"), "{err}");
    // Flagged by the scanner, although validly signed.
    std::fs::create_dir_all(s.path().join("evil")).unwrap();
    std::fs::write(
        s.path().join("evil/model.pkl"),
        b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R.",
    )
    .unwrap();
    s.rampart(&["sign", "evil"]).assert().success();
    let (code, _, err) = s.run(&["model", "register", "evil", "--name", "credit"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("flagged by the scanner"), "{err}");
    // Provenance of another model.
    let other = train(&s, &ds, "b", "6");
    let (code, _, err) = s.run(&[
        "model",
        "register",
        run.join("model").to_str().unwrap(),
        "--name",
        "credit",
        "--sig",
        run.join("model.sig").to_str().unwrap(),
        "--provenance",
        other.join("provenance.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not name model.safetensors"), "{err}");
    // Nothing refused became a version; every refusal is on record.
    assert_eq!(s.json(&["model", "show", "credit"])["version"], 2);
    assert_eq!(audit_log(&s).matches("\"model.register\"").count(), 6);
    s.rampart(&["audit", "verify"]).assert().success();
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn each_gate_fails_alone() {
    let (s, ds) = setup();
    let good = train(&s, &ds, "good", "5");

    // signature: signed by a key that was trusted at registration and is no longer.
    let (k2, k2_pub) = second_key(s.path());
    s.rampart(&["trust", "add", k2_pub.to_str().unwrap(), "--name", "k2"])
        .assert()
        .success();
    let resigned = s.path().join("resigned");
    copy_dir(&good, &resigned);
    std::fs::remove_file(resigned.join("model.sig")).unwrap();
    s.rampart(&[
        "sign",
        resigned.join("model").to_str().unwrap(),
        "--key",
        k2.to_str().unwrap(),
        "--sig",
        resigned.join("model.sig").to_str().unwrap(),
    ])
    .assert()
    .success();
    register(&s, &resigned, "sig");
    s.rampart(&["trust", "remove", "k2"]).assert().success();
    let (code, v) = promote(&s, "sig@1", "staging");
    assert_eq!(code, 1, "{v}");
    assert_eq!(failed_gates(&v), vec!["signature"], "{v}");

    // provenance: a signed model registered without one.
    let bare = s.path().join("bare");
    copy_dir(&good.join("model"), &bare);
    s.rampart(&["sign", "bare"]).assert().success();
    register(&s, &bare, "bare");
    let (code, v) = promote(&s, "bare@1", "staging");
    assert_eq!(code, 1);
    assert_eq!(failed_gates(&v), vec!["provenance"], "{v}");

    // metrics below the policy's minimum.
    edit_policy(
        &s,
        "[gates.staging]\n",
        "[gates.staging]\nmin_metrics = { accuracy = 1.5, f1_macro = 0.5 }\nrequire_lineage = true\n",
    );
    register(&s, &good, "good");
    let (code, v) = promote(&s, "good@1", "staging");
    assert_eq!(code, 1);
    assert_eq!(failed_gates(&v), vec!["metrics"], "{v}");
    let detail = v["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "metrics")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("< 1.5") && !detail.contains("f1_macro"),
        "{detail}"
    );
    // An edited metrics.json beside the run does not raise the figure: registration refuses a
    // file that contradicts the signed provenance …
    let edited = s.path().join("edited");
    copy_dir(&good, &edited);
    std::fs::write(
        edited.join("metrics.json"),
        r#"{"accuracy": 2.0, "f1_macro": 2.0}"#,
    )
    .unwrap();
    let (code, _, err) = s.run(&["model", "register", "edited", "--name", "edited"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("differ from the ones in the signed provenance"),
        "{err}"
    );
    // … and an unsigned --metrics file is never what the gate reads.
    std::fs::write(s.path().join("fake.json"), r#"{"accuracy": 2.0}"#).unwrap();
    s.rampart(&[
        "model",
        "register",
        "bare",
        "--name",
        "fake",
        "--metrics",
        "fake.json",
    ])
    .assert()
    .success();
    let (code, v) = promote(&s, "fake@1", "staging");
    assert_eq!(code, 1);
    assert_eq!(
        failed_gates(&v),
        vec!["provenance", "lineage", "metrics"],
        "{v}"
    );
    assert!(
        v.to_string()
            .contains("unsigned metrics file does not count"),
        "{v}"
    );

    // lineage: trained on a file from the data roots, not an ingested dataset.
    edit_policy(&s, "accuracy = 1.5, ", "");
    // (A file whose bytes equal an ingested dataset's would verify: lineage is by content.)
    let mut other = std::fs::read_to_string(s.path().join("data/train.csv")).unwrap();
    other.push_str("9.0,9.0,1\n");
    std::fs::write(s.path().join("data/other.csv"), other).unwrap();
    let from_file = train(&s, "data/other.csv", "from-file", "5");
    register(&s, &from_file, "file");
    let (code, v) = promote(&s, "file@1", "staging");
    assert_eq!(code, 1);
    assert_eq!(failed_gates(&v), vec!["lineage"], "{v}");
    // … while the one trained on the ingested dataset passes every gate now.
    let (code, v) = promote(&s, "good@1", "staging");
    assert_eq!(code, 0, "{v}");

    // approvals: production needs one by default.
    let (code, v) = promote(&s, "good@1", "production");
    assert_eq!(code, 1);
    assert_eq!(failed_gates(&v), vec!["approvals"], "{v}");

    // scan: a model registered under a lenient policy, promoted under the default one.
    edit_policy(&s, "fail_on = \"medium\"", "fail_on = \"critical\"");
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../rampart-scan/tests/fixtures/corpus");
    let onnx = corpus
        .join("onnx_custom_operator_domain.onnx")
        .canonicalize()
        .unwrap();
    std::fs::write(s.path().join("copy.py"), "import os, shutil, sys\nshutil.copy(sys.argv[1], os.path.join(os.environ['RAMPART_OUTPUT'], 'model.onnx'))\nimport json\njson.dump({'accuracy': 1.0, 'f1_macro': 1.0}, open(os.path.join(os.environ['RAMPART_OUTPUT'], 'metrics.json'), 'w'))\n").unwrap();
    s.json(&[
        "train",
        "--data",
        &ds,
        "--output",
        "runs/onnx",
        "--exec",
        "--",
        "/usr/bin/python3",
        "copy.py",
        onnx.to_str().unwrap(),
    ]);
    register(&s, &s.path().join("runs/onnx"), "onnx");
    edit_policy(&s, "fail_on = \"critical\"", "fail_on = \"medium\"");
    let (code, v) = promote(&s, "onnx@1", "staging");
    assert_eq!(code, 1);
    assert_eq!(failed_gates(&v), vec!["scan"], "{v}");

    // Every refusal is audited with what failed.
    let log = audit_log(&s);
    assert!(log.matches("\"model.promote\"").count() >= 7);
    assert!(log.contains("not a dataset ingested into this home"));
}

/// `data/noise.csv`: 200 rows of two normal features and a coin-flip label.
fn write_noise(s: &Scratch) {
    let mut rng = rampart_ml::split::SplitMix64::new(11);
    let mut noise = String::from("x,y,label\n");
    for _ in 0..200 {
        noise.push_str(&format!(
            "{:.4},{:.4},{}\n",
            rng.normal(),
            rng.normal(),
            rng.below(2)
        ));
    }
    std::fs::write(s.path().join("data/noise.csv"), noise).unwrap();
}

/// A trainer's ONNX model is run to be scored outside the sandbox, in a worker process under
/// the run's memory limit: a graph (written with the `onnx` package) that asks for 2 GiB
/// whatever its input, under `--memory 1GiB`, is recorded as not scored with the allowance
/// named, and the run itself is unharmed: signed, exit 0.
#[test]
fn a_trained_model_that_allocates_past_the_runs_memory_is_not_scored() {
    let (s, _) = setup();
    write_noise(&s);
    let bomb = s.path().join("bomb.onnx");
    let make = r#"
import sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper
i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
nodes = [
    helper.make_node("Shape", ["X"], ["s"]),
    helper.make_node("Slice", ["s", "zero", "one"], ["n"]),
    helper.make_node("Mul", ["n", "zero"], ["z"]),
    helper.make_node("Add", ["z", "big"], ["t"]),
    helper.make_node("ConstantOfShape", ["t"], ["c"]),
    helper.make_node("ReduceSum", ["c"], ["y"]),
]
g = helper.make_graph(
    nodes, "bomb",
    [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    [i64("zero", [0]), i64("one", [1]), i64("big", [1 << 29])],
)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
open(sys.argv[1], "wb").write(m.SerializeToString())
"#;
    let made = std::process::Command::new(crate::interop::sklearn_venv().join("bin/python"))
        .args(["-c", make, bomb.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let script = format!("cp {} \"$RAMPART_OUTPUT/model.onnx\"", bomb.display());
    let out = s
        .rampart(&[
            "--format",
            "json",
            "train",
            "--data",
            "data/noise.csv",
            "--label",
            "label",
            "--output",
            "runs/bomb",
            "--memory",
            "1GiB",
            "--read",
            bomb.to_str().unwrap(),
            "--exec",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ])
        .env("RAMPART_ONNXRUNTIME", crate::interop::onnxruntime_library())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let why = v["computed_metrics"]["not_scored"]
        .as_str()
        .unwrap_or_default();
    assert!(why.contains("memory allowance of 1024 MiB"), "{v}");
    assert!(s.path().join("runs/bomb/model.sig").is_file());
}

/// A trainer that claims accuracy 0.999 for a model that guesses: rampart scores the model
/// itself on rows held out before the trainer started, the registry shows whose figures it
/// holds, and production's metric gate reads only the computed ones (staging, which does not
/// require them, still prefers them).
#[test]
fn a_trainers_claimed_accuracy_is_not_what_the_gates_read() {
    let (s, _) = setup();
    write_noise(&s);
    let bin = env!("CARGO_BIN_EXE_rampart");
    let script = format!(
        "{bin} __train-builtin --data \"$RAMPART_DATA\" --model random-forest --label label \
         --holdout 0 --output \"$RAMPART_OUTPUT/model.safetensors\" --metrics \"$RAMPART_OUTPUT/metrics.json\" \
         && printf '{{\"accuracy\": 0.999, \"f1_macro\": 0.999}}' > \"$RAMPART_OUTPUT/metrics.json\""
    );
    let v = s.json(&[
        "train",
        "--data",
        "data/noise.csv",
        "--label",
        "label",
        "--output",
        "runs/liar",
        "--read",
        bin,
        "--exec",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let computed = &v["computed_metrics"];
    let accuracy = computed["scores"]["accuracy"].as_f64().unwrap();
    assert!(
        accuracy < 0.75,
        "a guessing model scored {accuracy}: {computed}"
    );
    // A fifth of each class (rounded up) was held out before the trainer started.
    let held = computed["holdout"]["rows"].as_u64().unwrap();
    assert!((40..=42).contains(&held), "{computed}");
    assert_eq!(
        computed["holdout"]["train_rows"].as_u64().unwrap() + held,
        200
    );
    assert_eq!(computed["scores"]["runtime"], "rampart-ml");
    assert_eq!(v["metrics"]["accuracy"], 0.999);
    let reg = register(&s, &s.path().join("runs/liar"), "liar");
    assert_eq!(reg["metrics"]["source"], "computed", "{reg}");
    assert_eq!(reg["metrics"]["accuracy"].as_f64(), Some(accuracy));

    edit_policy(
        &s,
        "[gates.staging]\n",
        "[gates.staging]\nmin_metrics = { accuracy = 0.9 }\n",
    );
    let (code, v) = promote(&s, "liar@1", "staging");
    assert_eq!(code, 1, "{v}");
    assert_eq!(failed_gates(&v), vec!["metrics"], "{v}");
    assert!(
        v.to_string()
            .contains("computed by rampart on held-out rows"),
        "{v}"
    );

    // A model rampart cannot score: staging (computed not required) falls back to the
    // trainer's report, labelled; production refuses, saying why.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop/onnx-models");
    let cnn = ["cnn.onnx", "cnn/model.onnx"]
        .iter()
        .map(|p| corpus.join(p))
        .find(|p| p.is_file());
    let Some(cnn) = cnn else {
        panic!("no CNN in {}", corpus.display())
    };
    let cnn = cnn.canonicalize().unwrap();
    let script = format!(
        "cp {} \"$RAMPART_OUTPUT/model.onnx\" && printf '{{\"accuracy\": 0.999}}' > \"$RAMPART_OUTPUT/metrics.json\"",
        cnn.display()
    );
    let v = s.json(&[
        "train",
        "--data",
        "data/noise.csv",
        "--label",
        "label",
        "--output",
        "runs/cnn",
        "--read",
        cnn.to_str().unwrap(),
        "--exec",
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let why = v["computed_metrics"]["not_scored"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!why.is_empty(), "{v}");
    register(&s, &s.path().join("runs/cnn"), "cnn");
    edit_policy(
        &s,
        "[gates.staging]\nmin_metrics = { accuracy = 0.9 }\n",
        "[gates.staging]\nmin_metrics = { accuracy = 0.9 }\nrequire_computed_metrics = false\n",
    );
    let (code, v) = promote(&s, "cnn@1", "staging");
    assert_eq!(code, 0, "{v}");
    assert!(
        v.to_string().contains("self-reported by the trainer"),
        "{v}"
    );
    edit_policy(
        &s,
        "[gates.production]\n",
        "[gates.production]\nmin_metrics = { accuracy = 0.9 }\napprovals = 0\n",
    );
    let (code, v) = promote(&s, "cnn@1", "production");
    assert_eq!(code, 1, "{v}");
    assert_eq!(failed_gates(&v), vec!["metrics"], "{v}");
    assert!(v.to_string().contains("requires computed metrics"), "{v}");
}

#[test]
fn approvals_untrusted_forged_and_the_two_person_rule() {
    let (s, ds) = setup();
    let run = train(&s, &ds, "a", "5");
    register(&s, &run, "m");
    assert_eq!(promote(&s, "m@1", "staging").0, 0);
    edit_policy(
        &s,
        "[gates.production]\n",
        "[gates.production]\ntwo_person_rule = true\n",
    );

    // An approver whose key this home does not trust is refused.
    let (k2, k2_pub) = second_key(s.path());
    let (code, _, err) = s.run(&["model", "approve", "m@1", "--key", k2.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not trusted"), "{err}");
    // The registrant approving their own registration is refused under the two-person rule.
    let (code, _, err) = s.run(&["model", "approve", "m@1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("two-person rule"), "{err}");

    // A forged approval slipped into the database (signed by an untrusted key, claiming a
    // trusted approver's fingerprint) does not count.
    let stranger = s.path().join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    let (k3, _) = second_key(&stranger);
    s.rampart(&[
        "trust",
        "add",
        k2_pub.to_str().unwrap(),
        "--name",
        "approver",
    ])
    .assert()
    .success();
    let trusted_fp = s.json(&["trust", "list"])["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "approver")
        .unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = s.json(&["model", "show", "m@1"]);
    let forged = forged_bundle(&v, &k3);
    let db = rusqlite::Connection::open(s.home().join("registry/registry.db")).unwrap();
    db.execute(
        "INSERT INTO approvals (version_id, approver_key, approver, bundle, at) SELECT id, ?1, 'mallory', ?2, 'now' FROM versions WHERE version = 1",
        rusqlite::params![trusted_fp, forged],
    )
    .unwrap();
    drop(db);
    let (code, v) = promote(&s, "m@1", "production");
    assert_eq!(code, 1, "{v}");
    assert_eq!(failed_gates(&v), vec!["approvals"]);
    let detail = v["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "approvals")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("0 of 1") && detail.contains("mallory"),
        "{detail}"
    );

    // A real approval by the second, now trusted, person.
    s.rampart(&["model", "approve", "m@1", "--key", k2.to_str().unwrap()])
        .assert()
        .success();
    let (code, v) = promote(&s, "m@1", "production");
    assert_eq!(code, 0, "{v}");
    assert_eq!(s.json(&["model", "show", "m@production"])["version"], 1);
}

/// An approval of `v`, exactly as a real one looks, signed with `key` (one this home does not
/// trust).
fn forged_bundle(v: &Value, key: &Path) -> String {
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m@1", "digest": {"sha256": v["root"]}}],
        "predicateType": "https://rampart.dev/approval/v1",
        "predicate": {"model": "m", "version": 1, "root": v["root"], "stage": "production", "approver": "mallory", "time": "now"},
    });
    let pem = std::fs::read_to_string(key).unwrap();
    let k = rampart_crypto::SigningKey::from_pem(&pem).unwrap();
    let bundle = rampart_crypto::dsse::sign_bundle(&k, &serde_json::to_vec(&statement).unwrap());
    String::from_utf8(bundle).unwrap()
}

#[test]
fn racing_promotions_from_two_processes_serialise() {
    let (s, ds) = setup();
    let run = train(&s, &ds, "a", "5");
    for _ in 0..3 {
        register(&s, &run, "race");
    }
    // The same version, twice at once: exactly one wins.
    let spawn = |r: &str| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("rampart"));
        c.current_dir(s.path())
            .args(["model", "promote", r, "--to", "staging"]);
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let (a, b) = (spawn("race@1"), spawn("race@1"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [a.status.code().unwrap(), b.status.code().unwrap()];
    assert!(codes.contains(&0) && codes.contains(&1), "{codes:?}");
    let loser = if codes[0] == 1 { &a } else { &b };
    assert!(String::from_utf8_lossy(&loser.stderr).contains("already in staging"));
    // Two versions at once: both run, one after the other; one ends in staging.
    let (c, d) = (spawn("race@2"), spawn("race@3"));
    assert!(c.wait_with_output().unwrap().status.success());
    assert!(d.wait_with_output().unwrap().status.success());
    let versions: Vec<Value> = (1..=3)
        .map(|v| s.json(&["model", "show", &format!("race@{v}")]))
        .collect();
    assert_eq!(
        versions.iter().filter(|v| v["stage"] == "staging").count(),
        1
    );
    let h = s.json(&["model", "history", "race"]);
    let into_staging = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["to"] == "staging")
        .count();
    assert_eq!(into_staging, 3, "v1 once, v2 and v3 once each: {h}");
    let left = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["from"] == "staging")
        .count();
    assert_eq!(left, 2, "two were displaced: {h}");
}

#[test]
fn a_corrupted_blob_is_detected_and_the_version_refuses_to_load() {
    let (s, ds) = setup();
    let run = train(&s, &ds, "a", "5");
    let v = register(&s, &run, "m");
    let out = s.json(&["model", "checkout", "m@1", "-o", "loaded"]);
    assert_eq!(out["version"], 1);
    s.rampart(&["verify", "loaded/model", "--sig", "loaded/model.sig"])
        .assert()
        .success();
    let digest = v["files"][0]["sha256"].as_str().unwrap();
    let blob = s
        .home()
        .join("registry/blobs/sha256")
        .join(&digest[..2])
        .join(digest);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&blob).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o444, "blobs are read-only");
    std::fs::set_permissions(&blob, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let mut b = std::fs::read(&blob).unwrap();
    b[100] ^= 0xff;
    std::fs::write(&blob, b).unwrap();
    let (code, _, err) = s.run(&["model", "checkout", "m@1", "-o", "again"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("corrupted"), "{err}");
    assert!(
        !s.path().join("again").exists(),
        "a refused checkout leaves no directory it made"
    );

    // A FIFO planted where the blob should be fails at once (it would block a reader forever)
    // and names what it found.
    std::fs::remove_file(&blob).unwrap();
    nix::unistd::mkfifo(&blob, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let out = s
        .rampart(&["model", "checkout", "m@1", "-o", "fifo"])
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "checkout of a FIFO blob hung or passed: {err}"
    );
    assert!(err.contains("a FIFO where a blob should be"), "{err}");
    assert!(!s.path().join("fifo").exists());
    let (code, v) = promote(&s, "m@1", "staging");
    assert_eq!(code, 1);
    assert!(failed_gates(&v).contains(&"signature".to_owned()), "{v}");
    let (code, _, err) = s.run(&["model", "export", "m@1", "-o", "m.tar"]);
    assert_eq!(code, 1, "{err}");
    assert!(!s.path().join("m.tar").exists());
}

#[test]
fn rollback_after_two_promotions() {
    let (s, ds) = setup();
    let run1 = train(&s, &ds, "a", "5");
    let run2 = train(&s, &ds, "b", "7");
    for (run, v) in [(&run1, "m@1"), (&run2, "m@2")] {
        register(&s, run, "m");
        assert_eq!(promote(&s, v, "staging").0, 0);
        s.rampart(&["model", "approve", v]).assert().success();
        assert_eq!(promote(&s, v, "production").0, 0);
    }
    assert_eq!(s.json(&["model", "show", "m@production"])["version"], 2);
    assert_eq!(s.json(&["model", "show", "m@1"])["stage"], "archived");
    let r = s.json(&["model", "rollback", "m"]);
    assert_eq!(r["production"], 1);
    assert_eq!(r["archived"], 2);
    assert_eq!(s.json(&["model", "show", "m@production"])["version"], 1);
    assert_eq!(s.json(&["model", "show", "m@2"])["stage"], "archived");
    let list = s.json(&["model", "list"]);
    assert_eq!(list["models"][0]["production"], 1);
    let h = s.json(&["model", "history", "m"]);
    assert!(
        h["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "rollback" && e["version"] == 1)
    );
    assert!(audit_log(&s).contains("\"model.rollback\""));
    // With nothing earlier, a rollback is refused.
    let (s2, ds2) = setup();
    let run = train(&s2, &ds2, "a", "5");
    register(&s2, &run, "solo");
    let (code, _, err) = s2.run(&["model", "rollback", "solo"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn export_then_import_into_a_fresh_home_verifies() {
    let (a, ds) = setup();
    let run = train(&a, &ds, "a", "5");
    let v = register(&a, &run, "credit");
    assert_eq!(promote(&a, "credit@1", "staging").0, 0);
    a.rampart(&["model", "approve", "credit@1"])
        .assert()
        .success();
    a.json(&["model", "export", "credit@1", "-o", "credit.tar"]);
    a.rampart(&["keys", "export-public", "-o", "a.pub.pem"])
        .assert()
        .success();
    let archive = a.path().join("credit.tar");

    let b = Scratch::init();
    // Not trusted yet: refused, and not one blob byte was kept.
    let (code, _, err) = b.run(&["model", "import", archive.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not trusted"), "{err}");
    assert_eq!(registry_files(&b), 0);
    b.rampart(&[
        "trust",
        "add",
        a.path().join("a.pub.pem").to_str().unwrap(),
        "--name",
        "factory",
    ])
    .assert()
    .success();
    let imported = b.json(&["model", "import", archive.to_str().unwrap()]);
    assert_eq!(imported["version"], 1);
    assert_eq!(imported["root"], v["root"]);
    assert_eq!(imported["files"], v["files"]);
    assert_eq!(imported["stage"], "none");
    b.json(&["model", "checkout", "credit@1", "-o", "got"]);
    b.rampart(&["verify", "got/model", "--sig", "got/model.sig"])
        .assert()
        .success();
    b.rampart(&["attest", "verify", "got/provenance.json"])
        .assert()
        .success();
    // The approval came along and still counts here (the exporting key is trusted).
    assert_eq!(
        b.json(&["model", "show", "credit@1"])["approvals"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(promote(&b, "credit@1", "staging").0, 0);
    assert_eq!(promote(&b, "credit@1", "production").0, 0);

    // A modified archive is refused.
    // Inside the largest entry's content (the model blob), never in tar padding.
    let mut bytes = std::fs::read(&archive).unwrap();
    let (pos, size) = tar::Archive::new(bytes.as_slice())
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.raw_file_position(), e.size())
        })
        .max_by_key(|&(_, size)| size)
        .unwrap();
    let at = usize::try_from(pos + size / 2).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(b.path().join("bad.tar"), bytes).unwrap();
    let (code, _, err) = b.run(&["model", "import", "bad.tar", "--name", "other"]);
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("modified") || err.contains("does not verify") || err.contains("export"),
        "{err}"
    );
    assert!(b.run(&["model", "show", "other"]).0 != 0);
    assert!(audit_log(&b).contains("\"model.import\""));

    // An entry the signed manifest does not name, or a first entry that is not the manifest,
    // is refused before its bytes are read, and a refused import leaves nothing behind.
    let stored = registry_files(&b);
    // The archive's entries: (path, bytes); the manifest first.
    let real: Vec<(String, Vec<u8>)> = tar::Archive::new(std::fs::File::open(&archive).unwrap())
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            (path, bytes)
        })
        .collect();
    let manifest = real[0].1.clone();
    let (blob_path, blob) = (real[1].0.as_str(), real[1].1.as_slice());
    let big = vec![7u8; 8 << 20];
    let unnamed = format!("blobs/{}", "ab".repeat(32));
    for (name, entries) in [
        (
            "extra.tar",
            vec![
                ("export.json", manifest.as_slice()),
                (unnamed.as_str(), &big[..]),
            ],
        ),
        ("headless.tar", vec![(unnamed.as_str(), &big[..])]),
        // A named blob twice (a second copy could differ from what was checked).
        (
            "twice.tar",
            vec![
                ("export.json", manifest.as_slice()),
                (blob_path, blob),
                (blob_path, blob),
            ],
        ),
    ] {
        let mut t = tar::Builder::new(std::fs::File::create(b.path().join(name)).unwrap());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, path, data).unwrap();
        }
        t.finish().unwrap();
        let (code, _, err) = b.run(&["model", "import", name, "--name", "other"]);
        assert_eq!(code, 1, "{name}: {err}");
        assert!(
            err.contains("not a blob the signed manifest names")
                || err.contains("not the signed")
                || err.contains("appears twice"),
            "{name}: {err}"
        );
        assert_eq!(registry_files(&b), stored, "{name} left bytes behind");
    }
}

/// Files under the registry's blob store and staging areas.
fn registry_files(s: &Scratch) -> usize {
    fn count(p: &Path) -> usize {
        std::fs::read_dir(p).map_or(0, |d| {
            d.map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    count(&e.path())
                } else {
                    usize::from(
                        e.file_name() != "registry.db"
                            && !e.file_name().to_string_lossy().starts_with("registry.db-"),
                    )
                }
            })
            .sum()
        })
    }
    count(&s.home().join("registry"))
}

/// With the audit log unwritable (a link to /dev/full: a full disk), every change refuses and
/// changes nothing; once the log is back, it verifies intact and records none of them.
#[test]
fn no_change_without_its_audit_record() {
    let (s, ds) = setup();
    let run = train(&s, &ds, "a", "5");
    register(&s, &run, "m");
    let token = s.json(&["apikey", "create", "--label", "keep"]);
    let key_id = token["key"]["id"].as_str().unwrap().to_owned();
    std::fs::create_dir_all(s.path().join("more")).unwrap();
    let other = Scratch::init();
    other
        .rampart(&["keys", "export-public", "-o", "other.pub.pem"])
        .assert()
        .success();
    std::fs::copy(
        other.path().join("other.pub.pem"),
        s.path().join("other.pub.pem"),
    )
    .unwrap();

    let log = s.home().join("audit/audit.jsonl");
    let saved = s.path().join("audit.saved");
    std::fs::rename(&log, &saved).unwrap();
    std::os::unix::fs::symlink("/dev/full", &log).unwrap();
    let state = |s: &Scratch| {
        (
            std::fs::read_to_string(s.home().join("rampart.toml")).unwrap(),
            s.json(&["model", "list"]),
            s.json(&["model", "show", "m@1"])["stage"].clone(),
            s.json(&["apikey", "list"]),
        )
    };
    let before = state(&s);
    let attempts: [&[&str]; 7] = [
        &["trust", "add", "other.pub.pem", "--name", "other"],
        &["data", "roots", "add", "more"],
        &["apikey", "create", "--label", "unrecorded"],
        &["apikey", "revoke", &key_id],
        &["model", "register", run.to_str().unwrap(), "--name", "m"],
        &["model", "promote", "m@1", "--to", "staging"],
        &["data", "roots", "remove", "data"],
    ];
    for args in attempts {
        let (code, out, err) = s.run(args);
        assert_eq!(
            code, 3,
            "{args:?} went ahead without its record: {out}{err}"
        );
        assert!(err.contains("audit.jsonl"), "{args:?}: {err}");
        assert_eq!(state(&s), before, "{args:?} changed something");
    }
    std::fs::remove_file(&log).unwrap();
    std::fs::rename(&saved, &log).unwrap();
    let v = s.json(&["audit", "verify"]);
    assert!(v["failure"].is_null(), "{v}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("unrecorded") && !text.contains("\"trust.add\""));
    assert!(!text.contains("\"apikey.revoke\"") && !text.contains("\"model.promote\""));
    assert_eq!(text.matches("\"model.register\"").count(), 1);

    // A home whose audit files were deleted does not verify as an empty, intact log.
    std::fs::remove_file(&log).unwrap();
    let _ = std::fs::remove_file(s.home().join("audit/checkpoints.jsonl"));
    let (code, out, _) = s.run(&["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no records") && out.contains("registry"),
        "{out}"
    );
}

/// The two-person rule means two people: a throwaway registrant key is refused, no key that
/// produced the version (registrant, model signer, provenance signer) counts as an approver,
/// and an approval binds the version number, not only the name and digest.
#[test]
fn the_two_person_rule_excludes_every_producing_key() {
    let (s, ds) = setup();
    let run = train(&s, &ds, "a", "5");
    edit_policy(
        &s,
        "[gates.production]\n",
        "[gates.production]\ntwo_person_rule = true\n",
    );
    // A throwaway key as registrant is refused.
    let (k2, k2_pub) = second_key(s.path());
    let out = s
        .rampart(&["model", "register", run.to_str().unwrap(), "--name", "m"])
        .env("RAMPART_SIGNING_KEY_FILE", &k2)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not trusted by this home"), "{err}");
    assert!(
        s.json(&["model", "list"])["models"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Registered by a trusted second person, the model is still signed (and its provenance
    // signed) by the home key: the home key may not approve it.
    s.rampart(&["trust", "add", k2_pub.to_str().unwrap(), "--name", "bob"])
        .assert()
        .success();
    s.rampart(&["model", "register", run.to_str().unwrap(), "--name", "m"])
        .env("RAMPART_SIGNING_KEY_FILE", &k2)
        .assert()
        .success();
    assert_eq!(promote(&s, "m@1", "staging").0, 0);
    let (code, _, err) = s.run(&["model", "approve", "m@1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("signed and signed the provenance of this version")
            && err.contains("two-person rule"),
        "{err}"
    );
    // Nor does an approval it made while the rule was off count once the rule is back.
    edit_policy(&s, "two_person_rule = true\n", "");
    s.rampart(&["model", "approve", "m@1"]).assert().success();
    edit_policy(
        &s,
        "[gates.production]\n",
        "[gates.production]\ntwo_person_rule = true\n",
    );
    let (code, v) = promote(&s, "m@1", "production");
    assert_eq!(code, 1, "{v}");
    assert!(
        v.to_string()
            .contains("signed the provenance of this version"),
        "{v}"
    );

    // An approval of m@1 copied onto m@2 (same name, same root digest) does not count.
    s.rampart(&["model", "register", run.to_str().unwrap(), "--name", "m"])
        .assert()
        .success();
    let db = rusqlite::Connection::open(s.home().join("registry/registry.db")).unwrap();
    db.execute(
        "INSERT INTO approvals (version_id, approver_key, approver, bundle, at)
         SELECT (SELECT id FROM versions WHERE version = 2), approver_key, approver, bundle, at FROM approvals",
        [],
    )
    .unwrap();
    drop(db);
    assert_eq!(promote(&s, "m@2", "staging").0, 0);
    let (code, v) = promote(&s, "m@2", "production");
    assert_eq!(code, 1, "{v}");
    assert!(v.to_string().contains("not m@2"), "{v}");
}
