//! Scanning, redacting and revealing personal data as library calls: each recorded, the
//! encrypt operator's values revealed only with the right identity, and the line named when
//! they are not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use rampart_audit::{Auditor, MemorySink};
use rampart_crypto::AgeIdentity;
use rampart_crypto::age_file::Unlock;
use rampart_home::{Classify, Home, Session};
use rampart_ingest::IngestError;
use rampart_ingest::open::{Keys, open_file};
use rampart_ingest::pii::{self, PiiRequest, RedactOutput};
use rampart_ingest::redact::RedactOverrides;

const ROWS: &str = "id,contact,note\n1,ada@example.com,call 212-555-0199\n2,nobody,fine\n";

fn setup() -> (tempfile::TempDir, Home, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir(&root).unwrap();
    home.data_root_add(&root, &mut |_| Ok(())).unwrap();
    let data = root.join("people.csv");
    std::fs::write(&data, ROWS).unwrap();
    (dir, home, data)
}

fn open(s: &Session<'_>, path: &Path) -> rampart_ingest::open::Dataset {
    let none = Unlock::identities(Vec::new());
    open_file(s, path, Keys::Given(&none)).unwrap()
}

#[test]
fn scan_redact_and_reveal_are_recorded_and_reveal_needs_the_recipient() {
    let (dir, home, data) = setup();
    let policy = home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let req = PiiRequest::default();
    // Scan: two findings in row 1, each as a JSON line that never holds the value.
    let mut lines = Vec::new();
    let report = pii::scan(&s, &data, &req, open(&s, &data), Some(&mut lines)).unwrap();
    assert_eq!((report.rows, report.findings), (2, 2), "{report:?}");
    let lines = String::from_utf8(lines).unwrap();
    assert_eq!(lines.lines().count(), 2);
    assert!(!lines.contains("ada@example.com"), "{lines}");
    // Only phones: one finding.
    let phones = PiiRequest {
        only: vec!["PHONE".parse().unwrap()],
        ..PiiRequest::default()
    };
    let report = pii::scan(&s, &data, &phones, open(&s, &data), None).unwrap();
    assert_eq!(report.findings, 1);
    // Redact with the encrypt operator, to a recipient whose identity only we hold.
    let who = AgeIdentity::generate();
    let overrides = RedactOverrides {
        default: Some("encrypt".into()),
        recipients: vec![who.recipient()],
        ..RedactOverrides::default()
    };
    let out_path = dir.path().join("redacted.csv");
    let mut redacted = Vec::new();
    let out = RedactOutput {
        path: &out_path,
        writer: &mut redacted,
        safe_csv: true,
    };
    pii::redact(&s, &data, &req, open(&s, &data), &overrides, out).unwrap();
    let text = String::from_utf8(redacted).unwrap();
    assert!(
        !text.contains("ada@example.com") && text.contains(":age:"),
        "{text}"
    );
    let stored = dir.path().join("data/redacted.csv");
    std::fs::write(&stored, &text).unwrap();
    // Reveal with the right identity gives the rows back.
    let mut plain = Vec::new();
    let out = RedactOutput {
        path: Path::new("-"),
        writer: &mut plain,
        safe_csv: false,
    };
    let n = pii::reveal(&s, &stored, open(&s, &stored), &[who.as_age().clone()], out).unwrap();
    assert_eq!((n, String::from_utf8(plain).unwrap().as_str()), (3, ROWS));
    // With another identity: the line is named, the failure recorded.
    let other = AgeIdentity::generate();
    let out = RedactOutput {
        path: Path::new("-"),
        writer: &mut Vec::new(),
        safe_csv: false,
    };
    let err = pii::reveal(
        &s,
        &stored,
        open(&s, &stored),
        &[other.as_age().clone()],
        out,
    )
    .unwrap_err();
    assert!(matches!(err, IngestError::Reveal { line: 2, .. }), "{err}");
    assert!(err.hint().unwrap().contains("-i FILE"));
    let actions: Vec<(String, String)> = sink
        .actions()
        .into_iter()
        .filter(|(a, _)| a.starts_with("data.pii"))
        .collect();
    let want = [
        ("data.pii.scan", "failed"),
        ("data.pii.scan", "failed"),
        ("data.pii.redact", "ok"),
        ("data.pii.reveal", "ok"),
        ("data.pii.reveal", "failed"),
    ];
    assert_eq!(
        actions,
        want.map(|(a, o)| (a.to_owned(), o.to_owned())).to_vec()
    );
}

#[test]
fn a_file_that_is_not_a_table_and_a_bad_confidence_are_named() {
    let (_dir, home, data) = setup();
    let policy = home.load_policy().unwrap();
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(None, "tester"),
    };
    let bad = PiiRequest {
        min_confidence: Some(1.5),
        ..PiiRequest::default()
    };
    let err = pii::scan(&s, &data, &bad, open(&s, &data), None).unwrap_err();
    assert!(err.to_string().contains("between 0 and 1"), "{err}");
    // A record over the limit is an input error naming the file.
    let short = PiiRequest {
        max_row_bytes: 8,
        ..PiiRequest::default()
    };
    let err = pii::scan(&s, &data, &short, open(&s, &data), None).unwrap_err();
    assert!(matches!(err, IngestError::PiiInput { .. }), "{err}");
    assert!(err.to_string().contains("people.csv"), "{err}");
    assert_eq!(err.kind(), rampart_ingest::ErrorKind::Input);
}
