//! Checkpoints anchored in a real PostgreSQL server (`rampart_postgres::testing`): a log cut
//! back or rewritten after a checkpoint was anchored fails the check even when its local
//! checkpoints are re-signed with the home's key; the table is append-only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;

use rampart_audit::anchor::{Anchor, PgAnchor, check};
use rampart_audit::{AuditLog, Event, FailureKind, Outcome};
use rampart_crypto::SigningKey;
use rampart_postgres::{Origin, Target, testing};

fn anchor() -> (Target, Arc<PgAnchor>) {
    let target = Target::parse(&testing::fresh_database().unwrap(), Origin::Environment).unwrap();
    let a = Arc::new(PgAnchor::open(&target).unwrap());
    (target, a)
}

fn events(log: &AuditLog, what: &str, n: usize) {
    for i in 0..n {
        log.append(Event::new("alice", format!("{what}.{i}"), Outcome::Ok))
            .unwrap();
    }
}

fn keep_lines(path: &std::path::Path, keep: impl Fn(&str) -> bool) {
    let text = std::fs::read_to_string(path).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| keep(l))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(path, kept).unwrap();
}

fn seq_of(line: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_log_cut_back_after_an_anchored_checkpoint_fails_though_it_verifies_locally() {
    let (_, a) = anchor();
    let key = SigningKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap().with_anchor(a.clone());
    events(&log, "first", 5);
    log.checkpoint(&key).unwrap().unwrap();
    events(&log, "second", 3);
    log.checkpoint(&key).unwrap().unwrap();
    let report = check(&log, a.as_ref(), &key.public_key()).unwrap();
    assert_eq!((report.anchored, report.last_anchored_seq), (2, Some(8)));
    assert!(report.failure.is_none(), "{report:?}");

    // Cut back to seq 6, with the local checkpoints past it removed too.
    keep_lines(log.log_path(), |l| seq_of(l) <= 6);
    keep_lines(log.checkpoints_path(), |l| seq_of(l) <= 6);
    let local = log.verify(&[key.public_key()]).unwrap();
    assert!(
        local.failure.is_none(),
        "locally it looks intact: {local:?}"
    );
    let f = check(&log, a.as_ref(), &key.public_key())
        .unwrap()
        .failure
        .unwrap();
    assert_eq!((f.seq, f.kind), (8, FailureKind::Truncated), "{f:?}");
    assert!(f.reason.contains("ends at seq 6"), "{}", f.reason);
}

#[test]
fn a_rewritten_chain_re_signed_with_the_key_fails_and_cannot_be_anchored() {
    let (_, a) = anchor();
    let key = SigningKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap().with_anchor(a.clone());
    events(&log, "real", 4);
    log.checkpoint(&key).unwrap().unwrap();
    // Whoever holds the machine (and its key) writes another history in its place.
    std::fs::remove_file(log.log_path()).unwrap();
    std::fs::remove_file(log.checkpoints_path()).unwrap();
    let forged = AuditLog::open(dir.path()).unwrap();
    events(&forged, "forged", 4);
    forged.checkpoint(&key).unwrap().unwrap();
    assert!(
        forged
            .verify(&[key.public_key()])
            .unwrap()
            .failure
            .is_none()
    );
    let f = check(&forged, a.as_ref(), &key.public_key())
        .unwrap()
        .failure
        .unwrap();
    assert_eq!(
        (f.seq, f.kind),
        (4, FailureKind::CheckpointMismatch),
        "{f:?}"
    );
    // Nor can the forged checkpoint replace the anchored one.
    let forged = AuditLog::open(dir.path()).unwrap().with_anchor(a.clone());
    events(&forged, "more", 1);
    let other = forged.checkpoint(&key).unwrap().unwrap();
    assert_eq!(other.seq, 5);
    let mut replay = other.clone();
    replay.seq = 4;
    let e = a.anchor(&replay).unwrap_err().to_string();
    assert!(e.contains("rewritten"), "{e}");
}

#[test]
fn the_anchor_is_append_only_and_checkpoints_of_another_key_are_named() {
    let (target, a) = anchor();
    let key = SigningKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap().with_anchor(a.clone());
    events(&log, "x", 2);
    let cp = log.checkpoint(&key).unwrap().unwrap();
    // Anchoring the same checkpoint again is a no-op.
    a.anchor(&cp).unwrap();
    let mut c = target.connect().unwrap();
    for sql in [
        "DELETE FROM rampart_audit_anchors",
        "UPDATE rampart_audit_anchors SET head = 'x'",
        "TRUNCATE rampart_audit_anchors",
    ] {
        let e = c.batch_execute(sql).unwrap_err();
        assert!(
            rampart_postgres::db_reason(&e).contains("append-only"),
            "{sql}: {e}"
        );
    }
    // A row under this key's fingerprint that its key did not sign.
    let other = SigningKey::generate();
    let dir2 = tempfile::tempdir().unwrap();
    let log2 = AuditLog::open(dir2.path()).unwrap();
    events(&log2, "y", 3);
    let mut bogus = log2.checkpoint(&other).unwrap().unwrap();
    bogus.key = cp.key.clone();
    a.anchor(&bogus).unwrap();
    let f = check(&log, a.as_ref(), &key.public_key())
        .unwrap()
        .failure
        .unwrap();
    assert_eq!((f.seq, f.kind), (3, FailureKind::ForgedCheckpoint), "{f:?}");
}
