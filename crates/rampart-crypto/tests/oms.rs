//! OMS signing and verification against the shared model_signing 1.1.1 vectors, and each
//! tampering case.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::type_complexity,
    clippy::cast_possible_truncation,
    clippy::redundant_closure_for_method_calls,
    missing_docs
)]

use std::fs;
use std::path::{Path, PathBuf};

use rampart_crypto::dsse::BundleError;
use rampart_crypto::oms::{self, Method, OmsError, SignOptions, VerifyOptions};
use rampart_crypto::{PublicKey, SigningKey};

fn vectors() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop/model-signing");
    assert!(
        dir.join("tiny-model/model.sig").is_file(),
        "interop vectors missing at {} (shared/ must sit beside the checkout)",
        dir.display()
    );
    dir
}

fn test_public() -> PublicKey {
    PublicKey::from_pem(
        &fs::read_to_string(vectors().join("TEST-ONLY-p256-public-key.pem")).unwrap(),
    )
    .unwrap()
}

fn test_private() -> SigningKey {
    SigningKey::from_pem(
        &fs::read_to_string(vectors().join("TEST-ONLY-p256-private-key.pem")).unwrap(),
    )
    .unwrap()
}

/// A writable copy of the tiny model (the committed files are read-only).
fn copy_tiny(to: &Path) -> PathBuf {
    let dst = to.join("tiny-model");
    copy_dir(&vectors().join("tiny-model"), &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for entry in fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
            let mut perms = fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            fs::set_permissions(&target, perms).unwrap();
        }
    }
}

fn verify(model: &Path, sig: &Path, key: &PublicKey) -> Result<oms::Verified, OmsError> {
    oms::verify_model(
        model,
        &fs::read(sig).unwrap(),
        std::slice::from_ref(key),
        &VerifyOptions::new(sig),
        &|_| {},
    )
}

fn mismatch(r: Result<oms::Verified, OmsError>) -> (Vec<String>, Vec<String>, Vec<String>) {
    match r {
        Err(OmsError::Mismatch {
            modified,
            added,
            removed,
        }) => (modified, added, removed),
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn key_fingerprint_is_the_model_signing_hint() {
    assert_eq!(
        test_public().fingerprint().to_hex(),
        "d1b68e7c43ba13383ffc5d1bd1a22dbf2632aabeab558d1dc66473344c298731"
    );
    assert_eq!(test_private().public_key(), test_public());
}

#[test]
fn the_shared_vector_verifies() {
    let dir = vectors().join("tiny-model");
    let v = verify(&dir, &dir.join("model.sig"), &test_public()).unwrap();
    assert_eq!(
        v.signed.subject_digest.to_hex(),
        "293d5310856bfde9d8e5a0d199c428e5d4ae5d37d343b256f8260041e805f164"
    );
    assert_eq!(v.signed.subject_name, "tiny-model");
    let names: Vec<_> = v.signed.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "config.json",
            "model.safetensors",
            "tokenizer/vocab.txt",
            "tokenizer-meta.json"
        ]
    );
    assert_eq!(v.files, 4);
}

#[test]
fn rampart_produces_the_same_manifest_as_model_signing() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_tiny(tmp.path());
    let sig = model.join("model.sig");
    let signed =
        oms::sign_model(&model, &test_private(), &SignOptions::new(&sig), &|_| {}).unwrap();
    assert_eq!(
        signed.manifest.root.to_hex(),
        "293d5310856bfde9d8e5a0d199c428e5d4ae5d37d343b256f8260041e805f164"
    );
    fs::write(&sig, &signed.bundle).unwrap();
    verify(&model, &sig, &test_public()).unwrap();
}

#[test]
fn each_tampering_is_detected_and_named() {
    let key = test_public();
    let cases: Vec<(&str, Box<dyn Fn(&Path)>, (Vec<&str>, Vec<&str>, Vec<&str>))> = vec![
        (
            "appended byte",
            Box::new(|m: &Path| {
                let p = m.join("tokenizer/vocab.txt");
                let mut b = fs::read(&p).unwrap();
                b.push(b'x');
                fs::write(p, b).unwrap();
            }),
            (vec!["tokenizer/vocab.txt"], vec![], vec![]),
        ),
        (
            "flipped byte",
            Box::new(|m: &Path| {
                let p = m.join("model.safetensors");
                let mut b = fs::read(&p).unwrap();
                b[200] ^= 1;
                fs::write(p, b).unwrap();
            }),
            (vec!["model.safetensors"], vec![], vec![]),
        ),
        (
            "added file",
            Box::new(|m: &Path| fs::write(m.join("tokenizer/extra.txt"), "x").unwrap()),
            (vec![], vec!["tokenizer/extra.txt"], vec![]),
        ),
        (
            "removed file",
            Box::new(|m: &Path| fs::remove_file(m.join("config.json")).unwrap()),
            (vec![], vec![], vec!["config.json"]),
        ),
        (
            "renamed file",
            Box::new(|m: &Path| fs::rename(m.join("config.json"), m.join("config2.json")).unwrap()),
            (vec![], vec!["config2.json"], vec!["config.json"]),
        ),
        (
            "nested .git",
            Box::new(|m: &Path| {
                fs::create_dir_all(m.join("sub/.git")).unwrap();
                fs::write(m.join("sub/.git/x"), "x").unwrap();
            }),
            (vec![], vec!["sub/.git/x"], vec![]),
        ),
    ];
    for (what, tamper, (m, a, r)) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let model = copy_tiny(tmp.path());
        tamper(&model);
        let (modified, added, removed) = mismatch(verify(&model, &model.join("model.sig"), &key));
        assert_eq!(
            (modified, added, removed),
            (
                m.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                a.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                r.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ),
            "{what}"
        );
    }
}

#[test]
fn ignored_git_paths_and_renamed_directory_still_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let model = copy_tiny(tmp.path());
    fs::write(model.join(".gitignore"), "x").unwrap();
    fs::create_dir_all(model.join(".git/objects")).unwrap();
    fs::write(model.join(".git/objects/o"), "x").unwrap();
    let moved = tmp.path().join("renamed");
    fs::rename(&model, &moved).unwrap();
    verify(&moved, &moved.join("model.sig"), &test_public()).unwrap();
    // With --ignore-unsigned-files an extra file is tolerated.
    fs::write(moved.join("extra.bin"), "x").unwrap();
    let mut opts = VerifyOptions::new(moved.join("model.sig"));
    opts.ignore_unsigned_files = true;
    oms::verify_model(
        &moved,
        &fs::read(moved.join("model.sig")).unwrap(),
        &[test_public()],
        &opts,
        &|_| {},
    )
    .unwrap();
}

#[test]
fn wrong_key_and_edited_bundle_fail() {
    let dir = vectors().join("tiny-model");
    let other = SigningKey::generate().public_key();
    let err = verify(&dir, &dir.join("model.sig"), &other).unwrap_err();
    assert!(
        matches!(err, OmsError::Bundle(BundleError::KeyMismatch { .. })),
        "{err}"
    );

    // Re-encode the payload with another subject name: the signature no longer covers it.
    let text = fs::read_to_string(dir.join("model.sig")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let payload = v["dsseEnvelope"]["payload"].as_str().unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decoded = String::from_utf8(b64.decode(payload).unwrap()).unwrap();
    let edited = b64.encode(decoded.replace("\"tiny-model\"", "\"evil-model\""));
    let tmp = tempfile::tempdir().unwrap();
    let sig = tmp.path().join("edited.sig");
    fs::write(&sig, text.replace(payload, &edited)).unwrap();
    let err = verify(&dir, &sig, &test_public()).unwrap_err();
    assert!(
        matches!(err, OmsError::Bundle(BundleError::BadSignature(_))),
        "{err}"
    );

    // Truncated and garbage signature files are clean errors.
    for bytes in [
        &text.as_bytes()[..text.len() / 2],
        b"",
        b"\xff\xfe",
        b"[]",
        b"{}",
    ] {
        fs::write(&sig, bytes).unwrap();
        let err = verify(&dir, &sig, &test_public()).unwrap_err();
        assert!(
            matches!(
                err,
                OmsError::Bundle(BundleError::Malformed(_) | BundleError::Unsupported(_))
            ),
            "{err}"
        );
    }
}

#[test]
fn sharded_signatures_round_trip_and_detect_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m");
    fs::create_dir_all(&model).unwrap();
    let big: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 256) as u8).collect();
    fs::write(model.join("weights.bin"), &big).unwrap();
    fs::write(model.join("empty"), b"").unwrap();
    fs::write(model.join("config.json"), b"{}").unwrap();
    let key = SigningKey::generate();
    let sig = tmp.path().join("m.sig");
    let mut opts = SignOptions::new(&sig);
    opts.method = Method::Shards { shard_size: 4096 };
    let signed = oms::sign_model(&model, &key, &opts, &|_| {}).unwrap();
    let names: Vec<_> = signed
        .manifest
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "config.json:0:2",
            "weights.bin:0:4096",
            "weights.bin:4096:8192",
            "weights.bin:8192:10000"
        ]
    );
    fs::write(&sig, &signed.bundle).unwrap();
    verify(&model, &sig, &key.public_key()).unwrap();
    // A float shard_size, as model_signing writes it, verifies too.
    let v: serde_json::Value = serde_json::from_slice(&signed.bundle).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = String::from_utf8(
        b64.decode(v["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(payload.contains("\"shard_size\": 4096"));
    let float_payload = payload.replace("\"shard_size\": 4096", "\"shard_size\": 4096.0");
    let resigned = rampart_crypto::dsse::sign_bundle(&key, float_payload.as_bytes());
    fs::write(&sig, &resigned).unwrap();
    verify(&model, &sig, &key.public_key()).unwrap();
    // A changed byte in the last shard names the file; a size change is caught before hashing.
    let mut changed = big.clone();
    changed[9_999] ^= 0xff;
    fs::write(model.join("weights.bin"), &changed).unwrap();
    assert_eq!(
        mismatch(verify(&model, &sig, &key.public_key())).0,
        ["weights.bin"]
    );
    changed.push(0);
    fs::write(model.join("weights.bin"), &changed).unwrap();
    assert_eq!(
        mismatch(verify(&model, &sig, &key.public_key())).0,
        ["weights.bin"]
    );
}

#[test]
fn single_file_models_are_named_dot_and_accept_the_basename() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("model.bin");
    fs::write(&file, b"weights").unwrap();
    let key = SigningKey::generate();
    let sig = tmp.path().join("model.bin.sig");
    let signed = oms::sign_model(&file, &key, &SignOptions::new(&sig), &|_| {}).unwrap();
    assert_eq!(signed.manifest.resources[0].name, ".");
    assert_eq!(signed.manifest.subject_name, "model.bin");
    fs::write(&sig, &signed.bundle).unwrap();
    verify(&file, &sig, &key.public_key()).unwrap();
    // The OMS spec's form names the file by its basename.
    let digest = signed.manifest.resources[0].digest.to_hex();
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"model.bin","digest":{{"sha256":"{}"}}}}],"predicateType":"https://model_signing/signature/v1.0","predicate":{{"serialization":{{"method":"files","hash_type":"sha256","allow_symlinks":false}},"resources":[{{"name":"model.bin","algorithm":"sha256","digest":"{digest}"}}]}}}}"#,
        signed.manifest.root.to_hex()
    );
    fs::write(
        &sig,
        rampart_crypto::dsse::sign_bundle(&key, statement.as_bytes()),
    )
    .unwrap();
    verify(&file, &sig, &key.public_key()).unwrap();
}

#[test]
fn hostile_manifests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m");
    fs::create_dir_all(&model).unwrap();
    fs::write(model.join("a"), b"a").unwrap();
    let key = SigningKey::generate();
    let sig = tmp.path().join("s");
    let digest = rampart_crypto::sha256(b"a");
    for (name, ignore) in [
        ("../a", "[]"),
        ("/etc/passwd", "[]"),
        ("a", r#"[""]"#),
        ("a", r#"["../x"]"#),
        ("a\\b", "[]"),
    ] {
        let root = oms::root_digest([&digest]);
        let statement = format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"m","digest":{{"sha256":"{root}"}}}}],"predicateType":"https://model_signing/signature/v1.0","predicate":{{"serialization":{{"method":"files","hash_type":"sha256","allow_symlinks":false,"ignore_paths":{ignore}}},"resources":[{{"name":"{name}","algorithm":"sha256","digest":"{digest}"}}]}}}}"#,
            name = name.replace('\\', "\\\\")
        );
        fs::write(
            &sig,
            rampart_crypto::dsse::sign_bundle(&key, statement.as_bytes()),
        )
        .unwrap();
        let err = verify(&model, &sig, &key.public_key()).unwrap_err();
        assert!(
            matches!(err, OmsError::Manifest(_)),
            "{name} {ignore}: {err}"
        );
    }
    // A subject digest that does not match the resources.
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"m","digest":{{"sha256":"{digest}"}}}}],"predicateType":"https://model_signing/signature/v1.0","predicate":{{"serialization":{{"method":"files","hash_type":"sha256","allow_symlinks":false}},"resources":[{{"name":"a","algorithm":"sha256","digest":"{digest}"}}]}}}}"#
    );
    fs::write(
        &sig,
        rampart_crypto::dsse::sign_bundle(&key, statement.as_bytes()),
    )
    .unwrap();
    assert!(matches!(
        verify(&model, &sig, &key.public_key()),
        Err(OmsError::Inconsistent { .. })
    ));
}
