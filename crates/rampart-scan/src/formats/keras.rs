//! Keras: the v3 `.keras` zip's `config.json`, and the `model_config` JSON that legacy `.h5`
//! files keep as an HDF5 attribute. Lambda layers carry marshalled Python bytecode; custom and
//! registered objects name modules that Keras imports when it loads the model.

use serde_json::Value;

/// What a Keras config asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KerasFindings {
    /// Lambda layers, by name.
    pub lambdas: Vec<String>,
    /// Modules outside Keras that objects are loaded from (`module` / `registered_name`).
    pub modules: Vec<String>,
}

/// Walks a config JSON value.
#[must_use]
pub fn check_config(v: &Value) -> KerasFindings {
    let mut out = KerasFindings::default();
    walk(v, &mut out, 0);
    out.lambdas.sort();
    out.lambdas.dedup();
    out.modules.sort();
    out.modules.dedup();
    out
}

fn walk(v: &Value, out: &mut KerasFindings, depth: usize) {
    if depth > 200 {
        return;
    }
    match v {
        Value::Object(map) => {
            if map.get("class_name").and_then(Value::as_str) == Some("Lambda") {
                let name = map
                    .get("config")
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("unnamed");
                out.lambdas.push(name.to_owned());
            }
            if let Some(module) = map.get("module").and_then(Value::as_str) {
                let top = module.split('.').next().unwrap_or(module);
                if !matches!(top, "keras" | "tf_keras" | "tensorflow") {
                    out.modules.push(module.to_owned());
                }
            }
            if let Some(registered) = map.get("registered_name").and_then(Value::as_str)
                && registered.contains('>')
            {
                out.modules.push(format!("registered:{registered}"));
            }
            for child in map.values() {
                walk(child, out, depth + 1);
            }
        }
        Value::Array(items) => {
            for child in items {
                walk(child, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Legacy HDF5: finds Lambda layers in the JSON the file stores as an attribute, by searching
/// the raw bytes for the serialised layer (the attribute is stored uncompressed).
#[must_use]
pub fn h5_lambda_count(bytes: &[u8]) -> usize {
    const NEEDLES: [&[u8]; 2] = [b"\"class_name\": \"Lambda\"", b"\"class_name\":\"Lambda\""];
    NEEDLES
        .iter()
        .map(|n| bytes.windows(n.len()).filter(|w| w == n).count())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambdas_and_modules() {
        let v: Value = serde_json::from_str(r#"{"class_name":"Sequential","config":{"layers":[
            {"module":"keras.layers","class_name":"Dense","config":{"name":"d"}},
            {"module":"keras.layers","class_name":"Lambda","config":{"name":"evil","function":{"class_name":"__lambda__"}}},
            {"module":"mypkg.layers","class_name":"Custom","registered_name":"mypkg>Custom","config":{}}]}}"#).unwrap();
        let f = check_config(&v);
        assert_eq!(f.lambdas, ["evil"]);
        assert_eq!(f.modules, ["mypkg.layers", "registered:mypkg>Custom"]);
        assert_eq!(
            h5_lambda_count(br#"x{"class_name": "Lambda", "config"}"#),
            1
        );
    }
}
