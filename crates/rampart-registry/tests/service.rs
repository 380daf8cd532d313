//! Register and promote as library calls, without the CLI: a home, its policy, an in-memory
//! audit sink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rampart_audit::{AuditError, AuditSink, Auditor, Event, MemorySink, Record};
use rampart_home::{Home, Session};
use rampart_registry::service::{self, Promotion, RegisterRequest};
use rampart_registry::{Registry, RegistryError, Stage};

/// Register `model` as `m`, its signature in the usual place.
fn request(model: &std::path::Path) -> RegisterRequest<'_> {
    RegisterRequest {
        path: model,
        name: "m",
        signature: None,
        provenance: None,
        metrics: None,
    }
}

/// A safetensors file with one F32 tensor of two values.
fn safetensors(v: f32) -> Vec<u8> {
    let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    for _ in 0..2 {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A home whose staging gate asks for a signature and a clean scan only, and a model signed
/// by the home's key.
fn setup() -> (tempfile::TempDir, Home, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("model.safetensors"), safetensors(1.0)).unwrap();
    let (key, _) = home.signing_key().unwrap();
    let sig = model.join("model.sig");
    let signed = rampart_crypto::oms::sign_model(
        &model,
        &key,
        &rampart_crypto::oms::SignOptions::new(&sig),
        &|_| {},
    )
    .unwrap();
    std::fs::write(&sig, signed.bundle).unwrap();
    (dir, home, model)
}

/// A session of `tester` on `home`, recording into `sink`.
fn session<'a>(
    home: &'a Home,
    policy: &'a rampart_home::Policy,
    sink: &'a dyn AuditSink,
) -> Session<'a> {
    Session {
        home,
        policy,
        audit: Auditor::new(Some(sink), "tester"),
    }
}

/// Adds `keys` to the policy's `[gates.staging]` table (the default file has it, commented).
fn with_staging_gates(home: &Home, keys: &str) {
    let text = std::fs::read_to_string(home.policy_path()).unwrap();
    assert!(text.contains("[gates.staging]\n"));
    let text = text.replacen("[gates.staging]\n", &format!("[gates.staging]\n{keys}"), 1);
    std::fs::write(home.policy_path(), text).unwrap();
}

#[test]
fn register_then_promote_through_the_policys_gates_all_on_record() {
    let (_dir, home, model) = setup();
    with_staging_gates(
        &home,
        "require_provenance = false\nrequire_scan_clean = true\n",
    );
    let policy = home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = session(&home, &policy, &sink);
    let mut reg = Registry::open(&home.root().join("registry")).unwrap();
    let req = request(&model);
    let v = service::register(&s, &mut reg, &req).unwrap();
    assert_eq!((v.name.as_str(), v.version), ("m", 1));
    let p = service::promote(&s, &mut reg, "m@1", Stage::Staging, &|_| true).unwrap();
    let Promotion::Promoted {
        transition, checks, ..
    } = p
    else {
        panic!("{p:?}")
    };
    assert_eq!(transition.to, Stage::Staging);
    let gates: Vec<&str> = checks.iter().map(|c| c.gate).collect();
    assert_eq!(gates, ["signature", "scan"]);
    assert_eq!(reg.resolve("m@staging").unwrap().version, 1);
    // Production asks for an approval by default: refused, nothing moves, and it is audited.
    let p = service::promote(&s, &mut reg, "m@1", Stage::Production, &|_| true).unwrap();
    let Promotion::Refused { checks, .. } = p else {
        panic!("{p:?}")
    };
    assert!(checks.iter().any(|c| c.gate == "approvals" && !c.ok));
    assert!(reg.resolve("m@production").is_err());
    assert_eq!(
        sink.actions(),
        [
            ("model.register".to_owned(), "ok".to_owned()),
            ("model.promote".to_owned(), "ok".to_owned()),
            ("model.promote".to_owned(), "denied".to_owned()),
        ]
    );
}

#[test]
fn a_model_whose_files_changed_after_signing_is_refused_and_audited() {
    let (_dir, home, model) = setup();
    std::fs::write(model.join("model.safetensors"), safetensors(2.0)).unwrap();
    let policy = home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = session(&home, &policy, &sink);
    let mut reg = Registry::open(&home.root().join("registry")).unwrap();
    let err = service::register(&s, &mut reg, &request(&model)).unwrap_err();
    assert!(matches!(err, RegistryError::Refused(_)), "{err}");
    assert!(reg.resolve("m").is_err(), "nothing was registered");
    assert_eq!(
        sink.actions(),
        [("model.register".to_owned(), "denied".to_owned())]
    );
}

#[test]
fn a_change_that_cannot_be_recorded_is_not_made() {
    struct Broken;
    impl AuditSink for Broken {
        fn append(&self, _: Event) -> Result<Record, AuditError> {
            Err(AuditError::RecordTooLarge {
                action: "x".into(),
                len: 1,
                max: 0,
            })
        }
    }
    let (_dir, home, model) = setup();
    let policy = home.load_policy().unwrap();
    let s = session(&home, &policy, &Broken);
    let mut reg = Registry::open(&home.root().join("registry")).unwrap();
    let err = service::register(&s, &mut reg, &request(&model)).unwrap_err();
    assert!(matches!(err, RegistryError::Audit(_)), "{err}");
    assert!(reg.resolve("m").is_err(), "the version was rolled back");
}
