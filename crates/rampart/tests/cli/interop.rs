//! The reference tools the interop tests run, installed on first use into a venv under
//! `target/` (never into the repository). A tool that cannot be installed fails the test with
//! the reason: these tests never skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A venv under `target/` holding `packages` from PyPI, made on first use by the `python3` on
/// PATH (serialised with any other test process doing the same); a package that cannot be
/// installed fails the test with pip's reason.
pub fn venv(name: &str, packages: &[&str]) -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let marker = venv.join(".complete");
    if marker.exists() {
        return venv;
    }
    std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lock = std::fs::File::create(format!("{}.lock", venv.display())).unwrap();
    lock.lock().unwrap();
    if !marker.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "cannot create a Python venv at {} (python3 -m venv)",
            venv.display()
        );
        let out = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(packages)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot install {} from PyPI into {}: {}",
            packages.join(" "),
            venv.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&marker, "").unwrap();
    }
    venv
}

/// A venv with numpy, scikit-learn and skl2onnx from PyPI, made by the `python3` on PATH
/// (pyenv's, on this machine), under target/ on first use.
pub fn sklearn_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        venv(
            "venv-trainer-sklearn",
            &[
                "numpy==2.4.6",
                "scikit-learn==1.9.1",
                "skl2onnx==1.20.0",
                "onnx==1.23.2",
            ],
        )
    })
}

/// The onnxruntime 1.31.1 wheel (with numpy): the reference runtime, and the shared library
/// the gateway loads (`.ci/run` makes the same venv and exports `RAMPART_ONNXRUNTIME`).
pub fn onnxruntime_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| venv("venv-onnxruntime", &["onnxruntime==1.31.1", "numpy==2.4.6"]))
}

/// ONNX Runtime's shared library in [`onnxruntime_venv`].
pub fn onnxruntime_library() -> PathBuf {
    let site = std::fs::read_dir(onnxruntime_venv().join("lib"))
        .unwrap()
        .map(|e| e.unwrap().path().join("site-packages/onnxruntime/capi"))
        .find(|p| p.is_dir())
        .expect("onnxruntime is installed in its venv");
    std::fs::read_dir(&site)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so.1"))
        })
        .expect("the onnxruntime wheel ships libonnxruntime.so.1.*")
}

/// MLServer 1.7.1 with its scikit-learn runtime: an existing KServe V2 server for
/// `rampart serve --upstream`.
pub fn mlserver_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        venv(
            "venv-mlserver",
            &[
                "mlserver==1.7.1",
                "mlserver-sklearn==1.7.1",
                "scikit-learn==1.9.1",
                "numpy==2.4.6",
            ],
        )
    })
}

/// The interop venv: model-signing 1.1.1 (and pyopenssl, which it imports without declaring),
/// pyarrow 26.0.1 for Parquet files as the Python world writes them, numpy 2.4.6 with
/// scipy 1.17.1 for the drift statistics, tritonclient 2.73.0 (HTTP), a KServe V2 client, and
/// the official openai 3.57.0 client for the guardrail proxy.
pub fn model_signing_venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        venv(
            "venv-interop-5",
            &[
                "model-signing==1.1.1",
                "pyopenssl",
                "pyarrow==26.0.1",
                "numpy==2.4.6",
                "scipy==1.17.1",
                "tritonclient[http]==2.73.0",
                "openai==3.57.0",
            ],
        )
    })
}

/// Runs a venv program in `dir`; returns (success, stdout + stderr).
fn run_in_venv(program: &str, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(model_signing_venv().join("bin").join(program))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `model_signing ARGS` in `dir`; returns (success, stdout + stderr).
pub fn model_signing(dir: &Path, args: &[&str]) -> (bool, String) {
    run_in_venv("model_signing", dir, args)
}

/// Runs a Python snippet in the interop venv.
pub fn python(dir: &Path, code: &str) -> (bool, String) {
    run_in_venv("python", dir, &["-c", code])
}

/// The shared model-signing vectors.
pub fn vectors() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/interop/model-signing");
    assert!(
        dir.join("tiny-model/model.sig").is_file(),
        "interop vectors missing at {}",
        dir.display()
    );
    dir
}

/// A writable copy of the shared tiny model (without its signature unless `keep_sig`).
pub fn tiny_copy(to: &Path, keep_sig: bool) -> PathBuf {
    let dst = to.join("tiny-model");
    copy_dir(&vectors().join("tiny-model"), &dst);
    if !keep_sig {
        std::fs::remove_file(dst.join("model.sig")).unwrap();
    }
    dst
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::write(&target, std::fs::read(entry.path()).unwrap()).unwrap();
        }
    }
}
