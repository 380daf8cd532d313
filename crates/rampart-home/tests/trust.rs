//! Editing the home's trust as a library call: every change and every refusal on record, the
//! policy unchanged by a refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use rampart_audit::{Auditor, MemorySink};
use rampart_crypto::SigningKey;
use rampart_crypto::sigstore::Identity;
use rampart_home::trust::{self, EditError, Removed};
use rampart_home::{Home, HomeError, Session};

#[test]
fn trust_changes_and_refusals_are_recorded_and_a_refusal_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let sink = MemorySink::new();
    let session = |policy| Session {
        home: &home,
        policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let key = SigningKey::generate().public_key();
    let source = Path::new("partner.pub.pem");
    let policy = home.load_policy().unwrap();
    let added = trust::add_key(&session(&policy), "partner", &key, source).unwrap();
    assert_eq!(added.fingerprint, key.fingerprint().to_string());
    // The same name again: refused, recorded as denied, the policy as it was.
    let before = std::fs::read_to_string(home.policy_path()).unwrap();
    let policy = home.load_policy().unwrap();
    let err = trust::add_key(&session(&policy), "partner", &key, source).unwrap_err();
    assert!(
        matches!(err, EditError::Home(HomeError::TrustExists { .. })),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(home.policy_path()).unwrap(), before);
    // A file without certificates.
    let err = trust::add_certificates(&session(&policy), "ca", "not pem", Path::new("ca.pem"))
        .unwrap_err();
    assert!(matches!(err, EditError::Certificates { .. }), "{err}");
    let id = Identity {
        identity: "builder@example.com".into(),
        issuer: "https://accounts.example.com".into(),
    };
    let trusted = trust::add_identity(&session(&policy), "ci", &id).unwrap();
    assert_eq!(trusted.identity, "builder@example.com");
    // Removal finds the right kind by name.
    let policy = home.load_policy().unwrap();
    assert!(matches!(
        trust::remove(&session(&policy), "ci").unwrap(),
        Removed::Identity(_)
    ));
    let policy = home.load_policy().unwrap();
    assert!(matches!(
        trust::remove(&session(&policy), "partner").unwrap(),
        Removed::Key(_)
    ));
    let policy = home.load_policy().unwrap();
    assert!(trust::remove(&session(&policy), "nobody").is_err());
    assert_eq!(
        sink.actions(),
        [
            ("trust.add".to_owned(), "ok".to_owned()),
            ("trust.add".to_owned(), "denied".to_owned()),
            ("trust.add".to_owned(), "denied".to_owned()),
            ("trust.add".to_owned(), "ok".to_owned()),
            ("trust.remove".to_owned(), "ok".to_owned()),
            ("trust.remove".to_owned(), "ok".to_owned()),
        ]
    );
}

#[test]
fn data_roots_and_pins_are_edited_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let sink = MemorySink::new();
    let audit = Auditor::new(Some(&sink), "tester");
    let real = rampart_home::roots::add_root(&home, &audit, &data).unwrap();
    assert_eq!(real, std::fs::canonicalize(&data).unwrap());
    assert!(home.load_policy().unwrap().data.roots.contains(&real));
    // A file is not a root.
    std::fs::write(data.join("f.csv"), "a\n").unwrap();
    assert!(rampart_home::roots::add_root(&home, &audit, &data.join("f.csv")).is_err());
    let digest = rampart_crypto::sha256(b"a\n").reference().to_string();
    rampart_home::roots::pin(&home, &audit, &digest, &data.join("f.csv")).unwrap();
    rampart_home::roots::unpin(&home, &audit, &digest).unwrap();
    assert!(rampart_home::roots::unpin(&home, &audit, &digest).is_err());
    rampart_home::roots::remove_root(&home, &audit, &data).unwrap();
    assert!(home.load_policy().unwrap().data.roots.is_empty());
    let actions: Vec<String> = sink.actions().into_iter().map(|(a, _)| a).collect();
    assert_eq!(
        actions,
        [
            "data.roots.add",
            "data.pin",
            "data.unpin",
            "data.roots.remove"
        ]
    );
}

#[test]
fn an_exported_public_key_is_the_home_key_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let sink = MemorySink::new();
    let audit = Auditor::new(Some(&sink), "tester");
    let out = dir.path().join("home.pub.pem");
    trust::export_public(&home, &audit, false, &out).unwrap();
    let exported =
        rampart_crypto::PublicKey::from_pem(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        exported.fingerprint(),
        home.signing_public_key().unwrap().fingerprint()
    );
    let age = trust::public_key_text(&home, true).unwrap();
    assert!(age.starts_with("age1") && age.ends_with('\n'), "{age}");
    let records = sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].action, "keys.export-public");
    assert_eq!(records[0].details["key"], "signing-public-key");
    // A directory that does not exist: nothing recorded.
    let err =
        trust::export_public(&home, &audit, true, &dir.path().join("no/such.pub")).unwrap_err();
    assert!(err.to_string().contains("no/such.pub"), "{err}");
    assert_eq!(sink.records().len(), 1);
}
