//! The pickle disassembler and symbolic machine over arbitrary bytes: never panics, bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_scan::pickle::{Limits, ReadSource, analyse_stream, looks_like_pickle};

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_pickle(data);
    let limits = Limits { max_ops: 100_000, ..Limits::default() };
    let mut src = ReadSource::new(data);
    let (analyses, _) = analyse_stream(&mut src, &limits, &[], &Default::default());
    for a in analyses {
        assert!(a.end as usize <= data.len());
    }
});
