//! The model loader over arbitrary bytes: never a panic; whatever loads predicts without
//! panicking on any input row and survives a write/read round trip unchanged. Seed it with
//! `fuzz/seeds/model_loader/` (tiny models of each kind) so mutations reach the validators.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_ml::{Matrix, Model};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = Model::from_bytes(data) else {
        return;
    };
    let d = model.meta.features.len();
    if d <= 64 {
        let rows: Vec<f32> = (0..4 * d).map(|i| [-1e30, -1.0, 0.0, 1e30][i % 4]).collect();
        let x = Matrix::new(4, d, rows).unwrap();
        let _ = model.predict(&x).unwrap();
    }
    let bytes = model.to_bytes().unwrap();
    assert_eq!(Model::from_bytes(&bytes).unwrap(), model);
});
