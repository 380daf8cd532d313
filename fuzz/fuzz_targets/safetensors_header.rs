//! The safetensors header check over arbitrary headers and lengths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (lens, header) = data.split_at(16);
    let header_len = u64::from_le_bytes(lens[..8].try_into().unwrap());
    let file_len = u64::from_le_bytes(lens[8..].try_into().unwrap());
    let _ = rampart_scan::formats::safetensors::check(header_len, header, file_len);
});
