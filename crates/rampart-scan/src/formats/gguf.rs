//! GGUF: header and metadata bounds, and chat templates (Jinja) that reach Python internals
//! (`__class__`, `__globals__`, `__subclasses__`, `os`, `popen`, …) — the template is rendered
//! by the serving stack, and a sandbox escape there runs code.

use std::io::Read;

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

struct R<'a> {
    inner: &'a mut dyn Read,
    read: u64,
}

impl R<'_> {
    fn bytes(&mut self, n: u64) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(usize::try_from(n.min(1 << 20)).unwrap_or(0));
        (&mut self.inner)
            .take(n)
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())?;
        if (out.len() as u64) < n {
            return Err(format!(
                "truncated at byte {}",
                self.read + out.len() as u64
            ));
        }
        self.read += n;
        Ok(out)
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        let got = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| e.to_string())?;
        self.read += got;
        if got < n {
            return Err(format!("truncated at byte {}", self.read));
        }
        Ok(())
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| "short read")?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.bytes(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| "short read")?))
    }
    fn string(&mut self, keep: bool) -> Result<Option<String>, String> {
        let n = self.u64()?;
        if n > MAX_STRING {
            return Err(format!("string of {n} bytes at byte {}", self.read));
        }
        if keep {
            Ok(Some(String::from_utf8_lossy(&self.bytes(n)?).into_owned()))
        } else {
            self.skip(n).map(|()| None)
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
    let mut r = R { inner, read: 0 };
    if let Err(e) = check_inner(&mut r, file_len, &mut problems) {
        problems.push(("gguf-malformed", e));
    }
    problems
}

fn check_inner(r: &mut R<'_>, file_len: u64, problems: &mut Vec<Problem>) -> Result<(), String> {
    r.bytes(4)?;
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(format!("unsupported GGUF version {version}"));
    }
    let tensors = r.u64()?;
    let kvs = r.u64()?;
    if tensors > MAX_COUNT || kvs > MAX_COUNT {
        return Err(format!(
            "{tensors} tensors / {kvs} metadata entries exceed the limit"
        ));
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
                    return Err(format!("metadata array {key:?} has {n} elements"));
                }
                match (et, scalar_size(et)) {
                    (8, _) => {
                        for _ in 0..n {
                            r.string(false)?;
                        }
                    }
                    (_, Some(size)) => {
                        r.skip(size.checked_mul(n).ok_or("array size overflows")?)?;
                    }
                    _ => return Err(format!("metadata array {key:?} has element type {et}")),
                }
            }
            t => r.skip(
                scalar_size(t).ok_or_else(|| format!("metadata {key:?} has unknown type {t}"))?,
            )?,
        }
        if r.read > file_len {
            return Err("metadata runs past the end of the file".into());
        }
    }
    for _ in 0..tensors {
        r.string(false)?;
        let dims = r.u32()?;
        if dims > 8 {
            return Err(format!("a tensor has {dims} dimensions"));
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
        assert_eq!(
            check(&mut &cut[..], cut.len() as u64)[0].0,
            "gguf-malformed"
        );
    }
}
