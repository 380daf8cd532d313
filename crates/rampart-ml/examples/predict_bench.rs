//! Prediction speed of a saved model, for `bench/ml.sh`: single-row latency (each row
//! predicted alone, median and p99 over up to 20,000 rows) and batch throughput (all rows,
//! in parallel). Usage: `predict_bench MODEL.safetensors DATA.csv` — DATA has a header and
//! the model's feature columns first (any further columns are ignored). Prints JSON.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use std::time::Instant;

use rampart_ml::{Estimator, Matrix, Model};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = Model::from_bytes(&std::fs::read(&args[1]).unwrap()).unwrap();
    let d = model.meta.features.len();
    let text = std::fs::read_to_string(&args[2]).unwrap();
    let mut values = Vec::new();
    let mut rows = 0;
    for line in text.lines().skip(1) {
        values.extend(line.split(',').take(d).map(|v| v.parse::<f32>().unwrap()));
        rows += 1;
    }
    drop(text);
    let x = Matrix::new(rows, d, values).unwrap();
    let single = |row: &[f32], out: &mut [f64]| match &model.estimator {
        Estimator::RandomForest(m) => m.predict_proba_into(row, out),
        Estimator::LogisticRegression(m) => m.predict_proba_into(row, out),
        Estimator::IsolationForest(m) => out[0] = m.score_row(row),
        _ => unreachable!(),
    };
    let mut out = vec![0.0; model.estimator.n_classes().max(1)];
    let n = rows.min(20_000);
    let mut lat = Vec::with_capacity(n);
    let mut sink = 0.0;
    for i in 0..n {
        let t = Instant::now();
        single(x.row(i), &mut out);
        lat.push(t.elapsed().as_nanos() as f64 / 1000.0);
        sink += out[0];
    }
    lat.sort_by(f64::total_cmp);
    let t = Instant::now();
    let preds = model.predict(&x).unwrap();
    let batch = t.elapsed().as_secs_f64();
    println!(
        "{{\"rows\": {rows}, \"single_row_us_median\": {:.3}, \"single_row_us_p99\": {:.3}, \
         \"batch_seconds\": {batch:.4}, \"batch_rows_per_second\": {:.0}, \"checksum\": {:.3}}}",
        lat[n / 2],
        lat[n * 99 / 100],
        rows as f64 / batch,
        sink + preds.len() as f64
    );
}
