//! The two reference servers of `bench/serve.sh`, on the same axum/tokio stack as
//! `rampart serve`:
//!
//! * `serve_bench fixed ADDR` answers every request with one fixed JSON body: the HTTP ceiling
//!   of the machine.
//! * `serve_bench bare ADDR MODEL.safetensors` serves the model over the same V2 route with the
//!   gateway's parsing, inference and response shaping but none of its chain (no keys, limits,
//!   validation, monitors, audit): what the chain costs is the difference to `rampart serve`.
//!
//! Benchmark use only: it listens where it is told and checks nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rampart_serve::{LoadedModel, OutputMode, oip};

const FIXED: &str = r#"{"model_name":"bench","model_version":"1","outputs":[{"name":"label","datatype":"BYTES","shape":[1],"data":["1"]},{"name":"probabilities","datatype":"FP64","shape":[1,2],"data":[0.25,0.75]}]}"#;

async fn bare(State(m): State<Arc<LoadedModel>>, body: Bytes) -> Response {
    let Some(model) = m.builtin() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let parsed = match oip::parse_v2(&body, &model.meta, 1024) {
        Ok(p) => p,
        Err(p) => return p.into_response(),
    };
    let m2 = Arc::clone(&m);
    let out = rampart_serve::off_the_reactor(parsed.rows, move || {
        let classes = m2
            .builtin()
            .map(|b| b.meta.classes.clone())
            .unwrap_or_default();
        oip::run(&m2, &parsed).map(|s| oip::render(&m2, &classes, &s, parsed.id, false, false))
    })
    .await;
    match out {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(p)) => p.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (mode, addr) = match (args.get(1), args.get(2)) {
        (Some(m), Some(a)) => (m.as_str(), a.clone()),
        _ => return Err("usage: serve_bench fixed|bare ADDR [MODEL.safetensors]".into()),
    };
    let app = match mode {
        "fixed" => Router::new().route(
            "/v2/models/{model}/infer",
            post(|| async { ([(header::CONTENT_TYPE, "application/json")], FIXED) }),
        ),
        "bare" => {
            let path = args.get(3).ok_or("bare needs a model file")?;
            let model = rampart_ml::Model::from_bytes(&std::fs::read(path)?)?;
            let m = LoadedModel::new(
                "bench".into(),
                1,
                String::new(),
                model,
                Vec::new(),
                OutputMode::Raw,
                None,
            );
            Router::new()
                .route("/v2/models/{model}/infer", post(bare))
                .with_state(Arc::new(m))
        }
        other => return Err(format!("unknown mode {other}").into()),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        eprintln!(
            "serve_bench {mode}: listening on {}",
            listener.local_addr()?
        );
        axum::serve(listener, app).await
    })?;
    Ok(())
}
