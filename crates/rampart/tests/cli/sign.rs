//! `rampart sign | verify | attest verify`, including interop with model_signing 1.1.1 in both
//! directions.

use std::fs;

use crate::Scratch;
use crate::interop::{model_signing, python, tiny_copy, vectors};

fn test_pub() -> String {
    vectors()
        .join("TEST-ONLY-p256-public-key.pem")
        .display()
        .to_string()
}

/// A scratch home whose key is the shared TEST key (so both tools share one key pair).
fn with_test_key() -> (Scratch, String) {
    let s = Scratch::new();
    let key = s.path().join("test.key.pem");
    fs::write(
        &key,
        fs::read(vectors().join("TEST-ONLY-p256-private-key.pem")).unwrap(),
    )
    .unwrap();
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    (s, key.display().to_string())
}

#[test]
fn rampart_signature_verifies_with_model_signing() {
    let s = Scratch::init();
    let model = tiny_copy(s.path(), false);
    s.rampart(&["sign", "tiny-model"]).assert().success();
    assert!(model.join("model.sig").is_file());
    s.rampart(&["keys", "export-public", "-o", "home.pub.pem"])
        .assert()
        .success();
    let (ok, out) = model_signing(
        s.path(),
        &[
            "verify",
            "key",
            "tiny-model",
            "--signature",
            "tiny-model/model.sig",
            "--public_key",
            "home.pub.pem",
        ],
    );
    assert!(ok && out.contains("Verification succeeded"), "{out}");
    // And model_signing sees the same tampering rampart sees.
    fs::write(model.join("tokenizer/vocab.txt"), "changed").unwrap();
    let (ok, out) = model_signing(
        s.path(),
        &[
            "verify",
            "key",
            "tiny-model",
            "--signature",
            "tiny-model/model.sig",
            "--public_key",
            "home.pub.pem",
        ],
    );
    assert!(!ok && out.contains("tokenizer/vocab.txt"), "{out}");
    let (code, out, _) = s.run(&["verify", "tiny-model"]);
    assert_eq!(code, 1);
    assert!(out.contains("modified  tokenizer/vocab.txt"), "{out}");
}

#[test]
fn single_file_signature_verifies_with_model_signing() {
    let s = Scratch::init();
    fs::write(s.path().join("weights.bin"), vec![7u8; 4096]).unwrap();
    s.rampart(&["sign", "weights.bin"]).assert().success();
    assert!(s.path().join("weights.bin.sig").is_file());
    s.rampart(&["keys", "export-public", "-o", "home.pub.pem"])
        .assert()
        .success();
    let (ok, out) = model_signing(
        s.path(),
        &[
            "verify",
            "key",
            "weights.bin",
            "--signature",
            "weights.bin.sig",
            "--public_key",
            "home.pub.pem",
        ],
    );
    assert!(ok, "{out}");
    s.rampart(&["verify", "weights.bin"]).assert().success();
}

#[test]
fn model_signing_signatures_verify_with_rampart() {
    let (s, key) = with_test_key();
    let model = tiny_copy(s.path(), false);
    let (ok, out) = model_signing(
        s.path(),
        &[
            "sign",
            "key",
            "tiny-model",
            "--private_key",
            &key,
            "--signature",
            "tiny-model/model.sig",
        ],
    );
    assert!(ok, "{out}");
    let (code, out, err) = s.run(&["verify", "tiny-model", "--key", &test_pub()]);
    assert_eq!(code, 0, "{out}{err}");
    // Through the trust list instead of --key.
    s.rampart(&["init"]).assert().success();
    s.rampart(&["trust", "add", &test_pub(), "--name", "test"])
        .assert()
        .success();
    s.rampart(&["verify", "tiny-model"]).assert().success();
    fs::remove_file(model.join("config.json")).unwrap();
    let (code, out, _) = s.run(&["verify", "tiny-model"]);
    assert_eq!(code, 1);
    assert!(out.contains("removed   config.json"), "{out}");
}

#[test]
fn model_signing_sharded_api_signatures_verify_with_rampart() {
    let (s, key) = with_test_key();
    tiny_copy(s.path(), false);
    // model_signing's API writes shard_size as a float; rampart must accept it.
    let code = format!(
        "import model_signing\n\
         h = model_signing.hashing.Config().use_shard_serialization(shard_size=100)\n\
         model_signing.signing.Config().use_elliptic_key_signer(private_key='{key}').set_hashing_config(h).sign('tiny-model', 'sharded.sig')\n"
    );
    let (ok, out) = python(s.path(), &code);
    assert!(ok, "{out}");
    let sig = fs::read_to_string(s.path().join("sharded.sig")).unwrap();
    assert!(!sig.is_empty());
    let (code, out, err) = s.run(&[
        "verify",
        "tiny-model",
        "--sig",
        "sharded.sig",
        "--key",
        &test_pub(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    // rampart's own sharded bundles verify with the model_signing API.
    let (code, _, err) = s.run(&[
        "sign",
        "tiny-model",
        "--key",
        &key,
        "--sharded",
        "--shard-size",
        "100",
        "--sig",
        "r-sharded.sig",
    ]);
    assert_eq!(code, 0, "{err}");
    let check = "import model_signing\n\
                 model_signing.verifying.Config().use_elliptic_key_verifier(public_key='PUB').verify('tiny-model', 'r-sharded.sig')\n\
                 print('ok')\n"
        .replace("PUB", &test_pub());
    let (ok, out) = python(s.path(), &check);
    assert!(ok && out.contains("ok"), "{out}");
}

#[test]
fn the_shared_vector_and_its_tampered_variants() {
    let s = Scratch::new();
    let pubkey = test_pub();
    let dir = vectors().join("tiny-model");
    let (code, out, err) = s.run(&["verify", dir.to_str().unwrap(), "--key", &pubkey]);
    assert_eq!(code, 0, "{out}{err}");

    type Tamper = Box<dyn Fn(&std::path::Path)>;
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "modified byte",
            Box::new(|m| {
                let p = m.join("model.safetensors");
                let mut b = fs::read(&p).unwrap();
                b[100] ^= 0x40;
                fs::write(p, b).unwrap();
            }),
            "modified  model.safetensors",
        ),
        (
            "added file",
            Box::new(|m| fs::write(m.join("tokenizer/extra.txt"), "x").unwrap()),
            "added     tokenizer/extra.txt",
        ),
        (
            "removed file",
            Box::new(|m| fs::remove_file(m.join("tokenizer-meta.json")).unwrap()),
            "removed   tokenizer-meta.json",
        ),
        (
            "renamed file",
            Box::new(|m| fs::rename(m.join("config.json"), m.join("config.yaml")).unwrap()),
            "removed   config.json",
        ),
    ];
    for (what, tamper, expect) in cases {
        let tmp = Scratch::new();
        let model = tiny_copy(tmp.path(), true);
        tamper(&model);
        let (code, out, _) = tmp.run(&["verify", "tiny-model", "--key", &pubkey]);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains(expect), "{what}: {out}");
    }

    // Wrong key.
    let other = Scratch::init();
    other
        .rampart(&["keys", "export-public", "-o", "other.pem"])
        .assert()
        .success();
    let (code, out, _) = s.run(&[
        "verify",
        dir.to_str().unwrap(),
        "--key",
        other.path().join("other.pem").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("key mismatch"), "{out}");

    // Edited signature JSON: payload re-encoded with another subject name, and a truncated file.
    let text = fs::read_to_string(dir.join("model.sig")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let payload = v["dsseEnvelope"]["payload"].as_str().unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let decoded = String::from_utf8(b64.decode(payload).unwrap()).unwrap();
    let edited = text.replace(
        payload,
        &b64.encode(decoded.replace("tiny-model", "evil-model")),
    );
    for (name, bytes) in [
        ("edited.sig", edited.as_str()),
        ("truncated.sig", &text[..text.len() / 3]),
        ("empty.sig", ""),
    ] {
        fs::write(s.path().join(name), bytes).unwrap();
        let (code, out, err) = s.run(&[
            "verify",
            dir.to_str().unwrap(),
            "--sig",
            name,
            "--key",
            &pubkey,
        ]);
        assert_eq!(code, 1, "{name}: {out}{err}");
        assert!(out.starts_with("verification FAILED"), "{name}: {out}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // A missing signature file is an input error.
    let (code, _, err) = s.run(&[
        "verify",
        dir.to_str().unwrap(),
        "--sig",
        "nope.sig",
        "--key",
        &pubkey,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("nope.sig") && err.contains("hint:"), "{err}");
}

#[test]
fn sign_and_verify_are_audited_with_digest_and_key() {
    let s = Scratch::init();
    tiny_copy(s.path(), false);
    s.rampart(&["sign", "tiny-model"]).assert().success();
    s.rampart(&["verify", "tiny-model"]).assert().success();
    fs::write(s.path().join("tiny-model/new.txt"), "x").unwrap();
    s.rampart(&["verify", "tiny-model"]).assert().code(1);
    let (_, out, _) = s.run(&["--format", "json", "audit", "show"]);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sign = records.iter().find(|r| r["action"] == "sign").unwrap();
    assert_eq!(
        sign["subject"]["digest"],
        "sha256:293d5310856bfde9d8e5a0d199c428e5d4ae5d37d343b256f8260041e805f164"
    );
    assert!(
        sign["details"]["key"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    let outcomes: Vec<_> = records
        .iter()
        .filter(|r| r["action"] == "verify")
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "failed"]);
    s.rampart(&["audit", "verify"]).assert().success();
}

#[test]
fn sign_refuses_loose_keys_symlinks_and_empty_models() {
    let s = Scratch::init();
    let (_keep, key) = with_test_key();
    fs::create_dir_all(s.path().join("m")).unwrap();
    let (code, _, err) = s.run(&["sign", "m"]);
    assert_eq!(code, 2);
    assert!(err.contains("no files"), "{err}");
    fs::write(s.path().join("m/a"), "a").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", s.path().join("m/link")).unwrap();
    let (code, _, err) = s.run(&["sign", "m"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("symlink") && err.contains("--allow-symlinks"),
        "{err}"
    );
    let loose = s.path().join("loose.pem");
    fs::copy(&key, &loose).unwrap();
    fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (code, _, err) = s.run(&["sign", "weights", "--key", loose.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("too open"), "{err}");
}

#[test]
fn attest_verify_checks_signature_and_subject() {
    use rampart_crypto::provenance::{Artifact, Provenance};
    let s = Scratch::init();
    fs::write(s.path().join("model.safetensors"), b"weights").unwrap();
    let key = rampart_crypto::SigningKey::from_pem(
        &fs::read_to_string(s.home().join("keys/signing.key.pem")).unwrap(),
    )
    .unwrap();
    let provenance = Provenance {
        subjects: vec![Artifact::new(
            "model.safetensors",
            rampart_crypto::sha256(b"weights"),
        )],
        build_type: "https://rampart.dev/train/test/v1".into(),
        external_parameters: serde_json::json!({"seed": 1}),
        resolved_dependencies: vec![Artifact::new("data.csv", rampart_crypto::sha256(b"data"))],
        builder_id: "https://rampart.dev/builder".into(),
        builder_version: "0.1.0".into(),
        invocation_id: "run".into(),
        started_on: "2026-11-22T00:00:00Z".into(),
        finished_on: "2026-11-22T00:00:01Z".into(),
        byproducts: vec![],
    };
    fs::write(s.path().join("prov.json"), provenance.sign(&key)).unwrap();
    let (code, out, err) = s.run(&[
        "attest",
        "verify",
        "prov.json",
        "--subject",
        "model.safetensors",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("https://slsa.dev/provenance/v1") && out.contains("data.csv"),
        "{out}"
    );
    fs::write(s.path().join("other.bin"), b"other").unwrap();
    let (code, out, _) = s.run(&["attest", "verify", "prov.json", "--subject", "other.bin"]);
    assert_eq!(code, 1);
    assert!(out.contains("not a subject"), "{out}");
    let mut bytes = fs::read(s.path().join("prov.json")).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 5);
    fs::write(s.path().join("bad.json"), bytes).unwrap();
    s.rampart(&["attest", "verify", "bad.json"])
        .assert()
        .code(1);
}

/// Runs openssl; panics with its output on failure.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed by .ci/run");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every curve model_signing accepts (P-256, P-384, P-521, each with its own hash), keys made by
/// openssl in both private formats (PKCS#8 and SEC1): rampart's signatures verify with
/// model_signing 1.1.1 and model_signing's with rampart, and both refuse tampering and the
/// wrong key.
#[test]
fn every_curve_interoperates_with_model_signing_both_ways() {
    for (curve, openssl_name) in [
        ("P-256", "prime256v1"),
        ("P-384", "secp384r1"),
        ("P-521", "secp521r1"),
    ] {
        let s = Scratch::new();
        let dir = s.path();
        // PKCS#8 (`BEGIN PRIVATE KEY`) and SEC1 (`BEGIN EC PRIVATE KEY`).
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{openssl_name}"),
                "-out",
                "pkcs8.pem",
            ],
        );
        openssl(
            dir,
            &[
                "pkey",
                "-in",
                "pkcs8.pem",
                "-pubout",
                "-out",
                "pkcs8.pub.pem",
            ],
        );
        openssl(
            dir,
            &[
                "ecparam",
                "-name",
                openssl_name,
                "-genkey",
                "-noout",
                "-out",
                "sec1.pem",
            ],
        );
        openssl(
            dir,
            &["ec", "-in", "sec1.pem", "-pubout", "-out", "sec1.pub.pem"],
        );
        assert!(
            fs::read_to_string(dir.join("pkcs8.pem"))
                .unwrap()
                .contains("BEGIN PRIVATE KEY")
        );
        assert!(
            fs::read_to_string(dir.join("sec1.pem"))
                .unwrap()
                .contains("BEGIN EC PRIVATE KEY")
        );
        for k in ["pkcs8.pem", "sec1.pem"] {
            fs::set_permissions(
                dir.join(k),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
        }
        for (signer_key, public) in [("pkcs8.pem", "pkcs8.pub.pem"), ("sec1.pem", "sec1.pub.pem")] {
            let other_public = if public == "pkcs8.pub.pem" {
                "sec1.pub.pem"
            } else {
                "pkcs8.pub.pem"
            };
            // rampart signs, model_signing verifies.
            let model = tiny_copy(dir, false);
            let (code, out, err) = s.run(&[
                "sign",
                "tiny-model",
                "--key",
                signer_key,
                "--format",
                "json",
            ]);
            assert_eq!(code, 0, "{curve} {signer_key}: {out}{err}");
            let ms_verify = |public: &str| {
                model_signing(
                    dir,
                    &[
                        "verify",
                        "key",
                        "tiny-model",
                        "--signature",
                        "tiny-model/model.sig",
                        "--public_key",
                        public,
                    ],
                )
            };
            let (ok, out) = ms_verify(public);
            assert!(
                ok && out.contains("Verification succeeded"),
                "{curve} {signer_key}: {out}"
            );
            let (ok, out) = ms_verify(other_public);
            assert!(!ok, "{curve}: model_signing accepted the wrong key: {out}");
            s.rampart(&["verify", "tiny-model", "--key", public])
                .assert()
                .success();
            fs::write(model.join("config.json"), "{}").unwrap();
            let (ok, out) = ms_verify(public);
            assert!(!ok && out.contains("config.json"), "{curve}: {out}");
            let (code, out, _) = s.run(&["verify", "tiny-model", "--key", public]);
            assert_eq!(code, 1, "{curve}: {out}");
            fs::remove_dir_all(&model).unwrap();

            // model_signing signs, rampart verifies.
            let model = tiny_copy(dir, false);
            let (ok, out) = model_signing(
                dir,
                &[
                    "sign",
                    "key",
                    "tiny-model",
                    "--private_key",
                    signer_key,
                    "--signature",
                    "tiny-model/model.sig",
                ],
            );
            assert!(ok, "{curve} {signer_key}: {out}");
            let (code, out, err) = s.run(&["verify", "tiny-model", "--key", public]);
            assert_eq!(code, 0, "{curve} {signer_key}: {out}{err}");
            let (code, out, err) = s.run(&["verify", "tiny-model", "--key", other_public]);
            assert_ne!(
                code, 0,
                "{curve}: rampart accepted the wrong key: {out}{err}"
            );
            fs::write(model.join("tokenizer/vocab.txt"), "changed").unwrap();
            let (code, out, _) = s.run(&["verify", "tiny-model", "--key", public]);
            assert_eq!(code, 1, "{curve}: {out}");
            assert!(out.contains("modified  tokenizer/vocab.txt"), "{out}");
            fs::remove_dir_all(&model).unwrap();
        }
    }
}

fn golden() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-transparency")
}

/// model_signing's own golden vectors for raw-key signatures (v0.3.1, v1.0.0, v1.0.1, v1.1.0,
/// a P-384 key), verified as its `test-verify-*-elliptic-key.sh` scripts call them; then each
/// tampered — a changed file, a wrong key, a flipped signature byte — fails.
#[test]
fn model_signing_golden_vectors_elliptic_key() {
    let s = Scratch::new();
    let g = golden();
    let public = g.join("keys/certificate/signing-key-pub.pem");
    let public = public.to_str().unwrap();
    for (version, target, ignore) in [
        ("v0.3.1", "signme-1", false),
        ("v1.0.0", "signme-1", false),
        ("v1.0.1", "", true),
        ("v1.1.0", "", true),
    ] {
        let dir = s.path().join(version);
        crate::interop::copy_dir(&g.join(format!("{version}-elliptic-key")), &dir);
        let path = dir.join(target);
        let sig = dir.join("model.sig");
        let ignore_me = dir.join("ignore-me");
        let args = |key: &str| {
            let mut a = vec![
                "verify".to_owned(),
                path.display().to_string(),
                "--sig".into(),
                sig.display().to_string(),
                "--key".into(),
                key.to_owned(),
            ];
            if ignore {
                a.extend(["--ignore-paths".into(), ignore_me.display().to_string()]);
            }
            a
        };
        let run = |a: Vec<String>| {
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            s.run(&refs)
        };
        let (code, out, err) = run(args(public));
        assert_eq!(code, 0, "{version}: {out}{err}");
        assert!(out.contains("verified"), "{out}");
        // The wrong key (the shared P-256 test key).
        let (code, out, err) = run(args(&test_pub()));
        assert_ne!(code, 0, "{version}: accepted the wrong key: {out}{err}");
        // A flipped byte in the DSSE signature.
        let original = fs::read_to_string(&sig).unwrap();
        let bundle: serde_json::Value = serde_json::from_str(&original).unwrap();
        let sig_b64 = bundle["dsseEnvelope"]["signatures"][0]["sig"]
            .as_str()
            .unwrap();
        let mut flipped = sig_b64.as_bytes().to_vec();
        flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
        fs::write(
            &sig,
            original.replace(sig_b64, std::str::from_utf8(&flipped).unwrap()),
        )
        .unwrap();
        let (code, out, err) = run(args(public));
        assert_eq!(
            code, 1,
            "{version}: a flipped signature verified: {out}{err}"
        );
        fs::write(&sig, &original).unwrap();
        // A changed file.
        fs::write(dir.join("signme-1"), "tampered\n").unwrap();
        let (code, out, err) = run(args(public));
        assert_eq!(code, 1, "{version}: {out}{err}");
        assert!(out.contains("signme-1"), "{version}: {out}");
    }
}

/// model_signing's golden vectors for the certificate method (v0.2.0 — its old statement and
/// encoding — through v1.1.0; a P-384 signing certificate under an RSA intermediate and root),
/// verified as its `test-verify-*-certificate.sh` scripts call them (roots: `ca-cert.pem`);
/// then a changed file, another CA as the root and the certificate method's absence fail.
#[test]
fn model_signing_golden_vectors_certificate() {
    let s = Scratch::new();
    let g = golden();
    let ca = g.join("keys/certificate/ca-cert.pem");
    // Another CA: a self-signed root made by openssl, under the same name.
    openssl(
        s.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "other-ca.key",
            "-out",
            "other-ca.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=root-ca",
        ],
    );
    for version in ["v0.2.0", "v0.3.1", "v1.0.0", "v1.0.1", "v1.1.0"] {
        let dir = s.path().join(version);
        crate::interop::copy_dir(&g.join(format!("{version}-certificate")), &dir);
        let verify = |root: &std::path::Path| {
            let mut a = vec![
                "verify".to_owned(),
                dir.display().to_string(),
                "--sig".into(),
                dir.join("model.sig").display().to_string(),
                "--cert-chain".into(),
                root.display().to_string(),
            ];
            if dir.join("ignore-me").exists() {
                a.extend([
                    "--ignore-paths".into(),
                    dir.join("ignore-me").display().to_string(),
                ]);
            }
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            s.run(&refs)
        };
        let (code, out, err) = verify(&ca);
        assert_eq!(code, 0, "{version}: {out}{err}");
        assert!(out.contains("CN=root-ca"), "{out}");
        let (code, out, err) = verify(&s.path().join("other-ca.pem"));
        assert_ne!(code, 0, "{version}: verified under another CA: {out}{err}");
        assert!((out.clone() + &err).contains("not trusted"), "{out}{err}");
        // A certificate bundle is not taken for a key bundle.
        let (code, out, err) = s.run(&[
            "verify",
            dir.to_str().unwrap(),
            "--key",
            g.join("keys/certificate/signing-key-pub.pem")
                .to_str()
                .unwrap(),
        ]);
        assert_eq!(code, 1);
        assert!(out.contains("--cert-chain"), "{out}{err}");
        fs::write(dir.join("signme-1"), "tampered\n").unwrap();
        let (code, out, _) = verify(&ca);
        assert_eq!(code, 1, "{version}: {out}");
        assert!(out.contains("signme-1"), "{out}");
    }
}

/// The certificate method both ways with model_signing 1.1.1: rampart signs with a key, its
/// certificate and the intermediate (the golden vectors' test PKI) and `model_signing verify
/// certificate` accepts it; model_signing signs and rampart verifies.
#[test]
fn certificate_bundles_interoperate_with_model_signing_both_ways() {
    let s = Scratch::new();
    let certs = golden().join("keys/certificate");
    let key = s.path().join("signing-key.pem");
    fs::copy(certs.join("signing-key.pem"), &key).unwrap();
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let file = |n: &str| certs.join(n).display().to_string();
    let model = tiny_copy(s.path(), false);
    let (code, out, err) = s.run(&[
        "sign",
        "tiny-model",
        "--key",
        key.to_str().unwrap(),
        "--cert",
        &file("signing-key-cert.pem"),
        "--cert-chain",
        &file("int-ca-cert.pem"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (ok, out) = model_signing(
        s.path(),
        &[
            "verify",
            "certificate",
            "tiny-model",
            "--signature",
            "tiny-model/model.sig",
            "--certificate_chain",
            &file("ca-cert.pem"),
        ],
    );
    assert!(ok && out.contains("Verification succeeded"), "{out}");
    s.rampart(&["verify", "tiny-model", "--cert-chain", &file("ca-cert.pem")])
        .assert()
        .success();
    // A certificate for another key is refused before anything is written.
    fs::remove_file(model.join("model.sig")).unwrap();
    openssl(
        s.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other-cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=other",
        ],
    );
    let (code, _, err) = s.run(&[
        "sign",
        "tiny-model",
        "--key",
        key.to_str().unwrap(),
        "--cert",
        "other-cert.pem",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("another key"), "{err}");
    assert!(!model.join("model.sig").exists());

    let (ok, out) = model_signing(
        s.path(),
        &[
            "sign",
            "certificate",
            "tiny-model",
            "--private_key",
            key.to_str().unwrap(),
            "--signing_certificate",
            &file("signing-key-cert.pem"),
            "--certificate_chain",
            &file("int-ca-cert.pem"),
            "--signature",
            "tiny-model/model.sig",
        ],
    );
    assert!(ok, "{out}");
    let (code, out, err) = s.run(&["verify", "tiny-model", "--cert-chain", &file("ca-cert.pem")]);
    assert_eq!(code, 0, "{out}{err}");
    fs::write(model.join("config.json"), "{}").unwrap();
    let (code, out, _) = s.run(&["verify", "tiny-model", "--cert-chain", &file("ca-cert.pem")]);
    assert_eq!(code, 1, "{out}");
}

/// A certificate authority trusted in rampart.toml (`trust add CA.pem`) lets the home accept
/// certificate-signed models: `verify` with no flags, and `model register`; the addition and
/// removal are audited; once removed, the same model no longer verifies.
#[test]
fn a_trusted_certificate_authority_admits_certificate_signed_models() {
    let s = Scratch::init();
    let certs = golden().join("keys/certificate");
    let file = |n: &str| certs.join(n).display().to_string();
    let key = s.path().join("signing-key.pem");
    fs::copy(certs.join("signing-key.pem"), &key).unwrap();
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    tiny_copy(s.path(), false);
    let sign = |path: &str| {
        s.rampart(&[
            "sign",
            path,
            "--key",
            key.to_str().unwrap(),
            "--cert",
            &file("signing-key-cert.pem"),
            "--cert-chain",
            &file("int-ca-cert.pem"),
        ])
        .assert()
        .success();
    };
    sign("tiny-model");
    // Not trusted yet: refused, saying how to trust one.
    let (code, out, _) = s.run(&["verify", "tiny-model"]);
    assert_eq!(code, 1);
    assert!(out.contains("rampart trust add CA.pem"), "{out}");
    s.rampart(&["trust", "add", &file("ca-cert.pem"), "--name", "corp-ca"])
        .assert()
        .success();
    let list = s.json(&["trust", "list"]);
    assert_eq!(list["certificates"][0]["name"], "corp-ca");
    assert_eq!(list["certificates"][0]["subject"], "CN=root-ca");
    let (code, out, err) = s.run(&["verify", "tiny-model"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("CN=root-ca"), "{out}");
    let (code, out, err) = s.run(&["model", "register", "tiny-model", "--name", "tiny"]);
    assert_eq!(code, 0, "{out}{err}");
    let shown = s.json(&["model", "show", "tiny@1"]);
    assert_eq!(
        shown["signer_identity"], "certificate:CN=intermediate-ca",
        "{shown}"
    );
    // A dataset signed with the certificate is ingested, its signer recorded.
    fs::create_dir_all(s.path().join("ds")).unwrap();
    fs::write(s.path().join("ds/d.csv"), "id,x\n1,0.5\n").unwrap();
    fs::write(
        s.path().join("schema.toml"),
        "version = 1\n[[columns]]\nname = \"id\"\ntype = \"int\"\n[[columns]]\nname = \"x\"\ntype = \"float\"\n",
    )
    .unwrap();
    s.rampart(&["data", "roots", "add", "ds"])
        .assert()
        .success();
    sign("ds/d.csv");
    let ingested = s.json(&["data", "ingest", "ds/d.csv", "--schema", "schema.toml"]);
    assert_eq!(ingested["integrity"], "signed", "{ingested}");
    let (_, log, _) = s.run(&[
        "--format",
        "json",
        "audit",
        "show",
        "--action",
        "data.ingest",
    ]);
    assert!(log.contains("certificate:CN=intermediate-ca"), "{log}");
    // A policy whose stored certificate was edited is refused on load.
    let policy = s.home().join("rampart.toml");
    let text = fs::read_to_string(&policy).unwrap();
    fs::write(
        &policy,
        text.replace("subject = \"CN=root-ca\"", "subject = \"CN=other\""),
    )
    .unwrap();
    let (code, _, err) = s.run(&["trust", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("corp-ca"), "{err}");
    fs::write(&policy, &text).unwrap();
    s.rampart(&["trust", "remove", "corp-ca"])
        .assert()
        .success();
    let (code, _, _) = s.run(&["verify", "tiny-model"]);
    assert_eq!(code, 1);
    let (_, log, _) = s.run(&["--format", "json", "audit", "show", "--action", "trust.add"]);
    assert!(log.contains("CN=root-ca"), "{log}");
}
