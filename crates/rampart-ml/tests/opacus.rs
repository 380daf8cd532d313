//! The accountant against Opacus's RDP analysis (`opacus/accountants/analysis/rdp.py`, which
//! needs only numpy and scipy), loaded by path from `pip install --no-deps opacus` in a venv
//! under target/. ε must agree within 1% over a grid of (q, σ, steps, δ).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::PathBuf;
use std::process::Command;

use rampart_ml::privacy::{DEFAULT_ORDERS, epsilon, noise_for_epsilon};

fn venv() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("venv-opacus");
    if venv.join(".complete").exists() {
        return venv;
    }
    std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let lock = std::fs::File::create(format!("{}.lock", venv.display())).unwrap();
    lock.lock().unwrap();
    if !venv.join(".complete").exists() {
        assert!(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .unwrap()
                .success(),
            "python3 -m venv failed"
        );
        let pip = |args: &[&str]| {
            let out = Command::new(venv.join("bin/pip"))
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "pip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        pip(&["install", "--quiet", "numpy", "scipy"]);
        pip(&["install", "--quiet", "--no-deps", "opacus"]);
        std::fs::write(venv.join(".complete"), "").unwrap();
    }
    venv
}

/// Opacus's ε for each grid point, computed by its own functions.
fn opacus(grid: &[(f64, f64, u64, f64)]) -> Vec<(f64, f64)> {
    let script = r#"
import importlib.util, json, site, sys, os
path = None
for d in site.getsitepackages():
    p = os.path.join(d, "opacus", "accountants", "analysis", "rdp.py")
    if os.path.exists(p):
        path = p
spec = importlib.util.spec_from_file_location("rdp", path)
rdp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rdp)
grid, orders = json.load(sys.stdin)
out = []
for q, sigma, steps, delta in grid:
    r = rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
    eps, order = rdp.get_privacy_spent(orders=orders, rdp=r, delta=delta)
    out.append([float(eps), float(order)])
print(json.dumps(out))
"#;
    let mut child = Command::new(venv().join("bin/python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(&(grid, DEFAULT_ORDERS)).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "opacus reference failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn epsilon_agrees_with_opacus_within_one_percent() {
    let mut grid = Vec::new();
    for q in [0.001, 0.004, 0.01, 0.05, 0.1, 0.3, 1.0] {
        for sigma in [0.6, 0.8, 1.0, 1.3, 2.0, 4.0, 10.0] {
            for steps in [1, 100, 1_000, 10_000] {
                for delta in [1e-5, 1e-7] {
                    grid.push((q, sigma, steps, delta));
                }
            }
        }
    }
    let reference = opacus(&grid);
    let mut worst = (0.0f64, (0.0, 0.0, 0, 0.0));
    for (point, (want, _order)) in grid.iter().zip(&reference) {
        let (got, _) = epsilon(point.0, point.1, point.2, point.3, DEFAULT_ORDERS).unwrap();
        let rel = (got - want).abs() / want.abs().max(1e-12);
        if rel > worst.0 {
            worst = (rel, *point);
        }
        assert!(
            rel <= 0.01,
            "q={} σ={} steps={} δ={}: rampart ε={got}, opacus ε={want}",
            point.0,
            point.1,
            point.2,
            point.3
        );
    }
    eprintln!(
        "worst relative difference {:.2e} at {:?} over {} points",
        worst.0,
        worst.1,
        grid.len()
    );
}

#[test]
fn calibrated_noise_reaches_the_target() {
    for (q, steps, target) in [(0.01, 10_000, 1.0), (0.004, 25_000, 3.0), (0.1, 500, 8.0)] {
        let sigma = noise_for_epsilon(q, steps, 1e-5, target, DEFAULT_ORDERS).unwrap();
        let (want, _) = opacus(&[(q, sigma, steps, 1e-5)])[0];
        assert!(
            want <= target * 1.01 && want >= target * 0.98,
            "σ={sigma}: opacus ε={want}, target {target}"
        );
    }
}
