//! Findings: what a scan reports. Every finding carries a stable rule id — users write
//! policies and suppressions against them, so they never change meaning.

use serde::Serialize;

/// How bad a finding is. `--fail-on` compares against this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a scan by default.
    Info,
    /// Unusual, low risk.
    Low,
    /// Not allowlisted: may run code the scanner cannot vouch for (unknown imports).
    Medium,
    /// Suspicious structure that hides content or evades scanners.
    High,
    /// Runs code or reaches the system when loaded.
    Critical,
}

impl Severity {
    /// Lower-case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses a name (`unknown` is an alias of `medium`, `dangerous` of `critical`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Self::Info,
            "low" => Self::Low,
            "medium" | "unknown" => Self::Medium,
            "high" => Self::High,
            "critical" | "dangerous" => Self::Critical,
            _ => return None,
        })
    }
}

/// Read from policy files by name ([`Severity::parse`]); anything else is an error naming the
/// accepted names, never a default.
impl<'de> serde::Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "{text:?} is not one of info, low, medium, high, critical"
            ))
        })
    }
}

/// Every rule, with its severity and a one-line description (for SARIF and docs).
pub const RULES: &[(&str, Severity, &str)] = &[
    (
        "pickle-dangerous-import",
        Severity::Critical,
        "The pickle imports a callable that can run code or reach the system.",
    ),
    (
        "pickle-dangerous-call",
        Severity::Critical,
        "The pickle calls a dangerous callable when loaded.",
    ),
    (
        "pickle-unknown-import",
        Severity::Medium,
        "The pickle imports something that is not on the allowlist.",
    ),
    (
        "pickle-unresolved-import",
        Severity::Critical,
        "The pickle builds an import name at load time, so what it imports cannot be known.",
    ),
    (
        "pickle-unknown-extension",
        Severity::High,
        "The pickle imports through an extension-registry code that is not registered.",
    ),
    (
        "pickle-persistent-id",
        Severity::Low,
        "The pickle uses persistent ids, resolved by the loader.",
    ),
    (
        "pickle-malformed",
        Severity::Low,
        "The pickle is malformed; content after the error was not analysed.",
    ),
    (
        "pickle-limit",
        Severity::High,
        "The pickle exceeds an analysis limit (opcodes, stack, memo).",
    ),
    (
        "pickle-trailing-data",
        Severity::Info,
        "Bytes after the last pickle that are not a pickle.",
    ),
    (
        "torchscript-code",
        Severity::Medium,
        "A TorchScript archive carries code that runs when the model is loaded.",
    ),
    (
        "zip-entry-hidden",
        Severity::High,
        "A zip entry exists in the local headers but not in the central directory.",
    ),
    (
        "zip-duplicate-entry",
        Severity::High,
        "Two zip entries have the same name; loaders disagree on which is used.",
    ),
    (
        "zip-name-mismatch",
        Severity::High,
        "A zip entry's local header and central directory disagree on its name.",
    ),
    (
        "zip-crc-mismatch",
        Severity::Medium,
        "A zip entry's data does not match its CRC-32.",
    ),
    (
        "zip-encrypted-entry",
        Severity::High,
        "A zip entry is encrypted and cannot be scanned.",
    ),
    (
        "zip-unsupported-compression",
        Severity::High,
        "A zip entry uses a compression method the scanner cannot read.",
    ),
    (
        "zip-path-traversal",
        Severity::High,
        "A zip entry name escapes the archive (absolute or `..`).",
    ),
    (
        "archive-bomb",
        Severity::High,
        "Decompressed size or nesting exceeds the limits: the rest was not scanned.",
    ),
    (
        "numpy-object-array",
        Severity::Medium,
        "A NumPy array of Python objects: loading it unpickles.",
    ),
    (
        "numpy-malformed",
        Severity::Medium,
        "A NumPy file with an invalid header.",
    ),
    (
        "safetensors-header-too-large",
        Severity::High,
        "The safetensors header length is beyond the limit or the file.",
    ),
    (
        "safetensors-invalid-header",
        Severity::High,
        "The safetensors header is not valid JSON of the expected shape.",
    ),
    (
        "safetensors-offsets-out-of-bounds",
        Severity::High,
        "A tensor's data offsets fall outside the data section.",
    ),
    (
        "safetensors-overlapping-offsets",
        Severity::High,
        "Two tensors' data ranges overlap.",
    ),
    (
        "safetensors-data-gap",
        Severity::Medium,
        "The tensors do not cover the data section exactly.",
    ),
    (
        "safetensors-size-mismatch",
        Severity::High,
        "A tensor's dtype × shape does not match its byte length.",
    ),
    (
        "safetensors-duplicate-name",
        Severity::High,
        "Two tensors have the same name.",
    ),
    (
        "keras-lambda-layer",
        Severity::Critical,
        "A Keras Lambda layer: marshalled Python bytecode runs when the model is loaded.",
    ),
    (
        "keras-custom-object",
        Severity::Medium,
        "A Keras config loads objects from a module outside Keras.",
    ),
    (
        "keras-invalid-config",
        Severity::Medium,
        "A Keras archive whose config.json is not valid JSON.",
    ),
    (
        "export-custom-op",
        Severity::Low,
        "A torch.export graph calls an operator outside torch's namespaces (resolved only if a library registered it).",
    ),
    (
        "export-unknown-target",
        Severity::Medium,
        "A torch.export graph names a call target that is neither a torch operator nor a vetted builtin.",
    ),
    (
        "export-invalid-graph",
        Severity::Medium,
        "A torch.export archive whose graph is not valid JSON: it cannot be analysed.",
    ),
    (
        "torchscript-custom-op",
        Severity::Medium,
        "TorchScript code calls operators or classes outside torch's namespaces (native code a library registered).",
    ),
    (
        "hf-remote-code",
        Severity::Medium,
        "Model code in a Hugging Face directory (auto_map, .py files) that transformers runs with trust_remote_code=True.",
    ),
    (
        "index-invalid",
        Severity::Medium,
        "A sharded checkpoint's index maps a tensor to something that is not a file name.",
    ),
    (
        "index-path-traversal",
        Severity::High,
        "A sharded checkpoint's index names a shard outside the model's directory.",
    ),
    (
        "index-shard-missing",
        Severity::Medium,
        "A shard the index names is missing or unreadable: the model is not whole.",
    ),
    (
        "index-tensor-missing",
        Severity::Medium,
        "Tensors the index assigns to a shard are not in it.",
    ),
    (
        "index-tensor-unlisted",
        Severity::Low,
        "A shard holds tensors the index does not name (loaders ignore them).",
    ),
    (
        "format-not-analysed",
        Severity::Medium,
        "A recognised format whose risky parts are not analysed yet.",
    ),
    (
        "archive-not-analysed",
        Severity::High,
        "An archive format that is not unpacked yet: its contents are not known to be clean.",
    ),
    (
        "format-unrecognised",
        Severity::Info,
        "The content is not a model format the scanner knows.",
    ),
    (
        "file-unreadable",
        Severity::High,
        "The file could not be read; it is not known to be clean.",
    ),
    (
        "unanalysable",
        Severity::Medium,
        "A file named like a model (by its extension) whose content the scanner cannot parse: it is not known to be clean (severity set by the policy's scan.unanalysable).",
    ),
];

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable rule id (see [`RULES`]).
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// For people.
    pub message: String,
    /// Where inside the file, when known: container entries from the outside in
    /// (`archive/data.pkl`), empty for the file itself.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub location: Vec<String>,
    /// Byte offset within the innermost content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The import, for import findings (`os.system`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<String>,
}

impl Finding {
    /// A finding of `rule` with the rule's severity.
    #[must_use]
    pub fn new(rule: &'static str, message: impl Into<String>, location: &[String]) -> Self {
        let severity = RULES
            .iter()
            .find(|r| r.0 == rule)
            .map_or(Severity::High, |r| r.1);
        Self {
            rule,
            severity,
            message: message.into(),
            location: location.to_vec(),
            offset: None,
            import: None,
        }
    }

    /// Sets the offset.
    #[must_use]
    pub const fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    /// Sets the import.
    #[must_use]
    pub fn import(mut self, name: String) -> Self {
        self.import = Some(name);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for (id, _, desc) in RULES {
            assert!(seen.insert(*id), "duplicate rule id {id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{id}"
            );
            assert!(!desc.is_empty());
        }
    }
}
