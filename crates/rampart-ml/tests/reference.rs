//! rampart-ml against reference implementations, in a venv under target/ (set up by .ci/run):
//! the privacy accountant against Opacus's RDP analysis (`opacus/accountants/analysis/rdp.py`,
//! which needs only numpy and scipy, loaded by path from `pip install --no-deps opacus`) — ε
//! must agree within 1% over a grid of (q, σ, steps, δ) — and PSI against numpy.

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

/// Runs a Python script in the reference venv with `input` as JSON on stdin; parses its JSON
/// stdout.
fn python_json<T: serde::de::DeserializeOwned>(script: &str, input: &impl serde::Serialize) -> T {
    let mut child = Command::new(venv().join("bin/python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        &serde_json::to_vec(input).unwrap(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference script failed");
    serde_json::from_slice(&out.stdout).unwrap()
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
    python_json(script, &(grid, DEFAULT_ORDERS))
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

/// PSI's binning and arithmetic against numpy (same venv): deciles by `np.quantile` (linear),
/// bins `(-inf, e1) [e1, e2) … [e9, inf)` via `np.searchsorted(edges, x, side="right")`,
/// shares floored at 1e-4.
#[test]
fn psi_matches_numpy() {
    // Deterministic data with ties and a shifted, rescaled current sample.
    let reference: Vec<f64> = (0..5000u32)
        .map(|i| f64::from((i * 7919) % 1000) / 10.0)
        .collect();
    let current: Vec<f64> = (0..3000u32)
        .map(|i| f64::from((i * 104_729) % 1300) / 10.0 - 5.0)
        .collect();
    let script = r#"
import json, sys
import numpy as np
ref, cur = (np.array(x, dtype=float) for x in json.load(sys.stdin))
edges = np.quantile(ref, [i / 10 for i in range(1, 10)])
def shares(x):
    bins = np.searchsorted(edges, x, side="right")
    return np.bincount(bins, minlength=10) / len(x)
r, c = np.maximum(shares(ref), 1e-4), np.maximum(shares(cur), 1e-4)
print(json.dumps({"edges": edges.tolist(), "psi": float(np.sum((c - r) * np.log(c / r)))}))
"#;
    let v: serde_json::Value = python_json(script, &(&reference, &current));
    let edges = rampart_ml::drift::decile_edges(&reference);
    for (a, b) in edges.iter().zip(v["edges"].as_array().unwrap()) {
        assert!(
            (a - b.as_f64().unwrap()).abs() < 1e-9,
            "{edges:?} vs {}",
            v["edges"]
        );
    }
    let psi = rampart_ml::drift::psi(&reference, &current);
    let want = v["psi"].as_f64().unwrap();
    assert!(
        (psi - want).abs() < 1e-9 * want.abs().max(1.0),
        "rampart {psi} numpy {want}"
    );
}

/// The two-sample KS test against `scipy.stats.ks_2samp` (method "auto") across the regimes of
/// its p-value: exact equal and unequal sizes, ties, and the asymptotic branch's Durbin matrix,
/// Pomeranz, Pelz–Good and Smirnov cases.
#[test]
fn ks_matches_scipy() {
    use rampart_ml::split::SplitMix64;
    let configs: &[(usize, usize, f64, bool)] = &[
        (5, 6, 0.5, false),
        (30, 30, 0.3, false),
        (100, 100, 0.0, false),
        (200, 350, 0.2, false),
        (1000, 999, 0.1, false),
        (3000, 7000, 0.05, false),
        (10_000, 10_000, 0.02, false),
        (500, 800, 0.3, true),
        (20_000, 100, 0.0, false),
        (20_000, 100, 0.3, false),
        (20_000, 100, 1.0, false),
        (20_000, 130, 0.15, false),
        (20_000, 5000, 0.0, false),
        (20_000, 5000, 0.03, false),
        (20_000, 5000, 0.1, false),
        (50_000, 50_000, 0.01, false),
        (300_000, 300_000, 0.0, false),
        (300_000, 300_000, 0.005, false),
    ];
    let mut rng = SplitMix64::new(42);
    let mut samples = Vec::new();
    for &(n1, n2, shift, ties) in configs {
        let mut draw = |n: usize, s: f64| -> Vec<f64> {
            (0..n)
                .map(|_| {
                    let v = rng.normal() + s;
                    if ties { (v * 3.0).round() } else { v }
                })
                .collect()
        };
        samples.push((draw(n1, 0.0), draw(n2, shift)));
    }
    let script = r#"
import json, sys
from scipy.stats import ks_2samp
out = []
for a, b in json.load(sys.stdin):
    r = ks_2samp(a, b)
    out.append([float(r.statistic), float(r.pvalue)])
print(json.dumps(out))
"#;
    let want: Vec<(f64, f64)> = python_json(script, &samples);
    for ((a, b), (d, p)) in samples.iter().zip(&want) {
        let got = rampart_ml::ks::ks_2samp(a, b).unwrap();
        let ctx = format!(
            "n1={} n2={}: rampart D={} p={} ({:?}), scipy D={d} p={p}",
            a.len(),
            b.len(),
            got.statistic,
            got.p_value,
            got.method
        );
        assert!((got.statistic - d).abs() < 1e-12, "{ctx}");
        assert!(
            (got.p_value - p).abs() <= 1e-7 * p.max(1e-300) || (got.p_value - p).abs() < 1e-14,
            "{ctx}"
        );
        eprintln!("{ctx}");
    }
}
