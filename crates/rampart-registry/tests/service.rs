//! Register and promote as library calls, without the CLI: a home, its policy, an in-memory
//! audit sink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rampart_audit::{AuditError, AuditSink, Auditor, Event, MemorySink, Record};
use rampart_home::{Home, Session};
use rampart_registry::service::{self, Approval, Promotion, RegisterRequest, Rollback};
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
    write_signed(&home, &model, 1.0);
    (dir, home, model)
}

/// Writes `model/model.safetensors` holding `value` and signs it with the home's key.
fn write_signed(home: &Home, model: &std::path::Path, value: f32) {
    std::fs::write(model.join("model.safetensors"), safetensors(value)).unwrap();
    let (key, _) = home.signing_key().unwrap();
    let sig = model.join("model.sig");
    let signed = rampart_crypto::oms::sign_model(
        model,
        &key,
        &rampart_crypto::oms::SignOptions::new(&sig),
        &|_| {},
    )
    .unwrap();
    std::fs::write(&sig, signed.bundle).unwrap();
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
    with_gates(home, "staging", keys);
}

/// Adds `keys` to the policy's `[gates.STAGE]` table.
fn with_gates(home: &Home, stage: &str, keys: &str) {
    let table = format!("[gates.{stage}]\n");
    let text = std::fs::read_to_string(home.policy_path()).unwrap();
    assert!(text.contains(&table));
    let text = text.replacen(&table, &format!("{table}{keys}"), 1);
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

#[test]
fn an_approval_counts_once_from_a_trusted_key_that_did_not_produce_the_version() {
    let (_dir, home, model) = setup();
    with_gates(
        &home,
        "production",
        "require_provenance = false\ntwo_person_rule = true\n",
    );
    with_staging_gates(&home, "require_provenance = false\n");
    let sink = MemorySink::new();
    let mut reg = Registry::open(&home.root().join("registry")).unwrap();
    let policy = home.load_policy().unwrap();
    let s = session(&home, &policy, &sink);
    service::register(&s, &mut reg, &request(&model)).unwrap();
    // The registrant's own key: the two-person rule refuses it.
    let (own, _) = home.signing_key().unwrap();
    let a = service::approve(&s, &mut reg, "m@1", Stage::Production, &own).unwrap();
    let Approval::Refused { reason, .. } = a else {
        panic!("{a:?}")
    };
    assert!(reason.contains("two-person rule"), "{reason}");
    // A key the home does not trust.
    let bob = rampart_crypto::SigningKey::generate();
    let a = service::approve(&s, &mut reg, "m@1", Stage::Production, &bob).unwrap();
    let Approval::Refused { reason, .. } = a else {
        panic!("{a:?}")
    };
    assert!(reason.contains("not trusted"), "{reason}");
    // Production is still out of reach.
    let p = service::promote(&s, &mut reg, "m@1", Stage::Production, &|_| true).unwrap();
    assert!(matches!(p, Promotion::Refused { .. }), "{p:?}");
    // Once trusted, bob's approval counts, once.
    home.trust_add("bob", &bob.public_key(), &mut |_| Ok(()))
        .unwrap();
    let policy = home.load_policy().unwrap();
    let s = session(&home, &policy, &sink);
    let a = service::approve(&s, &mut reg, "m@1", Stage::Production, &bob).unwrap();
    assert!(matches!(a, Approval::Approved { .. }), "{a:?}");
    assert_eq!(
        reg.approvals(&reg.resolve("m@1").unwrap()).unwrap().len(),
        1
    );
    let a = service::approve(&s, &mut reg, "m@1", Stage::Production, &bob).unwrap();
    let Approval::Refused { reason, .. } = a else {
        panic!("{a:?}")
    };
    assert!(reason.contains("already approved"), "{reason}");
    service::promote(&s, &mut reg, "m@1", Stage::Staging, &|_| true).unwrap();
    let p = service::promote(&s, &mut reg, "m@1", Stage::Production, &|_| true).unwrap();
    assert!(matches!(p, Promotion::Promoted { .. }), "{p:?}");
    let approvals: Vec<String> = sink
        .actions()
        .into_iter()
        .filter(|(a, _)| a == "model.approve")
        .map(|(_, o)| o)
        .collect();
    assert_eq!(approvals, ["denied", "denied", "ok", "denied"]);
}

#[test]
fn a_rollback_brings_back_the_previous_production_version_only_while_it_verifies() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_dir, home, model) = setup();
    with_gates(
        &home,
        "production",
        "require_provenance = false\napprovals = 0\n",
    );
    with_staging_gates(&home, "require_provenance = false\n");
    let sink = MemorySink::new();
    let mut reg = Registry::open(&home.root().join("registry")).unwrap();
    let policy = home.load_policy().unwrap();
    let s = session(&home, &policy, &sink);
    service::register(&s, &mut reg, &request(&model)).unwrap();
    for stage in [Stage::Staging, Stage::Production] {
        let p = service::promote(&s, &mut reg, "m@1", stage, &|_| true).unwrap();
        assert!(matches!(p, Promotion::Promoted { .. }), "{p:?}");
    }
    write_signed(&home, &model, 2.0);
    service::register(&s, &mut reg, &request(&model)).unwrap();
    for stage in [Stage::Staging, Stage::Production] {
        let p = service::promote(&s, &mut reg, "m@2", stage, &|_| true).unwrap();
        assert!(matches!(p, Promotion::Promoted { .. }), "{p:?}");
    }
    assert_eq!(reg.resolve("m@production").unwrap().version, 2);
    let r = service::rollback(&s, &mut reg, "m").unwrap();
    let Rollback::RolledBack(t) = r else {
        panic!("{r:?}")
    };
    assert_eq!((t.version, t.displaced), (1, Some(2)));
    assert_eq!(reg.resolve("m@production").unwrap().version, 1);
    // Version 2 is now the previous one; a changed blob keeps it from coming back.
    let v2 = reg.resolve("m@2").unwrap();
    let blob = reg.blobs().local_path(&v2.files[0].sha256).unwrap();
    std::fs::set_permissions(&blob, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&blob, safetensors(3.0)).unwrap();
    let r = service::rollback(&s, &mut reg, "m").unwrap();
    assert!(matches!(r, Rollback::Refused { .. }), "{r:?}");
    assert_eq!(
        reg.resolve("m@production").unwrap().version,
        1,
        "nothing moved"
    );
    let rollbacks: Vec<String> = sink
        .actions()
        .into_iter()
        .filter(|(a, _)| a == "model.rollback")
        .map(|(_, o)| o)
        .collect();
    assert_eq!(rollbacks, ["ok", "denied"]);
}

#[test]
fn export_import_and_checkout_carry_a_version_between_homes_on_record() {
    let (dir, a, model) = setup();
    let policy_a = a.load_policy().unwrap();
    let sink_a = MemorySink::new();
    let sa = session(&a, &policy_a, &sink_a);
    let mut reg_a = Registry::open(&a.root().join("registry")).unwrap();
    let v = service::register(&sa, &mut reg_a, &request(&model)).unwrap();
    let archive = dir.path().join("m.tar");
    let e = service::export(&sa, &reg_a, "m@1", &archive).unwrap();
    let (key, _) = a.signing_key().unwrap();
    assert_eq!(e.key, key.public_key().fingerprint().to_string());
    assert!(archive.is_file());
    assert!(service::export(&sa, &reg_a, "m@9", &dir.path().join("x.tar")).is_err());

    // A home that does not trust the exporting key refuses the archive, on record.
    let b = Home::resolve(Some(&dir.path().join("b")));
    b.init().unwrap();
    let mut reg_b = Registry::open(&b.root().join("registry")).unwrap();
    let sink_b = MemorySink::new();
    let policy_b = b.load_policy().unwrap();
    let err =
        service::import(&session(&b, &policy_b, &sink_b), &mut reg_b, &archive, None).unwrap_err();
    assert!(err.to_string().contains("not trusted"), "{err}");
    assert!(reg_b.resolve("m").is_err());
    assert_eq!(
        sink_b.actions(),
        [("model.import".to_owned(), "denied".to_owned())]
    );
    // Trusted, it is imported under the name asked for, with the same files.
    b.trust_add("factory", &key.public_key(), &mut |_| Ok(()))
        .unwrap();
    let policy_b = b.load_policy().unwrap();
    let sb = session(&b, &policy_b, &sink_b);
    let i = service::import(&sb, &mut reg_b, &archive, Some("copy")).unwrap();
    assert_eq!((i.version.name.as_str(), i.version.version), ("copy", 1));
    assert_eq!((i.manifest.name.as_str(), i.manifest.version), ("m", 1));
    assert_eq!(i.version.root, v.root);

    // A checkout writes the model, its signature and nothing else into an empty directory.
    let out = dir.path().join("got");
    let got = service::checkout(&sb, &reg_b, "copy@1", &out).unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(
        std::fs::read(out.join("model/model.safetensors")).unwrap(),
        safetensors(1.0)
    );
    rampart_crypto::oms::verify_model(
        &out.join("model"),
        &std::fs::read(out.join("model.sig")).unwrap(),
        &[key.public_key()],
        &rampart_crypto::oms::VerifyOptions::new(out.join("model.sig")),
        &|_| {},
    )
    .unwrap();
    let err = service::checkout(&sb, &reg_b, "copy@1", &out).unwrap_err();
    assert!(matches!(err, RegistryError::Request(_)), "{err}");
    assert_eq!(
        sink_b.actions()[1..],
        [
            ("model.import".to_owned(), "ok".to_owned()),
            ("model.checkout".to_owned(), "ok".to_owned()),
        ]
    );
    assert_eq!(
        sink_a.actions(),
        [
            ("model.register".to_owned(), "ok".to_owned()),
            ("model.export".to_owned(), "ok".to_owned()),
        ]
    );
}

/// `archive` rewritten as a trusted exporter that lies: its manifest changed by `edit`,
/// re-signed with `key`, the blobs carried over as they were.
fn forged(
    archive: &std::path::Path,
    out: &std::path::Path,
    key: &rampart_crypto::SigningKey,
    edit: impl FnOnce(&mut serde_json::Value),
) {
    use std::io::Read as _;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut t = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in t.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        entries.push((path, bytes));
    }
    assert_eq!(entries[0].0, "export.json");
    let payload = rampart_crypto::dsse::UnverifiedBundle::parse(&entries[0].1)
        .unwrap()
        .verify(&[key.public_key()])
        .unwrap()
        .payload;
    let mut manifest: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    edit(&mut manifest);
    let payload = serde_json::to_vec(&manifest).unwrap();
    entries[0].1 = rampart_crypto::dsse::sign_bundle(key, &payload);
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    for (path, bytes) in &entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        b.append_data(&mut h, path, &bytes[..]).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn a_trusted_exporter_that_lies_in_its_manifest_does_not_decide_what_is_recorded() {
    let (dir, a, model) = setup();
    let policy_a = a.load_policy().unwrap();
    let sink_a = MemorySink::new();
    let sa = session(&a, &policy_a, &sink_a);
    let mut reg_a = Registry::open(&a.root().join("registry")).unwrap();
    service::register(&sa, &mut reg_a, &request(&model)).unwrap();
    let archive = dir.path().join("m.tar");
    service::export(&sa, &reg_a, "m@1", &archive).unwrap();
    let (key, _) = a.signing_key().unwrap();
    let b = Home::resolve(Some(&dir.path().join("b")));
    b.init().unwrap();
    b.trust_add("factory", &key.public_key(), &mut |_| Ok(()))
        .unwrap();
    let policy_b = b.load_policy().unwrap();
    let sink_b = MemorySink::new();
    let sb = session(&b, &policy_b, &sink_b);
    let mut reg_b = Registry::open(&b.root().join("registry")).unwrap();

    // A field the format does not have, smuggled into the content: refused, on record.
    let extra = dir.path().join("extra.tar");
    forged(&archive, &extra, &key, |m| {
        m["content"]["approved_by_security"] = serde_json::json!(true);
    });
    let err = service::import(&sb, &mut reg_b, &extra, None).unwrap_err();
    assert!(err.to_string().contains("approved_by_security"), "{err}");
    assert!(reg_b.resolve("m").is_err());

    // A claimed signer and a claimed clean scan: the importing home records the signer the
    // signature proves and its own scan, not the manifest's words.
    let claimed = dir.path().join("claimed.tar");
    forged(&archive, &claimed, &key, |m| {
        m["content"]["signer"] = serde_json::json!("ecdsa-p256:0000-the-ceo");
        m["content"]["scan"] =
            serde_json::json!({"fail_on": "info", "files": [], "note": "trust me"});
    });
    let i = service::import(&sb, &mut reg_b, &claimed, None).unwrap();
    assert_eq!(i.version.signer, key.public_key().fingerprint().to_string());
    assert!(i.version.scan.get("note").is_none(), "{}", i.version.scan);
    assert_eq!(i.version.scan["files"].as_array().unwrap().len(), 1);

    // A manifest naming a file the archive's signature does not cover: refused.
    let swapped = dir.path().join("swapped.tar");
    forged(&archive, &swapped, &key, |m| {
        m["content"]["files"][0]["name"] = serde_json::json!("other.safetensors");
    });
    let err = service::import(&sb, &mut reg_b, &swapped, Some("n")).unwrap_err();
    assert!(matches!(err, RegistryError::Refused(_)), "{err}");
    assert!(reg_b.resolve("n").is_err());

    // A file name that climbs out of the directory a checkout writes into: refused by name,
    // before a blob is read.
    for name in ["../../escape.safetensors", "/etc/escape", "a/./b", "a//b"] {
        let climbing = dir.path().join("climbing.tar");
        forged(&archive, &climbing, &key, |m| {
            m["content"]["files"][0]["name"] = serde_json::json!(name);
        });
        let err = service::import(&sb, &mut reg_b, &climbing, Some("n")).unwrap_err();
        assert!(
            err.to_string().contains("not a plain relative path"),
            "{name}: {err}"
        );
    }
    assert!(reg_b.resolve("n").is_err());
    assert!(!dir.path().join("escape.safetensors").exists());
    let denied = sink_b
        .actions()
        .iter()
        .filter(|(a, o)| a == "model.import" && o == "denied")
        .count();
    assert_eq!(denied, 6, "{:?}", sink_b.actions());
}
