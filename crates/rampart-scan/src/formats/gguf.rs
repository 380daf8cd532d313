//! GGUF: header and metadata bounds, and chat templates (Jinja) that reach Python internals
//! (`__class__`, `__globals__`, `__subclasses__`, `os`, `popen`, …) — the template is rendered
//! by the serving stack, and a sandbox escape there runs code.

use std::io::{BufReader, Read};

use crate::source::{ReadSource, Source, SourceError};

/// Most tensors or metadata entries accepted.
pub const MAX_COUNT: u64 = 10_000_000;
/// Longest string accepted (chat templates, tokens).
pub const MAX_STRING: u64 = 64 << 20;
/// Most elements in one metadata array.
pub const MAX_ARRAY: u64 = 50_000_000;

/// What the scan found, as `(rule, message)`.
pub type Problem = (&'static str, String);

/// Expressions in a chat template that reach outside Jinja's sandbox.
const TEMPLATE_MARKERS: &[&str] = &[
    "__class__",
    "__globals__",
    "__subclasses__",
    "__builtins__",
    "__import__",
    "__mro__",
    "__base__",
    "__bases__",
    "__init__",
    "__dict__",
    "__getattribute__",
    "__reduce__",
    "__code__",
    "func_globals",
    "os.popen",
    "popen(",
    "subprocess",
    "os.system",
    "eval(",
    "exec(",
    "import os",
    "lipsum",
    "cycler",
    "joiner",
    "namespace.__",
    "request.application",
    "config.items",
    "self._TemplateReference",
];

/// Why a GGUF header could not be walked: the `gguf-malformed` finding's message.
#[derive(Debug, thiserror::Error)]
enum Malformed {
    #[error("truncated at byte {0}")]
    Truncated(u64),
    #[error("read error at byte {at}: {source}")]
    Read { at: u64, source: SourceError },
    #[error("unsupported GGUF version {0}")]
    Version(u32),
    #[error("{tensors} tensors / {kvs} metadata entries exceed the limit")]
    Counts { tensors: u64, kvs: u64 },
    #[error("string of {len} bytes at byte {at}")]
    String { len: u64, at: u64 },
    #[error("metadata array {key:?} has {n} elements")]
    ArrayLength { key: String, n: u64 },
    #[error("array size overflows")]
    ArraySize,
    #[error("metadata array {key:?} has element type {t}")]
    ArrayType { key: String, t: u32 },
    #[error("metadata {key:?} has unknown type {t}")]
    ValueType { key: String, t: u32 },
    #[error("metadata runs past the end of the file")]
    PastEnd,
    #[error("a tensor has {0} dimensions")]
    Dimensions(u32),
}

/// The shared bounded source, with GGUF's own errors.
struct R<S: Source> {
    src: S,
}

impl<S: Source> R<S> {
    fn err(&self, e: SourceError) -> Malformed {
        match e {
            SourceError::Eof => Malformed::Truncated(self.src.offset()),
            source => Malformed::Read {
                at: self.src.offset(),
                source,
            },
        }
    }
    fn offset(&self) -> u64 {
        self.src.offset()
    }
    fn skip(&mut self, n: u64) -> Result<(), Malformed> {
        self.src.skip(n).map_err(|e| self.err(e))
    }
    fn u32(&mut self) -> Result<u32, Malformed> {
        self.src.u32_le().map_err(|e| self.err(e))
    }
    fn u64(&mut self) -> Result<u64, Malformed> {
        self.src.u64_le().map_err(|e| self.err(e))
    }
    fn string(&mut self, keep: bool) -> Result<Option<String>, Malformed> {
        let len = self.u64()?;
        if len > MAX_STRING {
            return Err(Malformed::String {
                len,
                at: self.offset(),
            });
        }
        if keep {
            // MAX_STRING fits in usize on every target rampart builds for.
            let n = usize::try_from(len).map_err(|_| Malformed::String {
                len,
                at: self.offset(),
            })?;
            let bytes = self.src.take(n).map_err(|e| self.err(e))?;
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        } else {
            self.skip(len).map(|()| None)
        }
    }
}

const fn scalar_size(t: u32) -> Option<u64> {
    Some(match t {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        10..=12 => 8,
        _ => return None,
    })
}

/// Checks a GGUF stream (starting at the magic).
pub fn check(inner: &mut dyn Read, file_len: u64) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut r = R {
        src: ReadSource::new(BufReader::new(inner)),
    };
    if let Err(e) = check_inner(&mut r, file_len, &mut problems) {
        problems.push(("gguf-malformed", e.to_string()));
    }
    problems
}

fn check_inner<S: Source>(
    r: &mut R<S>,
    file_len: u64,
    problems: &mut Vec<Problem>,
) -> Result<(), Malformed> {
    r.skip(4)?;
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(Malformed::Version(version));
    }
    let tensors = r.u64()?;
    let kvs = r.u64()?;
    if tensors > MAX_COUNT || kvs > MAX_COUNT {
        return Err(Malformed::Counts { tensors, kvs });
    }
    for _ in 0..kvs {
        let key = r.string(true)?.unwrap_or_default();
        let t = r.u32()?;
        let is_template =
            key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.");
        match t {
            8 => {
                let value = r.string(is_template)?;
                if let Some(template) = value.filter(|_| is_template) {
                    let hits: Vec<&str> = TEMPLATE_MARKERS
                        .iter()
                        .copied()
                        .filter(|m| template.contains(m))
                        .collect();
                    if !hits.is_empty() {
                        problems.push(("gguf-chat-template-injection", format!("{key} reaches Python internals ({}): a template that escapes the Jinja sandbox runs code when the model serves a chat", hits.join(", "))));
                    }
                }
            }
            9 => {
                let et = r.u32()?;
                let n = r.u64()?;
                if n > MAX_ARRAY {
                    return Err(Malformed::ArrayLength { key, n });
                }
                match (et, scalar_size(et)) {
                    (8, _) => {
                        for _ in 0..n {
                            r.string(false)?;
                        }
                    }
                    (_, Some(size)) => {
                        r.skip(size.checked_mul(n).ok_or(Malformed::ArraySize)?)?;
                    }
                    _ => return Err(Malformed::ArrayType { key, t: et }),
                }
            }
            t => r.skip(scalar_size(t).ok_or(Malformed::ValueType { key, t })?)?,
        }
        if r.offset() > file_len {
            return Err(Malformed::PastEnd);
        }
    }
    for _ in 0..tensors {
        r.string(false)?;
        let dims = r.u32()?;
        if dims > 8 {
            return Err(Malformed::Dimensions(dims));
        }
        r.skip(u64::from(dims) * 8)?;
        r.u32()?;
        let offset = r.u64()?;
        if offset > file_len {
            problems.push((
                "gguf-malformed",
                format!("a tensor's data offset {offset} is beyond the file"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend_from_slice(&(v.len() as u64).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }

    fn gguf(template: &str) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        out.extend_from_slice(&2u64.to_le_bytes());
        s(&mut out, "general.name");
        out.extend_from_slice(&8u32.to_le_bytes());
        s(&mut out, "tiny");
        s(&mut out, "tokenizer.chat_template");
        out.extend_from_slice(&8u32.to_le_bytes());
        s(&mut out, template);
        out
    }

    #[test]
    fn templates() {
        let ok = gguf("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}");
        assert!(check(&mut &ok[..], ok.len() as u64).is_empty());
        let bad = gguf("{{ cycler.__init__.__globals__.os.popen('id').read() }}");
        let p = check(&mut &bad[..], bad.len() as u64);
        assert_eq!(p[0].0, "gguf-chat-template-injection");
        let cut = &bad[..bad.len() - 10];
        let p = check(&mut &cut[..], cut.len() as u64);
        assert_eq!(p[0].0, "gguf-malformed");
        assert_eq!(p[0].1, format!("truncated at byte {}", cut.len()));
    }

    #[test]
    fn a_malformed_header_names_what_is_wrong() {
        let mut v1 = gguf("x");
        v1[4] = 1;
        assert_eq!(
            check(&mut &v1[..], v1.len() as u64),
            [("gguf-malformed", "unsupported GGUF version 1".to_owned())]
        );
        let mut many = gguf("x");
        many[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let p = check(&mut &many[..], many.len() as u64);
        assert!(p[0].1.contains("exceed the limit"), "{p:?}");
        // A string longer than the limit is refused before anything is read into memory.
        let mut long = b"GGUF".to_vec();
        long.extend_from_slice(&3u32.to_le_bytes());
        long.extend_from_slice(&0u64.to_le_bytes());
        long.extend_from_slice(&1u64.to_le_bytes());
        long.extend_from_slice(&(MAX_STRING + 1).to_le_bytes());
        let p = check(&mut &long[..], u64::MAX);
        assert_eq!(
            p[0].1,
            format!("string of {} bytes at byte 32", MAX_STRING + 1)
        );
        // An unknown value type names its key.
        let mut odd = b"GGUF".to_vec();
        odd.extend_from_slice(&3u32.to_le_bytes());
        odd.extend_from_slice(&0u64.to_le_bytes());
        odd.extend_from_slice(&1u64.to_le_bytes());
        s(&mut odd, "general.odd");
        odd.extend_from_slice(&77u32.to_le_bytes());
        let p = check(&mut &odd[..], odd.len() as u64);
        assert_eq!(p[0].1, "metadata \"general.odd\" has unknown type 77");
    }
}
