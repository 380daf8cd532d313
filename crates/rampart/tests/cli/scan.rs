//! `rampart scan`: exit codes, JSON and SARIF, allowlists from flags and policy, audit.

use std::path::PathBuf;

use crate::Scratch;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../rampart-scan/tests/fixtures/corpus")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn exit_codes_follow_the_verdict() {
    let s = Scratch::new();
    let (code, out, _) = s.run(&[
        "scan",
        &fixture("torch_zip_benign.pt"),
        &fixture("safetensors_benign.safetensors"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("clean") && out.contains("2 file(s) scanned, 0 flagged"),
        "{out}"
    );
    let (code, out, _) = s.run(&["scan", &fixture("torch_zip_data_pkl_os_system.pt")]);
    assert_eq!(code, 1);
    assert!(
        out.contains("pickle-dangerous-call")
            && out.contains("posix.system(\"id\")")
            && out.contains("archive/data.pkl"),
        "{out}"
    );
    // Unknown imports fail by default and pass with --fail-on high.
    let unknown = fixture("pickle_unknown_main_class.pkl");
    assert_eq!(s.run(&["scan", &unknown]).0, 1);
    assert_eq!(s.run(&["scan", &unknown, "--fail-on", "high"]).0, 0);
    assert_eq!(
        s.run(&["scan", &unknown, "--allow", "__main__.MyModel"]).0,
        0
    );
    // Dangerous imports cannot be allowed.
    assert_eq!(
        s.run(&[
            "scan",
            &fixture("pickle_reduce_os_system.pkl"),
            "--allow",
            "os.system"
        ])
        .0,
        1
    );
    // Missing input: exit 2.
    let (code, _, err) = s.run(&["scan", "no-such-model.pt"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-model.pt"), "{err}");
}

#[test]
fn directories_are_walked_and_unreadable_files_exit_2() {
    let s = Scratch::new();
    let dir = s.path().join("models");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::copy(fixture("torch_zip_benign.pt"), dir.join("a.pt")).unwrap();
    std::fs::copy(
        fixture("gzip_wrapped_pickle_payload.pkl.gz"),
        dir.join("sub/b.bin"),
    )
    .unwrap();
    let v: serde_json::Value = {
        let (code, out, _) = s.run(&["--format", "json", "scan", "models"]);
        assert_eq!(code, 1);
        serde_json::from_str(&out).unwrap()
    };
    assert_eq!(v["schema"], 1);
    assert_eq!(v["summary"]["files"], 2);
    assert_eq!(v["summary"]["flagged"], 1);
    assert_eq!(v["summary"]["max_severity"], "critical");
    let b = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("b.bin"))
        .unwrap();
    assert_eq!(b["format"], "gzip");
    assert_eq!(b["findings"][0]["location"][0], "(gzip)");
    assert_eq!(b["imports"][0]["class"], "dangerous");

    // A link to a regular file is scanned as that file.
    std::os::unix::fs::symlink(dir.join("sub/b.bin"), dir.join("linked.bin")).unwrap();
    let v: serde_json::Value = {
        let (code, out, _) = s.run(&["--format", "json", "scan", "models"]);
        assert_eq!(code, 1);
        serde_json::from_str(&out).unwrap()
    };
    assert_eq!(v["summary"]["flagged"], 2, "{v}");

    // A dangling link is not skipped: it cannot be read, so the scan fails (exit 2), naming it.
    std::os::unix::fs::symlink("/nonexistent/target", dir.join("dangling.pt")).unwrap();
    let (code, out, err) = s.run(&["scan", "models"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("dangling.pt"), "{out}");
    std::fs::remove_file(dir.join("dangling.pt")).unwrap();
    let (code, _, err) = s.run(&["scan", &dir.join("linked.bin").display().to_string()]);
    assert_eq!(code, 1, "{err}");

    // A FIFO given as the argument is refused at once (it would block a reader forever) …
    nix::unistd::mkfifo(
        &dir.join("pipe.pt"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let out = s
        .rampart(&["scan", &dir.join("pipe.pt").display().to_string()])
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("pipe.pt is a FIFO"), "{err}");
    // … and one inside a scanned directory is reported, not skipped as "0 files".
    let out = s
        .rampart(&["--format", "json", "scan", "models"])
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pipe = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with("pipe.pt"))
        .unwrap();
    assert!(pipe["error"].as_str().unwrap().contains("a FIFO"), "{pipe}");
}

#[test]
fn sarif_output_is_sarif_2_1_0() {
    let s = Scratch::new();
    let (code, out, _) = s.run(&[
        "--format",
        "sarif",
        "scan",
        &fixture("npz_object_array_payload.npz"),
        &fixture("npz_benign.npz"),
    ]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        let index = usize::try_from(r["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(rules[index]["id"], r["ruleId"]);
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        assert!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .ends_with(".npz")
        );
    }
    assert!(
        results.iter().any(|r| r["ruleId"] == "numpy-object-array"
            && r["properties"]["container_path"][0] == "b.npy")
    );
    assert_eq!(run["artifacts"].as_array().unwrap().len(), 2);
}

#[test]
fn policy_allowlist_and_threshold_apply_and_scans_are_audited() {
    let s = Scratch::init();
    let unknown = fixture("pickle_unknown_main_class.pkl");
    assert_eq!(s.run(&["scan", &unknown]).0, 1);
    let policy = s.home().join("rampart.toml");
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("allow = []", "allow = [\"__main__.*\"]");
    std::fs::write(&policy, text).unwrap();
    assert_eq!(s.run(&["scan", &unknown]).0, 0);
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("fail_on = \"medium\"", "fail_on = \"sometimes\"");
    std::fs::write(&policy, text).unwrap();
    let (code, _, err) = s.run(&["scan", &unknown]);
    assert_eq!(code, 2);
    assert!(err.contains("fail_on"), "{err}");
    let (_, out, _) = s.run(&["--format", "json", "audit", "show", "--action", "scan"]);
    let outcomes: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(outcomes, ["failed", "ok"]);
    assert!(out.contains("pickle-unknown-import"));
}

#[test]
fn convert_writes_safetensors_or_refuses_with_exit_1() {
    let s = Scratch::init();
    let (code, out, err) = s.run(&[
        "convert",
        &fixture("convert_zip_all_dtypes.pt"),
        "-o",
        "m.safetensors",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("13 tensors") && out.contains("step"), "{out}");
    assert_eq!(s.run(&["scan", "m.safetensors"]).0, 0);
    // Never overwrites without --force.
    let (code, _, err) = s.run(&[
        "convert",
        &fixture("convert_zip_all_dtypes.pt"),
        "-o",
        "m.safetensors",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--force"), "{err}");
    let (code, out, _) = s.run(&[
        "convert",
        &fixture("torch_zip_data_pkl_os_system.pt"),
        "-o",
        "evil.safetensors",
    ]);
    assert_eq!(code, 1);
    assert!(
        out.contains("REFUSED") && out.contains("posix.system"),
        "{out}"
    );
    assert!(!s.path().join("evil.safetensors").exists());
    let (code, _, err) = s.run(&[
        "convert",
        &fixture("keras_benign.keras"),
        "-o",
        "k.safetensors",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("data.pkl"), "{err}");
    let (_, audit, _) = s.run(&["--format", "json", "audit", "show", "--action", "convert"]);
    let outcomes: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["outcome"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(outcomes, ["ok", "denied", "error"]);
}

/// What cannot be analysed is never reported clean: a file named like a model whose bytes are
/// no known format (here a 4 GiB sparse `.pt`, and random bytes as `.pkl`) fails the scan at
/// the policy's `unanalysable` severity; an unrecognised side file (`config.json`, `README`)
/// is only noted.
#[test]
fn unanalysable_model_files_are_not_clean() {
    let s = Scratch::init();
    let dir = s.path().join("m");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::File::create(dir.join("sparse.pt"))
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    std::fs::write(
        dir.join("weights.pkl"),
        [0x13u8, 0x37, 0xfe, 0x01].repeat(100),
    )
    .unwrap();
    std::fs::write(dir.join("config.json"), "{\"hidden\": 8}").unwrap();
    std::fs::write(dir.join("README"), "a model").unwrap();

    let out = s
        .rampart(&["--format", "json", "scan", "m"])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rule = |name: &str| {
        let f = v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap();
        (
            f["findings"][0]["rule"].as_str().unwrap_or("").to_owned(),
            f["findings"][0]["severity"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    };
    assert_eq!(rule("sparse.pt"), ("unanalysable".into(), "medium".into()));
    assert_eq!(rule("weights.pkl").0, "unanalysable");
    // Known side files are recognised as such, with no finding at all.
    assert_eq!(rule("config.json"), (String::new(), String::new()));
    assert_eq!(rule("README"), (String::new(), String::new()));
    let format = |name: &str| {
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap()["format"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(format("config.json"), "config");
    assert_eq!(format("README"), "readme");
    assert_eq!(v["summary"]["flagged"], 2, "{v}");

    // The policy sets its severity: low passes at the default fail_on (medium).
    let policy = s.home().join("rampart.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("# unanalysable = \"medium\"", "unanalysable = \"low\""),
    )
    .unwrap();
    let (code, _, err) = s.run(&["scan", "m"]);
    assert_eq!(code, 0, "{err}");
}

/// The policy's `[scan.severity]` sets a rule's severity: TorchScript code (medium by default)
/// raised to high fails a scan at `fail_on = "high"`; a critical rule cannot be lowered and an
/// unknown rule is refused, both naming the key.
#[test]
fn the_policy_sets_a_rules_severity() {
    let s = Scratch::init();
    let ts = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/interop/torch-corpus/torchscript_traced.pt");
    std::fs::copy(&ts, s.path().join("ts.pt")).unwrap();
    let policy = s.home().join("rampart.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    let with = |extra: &str| {
        std::fs::write(
            &policy,
            text.replace(
                "fail_on = \"medium\"\n",
                &format!("fail_on = \"high\"\n{extra}"),
            ),
        )
        .unwrap();
    };
    with("");
    let (code, out, err) = s.run(&["scan", "ts.pt"]);
    assert_eq!(
        code, 0,
        "medium TorchScript passes at fail_on high: {out}{err}"
    );
    assert!(out.contains("torchscript-code"), "{out}");
    with("\n[scan.severity]\ntorchscript-code = \"high\"\n");
    let (code, out, err) = s.run(&["scan", "ts.pt"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("high") && out.contains("torchscript-code"),
        "{out}"
    );
    with("\n[scan.severity]\npickle-dangerous-import = \"low\"\n");
    let (code, _, err) = s.run(&["scan", "ts.pt"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("scan.severity.pickle-dangerous-import") && err.contains("cannot be lowered"),
        "{err}"
    );
    with("\n[scan.severity]\nno-such-rule = \"low\"\n");
    let (code, _, err) = s.run(&["scan", "ts.pt"]);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-rule"), "{err}");
}
