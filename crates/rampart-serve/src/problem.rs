//! RFC 9457 problem details, with the `error` member KServe clients read.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Where the problem types are documented.
pub const TYPE_BASE: &str = "https://rampart.dev/problems/";

/// The problem type of an extraction block (draft-ietf-httpapi-ratelimit-headers).
pub const ABNORMAL_USAGE: &str =
    "https://iana.org/assignments/http-problem-types#abnormal-usage-detected";

/// A problem response.
#[derive(Debug, Clone)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    detail: String,
    extra: Option<Value>,
    headers: Vec<(HeaderName, String)>,
    type_uri: Option<&'static str>,
}

impl Problem {
    /// A problem of type `TYPE_BASE + slug`.
    #[must_use]
    pub fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            slug,
            detail: detail.into(),
            extra: None,
            headers: Vec::new(),
            type_uri: None,
        }
    }

    /// Uses a registered problem type instead of rampart's own.
    #[must_use]
    pub const fn with_type(mut self, uri: &'static str) -> Self {
        self.type_uri = Some(uri);
        self
    }

    /// Adds members (e.g. `errors` for 422).
    #[must_use]
    pub fn with(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The status.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        self.status
    }

    /// What the caller is told.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": self.type_uri.map_or_else(|| format!("{TYPE_BASE}{}", self.slug), str::to_owned),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "error": self.detail,
        });
        if let (Value::Object(b), Some(Value::Object(e))) = (&mut body, self.extra) {
            b.extend(e);
        }
        let mut r = (self.status, body.to_string()).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (k, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().insert(k, v);
            }
        }
        r
    }
}
