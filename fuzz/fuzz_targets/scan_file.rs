//! A whole scan (sniffing, containers, every format) over an arbitrary file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model");
    std::fs::write(&path, data).expect("write");
    let mut cfg = rampart_scan::ScanConfig::default();
    cfg.limits.max_extracted = 8 << 20;
    cfg.limits.pickle.max_ops = 100_000;
    let _ = rampart_scan::scan_file(&path, &cfg);
});
