//! TorchScript sources (`code/**/*.py` in a TorchScript archive). TorchScript is a restricted
//! language: it calls torch's operators and the module's own methods, and reaches native code
//! only through operators (`ops.NS.OP`) and classes (`torch.classes.NS.CLS`) that a library
//! registered. Those outside torch's own namespaces are what this reports.

use std::collections::BTreeSet;

/// Operator namespaces torch itself registers.
const TORCH_NAMESPACES: &[&str] = &[
    "aten",
    "prim",
    "prims",
    "quantized",
    "_quantized",
    "quantized_decomposed",
    "prepacked",
    "profiler",
    "mkldnn",
    "onednn",
    "mkl",
    "sparse",
    "_caffe2",
    "cuda",
    "higher_order",
];

fn ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The `ops.NS.NAME` operators and `torch.classes.NS.NAME` classes in `source` whose namespace
/// is not torch's own, each once.
#[must_use]
pub fn foreign_natives(source: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (needle, what) in [(&b"ops."[..], "ops"), (&b"classes."[..], "torch.classes")] {
        let mut at = 0;
        while let Some(pos) = source
            .get(at..)
            .and_then(|s| s.windows(needle.len()).position(|w| w == needle))
        {
            let start = at + pos;
            at = start + needle.len();
            // A whole token: `ops.` not preceded by an identifier character (`myops.`); for
            // `classes.`, preceded by `torch.`.
            let before = start.checked_sub(1).and_then(|i| source.get(i)).copied();
            let whole = match what {
                "ops" => before.is_none_or(|b| !ident(b)) || before == Some(b'.'),
                _ => source.get(start.saturating_sub(6)..start) == Some(&b"torch."[..]),
            };
            if !whole {
                continue;
            }
            let rest = source.get(at..).unwrap_or_default();
            let ns_len = rest.iter().take_while(|b| ident(**b)).count();
            let ns = String::from_utf8_lossy(rest.get(..ns_len).unwrap_or_default()).into_owned();
            if ns.is_empty() || TORCH_NAMESPACES.contains(&ns.as_str()) {
                continue;
            }
            let name_part = rest.get(ns_len..).unwrap_or_default();
            let name = name_part
                .strip_prefix(b".")
                .map(|n| {
                    let len = n.iter().take_while(|b| ident(**b)).count();
                    String::from_utf8_lossy(n.get(..len).unwrap_or_default()).into_owned()
                })
                .unwrap_or_default();
            if out.len() < 64 {
                out.insert(format!("{what}.{ns}.{name}"));
            }
        }
    }
    out
}

/// The classes a TorchScript source file defines, by the qualified name its archive's pickles
/// use: `ARCHIVE/code/__torch__/torch/nn/modules/conv.py` defining `class Conv2d(Module):` gives
/// `__torch__.torch.nn.modules.conv.Conv2d`. Only `__torch__` names (TorchScript's own
/// namespace) are returned.
#[must_use]
pub fn defined_classes(entry: &str, source: &[u8]) -> Vec<String> {
    let Some(module) = entry
        .split_once("code/")
        .map(|(_, m)| m)
        .and_then(|m| m.strip_suffix(".py"))
        .map(|m| m.replace('/', "."))
        .filter(|m| m == "__torch__" || m.starts_with("__torch__."))
    else {
        return Vec::new();
    };
    source
        .split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"class "))
        .map(|rest| {
            let len = rest.iter().take_while(|b| ident(**b)).count();
            String::from_utf8_lossy(rest.get(..len).unwrap_or_default()).into_owned()
        })
        .filter(|c| !c.is_empty())
        .take(4096)
        .map(|c| format!("{module}.{c}"))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn torch_namespaces_pass_and_foreign_ones_are_named() {
        let src = b"  _0 = ops.prim.RaiseException(x)\n  _1 = ops.aten.add(a, b)\n  _2 = ops.my_lib.fused_gelu(x)\n  _3 = torch.classes.mylib.Tokenizer.__new__(x)\n  _4 = myops.foo.bar(x)\n";
        let found: Vec<String> = foreign_natives(src).into_iter().collect();
        assert_eq!(
            found,
            vec!["ops.my_lib.fused_gelu", "torch.classes.mylib.Tokenizer"]
        );
        assert!(foreign_natives(b"torch.relu(x)").is_empty());
        assert_eq!(
            defined_classes(
                "m/code/__torch__/torch/nn/modules/conv.py",
                b"class Conv2d(Module):\n  x : int\nclass Other(Module):\n"
            ),
            vec![
                "__torch__.torch.nn.modules.conv.Conv2d",
                "__torch__.torch.nn.modules.conv.Other"
            ]
        );
        assert!(defined_classes("m/code/os.py", b"class system:\n").is_empty());
    }
}
