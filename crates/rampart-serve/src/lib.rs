//! The inference gateway.
//!
//! Routes (Open Inference Protocol / KServe V2 REST, plus one plain JSON route):
//!
//! | route | role |
//! |---|---|
//! | `GET /v2/health/live`, `GET /v2/health/ready` | none |
//! | `GET /v2`, `GET /v2/models/{m}[/versions/{v}][/ready]` | predict |
//! | `POST /v2/models/{m}[/versions/{v}]/infer` | predict |
//! | `POST /v1/models/{m}:predict` (`{"instances": [{"feature": value, …}]}`) | predict |
//! | `GET /metrics` (Prometheus text) | admin |
//!
//! Every request passes, in order: the per-IP limiter, authentication (`Authorization: Bearer
//! rk_…` or `X-API-Key`; failures throttled on their own per-IP bucket and audited), the
//! role and model scope of the key, the per-key limiter (429 with `Retry-After`, `RateLimit`
//! and `RateLimit-Policy`), the body limit (413), the content type (415), parsing (400),
//! validation against the model's input schema (422, listing every bad field), then
//! inference on a blocking thread. Errors are `application/problem+json` (RFC 9457) with an
//! `error` member for KServe clients.

// Handlers return a ready `Response` as their error: it is the natural type here, and one
// allocation per refused request is not worth boxing for.
#![allow(clippy::result_large_err)]

pub mod admin;
pub mod config;
mod error;
pub mod guard_proxy;
pub mod guard_stream;
pub mod home;
pub mod httpsig;
pub mod keys;
pub mod limits;
pub mod load;
pub mod metrics;
pub mod moderation;
pub mod monitor;
pub mod oip;
pub mod onnx;
pub mod openai_text;
pub mod pgkeys;
pub mod problem;
pub mod shared;

mod admission;
mod routes;
mod server;
mod state;
mod strict;
pub mod upstream;
mod watchers;

pub use error::ServeError;
pub use routes::{known_method, off_the_reactor, router};
pub use server::{
    RunOptions, default_public_names, pii_redactor, run, security_audit, serve, serve_tls,
};
pub use state::{
    AppState, InputReference, LoadedModel, Loader, Monitoring, OutputMode, Redact, Runner,
    SecurityEvent, ServeLimits, Unseal,
};
pub use watchers::{watch_drift, watch_integrity, watch_reload, watch_shared_state};
