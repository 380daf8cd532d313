//! Sigstore bundles verified offline: model_signing's four public-good golden vectors (real
//! Fulcio certificates, real Rekor entries) against the pinned trusted root, each tampered in
//! the ways an attacker or an accident would, and bundles from a private test Sigstore for
//! what the public instance will not sign (expired and not-yet-valid certificates).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::PathBuf;

use rampart_crypto::dsse::{BundleError, UnverifiedBundle};
use rampart_crypto::sigstore::{Identity, SigstoreError, TrustedRoot};
use rampart_crypto::sigstore_testing::TestSigstore;
use serde_json::Value;

const IDENTITY: &str = "stefanb@us.ibm.com";
const ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";
const VECTORS: [&str; 4] = ["v0.3.1", "v1.0.0", "v1.0.1", "v1.1.0"];

fn vector(v: &str) -> Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../rampart/tests/fixtures/model-transparency")
        .join(format!("{v}-sigstore/model.sig"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn stefan() -> Vec<Identity> {
    vec![Identity {
        identity: IDENTITY.into(),
        issuer: ISSUER.into(),
    }]
}

fn public_good() -> TrustedRoot {
    TrustedRoot::public_good().unwrap()
}

fn check(bundle: &Value, root: &TrustedRoot, ids: &[Identity]) -> Result<String, BundleError> {
    let b = UnverifiedBundle::parse(bundle.to_string().as_bytes())?;
    let (_, signer) = b.verify_sigstore(root, ids)?;
    Ok(signer.identity.identity)
}

/// Fails with a Sigstore error whose message contains `needle`.
fn refused(bundle: &Value, root: &TrustedRoot, ids: &[Identity], needle: &str) -> SigstoreError {
    match check(bundle, root, ids) {
        Err(BundleError::Sigstore(e)) => {
            assert!(
                e.to_string().contains(needle),
                "expected {needle:?} in: {e}"
            );
            e
        }
        other => panic!("expected a Sigstore refusal containing {needle:?}, got {other:?}"),
    }
}

fn entry(b: &mut Value) -> &mut Value {
    &mut b["verificationMaterial"]["tlogEntries"][0]
}

#[test]
fn every_public_good_golden_vector_verifies_offline_against_the_pinned_root() {
    for v in VECTORS {
        assert_eq!(
            check(&vector(v), &public_good(), &stefan()).unwrap(),
            IDENTITY,
            "{v}"
        );
    }
}

#[test]
fn a_wrong_identity_or_issuer_is_refused_naming_who_the_certificate_is_for() {
    for v in VECTORS {
        let b = vector(v);
        let other = [Identity {
            identity: "mallory@example.com".into(),
            issuer: ISSUER.into(),
        }];
        let e = refused(&b, &public_good(), &other, "issued to stefanb@us.ibm.com");
        assert!(matches!(e, SigstoreError::Identity(_)));
        assert!(e.to_string().contains("mallory@example.com"));
        let other_issuer = [Identity {
            identity: IDENTITY.into(),
            issuer: "https://accounts.google.com".into(),
        }];
        refused(
            &b,
            &public_good(),
            &other_issuer,
            "not to stefanb@us.ibm.com (issuer https://accounts.google.com)",
        );
        // No identity at all: refused, never accepted by default.
        refused(&b, &public_good(), &[], "no Sigstore identity is trusted");
    }
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    // The public-good logs, but a certificate authority the bundle's certificate does not
    // chain to.
    let test = TestSigstore::new("other").unwrap();
    let mut root: Value =
        serde_json::from_str(rampart_crypto::sigstore::PUBLIC_GOOD_TRUSTED_ROOT).unwrap();
    let other: Value = serde_json::from_str(&test.trusted_root_json().unwrap()).unwrap();
    root["certificateAuthorities"] = other["certificateAuthorities"].clone();
    let root = TrustedRoot::from_json(root.to_string().as_bytes()).unwrap();
    let e = refused(
        &vector("v1.1.0"),
        &root,
        &stefan(),
        "not from a trusted Fulcio authority",
    );
    assert!(matches!(e, SigstoreError::Chain(_)), "{e}");
}

type Tamper = Box<dyn Fn(&mut Value)>;

#[test]
fn a_rekor_entry_that_does_not_match_its_proof_promise_or_checkpoint_is_refused() {
    let root = public_good();
    let ids = stefan();
    let donor = vector("v1.0.1");
    let other_proof = donor["verificationMaterial"]["tlogEntries"][0]["inclusionProof"].clone();
    let (other_root, other_checkpoint) = (
        other_proof["rootHash"].clone(),
        other_proof["checkpoint"].clone(),
    );
    let set = |field: &'static str, value: &'static str| -> Tamper {
        Box::new(move |b: &mut Value| entry(b)[field] = value.into())
    };
    let remove = |field: &'static str| -> Tamper {
        Box::new(move |b: &mut Value| {
            entry(b).as_object_mut().unwrap().remove(field);
        })
    };
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "a sibling hash of the inclusion proof",
            Box::new(|b: &mut Value| {
                let p = &mut entry(b)["inclusionProof"]["hashes"];
                let h = p[3].as_str().unwrap().replace('P', "Q").replace('a', "b");
                p[3] = h.into();
            }),
            "the inclusion proof does not lead from the entry to the root hash",
        ),
        (
            "a proof for another position in the tree",
            Box::new(|b: &mut Value| {
                entry(b)["inclusionProof"]["logIndex"] = "476246823".into();
            }),
            "inclusion proof",
        ),
        (
            "another tree's root hash (a real one of the same log)",
            Box::new(move |b: &mut Value| {
                entry(b)["inclusionProof"]["rootHash"] = other_root.clone();
            }),
            "does not lead from the entry to the root hash",
        ),
        (
            "another tree's signed checkpoint",
            Box::new(move |b: &mut Value| {
                entry(b)["inclusionProof"]["checkpoint"] = other_checkpoint.clone();
            }),
            "the signed checkpoint is for another tree",
        ),
        (
            "an edited checkpoint",
            Box::new(|b: &mut Value| {
                let cp = &mut entry(b)["inclusionProof"]["checkpoint"]["envelope"];
                let text = cp.as_str().unwrap().replacen("476246825", "476246826", 1);
                *cp = text.into();
            }),
            "checkpoint's signature does not verify",
        ),
        (
            "a checkpoint signature under another key name",
            Box::new(|b: &mut Value| {
                let cp = &mut entry(b)["inclusionProof"]["checkpoint"]["envelope"];
                let text = cp.as_str().unwrap().replacen(
                    "\u{2014} rekor.sigstore.dev ",
                    "\u{2014} !ekor.sigstore.dev ",
                    1,
                );
                *cp = text.into();
            }),
            "the checkpoint carries no signature by the log's key",
        ),
        (
            "another integrated time",
            set("integratedTime", "1760062341"),
            "the signed entry timestamp does not verify",
        ),
        (
            "another log index",
            set("logIndex", "598151087"),
            "the signed entry timestamp does not verify",
        ),
        (
            "no promise",
            remove("inclusionPromise"),
            "no signed entry timestamp",
        ),
        ("no proof", remove("inclusionProof"), "no inclusion proof"),
    ];
    for (what, tamper, needle) in cases {
        let mut b = vector("v1.1.0");
        tamper(&mut b);
        match check(&b, &root, &ids) {
            Err(BundleError::Sigstore(e)) => {
                assert!(e.to_string().contains(needle), "{what}: {e}");
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
    // A log the trusted root does not name.
    let test = TestSigstore::new("other").unwrap();
    let mut r: Value =
        serde_json::from_str(rampart_crypto::sigstore::PUBLIC_GOOD_TRUSTED_ROOT).unwrap();
    let other: Value = serde_json::from_str(&test.trusted_root_json().unwrap()).unwrap();
    r["tlogs"] = other["tlogs"].clone();
    let r = TrustedRoot::from_json(r.to_string().as_bytes()).unwrap();
    refused(
        &vector("v1.1.0"),
        &r,
        &ids,
        "which the trusted root does not name",
    );
}

#[test]
fn a_log_entry_for_another_envelope_or_certificate_is_refused() {
    let root = public_good();
    let ids = stefan();
    let donor = vector("v1.0.1");
    // Another (genuine, logged) entry.
    let mut b = vector("v1.1.0");
    *entry(&mut b) = donor["verificationMaterial"]["tlogEntries"][0].clone();
    refused(&b, &root, &ids, "records another payload");
    // The envelope's payload changed (a different manifest).
    let mut b = vector("v1.1.0");
    b["dsseEnvelope"]["payload"] = donor["dsseEnvelope"]["payload"].clone();
    refused(&b, &root, &ids, "records another payload");
    // Another signature.
    let mut b = vector("v1.1.0");
    b["dsseEnvelope"]["signatures"] = donor["dsseEnvelope"]["signatures"].clone();
    refused(&b, &root, &ids, "records another signature");
    // Another (genuine Fulcio) certificate.
    let mut b = vector("v1.1.0");
    b["verificationMaterial"]["certificate"] = donor["verificationMaterial"]["certificate"].clone();
    refused(&b, &root, &ids, "records another certificate");
    // Without its log entry it is not a Sigstore bundle at all.
    let mut b = vector("v1.1.0");
    b["verificationMaterial"]["tlogEntries"] = Value::Array(Vec::new());
    let parsed = UnverifiedBundle::parse(b.to_string().as_bytes()).unwrap();
    assert!(!parsed.is_sigstore());
    assert!(matches!(
        parsed.verify_sigstore(&root, &ids),
        Err(BundleError::Unsupported(_))
    ));
}

#[test]
fn a_certificate_without_a_verifiable_sct_is_refused() {
    let mut r: Value =
        serde_json::from_str(rampart_crypto::sigstore::PUBLIC_GOOD_TRUSTED_ROOT).unwrap();
    r["ctlogs"] = Value::Array(Vec::new());
    let r = TrustedRoot::from_json(r.to_string().as_bytes()).unwrap();
    refused(
        &vector("v1.0.0"),
        &r,
        &stefan(),
        "signed certificate timestamp",
    );
}

const T0: u64 = 1_790_000_000;

fn statement() -> Vec<u8> {
    br#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://model_signing/signature/v1.0","predicate":{}}"#.to_vec()
}

#[test]
fn a_private_sigstore_verifies_with_its_own_trusted_root_only() {
    let test = TestSigstore::new("private").unwrap();
    let root = TrustedRoot::from_json(test.trusted_root_json().unwrap().as_bytes()).unwrap();
    let workflow = "https://github.com/acme/models/.github/workflows/release.yml@refs/heads/main";
    let actions = "https://token.actions.githubusercontent.com";
    let cert = test.issue(workflow, actions, T0, T0 + 600).unwrap();
    let b: Value =
        serde_json::from_str(&test.bundle(&cert, &statement(), T0 + 30).unwrap()).unwrap();
    let ids = [Identity {
        identity: workflow.into(),
        issuer: actions.into(),
    }];
    assert_eq!(check(&b, &root, &ids).unwrap(), workflow);
    // The public-good root does not know this log.
    refused(
        &b,
        &public_good(),
        &ids,
        "which the trusted root does not name",
    );
}

#[test]
fn a_certificate_used_outside_its_ten_minutes_is_refused() {
    let test = TestSigstore::new("private").unwrap();
    let root = TrustedRoot::from_json(test.trusted_root_json().unwrap().as_bytes()).unwrap();
    let cert = test
        .issue(
            "dev@example.com",
            "https://accounts.google.com",
            T0,
            T0 + 600,
        )
        .unwrap();
    let ids = [Identity {
        identity: "dev@example.com".into(),
        issuer: "https://accounts.google.com".into(),
    }];
    // Logged an hour after the certificate expired (a stolen key used later).
    let late: Value =
        serde_json::from_str(&test.bundle(&cert, &statement(), T0 + 3600).unwrap()).unwrap();
    let e = refused(&late, &root, &ids, "expired");
    assert!(matches!(e, SigstoreError::Time(_)));
    // Logged before it was issued.
    let early: Value =
        serde_json::from_str(&test.bundle(&cert, &statement(), T0 - 60).unwrap()).unwrap();
    refused(&early, &root, &ids, "not yet begun");
    // The same certificate inside its window verifies (the control).
    let ok: Value =
        serde_json::from_str(&test.bundle(&cert, &statement(), T0 + 599).unwrap()).unwrap();
    assert!(check(&ok, &root, &ids).is_ok());
}

#[test]
fn earlier_bundle_versions_verify_in_their_own_shape() {
    // v0.1 and v0.2 carried the certificate as a one-element x509CertificateChain; v0.1
    // entries may lack an inclusion proof (the promise alone), from v0.2 on the proof is
    // required.
    let reshape = |media: &str, proof: bool| {
        let mut b = vector("v1.0.0");
        b["mediaType"] = media.into();
        let cert = b["verificationMaterial"]["certificate"].clone();
        let m = b["verificationMaterial"].as_object_mut().unwrap();
        m.remove("certificate");
        m.insert(
            "x509CertificateChain".into(),
            serde_json::json!({"certificates": [cert]}),
        );
        if !proof {
            entry(&mut b)
                .as_object_mut()
                .unwrap()
                .remove("inclusionProof");
        }
        b
    };
    let root = public_good();
    for media in [
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
    ] {
        assert!(
            check(&reshape(media, true), &root, &stefan()).is_ok(),
            "{media}"
        );
    }
    assert!(
        check(
            &reshape(
                "application/vnd.dev.sigstore.bundle+json;version=0.1",
                false
            ),
            &root,
            &stefan()
        )
        .is_ok()
    );
    refused(
        &reshape(
            "application/vnd.dev.sigstore.bundle+json;version=0.2",
            false,
        ),
        &root,
        &stefan(),
        "no inclusion proof",
    );
    // An unknown bundle version is refused, not guessed at.
    let mut b = vector("v1.0.0");
    b["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.4+json".into();
    assert!(matches!(
        check(&b, &root, &stefan()),
        Err(BundleError::Unsupported(_))
    ));
}

#[test]
fn a_second_log_entry_or_a_retired_ct_log_is_refused() {
    let root = public_good();
    // A genuine entry followed by another genuine one (of another bundle): exactly one entry
    // is read, never "any of them".
    let mut b = vector("v1.1.0");
    let other = vector("v1.0.1")["verificationMaterial"]["tlogEntries"][0].clone();
    b["verificationMaterial"]["tlogEntries"]
        .as_array_mut()
        .unwrap()
        .push(other);
    refused(&b, &root, &stefan(), "exactly one is expected");
    // The CT log's key retired before the certificate was logged: its SCT vouches for nothing.
    let test = TestSigstore::new("private").unwrap();
    let mut r: Value = serde_json::from_str(&test.trusted_root_json().unwrap()).unwrap();
    r["ctlogs"][0]["publicKey"]["validFor"]["end"] = "2021-01-01T00:00:00Z".into();
    let retired = TrustedRoot::from_json(r.to_string().as_bytes()).unwrap();
    let live = TrustedRoot::from_json(test.trusted_root_json().unwrap().as_bytes()).unwrap();
    let cert = test
        .issue(
            "dev@example.com",
            "https://accounts.google.com",
            T0,
            T0 + 600,
        )
        .unwrap();
    let ids = [Identity {
        identity: "dev@example.com".into(),
        issuer: "https://accounts.google.com".into(),
    }];
    let b: Value =
        serde_json::from_str(&test.bundle(&cert, &statement(), T0 + 30).unwrap()).unwrap();
    assert!(check(&b, &live, &ids).is_ok());
    let e = refused(&b, &retired, &ids, "was not trusted at");
    assert!(matches!(e, SigstoreError::Sct(_)), "{e}");
    // An identity that is only a prefix or a suffix of the certificate's does not match.
    for near in [
        "dev@example.co",
        "xdev@example.com",
        "dev@example.com.evil.test",
    ] {
        let near = [Identity {
            identity: near.into(),
            issuer: "https://accounts.google.com".into(),
        }];
        refused(&b, &live, &near, "issued to dev@example.com");
    }
}

#[test]
fn sigstore_trust_alone_says_a_key_bundle_is_not_a_sigstore_bundle() {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../rampart/tests/fixtures/model-transparency/v1.1.0-elliptic-key/model.sig");
    let anchors = rampart_crypto::oms::Anchors {
        cert_roots: Vec::new(),
        sigstore: Some(rampart_crypto::oms::SigstoreTrust {
            root: std::sync::Arc::new(public_good()),
            identities: stefan(),
        }),
    };
    let e = rampart_crypto::oms::verify_bundle_signer(&std::fs::read(p).unwrap(), &[], &anchors)
        .unwrap_err();
    assert!(e.to_string().contains("not a Sigstore bundle"), "{e}");
    assert!(e.to_string().contains("--key"), "{e}");
}
