//! Sigstore bundles from the CLI: model_signing's public-good golden vectors verified as its
//! `test-verify-*-sigstore.sh` scripts do (offline), with tampered variants; and, with a
//! private test Sigstore installed as the home's trusted root, identities trusted in
//! rampart.toml admitting Sigstore-signed datasets and models through ingest, register and the
//! promotion gates, recorded in the audit log and the registry.

use std::fs;
use std::path::Path;

use rampart_crypto::sigstore_testing::{Issued, TestSigstore};

use crate::Scratch;
use crate::interop::{copy_dir, tiny_copy};

const IDENTITY: &str = "stefanb@us.ibm.com";
const ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";

fn golden() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/model-transparency")
}

/// `verify DIR --sig DIR/model.sig --sigstore --identity … --identity-provider …`, run in `cwd`
/// (`who` is the identity and the issuer).
fn verify_in(
    s: &Scratch,
    cwd: &Path,
    dir: &str,
    sig: &str,
    ignore: Option<&str>,
    (identity, issuer): (&str, &str),
    extra: &[&str],
) -> (i32, String) {
    let mut args = vec![
        "verify",
        dir,
        "--sig",
        sig,
        "--sigstore",
        "--identity",
        identity,
        "--identity-provider",
        issuer,
    ];
    if let Some(i) = ignore {
        args.extend(["--ignore-paths", i]);
    }
    args.extend_from_slice(extra);
    let out = s.rampart(&args).current_dir(cwd).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn model_signing_golden_vectors_sigstore_verify_offline_and_tampered_ones_fail() {
    let s = Scratch::new();
    // Another certificate authority, with the public-good logs: the chain must fail.
    let other = TestSigstore::new("other").unwrap();
    let mut root: serde_json::Value =
        serde_json::from_str(rampart_crypto::sigstore::PUBLIC_GOOD_TRUSTED_ROOT).unwrap();
    let theirs: serde_json::Value =
        serde_json::from_str(&other.trusted_root_json().unwrap()).unwrap();
    root["certificateAuthorities"] = theirs["certificateAuthorities"].clone();
    fs::write(s.path().join("other-ca-root.json"), root.to_string()).unwrap();
    let other_root = s.path().join("other-ca-root.json");
    let other_root = other_root.to_str().unwrap();

    for (version, ignore) in [
        ("v0.3.1", false),
        ("v1.0.0", false),
        ("v1.0.1", true),
        ("v1.1.0", true),
    ] {
        let name = format!("{version}-sigstore");
        copy_dir(&golden().join(&name), &s.path().join(&name));
        let dir = format!("./{name}/");
        let sig = format!("./{name}/model.sig");
        let ignore_me = format!("./{name}/ignore-me");
        let ig = ignore.then_some(ignore_me.as_str());
        let here = s.path();
        // As the upstream script: from the parent, then from inside the model directory.
        let (code, out) = verify_in(&s, here, &dir, &sig, ig, (IDENTITY, ISSUER), &[]);
        assert_eq!(code, 0, "{version}: {out}");
        assert!(out.contains("Sigstore: stefanb@us.ibm.com"), "{out}");
        assert!(out.contains("https://rekor.sigstore.dev"), "{out}");
        let inside = here.join(&name);
        let (code, out) = verify_in(
            &s,
            &inside,
            ".",
            "model.sig",
            ignore.then_some("ignore-me"),
            (IDENTITY, ISSUER),
            &[],
        );
        assert_eq!(code, 0, "{version} (inside): {out}");
        // Another identity, another issuer, another certificate authority: each named.
        let (code, out) = verify_in(&s, here, &dir, &sig, ig, ("eve@example.com", ISSUER), &[]);
        assert_eq!(code, 1, "{version}: {out}");
        assert!(
            out.contains("issued to stefanb@us.ibm.com") && out.contains("eve@example.com"),
            "{out}"
        );
        let (code, out) = verify_in(
            &s,
            here,
            &dir,
            &sig,
            ig,
            (IDENTITY, "https://accounts.google.com"),
            &[],
        );
        assert_eq!(code, 1, "{version}: {out}");
        assert!(out.contains("issuer https://accounts.google.com"), "{out}");
        let (code, out) = verify_in(
            &s,
            here,
            &dir,
            &sig,
            ig,
            (IDENTITY, ISSUER),
            &["--trusted-root", other_root],
        );
        assert_eq!(code, 1, "{version}: {out}");
        assert!(out.contains("not from a trusted Fulcio authority"), "{out}");
        // A Rekor inclusion proof that does not match the entry.
        let original = fs::read_to_string(here.join(&name).join("model.sig")).unwrap();
        let mut bundle: serde_json::Value = serde_json::from_str(&original).unwrap();
        let proof = &mut bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"];
        let first = proof["hashes"][0].as_str().unwrap().to_owned();
        let second = proof["hashes"][1].as_str().unwrap().to_owned();
        proof["hashes"][0] = second.into();
        proof["hashes"][1] = first.into();
        fs::write(here.join(&name).join("model.sig"), bundle.to_string()).unwrap();
        let (code, out) = verify_in(&s, here, &dir, &sig, ig, (IDENTITY, ISSUER), &[]);
        assert_eq!(code, 1, "{version}: {out}");
        assert!(out.contains("inclusion proof does not lead"), "{out}");
        fs::write(here.join(&name).join("model.sig"), &original).unwrap();
        // A changed file.
        fs::write(here.join(&name).join("signme-1"), "tampered\n").unwrap();
        let (code, out) = verify_in(&s, here, &dir, &sig, ig, (IDENTITY, ISSUER), &[]);
        assert_eq!(code, 1, "{version}: {out}");
        assert!(out.contains("modified  signme-1"), "{out}");
    }
    // Nothing was fetched: verification is offline (the test machine has no route to
    // Sigstore), and a verification failure is audited like any other.
}

/// Signs `path` with `signer` through the private Sigstore: rampart signs with the
/// certificate method (the leaf key and certificate), then the envelope is logged and
/// re-wrapped as a Sigstore bundle.
fn sigstore_sign(s: &Scratch, test: &TestSigstore, signer: &Issued, path: &str, at: u64) {
    let key = s.path().join("leaf.key");
    let cert = s.path().join("leaf.pem");
    fs::write(&key, signer.key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let pem = x509_pem(&signer.certificate);
    fs::write(&cert, pem).unwrap();
    s.rampart(&[
        "sign",
        path,
        "--key",
        key.to_str().unwrap(),
        "--cert",
        cert.to_str().unwrap(),
    ])
    .assert()
    .success();
    let sig = if s.path().join(path).is_dir() {
        s.path().join(path).join("model.sig")
    } else {
        s.path().join(format!("{path}.sig"))
    };
    let bundle: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&sig).unwrap()).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    fs::write(&sig, test.bundle(signer, &payload, at).unwrap()).unwrap();
}

fn x509_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_trusted_sigstore_identity_admits_sigstore_signed_datasets_and_models() {
    let s = Scratch::init();
    let test = TestSigstore::new("corp").unwrap();
    fs::write(
        s.path().join("root.json"),
        test.trusted_root_json().unwrap(),
    )
    .unwrap();
    let workflow = "https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main";
    let actions = "https://token.actions.githubusercontent.com";
    let t = now();
    let ci = test.issue(workflow, actions, t - 60, t + 540).unwrap();

    // A dataset and a model, signed by the CI workflow's Sigstore certificate.
    fs::create_dir_all(s.path().join("ds")).unwrap();
    fs::write(
        s.path().join("schema.toml"),
        "version = 1\n[[columns]]\nname = \"id\"\ntype = \"int\"\n[[columns]]\nname = \"x\"\ntype = \"float\"\n",
    )
    .unwrap();
    fs::write(s.path().join("ds/d.csv"), "id,x\n1,0.5\n2,1.5\n").unwrap();
    s.rampart(&["data", "roots", "add", "ds"])
        .assert()
        .success();
    sigstore_sign(&s, &test, &ci, "ds/d.csv", t);
    tiny_copy(s.path(), false);
    sigstore_sign(&s, &test, &ci, "tiny-model", t);

    // Nothing trusts the identity yet: refused, saying how to trust it.
    let (code, out, err) = s.run(&["data", "ingest", "ds/d.csv", "--schema", "schema.toml"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        (out.clone() + &err).contains("no Sigstore identity is trusted"),
        "{out}{err}"
    );
    let (code, out, err) = s.run(&["model", "register", "tiny-model", "--name", "tiny"]);
    assert_ne!(code, 0, "{out}{err}");

    // Trusted identity, but the public-good root (the default) does not know this log.
    s.rampart(&[
        "trust",
        "add-identity",
        "--identity",
        workflow,
        "--issuer",
        actions,
        "--name",
        "release-ci",
    ])
    .assert()
    .success();
    let (code, out, _) = s.run(&["verify", "tiny-model"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("which the trusted root does not name"),
        "{out}"
    );

    // The home's own trusted root (a private Sigstore), installed and audited.
    let (code, out, err) = s.run(&["trust", "sigstore-root", "root.json"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("https://rekor.test.invalid"), "{out}");
    let list = s.json(&["trust", "list"]);
    assert_eq!(list["sigstore"][0]["identity"], workflow);
    let (code, out, err) = s.run(&["verify", "tiny-model"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(workflow), "{out}");

    let ingested = s.json(&["data", "ingest", "ds/d.csv", "--schema", "schema.toml"]);
    assert_eq!(ingested["integrity"], "signed");
    let registered = s.json(&["model", "register", "tiny-model", "--name", "tiny"]);
    assert_eq!(
        registered["signer_identity"],
        format!("sigstore:{workflow} (issuer {actions})")
    );
    // The promotion gates check the stored Sigstore signature (staging also wants provenance,
    // which this hand-signed model has none of).
    let (_, out, err) = s.run(&["model", "promote", "tiny@1", "--to", "staging"]);
    let gates = out + &err;
    assert!(
        gates.contains(&format!("ok   signature  signed by sigstore:{workflow}")),
        "{gates}"
    );
    let (_, log, _) = s.run(&["--format", "json", "audit", "show"]);
    for action in [
        "\"data.ingest\"",
        "\"model.register\"",
        "\"trust.sigstore-root\"",
    ] {
        assert!(log.contains(action), "{action} not audited: {log}");
    }
    assert!(
        log.matches(&format!("sigstore:{workflow}")).count() >= 2,
        "the signer's identity is not in the ingest and register records: {log}"
    );

    // Exported and imported into another home, which trusts the exporter's key, the identity
    // and the same Sigstore: the signature is re-verified there and the identity kept.
    s.json(&["model", "export", "tiny@1", "-o", "tiny.tar"]);
    s.rampart(&["keys", "export-public", "-o", "a.pub.pem"])
        .assert()
        .success();
    let b = Scratch::init();
    let file = |n: &str| s.path().join(n).display().to_string();
    b.rampart(&["trust", "add", &file("a.pub.pem"), "--name", "factory"])
        .assert()
        .success();
    let (code, _, err) = b.run(&["model", "import", &file("tiny.tar")]);
    assert_eq!(
        code, 1,
        "imported without trusting the Sigstore identity: {err}"
    );
    b.rampart(&["trust", "sigstore-root", &file("root.json")])
        .assert()
        .success();
    b.rampart(&[
        "trust",
        "add-identity",
        "--identity",
        workflow,
        "--issuer",
        actions,
    ])
    .assert()
    .success();
    let imported = b.json(&["model", "import", &file("tiny.tar")]);
    assert_eq!(
        imported["signer_identity"],
        format!("sigstore:{workflow} (issuer {actions})"),
        "{imported}"
    );

    // A certificate used after its ten minutes: refused at ingest, naming why.
    let stale = test.issue(workflow, actions, t - 7200, t - 6600).unwrap();
    fs::write(s.path().join("ds/e.csv"), "id,x\n3,0.5\n").unwrap();
    sigstore_sign(&s, &test, &stale, "ds/e.csv", t - 60);
    let (code, out, err) = s.run(&["data", "ingest", "ds/e.csv", "--schema", "schema.toml"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!((out.clone() + &err).contains("expired"), "{out}{err}");

    // Another identity of the same Sigstore is not trusted.
    let dev = test
        .issue(
            "dev@acme.example",
            "https://accounts.google.com",
            t - 60,
            t + 540,
        )
        .unwrap();
    sigstore_sign(&s, &test, &dev, "tiny-model", t);
    let (code, out, _) = s.run(&["verify", "tiny-model"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("dev@acme.example"), "{out}");

    // Removing the identity: the model signed by the workflow no longer verifies.
    sigstore_sign(&s, &test, &ci, "tiny-model", t);
    s.rampart(&["verify", "tiny-model"]).assert().success();
    s.rampart(&["trust", "remove", "release-ci"])
        .assert()
        .success();
    let (code, out, _) = s.run(&["verify", "tiny-model"]);
    assert_eq!(code, 1, "{out}");
}
