//! The pickle opcodes of protocols 0–5 and a disassembler over a bounded [`Source`].
//!
//! Arguments are decoded with limits: text lines and kept strings are capped, and large
//! length-prefixed payloads (`BINBYTES8`, a tensor's raw bytes in a legacy checkpoint) are
//! skipped, not stored — a 1 GB pickle costs the same memory as a 1 KB one.

use crate::source::{Source, SourceError};

/// Longest text-line argument (protocol 0 strings, `GLOBAL` names).
pub const MAX_LINE: usize = 256 * 1024;
/// Longest string kept in full for analysis; longer ones keep this prefix.
pub const MAX_KEPT_STRING: usize = 4096;

/// A decoded argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// No argument.
    None,
    /// An integer (also memo indexes, protocol numbers, extension codes).
    Int(i64),
    /// An integer too large for `i64` (its byte length).
    BigInt(usize),
    /// A float.
    Float(f64),
    /// Text (possibly a prefix of a longer string: `truncated`).
    Str {
        /// The kept text.
        text: String,
        /// Whether the original was longer.
        truncated: bool,
    },
    /// Binary data: its length and up to 64 leading bytes.
    Bytes {
        /// Total length.
        len: u64,
        /// Leading bytes.
        prefix: Vec<u8>,
    },
    /// `GLOBAL` / `INST`: module and name.
    Pair(String, String),
}

/// One decoded opcode.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Byte offset of the opcode.
    pub offset: u64,
    /// The opcode byte.
    pub code: u8,
    /// Its argument.
    pub arg: Arg,
}

impl Op {
    /// The opcode's name as in CPython's `pickletools`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        name(self.code).unwrap_or("UNKNOWN")
    }
}

/// Why disassembly stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DisError {
    /// A byte that is no opcode.
    #[error("unknown opcode 0x{byte:02x} at offset {offset}")]
    UnknownOpcode {
        /// Where.
        offset: u64,
        /// The byte.
        byte: u8,
    },
    /// An argument that cannot be decoded.
    #[error("bad argument to {op} at offset {offset}: {reason}")]
    BadArg {
        /// Where.
        offset: u64,
        /// The opcode's name.
        op: &'static str,
        /// Why.
        reason: String,
    },
    /// The source failed or ended.
    #[error("at offset {offset}: {source}")]
    Source {
        /// Where.
        offset: u64,
        /// What happened.
        source: SourceError,
    },
}

/// The opcode names, protocols 0–5.
#[must_use]
pub const fn name(code: u8) -> Option<&'static str> {
    Some(match code {
        b'(' => "MARK",
        b'.' => "STOP",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'F' => "FLOAT",
        b'I' => "INT",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'L' => "LONG",
        b'M' => "BININT2",
        b'N' => "NONE",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'R' => "REDUCE",
        b'S' => "STRING",
        b'T' => "BINSTRING",
        b'U' => "SHORT_BINSTRING",
        b'V' => "UNICODE",
        b'X' => "BINUNICODE",
        b'a' => "APPEND",
        b'b' => "BUILD",
        b'c' => "GLOBAL",
        b'd' => "DICT",
        b'}' => "EMPTY_DICT",
        b'e' => "APPENDS",
        b'g' => "GET",
        b'h' => "BINGET",
        b'i' => "INST",
        b'j' => "LONG_BINGET",
        b'l' => "LIST",
        b']' => "EMPTY_LIST",
        b'o' => "OBJ",
        b'p' => "PUT",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b's' => "SETITEM",
        b't' => "TUPLE",
        b')' => "EMPTY_TUPLE",
        b'u' => "SETITEMS",
        b'G' => "BINFLOAT",
        0x80 => "PROTO",
        0x81 => "NEWOBJ",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        0x8a => "LONG1",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX",
        0x93 => "STACK_GLOBAL",
        0x94 => "MEMOIZE",
        0x95 => "FRAME",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => return None,
    })
}

fn le_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn text(bytes: &[u8]) -> Arg {
    let truncated = bytes.len() > MAX_KEPT_STRING;
    let kept = bytes
        .get(..bytes.len().min(MAX_KEPT_STRING))
        .unwrap_or_default();
    Arg::Str {
        text: String::from_utf8_lossy(kept).into_owned(),
        truncated,
    }
}

/// Reads the next opcode; `Ok(None)` at a clean end of input.
///
/// # Errors
/// [`DisError`] for an unknown opcode, a bad argument, or a truncated input.
pub fn next_op(src: &mut dyn Source) -> Result<Option<Op>, DisError> {
    let offset = src.offset();
    let at = |source: SourceError| DisError::Source { offset, source };
    let Some(code) = src.next_byte().map_err(at)? else {
        return Ok(None);
    };
    let op_name = name(code).ok_or(DisError::UnknownOpcode { offset, byte: code })?;
    let bad = |reason: String| DisError::BadArg {
        offset,
        op: op_name,
        reason,
    };
    let fixed = |src: &mut dyn Source, n: usize| src.take(n).map_err(at);
    let arg = match code {
        b'(' | b'.' | b'0' | b'1' | b'2' | b'N' | b'Q' | b'R' | b'a' | b'b' | b'd' | b'}'
        | b'e' | b'l' | b']' | b'o' | b's' | b't' | b')' | b'u' | 0x81 | 0x85 | 0x86 | 0x87
        | 0x88 | 0x89 | 0x8f | 0x90 | 0x91 | 0x92 | 0x93 | 0x94 | 0x97 | 0x98 => Arg::None,
        b'K' => Arg::Int(i64::from(*fixed(src, 1)?.first().unwrap_or(&0))),
        b'M' => Arg::Int(i64::try_from(le_u64(&fixed(src, 2)?)).unwrap_or(0)),
        b'J' => {
            let b = fixed(src, 4)?;
            let v = u32::try_from(le_u64(&b)).unwrap_or(0);
            Arg::Int(i64::from(v.cast_signed()))
        }
        0x80 | b'h' | b'q' => Arg::Int(i64::from(*fixed(src, 1)?.first().unwrap_or(&0))),
        b'j' | b'r' => Arg::Int(i64::try_from(le_u64(&fixed(src, 4)?)).unwrap_or(0)),
        0x82 => Arg::Int(i64::from(*fixed(src, 1)?.first().unwrap_or(&0))),
        0x83 => Arg::Int(i64::try_from(le_u64(&fixed(src, 2)?)).unwrap_or(0)),
        0x84 => Arg::Int(i64::try_from(le_u64(&fixed(src, 4)?)).unwrap_or(0)),
        0x95 => Arg::Int(i64::try_from(le_u64(&fixed(src, 8)?)).unwrap_or(i64::MAX)),
        b'G' => {
            let b = fixed(src, 8)?;
            let mut arr = [0u8; 8];
            arr.copy_from_slice(&b);
            Arg::Float(f64::from_be_bytes(arr))
        }
        b'F' => {
            let line = src.line(MAX_LINE).map_err(at)?;
            let s = String::from_utf8_lossy(&line);
            Arg::Float(
                s.trim()
                    .parse()
                    .map_err(|_| bad(format!("{s:?} is not a float")))?,
            )
        }
        b'I' | b'L' => {
            let line = src.line(MAX_LINE).map_err(at)?;
            let s = String::from_utf8_lossy(&line);
            let t = s.trim().trim_end_matches('L');
            match t.parse::<i64>() {
                Ok(v) => Arg::Int(v),
                Err(_)
                    if !t.is_empty()
                        && t.trim_start_matches('-')
                            .bytes()
                            .all(|b| b.is_ascii_digit()) =>
                {
                    Arg::BigInt(t.len())
                }
                Err(_) => return Err(bad(format!("{s:?} is not an integer"))),
            }
        }
        0x8a | 0x8b => {
            let n = if code == 0x8a {
                le_u64(&fixed(src, 1)?)
            } else {
                le_u64(&fixed(src, 4)?)
            };
            if n <= 8 {
                let b = fixed(src, usize::try_from(n).unwrap_or(0))?;
                // Two's complement little-endian.
                let mut v: i64 = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                    -1
                } else {
                    0
                };
                for &x in b.iter().rev() {
                    v = (v << 8) | i64::from(x);
                }
                Arg::Int(v)
            } else {
                src.skip(n).map_err(at)?;
                Arg::BigInt(usize::try_from(n).unwrap_or(usize::MAX))
            }
        }
        b'P' | b'g' | b'p' => {
            let line = src.line(MAX_LINE).map_err(at)?;
            if code == b'P' {
                text(&line)
            } else {
                let s = String::from_utf8_lossy(&line);
                Arg::Int(
                    s.trim()
                        .parse()
                        .map_err(|_| bad(format!("{s:?} is not a memo index")))?,
                )
            }
        }
        b'S' => {
            let line = src.line(MAX_LINE).map_err(at)?;
            let trimmed = line.trim_ascii_end();
            let inner = match trimmed {
                [q, rest @ .., e] if (*q == b'\'' || *q == b'"') && q == e => rest,
                _ => return Err(bad("STRING argument is not quoted".into())),
            };
            text(&unescape_py(inner))
        }
        b'V' => text(&src.line(MAX_LINE).map_err(at)?),
        b'c' | b'i' => {
            let module = src.line(MAX_LINE).map_err(at)?;
            let name = src.line(MAX_LINE).map_err(at)?;
            Arg::Pair(
                String::from_utf8_lossy(&module).into_owned(),
                String::from_utf8_lossy(&name).into_owned(),
            )
        }
        b'T' | b'X' | b'B' | b'U' | b'C' | 0x8c | 0x8d | 0x8e | 0x96 => {
            let len = match code {
                b'U' | b'C' | 0x8c => le_u64(&fixed(src, 1)?),
                b'T' | b'X' | b'B' => {
                    let n = le_u64(&fixed(src, 4)?);
                    if code == b'T' && n >= 1 << 31 {
                        return Err(bad("negative BINSTRING length".into()));
                    }
                    n
                }
                _ => le_u64(&fixed(src, 8)?),
            };
            let is_text = matches!(code, b'T' | b'X' | b'U' | 0x8c | 0x8d);
            let keep = len.min(if is_text { MAX_KEPT_STRING as u64 } else { 64 });
            let head = src.take(usize::try_from(keep).unwrap_or(0)).map_err(at)?;
            src.skip(len - keep).map_err(at)?;
            if is_text {
                Arg::Str {
                    text: String::from_utf8_lossy(&head).into_owned(),
                    truncated: len > keep,
                }
            } else {
                Arg::Bytes { len, prefix: head }
            }
        }
        _ => return Err(DisError::UnknownOpcode { offset, byte: code }),
    };
    Ok(Some(Op { offset, code, arg }))
}

/// Python string-literal escapes used by protocol 0 `STRING` (`\x41`, `\n`, `\\`, `\'`).
fn unescape_py(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.iter().copied().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'r') => out.push(b'\r'),
            Some(b'x') => {
                let hi = it.next().and_then(|c| (c as char).to_digit(16));
                let lo = it.next().and_then(|c| (c as char).to_digit(16));
                if let (Some(h), Some(l)) = (hi, lo) {
                    out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                }
            }
            Some(other) => out.push(other),
            None => out.push(b'\\'),
        }
    }
    out
}
