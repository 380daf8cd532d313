//! The held-out split over arbitrary bytes: never a panic, and when it succeeds every data
//! record goes to exactly one side, both sides start with the same header, the digests are of
//! the bytes written, and the same input gives the same split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_data::holdout::{SplitSpec, split_csv};

fn split(data: &[u8], fraction: f64) -> Option<(Vec<u8>, Vec<u8>, rampart_data::holdout::Split)> {
    let (mut train, mut held) = (Vec::new(), Vec::new());
    let bytes = data.to_vec();
    let s = split_csv(
        std::path::Path::new("fuzz.csv"),
        &|| Ok(std::io::Cursor::new(bytes.clone())),
        SplitSpec {
            label: "y",
            fraction,
            seed: 7,
        },
        &mut train,
        &mut held,
    )
    .ok()?;
    Some((train, held, s))
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    // The first byte picks the fraction, (0, 1) and its edges.
    let fraction = f64::from(first) / 255.0;
    let Some((train, held, s)) = split(rest, fraction) else {
        return;
    };
    assert_eq!(rampart_crypto::sha256(&train), s.train_digest);
    assert_eq!(rampart_crypto::sha256(&held), s.holdout_digest);
    let header = |b: &[u8]| b.split(|c| *c == b'\n').next().map(<[u8]>::to_vec);
    assert_eq!(header(&train), header(&held));
    assert!(s.holdout_rows > 0 && s.train_rows > 0);
    let again = split(rest, fraction).expect("the same input splits the same way");
    assert_eq!((again.0, again.1), (train, held));
});
