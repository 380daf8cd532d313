//! Serving the router over plain TCP or TLS until shutdown, with the watchers beside it and
//! security events written to an audit sink by one thread.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rampart_audit::{AuditSink, Event, Outcome};

use crate::*;

/// The names a signed request may be addressed to when none is configured: the bind address
/// and, on loopback or a wildcard address, `localhost`, the loopback addresses and this
/// machine's host name. With the scheme's default port a bare host is accepted too (clients
/// leave the port out).
#[must_use]
pub fn default_public_names(bind: SocketAddr, tls: bool) -> Vec<String> {
    let port = bind.port();
    let mut hosts = vec![match bind.ip() {
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    }];
    if bind.ip().is_loopback() || bind.ip().is_unspecified() {
        hosts.push("localhost".into());
        hosts.push("127.0.0.1".into());
        hosts.push("[::1]".into());
        if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let name = name.trim().to_ascii_lowercase();
            if !name.is_empty() {
                hosts.push(name);
            }
        }
    }
    let default_port = if tls { 443 } else { 80 };
    let mut names = Vec::new();
    for h in hosts {
        names.push(format!("{h}:{port}"));
        if port == default_port {
            names.push(h);
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Security events (refused requests, authentication failures, guard decisions) appended to
/// `sink` as `actor` by one writer thread, through a bounded queue of 4,096 events: the
/// sender is [`AppState::new`]'s; the thread ends once every sender is gone.
#[must_use]
pub fn security_audit(
    sink: Box<dyn AuditSink>,
    actor: String,
) -> (
    std::sync::mpsc::SyncSender<SecurityEvent>,
    std::thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<SecurityEvent>(4096);
    let writer = std::thread::spawn(move || {
        for ev in rx {
            let outcome = if ev.allowed {
                Outcome::Ok
            } else {
                Outcome::Denied
            };
            let mut e = Event::new(actor.clone(), ev.action, outcome)
                .subject_path(ev.ip.to_string())
                .detail("reason", ev.reason);
            if let Some(k) = ev.key {
                e = e.detail("key", k);
            }
            if let Err(err) = sink.append(e) {
                tracing::warn!("could not audit a security event: {err}");
            }
        }
    });
    (tx, writer)
}

/// Sampled payloads redacted by the PII engine (`rampart_pii`, every entity replaced), as
/// `rampart data pii` redacts; a payload that cannot be redacted is withheld.
///
/// # Errors
/// The detector's patterns failed to build.
pub fn pii_redactor() -> Result<Redact, rampart_pii::PiiError> {
    let detector = rampart_pii::Detector::new(rampart_pii::DetectorOptions::default())?;
    let redactor = rampart_pii::Redactor::new(rampart_pii::Operator::Replace);
    Ok(Box::new(move |text: &str| {
        let findings = detector.scan(text);
        redactor
            .redact(text, &findings, None)
            .unwrap_or_else(|_| "<unredactable payload withheld>".into())
    }))
}

/// How [`run`] serves.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The address to listen on.
    pub bind: SocketAddr,
    /// A certificate chain and key (PEM) to serve HTTPS with.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The names signed requests may be addressed to (empty: [`default_public_names`]).
    pub public_names: Vec<String>,
    /// Reload the models this often (they also reload on SIGHUP).
    pub reload_every: Option<Duration>,
    /// Compute drift this often.
    pub drift_every: Duration,
    /// Re-hash the served files this often.
    pub verify_every: Duration,
}

/// Serves `state` on a new multi-threaded runtime with the reload, drift and integrity
/// watchers beside it, until SIGINT or SIGTERM; in-flight requests finish first.
/// `on_listening` is told the bound address once the listener is up.
///
/// # Errors
/// The runtime, the listener, or the TLS certificate and key.
pub fn run(
    state: Arc<AppState>,
    opts: &RunOptions,
    on_listening: impl FnOnce(SocketAddr) + Send,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        let std_listener = std::net::TcpListener::bind(opts.bind)?;
        let addr = std_listener.local_addr()?;
        state.set_public_names(if opts.public_names.is_empty() {
            default_public_names(addr, opts.tls.is_some())
        } else {
            opts.public_names.clone()
        });
        on_listening(addr);
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = ctrl_c => {},
                _ = async { match &mut term { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {},
            }
        };
        tokio::spawn(watch_reload(Arc::clone(&state), opts.reload_every));
        tokio::spawn(watch_drift(Arc::clone(&state), opts.drift_every));
        tokio::spawn(watch_shared_state(Arc::clone(&state)));
        tokio::spawn(watch_integrity(Arc::clone(&state), opts.verify_every));
        match &opts.tls {
            Some((cert, key)) => serve_tls(std_listener, state, cert, key, shutdown).await,
            None => {
                std_listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                serve(listener, state, shutdown).await
            }
        }
    });
    // The watchers hold the state (and with it the audit queue's sender) until the runtime
    // is gone; only then does a security-audit writer see the queue close and finish.
    drop(rt);
    result
}

/// Serves until `shutdown` resolves; in-flight requests get ten seconds to finish.
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    // TCP_NODELAY: an answer written in pieces (a stream's chunks) goes out at once instead
    // of waiting for the client's delayed acknowledgement (40 ms a piece on Linux).
    let mut server =
        axum_server::from_tcp(listener).acceptor(axum_server::accept::NoDelayAcceptor::new());
    configure(server.http_builder(), &state);
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    server.handle(on_shutdown(shutdown)).serve(app).await
}

/// Every connection, plain or TLS: a client has `read_timeout` to send a request's headers
/// (a slow sender is cut off, not held open).
fn configure(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    state: &AppState,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(state.limits.read_timeout);
}

/// A handle that shuts the server down gracefully (ten seconds for requests in flight) when
/// `shutdown` resolves.
fn on_shutdown(
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> axum_server::Handle {
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    handle
}

/// Serves HTTPS (rustls, TLS 1.2 and 1.3) with the certificate chain and key in PEM files,
/// until `shutdown` resolves; in-flight requests get ten seconds to finish.
///
/// # Errors
/// Unreadable or invalid certificate or key, listener errors.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    cert: &std::path::Path,
    key: &std::path::Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "TLS certificate {} / key {}: {e}",
                    cert.display(),
                    key.display()
                ),
            )
        })?;
    listener.set_nonblocking(true)?;
    let mut server = axum_server::from_tcp_rustls(listener, config)
        .map(|tls| tls.acceptor(axum_server::accept::NoDelayAcceptor::new()));
    configure(server.http_builder(), &state);
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    server.handle(on_shutdown(shutdown)).serve(app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_cover_loopback_aliases_and_the_bare_host_on_the_default_port() {
        let names = default_public_names("127.0.0.1:8080".parse().unwrap(), false);
        for want in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "localhost"), "{names:?}");
        let names = default_public_names("127.0.0.1:443".parse().unwrap(), true);
        assert!(names.iter().any(|n| n == "localhost"), "{names:?}");
        // A public address is only itself.
        let names = default_public_names("203.0.113.7:8443".parse().unwrap(), true);
        assert_eq!(names, ["203.0.113.7:8443"]);
    }

    #[test]
    fn security_events_reach_the_sink_and_the_writer_ends_with_its_senders() {
        let sink = Arc::new(rampart_audit::MemorySink::new());
        let (tx, writer) = security_audit(Box::new(Arc::clone(&sink)), "gateway".into());
        for (allowed, key) in [(false, Some("k1".to_owned())), (true, None)] {
            tx.send(SecurityEvent {
                action: "serve.auth",
                ip: "192.0.2.1".parse().unwrap(),
                key,
                reason: "bad token".into(),
                allowed,
            })
            .unwrap();
        }
        drop(tx);
        writer.join().unwrap();
        assert_eq!(
            sink.actions(),
            [
                ("serve.auth".to_owned(), "denied".to_owned()),
                ("serve.auth".to_owned(), "ok".to_owned())
            ]
        );
        let first = sink.records()[0].to_value();
        assert_eq!(first["actor"], "gateway");
        assert_eq!(first["details"]["key"], "k1");
        assert_eq!(first["details"]["reason"], "bad token");
    }
}
