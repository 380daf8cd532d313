//! safetensors validation: `u64` little-endian header length, a JSON header, then the data.
//! Checked: the length bound, valid JSON of the right shape, no duplicate names, known dtypes,
//! dtype × shape = byte length (overflow-checked), offsets in bounds, no overlaps, and the
//! tensors covering the data section exactly.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde_json::Value;

/// The largest header accepted (the `safetensors` crate's own limit).
pub const MAX_HEADER: u64 = 100_000_000;

/// A problem, as `(rule id, message)`.
pub type Problem = (&'static str, String);

/// Bytes per element; `None` for an unknown dtype. Sub-byte types count as bytes per element
/// only where the format defines them so.
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        _ => return None,
    })
}

/// A JSON object read with its duplicate keys kept.
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Validates a header given the file's total length. Returns every problem found (empty when
/// the file is well-formed).
#[must_use]
pub fn check(header_len: u64, header: &[u8], file_len: u64) -> Vec<Problem> {
    let mut problems = Vec::new();
    let data_len = match file_len
        .checked_sub(8)
        .and_then(|rest| rest.checked_sub(header_len))
    {
        Some(n) if header_len <= MAX_HEADER => n,
        _ => {
            problems.push(("safetensors-header-too-large", format!("header length {header_len} exceeds the limit ({MAX_HEADER}) or the file ({file_len} bytes)")));
            return problems;
        }
    };
    let mut de = serde_json::Deserializer::from_slice(header);
    let entries = match serde::Deserialize::deserialize(&mut de)
        .and_then(|e: Entries| de.end().map(|()| e))
    {
        Ok(e) => e,
        Err(e) => {
            // Trailing spaces are how writers pad the header; anything else is invalid.
            let trimmed = header
                .iter()
                .rposition(|b| *b != b' ')
                .map_or(&[][..], |i| header.get(..=i).unwrap_or_default());
            match serde_json::from_slice::<Entries>(trimmed) {
                Ok(e) => e,
                Err(_) => {
                    problems.push((
                        "safetensors-invalid-header",
                        format!("the header is not a JSON object: {e}"),
                    ));
                    return problems;
                }
            }
        }
    };
    let mut seen = std::collections::HashSet::new();
    let mut ranges: Vec<(u64, u64, String)> = Vec::new();
    for (name, v) in &entries.0 {
        if !seen.insert(name.as_str()) {
            problems.push((
                "safetensors-duplicate-name",
                format!("tensor {name:?} appears more than once"),
            ));
            continue;
        }
        if name == "__metadata__" {
            if !v
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string))
            {
                problems.push((
                    "safetensors-invalid-header",
                    "__metadata__ must map strings to strings".into(),
                ));
            }
            continue;
        }
        let Some(obj) = v.as_object() else {
            problems.push((
                "safetensors-invalid-header",
                format!("tensor {name:?} is not an object"),
            ));
            continue;
        };
        if let Some(extra) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "dtype" | "shape" | "data_offsets"))
        {
            problems.push((
                "safetensors-invalid-header",
                format!("tensor {name:?} has an unknown field {extra:?}"),
            ));
        }
        let dtype = obj.get("dtype").and_then(Value::as_str).unwrap_or("");
        let Some(bits) = dtype_bits(dtype) else {
            problems.push((
                "safetensors-invalid-header",
                format!("tensor {name:?} has unknown dtype {dtype:?}"),
            ));
            continue;
        };
        let shape: Option<Vec<u64>> = obj
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let offsets: Option<Vec<u64>> = obj
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let (Some(shape), Some(offsets)) = (shape, offsets) else {
            problems.push((
                "safetensors-invalid-header",
                format!("tensor {name:?} needs an integer shape and data_offsets"),
            ));
            continue;
        };
        let [begin, end] = offsets.as_slice() else {
            problems.push((
                "safetensors-invalid-header",
                format!("tensor {name:?}: data_offsets must be [begin, end]"),
            ));
            continue;
        };
        if begin > end || *end > data_len {
            problems.push(("safetensors-offsets-out-of-bounds", format!("tensor {name:?}: data_offsets [{begin}, {end}] outside the {data_len}-byte data section")));
            continue;
        }
        let bytes = shape
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(*d))
            .and_then(|n| n.checked_mul(bits))
            .map(|b| b.div_ceil(8));
        if bytes != Some(end - begin) {
            problems.push((
                "safetensors-size-mismatch",
                format!(
                    "tensor {name:?}: {dtype} × {shape:?} is {} bytes but its data is {} bytes",
                    bytes.map_or_else(|| "too many".into(), |b| b.to_string()),
                    end - begin
                ),
            ));
        }
        ranges.push((*begin, *end, name.clone()));
    }
    ranges.sort();
    let mut cursor = 0u64;
    for (begin, end, name) in &ranges {
        if *begin < cursor {
            problems.push((
                "safetensors-overlapping-offsets",
                format!("tensor {name:?} [{begin}, {end}] overlaps the tensor before it"),
            ));
        } else if *begin > cursor {
            problems.push((
                "safetensors-data-gap",
                format!("{} unused bytes before tensor {name:?}", begin - cursor),
            ));
        }
        cursor = cursor.max(*end);
    }
    if cursor < data_len {
        problems.push((
            "safetensors-data-gap",
            format!(
                "{} bytes after the last tensor are not part of any tensor",
                data_len - cursor
            ),
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(header: &str, data_len: u64) -> Vec<&'static str> {
        let len = header.len() as u64;
        check(len, header.as_bytes(), 8 + len + data_len)
            .into_iter()
            .map(|p| p.0)
            .collect()
    }

    #[test]
    fn valid_and_each_defect() {
        let ok = r#"{"__metadata__":{"a":"b"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]}}  "#;
        assert!(rules(ok, 20).is_empty(), "{:?}", rules(ok, 20));
        assert_eq!(
            rules(
                r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
                16
            ),
            ["safetensors-duplicate-name", "safetensors-data-gap"]
        );
        assert_eq!(
            rules(
                r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"v":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
                16
            ),
            ["safetensors-overlapping-offsets"]
        );
        assert_eq!(
            rules(
                r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#,
                12
            ),
            ["safetensors-size-mismatch"]
        );
        assert_eq!(
            rules(
                r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                8
            ),
            ["safetensors-offsets-out-of-bounds", "safetensors-data-gap"]
        );
        assert_eq!(
            rules(
                r#"{"w":{"dtype":"F32","shape":[18446744073709551615,4],"data_offsets":[0,16]}}"#,
                16
            ),
            ["safetensors-size-mismatch"]
        );
        assert_eq!(
            rules(
                r#"{"w":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}"#,
                1
            )[0],
            "safetensors-invalid-header"
        );
        assert_eq!(rules("not json", 0), ["safetensors-invalid-header"]);
        assert_eq!(
            check(1 << 40, b"{}", 100)[0].0,
            "safetensors-header-too-large"
        );
    }
}
