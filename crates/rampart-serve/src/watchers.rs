//! The background watchers: the served files' integrity, drift, and reloads.

use std::net::IpAddr;
use std::sync::Arc;

use crate::*;

/// Re-hashes every served model's stored files every `every` and as soon as one of them
/// changes on disk (inotify on their directories); a model whose files no longer match stops
/// serving (503), is counted and audited. Runs until the process ends.
pub async fn watch_integrity(state: Arc<AppState>, every: std::time::Duration) {
    use notify::Watcher as _;
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut watching: Option<(
        std::collections::BTreeSet<std::path::PathBuf>,
        notify::RecommendedWatcher,
    )> = None;
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        // Watch the directories of the files served now (they change on a reload).
        let dirs: std::collections::BTreeSet<std::path::PathBuf> = state
            .models()
            .values()
            .flat_map(|m| {
                m.sources
                    .iter()
                    .filter_map(|(p, _)| p.parent().map(std::path::Path::to_path_buf))
            })
            .collect();
        if watching.as_ref().is_none_or(|(d, _)| *d != dirs) {
            let w = Arc::clone(&wake);
            let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
                // Our own reads are not changes.
                if ev.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                    w.notify_one();
                }
            });
            match watcher {
                Ok(mut watcher) => {
                    for d in &dirs {
                        if let Err(e) = watcher.watch(d, notify::RecursiveMode::NonRecursive) {
                            tracing::warn!(
                                "cannot watch {} for changes (the timer still re-verifies it): {e}",
                                d.display()
                            );
                        }
                    }
                    watching = Some((dirs, watcher));
                }
                Err(e) => tracing::warn!(
                    "no file-change notifications (the timer still re-verifies): {e}"
                ),
            }
        }
        tokio::select! {
            _ = tick.tick() => {}
            () = wake.notified() => {}
        }
        for m in state.models().values() {
            if !m.intact.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let sources = m.sources.clone();
            let bad = tokio::task::spawn_blocking(move || {
                sources.iter().find_map(|(path, want)| {
                    let got = std::fs::File::open(path).and_then(|mut f| {
                        let mut h = rampart_crypto::Sha256Hasher::new();
                        std::io::copy(&mut f, &mut h)?;
                        Ok(h.finish())
                    });
                    match got {
                        Ok(d) if d == *want => None,
                        Ok(d) => Some(format!(
                            "{} now hashes to sha256:{d}, not sha256:{want}",
                            path.display()
                        )),
                        Err(e) => Some(format!("{}: {e}", path.display())),
                    }
                })
            })
            .await
            .ok()
            .flatten();
            if let Some(reason) = bad {
                m.intact.store(false, std::sync::atomic::Ordering::SeqCst);
                state.metrics.integrity_failure(&m.name);
                tracing::error!(
                    "{}@{}: integrity check failed, no longer serving it: {reason}",
                    m.name,
                    m.version
                );
                state.event(
                    "serve.tamper",
                    IpAddr::from([127, 0, 0, 1]),
                    None,
                    format!("{}@{}: {reason}", m.name, m.version),
                );
            }
        }
    }
}

/// Computes every served model's drift every `every`, off the request path: PSI per feature
/// over the rolling window against the training reference stored in the model, exported as
/// `rampart_drift_score` and audited when a feature crosses the threshold.
pub async fn watch_drift(state: Arc<AppState>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let st = Arc::clone(&state);
        let _ = tokio::task::spawn_blocking(move || st.drift_once()).await;
    }
}

/// Audits, once a second, the limit and nonce decisions taken in this process because the
/// shared state store could not be reached (`Fallback::Local`), and reports the extraction
/// alerts raised off the request path that no request has reported yet.
pub async fn watch_shared_state(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut seen = state.limiters.local_decisions();
    loop {
        tick.tick().await;
        // Alerts a shared extraction store raised since the last request reported them.
        state.report_extraction_alerts(None);
        let now = state.limiters.local_decisions();
        if now > seen {
            tracing::warn!(
                "{} limit and nonce decisions taken by this replica alone: the shared state store cannot be reached",
                now - seen
            );
            state.event(
                "serve.shared-state-local",
                IpAddr::from([127, 0, 0, 1]),
                None,
                format!(
                    "{} decisions taken by this replica alone in the last second: the shared \
                     state store cannot be reached (limits, nonces and extraction tracking are per replica until it returns)",
                    now - seen
                ),
            );
        }
        seen = now;
    }
}

impl AppState {
    /// One drift computation over every served model (see [`watch_drift`]).
    pub fn drift_once(&self) {
        let threshold = self.monitoring.drift_threshold;
        for m in self.models().values() {
            let schema = m.schema();
            if schema.is_empty() {
                continue;
            }
            let Some(window) = m.window.snapshot(self.monitoring.drift_min_rows) else {
                continue;
            };
            let scores = monitor::drift_scores(&window, schema);
            let max = scores.iter().copied().fold(0.0, f64::max);
            let mut series: Vec<(String, f64)> = schema
                .iter()
                .zip(&scores)
                .take(monitor::MAX_DRIFT_SERIES)
                .map(|(f, s)| (f.name.clone(), *s))
                .collect();
            series.push(("_max".into(), max));
            self.metrics.drift(&m.name, series);
            let Ok(mut drifting) = m.drifting.lock() else {
                continue;
            };
            for (j, (f, s)) in schema.iter().zip(&scores).enumerate() {
                let above = *s > threshold;
                if above && drifting.insert(j) {
                    tracing::warn!(
                        "{}@{}: feature {} drifted (PSI {s:.3} > {threshold})",
                        m.name,
                        m.version,
                        f.name
                    );
                    self.event(
                        "serve.drift",
                        IpAddr::from([127, 0, 0, 1]),
                        None,
                        format!(
                            "{}@{}: feature {} PSI {s:.4} over the last {} rows (threshold {threshold})",
                            m.name,
                            m.version,
                            f.name,
                            window.len() / schema.len()
                        ),
                    );
                } else if !above {
                    drifting.remove(&j);
                }
            }
        }
    }
}

/// Reloads on SIGHUP and every `every` (if given), auditing each change.
pub async fn watch_reload(state: Arc<AppState>, every: Option<std::time::Duration>) {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = every.map(tokio::time::interval);
    if let Some(t) = &mut tick {
        t.tick().await;
    }
    loop {
        tokio::select! {
            () = async { match &mut hup { Some(h) => { h.recv().await; } None => std::future::pending::<()>().await } } => {}
            () = async { match &mut tick { Some(t) => { t.tick().await; } None => std::future::pending::<()>().await } } => {}
        }
        let st = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || st.reload()).await {
            Ok(Ok(changes)) if !changes.is_empty() => {
                tracing::info!("reloaded: {}", changes.join(", "));
                state.event(
                    "serve.reload",
                    IpAddr::from([127, 0, 0, 1]),
                    None,
                    changes.join(", "),
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!("reload failed, still serving the loaded models: {e}");
                state.event(
                    "serve.reload",
                    IpAddr::from([127, 0, 0, 1]),
                    None,
                    format!("failed: {e}"),
                );
            }
            Err(_) => {}
        }
    }
}
