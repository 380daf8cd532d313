//! Rekeying an age file as a library call: the new recipients can read it, the old cannot,
//! and a rekey that could not be proved leaves the original as it was.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rampart_audit::{Auditor, MemorySink};
use rampart_crypto::AgeIdentity;
use rampart_crypto::age_file::{self, Recipients, Unlock};
use rampart_home::{Classify, Policy, Session};
use rampart_ingest::rekey::{RekeyError, Step, rekey};

const TEXT: &[u8] = b"id,score\n1,0.5\n";

fn encrypted_to(dir: &std::path::Path, who: &AgeIdentity) -> std::path::PathBuf {
    let path = dir.join("d.csv.age");
    let mut out = Vec::new();
    age_file::encrypt(
        &mut &TEXT[..],
        &mut out,
        &Recipients::parse(&[who.recipient()]).unwrap(),
        false,
    )
    .unwrap();
    std::fs::write(&path, out).unwrap();
    path
}

fn decrypts_with(path: &std::path::Path, who: &AgeIdentity) -> bool {
    let mut out = Vec::new();
    let keys = Unlock::identities(vec![who.as_age().clone()]);
    age_file::decrypt(std::fs::File::open(path).unwrap(), &mut out, &keys).is_ok() && out == TEXT
}

#[test]
fn a_rekeyed_file_opens_for_the_new_recipient_only_and_the_steps_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (AgeIdentity::generate(), AgeIdentity::generate());
    let path = encrypted_to(dir.path(), &old);
    let sink = MemorySink::new();
    let policy = Policy::default();
    let home = rampart_home::Home::resolve(Some(&dir.path().join("no-home")));
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let keys = Unlock::identities(vec![old.as_age().clone(), new.as_age().clone()]);
    let to = Recipients::parse(&[new.recipient()]).unwrap();
    let mut steps = Vec::new();
    let done = rekey(&s, &path, &keys, &to, true, &mut |st| steps.push(st)).unwrap();
    assert_eq!(done.bytes, TEXT.len() as u64);
    assert_eq!(done.digest, rampart_crypto::sha256(TEXT));
    assert_eq!(steps, [Step::Written, Step::Verified]);
    assert!(decrypts_with(&path, &new) && !decrypts_with(&path, &old));
    assert!(std::fs::read(&path).unwrap().starts_with(b"-----BEGIN AGE"));
    assert_eq!(sink.actions(), [("rekey".to_owned(), "ok".to_owned())]);

    // To a recipient whose identity is not at hand: refused before anything is written.
    let third = AgeIdentity::generate();
    let before = std::fs::read(&path).unwrap();
    let err = rekey(
        &s,
        &path,
        &Unlock::identities(vec![new.as_age().clone()]),
        &Recipients::parse(&[third.recipient()]).unwrap(),
        false,
        &mut |_| panic!("nothing is written"),
    )
    .unwrap_err();
    assert!(matches!(err, RekeyError::NoVerifier { .. }), "{err}");
    assert!(err.hint().is_some());
    // With keys that do not open it: the age error, with its hint.
    let err = rekey(
        &s,
        &path,
        &Unlock::identities(vec![third.as_age().clone()]),
        &Recipients::parse(&[third.recipient()]).unwrap(),
        false,
        &mut |_| panic!("nothing is written"),
    )
    .unwrap_err();
    assert!(matches!(err, RekeyError::Age { .. }), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the original is unchanged"
    );
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left beside it");
}
