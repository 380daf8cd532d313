//! Verifying a model signature as a service: the home's trust or named keys, every outcome on
//! record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rampart_audit::{Auditor, MemorySink};
use rampart_crypto::oms::{self, OmsError, VerifyOptions};
use rampart_home::verify::{Trust, Verification, VerifyError, verify_model};
use rampart_home::{Classify, Home, Policy, Session};

fn signed_model(dir: &std::path::Path, home: &Home) -> std::path::PathBuf {
    let model = dir.join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("weights.bin"), b"weights").unwrap();
    let (key, _) = home.signing_key().unwrap();
    let sig = dir.join("model.sig");
    let signed = oms::sign_model(&model, &key, &oms::SignOptions::new(&sig), &|_| {}).unwrap();
    std::fs::write(&sig, signed.bundle).unwrap();
    model
}

#[test]
fn a_signature_is_checked_with_the_homes_trust_or_named_keys_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let model = signed_model(dir.path(), &home);
    let sig = dir.path().join("model.sig");
    let policy = home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let opts = || VerifyOptions::new(&sig);
    let got = verify_model(&s, &model, Trust::Home, opts(), &|_| {}).unwrap();
    let Verification::Verified(v) = got else {
        panic!("{got:?}")
    };
    assert_eq!(v.files, 1);
    // Another key is not the signer's: a failed verification, not an error.
    let other = rampart_crypto::SigningKey::generate().public_key();
    let got = verify_model(&s, &model, Trust::Keys(vec![other]), opts(), &|_| {}).unwrap();
    assert!(matches!(got, Verification::Failed(_)), "{got:?}");
    // A changed file: the mismatch names it.
    std::fs::write(model.join("weights.bin"), b"WEIGHTS").unwrap();
    let got = verify_model(&s, &model, Trust::Home, opts(), &|_| {}).unwrap();
    let Verification::Failed(OmsError::Mismatch { modified, .. }) = got else {
        panic!("{got:?}")
    };
    assert_eq!(modified, ["weights.bin"]);
    // No signature: an error, recorded too.
    std::fs::remove_file(&sig).unwrap();
    let err = verify_model(&s, &model, Trust::Home, opts(), &|_| {}).unwrap_err();
    assert!(
        matches!(err, VerifyError::Signature { .. }) && err.hint().is_some(),
        "{err}"
    );
    assert!(err.is_user_error());
    let err = verify_model(&s, &dir.path().join("none"), Trust::Home, opts(), &|_| {}).unwrap_err();
    assert!(matches!(err, VerifyError::Missing(_)), "{err}");
    assert_eq!(
        sink.actions(),
        [
            ("verify".to_owned(), "ok".to_owned()),
            ("verify".to_owned(), "failed".to_owned()),
            ("verify".to_owned(), "failed".to_owned()),
            ("verify".to_owned(), "error".to_owned()),
        ]
    );
    // A policy that trusts nothing cannot verify with the home's trust.
    let nothing = Policy::default();
    let s = Session {
        home: &home,
        policy: &nothing,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let model = signed_model(&again, &home);
    let sig = dir.path().join("again/model.sig");
    let err = verify_model(&s, &model, Trust::Home, VerifyOptions::new(&sig), &|_| {}).unwrap_err();
    assert!(matches!(err, VerifyError::NoTrust(_)), "{err}");
}

#[test]
fn what_the_sign_service_writes_the_verify_service_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("w.bin"), b"w").unwrap();
    let policy = home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let (key, _) = home.signing_key().unwrap();
    let sig = dir.path().join("model.sig");
    let signed =
        rampart_home::sign::sign_model(&s, &model, &key, &oms::SignOptions::new(&sig), &|_| {})
            .unwrap();
    assert_eq!(signed.method, "files");
    let got = verify_model(&s, &model, Trust::Home, VerifyOptions::new(&sig), &|_| {}).unwrap();
    assert!(matches!(got, Verification::Verified(_)), "{got:?}");
    let err = rampart_home::sign::sign_model(
        &s,
        &dir.path().join("absent"),
        &key,
        &oms::SignOptions::new(dir.path().join("absent.sig")),
        &|_| {},
    )
    .unwrap_err();
    assert!(err.is_user_error(), "{err}");
    assert_eq!(
        sink.actions(),
        [
            ("sign".to_owned(), "ok".to_owned()),
            ("verify".to_owned(), "ok".to_owned()),
            ("sign".to_owned(), "failed".to_owned()),
        ]
    );
}

#[test]
fn an_attestation_is_checked_with_the_homes_keys_and_for_its_subject() {
    use rampart_crypto::provenance::{Artifact, Provenance};
    use rampart_home::verify::{Attestation, verify_attestation};
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let policy = home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let model = rampart_crypto::sha256(b"model");
    let p = Provenance {
        subjects: vec![Artifact::new("model.safetensors", model)],
        build_type: "https://example.com/build".into(),
        external_parameters: serde_json::json!({}),
        resolved_dependencies: Vec::new(),
        builder_id: "test".into(),
        builder_version: "1".into(),
        invocation_id: "1".into(),
        started_on: "2026-01-01T00:00:00Z".into(),
        finished_on: "2026-01-01T00:00:01Z".into(),
        byproducts: Vec::new(),
    };
    let (key, _) = home.signing_key().unwrap();
    let path = dir.path().join("provenance.json");
    std::fs::write(&path, p.sign(&key)).unwrap();
    let got = verify_attestation(&s, &path, Trust::Home, Some(&model)).unwrap();
    assert!(matches!(got, Attestation::Verified(_)), "{got:?}");
    let other = rampart_crypto::sha256(b"other");
    let got = verify_attestation(&s, &path, Trust::Home, Some(&other)).unwrap();
    assert!(
        matches!(got, Attestation::Failed(ref why) if why.contains("not a subject")),
        "{got:?}"
    );
    let stranger = rampart_crypto::SigningKey::generate().public_key();
    let got = verify_attestation(&s, &path, Trust::Keys(vec![stranger]), None).unwrap();
    assert!(matches!(got, Attestation::Failed(_)), "{got:?}");
    let err = verify_attestation(&s, &dir.path().join("none.json"), Trust::Home, None).unwrap_err();
    assert!(matches!(err, VerifyError::Attestation { .. }), "{err}");
    let actions: Vec<String> = sink
        .actions()
        .into_iter()
        .map(|(a, o)| format!("{a} {o}"))
        .collect();
    assert_eq!(
        actions,
        [
            "attest.verify ok",
            "attest.verify failed",
            "attest.verify failed",
            "attest.verify error"
        ]
    );
}

#[test]
fn trust_named_by_files_or_the_homes() {
    use rampart_home::verify::{TrustFiles, home_keys};
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    // No files and no home: the home is required, and the hint says what to pass.
    let err = Trust::from_files(&home, &TrustFiles::default()).unwrap_err();
    assert!(err.hint().unwrap().contains("--key"), "{err}");
    home.init().unwrap();
    assert!(matches!(
        Trust::from_files(&home, &TrustFiles::default()).unwrap(),
        Trust::Home
    ));
    assert_eq!(home_keys(&home).unwrap().len(), 1);
    // A key file: its key; a file that is not one is named.
    let key = rampart_crypto::SigningKey::generate().public_key();
    let good = dir.path().join("k.pem");
    std::fs::write(&good, key.to_pem()).unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a key").unwrap();
    let keys = [good];
    let files = TrustFiles {
        keys: &keys,
        ..TrustFiles::default()
    };
    match Trust::from_files(&home, &files).unwrap() {
        Trust::Keys(k) => assert_eq!(k[0].fingerprint(), key.fingerprint()),
        other => panic!("{other:?}"),
    }
    let both = [bad.clone()];
    for files in [
        TrustFiles {
            keys: &both,
            ..TrustFiles::default()
        },
        TrustFiles {
            cert_chain: &both,
            ..TrustFiles::default()
        },
        TrustFiles {
            sigstore: Some(("me@example.com", "https://issuer", Some(&bad))),
            ..TrustFiles::default()
        },
    ] {
        let err = Trust::from_files(&home, &files).unwrap_err();
        assert!(err.to_string().contains("bad.pem"), "{err}");
        assert_eq!(err.kind(), rampart_home::ErrorKind::Input);
    }
}
