//! Every string of an OpenAI-shaped JSON document (a chat request, an answer, a stream chunk,
//! an error body) as one text for a rail, and the rail's redactions put back in place.
//!
//! Nothing is chosen by field name: every string value at any depth is read, so fields and
//! content-part types that did not exist when this was written are checked like the known
//! ones. Strings are grouped by their *shape* (the path with array positions left out:
//! `choices.*.message.content.*.text`): one group's strings are joined with nothing between
//! them — the parts of one content, the same field of every choice, the tokens of a
//! `logprobs` list — so a secret cut across two of them is read whole; groups are separated
//! by a line break. Identifiers (`id`, `object`, `model`, `role`, `type`, `name`,
//! `finish_reason`, …) and object keys that are not part of the OpenAI schemas are read
//! apart, in [`Doc::identifiers`], so the text of a plain answer is exactly its content (and
//! reads as `guard check --output` reads it). Media payloads in the fields the schemas give
//! media (an `image_url`'s base64 image, `input_audio.data`, a file's `file_data`) are not
//! text and are left out: the text rails cannot read an image or a sound. The same `data:`
//! URL anywhere else is text.

use rampart_guard::output::Edit;
use serde_json::Value;

/// Keys of the OpenAI chat, responses and error schemas: not read as text (any other key
/// is).
const SCHEMA_KEYS: &[&str] = &[
    "annotations",
    "arguments",
    "audio",
    "bytes",
    "cached_tokens",
    "choices",
    "code",
    "completion_tokens",
    "completion_tokens_details",
    "content",
    "created",
    "data",
    "delta",
    "description",
    "detail",
    "error",
    "file",
    "file_data",
    "file_id",
    "filename",
    "finish_reason",
    "format",
    "frequency_penalty",
    "function",
    "function_call",
    "id",
    "image_url",
    "include_usage",
    "index",
    "input",
    "input_audio",
    "instructions",
    "items",
    "json_schema",
    "logit_bias",
    "logprob",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "message",
    "messages",
    "model",
    "n",
    "name",
    "object",
    "output",
    "param",
    "parallel_tool_calls",
    "parameters",
    "presence_penalty",
    "prompt_tokens",
    "prompt_tokens_details",
    "properties",
    "reasoning",
    "reasoning_content",
    "reasoning_tokens",
    "refusal",
    "required",
    "response_format",
    "role",
    "schema",
    "seed",
    "service_tier",
    "status",
    "stop",
    "stream",
    "stream_options",
    "strict",
    "summary",
    "system_fingerprint",
    "temperature",
    "text",
    "tool_call_id",
    "tool_calls",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "total_tokens",
    "type",
    "url",
    "usage",
    "user",
];

/// Keys whose string values are identifiers, read apart from the text.
const IDENTIFIER_KEYS: &[&str] = &[
    "finish_reason",
    "id",
    "model",
    "name",
    "object",
    "role",
    "service_tier",
    "status",
    "system_fingerprint",
    "tool_call_id",
    "type",
];

/// Whether `s`, the value of `key` in an object that is the value of `parent`, is a media
/// payload rather than text: only in the fields the schemas give media — an image URL, a
/// file's data, audio data — and, for the URLs and files, only as a base64 `data:` URL of
/// that kind. The same bytes anywhere else (an answer's content that is a `data:` URL
/// carrying a secret) are text.
fn media(key: Option<&str>, parent: Option<&str>, s: &str) -> bool {
    let data_url = |kinds: &[&str]| {
        s.get(..s.len().min(80))
            .and_then(|head| head.strip_prefix("data:"))
            .is_some_and(|head| {
                head.contains(";base64,") && kinds.iter().any(|m| head.starts_with(m))
            })
    };
    match (parent, key) {
        (Some("image_url"), Some("url")) | (_, Some("image_url")) => data_url(&["image/"]),
        (Some("input_audio" | "audio"), Some("data")) => true,
        (_, Some("file_data")) => data_url(&[""]),
        _ => false,
    }
}

/// The strings of a document, joined for a rail; see the module documentation.
pub struct Doc<'a> {
    /// The text a rail reads.
    pub text: String,
    /// The identifiers' values and the unknown keys, one per line: read by the rail too,
    /// but never rewritten (something to redact there withholds the whole).
    pub identifiers: String,
    leaves: Vec<&'a mut String>,
    /// Where each leaf (by position) lies in `text`.
    spans: Vec<(usize, usize)>,
}

impl<'a> Doc<'a> {
    /// The document `v`, leaving out the values of the keys in `skip` at its top level.
    pub fn new(v: &'a mut Value, skip: &[&str]) -> Self {
        let mut found: Vec<(String, &'a mut String)> = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        walk(
            v,
            &mut String::new(),
            None,
            None,
            skip,
            true,
            &mut found,
            &mut keys,
        );
        let (ids, mut found): (Vec<_>, Vec<_>) = found.into_iter().partition(|(shape, _)| {
            let last = shape.rsplit('.').find(|k| *k != "*").unwrap_or_default();
            IDENTIFIER_KEYS.contains(&last)
        });
        // Stable: within a group, document order.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let mut text = String::new();
        let mut spans = Vec::with_capacity(found.len());
        let mut leaves = Vec::with_capacity(found.len());
        let mut last: Option<String> = None;
        for (shape, s) in found {
            if last.as_ref().is_some_and(|l| *l != shape) {
                text.push('\n');
            }
            let start = text.len();
            text.push_str(s);
            spans.push((start, text.len()));
            leaves.push(s);
            last = Some(shape);
        }
        keys.sort();
        keys.dedup();
        let identifiers = ids
            .iter()
            .map(|(_, s)| s.as_str())
            .chain(keys.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        Self {
            text,
            identifiers,
            leaves,
            spans,
        }
    }

    /// Whether the document has no text and no identifiers at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.identifiers.is_empty()
    }

    /// Puts `edits` (sorted, disjoint, in [`Doc::text`]'s offsets) back into the strings
    /// they came from. An edit across two strings replaces the first one's part with the
    /// replacement and removes the others' parts.
    pub fn apply(self, edits: &[Edit]) {
        let mut local: Vec<Vec<Edit>> = vec![Vec::new(); self.leaves.len()];
        for e in edits {
            // The strings lie in order in the text: the first one the edit reaches, then on.
            let from = self.spans.partition_point(|&(_, end)| end <= e.start);
            let reached = self.spans.iter().enumerate().skip(from);
            for (n, (leaf, &(s, t))) in reached.take_while(|(_, (s, _))| *s < e.end).enumerate() {
                if let Some(l) = local.get_mut(leaf) {
                    l.push(Edit {
                        start: e.start.max(s) - s,
                        end: e.end.min(t) - s,
                        with: if n == 0 {
                            e.with.clone()
                        } else {
                            String::new()
                        },
                    });
                }
            }
        }
        for (leaf, es) in self.leaves.into_iter().zip(local) {
            if !es.is_empty() {
                *leaf = rampart_guard::output::apply_edits(leaf, &es);
            }
        }
    }

    /// Each string replaced by `f` of it (when `f` gives one): the fallback when the rail's
    /// redaction cannot be placed in the joined text.
    pub fn each(self, mut f: impl FnMut(&str) -> Option<String>) {
        for leaf in self.leaves {
            if let Some(new) = f(leaf) {
                *leaf = new;
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn walk<'a>(
    v: &'a mut Value,
    shape: &mut String,
    key: Option<&str>,
    parent: Option<&str>,
    skip: &[&str],
    top: bool,
    found: &mut Vec<(String, &'a mut String)>,
    keys: &mut Vec<String>,
) {
    match v {
        Value::String(s) if !media(key, parent, s) => found.push((shape.clone(), s)),
        Value::Array(items) => {
            let len = shape.len();
            shape.push_str(".*");
            for item in items {
                walk(item, shape, key, parent, skip, false, found, keys);
            }
            shape.truncate(len);
        }
        Value::Object(map) => {
            for (k, item) in map.iter_mut() {
                if top && skip.contains(&k.as_str()) {
                    continue;
                }
                if !SCHEMA_KEYS.contains(&k.as_str()) {
                    keys.push(k.clone());
                }
                let len = shape.len();
                shape.push('.');
                shape.push_str(k);
                walk(item, shape, Some(k), key, skip, false, found, keys);
                shape.truncate(len);
            }
        }
        _ => {}
    }
}

/// The output rail on a whole document — an answer, an error body, a stream's event:
/// anything that blocks withholds it (`Err`), and so does anything found in its identifiers,
/// which are never rewritten. Personal data in its text is redacted in place when `redact`
/// (`Ok(Some(verdict))`, for the audit; a changed `logprobs` token gets its new bytes) and
/// withholds it otherwise.
///
/// # Errors
/// The verdict, when the document must be withheld.
pub fn output_rail(
    guard: &rampart_guard::Guard,
    v: &mut Value,
    secret: &rampart_guard::Confidential,
    redact: bool,
) -> Result<Option<rampart_guard::Verdict>, rampart_guard::Verdict> {
    tool_calls(guard, v, secret)?;
    // Only a document with logprobs needs its earlier self, to rewrite their bytes.
    let before = (redact && has_key(v, "logprobs")).then(|| v.clone());
    let doc = Doc::new(v, &[]);
    if !doc.identifiers.is_empty() {
        let mut ids = guard.check_output(&doc.identifiers, Some(&secret.canary));
        if ids.blocked || ids.redacted.is_some() {
            ids.blocked = true;
            return Err(ids);
        }
    }
    if doc.text.is_empty() {
        return Ok(None);
    }
    let mut verdict =
        guard.check_answer(&doc.text, secret, &mut rampart_guard::leak::Seen::default());
    if verdict.blocked {
        return Err(verdict);
    }
    if verdict.redacted.is_none() {
        return Ok(None);
    }
    if !redact {
        verdict.blocked = true;
        return Err(verdict);
    }
    match &verdict.edits {
        Some(edits) => doc.apply(edits),
        // Redacted on its reading view: string by string.
        None => doc.each(|s| guard.check_output(s, Some(&secret.canary)).redacted),
    }
    if let Some(before) = before {
        fix_token_bytes(&before, v);
    }
    Ok(Some(verdict))
}

/// The tool-call rail on every call in `v`: any object with a string `name` and
/// `arguments` (a chat tool call's `function`, a legacy `function_call`, a responses
/// `function_call` item, in an answer or a stream event; arguments as a JSON text, or as
/// JSON itself, as some servers send them).
///
/// # Errors
/// The verdict of the first call refused.
fn tool_calls(
    guard: &rampart_guard::Guard,
    v: &Value,
    secret: &rampart_guard::Confidential,
) -> Result<(), rampart_guard::Verdict> {
    match v {
        Value::Object(o) => {
            if let (Some(Value::String(name)), Some(args)) = (o.get("name"), o.get("arguments")) {
                let text = match args {
                    Value::String(t) => std::borrow::Cow::Borrowed(t.as_str()),
                    other => std::borrow::Cow::Owned(other.to_string()),
                };
                if let Some(verdict) = guard.check_tool_call(name, &text, secret) {
                    return Err(verdict);
                }
            }
            o.values().try_for_each(|x| tool_calls(guard, x, secret))
        }
        Value::Array(a) => a.iter().try_for_each(|x| tool_calls(guard, x, secret)),
        _ => Ok(()),
    }
}

/// Whether `key` is present, not null, anywhere in `v`.
fn has_key(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(o) => o
            .iter()
            .any(|(k, x)| (k == key && !x.is_null()) || has_key(x, key)),
        Value::Array(a) => a.iter().any(|x| has_key(x, key)),
        _ => false,
    }
}

/// After redaction: a `logprobs` entry whose `token` changed gets the `bytes` of its new
/// token (the old bytes would spell what was redacted). `before` is the document as it was.
fn fix_token_bytes(before: &Value, after: &mut Value) {
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let changed = match (b.get("token"), a.get("token")) {
                (Some(Value::String(x)), Some(Value::String(y))) if x != y => Some(y.clone()),
                _ => None,
            };
            if let Some(token) = changed
                && a.get("bytes").is_some_and(Value::is_array)
            {
                a.insert(
                    "bytes".into(),
                    Value::from(token.bytes().map(u64::from).collect::<Vec<_>>()),
                );
            }
            for (k, av) in a.iter_mut() {
                if let Some(bv) = b.get(k) {
                    fix_token_bytes(bv, av);
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => {
            for (bv, av) in b.iter().zip(a.iter_mut()) {
                fix_token_bytes(bv, av);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use serde_json::json;

    #[test]
    fn every_string_is_read_and_parts_of_one_field_are_joined() {
        let mut v = json!({
            "choices": [
                {"message": {"content": [{"type": "text", "text": "AKIA2JQ7"}, {"type": "text", "text": "KX5MRD3PWZ4T"}],
                             "tool_calls": [{"function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
                 "extra_field": "hidden"},
                {"message": {"content": [{"type": "text", "text": "second"}]}}
            ],
            "surprise": {"deep": ["x"]},
            "image": {"image_url": {"url": "data:image/png;base64,AAAA"}},
            "fake": "data:image/png;base64,QUtJQQ=="
        });
        let doc = Doc::new(&mut v, &[]);
        let lines: Vec<&str> = doc.text.lines().collect();
        assert!(lines.contains(&"AKIA2JQ7KX5MRD3PWZ4Tsecond"), "{lines:?}");
        for s in ["{\"a\": 1}", "hidden", "x"] {
            assert!(lines.iter().any(|l| l.contains(s)), "{s}: {lines:?}");
        }
        assert!(!doc.text.contains("AAAA"), "media is not text");
        assert!(
            doc.text.contains("QUtJQQ=="),
            "a data URL elsewhere is text"
        );
        let ids: Vec<&str> = doc.identifiers.lines().collect();
        for s in [
            "f",
            "text",
            "extra_field",
            "surprise",
            "deep",
            "image",
            "fake",
        ] {
            assert!(ids.contains(&s), "{s}: {ids:?}");
        }
        assert!(!ids.contains(&"choices"), "schema keys are not read");
    }

    #[test]
    fn edits_go_back_into_their_strings_even_across_two() {
        let mut v = json!({"content": [{"text": "mail bob@ex"}, {"text": "ample.org now"}], "other": "keep"});
        let doc = Doc::new(&mut v, &[]);
        let start = doc.text.find("bob@").unwrap();
        let end = doc.text.find(".org").unwrap() + 4;
        let other = doc.text.find("keep").unwrap();
        doc.apply(&[
            Edit {
                start,
                end,
                with: "<EMAIL>".into(),
            },
            Edit {
                start: other,
                end: other + 2,
                with: "<X>".into(),
            },
        ]);
        assert_eq!(
            v,
            json!({"content": [{"text": "mail <EMAIL>"}, {"text": " now"}], "other": "<X>ep"})
        );
        // Identifiers and unknown keys are read apart, never edited.
        let mut v = json!({"id": "chatcmpl-1", "bob@example.org": 1, "content": "hi"});
        let doc = Doc::new(&mut v, &[]);
        assert_eq!(doc.text, "hi");
        assert_eq!(doc.identifiers, "chatcmpl-1\nbob@example.org");
    }

    #[test]
    fn a_redacted_token_gets_its_new_bytes() {
        let before = json!({"content": [{"token": "bob", "bytes": [98, 111, 98]}, {"token": "x", "bytes": [120]}]});
        let mut after = json!({"content": [{"token": "<P>", "bytes": [98, 111, 98]}, {"token": "x", "bytes": [120]}]});
        fix_token_bytes(&before, &mut after);
        assert_eq!(after["content"][0]["bytes"], json!([60, 80, 62]));
        assert_eq!(after["content"][1]["bytes"], json!([120]));
    }
}
