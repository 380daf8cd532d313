//! Trains the guard's injection classifier from the labelled prompt set.
//!
//! `cargo run --release -p rampart-guard --example train_classifier -- DATA.jsonl.gz OUT.safetensors`
//!
//! [`rampart_guard::classifier::fit_dataset`] does the work: fit on `train`, choose the logit
//! offset on `valid`, never read `heldout`. The same data gives the same weights, bit for bit
//! (a test checks the shipped model against it).

use std::io::Read;

use rampart_guard::classifier::fit_dataset;
use sha2::Digest;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [data, out] = args.as_slice() else {
        return Err("usage: train_classifier DATA.jsonl.gz OUT.safetensors".into());
    };
    let raw = std::fs::read(data).map_err(|e| format!("{data}: {e}"))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_string(&mut text)
        .map_err(|e| format!("{data}: {e}"))?;
    let (model, r) = fit_dataset(&text, &hex::encode(sha2::Sha256::digest(&raw)))
        .map_err(|e| format!("{data}: {e}"))?;
    std::fs::write(out, model.to_safetensors()?).map_err(|e| format!("{out}: {e}"))?;
    println!(
        "trained on {} texts; validation ({} texts): recall {:.3}, false positives {:.3} at offset {}",
        r.train, r.valid, r.recall, r.false_positive_rate, r.offset
    );
    for cap in [0.0025, 0.005, 0.01, 0.02, 0.03] {
        if let Some(&(o, rec, f)) = r
            .curve
            .iter()
            .filter(|c| c.2 <= cap)
            .max_by(|a, b| a.1.total_cmp(&b.1))
        {
            println!("  at most {cap}: recall {rec:.3}, false positives {f:.4} (offset {o})");
        }
    }
    Ok(())
}
