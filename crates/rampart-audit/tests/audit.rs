//! Tampering, truncation, forgery and concurrency tests for the audit log.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::fs;
use std::path::Path;
use std::process::Command;

use rampart_audit::{AuditLog, Event, FailureKind, Outcome, VerifyReport};
use rampart_crypto::SigningKey;
use serde_json::Value;

fn log_with(dir: &Path, n: u64, key: &SigningKey, checkpoint_at: &[u64]) -> AuditLog {
    let log = AuditLog::open(dir).unwrap();
    for i in 1..=n {
        log.append(
            Event::new(
                "tester",
                "test.event",
                if i % 3 == 0 {
                    Outcome::Denied
                } else {
                    Outcome::Ok
                },
            )
            .subject_path(format!("file-{i}"))
            .detail("i", i),
        )
        .unwrap();
        if checkpoint_at.contains(&i) {
            log.checkpoint(key).unwrap().unwrap();
        }
    }
    log
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(path, text).unwrap();
}

fn verify(log: &AuditLog, key: &SigningKey) -> VerifyReport {
    log.verify(&[key.public_key()]).unwrap()
}

fn expect_failure(report: &VerifyReport, seq: u64, kind: FailureKind) {
    let failure = report
        .failure
        .as_ref()
        .unwrap_or_else(|| panic!("no failure reported: {report:?}"));
    assert_eq!(
        (failure.seq, failure.kind),
        (seq, kind),
        "{}",
        failure.reason
    );
}

#[test]
fn intact_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 10, &key, &[5, 10]);
    let report = verify(&log, &key);
    assert_eq!(report.failure, None);
    assert_eq!(
        (
            report.records,
            report.checkpoints,
            report.head_seq,
            report.unsigned_tail
        ),
        (10, 2, 10, 0)
    );
    // A checkpoint at the current head is not written twice.
    assert!(log.checkpoint(&key).unwrap().is_none());
}

#[test]
fn edited_record_is_found_at_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 8, &key, &[8]);
    let mut l = lines(log.log_path());
    assert!(l[5].contains(r#""outcome":"denied""#));
    l[5] = l[5].replace(r#""outcome":"denied""#, r#""outcome":"ok""#);
    write_lines(log.log_path(), &l);
    expect_failure(&verify(&log, &key), 6, FailureKind::Edited);
}

#[test]
fn edited_record_with_recomputed_hashes_is_caught_by_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 6, &key, &[6]);
    // Rewrite the chain from record 3 on, recomputing every hash: the chain alone is
    // consistent again, but the signed checkpoint at seq 6 no longer matches.
    let other = tempfile::tempdir().unwrap();
    let forged = AuditLog::open(other.path()).unwrap();
    for (i, line) in lines(log.log_path()).iter().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        let outcome = if i == 2 {
            Outcome::Ok
        } else {
            serde_json::from_value(v["outcome"].clone()).unwrap()
        };
        forged
            .append(
                Event::new("tester", "test.event", outcome)
                    .subject_path(v["subject"]["path"].as_str().unwrap())
                    .detail("i", v["details"]["i"].clone()),
            )
            .unwrap();
    }
    fs::copy(forged.log_path(), log.log_path()).unwrap();
    expect_failure(&verify(&log, &key), 6, FailureKind::CheckpointMismatch);
}

#[test]
fn deleted_record_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 8, &key, &[]);
    let mut l = lines(log.log_path());
    l.remove(3); // seq 4
    write_lines(log.log_path(), &l);
    expect_failure(&verify(&log, &key), 4, FailureKind::Deleted);
}

#[test]
fn inserted_record_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 8, &key, &[]);
    let mut l = lines(log.log_path());
    let copy = l[2].clone(); // seq 3 again, after seq 5
    l.insert(5, copy);
    write_lines(log.log_path(), &l);
    expect_failure(&verify(&log, &key), 6, FailureKind::InsertedOrReordered);
}

#[test]
fn reordered_records_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 8, &key, &[]);
    let mut l = lines(log.log_path());
    l.swap(4, 5); // seq 5 and 6
    write_lines(log.log_path(), &l);
    expect_failure(&verify(&log, &key), 5, FailureKind::Deleted);
}

#[test]
fn relinked_insertion_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 5, &key, &[]);
    // Replace record 3 by a self-consistent record (correct hash, right seq) from another log:
    // its prev cannot match record 2.
    let other = tempfile::tempdir().unwrap();
    let forged = log_with(other.path(), 3, &key, &[]);
    let mut l = lines(log.log_path());
    l[2].clone_from(&lines(forged.log_path())[2]);
    l.truncate(3);
    write_lines(log.log_path(), &l);
    expect_failure(&verify(&log, &key), 3, FailureKind::BrokenLink);
}

#[test]
fn cut_before_the_last_checkpoint_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 9, &key, &[4, 7]);
    let mut l = lines(log.log_path());
    l.truncate(5);
    write_lines(log.log_path(), &l);
    expect_failure(&verify(&log, &key), 6, FailureKind::Truncated);
    // A cut after the last checkpoint cannot be seen — the documented limit.
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 9, &key, &[4, 7]);
    let mut l = lines(log.log_path());
    l.truncate(8);
    write_lines(log.log_path(), &l);
    let report = verify(&log, &key);
    assert_eq!(report.failure, None);
    assert_eq!(report.unsigned_tail, 1);
}

#[test]
fn forged_checkpoint_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 6, &key, &[3]);
    let mut l = lines(log.log_path());
    l.truncate(2);
    write_lines(log.log_path(), &l);
    // The attacker cut the log and signs a new checkpoint with their own key.
    let attacker = SigningKey::generate();
    fs::write(log.checkpoints_path(), "").unwrap();
    log.checkpoint(&attacker).unwrap().unwrap();
    expect_failure(&verify(&log, &key), 2, FailureKind::ForgedCheckpoint);

    // Or edits the seq of a real checkpoint to hide the cut.
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 6, &key, &[3, 6]);
    let mut cps = lines(log.checkpoints_path());
    cps[1] = cps[1].replace(r#""seq":6"#, r#""seq":2"#);
    write_lines(log.checkpoints_path(), &cps);
    expect_failure(&verify(&log, &key), 2, FailureKind::ForgedCheckpoint);
}

#[test]
fn garbage_and_oversized_lines_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let log = log_with(dir.path(), 3, &key, &[]);
    let mut l = lines(log.log_path());
    l.push("{not json".into());
    write_lines(log.log_path(), &l);
    expect_failure(&verify(&log, &key), 4, FailureKind::Malformed);
    l.pop();
    l.push("x".repeat(rampart_audit::MAX_RECORD_BYTES + 10));
    write_lines(log.log_path(), &l);
    expect_failure(&verify(&log, &key), 4, FailureKind::Malformed);
    // Appending onto a corrupt tail is refused rather than chained onto garbage.
    assert!(log.append(Event::new("t", "x", Outcome::Ok)).is_err());
}

#[test]
fn oversized_event_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    let err = log
        .append(Event::new("t", "big", Outcome::Ok).detail("blob", "x".repeat(100_000)))
        .unwrap_err();
    assert!(err.to_string().contains("limit"), "{err}");
}

#[test]
fn auto_checkpoints_every_n_records() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let public = key.public_key();
    let log = AuditLog::open(dir.path())
        .unwrap()
        .with_auto_checkpoint(key, 4);
    for _ in 0..10 {
        log.append(Event::new("t", "x", Outcome::Ok)).unwrap();
    }
    let report = log.verify(&[public]).unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(
        (
            report.checkpoints,
            report.last_checkpoint_seq,
            report.unsigned_tail
        ),
        (2, Some(8), 2)
    );
}

const CHILD_ENV: &str = "RAMPART_AUDIT_TEST_CHILD_DIR";
const WRITERS: usize = 6;
const PER_WRITER: usize = 150;

/// Not a test on its own: the body that each child process runs in `concurrent_processes`.
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let log = AuditLog::open(Path::new(&dir)).unwrap();
    let me = std::process::id();
    for i in 0..PER_WRITER {
        log.append(
            Event::new(format!("pid-{me}"), "concurrent.append", Outcome::Ok).detail("i", i),
        )
        .unwrap();
    }
}

#[test]
fn concurrent_processes_produce_a_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_writer", "--test-threads", "1"])
                .env(CHILD_ENV, dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Threads of this process append at the same time, through their own handles.
    std::thread::scope(|s| {
        for t in 0..2 {
            let path = dir.path();
            s.spawn(move || {
                let log = AuditLog::open(path).unwrap();
                for i in 0..PER_WRITER {
                    log.append(
                        Event::new(format!("thread-{t}"), "concurrent.append", Outcome::Ok)
                            .detail("i", i),
                    )
                    .unwrap();
                }
            });
        }
    });
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let log = AuditLog::open(dir.path()).unwrap();
    log.checkpoint(&key).unwrap();
    let report = verify(&log, &key);
    assert_eq!(report.failure, None);
    assert_eq!(report.records, ((WRITERS + 2) * PER_WRITER) as u64);
    // Every writer's records all made it, in its own order.
    let mut per_actor: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for r in log.records().unwrap() {
        per_actor
            .entry(r.actor)
            .or_default()
            .push(r.details["i"].as_u64().unwrap());
    }
    assert_eq!(per_actor.len(), WRITERS + 2);
    for seen in per_actor.values() {
        assert_eq!(seen, &(0..PER_WRITER as u64).collect::<Vec<_>>());
    }
}

#[test]
fn the_file_log_passes_the_sink_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    rampart_audit::conformance::run(&log).unwrap();
    // What it stored verifies as one chain.
    let key = rampart_crypto::SigningKey::generate();
    log.checkpoint(&key).unwrap();
    let report = log.verify(&[key.public_key()]).unwrap();
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.records, 66);
    // The suite can fail: a sink that forgets to chain is caught.
    struct Unchained(AuditLog, std::sync::Mutex<u64>);
    impl rampart_audit::AuditSink for Unchained {
        fn append(
            &self,
            e: rampart_audit::Event,
        ) -> Result<rampart_audit::Record, rampart_audit::AuditError> {
            let mut r = self.0.append(e)?;
            let mut n = self.1.lock().unwrap();
            *n += 1;
            if *n == 2 {
                r.prev = "0".repeat(64);
            }
            Ok(r)
        }
    }
    let dir2 = tempfile::tempdir().unwrap();
    let bad = Unchained(
        AuditLog::open(dir2.path()).unwrap(),
        std::sync::Mutex::new(0),
    );
    let err = rampart_audit::conformance::run(&bad).unwrap_err();
    assert!(err.case == "append" || err.case == "chain", "{err}");
}

#[test]
fn the_memory_sink_passes_the_sink_conformance_suite_and_its_records_verify_as_a_log() {
    let sink = rampart_audit::MemorySink::new();
    rampart_audit::conformance::run(&sink).unwrap();
    let records = sink.records();
    assert_eq!(records.len(), 66);
    assert_eq!(sink.actions()[1], ("sign".to_owned(), "denied".to_owned()));
    // Written out as lines, the records are a log the file verifier accepts: same chain,
    // same hashes as the file sink would have made.
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    let text: String = records.iter().map(|r| r.to_line() + "\n").collect();
    std::fs::write(log.log_path(), text).unwrap();
    let report = log.verify(&[]).unwrap();
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert_eq!(report.records, 66);
}
