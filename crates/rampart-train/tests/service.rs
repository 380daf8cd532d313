//! The training service called as a library, without the CLI: a home, its policy, an in-memory
//! audit sink, and the real sandbox. This test binary is its own sandbox helper (it calls
//! `rampart_sandbox::test_main`, which runs the helper first), so it has no libtest harness.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use rampart_audit::{Auditor, MemorySink};
use rampart_home::{Classify, Home, Session};
use rampart_ingest::open::Keys;
use rampart_ml::hyper::{Hyper, Kind};
use rampart_sandbox::Sandbox;
use rampart_train::config::TrainConfig;
use rampart_train::service::{
    self, ConfigFile, LimitOverrides, Recipe, RecipeFlags, ServiceError, TrainOutcome, TrainRequest,
};

/// A safetensors file with one F32 tensor of two values.
fn safetensors() -> Vec<u8> {
    let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header);
    for v in [1.0f32, 2.0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

struct Fixture {
    dir: tempfile::TempDir,
    home: Home,
    data: PathBuf,
    model: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir(&root).unwrap();
    home.data_root_add(&root, &mut |_| Ok(())).unwrap();
    let data = root.join("rows.csv");
    std::fs::write(&data, "a,b\n1,2\n3,4\n").unwrap();
    // What the "trainer" (cp) copies into the model directory.
    let code = dir.path().join("code");
    std::fs::create_dir(&code).unwrap();
    let model = code.join("weights.safetensors");
    std::fs::write(&model, safetensors()).unwrap();
    Fixture {
        dir,
        home,
        data,
        model,
    }
}

/// The in-toto statement inside a provenance bundle (not verified: the tests that read it
/// verify the signature elsewhere).
fn statement_of(bundle: &std::path::Path) -> serde_json::Value {
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle).unwrap()).unwrap();
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        bundle["dsseEnvelope"]["payload"].as_str().unwrap(),
    )
    .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// A request that runs `command` on the fixture's dataset into `runs/<name>`.
fn request<'a>(f: &Fixture, name: &str, command: Vec<String>) -> TrainRequest<'a> {
    let mut req = TrainRequest::new(
        f.data.display().to_string(),
        Recipe::Exec {
            command,
            cwd: f.dir.path().to_path_buf(),
            read: vec![f.model.parent().unwrap().to_path_buf()],
            env: Vec::new(),
            holdout: None,
        },
    );
    req.output = Some(f.dir.path().join("runs").join(name));
    req
}

fn train(
    f: &Fixture,
    sink: &MemorySink,
    req: &TrainRequest<'_>,
) -> Result<TrainOutcome, ServiceError> {
    let policy = f.home.load_policy().unwrap();
    let s = Session {
        home: &f.home,
        policy: &policy,
        audit: Auditor::new(Some(sink), "tester"),
    };
    let keys = || {
        Err(rampart_ingest::IngestError::Request(
            "no keys in this test".into(),
        ))
    };
    service::train(
        &s,
        req,
        Keys::Lazy(&keys),
        &Sandbox::current_exe().unwrap(),
        &mut |_, _| {},
    )
}

fn cp(f: &Fixture, run: &str) -> Vec<String> {
    vec![
        "/bin/cp".into(),
        f.model.display().to_string(),
        f.dir
            .path()
            .join("runs")
            .join(run)
            .join("model/model.safetensors")
            .display()
            .to_string(),
    ]
}

fn a_run_in_the_sandbox_is_signed_verifiable_and_audited() {
    let f = fixture();
    let sink = MemorySink::new();
    let out = train(&f, &sink, &request(&f, "ok", cp(&f, "ok"))).unwrap();
    let TrainOutcome::Trained(t) = out else {
        panic!("not trained: {out:?}")
    };
    assert_eq!(t.build, "exec");
    assert_eq!(t.files.len(), 1);
    assert_eq!(t.files[0].name, "model.safetensors");
    assert_eq!(t.files[0].digest, rampart_crypto::sha256(&safetensors()));
    assert_eq!(
        t.dataset,
        rampart_crypto::sha256(std::fs::read(&f.data).unwrap().as_slice())
    );
    // The signature verifies with the home's key over exactly the model files.
    let (key, _) = f.home.signing_key().unwrap();
    let bundle = std::fs::read(&t.signature).unwrap();
    rampart_crypto::oms::verify_model(
        &t.model_dir,
        &bundle,
        &[key.public_key()],
        &rampart_crypto::oms::VerifyOptions::new(&t.signature),
        &|_| {},
    )
    .unwrap();
    // The signed provenance names the dataset it was trained on and the model it made.
    let statement = statement_of(&t.provenance);
    let deps = &statement["predicate"]["buildDefinition"]["resolvedDependencies"];
    assert_eq!(deps[0]["name"], "dataset");
    assert_eq!(deps[0]["digest"]["sha256"], t.dataset.to_hex());
    assert_eq!(statement["subject"][0]["name"], "model.safetensors");
    // The report on disk is the one returned.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.run.join("run.json")).unwrap()).unwrap();
    assert_eq!(report, t.report);
    assert_eq!(report["model"]["root"], t.root.to_hex());
    let actions = sink.actions();
    let tail: Vec<_> = actions.iter().rev().take(2).rev().cloned().collect();
    assert_eq!(
        tail,
        [
            ("train.run".to_owned(), "ok".to_owned()),
            ("train.provenance".to_owned(), "ok".to_owned()),
        ]
    );
    assert!(actions.iter().all(|(_, o)| o == "ok"), "{actions:?}");
}

/// With a label, rampart holds rows out before the trainer starts: the trainer's table lacks
/// them (it checks its own line count and fails otherwise), the split is recorded in the signed
/// provenance beside the trainer's metrics, which are marked self-reported, and a model rampart
/// cannot run is recorded as not scored, with why, never as a number.
fn held_out_rows_never_reach_the_trainer_and_the_split_is_signed() {
    let f = fixture();
    let mut rows = String::from("a,b,y\n");
    for i in 0..20 {
        rows.push_str(&format!("{i},{},{}\n", i * 2, i % 2));
    }
    std::fs::write(&f.data, &rows).unwrap();
    let out = f.dir.path().join("runs/held/model/model.safetensors");
    let script = format!(
        "test \"$(wc -l < \"$RAMPART_DATA\")\" -eq 17 && grep -c . \"$RAMPART_DATA\" >/dev/null && cp {} {} && printf '{{\"accuracy\": 0.999}}' > \"$RAMPART_OUTPUT/metrics.json\"",
        f.model.display(),
        out.display()
    );
    let mut req = request(&f, "held", vec!["/bin/sh".into(), "-c".into(), script]);
    req.label = Some("y".into());
    let sink = MemorySink::new();
    let outcome = train(&f, &sink, &req).unwrap();
    let TrainOutcome::Trained(t) = outcome else {
        panic!("not trained (did the trainer see the held-out rows?): {outcome:?}")
    };
    // The provenance still names the whole dataset.
    assert_eq!(t.dataset, rampart_crypto::sha256(rows.as_bytes()));
    let c = &t.computed;
    assert_eq!(c["holdout"]["rows"], 4, "{c}");
    assert_eq!(c["holdout"]["train_rows"], 16);
    assert_eq!(c["holdout"]["fraction"], 0.2);
    assert_eq!(c["scores"], serde_json::Value::Null);
    assert!(
        c["not_scored"]
            .as_str()
            .unwrap()
            .contains("not a rampart model"),
        "{c}"
    );
    let statement = statement_of(&t.provenance);
    let by = statement["predicate"]["runDetails"]["byproducts"]
        .as_array()
        .unwrap();
    let named = |n: &str| by.iter().find(|b| b["name"] == n).unwrap().clone();
    assert_eq!(named("rampart-metrics")["content"], *c);
    assert_eq!(named("metrics.json")["content"]["accuracy"], 0.999);
    assert_eq!(named("metrics.json")["annotations"]["self_reported"], true);
    let recorded = rampart_ml::metrics::Recorded::of(&statement);
    let e = recorded.for_gate(true).unwrap_err().to_string();
    assert!(e.contains("not a rampart model"), "{e}");
    // Without a label nothing is held out, and the record says so.
    let f = fixture();
    let t = match train(&f, &sink, &request(&f, "nolabel", cp(&f, "nolabel"))).unwrap() {
        TrainOutcome::Trained(t) => t,
        other => panic!("{other:?}"),
    };
    assert!(
        t.computed["not_scored"]
            .as_str()
            .unwrap()
            .contains("no label column"),
        "{}",
        t.computed
    );
}

fn a_failing_trainer_is_a_failed_outcome_on_record() {
    let f = fixture();
    let sink = MemorySink::new();
    let out = train(&f, &sink, &request(&f, "bad", vec!["/bin/false".into()])).unwrap();
    let TrainOutcome::Failed(failed) = out else {
        panic!("not failed: {out:?}")
    };
    assert!(failed.reason.contains("exit"), "{}", failed.reason);
    assert_eq!(failed.report["error"], failed.reason.as_str());
    assert!(!failed.run.join("model.sig").exists(), "nothing was signed");
    assert_eq!(
        sink.actions().last().unwrap(),
        &("train.run".to_owned(), "failed".to_owned())
    );
}

fn a_trainer_that_writes_no_model_is_failed_not_signed() {
    let f = fixture();
    let sink = MemorySink::new();
    let out = train(&f, &sink, &request(&f, "empty", vec!["/bin/true".into()])).unwrap();
    assert!(matches!(out, TrainOutcome::Failed(_)), "{out:?}");
    assert!(!f.dir.path().join("runs/empty/model.sig").exists());
}

fn limits_merge_policy_then_config_then_request_once() {
    let f = fixture();
    let policy = f.home.load_policy().unwrap();
    let text = "[data]\ndataset = \"x\"\n[trainer]\ncommand = [\"/bin/true\"]\n[limits]\ntimeout = 300\nmemory = \"1GiB\"\nprocesses = 9\n";
    let cfg = TrainConfig::parse(text, Path::new("train.toml")).unwrap();
    let l = service::limits(&policy.train, Some(&cfg), &LimitOverrides::default()).unwrap();
    assert_eq!(l.wall_ms, 300_000);
    assert_eq!(l.memory_bytes, 1 << 30);
    assert_eq!(l.processes, 9);
    assert_eq!(l.open_files, policy.train.open_files, "unset: the policy's");
    let over = LimitOverrides {
        timeout: Some(5),
        memory: Some(64 << 20),
        ..LimitOverrides::default()
    };
    let l = service::limits(&policy.train, Some(&cfg), &over).unwrap();
    assert_eq!((l.wall_ms, l.memory_bytes), (5_000, 64 << 20));
    assert!(
        l.cpu_seconds <= 5,
        "the CPU limit never outlasts the wall clock"
    );
    let tiny = LimitOverrides {
        memory: Some(1 << 20),
        ..LimitOverrides::default()
    };
    let err = service::limits(&policy.train, None, &tiny).unwrap_err();
    assert!(err.to_string().contains("too small"), "{err}");
    assert_eq!(err.kind(), rampart_ingest::ErrorKind::Input);
    // The config is recorded in the provenance with its digest.
    let mut req = request(&f, "cfg", cp(&f, "cfg"));
    let path = f.dir.path().join("train.toml");
    req.config = Some(ConfigFile {
        path: &path,
        text,
        parsed: &cfg,
    });
    let sink = MemorySink::new();
    let TrainOutcome::Trained(t) = train(&f, &sink, &req).unwrap() else {
        panic!("not trained")
    };
    assert_eq!(t.report["trainer"]["config"]["text"], text);
    assert_eq!(t.report["trainer"]["limits"]["wall_ms"], 300_000);
}

fn secrets_never_enter_the_sandbox_and_nothing_runs() {
    let f = fixture();
    let mut req = request(&f, "secret", cp(&f, "secret"));
    req.env = vec!["RAMPART_HOME".into()];
    let sink = MemorySink::new();
    let err = train(&f, &sink, &req).unwrap_err();
    assert!(err.to_string().contains("RAMPART_HOME"), "{err}");
    assert!(
        !f.dir.path().join("runs/secret").exists(),
        "nothing was created"
    );
}

fn a_dataset_outside_the_data_roots_is_refused_before_anything_runs() {
    let f = fixture();
    let outside = f.dir.path().join("elsewhere.csv");
    std::fs::write(&outside, "a\n1\n").unwrap();
    let mut req = request(&f, "outside", cp(&f, "outside"));
    req.dataset = outside.display().to_string();
    let sink = MemorySink::new();
    let err = train(&f, &sink, &req).unwrap_err();
    assert!(matches!(err, ServiceError::Ingest(_)), "{err}");
    assert_eq!(err.kind(), rampart_ingest::ErrorKind::Input);
    assert!(!f.dir.path().join("runs/outside").exists());
    assert_eq!(
        sink.actions().last().unwrap(),
        &("data.access".to_owned(), "denied".to_owned()),
        "{:?}",
        sink.actions()
    );
}

fn a_built_in_model_needs_a_label_a_holdout_fraction_and_usable_settings() {
    let f = fixture();
    let policy = f.home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = Session {
        home: &f.home,
        policy: &policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let mut req = request(&f, "builtin", Vec::new());
    req.recipe = Recipe::Builtin {
        program: PathBuf::from("/bin/true"),
        kind: Kind::RandomForest,
        holdout: 0.2,
        hyper: Hyper::default(),
    };
    let err = service::plan(&s, &req).unwrap_err();
    assert!(err.to_string().contains("--label"), "{err}");
    req.label = Some("b".into());
    req.recipe = Recipe::Builtin {
        program: PathBuf::from("/bin/true"),
        kind: Kind::RandomForest,
        holdout: 1.0,
        hyper: Hyper::default(),
    };
    let err = service::plan(&s, &req).unwrap_err();
    assert!(err.to_string().contains("[0, 1)"), "{err}");
    // Settings the kind cannot use are refused when the run is planned.
    req.recipe = Recipe::Builtin {
        program: PathBuf::from("/bin/true"),
        kind: Kind::RandomForest,
        holdout: 0.2,
        hyper: Hyper {
            dp_epsilon: Some(1.0),
            dp_delta: Some(1e-5),
            ..Hyper::default()
        },
    };
    let err = service::plan(&s, &req).unwrap_err();
    assert!(err.to_string().contains("--dp-epsilon"), "{err}");
}

fn a_recipe_merges_the_config_and_the_flags_and_names_the_config_in_errors() {
    let path = Path::new("/cfg/train.toml");
    let config = |model: &str| {
        TrainConfig::parse(
            &format!("[data]\ndataset = \"d.csv\"\n[model]\n{model}"),
            path,
        )
        .unwrap()
    };
    let program = Path::new("/bin/rampart");
    let c = config("kind = \"random-forest\"\ntrees = 200\nseed = 7\nholdout = 0.3\n");
    let flags = RecipeFlags {
        hyper: Hyper {
            trees: Some(15),
            ..Hyper::default()
        },
        ..RecipeFlags::default()
    };
    let Recipe::Builtin {
        kind,
        holdout,
        hyper,
        program: p,
    } = service::recipe(&flags, Some((&c, path)), program, PathBuf::from("/")).unwrap()
    else {
        panic!("a [model] table is the built-in trainer");
    };
    assert_eq!(
        (kind, holdout, p.as_path()),
        (Kind::RandomForest, 0.3, program)
    );
    assert_eq!((hyper.trees, hyper.seed), (Some(15), Some(7)));
    // --model overrides the config's kind but keeps its settings.
    let logistic = RecipeFlags {
        kind: Some(Kind::Logistic),
        ..RecipeFlags::default()
    };
    let r = service::recipe(&logistic, Some((&c, path)), program, PathBuf::from("/")).unwrap();
    assert!(
        matches!(r, Recipe::Builtin { kind: Kind::Logistic, hyper, .. } if hyper.seed == Some(7))
    );
    for (model, needle) in [
        ("kind = \"random-forest\"\ntress = 5\n", "\"tress\""),
        ("kind = \"random-forrest\"\n", "random-forrest"),
        ("trees = 5\n", "needs kind"),
        ("kind = \"logistic\"\nepochs = \"many\"\n", "epochs"),
    ] {
        let err = service::recipe(
            &RecipeFlags::default(),
            Some((&config(model), path)),
            program,
            PathBuf::from("/"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(needle) && text.contains("/cfg/train.toml: [model]"),
            "{text}"
        );
    }
    let err =
        service::recipe(&RecipeFlags::default(), None, program, PathBuf::from("/")).unwrap_err();
    assert!(err.to_string().contains("say what to train"), "{err}");
}

/// Runs `f` on a thread and fails if it does not return within 20 s (a hang is the bug).
fn within_20s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(20))
        .expect("hung: the call did not return within 20 s")
}

fn a_base_model_that_is_a_fifo_is_refused_without_hanging() {
    let f = fixture();
    let fifo = f.dir.path().join("base.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let dir = f.dir.path().to_path_buf();
    let data = f.data.display().to_string();
    let model = f.model.clone();
    let home = f.home.root().to_path_buf();
    let err = within_20s(move || {
        let home = Home::resolve(Some(&home));
        let mut req = TrainRequest::new(
            data,
            Recipe::Exec {
                command: vec!["/bin/true".into()],
                cwd: dir.clone(),
                read: vec![model.parent().unwrap().to_path_buf()],
                env: Vec::new(),
                holdout: None,
            },
        );
        req.output = Some(dir.join("runs/fifo"));
        req.base_model = Some(fifo);
        let policy = home.load_policy().unwrap();
        let sink = MemorySink::new();
        let s = Session {
            home: &home,
            policy: &policy,
            audit: Auditor::new(Some(&sink), "tester"),
        };
        let keys = || Err(rampart_ingest::IngestError::Request("no keys".into()));
        service::train(
            &s,
            &req,
            Keys::Lazy(&keys),
            &Sandbox::current_exe().unwrap(),
            &mut |_, _| {},
        )
        .map(|_| ())
        .unwrap_err()
        .to_string()
    });
    assert!(err.contains("not a regular file"), "{err}");
    assert!(
        !f.dir.path().join("runs/fifo").exists(),
        "nothing was created"
    );
}

fn a_dataset_reference_that_is_not_a_digest_is_refused() {
    let f = fixture();
    for bad in ["sha256:../../etc/passwd", "sha256:", "sha256:zz"] {
        let mut req = request(&f, "badref", cp(&f, "badref"));
        req.dataset = bad.into();
        let sink = MemorySink::new();
        let err = train(&f, &sink, &req).unwrap_err();
        assert_eq!(err.kind(), rampart_ingest::ErrorKind::Input, "{bad}: {err}");
        assert!(!f.dir.path().join("runs/badref").exists(), "{bad}");
    }
}

fn main() {
    let cases: &[(&str, fn())] = &[
        (
            "a_recipe_merges_the_config_and_the_flags_and_names_the_config_in_errors",
            a_recipe_merges_the_config_and_the_flags_and_names_the_config_in_errors,
        ),
        (
            "a_base_model_that_is_a_fifo_is_refused_without_hanging",
            a_base_model_that_is_a_fifo_is_refused_without_hanging,
        ),
        (
            "a_dataset_reference_that_is_not_a_digest_is_refused",
            a_dataset_reference_that_is_not_a_digest_is_refused,
        ),
        (
            "a_run_in_the_sandbox_is_signed_verifiable_and_audited",
            a_run_in_the_sandbox_is_signed_verifiable_and_audited,
        ),
        (
            "a_failing_trainer_is_a_failed_outcome_on_record",
            a_failing_trainer_is_a_failed_outcome_on_record,
        ),
        (
            "a_trainer_that_writes_no_model_is_failed_not_signed",
            a_trainer_that_writes_no_model_is_failed_not_signed,
        ),
        (
            "limits_merge_policy_then_config_then_request_once",
            limits_merge_policy_then_config_then_request_once,
        ),
        (
            "secrets_never_enter_the_sandbox_and_nothing_runs",
            secrets_never_enter_the_sandbox_and_nothing_runs,
        ),
        (
            "a_dataset_outside_the_data_roots_is_refused_before_anything_runs",
            a_dataset_outside_the_data_roots_is_refused_before_anything_runs,
        ),
        (
            "held_out_rows_never_reach_the_trainer_and_the_split_is_signed",
            held_out_rows_never_reach_the_trainer_and_the_split_is_signed,
        ),
        (
            "a_built_in_model_needs_a_label_a_holdout_fraction_and_usable_settings",
            a_built_in_model_needs_a_label_a_holdout_fraction_and_usable_settings,
        ),
    ];
    rampart_sandbox::test_main(cases);
}
