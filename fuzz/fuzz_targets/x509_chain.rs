//! Certificate chains from untrusted bundles: parsing and path validation never panic, never
//! allocate without bound. The input is split into certificates at 0xff 0xfe markers; the last
//! piece is the trusted root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_crypto::x509;

fuzz_target!(|data: &[u8]| {
    let mut pieces: Vec<Vec<u8>> = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(2).position(|w| w == [0xff, 0xfe]) {
        pieces.push(rest[..i].to_vec());
        rest = &rest[i + 2..];
    }
    pieces.push(rest.to_vec());
    let root = pieces.pop().unwrap_or_default();
    let _ = x509::verify_chain(&pieces, &[root]);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = x509::certificates_from_pem(text);
    }
});
