//! Admission: every request passes the per-IP limiter, authentication, the key's role and
//! model scope, the per-key limiter and the body checks here, in that order, before a route
//! sees it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::keys::{AuthFailure, KeyInfo, Role};
use crate::problem::Problem;
use crate::*;

/// A guard event that redacted rather than refused.
pub(crate) fn reason_is_redaction(reason: &str) -> bool {
    reason.contains("redacted")
}

pub(crate) type Ctx = (
    State<Arc<AppState>>,
    ConnectInfo<SocketAddr>,
    Method,
    axum::http::Uri,
    HeaderMap,
);

/// What a signature covers besides the headers.
#[derive(Clone, Copy)]
pub(crate) struct Req<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a axum::http::Uri,
    pub(crate) body: &'a [u8],
}

impl<'a> Req<'a> {
    /// A request without a body (GET).
    pub(crate) const fn bodiless(method: &'a Method, uri: &'a axum::http::Uri) -> Self {
        Self {
            method,
            uri,
            body: &[],
        }
    }
}

/// Limits, authenticates and authorises one request.
pub(crate) fn admit(
    st: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    req: Req<'_>,
    need: Role,
    model: Option<&str>,
) -> Result<Arc<KeyInfo>, Response> {
    match st.limiters.ip(ip) {
        Ok(()) => {}
        Err(limits::Limited::Wait(wait)) => {
            st.metrics.rate_limited("ip");
            return Err(limits::too_many(
                wait,
                st.limits.ip_burst,
                st.limits.ip_rate,
                "ip",
            ));
        }
        Err(limits::Limited::Unavailable) => return Err(shared_state_down(st, ip, None)),
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // (metric label, message) of a failure.
    let result: Result<Arc<KeyInfo>, (&'static str, String)> =
        if headers.contains_key("signature-input") {
            let authority = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| req.uri.authority().map(axum::http::uri::Authority::as_str))
                .unwrap_or("");
            let parts = httpsig::Parts {
                method: req.method.as_str(),
                authority,
                path: req.uri.path(),
                query: req.uri.query(),
                headers,
                body: req.body,
            };
            match httpsig::verify(
                &parts,
                &|id| st.hmac_for(id),
                &*st.nonces,
                st.public_names.get().map_or(&[], Vec::as_slice),
                now,
            ) {
                Ok(id) => st
                    .keys
                    .lock()
                    .map_err(|_| AuthFailure::Invalid)
                    .and_then(|k| k.usable_key(&id, now))
                    .map_err(|f| (f.as_str(), format!("{} API key", f.as_str()))),
                Err(e) => Err(("signature", e.reason())),
            }
        } else {
            match token {
                None => Err(AuthFailure::Missing),
                Some(t) => st
                    .keys
                    .lock()
                    .map_err(|_| AuthFailure::Invalid)
                    .and_then(|k| k.authenticate_token(t.trim(), now)),
            }
            .map_err(|f| (f.as_str(), format!("{} API key", f.as_str())))
        };
    let key = match result {
        Ok(k) => k,
        // Fail closed, but not as the client's fault: no failure counted against its address.
        Err((label, why)) if label == AuthFailure::Unavailable.as_str() => {
            st.metrics.auth_failure(label);
            st.event("serve.auth", ip, None, why);
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the API key store cannot be read; no key is accepted until it can",
            )
            .with_header(header::RETRY_AFTER, "1")
            .into_response());
        }
        Err((label, why)) => {
            st.metrics.auth_failure(label);
            // Unavailable counts as over the limit here: the failure is refused either way.
            if st.limiters.auth_failure(ip).is_err() {
                st.metrics.rate_limited("auth");
                return Err(limits::too_many(
                    std::time::Duration::from_secs(1),
                    st.limits.auth_fail_burst,
                    st.limits.auth_fail_rate,
                    "auth-failures",
                ));
            }
            let key_id = token
                .and_then(|t| t.strip_prefix("rk_"))
                .and_then(|t| t.split('_').next())
                .filter(|id| id.len() == 16)
                .map(str::to_owned);
            st.event("serve.auth", ip, key_id, why.clone());
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!("authentication failed: {why}"),
            )
            .with_header(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"rampart\", Signature",
            )
            .into_response());
        }
    };
    if need == Role::Admin && key.role != Role::Admin {
        st.event(
            "serve.forbidden",
            ip,
            Some(key.id.clone()),
            "needs the admin role",
        );
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this key does not have the admin role",
        )
        .into_response());
    }
    if let (Some(scope), Some(m)) = (&key.model, model)
        && scope != m
    {
        st.event(
            "serve.forbidden",
            ip,
            Some(key.id.clone()),
            format!("key is limited to model {scope}"),
        );
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this key may only use model {scope}"),
        )
        .into_response());
    }
    match st.limiters.key(&key) {
        Ok(()) => Ok(key),
        Err(limits::Limited::Wait(wait)) => {
            st.metrics.rate_limited("key");
            st.event(
                "serve.rate-limit",
                ip,
                Some(key.id.clone()),
                "key rate limit",
            );
            Err(limits::too_many(wait, key.burst, key.rate, "key"))
        }
        Err(limits::Limited::Unavailable) => Err(shared_state_down(st, ip, Some(key.id.clone()))),
    }
}

/// The shared state (limits, nonces) cannot be asked and the gateway fails closed: 503,
/// counted and audited.
fn shared_state_down(st: &AppState, ip: IpAddr, key: Option<String>) -> Response {
    st.metrics.overloaded("shared-state");
    st.event(
        "serve.shared-state",
        ip,
        key,
        "the shared state store cannot be reached; refused (fail closed)",
    );
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the gateway's shared rate-limit state cannot be reached; retry shortly",
    )
    .with_header(header::RETRY_AFTER, "1")
    .into_response()
}

pub(crate) fn check_body(st: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<(), Response> {
    if body.len() > st.limits.max_body {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the body is larger than {} bytes", st.limits.max_body),
        )
        .into_response());
    }
    if headers.contains_key("inference-header-content-length") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "the binary tensor data extension is not supported: send the tensors as JSON (tritonclient: binary_data=False)",
        )
        .into_response());
    }
    // No Content-Type is read as JSON (KServe clients such as tritonclient send none; the
    // body is parsed strictly either way); a declared type other than JSON is refused.
    let ct = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?"));
    if ct.is_some_and(|ct| {
        !ct.trim()
            .to_ascii_lowercase()
            .starts_with("application/json")
    }) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send Content-Type: application/json",
        )
        .into_response());
    }
    // Not JSON is for the handler's parser to report; a key given twice is refused here, for
    // every route, before anything reads the body.
    if let Ok(Some((at, key))) = crate::strict::first_duplicate(body) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "duplicate-key",
            format!(
                "the body gives the key {key:?} twice in the object at {at}: the keys of a JSON object must be unique"
            ),
        )
        .into_response());
    }
    Ok(())
}

/// Reads the body up to the limit: 413 past it (checked on `Content-Length` first).
pub(crate) async fn read_body(
    st: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Response> {
    let too_large = || {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the body is larger than {} bytes", st.limits.max_body),
        )
        .into_response()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.limits.max_body as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(
        st.limits.read_timeout,
        axum::body::to_bytes(body, st.limits.max_body),
    )
    .await
    {
        Ok(read) => read.map_err(|_| too_large()),
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            format!(
                "the body did not arrive within {} s",
                st.limits.read_timeout.as_secs_f64()
            ),
        )
        .with_header(header::CONNECTION, "close")
        .into_response()),
    }
}

/// Longest request target (path and query).
const MAX_URI: usize = 8 << 10;
/// Most bytes of a request's headers.
const MAX_HEADER_BYTES: usize = 64 << 10;

/// Every answer: a request target or headers past their limits (414, 431), a request whose
/// length is ambiguous (both `Content-Length` and
/// `Transfer-Encoding`, the request-smuggling shape, or two `Content-Length` values) is
/// refused before it is routed, and an error the framework answered without a body (405, a
/// path it cannot decode) becomes a problem document like every other refusal.
pub(crate) async fn framed(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    // Below hyper's own cut-offs (which answer without a body), so a caller gets a problem.
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            format!("the request target is longer than {MAX_URI} bytes"),
        )
        .into_response();
    }
    let h = req.headers();
    let header_bytes: usize = h.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            format!("the request's headers hold more than {MAX_HEADER_BYTES} bytes"),
        )
        .with_header(header::CONNECTION, "close")
        .into_response();
    }
    let lengths = h.get_all(header::CONTENT_LENGTH).iter().count();
    if lengths > 1 || (lengths == 1 && h.contains_key(header::TRANSFER_ENCODING)) {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "ambiguous-length",
            "the request gives its length twice (Content-Length with Transfer-Encoding, or two Content-Length): refused",
        )
        .with_header(header::CONNECTION, "close")
        .into_response();
    }
    let res = next.run(req).await;
    let status = res.status();
    // The handlers answer problem documents (the guard proxy, OpenAI error objects): only
    // what the framework wrote itself (nothing, or plain text) is rewritten.
    let framework = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if status.as_u16() < 400 || !framework {
        return res;
    }
    let (parts, body) = res.into_parts();
    // What the framework said (a short plain text), else the status's own words.
    let said = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|t| !t.is_empty());
    let detail = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allow = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        format!("this route answers {allow}")
    } else {
        said.unwrap_or_else(|| status.canonical_reason().unwrap_or("refused").to_owned())
    };
    let slug = match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        _ => "error",
    };
    let mut out = Problem::new(status, slug, detail).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
