//! Hugging Face model directories as a whole: the files beside the weights.
//!
//! * Side files (`config.json`, tokenizer files, README, licence, SentencePiece models) are
//!   recognised as such — JSON ones are parsed — instead of being "unrecognised".
//! * A sharded checkpoint's index (`model.safetensors.index.json`,
//!   `pytorch_model.bin.index.json`) is checked against the directory: every shard it names is a
//!   plain file name in the same directory and exists, and every tensor it assigns to a
//!   safetensors shard is in that shard's header.
//! * Code that `transformers` runs with `trust_remote_code=True` — a `config.json` `auto_map`
//!   and `.py` files beside a `config.json` — is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;

use crate::formats::safetensors::MAX_HEADER;
use crate::scan::open_regular;

/// The largest side file parsed (JSON configs and tokenizers are far smaller).
pub const MAX_SIDE_FILE: u64 = 64 << 20;

/// A problem, as `(rule id, message)`.
pub type Problem = (&'static str, String);

/// What a side file is, by its name: `config`, `tokenizer`, `readme`, `licence`, `text`.
#[must_use]
pub fn side_kind(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    Some(match name.as_str() {
        "config.json"
        | "generation_config.json"
        | "preprocessor_config.json"
        | "processor_config.json"
        | "feature_extractor_config.json"
        | "image_processor_config.json"
        | "adapter_config.json"
        | "sentence_bert_config.json"
        | "config_sentence_transformers.json"
        | "modules.json"
        | "model_index.json"
        | "scheduler_config.json"
        | "quantize_config.json"
        | "params.json" => "config",
        "tokenizer.json"
        | "tokenizer_config.json"
        | "special_tokens_map.json"
        | "added_tokens.json"
        | "vocab.json"
        | "vocab.txt"
        | "merges.txt"
        | "chat_template.json"
        | "chat_template.jinja" => "tokenizer",
        ".gitattributes" | ".gitignore" => "text",
        n if n.starts_with("readme") || n.ends_with(".md") => "readme",
        n if n.starts_with("license") || n.starts_with("licence") || n.starts_with("notice") => {
            "licence"
        }
        _ => return None,
    })
}

/// Whether `path` is a SentencePiece model (`tokenizer.model`, `spiece.model`, …): a protobuf
/// `ModelProto` whose first field is a repeated piece (tag 0x0a). Data only, nothing is loaded
/// from it but strings and scores.
#[must_use]
pub fn is_sentencepiece(path: &Path, head: &[u8]) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    (name == "tokenizer.model"
        || name == "spiece.model"
        || name.ends_with("sentencepiece.bpe.model")
        || name == "sentencepiece.model")
        && head.first() == Some(&0x0a)
}

/// Reads a side file as JSON, at most [`MAX_SIDE_FILE`] bytes.
fn read_json(path: &Path) -> Option<serde_json::Value> {
    let mut text = Vec::new();
    open_regular(path)
        .ok()?
        .0
        .take(MAX_SIDE_FILE + 1)
        .read_to_end(&mut text)
        .ok()?;
    if text.len() as u64 > MAX_SIDE_FILE {
        return None;
    }
    serde_json::from_slice(&text).ok()
}

/// Whether a JSON side file parses (non-JSON side files are accepted by name).
#[must_use]
pub fn side_file_ok(path: &Path) -> bool {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    !is_json || read_json(path).is_some()
}

/// `config.json`'s `auto_map`: the classes `transformers` imports from the model's own Python
/// files when loaded with `trust_remote_code=True`.
#[must_use]
pub fn check_config(path: &Path) -> Vec<Problem> {
    let Some(v) = read_json(path) else {
        return Vec::new();
    };
    let Some(map) = v.get("auto_map").and_then(|m| m.as_object()) else {
        return Vec::new();
    };
    let targets: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k} → {}", v.to_string().trim_matches('"')))
        .collect();
    vec![(
        "hf-remote-code",
        format!(
            "config.json's auto_map loads classes from the model's own code ({}): transformers runs it when the model is loaded with trust_remote_code=True",
            targets.join(", ")
        ),
    )]
}

/// A `.py` file beside a `config.json`: model code for `trust_remote_code`.
#[must_use]
pub fn check_python(path: &Path) -> Vec<Problem> {
    let is_py = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("py"));
    let beside_config = path
        .parent()
        .is_some_and(|d| open_regular(&d.join("config.json")).is_ok());
    if is_py && beside_config {
        vec![(
            "hf-remote-code",
            "Python source in a model directory: transformers imports and runs it when the model is loaded with trust_remote_code=True".into(),
        )]
    } else {
        Vec::new()
    }
}

/// The tensor names in a safetensors file's header; `None` when it cannot be read.
fn safetensors_names(path: &Path) -> Option<BTreeSet<String>> {
    let (mut f, size) = open_regular(path).ok()?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).ok()?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER || n > size {
        return None;
    }
    let mut header = Vec::new();
    f.take(n).read_to_end(&mut header).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&header).ok()?;
    Some(
        v.as_object()?
            .keys()
            .filter(|k| *k != "__metadata__")
            .cloned()
            .collect(),
    )
}

/// Checks a sharded checkpoint's index against its directory. `None` when the file is not an
/// index (no `weight_map` object).
#[must_use]
pub fn check_index(path: &Path) -> Option<Vec<Problem>> {
    let name = path.file_name()?.to_str()?;
    if !name.ends_with(".index.json") {
        return None;
    }
    let v = read_json(path)?;
    let map = v.get("weight_map")?.as_object()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    let mut shards: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (tensor, shard) in map {
        let Some(shard) = shard.as_str() else {
            problems.push((
                "index-invalid",
                format!("weight_map[{tensor:?}] is not a file name"),
            ));
            continue;
        };
        shards.entry(shard).or_default().push(tensor);
    }
    for (shard, tensors) in &shards {
        let plain = !shard.is_empty()
            && !shard.contains('/')
            && !shard.contains('\\')
            && *shard != "."
            && *shard != ".."
            && !shard.contains('\0');
        if !plain {
            problems.push((
                "index-path-traversal",
                format!("the index sends {} tensor(s) to {shard:?}, which is not a file in the model's directory: loaders join it to the directory path", tensors.len()),
            ));
            continue;
        }
        let file = dir.join(shard);
        if open_regular(&file).is_err() {
            problems.push((
                "index-shard-missing",
                format!(
                    "shard {shard} (holding {} tensor(s), e.g. {:?}) is not in the directory: the model is not whole, and what is missing cannot be vouched for",
                    tensors.len(),
                    tensors.first().unwrap_or(&"")
                ),
            ));
            continue;
        }
        if shard.ends_with(".safetensors") {
            match safetensors_names(&file) {
                Some(names) => {
                    let missing: Vec<&&str> =
                        tensors.iter().filter(|t| !names.contains(**t)).collect();
                    if !missing.is_empty() {
                        problems.push((
                            "index-tensor-missing",
                            format!(
                                "{} tensor(s) the index puts in {shard} are not in it (e.g. {:?})",
                                missing.len(),
                                missing.first().map_or("", |t| **t)
                            ),
                        ));
                    }
                    let listed: BTreeSet<&str> = tensors.iter().copied().collect();
                    let extra = names
                        .iter()
                        .filter(|n| !listed.contains(n.as_str()))
                        .count();
                    if extra > 0 {
                        problems.push((
                            "index-tensor-unlisted",
                            format!("{shard} holds {extra} tensor(s) the index does not name: loaders ignore them"),
                        ));
                    }
                }
                None => problems.push((
                    "index-shard-missing",
                    format!("shard {shard} has no readable safetensors header"),
                )),
            }
        }
    }
    Some(problems)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn safetensors(names: &[&str]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        for (i, n) in names.iter().enumerate() {
            header.insert(
                (*n).to_owned(),
                serde_json::json!({"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]}),
            );
        }
        let text = serde_json::to_string(&header).unwrap();
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(text.as_bytes());
        out.extend(std::iter::repeat_n(0u8, names.len()));
        out
    }

    #[test]
    fn an_index_is_checked_against_its_shards() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("model-00001-of-00002.safetensors"),
            safetensors(&["a", "b"]),
        )
        .unwrap();
        std::fs::write(
            d.join("model-00002-of-00002.safetensors"),
            safetensors(&["c", "z"]),
        )
        .unwrap();
        let index = d.join("model.safetensors.index.json");
        let write = |map: serde_json::Value| {
            std::fs::write(
                &index,
                serde_json::to_vec(&serde_json::json!({"metadata": {}, "weight_map": map}))
                    .unwrap(),
            )
            .unwrap();
        };
        write(
            serde_json::json!({"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors", "z": "model-00002-of-00002.safetensors"}),
        );
        assert_eq!(check_index(&index).unwrap(), Vec::<Problem>::new());
        write(
            serde_json::json!({"a": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors", "d": "model-00002-of-00002.safetensors", "e": "model-00003-of-00003.safetensors", "f": "../../etc/passwd"}),
        );
        let rules: Vec<&str> = check_index(&index).unwrap().iter().map(|p| p.0).collect();
        assert_eq!(
            rules,
            vec![
                "index-path-traversal",
                "index-tensor-unlisted",
                "index-tensor-missing",
                "index-tensor-unlisted",
                "index-shard-missing"
            ]
        );
        assert!(check_index(&d.join("model-00001-of-00002.safetensors")).is_none());
    }

    #[test]
    fn side_files_and_remote_code() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("config.json"),
            br#"{"model_type": "x", "auto_map": {"AutoModel": "modeling_x.XModel"}}"#,
        )
        .unwrap();
        std::fs::write(d.join("modeling_x.py"), "import os\n").unwrap();
        assert_eq!(side_kind(&d.join("config.json")), Some("config"));
        assert_eq!(side_kind(&d.join("README.md")), Some("readme"));
        assert_eq!(side_kind(&d.join("weights.bin")), None);
        assert!(
            check_config(&d.join("config.json"))[0]
                .1
                .contains("modeling_x.XModel")
        );
        assert_eq!(check_python(&d.join("modeling_x.py")).len(), 1);
        std::fs::write(d.join("tokenizer.json"), "not json").unwrap();
        assert!(!side_file_ok(&d.join("tokenizer.json")));
        assert!(side_file_ok(&d.join("config.json")));
        assert!(is_sentencepiece(&d.join("tokenizer.model"), &[0x0a, 0x05]));
        assert!(!is_sentencepiece(&d.join("tokenizer.model"), b"\x80\x04"));
    }
}
