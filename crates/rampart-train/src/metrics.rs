//! `metrics.json`: what a trainer may report, checked before it is recorded.
//!
//! The schema: one JSON object of at most [`MAX_KEYS`] entries; each key 1–64 characters of
//! letters, digits, `_`, `-`, `.` and `/`; each value a number, a boolean, null, a string of
//! at most 256 characters, a list (at most 10,000 items) of numbers, of such strings (class
//! names) or of lists of numbers (a confusion matrix), or an object of such values (one level of nesting: per-class
//! scores). The file is at most [`MAX_BYTES`].

use std::io::Read;
use std::path::Path;

use serde_json::Value;

/// Largest metrics file.
pub const MAX_BYTES: u64 = 1 << 20;
/// Most entries at one level.
pub const MAX_KEYS: usize = 256;
const MAX_STRING: usize = 256;
const MAX_ITEMS: usize = 10_000;

fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "metric name {:?} is not 1-64 letters, digits, '_', '-', '.' or '/'",
            key.chars().take(80).collect::<String>()
        ))
    }
}

fn check_value(key: &str, v: &Value, depth: usize) -> Result<(), String> {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        Value::String(s) if s.chars().count() <= MAX_STRING => Ok(()),
        Value::String(_) => Err(format!(
            "{key}: strings are at most {MAX_STRING} characters"
        )),
        Value::Array(items) => {
            if items.len() > MAX_ITEMS {
                return Err(format!("{key}: lists are at most {MAX_ITEMS} items"));
            }
            for item in items {
                match item {
                    Value::Number(_) => {}
                    Value::String(t) if t.chars().count() <= MAX_STRING => {}
                    Value::Array(row) => {
                        if row.len() > MAX_ITEMS || !row.iter().all(Value::is_number) {
                            return Err(format!(
                                "{key}: a nested list holds at most {MAX_ITEMS} numbers"
                            ));
                        }
                    }
                    _ => {
                        return Err(format!(
                            "{key}: lists hold numbers, short strings or lists of numbers"
                        ));
                    }
                }
            }
            Ok(())
        }
        Value::Object(map) if depth == 0 => {
            if map.len() > MAX_KEYS {
                return Err(format!("{key}: at most {MAX_KEYS} entries"));
            }
            for (k, v) in map {
                check_key(k)?;
                check_value(&format!("{key}.{k}"), v, depth + 1)?;
            }
            Ok(())
        }
        Value::Object(_) => Err(format!("{key}: objects nest one level at most")),
    }
}

/// Metrics that may not be kept: what is wrong, naming the metric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetricsError(pub String);

impl MetricsError {
    /// Whether the message contains `needle` (for tests and callers matching a case).
    #[must_use]
    pub fn contains(&self, needle: &str) -> bool {
        self.0.contains(needle)
    }
}

/// Checks parsed metrics against the schema.
///
/// # Errors
/// A [`MetricsError`] naming the offending metric.
pub fn check(v: &Value) -> Result<(), MetricsError> {
    let Value::Object(map) = v else {
        return Err(MetricsError(
            "metrics.json must hold one JSON object".into(),
        ));
    };
    if map.len() > MAX_KEYS {
        return Err(MetricsError(format!("at most {MAX_KEYS} metrics")));
    }
    for (k, v) in map {
        check_key(k).map_err(MetricsError)?;
        check_value(k, v, 0).map_err(MetricsError)?;
    }
    Ok(())
}

/// Reads and checks a metrics file.
///
/// # Errors
/// A [`MetricsError`] saying what is wrong (size, syntax, schema).
pub fn read(path: &Path) -> Result<Value, MetricsError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| MetricsError(format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(MetricsError(format!("larger than {MAX_BYTES} bytes")));
    }
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| MetricsError(format!("not JSON: {e}")))?;
    check(&v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::check;

    #[test]
    fn accepts_the_metrics_trainers_write() {
        check(&json!({
            "accuracy": 0.93, "f1_macro": 0.9, "loss": null, "epochs": 10, "converged": true,
            "model": "logistic", "classes": ["no", "yes"], "confusion_matrix": [[50, 3], [4, 43]],
            "per_class": {"yes": 0.9, "no": 0.8},
            "curve": [0.1, 0.2],
        }))
        .unwrap();
    }

    #[test]
    fn refuses_everything_else() {
        for (bad, needle) in [
            (json!([1, 2]), "one JSON object"),
            (json!({"bad key": 1}), "metric name"),
            (json!({"": 1}), "metric name"),
            (json!({"a": "x".repeat(300)}), "at most 256"),
            (json!({"a": [{"b": 1}]}), "lists hold numbers"),
            (json!({"a": [[1, "x"]]}), "nested list"),
            (json!({"a": {"b": {"c": 1}}}), "nest one level"),
        ] {
            let e = check(&bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let many: serde_json::Map<String, serde_json::Value> =
            (0..300).map(|i| (format!("m{i}"), json!(i))).collect();
        assert!(
            check(&serde_json::Value::Object(many))
                .unwrap_err()
                .contains("at most 256")
        );
    }
}
