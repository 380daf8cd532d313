//! Scanning and converting as library calls: each file's verdict on the record, a refused
//! conversion recorded as denied.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rampart_audit::{Auditor, MemorySink};
use rampart_home::scan::{self, Conversion, ScanRequest};
use rampart_scan::Severity;

/// A protocol-0 pickle that calls `os.system("echo hi")` when loaded.
const EVIL: &[u8] = b"cos\nsystem\n(S'echo hi'\ntR.";

fn safetensors() -> Vec<u8> {
    let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    out.extend_from_slice(&[0u8; 8]);
    out
}

#[test]
fn each_file_is_recorded_with_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("evil.pkl"), EVIL).unwrap();
    std::fs::write(dir.path().join("w.safetensors"), safetensors()).unwrap();
    // A safetensors file whose header claims more than the file holds.
    let mut broken = safetensors();
    broken.truncate(broken.len() - 4);
    std::fs::write(dir.path().join("broken.safetensors"), broken).unwrap();
    let sink = MemorySink::new();
    let audit = Auditor::new(Some(&sink), "tester");
    let req = ScanRequest {
        paths: vec![dir.path().to_path_buf()],
        ..ScanRequest::default()
    };
    let got = scan::scan(&audit, None, &req, &|_| {}).unwrap();
    assert_eq!(got.reports.len(), 3);
    assert_eq!(got.fail_on, Severity::Medium);
    assert_eq!((got.flagged, got.unreadable), (2, 0), "{:?}", got.reports);
    let records = sink.records();
    let outcome = |name: &str| {
        records
            .iter()
            .find(|r| r.subject.path.as_deref().is_some_and(|p| p.ends_with(name)))
            .map(|r| r.outcome.as_str().to_owned())
            .unwrap()
    };
    assert_eq!(outcome("evil.pkl"), "failed");
    assert_eq!(outcome("w.safetensors"), "ok");
    assert_eq!(outcome("broken.safetensors"), "failed");
    // Bad requests are refused before anything is scanned or recorded.
    let before = sink.records().len();
    for bad in [
        ScanRequest {
            paths: vec![dir.path().join("nope")],
            ..ScanRequest::default()
        },
        ScanRequest {
            paths: vec![dir.path().to_path_buf()],
            allow: vec!["os".into()],
            ..ScanRequest::default()
        },
    ] {
        assert!(scan::scan(&audit, None, &bad, &|_| {}).is_err());
    }
    assert_eq!(sink.records().len(), before);
}

#[test]
fn a_conversion_that_would_run_code_is_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("evil.pkl");
    std::fs::write(&input, EVIL).unwrap();
    let out = dir.path().join("out.safetensors");
    let sink = MemorySink::new();
    let audit = Auditor::new(Some(&sink), "tester");
    let got = scan::convert(&audit, &input, &out).unwrap();
    assert!(matches!(got, Conversion::Refused(_)), "{got:?}");
    assert!(!out.exists());
    assert_eq!(sink.actions(), [("convert".into(), "denied".into())]);
}
