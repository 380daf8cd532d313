//! `rampart train`: each escape a trainer might try fails and is reported; a clean trainer in
//! the same sandbox produces a signed model whose provenance names the exact dataset.

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Scratch;

/// The interpreter the trainers run under (Debian's, under /usr: a system path).
const PYTHON: &str = "/usr/bin/python3";

fn sha256_file(path: &Path) -> String {
    let mut h = rampart_crypto::Sha256Hasher::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut h).unwrap();
    h.finish().to_hex()
}

/// A home with a data root holding `data/train.csv`, and a second root with another dataset
/// the trainer must not see.
fn setup() -> Scratch {
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is needed by the sandbox tests (.ci/run installs python3)"
    );
    let s = Scratch::init();
    std::fs::create_dir_all(s.path().join("data")).unwrap();
    std::fs::create_dir_all(s.path().join("other")).unwrap();
    let mut rng = rampart_ml::split::SplitMix64::new(7);
    let mut text = String::from("id,x,y,label\n");
    for i in 0..300 {
        let c = if i % 2 == 0 { 0.0 } else { 3.0 };
        text.push_str(&format!(
            "r{i},{:.4},{:.4},{}\n",
            c + rng.normal(),
            c - rng.normal(),
            i % 2
        ));
    }
    std::fs::write(s.path().join("data/train.csv"), text).unwrap();
    std::fs::write(
        s.path().join("other/secret.csv"),
        "name,ssn\nalice,078-05-1120\n",
    )
    .unwrap();
    std::fs::create_dir_all(s.path().join("code")).unwrap();
    s.rampart(&["data", "roots", "add", "data"])
        .assert()
        .success();
    s.rampart(&["data", "roots", "add", "other"])
        .assert()
        .success();
    s
}

/// Runs `rampart train` with a Python trainer; returns (code, stdout, stderr) and the
/// run directory.
fn train_with(s: &Scratch, name: &str, script: &str, extra: &[&str]) -> (i32, String, String) {
    let path = s.path().join("code").join(format!("{name}.py"));
    std::fs::write(&path, script).unwrap();
    let out = format!("runs/{name}");
    let script_arg = format!("code/{name}.py");
    let mut args = vec!["train", "--data", "data/train.csv", "--output", &out];
    if !extra.contains(&"--timeout") {
        args.extend_from_slice(&["--timeout", "60"]);
    }
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--exec", "--", PYTHON, &script_arg]);
    s.run(&args)
}

/// The escape failed: exit 1, the run is reported failed, nothing was signed, and the marker
/// the trainer prints on success is absent.
fn assert_contained(s: &Scratch, name: &str, (code, out, err): &(i32, String, String)) {
    assert_eq!(
        *code, 1,
        "{name}: expected exit 1\nstdout: {out}\nstderr: {err}"
    );
    assert!(out.contains("training FAILED"), "{name}: {out}");
    assert!(
        !err.contains("ESCAPED") && !out.contains("ESCAPED"),
        "{name}: {err}"
    );
    let run = s.path().join("runs").join(name);
    assert!(!run.join("model.sig").exists(), "{name}: signed anyway");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(report["sandbox"]["landlock"], "fully enforced");
    let log = std::fs::read_to_string(run.join("train.log")).unwrap();
    assert!(!log.contains("ESCAPED"), "{name}: {log}");
}

/// The in-toto statement inside a signed bundle.
fn statement(bundle: &Path) -> Value {
    use base64::Engine as _;
    let b: Value = serde_json::from_str(&std::fs::read_to_string(bundle).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

fn no_process_matches(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker))
        .collect()
}

#[test]
fn a_tcp_connection_to_the_host_is_refused() {
    let s = setup();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = train_with(
        &s,
        "tcp",
        &format!(
            "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=3)\ns.sendall(open(__import__('os').environ['RAMPART_DATA'], 'rb').read())\nprint('ESCAPED')\n"
        ),
        &[],
    );
    assert_contained(&s, "tcp", &r);
    assert!(
        r.1.contains("forbids"),
        "the report names the rule: {}",
        r.1
    );
    assert!(r.1.contains("SIGSYS"), "{}", r.1);
    assert!(
        listener.accept().is_err(),
        "the listener received a connection"
    );
}

#[test]
fn a_host_name_cannot_be_resolved() {
    let s = setup();
    let r = train_with(
        &s,
        "dns",
        "import socket\nprint(socket.getaddrinfo('pypi.org', 443))\nprint('ESCAPED')\n",
        &[],
    );
    assert_contained(&s, "dns", &r);
}

#[test]
fn the_signing_key_and_root_stay_out_of_reach() {
    let s = setup();
    let key = s.home().join("keys/signing.key.pem");
    assert!(key.is_file());
    let r = train_with(
        &s,
        "key",
        &format!(
            "print(open({:?}).read())\nprint('ESCAPED')\n",
            key.display().to_string()
        ),
        &[],
    );
    assert_contained(&s, "key", &r);
    assert!(!r.2.contains("PRIVATE KEY"), "{}", r.2);
    let r = train_with(
        &s,
        "root",
        "import os\nprint(os.listdir('/root'))\nprint('ESCAPED')\n",
        &[],
    );
    assert_contained(&s, "root", &r);
    // /root is not in the trainer's view at all.
    assert!(r.2.contains("FileNotFoundError"), "{}", r.2);
}

#[test]
fn nothing_is_written_outside_the_output() {
    let s = setup();
    let target = s.path().join("escaped.txt");
    let r = train_with(
        &s,
        "write",
        &format!(
            "open({:?}, 'w').write('x')\nprint('ESCAPED')\n",
            target.display().to_string()
        ),
        &[],
    );
    assert_contained(&s, "write", &r);
    assert!(!target.exists());
    // Everything around the output is a read-only view.
    assert!(r.2.contains("Read-only file system"), "{}", r.2);
}

#[test]
fn another_dataset_stays_unreadable_even_inside_the_data_roots() {
    let s = setup();
    let other = s.path().join("other/secret.csv");
    let r = train_with(
        &s,
        "other",
        &format!(
            "print(open({:?}).read())\nprint('ESCAPED')\n",
            other.display().to_string()
        ),
        &[],
    );
    assert_contained(&s, "other", &r);
    assert!(!r.2.contains("078-05-1120"));
}

#[test]
fn ptrace_kills_the_trainer() {
    let s = setup();
    let r = train_with(
        &s,
        "ptrace",
        "import ctypes, os\nlibc = ctypes.CDLL('libc.so.6', use_errno=True)\nrc = libc.ptrace(16, os.getppid(), 0, 0)\nprint('ESCAPED' if rc == 0 else 'ptrace failed: %d' % ctypes.get_errno())\nraise SystemExit(0 if rc == 0 else 3)\n",
        &[],
    );
    assert_contained(&s, "ptrace", &r);
    assert!(r.1.contains("forbids"), "{}", r.1);
}

#[test]
fn a_fork_bomb_hits_the_process_limit() {
    let s = setup();
    std::fs::write(
        s.home().join("rampart.toml"),
        std::fs::read_to_string(s.home().join("rampart.toml")).unwrap()
            + "\n[train]\nprocesses = 32\n",
    )
    .unwrap();
    let marker = format!("forkbomb{}", std::process::id());
    let started = Instant::now();
    let r = train_with(
        &s,
        &marker,
        "import os, time\nkids = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        kids += 1\nexcept OSError as e:\n    print('fork refused after', kids, 'children:', e)\n    raise SystemExit(4)\n",
        &["--timeout", "20"],
    );
    assert_contained(&s, &marker, &r);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(r.2.contains("fork refused after"), "{}", r.2);
    let n: u32 =
        r.2.split("fork refused after ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse().ok())
            .unwrap();
    assert!(n < 32, "{n} children");
    if rampart_home::os_user() == "root" {
        assert!(r.1.contains("process limit of 32 refused"), "{}", r.1);
    }
    // The children were killed with the sandbox.
    std::thread::sleep(Duration::from_millis(200));
    assert!(no_process_matches(&marker).is_empty());
}

#[test]
fn memory_past_the_limit_is_refused() {
    let s = setup();
    let r = train_with(
        &s,
        "memory",
        "b = bytearray(1 << 30)\nprint('ESCAPED', len(b))\n",
        &["--memory", "256MiB"],
    );
    assert_contained(&s, "memory", &r);
    assert!(r.2.contains("MemoryError"), "{}", r.2);
}

#[test]
fn the_timeout_kills_the_trainer_and_its_children() {
    let s = setup();
    let marker = format!("{}.4343", std::process::id());
    let started = Instant::now();
    let r = train_with(
        &s,
        "timeout",
        &format!(
            "import subprocess, time\nsubprocess.Popen(['/bin/sleep', '{marker}'], start_new_session=True)\ntime.sleep(120)\nprint('ESCAPED')\n"
        ),
        &["--timeout", "2"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_contained(&s, "timeout", &r);
    assert!(r.1.contains("wall-clock limit of 2 s"), "{}", r.1);
    std::thread::sleep(Duration::from_millis(200));
    assert!(no_process_matches(&marker).is_empty());
}

/// Writes a safetensors file by hand: one f32 tensor.
const CLEAN_TRAINER: &str = r#"
import json, os, struct, csv
data = os.environ["RAMPART_DATA"]
out = os.environ["RAMPART_OUTPUT"]
rows = list(csv.DictReader(open(data)))
mean = sum(float(r["x"]) for r in rows) / len(rows)
header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
header += b" " * (-len(header) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(header)) + header + struct.pack("<f", mean))
json.dump({"accuracy": 0.91, "rows": len(rows), "classes": ["0", "1"], "confusion_matrix": [[1, 2], [3, 4]]},
          open(os.path.join(out, "metrics.json"), "w"))
env = sorted(k for k in os.environ)
print("env:", ",".join(env))
print("tmp:", os.environ["TMPDIR"], os.access(os.environ["TMPDIR"], os.W_OK))
"#;

#[test]
fn a_clean_trainer_produces_a_signed_model_whose_provenance_names_the_dataset() {
    let s = setup();
    let (code, out, err) = {
        let mut cmd = s.rampart(&[]);
        std::fs::write(s.path().join("code/clean.py"), CLEAN_TRAINER).unwrap();
        cmd.args([
            "--format",
            "json",
            "train",
            "--data",
            "data/train.csv",
            "--output",
            "runs/clean",
            "--env",
            "WANTED_VAR",
            "--exec",
            "--",
            PYTHON,
            "code/clean.py",
        ])
        .env("RAMPART_AGE_PASSPHRASE", "not-for-trainers")
        .env("MY_SECRET_TOKEN", "hunter2")
        .env("WANTED_VAR", "yes")
        .env("UNLISTED_VAR", "no");
        let o = cmd.output().unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(code, 0, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let run = s.path().join("runs/clean");
    // The trainer saw the allowlisted variable and rampart's two, nothing else of ours.
    let env_line = err.lines().find(|l| l.starts_with("env:")).unwrap();
    assert!(env_line.contains("WANTED_VAR"), "{env_line}");
    assert!(env_line.contains("RAMPART_DATA") && env_line.contains("RAMPART_OUTPUT"));
    for banned in [
        "RAMPART_AGE_PASSPHRASE",
        "MY_SECRET_TOKEN",
        "UNLISTED_VAR",
        "RAMPART_HOME",
    ] {
        assert!(
            !env_line
                .split(',')
                .any(|v| v == banned || v.ends_with(&format!(" {banned}"))),
            "{banned} leaked: {env_line}"
        );
    }
    assert!(
        err.contains("True"),
        "the scratch TMPDIR is writable: {err}"
    );
    let dataset = sha256_file(&s.path().join("data/train.csv"));
    assert_eq!(report["dataset"]["sha256"], dataset);
    let model_digest = sha256_file(&run.join("model/model.safetensors"));
    assert_eq!(report["model"]["files"][0]["sha256"], model_digest);
    assert_eq!(report["metrics"]["accuracy"], 0.91);
    assert!(run.join("metrics.json").is_file() && !run.join("model/metrics.json").exists());
    assert!(
        std::fs::read_to_string(run.join("train.log"))
            .unwrap()
            .contains("env:")
    );
    // The signature verifies; the provenance verifies and ties the model to the dataset.
    s.rampart(&[
        "verify",
        "runs/clean/model",
        "--sig",
        "runs/clean/model.sig",
    ])
    .assert()
    .success();
    let v = s.json(&[
        "attest",
        "verify",
        "runs/clean/provenance.json",
        "--subject",
        "runs/clean/model/model.safetensors",
    ]);
    assert_eq!(v["verified"], true);
    assert_eq!(v["subjects"][0]["sha256"], model_digest);
    let dep = v["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "dataset")
        .unwrap();
    assert_eq!(dep["sha256"], dataset);
    let code_dep = v["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "code:code/clean.py")
        .unwrap();
    assert_eq!(
        code_dep["sha256"],
        sha256_file(&s.path().join("code/clean.py"))
    );
    // Tampering with the model breaks the signature.
    let mut bytes = std::fs::read(run.join("model/model.safetensors")).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(run.join("model/model.safetensors"), bytes).unwrap();
    s.rampart(&[
        "verify",
        "runs/clean/model",
        "--sig",
        "runs/clean/model.sig",
    ])
    .assert()
    .code(1);
    // The audit log records the run and the provenance, and still verifies.
    let mut log = String::new();
    std::fs::File::open(s.home().join("audit/audit.jsonl"))
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("\"train.run\"") && log.contains("\"train.provenance\""));
    assert!(!log.contains("hunter2"));
    s.rampart(&["audit", "verify"]).assert().success();
}

#[test]
fn the_built_in_trainer_runs_in_the_sandbox_from_flags_or_a_config() {
    let s = setup();
    let v = s.json(&built_in(&[
        "--trees",
        "15",
        "--max-depth",
        "6",
        "--output",
        "runs/rf",
    ]));
    // rampart held 60 of the 300 rows out before the trainer started and scored the model on
    // them itself; the trainer fitted the other 240 (its own report says so).
    let computed = &v["computed_metrics"];
    assert!(
        computed["scores"]["accuracy"].as_f64().unwrap() > 0.8,
        "{v}"
    );
    assert_eq!(computed["scores"]["rows"], 60, "{v}");
    assert_eq!(computed["holdout"]["train_rows"], 240);
    assert_eq!(v["metrics"]["rows"], 240);
    assert_eq!(
        v["trainer"]["hyperparameters"],
        serde_json::json!({"trees": 15, "max_depth": 6})
    );
    assert_eq!(v["sandbox"]["landlock"], "fully enforced");
    let p = s.json(&["attest", "verify", "runs/rf/provenance.json"]);
    assert_eq!(
        p["dependencies"][0]["sha256"],
        sha256_file(&s.path().join("data/train.csv"))
    );
    // What rampart train signs, model_signing verifies.
    s.rampart(&["keys", "export-public", "-o", "home.pub.pem"])
        .assert()
        .success();
    let (ok, out) = crate::interop::model_signing(
        s.path(),
        &[
            "verify",
            "key",
            "runs/rf/model",
            "--signature",
            "runs/rf/model.sig",
            "--public_key",
            "home.pub.pem",
        ],
    );
    assert!(ok && out.contains("Verification succeeded"), "{out}");
    // The model it wrote is a rampart model: ml eval reads it.
    let e = s.json(&[
        "ml",
        "eval",
        "--model",
        "runs/rf/model/model.safetensors",
        "--data",
        "data/train.csv",
        "--label",
        "label",
    ]);
    assert!(e["accuracy"].as_f64().unwrap() > 0.8);

    std::fs::write(
        s.path().join("train.toml"),
        "[data]\ndataset = \"data/train.csv\"\nlabel = \"label\"\nignore = [\"id\"]\n\n[model]\nkind = \"logistic\"\nepochs = 3\nholdout = 0.25\n\n[limits]\ntimeout = 120\nmemory = \"2GiB\"\n\n[output]\ndir = \"runs/from-config\"\n",
    )
    .unwrap();
    let v = s.json(&["train", "--config", "train.toml"]);
    assert_eq!(v["trainer"]["model"], "logistic");
    assert_eq!(v["trainer"]["holdout"], 0.25);
    assert_eq!(v["trainer"]["limits"]["memory_bytes"], 2u64 << 30);
    assert!(v["trainer"]["config"]["sha256"].is_string());
    assert!(s.path().join("runs/from-config/provenance.json").is_file());

    // A typo in [model] is a usage error before anything runs.
    std::fs::write(
        s.path().join("bad.toml"),
        "[data]\ndataset = \"data/train.csv\"\nlabel = \"label\"\n[model]\nkind = \"random-forest\"\ntress = 5\n",
    )
    .unwrap();
    let (code, _, err) = s.run(&["train", "--config", "bad.toml", "--output", "runs/bad"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"tress\""), "{err}");
}

#[test]
fn only_clean_safetensors_or_onnx_leave_the_sandbox() {
    let s = setup();
    for (name, script, needle) in [
        (
            "pickle",
            "import os, pickle\npickle.dump({'w': 1}, open(os.path.join(os.environ['RAMPART_OUTPUT'], 'model.pkl'), 'wb'))\n",
            "only safetensors and ONNX",
        ),
        (
            "disguised",
            "import os, pickle\npickle.dump({'w': 1}, open(os.path.join(os.environ['RAMPART_OUTPUT'], 'model.safetensors'), 'wb'))\n",
            "named .safetensors but its content is",
        ),
        (
            "link",
            "import os\nos.symlink('/etc/passwd', os.path.join(os.environ['RAMPART_OUTPUT'], 'model.safetensors'))\n",
            "symbolic link",
        ),
        (
            "metrics",
            "import os\nopen(os.path.join(os.environ['RAMPART_OUTPUT'], 'metrics.json'), 'w').write('{\"a\": {\"b\": {\"c\": 1}}}')\n",
            "nest one level",
        ),
        ("nothing", "print('no model')\n", "wrote no model"),
    ] {
        let (code, out, err) = train_with(&s, name, script, &[]);
        assert_eq!(code, 1, "{name}: {out} {err}");
        assert!(out.contains(needle), "{name}: {out}");
        assert!(!s.path().join("runs").join(name).join("model.sig").exists());
    }
}

#[test]
fn bad_usage_is_exit_2_and_a_used_output_is_never_reused() {
    let s = setup();
    for (args, needle) in [
        (
            vec!["train", "--data", "data/train.csv"],
            "say what to train",
        ),
        (
            vec!["train", "--model", "logistic"],
            "name the training data",
        ),
        (
            vec!["train", "--data", "data/train.csv", "--model", "logistic"],
            "needs --label",
        ),
        (
            vec!["train", "--data", "/etc/passwd", "--exec", "--", PYTHON],
            "data.roots",
        ),
        (
            vec![
                "train",
                "--data",
                "data/train.csv",
                "--env",
                "AWS_SECRET_ACCESS_KEY",
                "--exec",
                "--",
                PYTHON,
            ],
            "may not be passed",
        ),
        (
            vec![
                "train",
                "--data",
                "data/train.csv",
                "--memory",
                "lots",
                "--exec",
                "--",
                PYTHON,
            ],
            "not a size",
        ),
        (
            vec![
                "train",
                "--data",
                "data/train.csv",
                "--exec",
                "--",
                "no-such-trainer",
            ],
            "no such program",
        ),
        (
            vec!["train", "--data", "sha256:00", "--exec", "--", PYTHON],
            "64 hex digits",
        ),
    ] {
        let (code, _, err) = s.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    std::fs::create_dir_all(s.path().join("runs/used")).unwrap();
    std::fs::write(s.path().join("runs/used/keep.txt"), "x").unwrap();
    let (code, _, err) = s.run(&[
        "train",
        "--data",
        "data/train.csv",
        "--output",
        "runs/used",
        "--exec",
        "--",
        PYTHON,
        "-c",
        "pass",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(s.path().join("runs/used/keep.txt")).unwrap(),
        "x"
    );
}

#[test]
fn a_machine_without_a_protection_refuses_unless_allow_unsandboxed() {
    let s = setup();
    std::fs::write(s.path().join("code/clean.py"), CLEAN_TRAINER).unwrap();
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec!["train", "--data", "data/train.csv", "--output", out];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--exec", "--", PYTHON, "code/clean.py"]);
        let o = s
            .rampart(&args)
            .env("RAMPART_SANDBOX_SIMULATE_MISSING", "landlock")
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, _, err) = run("runs/strict", &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("(landlock)") && err.contains("--allow-unsandboxed"),
        "{err}"
    );
    assert!(!s.path().join("runs/strict/model.sig").exists());
    let (code, out, err) = run("runs/allowed", &["--allow-unsandboxed"]);
    assert_eq!(code, 0, "{out} {err}");
    s.rampart(&["attest", "verify", "runs/allowed/provenance.json"])
        .assert()
        .success();
    let statement = statement(&s.path().join("runs/allowed/provenance.json"));
    let sandbox = statement["predicate"]["runDetails"]["byproducts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "sandbox")
        .cloned()
        .unwrap();
    assert_eq!(
        sandbox["content"]["unsandboxed"][0]["step"], "landlock",
        "{sandbox}"
    );
    let log = std::fs::read_to_string(s.home().join("audit/audit.jsonl")).unwrap();
    assert!(log.contains("\"train.unsandboxed\""));
    assert!(log.contains("\"denied\""), "the strict refusal is audited");
}

#[test]
fn an_ingested_dataset_is_trained_on_by_digest_and_a_tampered_store_is_refused() {
    let s = setup();
    std::fs::write(
        s.path().join("schema.toml"),
        "version = 1\n[label]\ncolumn = \"label\"\nclasses = [\"0\", \"1\"]\n\
         [[columns]]\nname = \"id\"\ntype = \"string\"\n\
         [[columns]]\nname = \"x\"\ntype = \"float\"\n\
         [[columns]]\nname = \"y\"\ntype = \"float\"\n\
         [[columns]]\nname = \"label\"\ntype = \"int\"\n",
    )
    .unwrap();
    let ingested = s.json(&[
        "data",
        "ingest",
        "data/train.csv",
        "--schema",
        "schema.toml",
        "--allow-unsigned",
    ]);
    let digest = ingested["dataset"].as_str().unwrap().to_owned();
    std::fs::write(s.path().join("base.bin"), b"base weights").unwrap();
    std::fs::write(
        s.path().join("code/base.py"),
        format!(
            "{CLEAN_TRAINER}\nprint('base:', open(os.environ['RAMPART_BASE_MODEL'], 'rb').read())\n"
        ),
    )
    .unwrap();
    let v = s.json(&[
        "train",
        "--data",
        &digest,
        "--base-model",
        "base.bin",
        "--output",
        "runs/by-digest",
        "--exec",
        "--",
        PYTHON,
        "code/base.py",
    ]);
    assert_eq!(
        format!("sha256:{}", v["dataset"]["sha256"].as_str().unwrap()),
        digest
    );
    let p = s.json(&["attest", "verify", "runs/by-digest/provenance.json"]);
    let deps = p["dependencies"].as_array().unwrap();
    let dataset = deps.iter().find(|d| d["name"] == "dataset").unwrap();
    assert_eq!(
        format!("sha256:{}", dataset["sha256"].as_str().unwrap()),
        digest
    );
    assert_eq!(dataset["uri"], format!("rampart:dataset/{digest}"));
    let base = deps.iter().find(|d| d["name"] == "base-model").unwrap();
    assert_eq!(base["sha256"], sha256_file(&s.path().join("base.bin")));
    let log = std::fs::read_to_string(s.path().join("runs/by-digest/train.log")).unwrap();
    assert!(log.contains("base: b'base weights'"), "{log}");
    // The plaintext copy the trainer read is gone once the run ends.
    let tmp = s.home().join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "{tmp:?} not cleaned"
    );

    // Someone swaps the stored ciphertext for other (validly encrypted) rows.
    let stored = s
        .home()
        .join("store/datasets")
        .join(digest.trim_start_matches("sha256:"))
        .join("data.csv.age");
    std::fs::write(s.path().join("evil.csv"), "id,x,y,label\nr1,1,1,1\n").unwrap();
    std::fs::remove_file(&stored).unwrap();
    s.rampart(&["encrypt", "evil.csv", "-o", stored.to_str().unwrap()])
        .assert()
        .success();
    let (code, out, err) = s.run(&[
        "train",
        "--data",
        &digest,
        "--output",
        "runs/tampered",
        "--exec",
        "--",
        PYTHON,
        "code/base.py",
    ]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(err.contains("tampered"), "{err}");
    assert!(!s.path().join("runs/tampered/model.sig").exists());
}

#[test]
fn onnx_models_leave_the_sandbox_when_the_scanner_passes_them() {
    let s = setup();
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../rampart-scan/tests/fixtures/corpus");
    let copy = "import os, shutil, sys\nshutil.copy(sys.argv[1], os.path.join(os.environ['RAMPART_OUTPUT'], 'model.onnx'))\n";
    std::fs::write(s.path().join("code/copy.py"), copy).unwrap();
    let run = |name: &str, fixture: &str| {
        let f = corpus.join(fixture).canonicalize().unwrap();
        let out = format!("runs/{name}");
        s.run(&[
            "train",
            "--data",
            "data/train.csv",
            "--output",
            &out,
            "--exec",
            "--",
            PYTHON,
            "code/copy.py",
            f.to_str().unwrap(),
        ])
    };
    let (code, out, err) = run("onnx-ok", "onnx_benign.onnx");
    assert_eq!(code, 0, "{out} {err}");
    assert!(s.path().join("runs/onnx-ok/model.sig").is_file());
    let p = s.json(&["attest", "verify", "runs/onnx-ok/provenance.json"]);
    assert_eq!(p["subjects"][0]["name"], "model.onnx");
    let (code, out, err) = run("onnx-custom", "onnx_custom_operator_domain.onnx");
    assert_eq!(code, 1, "{out} {err}");
    assert!(out.contains("flagged by the scanner"), "{out}");
    assert!(!s.path().join("runs/onnx-custom/model.sig").exists());
}

#[test]
fn escape_sequences_in_output_and_names_never_reach_the_terminal() {
    let s = setup();
    let script = r#"
import os, sys
sys.stderr.write("\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07epoch 1\r\x1b[2Ktraining OK\n")
out = os.environ["RAMPART_OUTPUT"]
open(os.path.join(out, "m\nverified OK\x1b[32m.safetensors"), "wb").write(b"x")
"#;
    let (code, out, err) = train_with(&s, "ansi", script, &[]);
    assert_eq!(code, 1, "{out} {err}");
    for text in [&out, &err] {
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(!text.contains('\r'), "{text:?}");
    }
    // Shown, escaped, not obeyed.
    assert!(err.contains("\\x1b]0;pwned\\x07"), "{err}");
    assert!(
        out.contains("m\\nverified OK\\x1b[32m.safetensors"),
        "the refused name, escaped: {out}"
    );
    assert!(out.contains("control characters"), "{out}");
    let log = std::fs::read_to_string(s.path().join("runs/ansi/train.log")).unwrap();
    assert!(!log.contains('\x1b'), "{log:?}");
    // A refused run keeps nothing the trainer wrote.
    assert_eq!(
        std::fs::read_dir(s.path().join("runs/ansi/model"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn collected_files_lose_setuid_bits_and_the_trainers_uid() {
    use std::os::unix::fs::MetadataExt as _;
    let s = setup();
    let script = format!(
        "{CLEAN_TRAINER}\nos.chmod(os.path.join(out, 'model.safetensors'), 0o6777)\nos.chmod(out, 0o777)\n"
    );
    let (code, out, err) = train_with(&s, "modes", &script, &[]);
    assert_eq!(code, 0, "{out} {err}");
    let model = s.path().join("runs/modes/model/model.safetensors");
    let meta = std::fs::metadata(&model).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644);
    // When rampart runs as root, the trainer's own uid owns nothing afterwards.
    assert_eq!(meta.uid(), nix::unistd::getuid().as_raw());
    let run: Value = serde_json::from_str(
        &std::fs::read_to_string(s.path().join("runs/modes/run.json")).unwrap(),
    )
    .unwrap();
    if nix::unistd::geteuid().is_root() {
        assert!(run["sandbox"]["run_as"].as_u64().unwrap() > 65_535, "{run}");
        assert_eq!(run["sandbox"]["memory_scope"], "tree", "{run}");
    }
}

#[test]
fn an_8_gib_sparse_output_is_refused_before_it_is_read() {
    let s = setup();
    let script = "import os\nf = open(os.path.join(os.environ['RAMPART_OUTPUT'], 'big.safetensors'), 'wb')\nf.truncate(8 << 30)\n";
    let t = Instant::now();
    let (code, out, err) = train_with(&s, "sparse", script, &["--timeout", "20"]);
    assert_eq!(code, 1, "{out} {err}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(out.contains("more than 4294967296 bytes"), "{out}");
    assert!(!s.path().join("runs/sparse/model/big.safetensors").exists());
    assert!(!s.path().join("runs/sparse/model.sig").exists());
}

#[test]
fn credentials_in_the_environment_are_refused() {
    let s = setup();
    std::fs::write(s.path().join("code/env.py"), "print('hi')\n").unwrap();
    for (name, value) in [
        ("DB_PASS", "hunter2"),
        ("DATABASE_URL", "postgres://app:hunter2@db.internal/prod"),
        ("MYSQL_PWD", "hunter2"),
        ("SENTRY_DSN", "https://abc@o1.ingest.example/1"),
    ] {
        let out = s
            .rampart(&[
                "train",
                "--data",
                "data/train.csv",
                "--output",
                "runs/env",
                "--env",
                name,
                "--exec",
                "--",
                PYTHON,
                "code/env.py",
            ])
            .env(name, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(name), "{err}");
        assert!(!err.contains("hunter2"), "the value is never shown: {err}");
    }
}

/// The run's private directories under the home's tmp/.
fn work_dirs(s: &Scratch) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(s.home().join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("train-")
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn an_interrupted_or_killed_run_leaves_no_plaintext() {
    let s = setup();
    std::fs::write(
        s.path().join("code/slow.py"),
        "import time\nprint('started', flush=True)\ntime.sleep(60)\n",
    )
    .unwrap();
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        let out = format!("runs/slow-{}", signal.as_str());
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("rampart"))
            .current_dir(s.path())
            .args([
                "train",
                "--data",
                "data/train.csv",
                "--output",
                &out,
                "--timeout",
                "60",
                "--exec",
                "--",
                PYTHON,
                "code/slow.py",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the plaintext copy to exist.
        let t = Instant::now();
        let copy = loop {
            let found = work_dirs(&s)
                .into_iter()
                .map(|d| d.join("inputs/train.csv"))
                .find(|p| p.exists());
            if let Some(p) = found {
                break p;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "no run started");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(300));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success());
        if signal == nix::sys::signal::Signal::SIGKILL {
            // Nothing can run at SIGKILL: the next run sweeps it.
            assert!(copy.exists());
            let (code, o, e) = train_with(&s, "after-kill", CLEAN_TRAINER, &[]);
            assert_eq!(code, 0, "{o} {e}");
        }
        assert!(!copy.exists(), "{signal}: {} is left", copy.display());
        assert!(work_dirs(&s).is_empty(), "{signal}: {:?}", work_dirs(&s));
    }
}

/// A fake pyenv whose `python3` shim would fail if it were ever run: the version it selects
/// is Debian's python3, reached through a symbolic link as pyenv installs link theirs.
fn fake_pyenv(root: &Path) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let shims = root.join("shims");
    std::fs::create_dir_all(&shims).unwrap();
    std::fs::create_dir_all(root.join("libexec")).unwrap();
    std::fs::create_dir_all(root.join("versions/3.11-debian/bin")).unwrap();
    std::os::unix::fs::symlink(PYTHON, root.join("versions/3.11-debian/bin/python3")).unwrap();
    std::fs::write(root.join("version"), "3.11-debian\n").unwrap();
    let exe = |p: &Path, text: &str| {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // pyenv's shim, as `pyenv rehash` writes it.
    exe(
        &shims.join("python3"),
        &format!(
            "#!/usr/bin/env bash\nset -e\n[ -n \"$PYENV_DEBUG\" ] && set -x\n\nprogram=\"${{0##*/}}\"\n\nexport PYENV_ROOT=\"{}\"\nexec \"{}/libexec/pyenv\" exec \"$program\" \"$@\"\n",
            root.display(),
            root.display()
        ),
    );
    exe(
        &root.join("libexec/pyenv"),
        "#!/bin/sh\necho 'the shim ran inside the sandbox' >&2\nexit 97\n",
    );
    format!("{}:/usr/bin:/bin", shims.display())
}

#[test]
fn the_python3_of_a_pyenv_user_runs_with_no_extra_flags() {
    let s = setup();
    let path = fake_pyenv(&s.path().join("pyenv"));
    std::fs::write(s.path().join("code/clean.py"), CLEAN_TRAINER).unwrap();
    let out = s
        .rampart(&[
            "--format",
            "json",
            "train",
            "--data",
            "data/train.csv",
            "--output",
            "runs/pyenv",
            "--exec",
            "--",
            "python3",
            "code/clean.py",
        ])
        .env("PATH", &path)
        .env_remove("PYENV_VERSION")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let via = report["trainer"]["resolved"].to_string();
    assert!(
        via.contains("pyenv shim") && via.contains("3.11-debian"),
        "{via}"
    );
    assert!(s.path().join("runs/pyenv/model.sig").is_file());
    assert!(!err.contains("shim ran"), "{err}");
}

fn sklearn_venv() -> &'static Path {
    crate::interop::sklearn_venv()
}

const SKLEARN_TRAINER: &str = r#"
import json, os
import numpy as np
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx
rows = np.genfromtxt(os.environ["RAMPART_DATA"], delimiter=",", skip_header=1, usecols=(1, 2, 3))
X, y = rows[:, :2].astype(np.float32), rows[:, 2].astype(np.int64)
clf = LogisticRegression().fit(X, y)
onx = to_onnx(clf, X[:1], options={"zipmap": False})
with open(os.path.join(os.environ["RAMPART_OUTPUT"], "model.onnx"), "wb") as f:
    f.write(onx.SerializeToString())
print("accuracy", clf.score(X, y))
"#;

#[test]
fn a_venv_trainer_with_scikit_learn_exports_onnx_with_no_extra_flags() {
    let s = setup();
    let venv = sklearn_venv();
    std::fs::write(s.path().join("code/sk.py"), SKLEARN_TRAINER).unwrap();
    // As an activated venv leaves it: its bin first on PATH, `python3` by name.
    let path = format!("{}:/usr/bin:/bin", venv.join("bin").display());
    let out = s
        .rampart(&[
            "--format",
            "json",
            "train",
            "--data",
            "data/train.csv",
            "--output",
            "runs/sk",
            "--timeout",
            "300",
            "--exec",
            "--",
            "python3",
            "code/sk.py",
        ])
        .env("PATH", &path)
        .env("VIRTUAL_ENV", venv)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("accuracy 0.9") || err.contains("accuracy 1.0"),
        "{err}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["trainer"]["resolved"]
            .to_string()
            .contains("virtual environment"),
        "{report}"
    );
    assert!(s.path().join("runs/sk/model/model.onnx").is_file());
    assert!(s.path().join("runs/sk/model.sig").is_file());
    // And with the interpreter named instead: --python.
    let out = s
        .rampart(&[
            "train",
            "--data",
            "data/train.csv",
            "--output",
            "runs/sk2",
            "--timeout",
            "300",
            "--python",
            venv.join("bin/python").to_str().unwrap(),
            "--exec",
            "--",
            "python3",
            "code/sk.py",
        ])
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `rampart ARGS` as root in a private mount namespace with every cgroup hierarchy unmounted:
/// a container without cgroup delegation.
fn run_without_cgroups(s: &Scratch, args: &[&str]) -> (i32, String, String) {
    let script = "for d in $(awk '$3 ~ /^cgroup/ {print $2}' /proc/self/mounts | sort -r); do umount -l \"$d\"; done; if awk '$3 ~ /^cgroup/' /proc/self/mounts | grep -q .; then echo STILL-MOUNTED >&2; exit 9; fi; exec \"$0\" \"$@\"";
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(assert_cmd::cargo::cargo_bin("rampart"))
        .args(args)
        .current_dir(s.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn as_root_in_a_container_without_cgroups_training_works_and_a_fork_bomb_is_held() {
    assert!(nix::unistd::geteuid().is_root(), "CI runs this as root");
    let s = setup();
    std::fs::write(s.path().join("code/clean.py"), CLEAN_TRAINER).unwrap();
    let (code, out, err) = run_without_cgroups(
        &s,
        &[
            "train",
            "--data",
            "data/train.csv",
            "--output",
            "runs/nocg",
            "--exec",
            "--",
            PYTHON,
            "code/clean.py",
        ],
    );
    assert_eq!(code, 0, "{out} {err}");
    assert!(s.path().join("runs/nocg/model.sig").is_file());
    let run: Value = serde_json::from_str(
        &std::fs::read_to_string(s.path().join("runs/nocg/run.json")).unwrap(),
    )
    .unwrap();
    assert!(run["sandbox"]["run_as"].as_u64().is_some(), "{run}");
    assert_eq!(run["sandbox"]["memory_scope"], "accounted", "{run}");
    std::fs::write(
        s.home().join("rampart.toml"),
        std::fs::read_to_string(s.home().join("rampart.toml")).unwrap()
            + "\n[train]\nprocesses = 24\n",
    )
    .unwrap();
    std::fs::write(
        s.path().join("code/bomb.py"),
        "import os, time\nkids = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(30)\n            os._exit(0)\n        kids += 1\nexcept OSError as e:\n    print('fork refused after', kids, 'children:', e)\n    raise SystemExit(4)\n",
    )
    .unwrap();
    let (code, out, err) = run_without_cgroups(
        &s,
        &[
            "train",
            "--data",
            "data/train.csv",
            "--output",
            "runs/nocg-bomb",
            "--timeout",
            "20",
            "--exec",
            "--",
            PYTHON,
            "code/bomb.py",
        ],
    );
    assert_eq!(code, 1, "{out} {err}");
    let n: u32 = err
        .split("fork refused after ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(n < 24, "{n} children under a limit of 24");
}

#[test]
fn a_chatty_trainer_is_relayed_up_to_a_bound() {
    let s = setup();
    let script = "import sys\nline = 'x' * 1023 + '\\n'\nfor i in range(40 * 1024):\n    sys.stderr.write(line)\n";
    let (code, out, err) = train_with(&s, "chatty", script, &[]);
    assert_eq!(code, 1, "no model was written: {out}");
    assert!(err.len() < 17 << 20, "{} bytes relayed", err.len());
    assert!(
        err.contains("further output is not shown"),
        "{}",
        &err[err.len() - 200..]
    );
    let log = std::fs::metadata(s.path().join("runs/chatty/train.log")).unwrap();
    assert!(
        log.len() >= 40 << 20 && log.len() < 65 << 20,
        "{}",
        log.len()
    );
}

#[test]
fn a_program_that_cannot_start_names_what_is_missing() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = setup();
    let script = s.path().join("code/run.sh");
    std::fs::write(&script, "#!/opt/nowhere/bin/python9\nprint(1)\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, out, err) = s.run(&[
        "train",
        "--data",
        "data/train.csv",
        "--output",
        "runs/nostart",
        "--exec",
        "--",
        "./code/run.sh",
    ]);
    assert_ne!(code, 0, "{out} {err}");
    let all = format!("{out}{err}");
    assert!(all.contains("/opt/nowhere/bin/python9"), "{all}");
    assert!(all.contains("--read"), "{all}");
}

#[test]
fn a_readable_project_directory_never_shows_the_home_inside_it() {
    let s = setup();
    // Another run's plaintext, as a concurrent run would have it.
    let other = s.home().join("tmp/train-other/inputs");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("secret.csv"), "ssn\n078-05-1120\n").unwrap();
    let home = s.home().canonicalize().unwrap();
    let script = format!(
        "{CLEAN_TRAINER}\nhome = {:?}\nprint('home holds', sorted(os.listdir(home)))\nfor p in ('rampart.toml', 'audit/audit.jsonl', 'keys/signing.key.pem', 'tmp/train-other/inputs/secret.csv'):\n    try:\n        open(os.path.join(home, p)).read(); print('READ', p)\n    except OSError as e:\n        print('absent', p, e.errno)\n",
        home.display().to_string()
    );
    // `--read .`: the project directory, which holds the home.
    let (code, out, err) = train_with(&s, "project", &script, &["--read", "."]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(!err.contains("READ "), "{err}");
    assert!(!err.contains("078-05-1120"), "{err}");
    // Only the mount point of this run's own inputs (its output is outside the home here).
    assert!(err.contains("home holds ['tmp']"), "{err}");
    assert!(s.path().join("runs/project/model.sig").is_file());
}

/// `train` of the built-in random forest on the setup's data, then `extra`.
fn built_in<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--data",
        "data/train.csv",
        "--label",
        "label",
        "--ignore",
        "id",
        "--model",
        "random-forest",
    ];
    args.extend_from_slice(extra);
    args
}

/// Under `umask 000` a run's directories and files still get explicit modes: nobody else can
/// edit its metrics, signature or provenance, or add files to it.
#[test]
fn run_outputs_have_explicit_modes_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let s = setup();
    let bin = assert_cmd::cargo::cargo_bin("rampart");
    let out = std::process::Command::new("sh")
        .args(["-c", "umask 000 && exec \"$0\" \"$@\""])
        .arg(&bin)
        .args(built_in(&["--trees", "3", "--output", "runs/open/rf"]))
        .current_dir(s.path())
        .env_remove("RAMPART_HOME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = s.path().join("runs/open/rf");
    for (path, want) in [
        (s.path().join("runs/open"), 0o755),
        (run.clone(), 0o755),
        (run.join("model"), 0o755),
        (run.join("model/model.safetensors"), 0o644),
        (run.join("metrics.json"), 0o644),
        (run.join("model.sig"), 0o644),
        (run.join("provenance.json"), 0o644),
        (run.join("train.log"), 0o644),
        (run.join("run.json"), 0o644),
    ] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
}

/// A Parquet table written by pyarrow, trained on by the user's own trainer: rampart holds a
/// fifth of each class out before the trainer starts (the trainer's copy is Parquet pyarrow
/// reads, with only the training rows), then scores the trainer's scikit-learn model on the
/// held-out rows itself, through ONNX Runtime.
#[test]
fn a_parquet_table_is_split_before_the_trainer_and_its_model_scored() {
    let s = setup();
    let make_data = r#"
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
rng = np.random.default_rng(3)
x = rng.normal(size=(500, 2))
y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
pq.write_table(pa.table({"x0": x[:, 0], "x1": x[:, 1], "y": y}), sys.argv[1], row_group_size=128)
"#;
    let make_model = r#"
import sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx
rng = np.random.default_rng(3)
x = rng.normal(size=(500, 2))
y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
clf = LogisticRegression().fit(x.astype(np.float32), y)
open(sys.argv[1], "wb").write(to_onnx(clf, x[:1].astype(np.float32), options={"zipmap": False}).SerializeToString())
"#;
    let data = s.path().join("data/table.parquet");
    let model = s.path().join("code/model.onnx");
    std::fs::create_dir_all(s.path().join("code")).unwrap();
    for (venv, script, out) in [
        (crate::interop::model_signing_venv(), make_data, &data),
        (crate::interop::sklearn_venv(), make_model, &model),
    ] {
        let o = std::process::Command::new(venv.join("bin/python"))
            .args(["-c", script, out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let trainer = r#"
import os, shutil, sys
import pyarrow.parquet as pq
t = pq.read_table(os.environ["RAMPART_DATA"])
print("trainer rows", t.num_rows, "columns", ",".join(t.column_names), file=sys.stderr)
shutil.copy(sys.argv[1], os.path.join(os.environ["RAMPART_OUTPUT"], "model.onnx"))
"#;
    std::fs::write(s.path().join("code/pq.py"), trainer).unwrap();
    let venv = crate::interop::model_signing_venv();
    let out = s
        .rampart(&[
            "--format",
            "json",
            "train",
            "--data",
            "data/table.parquet",
            "--label",
            "y",
            "--output",
            "runs/pq",
            "--timeout",
            "300",
            "--python",
            venv.join("bin/python").to_str().unwrap(),
            "--exec",
            "--",
            "python3",
            "code/pq.py",
            model.to_str().unwrap(),
        ])
        .env("RAMPART_ONNXRUNTIME", crate::interop::onnxruntime_library())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let computed = &v["computed_metrics"];
    let held = computed["holdout"]["rows"].as_u64().unwrap();
    let train_rows = computed["holdout"]["train_rows"].as_u64().unwrap();
    assert_eq!(held + train_rows, 500, "{computed}");
    assert!((100..=101).contains(&held), "{computed}");
    assert_eq!(computed["holdout"]["stratified"], true, "{computed}");
    // The trainer read its copy with pyarrow: the training rows only, every column.
    assert!(
        err.contains(&format!("trainer rows {train_rows} columns x0,x1,y")),
        "{err}"
    );
    let accuracy = computed["scores"]["accuracy"].as_f64().unwrap_or(0.0);
    assert!(accuracy > 0.9, "{computed}");
    assert_eq!(computed["scores"]["runtime"], "onnxruntime", "{computed}");
}
