//! The cost of authenticating an unknown key id beside a known id with a wrong secret, through
//! `KeyStore::authenticate` (what every request pays). Prints the median of each over N
//! requests, interleaved so machine noise hits both alike. Used by `bench/serve.sh keys`.
//!
//! `cargo run --release -p rampart-serve --example key_lookup -- [N] [KEYS]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rampart_serve::keys::{KeyStore, Role};
use std::time::Instant;

fn median(v: &mut [u128]) -> u128 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(2000, |a| a.parse().expect("N"));
    let keys: usize = args.next().map_or(100, |a| a.parse().expect("KEYS"));
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(&dir.path().join("apikeys.db")).unwrap();
    let mut tokens = Vec::new();
    for _ in 0..keys {
        let (_, t) = store
            .create(
                Role::Predict,
                None,
                50,
                100,
                None,
                "bench",
                &|k| Ok(k.len().to_string()),
                &mut |_| Ok(()),
            )
            .unwrap();
        tokens.push(t);
    }
    // A known id with a wrong secret, and an unknown id of the same shape.
    let known: Vec<String> = tokens
        .iter()
        .map(|t| format!("{}Xwrong", &t[..t.len() - 6]))
        .collect();
    let unknown: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "rk_{:016x}_{}",
                0xdead_0000_0000_0000_u64 + i as u64,
                "A".repeat(43)
            )
        })
        .collect();
    // Warm up: the first request fills whatever the store caches.
    for t in &known {
        let _ = store.authenticate(t, 0);
    }
    let (mut k, mut u) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let t0 = Instant::now();
        assert!(store.authenticate(&known[i % known.len()], 0).is_err());
        k.push(t0.elapsed().as_nanos());
        let t0 = Instant::now();
        assert!(store.authenticate(&unknown[i], 0).is_err());
        u.push(t0.elapsed().as_nanos());
    }
    let (mk, mu) = (median(&mut k), median(&mut u));
    println!(
        "requests {n} keys {keys}: known id, wrong secret {mk} ns; unknown id {mu} ns; difference {} ns",
        mu as i128 - mk as i128
    );
}
