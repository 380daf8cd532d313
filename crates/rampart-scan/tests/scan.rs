//! The fixture corpus: every malicious fixture is flagged with its rules, every benign one is
//! clean. Fixtures come from `fixtures/generate.py`; verdicts from `fixtures/corpus/expected.json`.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};

use rampart_scan::pickle::Class;
use rampart_scan::{ScanConfig, Severity, scan_file};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

fn config() -> ScanConfig {
    let mut cfg = ScanConfig::default();
    cfg.limits.max_extracted = 16 << 20;
    cfg
}

#[test]
fn every_fixture_gets_its_verdict() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(corpus().join("expected.json")).unwrap()).unwrap();
    let expected = expected.as_object().unwrap();
    assert!(expected.len() >= 60, "the corpus is incomplete");
    let mut failures = Vec::new();
    for (name, want) in expected {
        let report = scan_file(&corpus().join(name), &config());
        let flagged =
            report.max_severity().is_some_and(|s| s >= Severity::Medium) || report.error.is_some();
        let rules: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
        if flagged != want["flagged"].as_bool().unwrap() {
            failures.push(format!(
                "{name}: flagged={flagged}, expected {}; findings: {:#?}",
                want["flagged"], report.findings
            ));
        }
        for rule in want["rules"].as_array().unwrap() {
            if !rules.contains(&rule.as_str().unwrap()) {
                failures.push(format!("{name}: missing rule {rule}; got {rules:?}"));
            }
        }
        if let Some(format) = want["format"].as_str()
            && report.format != format
        {
            failures.push(format!(
                "{name}: format {} (expected {format})",
                report.format
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn imports_carry_offsets_and_verdicts() {
    let r = scan_file(&corpus().join("pickle_reduce_os_system.pkl"), &config());
    let os = r.imports.iter().find(|i| i.import == "os.system").unwrap();
    assert_eq!(
        (os.offset, os.opcode, os.class),
        (2, "GLOBAL", Class::Dangerous)
    );
    let call = r
        .findings
        .iter()
        .find(|f| f.rule == "pickle-dangerous-call")
        .unwrap();
    assert!(
        call.message.contains("os.system(\"id\")"),
        "{}",
        call.message
    );

    let r = scan_file(&corpus().join("torch_zip_benign.pt"), &config());
    assert!(
        r.imports
            .iter()
            .any(|i| i.import == "torch._utils._rebuild_tensor_v2" && i.class == Class::Safe)
    );
    assert!(r.imports.iter().all(|i| i.location == ["archive/data.pkl"]));

    // The payload before a deliberate parse error is still reported, with the error.
    let r = scan_file(&corpus().join("pickle_payload_then_garbage.pkl"), &config());
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "pickle-dangerous-import")
    );
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "pickle-malformed" && f.message.contains("unknown opcode"))
    );
}

#[test]
fn allowlisting_an_unknown_import_clears_it_but_never_a_dangerous_one() {
    let mut cfg = config();
    let path = corpus().join("pickle_unknown_main_class.pkl");
    assert_eq!(
        scan_file(&path, &cfg).max_severity(),
        Some(Severity::Medium)
    );
    cfg.allow.push("__main__.MyModel".into());
    assert!(scan_file(&path, &cfg).findings.is_empty());
    cfg.allow.push("posix.system".into());
    cfg.allow.push("os.system".into());
    assert_eq!(
        scan_file(&corpus().join("pickle_reduce_os_system.pkl"), &cfg).max_severity(),
        Some(Severity::Critical)
    );
}

#[test]
fn registered_extension_codes_resolve() {
    let mut cfg = config();
    cfg.extensions.insert(7, ("os".into(), "system".into()));
    let r = scan_file(&corpus().join("pickle_ext_code_unregistered.pkl"), &cfg);
    assert!(
        r.findings.iter().any(
            |f| f.rule == "pickle-dangerous-import" && f.import.as_deref() == Some("os.system")
        )
    );
}

#[test]
fn unreadable_files_are_not_clean() {
    let r = scan_file(Path::new("/nonexistent/model.pt"), &config());
    assert!(r.error.is_some());
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "file-unreadable" && f.severity == Severity::High)
    );
}

/// 7z archives are unpacked (the fixture is built here: the corpus generator is stdlib-only).
#[test]
fn seven_zip_archives_are_unpacked_and_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, entries: &[(&str, Vec<u8>)]| {
        let path = dir.path().join(name);
        let mut w = sevenz_rust2::ArchiveWriter::create(&path).unwrap();
        for (entry, data) in entries {
            w.push_archive_entry(sevenz_rust2::ArchiveEntry::new_file(entry), Some(&data[..]))
                .unwrap();
        }
        w.finish().unwrap();
        path
    };
    let evil = std::fs::read(corpus().join("pickle_reduce_os_system.pkl")).unwrap();
    let good = std::fs::read(corpus().join("torch_zip_benign.pt")).unwrap();
    let bad = make(
        "evil.7z",
        &[
            ("readme.txt", b"hello".to_vec()),
            ("model/weights.bin", evil),
        ],
    );
    let r = scan_file(&bad, &config());
    assert_eq!(r.format, "7z");
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "pickle-dangerous-import")
        .unwrap();
    assert_eq!(f.location, ["model/weights.bin"]);
    let ok = make("good.7z", &[("model.pt", good)]);
    let r = scan_file(&ok, &config());
    assert!(
        r.max_severity().is_none_or(|s| s < Severity::Medium),
        "{:?}",
        r.findings
    );
    // A truncated archive is reported, never passed.
    let bytes = std::fs::read(&bad).unwrap();
    let cut = dir.path().join("cut.7z");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let r = scan_file(&cut, &config());
    assert!(
        r.max_severity().is_some_and(|s| s >= Severity::High),
        "{:?}",
        r.findings
    );
}

#[test]
fn bombs_are_stopped_by_declared_size_or_by_the_ratio_guard() {
    let cfg = ScanConfig::default();
    let r = scan_file(&corpus().join("gzip_bomb_zeros.gz"), &cfg);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "archive-bomb" && f.message.contains("declares")),
        "{:?}",
        r.findings
    );
    // The trailer lies: decoding starts and the ratio guard stops it.
    let r = scan_file(&corpus().join("gzip_bomb_lying_trailer.gz"), &cfg);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "archive-bomb" && f.message.contains("decompresses at more than")),
        "{:?}",
        r.findings
    );
    let r = scan_file(&corpus().join("zip_entry_bomb_declared.zip"), &cfg);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "archive-bomb" && f.message.contains("archive/data.pkl")),
        "{:?}",
        r.findings
    );
}

/// joblib's `compress='lzma'` (the legacy "LZMA alone" container) and `compress='lz4'` (an LZ4
/// frame) around the same payload as the zlib fixture: each is opened and the `os.system`
/// call found (they were "format-unrecognised", info, exit 0). A named-like-a-model file in an
/// unknown container would now be `unanalysable` anyway; here the payload itself is reported.
#[test]
fn joblib_lzma_and_lz4_containers_are_opened() {
    use std::io::{Read as _, Write as _};
    let zlib = std::fs::read(corpus().join("joblib_zlib_compressed_payload.joblib")).unwrap();
    let mut payload = Vec::new();
    flate2::read::ZlibDecoder::new(zlib.as_slice())
        .read_to_end(&mut payload)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut lzma = Vec::new();
    lzma_rs::lzma_compress(&mut payload.as_slice(), &mut lzma).unwrap();
    let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
    lz4.write_all(&payload).unwrap();
    let lz4 = lz4.finish().unwrap();

    for (name, bytes, format) in [
        ("m.lzma.joblib", lzma, "lzma"),
        ("m.lz4.joblib", lz4, "lz4"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let report = scan_file(&path, &config());
        let rules: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
        assert_eq!(report.format, format, "{name}: {rules:?}");
        assert!(
            rules.contains(&"pickle-dangerous-import") || rules.contains(&"pickle-dangerous-call"),
            "{name}: {rules:?}"
        );
        assert_eq!(report.max_severity(), Some(Severity::Critical), "{name}");
        assert!(
            report.findings.iter().any(|f| f
                .location
                .first()
                .is_some_and(|l| l == &format!("({format})"))),
            "{name}"
        );
    }
}
