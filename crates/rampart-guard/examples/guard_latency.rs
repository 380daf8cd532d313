//! Latency of the input rail per prompt, for bench/guard.sh.
//!
//! `guard_latency DATA.jsonl.gz [CHARS]`: every held-out prompt is repeated or cut to CHARS
//! characters (default 2000); each is checked 20 times by `Guard::check_input` (rules,
//! decoding, classifier, topics) after a warm-up, and the classifier alone is timed the same
//! way. Prints one JSON object with p50, p99 and max in microseconds.

use std::io::Read;
use std::time::Instant;

use rampart_guard::classifier::Classifier;
use rampart_guard::{Guard, GuardConfig, normalize};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = args
        .first()
        .ok_or("usage: guard_latency DATA.jsonl.gz [CHARS]")?;
    let chars: usize = args.get(1).map_or(Ok(2000), |c| c.parse())?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(data)?).read_to_string(&mut text)?;
    let mut prompts = Vec::new();
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line)?;
        if r.get("split").and_then(serde_json::Value::as_str) == Some("heldout") {
            let t = r
                .get("text")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            let p: String = t
                .chars()
                .chain(' '.to_string().chars())
                .cycle()
                .take(chars)
                .collect();
            prompts.push(p);
        }
    }
    let guard = Guard::new(GuardConfig::default())?;
    let classifier = Classifier::builtin()?;
    for p in prompts.iter().take(50) {
        std::hint::black_box(guard.check_input(p));
    }
    let (mut full, mut learned) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        for p in &prompts {
            let t = Instant::now();
            std::hint::black_box(guard.check_input(p));
            full.push(t.elapsed().as_secs_f64() * 1e6);
            let plain = normalize::views(p).plain;
            let t = Instant::now();
            std::hint::black_box(classifier.probability(&plain));
            learned.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "prompts": prompts.len(), "chars": chars, "runs": full.len(),
            "input_rail_us": {"p50": pct(&mut full, 0.5), "p99": pct(&mut full, 0.99), "max": pct(&mut full, 1.0)},
            "classifier_us": {"p50": pct(&mut learned, 0.5), "p99": pct(&mut learned, 0.99), "max": pct(&mut learned, 1.0)},
        })
    );
    Ok(())
}
