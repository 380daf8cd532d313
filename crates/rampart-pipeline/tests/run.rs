//! The pipeline run as a library, without the CLI: a home, a signed-by-nobody CSV source, a
//! user trainer (`/bin/sh` copying a safetensors file) in the real sandbox, and the home's own
//! audit log. This test binary is its own sandbox helper (it calls
//! `rampart_sandbox::test_main`, which runs the helper first), so it has no libtest harness.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use rampart_audit::AuditLog;
use rampart_home::{Classify, Home};
use rampart_ingest::{ErrorKind, IngestError};
use rampart_pipeline::run::{RunError, RunOutcome, Runner, run};
use rampart_sandbox::Sandbox;

/// A safetensors file with one F32 tensor of two values.
fn safetensors() -> Vec<u8> {
    let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    for v in [1.0f32, 2.0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

const SCHEMA: &str = r#"
version = 1
[label]
column = "label"
classes = ["no", "yes"]
[[columns]]
name = "id"
type = "int"
unique = true
[[columns]]
name = "x"
type = "int"
min = 0
max = 1000
[[columns]]
name = "label"
type = "string"
"#;

struct Fixture {
    dir: tempfile::TempDir,
    home: Home,
    spec: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    home.data_root_add(&data, &mut |_| Ok(())).unwrap();
    let mut csv = String::from("id,x,label\n");
    for i in 0..40 {
        csv.push_str(&format!("{i},{},{}\n", i * 7 % 100, ["no", "yes"][i % 2]));
    }
    std::fs::write(data.join("rows.csv"), &csv).unwrap();
    // The source is pinned by its digest in the spec (it is signed by nobody).
    let pin = rampart_crypto::sha256(csv.as_bytes())
        .reference()
        .to_string();
    std::fs::write(dir.path().join("schema.toml"), SCHEMA).unwrap();
    let code = dir.path().join("code");
    std::fs::create_dir(&code).unwrap();
    std::fs::write(code.join("weights.safetensors"), safetensors()).unwrap();
    let weights = code.join("weights.safetensors").display().to_string();
    let spec = dir.path().join("pipeline.toml");
    std::fs::write(
        &spec,
        format!(
            r#"[pipeline]
name = "lib"
[source]
path = "data/rows.csv"
schema = "schema.toml"
sha256 = "{pin}"
[train]
label = "label"
[train.trainer]
command = ["/bin/sh", "-c", "cp \"$0\" \"$RAMPART_OUTPUT/model.safetensors\"", "{weights}"]
read = ["code"]
"#,
        ),
    )
    .unwrap();
    Fixture { dir, home, spec }
}

/// Runs the pipeline, collecting its progress lines.
fn run_it(f: &Fixture, from: Option<&str>) -> (Result<RunOutcome, RunError>, Vec<String>) {
    let log = AuditLog::open(&f.home.audit_dir()).unwrap();
    // The home's own identity, as `rampart` unlocks it when no other key is given.
    let keys = || {
        let (id, _) = f
            .home
            .age_identity()
            .map_err(|e| IngestError::Request(e.to_string()))?;
        Ok(rampart_crypto::age_file::Unlock::identities(vec![
            id.as_age().clone(),
        ]))
    };
    let lines = RefCell::new(Vec::new());
    let progress = |l: &str| lines.borrow_mut().push(l.to_owned());
    let sandbox = Sandbox::current_exe().unwrap();
    let runner = Runner {
        home: &f.home,
        log: &log,
        actor: "tester",
        keys: &keys,
        sandbox: &sandbox,
        builtin: Path::new("/nonexistent/rampart"),
        onnx_worker: None,
        progress: &progress,
    };
    let got = run(&runner, &f.spec, from);
    (got, lines.into_inner())
}

fn statuses(o: &RunOutcome) -> Vec<(&str, &str)> {
    o.steps
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect()
}

fn a_pipeline_runs_every_stage_in_process_then_reuses_them_verified() {
    let f = fixture();
    let (got, lines) = run_it(&f, None);
    let o = got.unwrap();
    assert_eq!(o.failure, None, "{lines:?}");
    assert_eq!(
        statuses(&o),
        [
            ("ingest", "ran"),
            ("train", "ran"),
            ("verify", "ran"),
            ("register", "ran"),
            ("promote", "ran")
        ]
    );
    assert_eq!(
        lines.len(),
        10,
        "a running and a done line per step: {lines:?}"
    );
    let registry = o.registry.as_ref().unwrap();
    assert_eq!(
        (
            registry.name.as_str(),
            registry.version,
            registry.stage.as_str()
        ),
        ("lib", 1, "staging")
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&o.report_json).unwrap()).unwrap();
    assert_eq!(report["outcome"], "ok");
    assert_eq!(report["data"]["counts"]["accepted"], 40);
    let html = std::fs::read_to_string(&o.report_html).unwrap();
    assert!(html.contains("<html") && html.contains("lib@1"), "{html}");
    // The services audited themselves in the home's log, between the run's start and end.
    let log = AuditLog::open(&f.home.audit_dir()).unwrap();
    let actions: Vec<String> = log
        .records()
        .unwrap()
        .map(|r| r.to_value()["action"].as_str().unwrap_or("").to_owned())
        .collect();
    for want in [
        "pipeline.run",
        "data.ingest",
        "train.run",
        "verify",
        "model.register",
        "pipeline.step",
    ] {
        assert!(
            actions.iter().any(|a| a == want),
            "{want} not in {actions:?}"
        );
    }
    // A second run reuses every step after re-verifying it.
    let (again, lines) = run_it(&f, None);
    let again = again.unwrap();
    assert!(
        again.steps.iter().all(|s| s.status == "reused"),
        "{:?} {lines:?}",
        statuses(&again)
    );
    // --from train runs train and everything after it again: a new version.
    let (forced, _) = run_it(&f, Some("train"));
    let forced = forced.unwrap();
    assert_eq!(forced.steps[0].status, "reused");
    assert!(forced.steps[1..].iter().all(|s| s.status == "ran"));
    assert_eq!(forced.registry.unwrap().version, 2);
}

fn a_changed_model_stops_the_run_as_a_failed_step_not_an_error() {
    let f = fixture();
    let o = run_it(&f, None).0.unwrap();
    assert_eq!(o.failure, None);
    let runs = f.home.root().join("runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(run_dir.join("model/model.safetensors"), b"tampered").unwrap();
    let (got, lines) = run_it(&f, None);
    let o = got.unwrap();
    let (step, why) = o.failure.clone().unwrap();
    assert_eq!(step, "train", "{lines:?}");
    assert!(
        why.contains("no longer verifies") && why.contains("--from train"),
        "{why}"
    );
    assert_eq!(o.steps[2].status, "not-run");
    // It stays failed until it is rebuilt on purpose.
    let (got, _) = run_it(&f, None);
    assert_eq!(got.unwrap().failure.unwrap().0, "train");
    let (got, _) = run_it(&f, Some("train"));
    assert_eq!(got.unwrap().failure, None);
}

fn what_cannot_run_is_a_typed_error_before_anything_runs() {
    let f = fixture();
    let err = run_it(&f, Some("sign")).0.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input);
    assert!(
        err.to_string()
            .contains("ingest, train, verify, register, promote"),
        "{err}"
    );
    std::fs::write(&f.spec, "[pipeline]\nname = \"x\"\n").unwrap();
    let err = run_it(&f, None).0.unwrap_err();
    assert!(
        matches!(err, RunError::Pipeline(_)) && err.kind() == ErrorKind::Input,
        "{err}"
    );
    assert!(err.hint().is_some());
    assert!(!f.home.root().join("pipelines/lib").exists());
    // A source outside the home's data roots is the ingest step's failure, on record.
    let f = fixture();
    let outside = f.dir.path().join("elsewhere.csv");
    std::fs::copy(f.dir.path().join("data/rows.csv"), &outside).unwrap();
    let text = std::fs::read_to_string(&f.spec)
        .unwrap()
        .replace("data/rows.csv", "elsewhere.csv");
    std::fs::write(&f.spec, text).unwrap();
    let o = run_it(&f, None).0.unwrap();
    let (step, why) = o.failure.unwrap();
    assert_eq!(step, "ingest");
    assert!(why.contains("ingest refused"), "{why}");
}

fn main() {
    let cases: &[(&str, fn())] = &[
        (
            "a_pipeline_runs_every_stage_in_process_then_reuses_them_verified",
            a_pipeline_runs_every_stage_in_process_then_reuses_them_verified,
        ),
        (
            "a_changed_model_stops_the_run_as_a_failed_step_not_an_error",
            a_changed_model_stops_the_run_as_a_failed_step_not_an_error,
        ),
        (
            "what_cannot_run_is_a_typed_error_before_anything_runs",
            what_cannot_run_is_a_typed_error_before_anything_runs,
        ),
    ];
    rampart_sandbox::test_main(cases);
}
