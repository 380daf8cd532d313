//! torch.export programs (`.pt2`): the serialized graph in `models/*.json` names every call
//! target as a string that `torch.export.load` resolves by name. Targets in torch's own operator
//! namespaces are the norm; anything else is reported.

use std::collections::BTreeSet;

/// Operator namespaces torch itself defines.
const TORCH_NAMESPACES: &[&str] = &["aten", "prims", "higher_order", "quantized_decomposed"];

/// Most JSON nesting walked.
const MAX_DEPTH: usize = 256;

/// The call targets outside torch's operators and the vetted builtins, each once, with the rule:
/// `export-custom-op` for another `torch.ops` namespace (resolved only when a library registered
/// it), `export-unknown-target` for anything else.
#[must_use]
pub fn unusual_targets(graph: &serde_json::Value) -> Vec<(String, &'static str)> {
    let mut targets = BTreeSet::new();
    collect(graph, &mut targets, 0);
    targets
        .into_iter()
        .filter_map(|t| classify(&t).map(|rule| (t, rule)))
        .collect()
}

fn collect(v: &serde_json::Value, out: &mut BTreeSet<String>, depth: usize) {
    if depth > MAX_DEPTH {
        out.insert("(a graph nested too deeply to read)".into());
        return;
    }
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                if k == "target"
                    && let Some(s) = x.as_str()
                {
                    out.insert(s.to_owned());
                    continue;
                }
                collect(x, out, depth + 1);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|x| collect(x, out, depth + 1)),
        _ => {}
    }
}

fn classify(target: &str) -> Option<&'static str> {
    if let Some(rest) = target.strip_prefix("torch.ops.") {
        let ns = rest.split('.').next().unwrap_or_default();
        return (!TORCH_NAMESPACES.contains(&ns)).then_some("export-custom-op");
    }
    let vetted = target.strip_prefix("_operator.").is_some_and(plain)
        || target.strip_prefix("math.").is_some_and(plain)
        || target
            .strip_prefix("torch.")
            .is_some_and(|n| plain(n) && (n.starts_with("sym_") || n.starts_with("_sym_")));
    (!vetted).then_some("export-unknown-target")
}

/// One identifier, no dunder.
fn plain(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with("__")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn torch_operators_pass_and_everything_else_is_named() {
        let g = serde_json::json!({"graph_module": {"graph": {"nodes": [
            {"target": "torch.ops.aten.linear.default"},
            {"target": "torch.ops.higher_order.cond"},
            {"target": "_operator.getitem"},
            {"target": "torch.sym_float"},
            {"target": "torch.ops.mylib.fused.default"},
            {"target": "builtins.eval"},
            {"target": "torch.load"},
            {"target": "_operator.__getattribute__"},
        ]}}});
        let found = unusual_targets(&g);
        assert_eq!(
            found,
            vec![
                (
                    "_operator.__getattribute__".to_owned(),
                    "export-unknown-target"
                ),
                ("builtins.eval".to_owned(), "export-unknown-target"),
                ("torch.load".to_owned(), "export-unknown-target"),
                (
                    "torch.ops.mylib.fused.default".to_owned(),
                    "export-custom-op"
                ),
            ]
        );
    }
}
