//! Pickle analysis without unpickling: [`ops`] disassembles every opcode of protocols 0–5,
//! [`vm`] runs a symbolic stack/memo machine over them, [`policy`] classifies what is imported.

pub mod ops;
pub mod policy;
pub mod vm;

use std::collections::HashMap;

pub use crate::source::{ReadSource, Source, SourceError};
pub use policy::Class;
pub use vm::{Analysis, Anomaly, Call, Import, Limits};

/// The most pickles read back to back from one stream (legacy PyTorch writes five).
pub const MAX_PICKLES_PER_STREAM: usize = 64;

/// Analyses every pickle in a stream, back to back, until the end of the stream or until the
/// bytes after a pickle are not a pickle (reported once, as trailing data).
pub fn analyse_stream(
    src: &mut dyn Source,
    limits: &Limits,
    allow: &[String],
    ext: &HashMap<i64, (String, String)>,
) -> (Vec<Analysis>, Option<u64>) {
    let mut out: Vec<Analysis> = Vec::new();
    loop {
        match src.at_end() {
            Ok(true) | Err(_) => return (out, None),
            Ok(false) => {}
        }
        if out.len() >= MAX_PICKLES_PER_STREAM {
            return (out, Some(src.offset()));
        }
        let start = src.offset();
        let analysis = vm::analyse(src, limits, allow, ext);
        let first = out.is_empty();
        // After the first pickle, data that fails at once and imports nothing is not a pickle
        // (e.g. the raw tensor bytes of a legacy checkpoint): stop there.
        if !first && !analysis.complete && analysis.imports.is_empty() && analysis.ops < 4 {
            return (out, Some(start));
        }
        let complete = analysis.complete;
        out.push(analysis);
        if !complete {
            return (out, None);
        }
    }
}

/// Whether `head` (the first bytes of some content) is a pickle: a `PROTO` opcode, or opcodes
/// that parse cleanly and either reach `STOP` or import something early on.
#[must_use]
pub fn looks_like_pickle(head: &[u8]) -> bool {
    match head {
        [0x80, p, ..] if *p <= 5 => return true,
        [] => return false,
        _ => {}
    }
    let mut src = ReadSource::new(head);
    let mut ops = 0;
    loop {
        match ops::next_op(&mut src) {
            Ok(Some(op)) => {
                ops += 1;
                if op.code == b'.' {
                    return ops >= 2;
                }
                if matches!(op.code, b'c' | b'i')
                    && let ops::Arg::Pair(m, n) = &op.arg
                {
                    return is_identifier_path(m) && is_identifier_path(n);
                }
                if ops > 4096 {
                    return false;
                }
            }
            // The head was cut mid-stream: plausible only if it parsed for a while.
            Err(ops::DisError::Source { .. }) | Ok(None) => return ops >= 64,
            Err(_) => return false,
        }
    }
}

fn is_identifier_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'))
}
