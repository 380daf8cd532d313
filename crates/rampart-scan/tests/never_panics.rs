//! Property tests: random and mutated inputs never panic any parser, and every scan returns a
//! report.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use std::io::Cursor;

use proptest::prelude::*;
use rampart_scan::pickle::{Limits, ReadSource, analyse_stream, looks_like_pickle};
use rampart_scan::{ScanConfig, scan_file};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/corpus")
            .join(name),
    )
    .unwrap()
}

fn scan_bytes(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    std::fs::write(&path, bytes).unwrap();
    let mut cfg = ScanConfig::default();
    cfg.limits.max_extracted = 4 << 20;
    let report = scan_file(&path, &cfg);
    assert!(report.error.is_none() || report.findings.iter().any(|f| f.rule == "file-unreadable"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic_the_pickle_machine(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = looks_like_pickle(&bytes);
        let mut src = ReadSource::new(&bytes[..]);
        let limits = Limits { max_ops: 100_000, ..Limits::default() };
        let _ = analyse_stream(&mut src, &limits, &[], &Default::default());
    }

    #[test]
    fn random_opcode_soup_never_panics(ops in prop::collection::vec(prop::sample::select(b"()0123FIJKLMNPQRSTUVXabcdeghijloPqrstu}]G\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98.\n\x01\x00\xff".to_vec()), 0..2048)) {
        let mut src = ReadSource::new(&ops[..]);
        let _ = analyse_stream(&mut src, &Limits::default(), &[], &Default::default());
    }

    #[test]
    fn random_bytes_never_panic_the_zip_walker(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = rampart_scan::zip::list(&mut Cursor::new(&bytes), bytes.len() as u64);
    }

    #[test]
    fn mutated_fixtures_always_scan(
        which in prop::sample::select(vec!["torch_zip_benign.pt", "joblib_benign_array.joblib", "zip_entry_hidden_from_central_directory.pt", "npz_benign.npz", "torch_legacy_benign.pt", "safetensors_benign.safetensors", "gzip_wrapped_benign.pkl.gz", "keras_benign.keras"]),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = fixture(which);
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        scan_bytes(&bytes);
        let c = cut.index(bytes.len());
        scan_bytes(&bytes[..c]);
    }
}

/// Inputs that once crashed a fuzz target (`fuzz/regressions/TARGET/`), replayed through the
/// same code path.
#[test]
fn fuzz_regressions_stay_fixed() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut replayed = 0;
    for target in std::fs::read_dir(&root).unwrap() {
        let target = target.unwrap();
        let name = target.file_name().into_string().unwrap();
        for case in std::fs::read_dir(target.path()).unwrap() {
            let data = std::fs::read(case.unwrap().path()).unwrap();
            match name.as_str() {
                "safetensors_header" if data.len() >= 16 => {
                    let header_len = u64::from_le_bytes(data[..8].try_into().unwrap());
                    let file_len = u64::from_le_bytes(data[8..16].try_into().unwrap());
                    let _ = rampart_scan::formats::safetensors::check(
                        header_len,
                        &data[16..],
                        file_len,
                    );
                }
                "pickle" => {
                    let mut src = ReadSource::new(&data[..]);
                    let _ = analyse_stream(&mut src, &Limits::default(), &[], &Default::default());
                }
                "zip_walker" => {
                    let _ = rampart_scan::zip::list(&mut Cursor::new(&data), data.len() as u64);
                }
                _ => scan_bytes(&data),
            }
            replayed += 1;
        }
    }
    assert!(
        replayed >= 1,
        "no regression inputs found under {}",
        root.display()
    );
}
