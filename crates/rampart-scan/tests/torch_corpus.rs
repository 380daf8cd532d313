//! The shared corpus of files written by the real libraries (`../shared/interop/torch-corpus`,
//! see its README): every file gets the verdict its `MANIFEST.json` expects — `clean` (nothing
//! at medium or above, no error), `flag` (something at medium or above), `not-high` (nothing at
//! high or above), `either`.
//!
//! An expectation that cannot be met yet goes in `OPEN` with the reason, so that the test fails
//! both when another file regresses and when that one is fixed.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};

use rampart_scan::{ScanConfig, Severity, scan_path};

/// Expectations not met yet: (file, why). Empty: every file gets its verdict. A file added
/// here must say why and is open work.
const OPEN: &[(&str, &str)] = &[];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop/torch-corpus")
}

#[test]
fn every_file_written_by_the_real_libraries_gets_its_expected_verdict() {
    let dir = corpus();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("MANIFEST.json"))
            .unwrap_or_else(|e| panic!("{}: {e} (the shared interop corpus)", dir.display())),
    )
    .unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert!(files.len() >= 30, "the corpus is incomplete");
    let mut unmet = Vec::new();
    for f in files {
        let name = f["file"].as_str().unwrap();
        let expect = f["expect"].as_str().unwrap();
        let reports = scan_path(&dir.join(name), &ScanConfig::default(), &|_| {}).unwrap();
        let max = reports
            .iter()
            .filter_map(rampart_scan::FileReport::max_severity)
            .max();
        let error = reports.iter().any(|r| r.error.is_some());
        let ok = match expect {
            "clean" => !error && max.is_none_or(|s| s < Severity::Medium),
            "flag" => error || max.is_some_and(|s| s >= Severity::Medium),
            "not-high" => !error && max.is_none_or(|s| s < Severity::High),
            "either" => true,
            other => panic!("{name}: unknown expectation {other:?}"),
        };
        if !ok {
            let rules: Vec<String> = reports
                .iter()
                .flat_map(|r| r.findings.iter())
                .map(|f| format!("{} ({})", f.rule, f.severity.as_str()))
                .collect();
            unmet.push((
                name.to_owned(),
                format!("expected {expect}; found {rules:?}"),
            ));
        }
    }
    let unmet_names: Vec<&str> = unmet.iter().map(|(n, _)| n.as_str()).collect();
    let open: Vec<&str> = OPEN.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        unmet_names, open,
        "verdicts that differ from MANIFEST.json: {unmet:#?}"
    );
}
