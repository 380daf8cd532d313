//! The output rail on a streamed chat completion, chunk by chunk.
//!
//! Every string of every chunk is read. The text fields of each choice's `delta` (`content`,
//! `reasoning_content`, `refusal`, each tool call's `function.arguments`, and any field not
//! known to be an identifier) are *channels*: their text is gathered, checked, and released
//! only once it has passed, the last [`HOLDBACK`] characters held back so a secret or a
//! piece of personal data cut across chunks is seen whole. Personal data is redacted in what
//! is released (a redaction is never cut by the release point); a secret, the canary or
//! anything else that blocks cuts the stream. Identifiers (`role`, `type`, `id`, `name`) are
//! checked and passed on at once, so a tool call is announced before its arguments arrive.
//! The channels of all choices are also read together, so a secret split between two
//! choices or two fields is seen. `logprobs` are read but not passed on: token by token they
//! cannot be redacted. Text is checked every [`STEP`] bytes and at the end.

use std::collections::BTreeMap;

use rampart_guard::leak::Seen;
use rampart_guard::output::Edit;
use rampart_guard::{Confidential, Finding, Guard, Verdict};
use serde_json::{Map, Value, json};

/// Characters of a channel held back until more text (or the end) shows they are clean:
/// longer than any pattern the rail matches in one piece (an IBAN, a card, an address, the
/// first line of a private key's body, a spaced-out canary).
pub const HOLDBACK: usize = 256;
/// Text already released that is read again before new text, for context (a phone word
/// before a number, the start of a spaced-out canary).
pub const CONTEXT: usize = 256;
/// New bytes in a channel before it is checked again.
pub const STEP: usize = 128;
/// Most text of one streamed answer, all channels together, in bytes.
pub const MAX_TEXT: usize = 1 << 20;

/// Keys whose string values are identifiers: checked and passed on at once.
const IDENTIFIERS: &[&str] = &["role", "type", "id", "name"];

/// One step of a channel's path inside a `delta`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seg {
    Key(String),
    /// An element of a list whose elements carry their own `index` (tool calls).
    Indexed(u64),
    /// An element of another list, by position.
    At(usize),
}

#[derive(Debug, Default)]
struct Channel {
    text: String,
    /// Bytes of `text` released.
    sent: usize,
    /// Bytes of `text` checked.
    checked: usize,
}

/// The text channels of one stream, by key, checked and released together.
pub(crate) struct Channels<'g, K> {
    pub(crate) guard: &'g Guard,
    pub(crate) secret: Confidential,
    /// What the answer has shown of the system prompt so far.
    seen: Seen,
    map: BTreeMap<K, Channel>,
    total: usize,
}

impl<'g, K: Ord + Clone> Channels<'g, K> {
    pub(crate) fn new(guard: &'g Guard, secret: Confidential) -> Self {
        Self {
            guard,
            secret,
            seen: Seen::default(),
            map: BTreeMap::new(),
            total: 0,
        }
    }

    /// The text of a channel so far.
    pub(crate) fn text(&self, key: &K) -> Option<&str> {
        self.map.get(key).map(|c| c.text.as_str())
    }

    /// The keys of the channels seen.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.map.keys()
    }

    /// Counts `n` more bytes of the answer's text.
    pub(crate) fn charge(&mut self, n: usize) -> Result<(), Cut> {
        self.total += n;
        if self.total > MAX_TEXT {
            return Err(too_long());
        }
        Ok(())
    }

    pub(crate) fn append(&mut self, key: K, text: &str) -> Result<(), Cut> {
        self.charge(text.len())?;
        self.map.entry(key).or_default().text.push_str(text);
        Ok(())
    }

    /// Checks what is new and releases what has passed (redacted), by channel; at the
    /// `end`, everything.
    pub(crate) fn release(&mut self, end: bool) -> Result<Vec<(K, String)>, Cut> {
        let due = end || self.map.values().any(|c| c.text.len() - c.checked >= STEP);
        if !due {
            return Ok(Vec::new());
        }
        // All channels together, so a secret split between two of them is seen.
        let open: Vec<&Channel> = self
            .map
            .values()
            .filter(|c| c.checked < c.text.len() || c.sent < c.text.len())
            .collect();
        if open.len() > 1 {
            let mut joined = String::new();
            for c in &open {
                let from = c.text.floor_char_boundary(c.sent.saturating_sub(CONTEXT));
                joined.push_str(c.text.get(from..).unwrap_or_default());
            }
            let v = self.guard.check_output(&joined, Some(&self.secret.canary));
            if v.blocked {
                return Err(v);
            }
        }
        let mut out = Vec::new();
        for (key, c) in &mut self.map {
            if c.checked == c.text.len() && (!end || c.sent == c.text.len()) {
                continue;
            }
            if let Some(part) = c.release(self.guard, &self.secret, &mut self.seen, end)? {
                out.push((key.clone(), part));
            }
        }
        Ok(out)
    }
}

impl Channel {
    /// Checks the new text (with context) and returns what is released now.
    /// `secret` is the request's, with what earlier windows showed of its prompt.
    fn release(
        &mut self,
        guard: &Guard,
        secret: &Confidential,
        seen: &mut Seen,
        end: bool,
    ) -> Result<Option<String>, Cut> {
        let from = if end {
            0
        } else {
            self.text
                .floor_char_boundary(self.sent.saturating_sub(CONTEXT))
        };
        let window = self.text.get(from..).unwrap_or_default();
        let v = guard.check_answer(window, secret, seen);
        if v.blocked {
            return Err(v);
        }
        self.checked = self.text.len();
        let edits: Vec<Edit> = match (&v.redacted, v.edits.clone()) {
            (None, _) => Vec::new(),
            (Some(_), Some(e)) => e
                .into_iter()
                .map(|e| Edit {
                    start: e.start + from,
                    end: e.end + from,
                    with: e.with,
                })
                .collect(),
            // Redacted on its reading view: the edits cannot be placed in the stream.
            (Some(_), None) => {
                let mut v = v;
                v.blocked = true;
                return Err(v);
            }
        };
        let mut to = if end {
            self.text.len()
        } else {
            self.text
                .floor_char_boundary(self.text.len().saturating_sub(HOLDBACK))
        };
        // A redaction is released whole or not at all.
        for e in &edits {
            if e.start < to && to < e.end {
                to = if e.start >= self.sent { e.start } else { e.end };
            }
        }
        if to <= self.sent {
            return Ok(None);
        }
        let mut part = String::new();
        let mut at = self.sent;
        for e in edits.iter().filter(|e| e.end > self.sent && e.start < to) {
            part.push_str(self.text.get(at..e.start.max(at)).unwrap_or_default());
            part.push_str(&e.with);
            at = e.end;
        }
        part.push_str(self.text.get(at.min(to)..to).unwrap_or_default());
        self.sent = to;
        Ok(Some(part))
    }
}

/// A channel of a chat stream: the choice, and the path of the field in its `delta`
/// (`None`: the choice's logprobs, read and never passed on).
type ChatKey = (u64, Option<Vec<Seg>>);

/// The state of one stream.
pub struct StreamGuard<'g> {
    channels: Channels<'g, ChatKey>,
    /// `id`, `created`, `model` of the first chunk, for the chunks sent.
    template: Map<String, Value>,
    /// The pieces of each identifier so far, by choice and path.
    identifiers: BTreeMap<(u64, Vec<Seg>), String>,
    finish: BTreeMap<u64, String>,
    usage: Option<Value>,
}

/// Whether `path` (inside a chat `delta`) is a tool call's name: `tool_calls[i].function.name`
/// or the legacy `function_call.name`.
fn is_tool_name(path: &[Seg]) -> bool {
    let key = |s: Option<&Seg>, k: &str| matches!(s, Some(Seg::Key(x)) if x == k);
    match path {
        [a, Seg::Indexed(_), b, c] => {
            key(Some(a), "tool_calls") && key(Some(b), "function") && key(Some(c), "name")
        }
        [a, b] => key(Some(a), "function_call") && key(Some(b), "name"),
        _ => false,
    }
}

/// Why a stream was cut.
pub type Cut = Verdict;

fn cut_by(rail: &'static str, rule: &str, detail: String) -> Cut {
    Verdict {
        blocked: true,
        score: 1.0,
        findings: vec![Finding {
            rail,
            rule: rule.into(),
            family: None,
            detail,
            weight: 1.0,
        }],
        normalisation: None,
        redacted: None,
        refusal: None,
        edits: None,
    }
}

/// The cut of a stream longer than the proxy reads.
#[must_use]
pub fn too_long() -> Cut {
    cut_by(
        "size",
        "size.too-long",
        format!("the streamed answer is longer than {MAX_TEXT} bytes"),
    )
}

impl<'g> StreamGuard<'g> {
    /// A stream checked by `guard`'s output rail, looking for the request's `secret`.
    #[must_use]
    pub fn new(guard: &'g Guard, secret: Confidential) -> Self {
        Self {
            channels: Channels::new(guard, secret),
            template: Map::new(),
            identifiers: BTreeMap::new(),
            finish: BTreeMap::new(),
            usage: None,
        }
    }

    /// One chunk from the upstream: the chunks to send on now.
    ///
    /// # Errors
    /// The stream must be cut: the verdict says why.
    pub fn push(&mut self, mut chunk: Value) -> Result<Vec<Value>, Cut> {
        let Some(obj) = chunk.as_object_mut() else {
            return Err(cut_by(
                "stream",
                "stream.not-an-object",
                "a chunk of the upstream's stream is not a JSON object".into(),
            ));
        };
        if self.template.is_empty() {
            for k in ["id", "created", "model", "system_fingerprint"] {
                if let Some(v) = obj.get(k).filter(|v| v.is_string() || v.is_number()) {
                    self.template.insert(k.into(), v.clone());
                }
            }
            // The template is sent on with every chunk: it is checked once.
            let mut t = Value::Object(self.template.clone());
            self.check_whole(&mut t)?;
        }
        let choices = obj.remove("choices");
        if let Some(u) = obj.remove("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u);
        }
        // Everything else at the top level: read when it is not the template's.
        obj.retain(|k, v| self.template.get(k) != Some(v) && k != "object");
        let mut rest = Value::Object(std::mem::take(obj));
        self.check_whole(&mut rest)?;
        if let Some(u) = self.usage.as_mut() {
            let mut u = u.clone();
            self.check_whole(&mut u)?;
        }
        let mut out = Vec::new();
        for (pos, mut choice) in choices
            .and_then(|c| match c {
                Value::Array(a) => Some(a),
                _ => None,
            })
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let idx = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            let Some(c) = choice.as_object_mut() else {
                continue;
            };
            c.remove("index");
            if let Some(f) = c.remove("finish_reason").filter(|f| !f.is_null()) {
                let f = f.as_str().unwrap_or("stop").to_owned();
                if !matches!(
                    f.as_str(),
                    "stop" | "length" | "tool_calls" | "content_filter" | "function_call"
                ) {
                    let mut v = json!(f);
                    self.check_whole(&mut v)?;
                }
                self.finish.insert(idx, f);
            }
            if let Some(lp) = c.remove("logprobs").filter(|l| !l.is_null()) {
                let mut text = String::new();
                gather(&lp, &mut text);
                self.append(idx, None, &text)?;
            }
            let delta = c.remove("delta").unwrap_or(Value::Null);
            // Anything else in a choice: read as a whole, not passed on.
            let mut rest = Value::Object(std::mem::take(c));
            self.check_whole(&mut rest)?;
            let (mut texts, mut ids) = (Vec::new(), Vec::new());
            let skeleton = split(delta, &mut Vec::new(), &mut texts, &mut ids);
            for (path, piece) in ids {
                self.identifier(idx, path, &piece)?;
            }
            if let Some(s) = skeleton.filter(has_leaf) {
                out.push(self.chunk(idx, s, None));
            }
            for (path, text) in texts {
                self.append(idx, Some(path), &text)?;
            }
        }
        out.extend(self.release(false)?);
        Ok(out)
    }

    /// The end of the stream: the rest of every channel once it has passed, then each
    /// choice's finish and the usage.
    ///
    /// # Errors
    /// As [`StreamGuard::push`].
    pub fn finish(&mut self) -> Result<Vec<Value>, Cut> {
        // Each tool call whole, before the rest of its arguments and its finish go out.
        for ((idx, path), name) in &self.identifiers {
            if !is_tool_name(path) {
                continue;
            }
            let mut args_path = path.clone();
            args_path.pop();
            args_path.push(Seg::Key("arguments".into()));
            let args = self
                .channels
                .text(&(*idx, Some(args_path)))
                .unwrap_or_default();
            if let Some(v) = self
                .channels
                .guard
                .check_tool_call(name, args, &self.channels.secret)
            {
                return Err(v);
            }
        }
        let mut out = self.release(true)?;
        let mut choices: Vec<u64> = self.channels.keys().map(|k| k.0).collect();
        choices.extend(self.finish.keys());
        choices.sort_unstable();
        choices.dedup();
        if choices.is_empty() {
            choices.push(0);
        }
        for idx in choices {
            let f = self
                .finish
                .get(&idx)
                .cloned()
                .unwrap_or_else(|| "stop".into());
            out.push(self.chunk(idx, json!({}), Some(&f)));
        }
        if let Some(u) = self.usage.take() {
            let mut c = self.base();
            c.insert("choices".into(), json!([]));
            c.insert("usage".into(), u);
            out.push(Value::Object(c));
        }
        Ok(out)
    }

    /// The chunks that end a cut stream: the refusal in each choice seen.
    #[must_use]
    pub fn refusal(&self, message: &str) -> Vec<Value> {
        let mut choices: Vec<u64> = self.channels.keys().map(|k| k.0).collect();
        choices.sort_unstable();
        choices.dedup();
        if choices.is_empty() {
            choices.push(0);
        }
        let mut out = Vec::new();
        for idx in choices {
            out.push(self.chunk(idx, json!({"content": format!("\n{message}")}), None));
            out.push(self.chunk(idx, json!({}), Some("content_filter")));
        }
        out
    }

    fn base(&self) -> Map<String, Value> {
        let mut c = self.template.clone();
        c.insert("object".into(), json!("chat.completion.chunk"));
        c.entry("id").or_insert_with(|| json!("chatcmpl-rampart"));
        c.entry("created").or_insert_with(|| json!(0));
        c.entry("model").or_insert_with(|| json!(""));
        c
    }

    #[allow(clippy::needless_pass_by_value)] // Called with fresh values.
    fn chunk(&self, idx: u64, delta: Value, finish: Option<&str>) -> Value {
        let mut c = self.base();
        c.insert(
            "choices".into(),
            json!([{"index": idx, "delta": delta, "finish_reason": finish}]),
        );
        Value::Object(c)
    }

    /// Reads a value that is passed on (or dropped) whole: it must pass as it is.
    fn check_whole(&self, v: &mut Value) -> Result<(), Cut> {
        let (guard, secret) = (self.channels.guard, &self.channels.secret);
        crate::openai_text::output_rail(guard, v, secret, false).map(|_| ())
    }

    /// An identifier's piece, passed on at once. A client joins the pieces (the openai SDK
    /// concatenates every string of a delta but `type`), so the piece is read with what came
    /// before it: an address cut across two `name` pieces is seen whole.
    fn identifier(&mut self, idx: u64, path: Vec<Seg>, piece: &str) -> Result<(), Cut> {
        self.channels.charge(piece.len())?;
        let tool_name = is_tool_name(&path);
        let whole = self.identifiers.entry((idx, path)).or_default();
        whole.push_str(piece);
        let from = whole.floor_char_boundary(whole.len().saturating_sub(piece.len() + CONTEXT));
        let window = whole.get(from..).unwrap_or_default();
        let mut v = self
            .channels
            .guard
            .check_output(window, Some(&self.channels.secret.canary));
        if v.blocked || v.redacted.is_some() {
            v.blocked = true;
            return Err(v);
        }
        // A tool's name is refused as soon as it cannot become an allowed one.
        if tool_name
            && !self.channels.guard.tools().tool_allowed(whole, true)
            && let Some(v) =
                self.channels
                    .guard
                    .check_tool_call(whole, "", &Confidential::canary(String::new()))
        {
            return Err(v);
        }
        Ok(())
    }

    fn append(&mut self, idx: u64, path: Option<Vec<Seg>>, text: &str) -> Result<(), Cut> {
        self.channels.append((idx, path), text)
    }

    /// Checks what is new and releases what has passed; at the `end`, everything.
    fn release(&mut self, end: bool) -> Result<Vec<Value>, Cut> {
        let released = self.channels.release(end)?;
        Ok(released
            .into_iter()
            .filter_map(|((idx, path), part)| path.map(|p| self.chunk(idx, build(&p, part), None)))
            .collect())
    }
}

/// A channel of a `/v1/responses` stream: the event type, its item, output, content and
/// summary indices.
type EventKey = (String, String, u64, Option<u64>, Option<u64>);

/// The output rail on a streamed `/v1/responses` answer, event by event. Every `*.delta`
/// event's text (output text, refusals, reasoning, function-call arguments) is a channel,
/// released as [`StreamGuard`] releases a chat stream's fields. Every other event is a
/// barrier: the channels are flushed first (checked whole), then the event — which repeats
/// the full text (`*.done`, `response.completed`) — is read whole and sent on with its
/// personal data redacted, or cuts the stream. Events are numbered again in order.
///
/// A function call's arguments stream as a channel; the event that ends them
/// (`response.function_call_arguments.done`, which need not repeat the tool's name) goes out
/// only after the whole call passes the tool-call rail under the name its item was
/// announced with, and a stream that ends before it checks each call that has not.
pub struct ResponsesGuard<'g> {
    channels: Channels<'g, EventKey>,
    /// Each channel's event, without its delta, for the events sent.
    templates: BTreeMap<EventKey, Value>,
    sequence: u64,
    /// Function-call items announced: item id → (tool name, whether the whole call was
    /// checked).
    calls: BTreeMap<String, (String, bool)>,
}

impl<'g> ResponsesGuard<'g> {
    /// A stream checked by `guard`'s output rail, looking for the request's `secret`.
    #[must_use]
    pub fn new(guard: &'g Guard, secret: Confidential) -> Self {
        Self {
            channels: Channels::new(guard, secret),
            templates: BTreeMap::new(),
            sequence: 0,
            calls: BTreeMap::new(),
        }
    }

    /// Remembers the tool name of a function-call item an event carries (counted against
    /// the stream's text budget).
    fn note_call(&mut self, event: &Value) -> Result<(), Cut> {
        let Some(item) = event.get("item") else {
            return Ok(());
        };
        if item.get("type").and_then(Value::as_str) != Some("function_call") {
            return Ok(());
        }
        if let (Some(id), Some(name)) = (
            item.get("id").and_then(Value::as_str),
            item.get("name").and_then(Value::as_str),
        ) && !self.calls.contains_key(id)
        {
            self.channels.charge(id.len() + name.len())?;
            self.calls.insert(id.to_owned(), (name.to_owned(), false));
        }
        Ok(())
    }

    /// The arguments streamed so far for the function-call item `id`.
    fn streamed_arguments(&self, id: &str) -> String {
        self.channels
            .keys()
            .filter(|k| k.0 == "response.function_call_arguments.delta" && k.1 == id)
            .filter_map(|k| self.channels.text(k))
            .collect()
    }

    /// The tool-call rail on item `id`'s whole call: `name` if the event gave one, else the
    /// name it was announced with (none: the empty name, which a list of allowed tools
    /// refuses); `arguments` if the event gave them, else those streamed.
    fn check_call(
        &mut self,
        id: &str,
        name: Option<&str>,
        arguments: Option<&Value>,
    ) -> Result<(), Cut> {
        // The name the event gives and the one the item was announced with, the arguments
        // the event gives and those streamed: a `.done` that says less than the stream did
        // (empty arguments, another tool's name) must not pass in its place.
        let announced = self.calls.get(id).map(|c| c.0.clone());
        let mut names: Vec<String> = name.map(str::to_owned).into_iter().collect();
        names.extend(announced);
        if names.is_empty() {
            names.push(String::new());
        }
        names.dedup();
        let mut texts = vec![self.streamed_arguments(id)];
        match arguments {
            Some(Value::String(t)) => texts.push(t.clone()),
            Some(other) => texts.push(other.to_string()),
            None => {}
        }
        texts.dedup();
        let ch = &self.channels;
        for n in &names {
            for t in &texts {
                if let Some(v) = ch.guard.check_tool_call(n, t, &ch.secret) {
                    return Err(v);
                }
            }
        }
        let name = names.swap_remove(0);
        self.calls
            .entry(id.to_owned())
            .or_insert_with(|| (name, true))
            .1 = true;
        Ok(())
    }

    fn numbered(&mut self, mut event: Value) -> Value {
        if let Some(o) = event.as_object_mut() {
            o.insert("sequence_number".into(), json!(self.sequence));
        }
        self.sequence += 1;
        event
    }

    fn emit(&mut self, released: Vec<(EventKey, String)>) -> Vec<Value> {
        let mut out = Vec::new();
        for (key, part) in released {
            let mut event = self
                .templates
                .get(&key)
                .cloned()
                .unwrap_or_else(|| json!({}));
            if let Some(o) = event.as_object_mut() {
                o.insert("delta".into(), Value::String(part));
            }
            out.push(self.numbered(event));
        }
        out
    }

    /// One event from the upstream: the events to send on now.
    ///
    /// # Errors
    /// The stream must be cut: the verdict says why.
    pub fn push(&mut self, mut event: Value) -> Result<Vec<Value>, Cut> {
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        self.note_call(&event)?;
        let delta = event
            .get("delta")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let (true, Some(delta)) = (
            kind.ends_with(".delta") && kind != "response.audio.delta",
            delta,
        ) {
            let index = |k: &str| event.get(k).and_then(Value::as_u64);
            let key: EventKey = (
                kind,
                event
                    .get("item_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                index("output_index").unwrap_or(0),
                index("content_index"),
                index("summary_index"),
            );
            if let Some(o) = event.as_object_mut() {
                o.remove("delta");
                o.remove("sequence_number");
            }
            if !self.templates.contains_key(&key) {
                // Its other fields are sent with every part: read once.
                let mut t = event.clone();
                self.check_whole(&mut t, false)?;
                self.templates.insert(key.clone(), t);
            }
            self.channels.append(key, &delta)?;
            let released = self.channels.release(false)?;
            return Ok(self.emit(released));
        }
        if kind == "response.function_call_arguments.done" {
            let id = event
                .get("item_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let name = event.get("name").and_then(Value::as_str).map(str::to_owned);
            self.check_call(&id, name.as_deref(), event.get("arguments"))?;
        }
        let released = self.channels.release(true)?;
        let mut out = self.emit(released);
        self.check_whole(&mut event, true)?;
        out.push(self.numbered(event));
        Ok(out)
    }

    /// The end of the stream: what the channels still hold.
    ///
    /// # Errors
    /// As [`ResponsesGuard::push`].
    pub fn finish(&mut self) -> Result<Vec<Value>, Cut> {
        let open: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| !c.1)
            .map(|(id, _)| id.clone())
            .collect();
        for id in open {
            self.check_call(&id, None, None)?;
        }
        let released = self.channels.release(true)?;
        Ok(self.emit(released))
    }

    /// The event that ends a cut stream: the response, incomplete, with the refusal.
    #[must_use]
    pub fn refusal(&mut self, message: &str, model: &str) -> Vec<Value> {
        let event = json!({"type": "response.incomplete", "response": {
            "id": "resp_rampart", "object": "response", "model": model, "status": "incomplete",
            "incomplete_details": {"reason": "content_filter"},
            "output": [{"type": "message", "id": "msg_rampart", "role": "assistant", "status": "incomplete",
                        "content": [{"type": "output_text", "text": message, "annotations": []}]}]}});
        vec![self.numbered(event)]
    }

    /// Reads an event sent on whole; with `redact`, personal data in it is redacted in
    /// place, otherwise anything found cuts the stream.
    fn check_whole(&self, v: &mut Value, redact: bool) -> Result<(), Cut> {
        let (guard, secret) = (self.channels.guard, &self.channels.secret);
        crate::openai_text::output_rail(guard, v, secret, redact).map(|_| ())
    }
}

/// The text of every string in `v`, in order, joined with nothing.
fn gather(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Array(a) => a.iter().for_each(|x| gather(x, out)),
        Value::Object(o) => o.values().for_each(|x| gather(x, out)),
        _ => {}
    }
}

/// Splits a `delta` into what is passed on at once (identifiers, numbers, flags: the
/// skeleton, whose identifiers also go to `ids`) and its text channels (path, text).
fn split(
    v: Value,
    path: &mut Vec<Seg>,
    texts: &mut Vec<(Vec<Seg>, String)>,
    ids: &mut Vec<(Vec<Seg>, String)>,
) -> Option<Value> {
    match v {
        Value::String(s) => {
            let identifier =
                matches!(path.last(), Some(Seg::Key(k)) if IDENTIFIERS.contains(&k.as_str()));
            if identifier {
                ids.push((path.clone(), s.clone()));
                Some(Value::String(s))
            } else {
                if !s.is_empty() {
                    texts.push((path.clone(), s));
                }
                None
            }
        }
        Value::Array(items) => {
            let mut kept = Vec::new();
            for (pos, item) in items.into_iter().enumerate() {
                let seg = item
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(Seg::At(pos), Seg::Indexed);
                path.push(seg);
                if let Some(k) = split(item, path, texts, ids) {
                    kept.push(k);
                }
                path.pop();
            }
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        Value::Object(map) => {
            let mut kept = Map::new();
            for (k, item) in map {
                path.push(Seg::Key(k.clone()));
                if let Some(x) = split(item, path, texts, ids) {
                    kept.insert(k, x);
                }
                path.pop();
            }
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other),
    }
}

/// Whether a skeleton says anything beyond list indices.
fn has_leaf(v: &Value) -> bool {
    match v {
        Value::Object(o) => o.iter().any(|(k, x)| k != "index" && has_leaf(x)),
        Value::Array(a) => a.iter().any(has_leaf),
        Value::Null => false,
        _ => true,
    }
}

/// The `delta` that carries `text` at `path`.
fn build(path: &[Seg], text: String) -> Value {
    match path.split_first() {
        None => Value::String(text),
        Some((Seg::Key(k), rest)) => {
            let mut m = Map::new();
            m.insert(k.clone(), build(rest, text));
            Value::Object(m)
        }
        Some((Seg::Indexed(i), rest)) => {
            let mut inner = build(rest, text);
            if let Some(o) = inner.as_object_mut() {
                o.insert("index".into(), json!(i));
            }
            json!([inner])
        }
        Some((Seg::At(_), rest)) => json!([build(rest, text)]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::type_complexity
    )]
    use super::*;

    fn guard() -> Guard {
        Guard::new(rampart_guard::GuardConfig::default()).unwrap()
    }

    fn content(t: &str) -> Value {
        json!({"id": "c1", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]})
    }

    /// Streams `pieces` (each a chunk's JSON) and returns what the client receives:
    /// the text of each (choice, field) and the finish reasons, or the cut.
    fn run(
        pieces: Vec<Value>,
    ) -> Result<(BTreeMap<String, String>, Vec<Value>), (Cut, Vec<Value>)> {
        let g = guard();
        let mut s = StreamGuard::new(&g, "rampart-canary-0123456789abcdef".into());
        let mut sent = Vec::new();
        for p in pieces {
            match s.push(p) {
                Ok(c) => sent.extend(c),
                Err(v) => return Err((v, sent)),
            }
        }
        match s.finish() {
            Ok(c) => sent.extend(c),
            Err(v) => return Err((v, sent)),
        }
        let mut texts = BTreeMap::new();
        for c in &sent {
            for ch in c["choices"].as_array().unwrap() {
                let mut t = String::new();
                gather(&ch["delta"], &mut t);
                let key = format!(
                    "{}:{}",
                    ch["index"],
                    ch["delta"]
                        .as_object()
                        .and_then(|d| d.keys().next().cloned())
                        .unwrap_or_default()
                );
                texts.entry(key).or_insert_with(String::new).push_str(&t);
            }
        }
        Ok((texts, sent))
    }

    fn pieces_of(text: &str, n: usize, make: impl Fn(&str) -> Value) -> Vec<Value> {
        let chars: Vec<char> = text.chars().collect();
        chars
            .chunks(n)
            .map(|c| make(&c.iter().collect::<String>()))
            .collect()
    }

    #[test]
    fn personal_data_split_across_chunks_is_redacted_as_without_streaming() {
        for tail in [0, 600] {
            let text = format!(
                "Write to carol@example.org about it.{}",
                " and more".repeat(tail / 9)
            );
            let (texts, _) = run(pieces_of(&text, 3, content)).unwrap();
            let got = &texts["0:content"];
            assert!(!got.contains("carol"), "{got}");
            assert!(got.starts_with("Write to <EMAIL> about it."), "{got}");
            let whole = guard().check_output(&text, None).redacted.unwrap();
            assert_eq!(*got, whole);
        }
    }

    #[test]
    fn tool_call_arguments_and_reasoning_are_channels() {
        let mut pieces = vec![
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "send", "arguments": ""}}]}}]}),
        ];
        pieces.extend(pieces_of(r#"{"to": "carol@example.org", "body": "hi"}"#, 4, |t| {
            json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": t}}]}}]})
        }));
        pieces.extend(pieces_of(
            "thinking about dave@example.net now",
            5,
            |t| json!({"choices": [{"index": 0, "delta": {"reasoning_content": t}}]}),
        ));
        pieces.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}));
        let (_, sent) = run(pieces).unwrap();
        let all = serde_json::to_string(&sent).unwrap();
        assert!(!all.contains("carol") && !all.contains("dave"), "{all}");
        // The call is announced first, its arguments follow (redacted), then the finish.
        assert_eq!(
            sent[0]["choices"][0]["delta"]["tool_calls"][0]["id"],
            "call_1"
        );
        let args: String = sent
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            })
            .collect();
        assert_eq!(args, r#"{"to": "<EMAIL>", "body": "hi"}"#);
        assert_eq!(
            sent.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
    }

    #[test]
    fn secrets_and_the_canary_split_across_chunks_choices_or_fields_cut_the_stream() {
        let key = "AKIA2JQ7KX5MRD3PWZ4T";
        let cases = vec![
            pieces_of(&format!("{}-----BEGIN PRIV", "A".repeat(300)), 7, content)
                .into_iter()
                .chain(pieces_of("ATE KEY-----\nMIIEvQ", 7, content))
                .collect::<Vec<_>>(),
            pieces_of(&format!("the key: {key}"), 3, content),
            vec![
                json!({"choices": [{"index": 0, "delta": {"content": &key[..10]}}]}),
                json!({"choices": [{"index": 1, "delta": {"content": &key[10..]}}]}),
            ],
            vec![
                json!({"choices": [{"index": 0, "delta": {"content": &key[..10]}}]}),
                json!({"choices": [{"index": 0, "delta": {"refusal": &key[10..]}}]}),
            ],
            vec![
                content("fine"),
                json!({"choices": [{"index": 0, "delta": {}, "logprobs": {"content": [{"token": &key[..8]}, {"token": &key[8..]}]}}]}),
            ],
            pieces_of("[rampart-canary-0123456789abcdef]", 4, content),
            vec![
                json!({"choices": [{"index": 0, "delta": {"content": "ok"}}], "extra": format!("k={key}")}),
            ],
            vec![json!({"choices": [{"index": 0, "delta": {"content": "ok", "name": key}}]})],
        ];
        for (i, pieces) in cases.into_iter().enumerate() {
            let Err((_, sent)) = run(pieces) else {
                panic!("case {i} was not cut")
            };
            let all = serde_json::to_string(&sent).unwrap();
            assert!(
                !all.contains("AKIA") && !all.contains("BEGIN") && !all.contains("canary"),
                "case {i}: {all}"
            );
        }
    }

    #[test]
    fn a_responses_call_is_checked_whole_before_its_arguments_end() {
        let g = Guard::new(rampart_guard::GuardConfig {
            tools: rampart_guard::tools::ToolPolicy {
                allowed: vec!["http_get".into()],
                allowed_domains: vec!["api.example.com".into()],
            },
            ..rampart_guard::GuardConfig::default()
        })
        .unwrap();
        let args = r#"{"url": "https://collect.evil.test/x"}"#;
        let events = |with_done: bool| {
            let mut e = vec![
                json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "http_get", "arguments": ""}}),
            ];
            e.extend(pieces_of(args, 7, |t| {
                json!({"type": "response.function_call_arguments.delta",
                "item_id": "fc_1", "output_index": 0, "delta": t})
            }));
            if with_done {
                // As older servers send it: no `name`.
                e.push(
                    json!({"type": "response.function_call_arguments.done", "item_id": "fc_1",
                    "output_index": 0, "arguments": args}),
                );
            }
            e
        };
        for with_done in [true, false] {
            let mut s = ResponsesGuard::new(&g, "rampart-canary-0123456789abcdef".into());
            let mut sent = Vec::new();
            let mut cut = None;
            for e in events(with_done) {
                match s.push(e) {
                    Ok(out) => sent.extend(out),
                    Err(v) => {
                        cut = Some(v);
                        break;
                    }
                }
            }
            if cut.is_none() {
                cut = s.finish().err();
            }
            let cut = cut.expect("the call to a host not allowed is refused");
            assert!(
                cut.findings
                    .iter()
                    .any(|f| f.rule == "tool.destination-not-allowed"),
                "{cut:#?}"
            );
            assert!(
                !sent
                    .iter()
                    .any(|e| e["type"] == "response.function_call_arguments.done")
            );
        }
        // A `.done` that claims empty arguments after the stream carried the URL.
        let mut s = ResponsesGuard::new(&g, "rampart-canary-0123456789abcdef".into());
        let mut refused = false;
        for e in [
            json!({"type": "response.output_item.added", "output_index": 0,
                "item": {"type": "function_call", "id": "fc_3", "name": "http_get", "arguments": ""}}),
            json!({"type": "response.function_call_arguments.delta", "item_id": "fc_3", "output_index": 0, "delta": args}),
            json!({"type": "response.function_call_arguments.done", "item_id": "fc_3", "output_index": 0, "arguments": ""}),
        ] {
            if s.push(e).is_err() {
                refused = true;
                break;
            }
        }
        assert!(
            refused,
            "a .done with empty arguments passed in place of the streamed ones"
        );
        // The same call to an allowed host goes through whole.
        let ok = r#"{"url": "https://api.example.com/v1/weather?city=Oslo"}"#;
        let mut s = ResponsesGuard::new(&g, "rampart-canary-0123456789abcdef".into());
        let mut sent = Vec::new();
        sent.extend(
            s.push(
                json!({"type": "response.output_item.added", "output_index": 0,
            "item": {"type": "function_call", "id": "fc_2", "name": "http_get", "arguments": ""}}),
            )
            .unwrap(),
        );
        sent.extend(s.push(json!({"type": "response.function_call_arguments.delta", "item_id": "fc_2", "output_index": 0, "delta": ok})).unwrap());
        sent.extend(s.push(json!({"type": "response.function_call_arguments.done", "item_id": "fc_2", "output_index": 0, "arguments": ok})).unwrap());
        sent.extend(s.finish().unwrap());
        let streamed: String = sent
            .iter()
            .filter(|e| e["type"] == "response.function_call_arguments.delta")
            .filter_map(|e| e["delta"].as_str())
            .collect();
        assert_eq!(streamed, ok);
        assert!(
            sent.iter()
                .any(|e| e["type"] == "response.function_call_arguments.done")
        );
    }

    #[test]
    fn clean_text_comes_through_unchanged_and_in_order() {
        let text = "Hello! ".repeat(100);
        let (texts, sent) = run(pieces_of(&text, 5, content)).unwrap();
        assert_eq!(texts["0:content"], text);
        assert_eq!(sent.last().unwrap()["choices"][0]["finish_reason"], "stop");
        // Held back: nothing before the text exceeds the hold-back.
        assert!(sent.len() > 2);
    }
}
