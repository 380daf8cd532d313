//! Texts to check in bulk: a JSONL batch, one JSON string or `{"id": …, "text": …}` object
//! per line (blank lines skipped), each line at most [`MAX_TEXT`] bytes and the batch at most
//! [`MAX_BATCH`].

use std::io::BufRead;

use serde_json::{Value, json};

/// Most bytes of one text (or one JSONL line).
pub const MAX_TEXT: u64 = 1 << 20;
/// Most bytes of a whole batch: what is read is held in memory until it is checked.
pub const MAX_BATCH: u64 = 256 << 20;

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
/// object with a `"text"` string, or a batch over [`MAX_BATCH`] bytes.
pub fn read_jsonl(reader: impl BufRead, name: &str) -> Result<Vec<Item>, BatchError> {
    read_limited(reader, name, MAX_BATCH)
}

fn read_limited(
    mut reader: impl BufRead,
    name: &str,
    max_batch: u64,
) -> Result<Vec<Item>, BatchError> {
    let bad = |line: usize, reason: String| BatchError::Line {
        name: name.to_owned(),
        line,
        reason,
    };
    let mut items = Vec::new();
    let (mut line, mut total, mut number) = (Vec::new(), 0u64, 0usize);
    loop {
        line.clear();
        // At most one byte past the limit is read: a longer line is refused unread.
        let got = std::io::Read::take(&mut reader, MAX_TEXT + 2)
            .read_until(b'\n', &mut line)
            .map_err(|source| BatchError::Read {
                name: name.to_owned(),
                source,
            })?;
        if got == 0 {
            return Ok(items);
        }
        number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if line.len() as u64 > MAX_TEXT {
            return Err(bad(number, format!("more than {MAX_TEXT} bytes")));
        }
        total += got as u64;
        if total > max_batch {
            return Err(bad(
                number,
                format!("the batch holds more than {max_batch} bytes; split it"),
            ));
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
        // One endless line, no newline: refused after reading just past the limit.
        let mut endless = std::io::BufReader::new(std::io::repeat(b'a'));
        let e = read_jsonl(&mut endless, "b").unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
        // Many lines each within the limit, past the batch's: refused, naming the line.
        let lines = "\"0123456789\"\n".repeat(10);
        assert_eq!(read_limited(lines.as_bytes(), "b", 130).unwrap().len(), 10);
        let e = read_limited(lines.as_bytes(), "b", 129).unwrap_err();
        assert!(matches!(e, BatchError::Line { line: 10, .. }), "{e}");
        assert!(e.to_string().contains("split it"), "{e}");
    }
}
