//! The zip walker over arbitrary bytes: lists or reports, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut cursor = std::io::Cursor::new(data);
    if let Ok(listing) = rampart_scan::zip::list(&mut cursor, data.len() as u64) {
        assert!(listing.entries.len() <= rampart_scan::zip::MAX_ENTRIES * 2);
    }
});
