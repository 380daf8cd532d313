//! Request bodies whose meaning is not ambiguous: a JSON object with the same key twice is
//! read differently by different parsers (first wins, last wins, error), so a body holding one
//! is refused before any handler reads it, naming where the key repeats.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Where in the document a value sits (`$.inputs[0].name`).
struct Walk<'p> {
    path: &'p mut String,
}

/// The first key repeated within one object, as `(path of the object, key)`; `Ok(None)` when
/// every object's keys are unique.
///
/// # Errors
/// When the body is not JSON (the handler's own parse reports that in its words).
pub fn first_duplicate(body: &[u8]) -> Result<Option<(String, String)>, serde_json::Error> {
    let mut path = String::from("$");
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = Walk { path: &mut path }.deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = Option<(String, String)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = Option<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut i = 0usize;
        let at = self.path.len();
        loop {
            self.path.truncate(at);
            self.path.push_str(&format!("[{i}]"));
            let Some(f) = seq.next_element_seed(Walk { path: self.path })? else {
                break;
            };
            if found.is_none() {
                found = f;
            }
            i += 1;
        }
        self.path.truncate(at);
        Ok(found)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        let mut found = None;
        let at = self.path.len();
        while let Some(key) = map.next_key::<String>()? {
            self.path.truncate(at);
            if found.is_none() && seen.contains(&key) {
                found = Some((self.path.clone(), key.clone()));
            }
            self.path.push('.');
            self.path.push_str(&key);
            let f = map.next_value_seed(Walk { path: self.path })?;
            if found.is_none() {
                found = f;
            }
            seen.insert(key);
        }
        self.path.truncate(at);
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_repeated_key_is_found_with_its_path_and_unique_keys_pass() {
        assert_eq!(
            first_duplicate(br#"{"inputs": [{"name": "x", "data": [1], "name": "y"}]}"#).unwrap(),
            Some(("$.inputs[0]".into(), "name".into()))
        );
        assert_eq!(
            first_duplicate(br#"{"a": 1, "a": 2}"#).unwrap(),
            Some(("$".into(), "a".into()))
        );
        // The same key in sibling objects is not a repeat.
        assert_eq!(
            first_duplicate(br#"{"inputs": [{"name": "x"}, {"name": "y"}], "id": "1"}"#).unwrap(),
            None
        );
        assert_eq!(first_duplicate(b"[1, 2, {}]").unwrap(), None);
        assert!(first_duplicate(b"{\"a\": ").is_err());
        assert!(first_duplicate(b"{} trailing").is_err());
        // Deep nesting stops at serde_json's recursion limit instead of the stack.
        let deep = "[".repeat(100_000);
        assert!(first_duplicate(deep.as_bytes()).is_err());
    }
}
