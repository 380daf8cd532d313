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

/// Every checkpoint with a reference converts to the same names, dtypes, shapes and bytes as
/// the file the `safetensors` library wrote from the same tensors; the output is read back with
/// the safetensors crate.
#[test]
fn every_checkpoint_with_a_reference_converts_byte_for_byte() {
    let dir = corpus();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("MANIFEST.json")).unwrap()).unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for f in manifest["files"].as_array().unwrap() {
        let Some(reference) = f["reference"].as_str() else {
            continue;
        };
        let name = f["file"].as_str().unwrap();
        let out = out_dir
            .path()
            .join(format!("{}.safetensors", checked.len()));
        let converted = rampart_scan::convert::convert(&dir.join(name), &out)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ours = std::fs::read(&out).unwrap();
        let theirs = std::fs::read(dir.join(reference)).unwrap();
        let ours = safetensors::SafeTensors::deserialize(&ours)
            .unwrap_or_else(|e| panic!("{name}: our output is not safetensors: {e}"));
        let theirs = safetensors::SafeTensors::deserialize(&theirs).unwrap();
        let mut a = ours.names();
        let mut b = theirs.names();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{name}: tensor names");
        assert_eq!(converted.tensors.len(), b.len(), "{name}: reported tensors");
        for t in b {
            let x = ours.tensor(t).unwrap();
            let y = theirs.tensor(t).unwrap();
            assert_eq!(x.dtype(), y.dtype(), "{name}: {t} dtype");
            assert_eq!(x.shape(), y.shape(), "{name}: {t} shape");
            assert!(x.data() == y.data(), "{name}: {t} bytes differ");
        }
        checked.push(name.to_owned());
    }
    // The corpus's references cover fp32 (zip, legacy, protocol 4), fp16, bf16, fp64, float8,
    // integer and bool dtypes, views, tied weights and a transformers checkpoint.
    for must in [
        "sd_fp8.pt",
        "sd_fp32_legacy.pt",
        "sd_views.pt",
        "sd_tied.pt",
    ] {
        assert!(checked.iter().any(|c| c == must), "{must} was not checked");
    }
    assert!(checked.len() >= 12, "only {checked:?}");
}

/// What safetensors cannot hold is refused with the reason, and nothing is written.
#[test]
fn unconvertible_checkpoints_say_why_and_write_nothing() {
    let dir = corpus();
    let out_dir = tempfile::tempdir().unwrap();
    for (name, why) in [
        ("sd_quantized.pt", "quantized"),
        ("torchscript_scripted.pt", "TorchScript"),
        ("torchscript_traced.pt", "TorchScript"),
        ("exported.pt2", "torch.export"),
    ] {
        let out = out_dir.path().join("out.safetensors");
        let err = rampart_scan::convert::convert(&dir.join(name), &out).unwrap_err();
        assert!(
            matches!(err, rampart_scan::convert::ConvertError::Unsupported(_)),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(why), "{name}: {err}");
        assert!(!out.exists(), "{name}: output written");
        assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 0);
    }
}

/// A stored (uncompressed) zip of `entries`, as torch writes its archives.
fn stored_zip(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let crc = crc32fast::hash(data);
        let offset = u32::try_from(out.len()).unwrap();
        let size = u32::try_from(data.len()).unwrap();
        let name_len = u16::try_from(name.len()).unwrap();
        out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        for v in [crc, size, size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        for v in [crc, size, size] {
            central.extend_from_slice(&v.to_le_bytes());
        }
        central.extend_from_slice(&name_len.to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = u32::try_from(out.len()).unwrap();
    let n = u16::try_from(entries.len()).unwrap();
    let cd_len = u32::try_from(central.len()).unwrap();
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&cd_len.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A `.pt2` is a torch.export program: its weights are storages (never sniffed as files), its
/// graph's call targets are read, and one outside torch's operators is reported.
#[test]
fn torch_export_programs_are_read_as_such() {
    let graph = |target: &str| {
        serde_json::to_vec(&serde_json::json!({"graph_module": {"graph": {"nodes": [
            {"target": "torch.ops.aten.linear.default", "inputs": []},
            {"target": target, "inputs": []},
        ]}}}))
        .unwrap()
    };
    // Weight bytes that look like a safetensors header and like a pickle: raw tensor data.
    let mut weight = 0x7fff_ffff_u64.to_le_bytes().to_vec();
    weight.extend_from_slice(b"{\"x\": 1}");
    let dir = tempfile::tempdir().unwrap();
    let build = |target: &str, name: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            stored_zip(&[
                ("prog/archive_format", b"pt2".to_vec()),
                ("prog/models/model.json", graph(target)),
                ("prog/data/weights/weight_0", weight.clone()),
                (
                    "prog/data/weights/model_weights_config.json",
                    b"{}".to_vec(),
                ),
            ]),
        )
        .unwrap();
        scan_path(&path, &ScanConfig::default(), &|_| {})
            .unwrap()
            .remove(0)
    };
    let ok = build("_operator.getitem", "ok.pt2");
    assert_eq!(ok.format, "pytorch-export");
    assert!(ok.findings.is_empty(), "{:?}", ok.findings);
    let evil = build("builtins.exec", "evil.pt2");
    assert!(
        evil.findings
            .iter()
            .any(|f| f.rule == "export-unknown-target"
                && f.message.contains("builtins.exec")
                && f.severity == Severity::Medium),
        "{:?}",
        evil.findings
    );
    let custom = build("torch.ops.mylib.fused.default", "custom.pt2");
    assert_eq!(
        custom.max_severity(),
        Some(Severity::Low),
        "{:?}",
        custom.findings
    );
}

/// A Hugging Face directory is read as a whole: the shared `save_pretrained` output plus the
/// files a hub repository carries is clean, each file recognised; a sharded checkpoint whose
/// index names a missing shard, and model code for `trust_remote_code`, are not.
#[test]
fn hugging_face_directories_are_read_as_a_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = corpus().join("hf_bert_st");
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(f), d.join(f)).unwrap();
    }
    std::fs::write(d.join("README.md"), "# bert\n").unwrap();
    std::fs::write(d.join("tokenizer_config.json"), "{}").unwrap();
    std::fs::write(d.join("vocab.txt"), "[PAD]\n[UNK]\n").unwrap();
    std::fs::write(
        d.join("tokenizer.model"),
        b"\x0a\x09\x0a\x05<unk>\x15\x00\x00\x00\x00",
    )
    .unwrap();
    // A two-shard copy of the same tensors' names, with its index.
    let st = std::fs::read(src.join("model.safetensors")).unwrap();
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&st)
        .unwrap()
        .names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    std::fs::write(d.join("model-00001-of-00002.safetensors"), &st).unwrap();
    let map: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .map(|n| (n.clone(), "model-00001-of-00002.safetensors".into()))
        .collect();
    let index = d.join("model.safetensors.index.json");
    std::fs::write(
        &index,
        serde_json::to_vec(&serde_json::json!({"metadata": {"total_size": 1}, "weight_map": map}))
            .unwrap(),
    )
    .unwrap();
    let scan = || scan_path(d, &ScanConfig::default(), &|_| {}).unwrap();
    let reports = scan();
    for r in &reports {
        assert!(
            r.findings.is_empty() && r.error.is_none(),
            "{}: {:?}",
            r.path.display(),
            r.findings
        );
        assert_ne!(r.format, "unknown", "{}", r.path.display());
    }
    let format = |reports: &[rampart_scan::FileReport], name: &str| {
        reports
            .iter()
            .find(|r| r.path.ends_with(name))
            .unwrap()
            .format
            .clone()
    };
    assert_eq!(
        format(&reports, "model.safetensors.index.json"),
        "safetensors-index"
    );
    assert_eq!(format(&reports, "tokenizer.model"), "sentencepiece");

    // A tensor sent to a shard that is not there; model code beside the config.
    let mut map = map;
    map.insert(
        "pooler.extra".into(),
        "model-00002-of-00002.safetensors".into(),
    );
    std::fs::write(
        &index,
        serde_json::to_vec(&serde_json::json!({"weight_map": map})).unwrap(),
    )
    .unwrap();
    std::fs::write(d.join("modeling_bert.py"), "import os\nos.system('id')\n").unwrap();
    let reports = scan();
    let rules: Vec<(&str, Severity)> = reports
        .iter()
        .flat_map(|r| r.findings.iter().map(|f| (f.rule, f.severity)))
        .collect();
    assert!(
        rules.contains(&("index-shard-missing", Severity::Medium)),
        "{rules:?}"
    );
    assert!(
        rules.contains(&("hf-remote-code", Severity::Medium)),
        "{rules:?}"
    );
}

/// The code of a TorchScript archive is read: the shared scripted model calls only torch's
/// operators (one medium `torchscript-code` note); the same archive with a call to an operator
/// another library registered gets `torchscript-custom-op` naming it.
#[test]
fn torchscript_code_is_read_for_foreign_operators() {
    let src = std::fs::read(corpus().join("torchscript_scripted.pt")).unwrap();
    let clean = scan_path(
        &corpus().join("torchscript_scripted.pt"),
        &ScanConfig::default(),
        &|_| {},
    )
    .unwrap()
    .remove(0);
    let rules: Vec<&str> = clean.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, vec!["torchscript-code"]);
    assert!(!src.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ts.pt");
    std::fs::write(
        &path,
        stored_zip(&[
            ("ts/data.pkl", b"\x80\x02}q\x00.".to_vec()),
            ("ts/constants.pkl", b"\x80\x02).".to_vec()),
            (
                "ts/code/__torch__.py",
                b"class Net(Module):\n  def forward(self, x: Tensor) -> Tensor:\n    return ops.my_vendor.fused_gelu(torch.relu(x))\n".to_vec(),
            ),
        ]),
    )
    .unwrap();
    let r = scan_path(&path, &ScanConfig::default(), &|_| {})
        .unwrap()
        .remove(0);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule == "torchscript-custom-op")
        .unwrap_or_else(|| panic!("{:?}", r.findings));
    assert!(
        f.message.contains("ops.my_vendor.fused_gelu"),
        "{}",
        f.message
    );
    assert_eq!(f.severity, Severity::Medium);
}

/// Flax's `flax_model.msgpack` (MessagePack: data only) and OpenVINO's `model.bin` (raw weights
/// beside `model.xml`) are recognised; the same names with content that is neither are not
/// clean.
#[test]
fn msgpack_and_openvino_weights_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // {"params": {"dense": {"kernel": ext(1, …)}}}, as flax.serialization writes arrays.
    let mut flax = vec![0x81, 0xa6];
    flax.extend_from_slice(b"params");
    flax.extend_from_slice(&[0x81, 0xa5]);
    flax.extend_from_slice(b"dense");
    flax.extend_from_slice(&[0x81, 0xa6]);
    flax.extend_from_slice(b"kernel");
    flax.extend_from_slice(&[0xc7, 0x08, 0x01]);
    flax.extend_from_slice(&[0x93, 0x01, 0x02, 0x03, 0xa3, b'f', b'3', b'2']);
    std::fs::write(d.join("flax_model.msgpack"), &flax).unwrap();
    std::fs::write(
        d.join("openvino_model.xml"),
        "<?xml version=\"1.0\"?>\n<net name=\"m\" version=\"11\">\n</net>\n",
    )
    .unwrap();
    std::fs::write(
        d.join("openvino_model.bin"),
        [0x13u8, 0x37, 0xfe, 0x01].repeat(64),
    )
    .unwrap();
    let reports = scan_path(d, &ScanConfig::default(), &|_| {}).unwrap();
    let by = |name: &str| {
        reports
            .iter()
            .find(|r| r.path.ends_with(name))
            .unwrap()
            .clone()
    };
    assert_eq!(by("flax_model.msgpack").format, "msgpack");
    assert!(by("flax_model.msgpack").findings.is_empty());
    assert_eq!(by("openvino_model.bin").format, "openvino-weights");
    assert!(by("openvino_model.bin").findings.is_empty());
    // Truncated msgpack, and a .bin with no OpenVINO graph beside it: unanalysable.
    std::fs::write(d.join("flax_model.msgpack"), &flax[..flax.len() - 2]).unwrap();
    std::fs::remove_file(d.join("openvino_model.xml")).unwrap();
    let reports = scan_path(d, &ScanConfig::default(), &|_| {}).unwrap();
    for r in &reports {
        assert_eq!(
            r.max_severity(),
            Some(Severity::Medium),
            "{}: {:?}",
            r.path.display(),
            r.findings
        );
        assert_eq!(r.findings[0].rule, "unanalysable");
    }
}

/// Runs a directory scan on another thread; a hang fails the test instead of wedging it.
fn scan_within(dir: &Path, secs: u64) -> Vec<rampart_scan::FileReport> {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(scan_path(&dir, &ScanConfig::default(), &|_| {}).unwrap());
    });
    rx.recv_timeout(std::time::Duration::from_secs(secs))
        .expect("the scan hung on a file beside the weights")
}

/// Attacks on the files the scanner reads *beside* the one it scans: a FIFO where OpenVINO's
/// `model.xml` should be, a FIFO as a shard the index names, and a shard that is a symlink to
/// a device. None may hang the scan or pass as clean.
#[test]
fn files_read_beside_the_weights_cannot_hang_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("model.bin"), [0x13u8, 0x37, 0xfe, 0x01].repeat(64)).unwrap();
    let fifo = |p: &Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    fifo(&d.join("model.xml"));
    fifo(&d.join("model-00001-of-00002.safetensors"));
    std::os::unix::fs::symlink("/dev/zero", d.join("model-00002-of-00002.safetensors")).unwrap();
    std::fs::write(
        d.join("model.safetensors.index.json"),
        br#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let reports = scan_within(d, 60);
    let by = |name: &str| reports.iter().find(|r| r.path.ends_with(name)).unwrap();
    assert_eq!(
        by("model.bin").findings[0].rule,
        "unanalysable",
        "{:?}",
        by("model.bin")
    );
    let index: Vec<&str> = by("model.safetensors.index.json")
        .findings
        .iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(index, vec!["index-shard-missing", "index-shard-missing"]);
}
