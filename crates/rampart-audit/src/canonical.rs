//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant white space,
//! strings and numbers as `serde_json` writes them. Used for everything rampart hashes or signs
//! in the audit log, so that the same record always has the same bytes whatever produced it.

use serde_json::Value;

/// Writes `value` canonically into a new string.
#[must_use]
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping is deterministic (", \, control characters); reuse it.
    out.push_str(&Value::String(s.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sorted_compact_and_order_independent() {
        let a: Value =
            serde_json::from_str(r#"{"b": 1, "a": {"z": [1, 2.5, "x\n"], "y": null}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"y":null,"z":[1,2.5,"x\n"]},"b":1}"#).unwrap();
        assert_eq!(to_string(&a), r#"{"a":{"y":null,"z":[1,2.5,"x\n"]},"b":1}"#);
        assert_eq!(to_string(&a), to_string(&b));
    }
}
