//! Loading models to serve, as a library call: a registry of signed versions, the trusted
//! keys, an in-memory audit sink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use rampart_audit::{Auditor, MemorySink};
use rampart_home::{Classify, Home, Session};
use rampart_ml::forest::{ForestParams, RandomForest};
use rampart_ml::iforest::{IsolationForest, IsolationParams};
use rampart_ml::{Estimator, Matrix, Model};
use rampart_registry::Registry;
use rampart_registry::service::{self, RegisterRequest};
use rampart_serve::load::{LoadError, LoadErrorKind, ModelSetup, load_model, load_served};

fn data() -> (Matrix, Vec<usize>) {
    let mut v = Vec::new();
    let mut y = Vec::new();
    for i in 0..40u8 {
        let a = f32::from(i) / 40.0;
        v.extend([a, 1.0 - a]);
        y.push(usize::from(i >= 20));
    }
    (Matrix::new(40, 2, v).unwrap(), y)
}

fn features(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn forest(names: &[&str]) -> Model {
    let (x, y) = data();
    let params = ForestParams {
        n_trees: 3,
        ..ForestParams::default()
    };
    let rf = RandomForest::fit(&x, &y, 2, &params).unwrap();
    Model::new(
        Estimator::RandomForest(rf),
        &x,
        features(names),
        features(&["no", "yes"]),
        serde_json::json!({}),
    )
    .unwrap()
}

fn isolation(names: &[&str]) -> Model {
    let (x, _) = data();
    let params = IsolationParams {
        n_trees: 3,
        ..IsolationParams::default()
    };
    let f = IsolationForest::fit(&x, &params).unwrap();
    Model::new(
        Estimator::IsolationForest(f),
        &x,
        features(names),
        Vec::new(),
        serde_json::json!({}),
    )
    .unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    home: Home,
    reg: Registry,
    sink: MemorySink,
}

/// Signs `model` with the home's key and registers it as `name` (version 1).
fn register(f: &mut Fixture, dir: &Path, name: &str, model: &Model) {
    register_files(
        f,
        dir,
        name,
        &[("model.safetensors", model.to_bytes().unwrap())],
    );
}

/// Signs `files` with the home's key and registers them as the next version of `name`.
fn register_files(f: &mut Fixture, dir: &Path, name: &str, files: &[(&str, Vec<u8>)]) {
    register_with(f, dir, name, files, None);
}

/// As [`register_files`], with a provenance statement signed by the home's key whose
/// `rampart-metrics` byproduct is `computed`.
fn register_with(
    f: &mut Fixture,
    dir: &Path,
    name: &str,
    files: &[(&str, Vec<u8>)],
    computed: Option<serde_json::Value>,
) {
    let path = dir.join(format!(
        "{name}-{}",
        f.reg.resolve(name).map_or(1, |v| v.version + 1)
    ));
    std::fs::create_dir(&path).unwrap();
    for (file, bytes) in files {
        std::fs::write(path.join(file), bytes).unwrap();
    }
    let (key, _) = f.home.signing_key().unwrap();
    let sig = path.join("model.sig");
    let signed = rampart_crypto::oms::sign_model(
        &path,
        &key,
        &rampart_crypto::oms::SignOptions::new(&sig),
        &|_| {},
    )
    .unwrap();
    std::fs::write(&sig, signed.bundle).unwrap();
    let provenance = computed.map(|content| {
        let p = rampart_crypto::provenance::Provenance {
            subjects: files
                .iter()
                .map(|(file, bytes)| {
                    rampart_crypto::provenance::Artifact::new(*file, rampart_crypto::sha256(bytes))
                })
                .collect(),
            build_type: "https://rampart.dev/train/exec/v1".into(),
            external_parameters: serde_json::json!({}),
            resolved_dependencies: Vec::new(),
            builder_id: "https://rampart.dev/builder".into(),
            builder_version: "test".into(),
            invocation_id: "run-1".into(),
            started_on: "2026-12-06T00:00:00Z".into(),
            finished_on: "2026-12-06T00:01:00Z".into(),
            byproducts: vec![serde_json::json!({"name": "rampart-metrics", "content": content})],
        };
        let file = dir.join(format!("{name}-provenance.json"));
        std::fs::write(&file, p.sign(&key)).unwrap();
        file
    });
    let policy = f.home.load_policy().unwrap();
    let s = session(&f.home, &policy, &f.sink);
    let req = RegisterRequest {
        path: &path,
        name,
        signature: None,
        provenance: provenance.as_deref(),
        metrics: None,
    };
    service::register(&s, &mut f.reg, &req).unwrap();
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let reg = Registry::open(&home.root().join("registry")).unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    let mut f = Fixture {
        _dir: dir,
        home,
        reg,
        sink: MemorySink::new(),
    };
    register(&mut f, &models, "rf", &forest(&["a", "b"]));
    register(&mut f, &models, "iso", &isolation(&["a", "b"]));
    register(&mut f, &models, "iso-other", &isolation(&["c", "d"]));
    f
}

fn session<'a>(
    home: &'a Home,
    policy: &'a rampart_home::Policy,
    sink: &'a MemorySink,
) -> Session<'a> {
    Session {
        home,
        policy,
        audit: Auditor::new(Some(sink), "tester"),
    }
}

fn setup(f: &Fixture) -> ModelSetup {
    let (key, _) = f.home.signing_key().unwrap();
    ModelSetup {
        keys: vec![key.public_key()],
        anchors: rampart_crypto::oms::Anchors::default(),
        outputs: Vec::new(),
        detectors: Vec::new(),
        drift_window: 100,
        onnx: rampart_serve::onnx::OnnxLimits::default(),
        onnx_isolation: None,
        shared: None,
    }
}

#[test]
fn a_signed_version_loads_with_its_detector_and_each_load_is_audited() {
    let f = fixture();
    let mut setup = setup(&f);
    setup.detectors = vec![("rf".into(), "iso@1".into())];
    let policy = f.home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = session(&f.home, &policy, &sink);
    let models = load_served(&s, &f.reg, &["rf@1".into()], &setup).unwrap();
    assert_eq!(models.len(), 1);
    let m = &models[0];
    assert_eq!((m.name.as_str(), m.version), ("rf", 1));
    assert_eq!(m.root, f.reg.resolve("rf@1").unwrap().root.to_hex());
    assert_eq!(m.builtin().unwrap().meta.features, ["a", "b"]);
    assert_eq!(sink.actions(), [("serve.load".to_owned(), "ok".to_owned())]);
}

#[test]
fn a_version_signed_by_an_untrusted_key_is_refused_and_the_refusal_names_why() {
    let f = fixture();
    let mut setup = setup(&f);
    setup.keys = vec![rampart_crypto::SigningKey::generate().public_key()];
    let err = load_model(&f.reg, "rf@1", &setup).unwrap_err();
    assert!(matches!(err, LoadError::Unverified { .. }), "{err}");
    assert_eq!(err.kind(), LoadErrorKind::Verification);
    assert!(
        err.to_string().starts_with("rf@1: refusing to serve it"),
        "{err}"
    );
    // Through the audited path the refusal is recorded with its reason.
    let policy = f.home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = session(&f.home, &policy, &sink);
    assert!(load_served(&s, &f.reg, &["rf@1".into()], &setup).is_err());
    let records = sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].action, "serve.load");
    assert_eq!(records[0].outcome.as_str(), "denied");
    let reason = records[0].details["reason"].as_str().unwrap();
    assert!(reason.contains("refusing to serve it"), "{reason}");
}

#[test]
fn a_blob_changed_in_the_registry_is_caught_when_it_is_loaded() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = fixture();
    let v = f.reg.resolve("rf@1").unwrap();
    let file = v
        .files
        .iter()
        .find(|x| x.name == "model.safetensors")
        .unwrap();
    let blob = f.reg.blobs().local_path(&file.sha256).unwrap();
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let err = load_model(&f.reg, "rf@1", &setup(&f)).unwrap_err();
    assert_eq!(err.kind(), LoadErrorKind::Verification, "{err}");
}

#[test]
fn a_detector_must_be_an_isolation_forest_over_the_models_features() {
    let f = fixture();
    let mut s = setup(&f);
    s.detectors = vec![("rf".into(), "rf@1".into())];
    let err = load_model(&f.reg, "rf@1", &s).unwrap_err();
    assert!(err.to_string().contains("not an isolation forest"), "{err}");
    s.detectors = vec![("rf".into(), "iso-other@1".into())];
    let err = load_model(&f.reg, "rf@1", &s).unwrap_err();
    assert!(matches!(err, LoadError::Detector { .. }), "{err}");
    assert_eq!(err.kind(), LoadErrorKind::Input);
    assert!(err.hint().unwrap().contains("same columns"));
}

#[test]
fn a_bare_name_means_production_and_an_unknown_one_is_an_input_error() {
    let f = fixture();
    let err = load_model(&f.reg, "rf", &setup(&f)).unwrap_err();
    assert!(matches!(err, LoadError::Unknown { .. }), "{err}");
    assert!(err.to_string().starts_with("rf@production"), "{err}");
    assert_eq!(err.kind(), LoadErrorKind::Input);
}

#[test]
fn a_signed_safetensors_file_that_is_not_a_rampart_model_is_refused_not_served() {
    let mut f = fixture();
    // A well-formed, correctly signed safetensors file of someone else's tensors.
    let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 8]);
    let dir = f._dir.path().join("foreign");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("plain");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("model.safetensors"), &bytes).unwrap();
    let (key, _) = f.home.signing_key().unwrap();
    let sig = path.join("model.sig");
    let signed = rampart_crypto::oms::sign_model(
        &path,
        &key,
        &rampart_crypto::oms::SignOptions::new(&sig),
        &|_| {},
    )
    .unwrap();
    std::fs::write(&sig, signed.bundle).unwrap();
    let policy = f.home.load_policy().unwrap();
    let s = session(&f.home, &policy, &f.sink);
    let req = RegisterRequest {
        path: &path,
        name: "plain",
        signature: None,
        provenance: None,
        metrics: None,
    };
    service::register(&s, &mut f.reg, &req).unwrap();
    let err = load_model(&f.reg, "plain@1", &setup(&f)).unwrap_err();
    assert!(matches!(err, LoadError::NotServable { .. }), "{err}");
    assert!(err.to_string().contains("not a rampart model"), "{err}");
}

fn onnx_corpus(file: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/interop/onnx-models")
            .join(file),
    )
    .unwrap()
}

/// A registered version holding one ONNX file is served by ONNX Runtime (needs
/// `RAMPART_ONNXRUNTIME`, which `.ci/run` sets); two ONNX files, a detector for it, or an op
/// the runtime lacks are refusals naming why.
#[test]
fn a_registered_onnx_version_loads_and_what_cannot_run_is_refused_by_name() {
    let mut f = fixture();
    let models = f._dir.path().join("models");
    register_files(
        &mut f,
        &models,
        "sk",
        &[("model.onnx", onnx_corpus("sk_rf.onnx"))],
    );
    let setup = setup(&f);
    let m = load_model(&f.reg, "sk@1", &setup).unwrap();
    let rampart_serve::Runner::Onnx(onnx) = &m.runner else {
        panic!("not served as ONNX");
    };
    assert_eq!(onnx.inputs()[0].name, "X");
    assert!(m.builtin().is_none());
    // Registered without rampart's scoring, it records no reference input: no drift window,
    // and no detector can be matched to its columns.
    assert!(m.reference.is_none() && m.schema().is_empty());
    let mut with_detector = setup.clone();
    with_detector.detectors = vec![("sk".into(), "iso@1".into())];
    let e = load_model(&f.reg, "sk@1", &with_detector).unwrap_err();
    assert!(matches!(e, LoadError::Detector { .. }), "{e}");
    assert!(e.to_string().contains("no reference input"), "{e}");
    // Two graphs in one version: which one to serve is not guessed.
    register_files(
        &mut f,
        &models,
        "two",
        &[
            ("a.onnx", onnx_corpus("sk_rf.onnx")),
            ("b.onnx", onnx_corpus("sk_gbm.onnx")),
        ],
    );
    let e = load_model(&f.reg, "two@1", &setup).unwrap_err();
    assert!(e.to_string().contains("2 ONNX files"), "{e}");
    assert_eq!(e.kind(), LoadErrorKind::Input);
    // Neither a rampart model nor ONNX.
    register_files(&mut f, &models, "text", &[("notes.txt", b"hello".to_vec())]);
    let e = load_model(&f.reg, "text@1", &setup).unwrap_err();
    assert!(e.to_string().contains(".onnx"), "{e}");
}

/// An ONNX model's drift reference comes from its signed provenance, verified at every load:
/// the registry database's copy is not what the gateway trusts. Rewriting it (to blind drift
/// and anomaly checks) changes nothing; a provenance blob that no longer verifies stops the
/// model.
#[test]
fn an_onnx_models_reference_is_read_from_its_signed_provenance_not_the_database() {
    let mut f = fixture();
    let models = f._dir.path().join("models");
    let stats = |shift: f64| -> Vec<serde_json::Value> {
        (0..6)
            .map(|j| {
                let deciles: Vec<f64> = [-1.28, -0.84, -0.52, -0.25, 0.0, 0.25, 0.52, 0.84, 1.28]
                    .iter()
                    .map(|d| d + shift)
                    .collect();
                serde_json::json!({
                    "name": format!("f{j}"), "min": -3.0 + shift, "max": 3.0 + shift,
                    "mean": shift, "std": 1.0, "deciles": deciles,
                })
            })
            .collect()
    };
    let computed = serde_json::json!({
        "scores": {"accuracy": 0.9, "rows": 40},
        "reference": {"input": "X", "input_schema": stats(0.0)},
    });
    register_with(
        &mut f,
        &models,
        "sk",
        &[("model.onnx", onnx_corpus("sk_rf.onnx"))],
        Some(computed),
    );
    let setup = setup(&f);
    let means = |m: &rampart_serve::LoadedModel| -> Vec<f64> {
        m.reference
            .as_ref()
            .unwrap()
            .stats
            .iter()
            .map(|s| s.mean)
            .collect()
    };
    let m = load_model(&f.reg, "sk@1", &setup).unwrap();
    assert_eq!(means(&m), vec![0.0; 6]);
    assert_eq!(m.schema().len(), 6);
    // Whoever can write the database rewrites the reference: the gateway keeps the signed one.
    let db = rusqlite::Connection::open(f.home.root().join("registry/registry.db")).unwrap();
    let forged = serde_json::json!({"input": "X", "input_schema": stats(1000.0)}).to_string();
    let changed = db
        .execute(
            "UPDATE versions SET input_schema = ?1 WHERE model_id = (SELECT id FROM models WHERE name = 'sk')",
            [&forged],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let reg = Registry::open(&f.home.root().join("registry")).unwrap();
    assert_eq!(
        reg.resolve("sk@1").unwrap().input_schema.clone().unwrap()["input_schema"][0]["mean"],
        1000.0,
        "the database holds the forged copy"
    );
    let m = load_model(&reg, "sk@1", &setup).unwrap();
    assert_eq!(
        means(&m),
        vec![0.0; 6],
        "the signed reference, not the forged one"
    );
    // Another model's valid provenance put in its place: it does not name this model's file.
    register_with(
        &mut f,
        &models,
        "gb",
        &[("model.onnx", onnx_corpus("sk_gbm.onnx"))],
        Some(serde_json::json!({"scores": null, "not_scored": "test"})),
    );
    let own: String = db
        .query_row(
            "SELECT provenance FROM versions WHERE model_id = (SELECT id FROM models WHERE name = 'sk')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let swap = |from: &str, to: &str| {
        db.execute(
            &format!("UPDATE versions SET provenance = (SELECT provenance FROM versions WHERE model_id = (SELECT id FROM models WHERE name = '{from}')) WHERE model_id = (SELECT id FROM models WHERE name = '{to}')"),
            [],
        )
        .unwrap();
    };
    swap("gb", "sk");
    let reg = Registry::open(&f.home.root().join("registry")).unwrap();
    let e = load_model(&reg, "sk@1", &setup).unwrap_err();
    assert!(e.to_string().contains("does not name model.onnx"), "{e}");
    assert_eq!(e.kind(), LoadErrorKind::Verification);
    db.execute(
        "UPDATE versions SET provenance = ?1 WHERE model_id = (SELECT id FROM models WHERE name = 'sk')",
        [&own],
    )
    .unwrap();
    // The provenance blob itself rewritten: it no longer verifies, and the model is not served.
    let digest = reg.resolve("sk@1").unwrap().provenance.unwrap();
    let blob = reg.blobs().local_path(&digest).unwrap();
    let text = std::fs::read_to_string(&blob).unwrap();
    let mut perms = std::fs::metadata(&blob).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&blob, perms).unwrap();
    std::fs::write(
        &blob,
        text.replacen("\"payload\"", "\"payload\" ", 1)
            .replace("eyJ", "eyK"),
    )
    .unwrap();
    let e = load_model(&reg, "sk@1", &setup).unwrap_err();
    assert_eq!(e.kind(), LoadErrorKind::Verification, "{e}");
}
