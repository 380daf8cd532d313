//! The guardrail proxy: `POST /v1/chat/completions` in front of any OpenAI-compatible
//! upstream, with the gateway's API keys, limits, metrics and audit.
//!
//! A request passes `admit` (keys, limits); a message whose role is not one of [`ROLES`]
//! (as written) is refused with a 400 naming it. Then the input rail reads every string of
//! every message, whatever its role — content as a string, an object or parts of any type,
//! tool calls, names — and of everything else in the request (tool definitions, unknown
//! fields), through [`crate::openai_text`]: an injection is refused with an OpenAI-style
//! error object (400, `code: "prompt_injection"`), a denied topic is answered with its
//! refusal (`finish_reason: "content_filter"`), personal data and secrets are redacted in
//! place before the request leaves. A random canary is planted in the system prompt. The upstream's answer —
//! every string of it, all choices read together — goes through the output rail: a leaked
//! canary, a restatement of the system prompt the client sent (copied, encoded, paraphrased
//! or translated: [`rampart_guard::leak`]), a secret, banned words or a disallowed link withhold the answer
//! (`finish_reason: "content_filter"`); personal data is redacted where it stands (tool-call
//! arguments, refusals, reasoning, logprobs tokens). An upstream error body gets the same
//! rail, and is replaced by a generic error when withheld or not JSON. Streams (SSE) are
//! checked as they arrive by [`crate::guard_stream`]: every text field released only once
//! it has passed, with personal data redacted across chunk boundaries; a violating stream
//! is cut and ends with a refusal. `POST /v1/responses` takes the same way, streamed or
//! not: its `input` items, `instructions` (which carry the canary) and answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_guard::rules::Reading;
use rampart_guard::{Confidential, Guard, Verdict};
use serde_json::{Value, json};

use crate::AppState;
use crate::keys::Role;

/// Most text of one answer checked and kept, in bytes.
pub const MAX_ANSWER: usize = 1 << 20;
/// Most bytes of one streamed answer, chunks and all.
pub const MAX_STREAM: usize = 64 << 20;
/// The message a withheld answer is replaced with.
pub const WITHHELD: &str = "The answer was withheld by rampart's output rails.";

/// The proxy's settings.
pub struct GuardProxy {
    /// The rails.
    pub guard: Guard,
    /// `…/v1` of the upstream (`/chat/completions` is appended).
    pub upstream: String,
    /// The upstream's API key (from the environment; never logged).
    pub upstream_key: Option<zeroize::Zeroizing<String>>,
    /// HTTP client for the upstream.
    pub client: reqwest::Client,
    /// Redact personal data in prompts before they leave.
    pub redact_input: bool,
    /// The external moderation endpoint answers are also sent to, if any.
    pub moderation: Option<crate::moderation::Moderation>,
}

impl GuardProxy {
    /// The proxy for `upstream` (`…/v1`), authenticating with `upstream_key` if given.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(
        guard: Guard,
        upstream: String,
        upstream_key: Option<zeroize::Zeroizing<String>>,
        redact_input: bool,
    ) -> Result<Self, crate::ServeError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(300))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| crate::ServeError::Client(e.to_string()))?;
        Ok(Self {
            guard,
            upstream,
            upstream_key,
            client,
            redact_input,
            moderation: None,
        })
    }

    /// Sends answers that passed the output rails to `moderation` too.
    #[must_use]
    pub fn with_moderation(mut self, moderation: crate::moderation::Moderation) -> Self {
        self.moderation = Some(moderation);
        self
    }
}

impl std::fmt::Debug for GuardProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardProxy")
            .field("upstream", &self.upstream)
            .field("upstream_key", &self.upstream_key.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: &str) -> Response {
    (
        status,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        ),
    )
        .into_response()
}

/// A completion whose one choice says `content`.
fn completion(model: &str, content: &str, finish: &str) -> Value {
    json!({
        "id": format!("chatcmpl-rampart-{}", random_hex(8)),
        "object": "chat.completion",
        "created": time::OffsetDateTime::now_utc().unix_timestamp(),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
    })
}

fn random_hex(n: usize) -> String {
    use rand_core::RngCore as _;
    let mut b = vec![0u8; n];
    rand_core::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Rules and rails of a verdict, for the audit (never the text).
fn summary(v: &Verdict) -> String {
    v.findings
        .iter()
        .map(|f| match f.family {
            Some(fam) => format!("{}:{} [{fam}]", f.rail, f.rule),
            None => format!("{}:{}", f.rail, f.rule),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which OpenAI API a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `POST /v1/chat/completions`: `messages`.
    Chat,
    /// `POST /v1/responses`: `input` and `instructions`.
    Responses,
}

/// `POST /v1/chat/completions`.
pub async fn chat(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> Response {
    timed(&st, addr.ip(), req, Api::Chat).await
}

/// `POST /v1/responses`, streamed or not.
pub async fn responses(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: axum::extract::Request,
) -> Response {
    timed(&st, addr.ip(), req, Api::Responses).await
}

/// One request, counted in the metrics (model `_chat`, either API).
async fn timed(st: &Arc<AppState>, ip: IpAddr, req: axum::extract::Request, api: Api) -> Response {
    let started = std::time::Instant::now();
    let r = chat_inner(st, ip, req, api).await;
    st.metrics.request(
        "_chat",
        None,
        "chat",
        r.status().as_u16(),
        started.elapsed(),
    );
    r
}

#[allow(clippy::too_many_lines)] // One request's way through, in order.
async fn chat_inner(
    st: &Arc<AppState>,
    ip: IpAddr,
    req: axum::extract::Request,
    api: Api,
) -> Response {
    let Some(proxy) = st.guard.as_ref() else {
        return openai_error(
            StatusCode::NOT_FOUND,
            "this gateway does not proxy chat completions (start it with --guard)",
            "invalid_request_error",
            "not_found",
        );
    };
    let (parts, body) = req.into_parts();
    let body = match crate::admission::read_body(st, &parts.headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let key = match crate::admission::admit(
        st,
        ip,
        &parts.headers,
        crate::admission::Req {
            method: &parts.method,
            uri: &parts.uri,
            body: &body,
        },
        Role::Predict,
        None,
    ) {
        Ok(k) => k,
        Err(r) => return r,
    };
    // A key given twice could be read one way here and another way upstream (first wins
    // there, last wins in serde_json): the guard would check a text the model never sees.
    if let Ok(Some((at, key))) = crate::strict::first_duplicate(&body) {
        return openai_error(
            StatusCode::BAD_REQUEST,
            &format!("the body gives the key {key:?} twice in the object at {at}"),
            "invalid_request_error",
            "duplicate_key",
        );
    }
    let Ok(mut request) = serde_json::from_slice::<Value>(&body) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "the body is not JSON",
            "invalid_request_error",
            "invalid_json",
        );
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if let Some(scope) = &key.model
        && *scope != model
    {
        return openai_error(
            StatusCode::FORBIDDEN,
            &format!("this key may only use model {scope}"),
            "permission_error",
            "forbidden",
        );
    }
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    if let Err(refused) = check_roles(&request, api) {
        return refused;
    }
    let ctx = Ctx {
        st,
        proxy,
        ip,
        key: &key.id,
    };
    // As the client sent it, before the input rail redacts: a document's address is known
    // as the document's even when the model reads it in another form.
    let [user, system, documents] = conversation(&mut request, api);
    let conversation = proxy.guard.tools().conversation(&user, &system, &documents);
    if let Err(refused) = input_rail(&ctx, &model, &mut request, api) {
        return refused;
    }
    let mut secret = plant_canary(&mut request, api, &system);
    secret.conversation = Some(conversation);
    let mut up = proxy
        .client
        .post(format!(
            "{}/{}",
            proxy.upstream.trim_end_matches('/'),
            match api {
                Api::Chat => "chat/completions",
                Api::Responses => "responses",
            }
        ))
        .header(header::CONTENT_TYPE, "application/json")
        .body(request.to_string());
    if let Some(k) = &proxy.upstream_key {
        up = up.bearer_auth(k.as_str());
    }
    let resp = match up.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("upstream unreachable: {}", e.without_url());
            return openai_error(
                StatusCode::BAD_GATEWAY,
                "the upstream model did not answer",
                "api_error",
                "upstream_unreachable",
            );
        }
    };
    let status = resp.status();
    if !status.is_success() {
        return upstream_error(&ctx, status.as_u16(), resp, &secret).await;
    }
    if stream {
        return stream_response(Arc::clone(st), ip, key.id.clone(), resp, secret, api, model);
    }
    let Some(Ok(mut answer)) = crate::upstream::read_bounded(resp, MAX_ANSWER * 4)
        .await
        .ok()
        .map(|b| serde_json::from_slice::<Value>(&b))
    else {
        return openai_error(
            StatusCode::BAD_GATEWAY,
            &format!(
                "the upstream's answer is not JSON, or is longer than the {} bytes the proxy reads",
                MAX_ANSWER * 4
            ),
            "api_error",
            "upstream_invalid",
        );
    };
    let mut verdict = output_rail(&ctx, &mut answer, &secret, "answer");
    if verdict.is_ok() {
        let text = crate::openai_text::Doc::new(&mut answer, &[]).text;
        verdict = moderate(&ctx, &text, "answer").await;
    }
    match verdict {
        Ok(()) => axum::Json(answer).into_response(),
        Err(v) if api == Api::Responses => {
            output_blocked(st, ip, &key.id, "answer withheld", &v);
            axum::Json(json!({
                "id": format!("resp_rampart{}", random_hex(8)),
                "object": "response",
                "created_at": time::OffsetDateTime::now_utc().unix_timestamp(),
                "model": model,
                "status": "incomplete",
                "incomplete_details": {"reason": "content_filter"},
                "output": [{"type": "message", "id": format!("msg_rampart{}", random_hex(8)), "role": "assistant", "status": "incomplete",
                            "content": [{"type": "output_text", "text": WITHHELD, "annotations": []}]}],
            }))
            .into_response()
        }
        Err(v) => {
            output_blocked(st, ip, &key.id, "answer withheld", &v);
            let n = answer
                .get("choices")
                .and_then(Value::as_array)
                .map_or(1, Vec::len)
                .max(1);
            let mut withheld = completion(&model, WITHHELD, "content_filter");
            if let Some(choices) = withheld.get_mut("choices").and_then(Value::as_array_mut)
                && let Some(first) = choices.first().cloned()
            {
                *choices = (0..n)
                    .map(|i| {
                        let mut c = first.clone();
                        if let Some(o) = c.as_object_mut() {
                            o.insert("index".into(), json!(i));
                        }
                        c
                    })
                    .collect();
            }
            axum::Json(withheld).into_response()
        }
    }
}

/// The roles a chat message may have (case-sensitive, as the OpenAI API spells them).
pub const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

/// Who is asking, for the rails' audit.
struct Ctx<'a> {
    st: &'a Arc<AppState>,
    proxy: &'a GuardProxy,
    ip: IpAddr,
    key: &'a str,
}

impl Ctx<'_> {
    fn audit(&self, what: String) {
        self.st
            .event("serve.guard", self.ip, Some(self.key.to_owned()), what);
    }
}

/// Every message (chat) or input item with a role (responses) has one of [`ROLES`], as
/// written; otherwise a 400 naming it.
fn check_roles(request: &Value, api: Api) -> Result<(), Response> {
    let bad = |what: String| {
        openai_error(
            StatusCode::BAD_REQUEST,
            &what,
            "invalid_request_error",
            "invalid_messages",
        )
    };
    let (field, items) = match api {
        Api::Chat => match request.get("messages").and_then(Value::as_array) {
            Some(m) => ("messages", m),
            None => {
                return Err(bad(
                    "the body's \"messages\" must be a list of messages, each {\"role\": …, \"content\": …}"
                        .into(),
                ));
            }
        },
        Api::Responses => match request.get("input") {
            Some(Value::Array(items)) => ("input", items),
            Some(Value::String(_)) => return Ok(()),
            _ => {
                return Err(bad(
                    "the body's \"input\" must be a text or a list of input items".into(),
                ));
            }
        },
    };
    for (i, m) in items.iter().enumerate() {
        let role = m.get("role");
        // An input item without a role (a function call's output) is not a message.
        if api == Api::Responses && role.is_none() {
            continue;
        }
        if !role
            .and_then(Value::as_str)
            .is_some_and(|r| ROLES.contains(&r))
        {
            return Err(openai_error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "{field}[{i}].role is {}: a role is one of {}, written as here",
                    role.map_or_else(|| "missing".to_owned(), Value::to_string),
                    ROLES.join(", ")
                ),
                "invalid_request_error",
                "invalid_role",
            ));
        }
    }
    Ok(())
}

/// Fields of a request the deployment writes rather than its users: read as instructions.
const DEPLOYMENT_FIELDS: &[&str] = &[
    "instructions",
    "tools",
    "functions",
    "tool_choice",
    "response_format",
    "text",
];

/// The input rail on every message or input item, whatever its role, on the fields the
/// deployment writes (as instructions) and on everything else the client sends (unknown
/// fields, which an upstream may hand to the model: as a user's text): every string, as
/// text. Personal data is redacted in place when the proxy redacts input.
fn input_rail(ctx: &Ctx<'_>, model: &str, request: &mut Value, api: Api) -> Result<(), Response> {
    let field = match api {
        Api::Chat => "messages",
        Api::Responses => "input",
    };
    let Some(obj) = request.as_object_mut() else {
        return Ok(());
    };
    match obj.get_mut(field) {
        Some(Value::Array(list)) => {
            for (i, m) in list.iter_mut().enumerate() {
                // What the deployment writes is read as instructions; what tools return (and
                // a function call's output, an input item without a role) as a document the
                // model is handed, where instructions for the model are planted ones; what
                // users say (or a transcript the client sends back) as a user's prompt.
                let reading = match m.get("role").and_then(Value::as_str) {
                    Some("system" | "developer") => Reading::Instructions,
                    Some("tool" | "function") | None => Reading::Document,
                    Some(_) => Reading::User,
                };
                input_part(ctx, model, m, &["role"], &format!("{field}[{i}]"), reading)?;
            }
            split_payloads(ctx, model, list, field)?;
        }
        Some(input) => input_part(ctx, model, input, &[], field, Reading::User)?,
        None => {}
    }
    for name in DEPLOYMENT_FIELDS {
        if let Some(v) = obj.get_mut(*name) {
            input_part(ctx, model, v, &[], name, Reading::Instructions)?;
        }
    }
    let mut skip = vec!["model", field];
    skip.extend_from_slice(DEPLOYMENT_FIELDS);
    input_part(
        ctx,
        model,
        request,
        &skip,
        "the request's other fields",
        Reading::User,
    )
}

/// User messages read together: windows of this many consecutive ones, each starting
/// `JOINED_STEP` after the last (so any split into three pieces or fewer lies inside one
/// window), each window's text at most `JOINED_BYTES` (its most recent part).
const JOINED_MESSAGES: usize = 4;
const JOINED_STEP: usize = 2;
const JOINED_BYTES: usize = 16 << 10;

/// An instruction split across user messages ("ignore all previous" in one, "instructions
/// and …" in the next) passes each message alone: consecutive user messages are read
/// together, in order, too — anywhere in the conversation, so turns added after the pieces
/// do not push them out of sight.
fn split_payloads(
    ctx: &Ctx<'_>,
    model: &str,
    list: &mut [Value],
    field: &str,
) -> Result<(), Response> {
    let texts: Vec<String> = list
        .iter_mut()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| crate::openai_text::Doc::new(m, &["role"]).text)
        .filter(|t| !t.trim().is_empty())
        .collect();
    let mut start = 0;
    while start + 1 < texts.len() {
        let end = (start + JOINED_MESSAGES).min(texts.len());
        let mut joined = texts.get(start..end).unwrap_or_default().join(" ");
        if joined.len() > JOINED_BYTES {
            let mut cut = joined.len() - JOINED_BYTES;
            while !joined.is_char_boundary(cut) {
                cut += 1;
            }
            joined.drain(..cut);
        }
        let v = ctx.proxy.guard.check_input(&joined);
        if v.blocked {
            return Err(refuse(
                ctx,
                model,
                v,
                &format!("user {field} {} to {} read together", start + 1, end),
            ));
        }
        start += JOINED_STEP;
    }
    Ok(())
}

fn input_part(
    ctx: &Ctx<'_>,
    model: &str,
    part: &mut Value,
    skip: &[&str],
    what: &str,
    reading: Reading,
) -> Result<(), Response> {
    let guard = &ctx.proxy.guard;
    let doc = crate::openai_text::Doc::new(part, skip);
    if doc.is_empty() {
        return Ok(());
    }
    let mut v = match reading {
        Reading::User => guard.check_input(&doc.text),
        Reading::Document => guard.check_document(&doc.text),
        Reading::Instructions => guard.check_instructions(&doc.text),
    };
    if !v.blocked && !doc.identifiers.is_empty() {
        v = guard.check_instructions(&doc.identifiers);
    }
    if v.blocked {
        return Err(refuse(ctx, model, v, what));
    }
    if !ctx.proxy.redact_input {
        return Ok(());
    }
    // Personal data, and secrets too: a key pasted into a prompt is not sent on either
    // (the output rail blocks on a secret, and still says where it is).
    let out = guard.check_output(&doc.text, None);
    if out.redacted.is_none() && out.edits.as_ref().is_none_or(Vec::is_empty) {
        return Ok(());
    }
    match &out.edits {
        Some(edits) => doc.apply(edits),
        None => doc.each(|s| guard.check_output(s, None).redacted),
    }
    ctx.audit(format!(
        "input redacted in {what} before forwarding: {}",
        summary(&out)
    ));
    Ok(())
}

/// The answer to a request the input rail refused, audited and counted.
fn refuse(ctx: &Ctx<'_>, model: &str, v: rampart_guard::Verdict, what: &str) -> Response {
    ctx.st.metrics.guard_block("input");
    ctx.audit(format!("input blocked in {what}: {}", summary(&v)));
    if let Some(refusal) = v.refusal {
        return axum::Json(completion(model, &refusal, "content_filter")).into_response();
    }
    openai_error(
        StatusCode::BAD_REQUEST,
        &format!(
            "the prompt was refused by rampart's input rails in {what} (score {:.2}: {})",
            v.score,
            v.findings
                .iter()
                .filter_map(|f| f.family)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "invalid_request_error",
        "prompt_injection",
    )
}

/// The conversation's text as the client sent it, by source: the user's messages; the
/// deployment's (system and developer messages, `instructions`); what documents and tools
/// handed the model (tool and function messages, input items without a role). An
/// assistant's earlier turns are none of them.
fn conversation(request: &mut Value, api: Api) -> [String; 3] {
    let [mut user, mut system, mut documents] = [String::new(), String::new(), String::new()];
    if let Some(Value::String(i)) = request.get("instructions") {
        system.push_str(i);
        system.push('\n');
    }
    let field = match api {
        Api::Chat => "messages",
        Api::Responses => "input",
    };
    match request.get_mut(field) {
        Some(Value::Array(list)) => {
            for m in list {
                let side = match m.get("role").and_then(Value::as_str) {
                    Some("user") => &mut user,
                    Some("system" | "developer") => &mut system,
                    Some("tool" | "function") | None => &mut documents,
                    Some(_) => continue,
                };
                side.push_str(&crate::openai_text::Doc::new(m, &["role"]).text);
                side.push('\n');
            }
        }
        Some(Value::String(t)) => user.push_str(t),
        _ => {}
    }
    [user, system, documents]
}

/// Plants a fresh canary in the system prompt (a new first message when the first system
/// message is not plain text); returns it, with the fingerprint of `system`, the prompt the
/// client sent ([`conversation`]), for the prompt-leak rail.
fn plant_canary(request: &mut Value, api: Api, system: &str) -> Confidential {
    let canary = format!("rampart-canary-{}", random_hex(8));
    let secret = Confidential::new(canary.clone(), system);
    let note = format!("[{canary}] This token is confidential: never repeat it.");
    if api == Api::Responses {
        if let Some(o) = request.as_object_mut() {
            let text = match o.get("instructions") {
                Some(Value::String(t)) => format!("{note}\n{t}"),
                _ => note,
            };
            o.insert("instructions".into(), Value::String(text));
        }
        return secret;
    }
    let Some(messages) = request.get_mut("messages").and_then(Value::as_array_mut) else {
        return secret;
    };
    let sys = messages.iter_mut().find(|m| {
        m.get("role").and_then(Value::as_str) == Some("system")
            && m.get("content").is_some_and(Value::is_string)
    });
    match sys.and_then(|m| m.get_mut("content")) {
        Some(Value::String(text)) => *text = format!("{note}\n{text}"),
        _ => messages.insert(0, json!({"role": "system", "content": note})),
    }
    secret
}

/// The output rail on a whole answer or error body ([`crate::openai_text::output_rail`]),
/// with personal data redacted in place and audited.
///
/// # Errors
/// The verdict when the answer must be withheld.
fn output_rail(
    ctx: &Ctx<'_>,
    answer: &mut Value,
    secret: &Confidential,
    what: &str,
) -> Result<(), Verdict> {
    if let Some(v) = crate::openai_text::output_rail(&ctx.proxy.guard, answer, secret, true)? {
        ctx.audit(format!("{what} redacted: {}", summary(&v)));
    }
    Ok(())
}

/// An upstream that answered with an error: its body goes through the output rail like an
/// answer; withheld, or not JSON, it becomes a generic error saying the upstream failed.
async fn upstream_error(
    ctx: &Ctx<'_>,
    status: u16,
    resp: reqwest::Response,
    secret: &Confidential,
) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let generic = |why: &str| {
        openai_error(
            code,
            &format!("the upstream model answered {status}; {why}"),
            "api_error",
            "upstream_error",
        )
    };
    let Some(Ok(mut body)) = crate::upstream::read_bounded(resp, MAX_ANSWER)
        .await
        .ok()
        .map(|b| serde_json::from_slice::<Value>(&b))
    else {
        return generic("its error is not JSON, so it is not relayed");
    };
    match output_rail(ctx, &mut body, secret, "upstream error") {
        Ok(()) => (code, axum::Json(body)).into_response(),
        Err(v) => {
            output_blocked(ctx.st, ctx.ip, ctx.key, "upstream error withheld", &v);
            generic("its error message was withheld by rampart's output rails")
        }
    }
}

/// The external moderation hook on an answer's `text`, when the proxy has one: categories
/// that block withhold it, flagged ones are audited; an endpoint that fails blocks unless
/// the policy says to flag.
///
/// # Errors
/// The verdict when the answer must be withheld.
async fn moderate(ctx: &Ctx<'_>, text: &str, what: &str) -> Result<(), Verdict> {
    let Some(m) = &ctx.proxy.moderation else {
        return Ok(());
    };
    if text.trim().is_empty() {
        return Ok(());
    }
    let out = m.check(&ctx.proxy.client, text).await;
    if !out.flagged.is_empty() {
        ctx.audit(format!(
            "{what} flagged by the moderation endpoint: {}",
            out.flagged.join(", ")
        ));
    }
    if let Some(e) = &out.error
        && m.on_error == crate::moderation::Act::Flag
    {
        ctx.audit(format!("{what} passed unmoderated: {e}"));
    }
    if !out.blocks(m.on_error) {
        return Ok(());
    }
    let findings = if out.blocked.is_empty() {
        vec![rampart_guard::Finding {
            rail: "moderation",
            rule: "moderation.unavailable".into(),
            family: None,
            detail: out.error.unwrap_or_default(),
            weight: 1.0,
        }]
    } else {
        out.blocked
            .iter()
            .map(|c| rampart_guard::Finding {
                rail: "moderation",
                rule: format!("moderation.{c}"),
                family: None,
                detail: format!("the moderation endpoint flagged the answer as {c}"),
                weight: 1.0,
            })
            .collect()
    };
    Err(Verdict {
        blocked: true,
        score: 1.0,
        findings,
        normalisation: None,
        redacted: None,
        refusal: None,
        edits: None,
    })
}

/// The rail of a stream, by API.
enum Rail<'g> {
    Chat(crate::guard_stream::StreamGuard<'g>),
    Responses(crate::guard_stream::ResponsesGuard<'g>, String),
}

impl Rail<'_> {
    fn push(&mut self, v: Value) -> Result<Vec<Value>, Verdict> {
        match self {
            Self::Chat(r) => r.push(v),
            Self::Responses(r, _) => r.push(v),
        }
    }

    fn finish(&mut self) -> Result<Vec<Value>, Verdict> {
        match self {
            Self::Chat(r) => r.finish(),
            Self::Responses(r, _) => r.finish(),
        }
    }

    fn refusal(&mut self) -> Vec<Value> {
        match self {
            Self::Chat(r) => r.refusal(WITHHELD),
            Self::Responses(r, model) => r.refusal(WITHHELD, model),
        }
    }

    /// An SSE event: `data:` only for chat chunks, with the `event:` line the responses
    /// API names its events with.
    fn sse(&self, v: &Value) -> Bytes {
        match (self, v.get("type").and_then(Value::as_str)) {
            (Self::Responses(..), Some(kind)) => {
                Bytes::from(format!("event: {kind}\ndata: {v}\n\n"))
            }
            _ => Bytes::from(format!("data: {v}\n\n")),
        }
    }
}

fn stream_response(
    st: Arc<AppState>,
    ip: IpAddr,
    key: String,
    resp: reqwest::Response,
    secret: Confidential,
    api: Api,
    model: String,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let Some(proxy) = st.guard.as_ref() else {
            return;
        };
        let hold = proxy.moderation.is_some();
        let mut held: Vec<Value> = Vec::new();
        let mut rail = match api {
            Api::Chat => Rail::Chat(crate::guard_stream::StreamGuard::new(&proxy.guard, secret)),
            Api::Responses => Rail::Responses(
                crate::guard_stream::ResponsesGuard::new(&proxy.guard, secret),
                model,
            ),
        };
        let mut upstream = resp;
        let mut pending = Vec::<u8>::new();
        // Bytes of `pending` already searched for an event's end (a piece at a time: an
        // event sent a byte at a time is not searched again from its start each time).
        let mut searched = 0usize;
        let mut received = 0usize;
        let mut cut: Option<Verdict> = None;
        'read: loop {
            let piece = match upstream.chunk().await {
                Ok(Some(b)) => b,
                Ok(None) | Err(_) => break,
            };
            // Everything counts, not only text: a stream of identifiers or empty chunks is
            // bounded too.
            received += piece.len();
            // Line ends as `\n` only (SSE allows `\r\n`; JSON never holds a bare `\r`).
            pending.extend(piece.iter().filter(|b| **b != b'\r'));
            if pending.len() > MAX_ANSWER || received > MAX_STREAM {
                cut = Some(crate::guard_stream::too_long());
                break;
            }
            // Whole SSE events only; what they took is dropped once the piece is read.
            let mut at = 0;
            loop {
                let from = at.max(searched.saturating_sub(1));
                let Some(end) = pending
                    .get(from..)
                    .and_then(|p| p.windows(2).position(|w| w == b"\n\n"))
                    .map(|i| from + i + 2)
                else {
                    searched = pending.len();
                    break;
                };
                let event =
                    String::from_utf8_lossy(pending.get(at..end).unwrap_or_default()).into_owned();
                at = end;
                searched = end;
                // The data lines of one event are one value.
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if data.is_empty() {
                    continue;
                }
                let data = data.join("\n");
                if data.trim() == "[DONE]" {
                    break 'read;
                }
                // What is not JSON is not passed on, so it carries nothing past the rail.
                let Ok(v) = serde_json::from_str::<Value>(&data) else {
                    continue;
                };
                match rail.push(v) {
                    Ok(chunks) if hold => held.extend(chunks),
                    Ok(chunks) => {
                        for c in &chunks {
                            if tx.send(Ok(rail.sse(c))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(v) => {
                        cut = Some(v);
                        break 'read;
                    }
                }
            }
            pending.drain(..at);
            searched -= at;
        }
        let mut ending = match cut {
            Some(v) => Err(v),
            None => rail.finish(),
        };
        // With a moderation endpoint, the whole answer is held until it has answered.
        if hold && let Ok(last) = ending {
            held.extend(last);
            let mut text = String::new();
            for c in &mut held {
                text.push_str(&crate::openai_text::Doc::new(c, &[]).text);
            }
            let ctx = Ctx {
                st: &st,
                proxy,
                ip,
                key: &key,
            };
            ending = moderate(&ctx, &text, "streamed answer")
                .await
                .map(|()| std::mem::take(&mut held));
        }
        let chunks = match ending {
            Ok(chunks) => chunks,
            Err(v) => {
                output_blocked(&st, ip, &key, "stream cut", &v);
                rail.refusal()
            }
        };
        for c in &chunks {
            if tx.send(Ok(rail.sse(c))).await.is_err() {
                return;
            }
        }
        // The chat API ends a stream with `[DONE]`; the responses API with its last event.
        if api == Api::Chat {
            let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
        }
    });
    let body = Body::from_stream(tokio_stream_from(rx));
    let mut r = Response::new(body);
    let h: &mut HeaderMap = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-cache"),
    );
    r
}

/// An answer or stream the output rail stopped: counted and audited (by rule, never the
/// text).
fn output_blocked(st: &AppState, ip: IpAddr, key: &str, what: &str, v: &Verdict) {
    st.metrics.guard_block("output");
    st.event(
        "serve.guard",
        ip,
        Some(key.to_owned()),
        format!("{what}: {}", summary(v)),
    );
}

/// The receiver as a stream of body frames.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
