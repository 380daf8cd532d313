//! Existing model servers behind the gateway: `--upstream NAME=URL` forwards V2 requests for
//! NAME to a KServe V2 server (Triton, KServe, MLServer) after the whole chain — keys,
//! signatures, limits, validation against the upstream's own metadata, extraction tracking —
//! and hardens, meters and audits its answers like any model's.
//!
//! What is forwarded is rebuilt from the checked tensors: the client's bytes, headers and
//! credentials never reach the upstream. The upstream's metadata is read once at start; a
//! server that does not declare its inputs is refused (nothing to validate against). Its
//! answers are read within a size bound and parsed like a request's tensors; failures become
//! problem documents: unreachable 502, too slow 504, a refusal 422 with its reason.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::onnx::tensor::{self, Bounds, Port, Request, Tensor};
use crate::problem::Problem;

/// The environment variable holding the gateway's token for the upstream serving `model`:
/// `RAMPART_UPSTREAM_TOKEN_` and the name in capitals, other characters as `_`.
#[must_use]
pub fn token_env(model: &str) -> String {
    let name: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("RAMPART_UPSTREAM_TOKEN_{name}")
}

/// Most bytes of an upstream's answer.
pub const MAX_ANSWER: usize = 64 << 20;

/// An upstream model server and the model it serves.
#[derive(Debug)]
pub struct Upstream {
    /// The model's name there.
    model: String,
    /// `URL/v2/models/NAME`.
    base: String,
    client: reqwest::Client,
    inputs: Vec<Port>,
    outputs: Vec<Port>,
    platform: String,
    timeout: Duration,
}

/// Why an upstream cannot be put behind the gateway.
#[derive(Debug, thiserror::Error)]
#[error("--upstream {model}={url}: {reason}")]
pub struct UpstreamError {
    /// The model.
    pub model: String,
    /// The server.
    pub url: String,
    /// Why.
    pub reason: String,
}

fn ports(list: Option<&Value>, what: &str) -> Result<Vec<Port>, String> {
    let Some(list) = list.and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|p| {
            let name = p
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("an {what} without a name"))?;
            let dt = p.get("datatype").and_then(Value::as_str).unwrap_or("");
            let datatype = tensor::Datatype::parse(dt).ok_or_else(|| {
                format!("{what} {name} has datatype {dt:?}, which the gateway does not carry")
            })?;
            let shape = p
                .get("shape")
                .and_then(Value::as_array)
                .map(|s| s.iter().map(|d| d.as_i64().unwrap_or(-1).max(-1)).collect());
            Ok(Port {
                name: name.to_owned(),
                datatype,
                shape,
            })
        })
        .collect()
}

impl Upstream {
    /// Reads `model`'s metadata from the server at `url` (`http://host:port`): its inputs
    /// are what requests are checked against. `token`, when the server wants one, is the
    /// gateway's own credential for it ([`token_env`]), sent as a bearer token on every call
    /// (marked sensitive: never printed); nothing of the client's is ever forwarded.
    ///
    /// # Errors
    /// [`UpstreamError`]: not reachable, no such model, credentials refused, or no declared
    /// inputs.
    pub async fn connect(
        model: &str,
        url: &str,
        timeout: Duration,
        token: Option<&str>,
    ) -> Result<Self, UpstreamError> {
        let fail = |reason: String| UpstreamError {
            model: model.to_owned(),
            url: url.to_owned(),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| fail(format!("not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(fail(
                "give the server as http://HOST:PORT or https://HOST:PORT".into(),
            ));
        }
        // reqwest is built without a default TLS provider; the gateway uses ring everywhere.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| fail(format!("{} is not a usable token", token_env(model))))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let base = format!("{}/v2/models/{model}", url.trim_end_matches('/'));
        let answer = client
            .get(&base)
            .send()
            .await
            .map_err(|e| fail(format!("cannot read its metadata: {e}")))?;
        let status = answer.status();
        if matches!(status.as_u16(), 401 | 403) {
            return Err(fail(format!(
                "its metadata answered {status}: the server wants credentials{}; put its token in {} (sent as a bearer token, never logged)",
                if token.is_some() {
                    " and refused the token given"
                } else {
                    ""
                },
                token_env(model)
            )));
        }
        if !status.is_success() {
            return Err(fail(format!(
                "its metadata answered {status}: is {model} loaded there?"
            )));
        }
        let meta: Value = serde_json::from_slice(
            &read_bounded(answer, 1 << 20)
                .await
                .map_err(|e| fail(format!("its metadata: {e}")))?,
        )
        .map_err(|e| fail(format!("its metadata is not JSON: {e}")))?;
        let inputs = ports(meta.get("inputs"), "input").map_err(fail)?;
        if inputs.is_empty() {
            return Err(fail(
                "it declares no inputs, so requests cannot be checked before they reach it; declare them in the model's settings (MLServer: \"inputs\" in model-settings.json)".into(),
            ));
        }
        let outputs = ports(meta.get("outputs"), "output").map_err(fail)?;
        let platform = meta
            .get("platform")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Ok(Self {
            model: model.to_owned(),
            base,
            client,
            inputs,
            outputs,
            platform,
            timeout,
        })
    }

    /// The inputs the upstream declares.
    #[must_use]
    pub fn inputs(&self) -> &[Port] {
        &self.inputs
    }

    /// V2 metadata as the gateway answers it.
    #[must_use]
    pub fn metadata(&self, name: &str) -> Value {
        json!({
            "name": name,
            "versions": [],
            "platform": if self.platform.is_empty() {
                "upstream".to_owned()
            } else {
                format!("upstream:{}", self.platform)
            },
            "inputs": self.inputs.iter().map(Port::to_json).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(Port::to_json).collect::<Vec<_>>(),
        })
    }

    /// Forwards a checked request and reads the answer's tensors.
    ///
    /// # Errors
    /// A problem: 502 unreachable or an unreadable answer, 504 past the timeout, 422 when the
    /// upstream refused the request (with its reason).
    pub async fn infer(&self, req: &Request) -> Result<Vec<Tensor>, Problem> {
        let name = &self.model;
        // Rebuilt from the checked tensors: nothing else the client sent is forwarded.
        let mut body = json!({
            "inputs": req.inputs.iter().map(Tensor::to_json).collect::<Vec<_>>(),
        });
        if let (Some(id), Value::Object(o)) = (&req.id, &mut body) {
            o.insert("id".into(), json!(id));
        }
        let sent = self
            .client
            .post(format!("{}/infer", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        let answer = match sent {
            Ok(a) => a,
            Err(e) if e.is_timeout() => {
                return Err(Problem::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "upstream-timeout",
                    format!(
                        "the model server for {name} did not answer within {} s",
                        self.timeout.as_secs_f64()
                    ),
                ));
            }
            Err(_) => {
                return Err(Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream-unavailable",
                    format!("the model server for {name} cannot be reached"),
                ));
            }
        };
        let status = answer.status();
        let bytes = read_bounded(answer, MAX_ANSWER).await.map_err(|e| {
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "upstream-invalid",
                format!("the model server for {name}: {e}"),
            )
        })?;
        if !status.is_success() {
            let said: String = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("error")
                        .or_else(|| v.get("detail"))
                        .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                })
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect();
            let (code, slug) = if status.is_client_error() {
                (StatusCode::UNPROCESSABLE_ENTITY, "upstream-refused")
            } else {
                (StatusCode::BAD_GATEWAY, "upstream-error")
            };
            return Err(Problem::new(
                code,
                slug,
                format!("the model server for {name} answered {status}: {said}"),
            ));
        }
        parse_outputs(&bytes).map_err(|e| {
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "upstream-invalid",
                format!(
                    "the model server for {name} answered something that is not V2 tensors: {e}"
                ),
            )
        })
    }
}

/// The `outputs` of a V2 answer, each checked like a request's tensor (count matches shape).
fn parse_outputs(bytes: &[u8]) -> Result<Vec<Tensor>, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let outputs = v
        .get("outputs")
        .and_then(Value::as_array)
        .ok_or("no \"outputs\" array")?;
    let bounds = Bounds {
        max_elements: MAX_ANSWER,
        max_batch: usize::MAX,
    };
    outputs
        .iter()
        .map(|o| {
            let name = o.get("name").and_then(Value::as_str).unwrap_or("");
            let dt = o.get("datatype").and_then(Value::as_str).unwrap_or("");
            let datatype = tensor::Datatype::parse(dt)
                .ok_or_else(|| format!("output {name} has datatype {dt:?}"))?;
            let port = Port {
                name: name.to_owned(),
                datatype,
                shape: None,
            };
            tensor::parse_tensor(o, &port, bounds)
                .map_err(|p| p.detail().replacen("input ", "output ", 1))
        })
        .collect()
}

/// The body of `answer`, read as it arrives and refused past `most` bytes.
pub(crate) async fn read_bounded(
    mut answer: reqwest::Response,
    most: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > most {
            return Err(format!("the answer is larger than {most} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use axum::routing::{get, post};

    /// A V2 server stub whose `infer` answers as `mode` says, on a free loopback port.
    async fn stub(mode: &'static str) -> String {
        let app = axum::Router::new()
            .route(
                "/v2/models/m",
                get(|| async {
                    axum::Json(json!({"name": "m", "platform": "stub",
                        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
                        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]}))
                }),
            )
            .route(
                "/v2/models/m/infer",
                post(move |body: String| async move {
                    let seen: Value = serde_json::from_str(&body).unwrap();
                    match mode {
                        "echo" => axum::Json(json!({"outputs": [{"name": "y", "datatype": "FP32", "shape": [1], "data": [seen["inputs"][0]["data"][0]]}], "seen": seen})).into_response(),
                        "slow" => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            StatusCode::OK.into_response()
                        }
                        "refuse" => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "shape [1, 2] is wrong for x"}))).into_response(),
                        "crash" => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                        // A redirect elsewhere: not followed (the checked request would go to
                        // a server nobody configured).
                        "redirect" => (
                            StatusCode::TEMPORARY_REDIRECT,
                            [(axum::http::header::LOCATION, "http://127.0.0.1:9/v2/models/m/infer")],
                        )
                            .into_response(),
                        _ => axum::Json(json!({"outputs": [{"name": "y", "datatype": "FP32", "shape": [3], "data": [1.0]}]})).into_response(),
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    use axum::response::IntoResponse as _;

    fn request(u: &Upstream) -> Request {
        let body = br#"{"id": "r", "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [0.5, 1.5]}], "secret": "not forwarded"}"#;
        tensor::parse_request(
            body,
            u.inputs(),
            Bounds {
                max_elements: 100,
                max_batch: 10,
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn answers_and_failures_become_tensors_or_problems() {
        let t = Duration::from_millis(500);
        let u = Upstream::connect("m", &stub("echo").await, t, None)
            .await
            .unwrap();
        assert_eq!(u.metadata("m")["platform"], "upstream:stub");
        let out = u.infer(&request(&u)).await.unwrap();
        assert_eq!(out[0].data, tensor::Data::Fp32(vec![0.5]));
        for (mode, status, says) in [
            ("slow", 504, "did not answer within"),
            ("refuse", 422, "shape [1, 2] is wrong for x"),
            ("crash", 502, "500"),
            ("redirect", 502, "307"),
            ("lies", 502, "1 values where the shape [3] holds 3"),
        ] {
            let u = Upstream::connect("m", &stub(mode).await, t, None)
                .await
                .unwrap();
            let p = u.infer(&request(&u)).await.unwrap_err();
            assert_eq!(p.status().as_u16(), status, "{mode}: {}", p.detail());
            assert!(p.detail().contains(says), "{mode}: {}", p.detail());
        }
        // Nothing listening, no such model, or no declared inputs: refused at start.
        assert!(
            Upstream::connect("m", "http://127.0.0.1:9", t, None)
                .await
                .is_err()
        );
        let url = stub("echo").await;
        let e = Upstream::connect("other", &url, t, None).await.unwrap_err();
        assert!(e.to_string().contains("answered 404"), "{e}");
        assert!(Upstream::connect("m", "ftp://x", t, None).await.is_err());
    }

    /// A server that wants a bearer token on every call, and says what it saw.
    async fn guarded() -> String {
        let ok = |h: &axum::http::HeaderMap| {
            h.get(axum::http::header::AUTHORIZATION)
                .is_some_and(|v| v == "Bearer s3cret-token")
        };
        let app = axum::Router::new()
            .route(
                "/v2/models/m",
                get(move |h: axum::http::HeaderMap| async move {
                    if !ok(&h) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    axum::Json(json!({"name": "m",
                        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]}))
                    .into_response()
                }),
            )
            .route(
                "/v2/models/m/infer",
                post(move |h: axum::http::HeaderMap| async move {
                    if !ok(&h) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let headers: Vec<String> = h.keys().map(ToString::to_string).collect();
                    axum::Json(json!({"outputs": [{"name": "headers", "datatype": "BYTES", "shape": [headers.len()], "data": headers}]}))
                        .into_response()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn the_gateways_own_token_reaches_an_upstream_that_wants_one() {
        let t = Duration::from_millis(500);
        let url = guarded().await;
        assert_eq!(
            token_env("credit-v2.x"),
            "RAMPART_UPSTREAM_TOKEN_CREDIT_V2_X"
        );
        let e = Upstream::connect("m", &url, t, None).await.unwrap_err();
        assert!(
            e.to_string().contains("wants credentials")
                && e.to_string().contains("RAMPART_UPSTREAM_TOKEN_M"),
            "{e}"
        );
        let e = Upstream::connect("m", &url, t, Some("wrong"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("refused the token"), "{e}");
        let u = Upstream::connect("m", &url, t, Some("s3cret-token"))
            .await
            .unwrap();
        assert!(
            !format!("{u:?}").contains("s3cret"),
            "the token is printed: {u:?}"
        );
        let out = u.infer(&request(&u)).await.unwrap();
        let tensor::Data::Bytes(seen) = &out[0].data else {
            panic!("{out:?}")
        };
        // The server saw the gateway's token (it answered) and the request's own headers
        // only: the body is rebuilt, no client header is forwarded.
        assert!(
            seen.iter().all(|h| [
                "authorization",
                "content-type",
                "content-length",
                "accept",
                "host"
            ]
            .contains(&h.as_str())),
            "{seen:?}"
        );
    }
}
