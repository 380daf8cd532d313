//! `convert`: every tensor's name, dtype, shape and bytes survive, for both layouts; anything
//! outside the allowlist is refused by name.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};

use rampart_scan::convert::{ConvertError, convert};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/corpus")
}

fn check_round_trip(input: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.safetensors");
    let converted = convert(&corpus().join(input), &out).unwrap();
    assert_eq!(converted.skipped, ["step"], "{input}");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(corpus().join("convert_expected.json")).unwrap())
            .unwrap();
    let expected = expected.as_object().unwrap();
    // Read back with the safetensors crate, independently of our writer.
    let bytes = std::fs::read(&out).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(ToString::to_string).collect();
    names.sort();
    let mut want: Vec<&String> = expected.keys().collect();
    want.sort();
    assert_eq!(names.iter().collect::<Vec<_>>(), want, "{input}");
    for (name, e) in expected {
        let t = st.tensor(name).unwrap();
        assert_eq!(
            format!("{:?}", t.dtype()),
            e["dtype"].as_str().unwrap(),
            "{input} {name}"
        );
        let shape: Vec<usize> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| usize::try_from(d.as_u64().unwrap()).unwrap())
            .collect();
        assert_eq!(t.shape(), shape.as_slice(), "{input} {name}");
        let hex: String = t.data().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, e["hex"].as_str().unwrap(), "{input} {name}");
    }
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap()["format"], "pt");
    // And the output scans clean.
    let report = rampart_scan::scan_file(&out, &rampart_scan::ScanConfig::default());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

#[test]
fn zip_checkpoint_round_trips_byte_for_byte() {
    check_round_trip("convert_zip_all_dtypes.pt");
}

#[test]
fn legacy_checkpoint_round_trips_byte_for_byte() {
    check_round_trip("convert_legacy_all_dtypes.pt");
}

#[test]
fn anything_outside_the_allowlist_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.safetensors");
    for (file, import) in [
        ("convert_zip_refused_os_system.pt", "posix.system"),
        ("torch_zip_data_pkl_os_system.pt", "posix.system"),
        ("torch_legacy_model_pickle_os_system.pt", "posix.system"),
    ] {
        match convert(&corpus().join(file), &out) {
            Err(ConvertError::Refused { import: got, .. }) => assert_eq!(got, import, "{file}"),
            other => panic!("{file}: expected a refusal, got {other:?}"),
        }
        assert!(!out.exists(), "{file}: nothing may be written on refusal");
    }
    for file in [
        "safetensors_benign.safetensors",
        "keras_benign.keras",
        "pickle_reduce_os_system.pkl",
        "zip_entry_hidden_from_central_directory.pt",
    ] {
        assert!(convert(&corpus().join(file), &out).is_err(), "{file}");
        assert!(!out.exists());
    }
}
