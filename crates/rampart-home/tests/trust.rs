//! Editing the home's trust as a library call: every change and every refusal on record, the
//! policy unchanged by a refusal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use rampart_audit::{Auditor, MemorySink};
use rampart_crypto::SigningKey;
use rampart_crypto::sigstore::Identity;
use rampart_home::trust::{self, Removed, TrustError};
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
        matches!(err, TrustError::Home(HomeError::TrustExists { .. })),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(home.policy_path()).unwrap(), before);
    // A file without certificates.
    let err = trust::add_certificates(&session(&policy), "ca", "not pem", Path::new("ca.pem"))
        .unwrap_err();
    assert!(matches!(err, TrustError::Certificates { .. }), "{err}");
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
