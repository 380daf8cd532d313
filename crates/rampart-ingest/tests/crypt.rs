//! Encrypting and decrypting age files as library calls: the home's identity by default,
//! each on the record, a file for someone else refused and recorded as failed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use rampart_audit::{Auditor, MemorySink};
use rampart_crypto::AgeIdentity;
use rampart_crypto::age_file::{AgeError, Unlock};
use rampart_home::{Classify, Home, Session};
use rampart_ingest::{IngestError, crypt};

#[test]
fn encrypt_to_the_home_then_decrypt_and_refuse_another_key() {
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
    let to = crypt::recipients(&home, &[], &[], true).unwrap();
    let plain = b"id,score\n1,0.5\n";
    let mut sealed = Vec::new();
    let (n, digest) = crypt::encrypt(
        &s,
        (Path::new("in.csv"), &mut &plain[..]),
        (Path::new("in.csv.age"), &mut sealed),
        &to,
        false,
    )
    .unwrap();
    assert_eq!((n, digest), (15, rampart_crypto::sha256(plain)));
    let ours = Unlock::identities(vec![home.age_identity().unwrap().0.as_age().clone()]);
    let mut out = Vec::new();
    crypt::decrypt(
        &s,
        (Path::new("in.csv.age"), &sealed[..]),
        (Path::new("out.csv"), &mut out),
        &ours,
    )
    .unwrap();
    assert_eq!(out, plain);
    let theirs = Unlock::identities(vec![AgeIdentity::generate().as_age().clone()]);
    let err = crypt::decrypt(
        &s,
        (Path::new("in.csv.age"), &sealed[..]),
        (Path::new("out.csv"), &mut Vec::new()),
        &theirs,
    )
    .unwrap_err();
    assert!(
        matches!(&err, IngestError::Age { source: AgeError::NoMatchingKey, path } if path == Path::new("in.csv.age")),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("-i FILE"));
    let want = [("encrypt", "ok"), ("decrypt", "ok"), ("decrypt", "failed")];
    assert_eq!(
        sink.actions(),
        want.map(|(a, o)| (a.to_owned(), o.to_owned())).to_vec()
    );
    // No recipients and no home to fall back on: named.
    let err = crypt::recipients(&home, &[], &[], false).unwrap_err();
    assert!(err.to_string().contains("recipients"), "{err}");
    let err = crypt::recipients(&home, &["age1nope".into()], &[], true).unwrap_err();
    assert!(matches!(err, IngestError::Age { .. }), "{err}");
}
