//! The in-toto statement carrying the OMS predicate: written as model_signing 1.1.1 writes it,
//! read as both it and the OMS v1.0 spec write it.

use serde_json::{Map, Value, json};

use super::hashing::Method;
use super::tree::is_safe_name;
use super::{Manifest, OmsError};
use crate::Digest;

/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The OMS predicate type.
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// model_signing v0.2's predicate: one subject per file, no root digest, no serialization.
pub const PREDICATE_TYPE_V0_1: &str = "https://model_signing/Digests/v0.1";

/// One signed resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedResource {
    /// As listed (`path` or `path:start:end`).
    pub name: String,
    /// The file it belongs to.
    pub file: String,
    /// Shard start (0 for the files method).
    pub start: u64,
    /// Shard end (0 for the files method, where the size may be unknown).
    pub end: u64,
    /// The signed digest.
    pub digest: Digest,
    /// The file's size, when the signer recorded it (rampart's `size` extension).
    pub size_hint: Option<u64>,
}

/// A decoded, verified-signature manifest.
#[derive(Debug, Clone)]
pub struct SignedManifest {
    /// `subject[0].name` (informational).
    pub subject_name: String,
    /// `subject[0].digest.sha256`.
    pub subject_digest: Digest,
    /// Files or shards.
    pub method: Method,
    /// Whether the signer followed symlinks.
    pub allow_symlinks: bool,
    /// Model-relative paths the signer left out (the verifier leaves them out too).
    pub ignore_paths: Vec<String>,
    /// The resources in listed order.
    pub resources: Vec<SignedResource>,
}

/// The statement bytes for a manifest (2-space indented, as model_signing writes).
pub(crate) fn encode(m: &Manifest) -> Vec<u8> {
    let (method, algorithm) = match m.method {
        Method::Files => ("files", "sha256".to_owned()),
        Method::Shards { shard_size } => ("shards", format!("sha256-sharded-{shard_size}")),
    };
    let mut serialization = json!({
        "method": method,
        "hash_type": "sha256",
        "allow_symlinks": m.allow_symlinks,
        "ignore_paths": m.ignored,
    });
    if let (Method::Shards { shard_size }, Value::Object(s)) = (m.method, &mut serialization) {
        s.insert("shard_size".into(), json!(shard_size));
    }
    let resources: Vec<Value> = m
        .resources
        .iter()
        .map(|r| {
            let mut v =
                json!({"name": r.name, "algorithm": algorithm, "digest": r.digest.to_hex()});
            if let (Method::Files, Value::Object(o)) = (m.method, &mut v) {
                // rampart extension: lets a verifier fail fast on a size change without
                // hashing. Verifiers ignore unknown resource fields.
                o.insert("size".into(), json!(r.end - r.start));
            }
            v
        })
        .collect();
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": m.subject_name, "digest": {"sha256": m.root.to_hex()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"serialization": serialization, "resources": resources},
    });
    serde_json::to_vec_pretty(&statement).unwrap_or_default()
}

fn bad(msg: impl Into<String>) -> OmsError {
    OmsError::Manifest(msg.into())
}

fn field<'a>(obj: &'a Map<String, Value>, key: &str, ctx: &str) -> Result<&'a Value, OmsError> {
    obj.get(key)
        .ok_or_else(|| bad(format!("{ctx} has no `{key}`")))
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str, ctx: &str) -> Result<&'a str, OmsError> {
    field(obj, key, ctx)?
        .as_str()
        .ok_or_else(|| bad(format!("{ctx}.{key} is not a string")))
}

/// An integer that may be written as a JSON double (`1000000000.0`), as model_signing does.
fn integral(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        let f = v.as_f64()?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        (f.fract() == 0.0 && (1.0..=9_007_199_254_740_992.0).contains(&f)).then_some(f as u64)
    })
}

/// model_signing v0.2 statements (as model_signing still verifies them): every subject is a
/// file with its SHA-256, hashed whole; symlinks not followed. There is no root digest: the one
/// reported is computed over the files in listed order.
fn decode_v0_1(st: &Map<String, Value>) -> Result<SignedManifest, OmsError> {
    let subjects = field(st, "subject", "statement")?
        .as_array()
        .ok_or_else(|| bad("subject is not a list"))?;
    let mut resources = Vec::with_capacity(subjects.len());
    let mut seen = std::collections::HashSet::new();
    for s in subjects {
        let s = s
            .as_object()
            .ok_or_else(|| bad("a subject is not an object"))?;
        let name = str_field(s, "name", "subject")?;
        let digest = field(s, "digest", "subject")?
            .get("sha256")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("subject {name:?} has no sha256 digest")))
            .and_then(|h| Digest::from_hex(h).map_err(|e| bad(format!("subject {name:?}: {e}"))))?;
        if !is_safe_name(name) {
            return Err(bad(format!(
                "subject name {name:?} is not a safe model-relative path"
            )));
        }
        if !seen.insert(name.to_owned()) {
            return Err(bad(format!("subject {name:?} is listed twice")));
        }
        resources.push(SignedResource {
            name: name.to_owned(),
            file: name.to_owned(),
            start: 0,
            end: 0,
            digest,
            size_hint: None,
        });
    }
    if resources.is_empty() {
        return Err(bad("the statement signs no file"));
    }
    Ok(SignedManifest {
        subject_name: String::new(),
        subject_digest: super::hashing::root_digest(resources.iter().map(|r| &r.digest)),
        method: Method::Files,
        allow_symlinks: false,
        ignore_paths: Vec::new(),
        resources,
    })
}

/// Decodes and validates the statement.
pub(crate) fn decode(payload: &[u8]) -> Result<SignedManifest, OmsError> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| bad(format!("not JSON: {e}")))?;
    let st = v
        .as_object()
        .ok_or_else(|| bad("the statement is not an object"))?;
    if str_field(st, "_type", "statement")? != STATEMENT_TYPE {
        return Err(bad(format!("_type is not {STATEMENT_TYPE}")));
    }
    let predicate_type = str_field(st, "predicateType", "statement")?;
    if predicate_type == PREDICATE_TYPE_V0_1 {
        return decode_v0_1(st);
    }
    if predicate_type != PREDICATE_TYPE {
        return Err(bad(format!(
            "unsupported predicateType {predicate_type:?} (expected {PREDICATE_TYPE})"
        )));
    }
    let subjects = field(st, "subject", "statement")?
        .as_array()
        .ok_or_else(|| bad("subject is not a list"))?;
    let [subject] = subjects.as_slice() else {
        return Err(bad(format!(
            "expected exactly one subject, found {}",
            subjects.len()
        )));
    };
    let subject = subject
        .as_object()
        .ok_or_else(|| bad("subject is not an object"))?;
    let subject_name = subject
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let subject_digest = field(subject, "digest", "subject")?
        .get("sha256")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("subject has no sha256 digest"))
        .and_then(|h| Digest::from_hex(h).map_err(|e| bad(format!("subject digest: {e}"))))?;

    let predicate = field(st, "predicate", "statement")?
        .as_object()
        .ok_or_else(|| bad("predicate is not an object"))?;
    let ser = field(predicate, "serialization", "predicate")?
        .as_object()
        .ok_or_else(|| bad("serialization is not an object"))?;
    let hash_type = str_field(ser, "hash_type", "serialization")?;
    if hash_type != "sha256" {
        return Err(bad(format!(
            "hash_type {hash_type:?} is not supported (rampart verifies sha256)"
        )));
    }
    let allow_symlinks = field(ser, "allow_symlinks", "serialization")?
        .as_bool()
        .ok_or_else(|| bad("serialization.allow_symlinks is not a boolean"))?;
    let method = match str_field(ser, "method", "serialization")? {
        "files" => Method::Files,
        "shards" => {
            let size = integral(field(ser, "shard_size", "serialization")?)
                .ok_or_else(|| bad("serialization.shard_size is not a positive integer"))?;
            Method::Shards { shard_size: size }
        }
        other => {
            return Err(bad(format!(
                "serialization method {other:?} is not supported"
            )));
        }
    };
    let mut ignore_paths = Vec::new();
    if let Some(list) = ser.get("ignore_paths") {
        for p in list
            .as_array()
            .ok_or_else(|| bad("ignore_paths is not a list"))?
        {
            let p = p
                .as_str()
                .ok_or_else(|| bad("an ignore path is not a string"))?;
            if !is_safe_name(p) || p == "." {
                return Err(bad(format!(
                    "ignore path {p:?} is not a safe model-relative path"
                )));
            }
            ignore_paths.push(p.to_owned());
        }
    }

    let list = field(predicate, "resources", "predicate")?
        .as_array()
        .ok_or_else(|| bad("resources is not a list"))?;
    let mut resources = Vec::with_capacity(list.len());
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    for r in list {
        let r = r
            .as_object()
            .ok_or_else(|| bad("a resource is not an object"))?;
        let name = str_field(r, "name", "resource")?;
        let algorithm = str_field(r, "algorithm", "resource")?;
        let digest = Digest::from_hex(str_field(r, "digest", "resource")?)
            .map_err(|e| bad(format!("resource {name:?}: {e}")))?;
        let (file, start, end) = match method {
            Method::Files => {
                if algorithm != "sha256" {
                    return Err(bad(format!(
                        "resource {name:?}: algorithm {algorithm:?} is not sha256"
                    )));
                }
                (name.to_owned(), 0, 0)
            }
            Method::Shards { shard_size } => {
                if algorithm != "sha256" && algorithm != format!("sha256-sharded-{shard_size}") {
                    return Err(bad(format!(
                        "resource {name:?}: algorithm {algorithm:?} does not match shard size {shard_size}"
                    )));
                }
                let mut parts = name.rsplitn(3, ':');
                let (Some(end), Some(start), Some(file)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    return Err(bad(format!("shard name {name:?} is not path:start:end")));
                };
                let (Ok(start), Ok(end)) = (start.parse::<u64>(), end.parse::<u64>()) else {
                    return Err(bad(format!("shard name {name:?} has non-numeric offsets")));
                };
                if end <= start || end - start > shard_size {
                    return Err(bad(format!("shard {name:?} has an invalid range")));
                }
                (file.to_owned(), start, end)
            }
        };
        if !is_safe_name(&file) {
            return Err(bad(format!(
                "resource name {file:?} is not a safe model-relative path"
            )));
        }
        if !seen.insert(name.to_owned()) {
            return Err(bad(format!("resource {name:?} is listed twice")));
        }
        resources.push(SignedResource {
            name: name.to_owned(),
            file,
            start,
            end,
            digest,
            size_hint: r.get("size").and_then(Value::as_u64),
        });
    }
    Ok(SignedManifest {
        subject_name,
        subject_digest,
        method,
        allow_symlinks,
        ignore_paths,
        resources,
    })
}
