//! Texts to check in bulk: a JSONL batch, one JSON string or `{"id": …, "text": …}` object
//! per line (blank lines skipped), each line at most [`MAX_TEXT`] bytes.

use std::io::BufRead;

use serde_json::{Value, json};

/// Most bytes of one text (or one JSONL line).
pub const MAX_TEXT: u64 = 1 << 20;

/// One text of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The line's `id`, else its line number.
    pub id: Value,
    /// The text.
    pub text: String,
}

/// Why a batch cannot be read; names the batch and the line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A line is not a text this reads.
    #[error("{name} line {line}: {reason}")]
    Line {
        /// The batch (a file name, or `-`).
        name: String,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The batch cannot be read.
    #[error("{name}: {source}")]
    Read {
        /// The batch.
        name: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Reads every item of a JSONL batch; `name` is what errors call it.
///
/// # Errors
/// See [`BatchError`]: a line over [`MAX_TEXT`] bytes, not JSON, or neither a string nor an
/// object with a `"text"` string.
pub fn read_jsonl(reader: impl BufRead, name: &str) -> Result<Vec<Item>, BatchError> {
    let bad = |line: usize, reason: String| BatchError::Line {
        name: name.to_owned(),
        line,
        reason,
    };
    let mut items = Vec::new();
    let limit = usize::try_from(MAX_TEXT).unwrap_or(usize::MAX);
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|source| BatchError::Read {
            name: name.to_owned(),
            source,
        })?;
        let number = n + 1;
        if line.len() > limit {
            return Err(bad(number, format!("more than {MAX_TEXT} bytes")));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value =
            serde_json::from_slice(&line).map_err(|e| bad(number, format!("not JSON: {e}")))?;
        let item = match value {
            Value::String(text) => Item {
                id: json!(number),
                text,
            },
            Value::Object(o) => match o.get("text").and_then(Value::as_str) {
                Some(t) => Item {
                    id: o.get("id").cloned().unwrap_or(json!(number)),
                    text: t.to_owned(),
                },
                None => return Err(bad(number, "an object needs a \"text\" string".into())),
            },
            _ => {
                return Err(bad(
                    number,
                    "expected a JSON string or {\"id\": …, \"text\": …}".into(),
                ));
            }
        };
        items.push(item);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_objects_are_read_and_bad_lines_named() {
        let text = "\"hi\"\n\n{\"id\": \"a\", \"text\": \"there\"}\n{\"text\": \"x\"}\n";
        let items = read_jsonl(text.as_bytes(), "b.jsonl").unwrap();
        let ids: Vec<Value> = items.iter().map(|i| i.id.clone()).collect();
        assert_eq!(ids, [json!(1), json!("a"), json!(4)]);
        assert_eq!(items[1].text, "there");
        for (bad, line) in [("\"ok\"\n{\"id\": 1}\n", 2), ("[1]\n", 1), ("nope\n", 1)] {
            let e = read_jsonl(bad.as_bytes(), "b.jsonl").unwrap_err();
            assert!(
                matches!(e, BatchError::Line { line: l, .. } if l == line),
                "{bad}: {e}"
            );
            assert!(e.to_string().starts_with("b.jsonl line"), "{e}");
        }
        let long = format!("\"{}\"\n", "a".repeat(usize::try_from(MAX_TEXT).unwrap()));
        assert!(read_jsonl(long.as_bytes(), "b").is_err());
    }
}
