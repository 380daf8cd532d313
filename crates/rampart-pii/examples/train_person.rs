//! Trains the PERSON tagger from `data/person-train.jsonl.gz` and the shipped gazetteers.
//!
//! usage: train_person [TRAIN_JSONL_GZ] [OUT_SAFETENSORS]
//! Prints token-level and name-level precision and recall on the held-out tenth.

use std::collections::HashMap;

use rampart_pii::person;
use sha2::{Digest, Sha256};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = args
        .next()
        .unwrap_or_else(|| "crates/rampart-pii/data/person-train.jsonl.gz".into());
    let out = args
        .next()
        .unwrap_or_else(|| "crates/rampart-pii/model/person-tagger.safetensors".into());
    let bytes = std::fs::read(&data)?;
    let sentences = person::read_sentences(&bytes)?;
    let gaz = person::shipped_gazetteer()?;
    let model = person::train(&sentences, &gaz)?;
    let meta = person::metadata(&hex::encode(Sha256::digest(&bytes)));
    std::fs::write(
        &out,
        model.to_safetensors(meta.into_iter().collect::<HashMap<_, _>>())?,
    )?;
    let tagger = person::Tagger::new(gaz, model);
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (n, s) in sentences.iter().enumerate() {
        if !person::held_out(n) {
            continue;
        }
        let found = tagger.names(&s.text);
        for f in &found {
            if s.spans.iter().any(|&(a, b)| f.start < b && a < f.end) {
                tp += 1;
            } else {
                fp += 1;
                if fp <= 15 {
                    eprintln!("fp: {:?} in {:?}", s.text.get(f.start..f.end), s.text);
                }
            }
        }
        for &(a, b) in &s.spans {
            if !found.iter().any(|f| f.start < b && a < f.end) {
                fn_ += 1;
                if fn_ <= 15 {
                    eprintln!("fn: {:?} in {:?}", s.text.get(a..b), s.text);
                }
            }
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let (p, r) = (
        tp as f64 / (tp + fp).max(1) as f64,
        tp as f64 / (tp + fn_).max(1) as f64,
    );
    println!(
        "held-out names: precision {p:.3} recall {r:.3} ({tp} found, {fp} false, {fn_} missed)"
    );
    Ok(())
}
