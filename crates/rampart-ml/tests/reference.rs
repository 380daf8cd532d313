//! rampart-ml against reference implementations, in a venv under target/ (set up by .ci/run):
//! the privacy accountant against Opacus's RDP analysis (`opacus/accountants/analysis/rdp.py`,
//! which needs only numpy and scipy, loaded by path from `pip install --no-deps opacus`) — ε
//! must agree within 1% over a grid of (q, σ, steps, δ) — and PSI against numpy.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::path::PathBuf;
use std::process::Command;

use rampart_ml::privacy::{DEFAULT_ORDERS, epsilon, noise_for_epsilon};

fn venv() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("venv-ml-reference");
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
        pip(&[
            "install",
            "--quiet",
            "numpy==2.4.6",
            "scipy==1.17.1",
            "scikit-learn==1.9.1",
        ]);
        pip(&["install", "--quiet", "--no-deps", "opacus==1.6.0"]);
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

/// Reads a numeric CSV written by the reference scripts: features, then an integer label.
fn read_xy(path: &std::path::Path) -> (rampart_ml::Matrix, Vec<usize>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let cols = lines.next().unwrap().split(',').count() - 1;
    let (mut v, mut y) = (Vec::new(), Vec::new());
    for line in lines {
        let mut fields: Vec<&str> = line.split(',').collect();
        y.push(fields.pop().unwrap().parse::<usize>().unwrap());
        v.extend(fields.iter().map(|f| f.parse::<f32>().unwrap()));
    }
    (rampart_ml::Matrix::new(y.len(), cols, v).unwrap(), y)
}

fn forest_scores(
    train: &(rampart_ml::Matrix, Vec<usize>),
    test: &(rampart_ml::Matrix, Vec<usize>),
    seed: u64,
) -> (f64, f64) {
    use rampart_ml::forest::{ForestParams, RandomForest, argmax};
    let p = ForestParams {
        seed,
        ..ForestParams::default()
    };
    let rf = RandomForest::fit(&train.0, &train.1, 2, &p).unwrap();
    let proba = rf.predict_proba(&test.0);
    let pred: Vec<usize> = proba.iter().map(|p| argmax(p)).collect();
    let score: Vec<f64> = proba.iter().map(|p| p[1]).collect();
    (
        rampart_ml::metrics::accuracy(&test.1, &pred).unwrap(),
        rampart_ml::metrics::roc_auc(&test.1, &score).unwrap(),
    )
}

/// Writes `train.csv` / `test.csv` for a dataset into `dir` and returns scikit-learn's
/// RandomForestClassifier(n_estimators=100) accuracy and ROC AUC for each seed.
fn sklearn_forest(dir: &std::path::Path, dataset: &str, seeds: u64) -> Vec<(f64, f64)> {
    let script = r#"
import json, sys
import numpy as np
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
out_dir, dataset, seeds = json.load(sys.stdin)
if dataset == "breast-cancer":
    X, y = load_breast_cancer(return_X_y=True)
else:
    X, y = make_classification(n_samples=50_000, n_features=20, n_informative=10,
                               n_redundant=4, flip_y=0.03, class_sep=0.8, random_state=7)
X = X.astype(np.float32)
Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
for name, A, b in (("train", Xtr, ytr), ("test", Xte, yte)):
    with open(f"{out_dir}/{name}.csv", "w") as f:
        f.write(",".join(f"f{i}" for i in range(A.shape[1])) + ",label\n")
        for row, label in zip(A, b):
            f.write(",".join(repr(float(v)) for v in row) + f",{int(label)}\n")
out = []
for s in range(seeds):
    m = RandomForestClassifier(n_estimators=100, random_state=s, n_jobs=-1).fit(Xtr, ytr)
    out.append([accuracy_score(yte, m.predict(Xte)), roc_auc_score(yte, m.predict_proba(Xte)[:, 1])])
print(json.dumps(out))
"#;
    python_json(script, &(dir, dataset, seeds))
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// The issue's bar on scikit-learn's bundled breast-cancer data (test split of 114 rows, so
/// one row is 0.88 points): the default seed reaches accuracy ≥ 0.956 and ROC AUC ≥ 0.992, and
/// over ten seeds rampart's mean accuracy and AUC are within 0.5 points of scikit-learn's.
#[test]
fn random_forest_matches_sklearn_on_breast_cancer() {
    let dir = tempfile::tempdir().unwrap();
    let sk = sklearn_forest(dir.path(), "breast-cancer", 10);
    let train = read_xy(&dir.path().join("train.csv"));
    let test = read_xy(&dir.path().join("test.csv"));
    assert_eq!((train.0.rows(), test.0.rows()), (455, 114));
    let ours: Vec<(f64, f64)> = (0..10).map(|s| forest_scores(&train, &test, s)).collect();
    let (acc, auc) = ours[0];
    assert!(
        acc >= 0.956 && auc >= 0.992,
        "seed 0: accuracy {acc}, AUC {auc}"
    );
    let (ra, rb) = (
        mean(ours.iter().map(|p| p.0)),
        mean(ours.iter().map(|p| p.1)),
    );
    let (sa, sb) = (mean(sk.iter().map(|p| p.0)), mean(sk.iter().map(|p| p.1)));
    eprintln!(
        "breast cancer, 10 seeds: rampart acc {ra:.4} AUC {rb:.4}; sklearn acc {sa:.4} AUC {sb:.4}"
    );
    assert!(
        ra >= sa - 0.005 && rb >= sb - 0.005,
        "rampart {ra} {rb} vs sklearn {sa} {sb}"
    );
}

/// Seeded 50k-row synthetic set (make_classification, 20 features), 80/20 split: accuracy and
/// ROC AUC within 0.5 points of scikit-learn's (both with their default seed 0).
#[test]
fn random_forest_matches_sklearn_on_50k_synthetic() {
    let dir = tempfile::tempdir().unwrap();
    let sk = sklearn_forest(dir.path(), "synthetic", 1);
    let train = read_xy(&dir.path().join("train.csv"));
    let test = read_xy(&dir.path().join("test.csv"));
    assert_eq!((train.0.rows(), test.0.rows()), (40_000, 10_000));
    let (acc, auc) = forest_scores(&train, &test, 0);
    let (sa, sb) = sk[0];
    eprintln!("50k synthetic: rampart acc {acc:.4} AUC {auc:.4}; sklearn acc {sa:.4} AUC {sb:.4}");
    assert!(
        (acc - sa).abs() <= 0.005 && (auc - sb).abs() <= 0.005,
        "rampart {acc} {auc} vs sklearn {sa} {sb}"
    );
}

/// Isolation forest outlier detection on 5,000 Gaussian inliers (10 features) with 100
/// uniform outliers in the bounding box and 100 shifted by 4σ in three features: rampart's
/// ROC AUC is at least scikit-learn's (mean over five seeds each).
#[test]
fn isolation_forest_detects_outliers_at_least_as_well_as_sklearn() {
    use rampart_ml::iforest::{IsolationForest, IsolationParams};
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import json, sys
import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
out_dir, = json.load(sys.stdin)
rng = np.random.default_rng(3)
inl = rng.normal(size=(5000, 10))
lo, hi = inl.min(axis=0), inl.max(axis=0)
uni = rng.uniform(lo, hi, size=(100, 10))
shifted = rng.normal(size=(100, 10)); shifted[:, :3] += 4.0
X = np.vstack([inl, uni, shifted]).astype(np.float32)
y = np.r_[np.zeros(5000), np.ones(200)].astype(int)
with open(f"{out_dir}/data.csv", "w") as f:
    f.write(",".join(f"f{i}" for i in range(10)) + ",label\n")
    for row, label in zip(X, y):
        f.write(",".join(repr(float(v)) for v in row) + f",{label}\n")
aucs = [roc_auc_score(y, -IsolationForest(random_state=s).fit(X).score_samples(X)) for s in range(5)]
print(json.dumps(aucs))
"#;
    let sk: Vec<f64> = python_json(script, &(dir.path(),));
    let (x, y) = read_xy(&dir.path().join("data.csv"));
    let ours: Vec<f64> = (0..5)
        .map(|seed| {
            let f = IsolationForest::fit(
                &x,
                &IsolationParams {
                    seed,
                    ..IsolationParams::default()
                },
            )
            .unwrap();
            rampart_ml::metrics::roc_auc(&y, &f.score(&x)).unwrap()
        })
        .collect();
    let (r, s) = (mean(ours.iter().copied()), mean(sk.iter().copied()));
    eprintln!("isolation forest AUC: rampart {ours:?} mean {r:.4}; sklearn {sk:?} mean {s:.4}");
    assert!(r >= s, "rampart {r} < sklearn {s}");
}

/// DP-SGD logistic regression on the breast-cancer split at ε = 1, δ = 1e-5, clip 1: mean
/// test accuracy over five noise draws, (a) with the CLI's defaults (10 expected epochs,
/// expected batch 64, learning rate 0.5) and features scaled by the data's own min/max — a
/// step outside the ε guarantee — and (b) with coarse public bounds (0 to the next power of
/// ten of each feature's maximum, an order of magnitude a domain expert could state), which
/// the guarantee covers, at 30 epochs and learning rate 2.
#[test]
fn dp_logistic_regression_accuracy_at_epsilon_one() {
    use rampart_ml::forest::argmax;
    use rampart_ml::linear::{DpParams, LogisticParams, LogisticRegression};
    let dir = tempfile::tempdir().unwrap();
    sklearn_forest(dir.path(), "breast-cancer", 0);
    let (x, y) = read_xy(&dir.path().join("train.csv"));
    let (xt, yt) = read_xy(&dir.path().join("test.csv"));
    let bounds: Vec<(f64, f64)> = (0..x.cols())
        .map(|j| {
            let max = x.column(j).into_iter().fold(0.0f32, f32::max);
            (0.0, 10f64.powf(f64::from(max).log10().ceil()))
        })
        .collect();
    let run = |epochs: usize, learning_rate: f64, bounds: Option<Vec<(f64, f64)>>| {
        mean((0..5).map(|seed| {
            let p = LogisticParams {
                epochs,
                batch_size: 64,
                learning_rate,
                dp: Some(DpParams {
                    epsilon: 1.0,
                    delta: 1e-5,
                    feature_bounds: bounds.clone(),
                    insecure_noise_seed: Some(seed),
                    ..DpParams::default()
                }),
                ..LogisticParams::default()
            };
            let m = LogisticRegression::fit(&x, &y, 2, &p).unwrap();
            assert!(m.privacy().unwrap().epsilon <= 1.0);
            let pred: Vec<usize> = m.predict_proba(&xt).iter().map(|p| argmax(p)).collect();
            rampart_ml::metrics::accuracy(&yt, &pred).unwrap()
        }))
    };
    let data = run(10, 0.5, None);
    let public = run(30, 2.0, Some(bounds));
    eprintln!("DP-SGD ε=1 breast cancer: data min/max {data:.4}, public bounds {public:.4}");
    assert!(data >= 0.93, "data min/max: {data}");
    assert!(public >= 0.83, "public bounds: {public}");
}
