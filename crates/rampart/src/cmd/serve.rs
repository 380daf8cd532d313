//! `rampart serve` and `rampart apikey`.

use rampart_audit::Action;
use std::net::SocketAddr;
use std::sync::Arc;

use rampart_audit::Outcome;
use rampart_registry::Registry;
use rampart_serve::keys::{KeyStore, Role, SealError};
use rampart_serve::load::ModelSetup;
use rampart_serve::{AppState, ServeLimits};
use serde_json::json;

use crate::cli::{ApikeyArgs, ApikeyCommand, Format, KeyRole, ServeArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

fn keystore(ctx: &Ctx) -> Result<KeyStore, CliError> {
    ctx.home.require().map_err(|e| {
        CliError::from(e).hint("API keys live in a home: create one with `rampart init`")
    })?;
    KeyStore::open(&ctx.home.root().join("serve").join("apikeys.db"))
        .map_err(|e| CliError::internal(anyhow::anyhow!(e)))
}

fn parse_expiry(text: &str) -> Result<i64, CliError> {
    let now = time::OffsetDateTime::now_utc();
    if let Ok(days) = text.parse::<u32>() {
        return Ok((now + time::Duration::days(i64::from(days))).unix_timestamp());
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(time::OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            CliError::input(anyhow::anyhow!(
                "--expires {text}: a number of days or an RFC 3339 time"
            ))
        })
}

pub fn apikey(ctx: &Ctx, args: &ApikeyArgs) -> Result<Status, CliError> {
    let store = keystore(ctx)?;
    let err = |e: rampart_serve::keys::KeyStoreError| CliError::internal(anyhow::Error::new(e));
    match &args.command {
        ApikeyCommand::Create {
            role,
            model,
            rate,
            burst,
            expires,
            label,
        } => {
            if *rate == 0 || *burst == 0 {
                return Err(CliError::input(anyhow::anyhow!(
                    "--rate and --burst must be positive"
                )));
            }
            let expires = expires.as_deref().map(parse_expiry).transpose()?;
            let role = match role {
                KeyRole::Predict => Role::Predict,
                KeyRole::Admin => Role::Admin,
            };
            // The HMAC key for signed requests is kept encrypted to the home's identity.
            let (id, _) = ctx.home.age_identity()?;
            let recipient = id.as_age().to_public();
            let seal = move |k: &[u8]| -> Result<String, SealError> {
                let mut out = Vec::new();
                rampart_crypto::age_file::encrypt(
                    &mut &k[..],
                    &mut out,
                    &rampart_crypto::age_file::Recipients::Keys(vec![recipient.clone()]),
                    true,
                )
                .map_err(|e| SealError(e.to_string()))?;
                String::from_utf8(out).map_err(|e| SealError(e.to_string()))
            };
            let (info, token) = ctx.recorded(|rec| {
                store
                    .create(
                        role,
                        model.as_deref(),
                        *rate,
                        *burst,
                        expires,
                        label,
                        &seal,
                        &mut |info| {
                            rec.write(
                                ctx.event(Action::ApikeyCreate, Outcome::Ok)
                                    .subject_path(format!("apikey:{}", info.id))
                                    .detail("role", role.as_str())
                                    .detail("model", model.clone().unwrap_or_default())
                                    .detail("rate", *rate)
                                    .detail("burst", *burst),
                            )
                        },
                    )
                    .map_err(err)
            })?;
            match ctx.format {
                Format::Json | Format::Sarif => {
                    output::print_json(&json!({"key": info, "token": token}))?;
                }
                Format::Human => {
                    // The token is the product; the note after it is a summary.
                    output::product(&format!("{token}\n"))?;
                    output::print(&format!(
                        "(key {}: role {}, {} req/s, burst {}; this token is shown once and stored only as a hash)\n",
                        info.id,
                        role.as_str(),
                        rate,
                        burst
                    ))?;
                }
            }
        }
        ApikeyCommand::List => {
            let keys = store.list().map_err(err)?;
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({"keys": keys}))?,
                Format::Human => {
                    let mut t = String::new();
                    for k in &keys {
                        t.push_str(&format!(
                            "{} {:<8} {:<16} {:>5}/s burst {:<5} {}{}\n",
                            k.id,
                            k.role.as_str(),
                            k.model.as_deref().unwrap_or("*"),
                            k.rate,
                            k.burst,
                            if k.revoked { "REVOKED " } else { "" },
                            k.label
                        ));
                    }
                    output::product(&t)?;
                }
            }
        }
        ApikeyCommand::Revoke { id } => {
            let revoked = ctx.recorded(|rec| {
                store
                    .revoke(id, &mut |id| {
                        rec.write(
                            ctx.event(Action::ApikeyRevoke, Outcome::Ok)
                                .subject_path(format!("apikey:{id}")),
                        )
                    })
                    .map_err(err)
            })?;
            if !revoked {
                return Err(CliError::input(anyhow::anyhow!("no API key {id}")));
            }
            output::print(&format!("revoked {id}\n"))?;
        }
    }
    Ok(Status::Ok)
}

/// The names a signed request may be addressed to: `--public-name`s, else the bind address
/// and, on loopback or a wildcard address, `localhost` and this machine's host name. With the
/// scheme's default port a bare host is accepted too (clients leave the port out).
fn public_names(a: &ServeArgs, bind: SocketAddr, tls: bool) -> Vec<String> {
    if !a.public_names.is_empty() {
        return a.public_names.clone();
    }
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

/// The guardrail proxy: the rails of `[guard]`, the upstream and its key (from the
/// environment, never logged).
fn guard_proxy(
    ctx: &Ctx,
    a: &ServeArgs,
) -> Result<rampart_serve::guard_proxy::GuardProxy, CliError> {
    let guard = ctx.guard()?;
    let upstream = a.guard_upstream.clone().unwrap_or_default();
    if !(upstream.starts_with("https://") || upstream.starts_with("http://")) {
        return Err(CliError::input(anyhow::anyhow!(
            "--guard-upstream {upstream}: an http:// or https:// URL up to /v1"
        )));
    }
    let key = std::env::var(&a.guard_upstream_key_env)
        .ok()
        .filter(|k| !k.is_empty())
        .map(zeroize::Zeroizing::new);
    rampart_serve::guard_proxy::GuardProxy::new(guard, upstream, key, !a.guard_keep_input_pii)
        .map_err(|e| CliError::internal(anyhow::anyhow!(e)))
}

/// A positive, finite number of seconds.
fn seconds(flag: &str, s: f64) -> Result<std::time::Duration, CliError> {
    if s.is_finite() && s > 0.0 && s < 1e9 {
        Ok(std::time::Duration::from_secs_f64(s))
    } else {
        Err(CliError::input(anyhow::anyhow!(
            "{flag} {s}: a positive number of seconds"
        )))
    }
}

pub fn run(ctx: &Ctx, a: &ServeArgs) -> Result<Status, CliError> {
    ctx.home.require().map_err(|e| {
        CliError::from(e)
            .hint("models are served from a home's registry: create one with `rampart init`")
    })?;
    let bind: SocketAddr = a.bind.parse().map_err(|_| {
        CliError::input(anyhow::anyhow!(
            "--bind {}: not an address such as 127.0.0.1:8080",
            a.bind
        ))
    })?;
    let tls = a.tls_cert.clone().zip(a.tls_key.clone());
    if let Some((_, key)) = &tls {
        // The key file must be private, like every key rampart reads.
        rampart_home::secure_fs::read_private_file(key)?;
    }
    if !bind.ip().is_loopback() && !a.insecure_http && tls.is_none() {
        return Err(CliError::input(anyhow::anyhow!(
            "refusing to serve plain HTTP on {bind}, which is not a loopback address"
        ))
        .hint(
            "pass --tls-cert and --tls-key, or --insecure-http behind a TLS terminator (audited), or bind 127.0.0.1",
        ));
    }
    let policy = ctx.home.load_policy()?;
    let keys = ctx.verifier_keys(&[])?;
    let reg = Registry::open(&ctx.home.root().join("registry"))
        .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
    let refs = rampart_serve::load::references(&reg, &a.models)?;
    if refs.is_empty() && !a.guard {
        return Err(CliError::input(anyhow::anyhow!("no model has a production version"))
            .hint("promote one (`rampart model promote N@V --to production`) or name one with --model"));
    }
    let mut outputs = Vec::new();
    for o in &a.output {
        let (name, mode) = o
            .split_once('=')
            .ok_or_else(|| CliError::input(anyhow::anyhow!("--output {o}: expected MODEL=MODE")))?;
        let mode = rampart_serve::OutputMode::parse(mode)
            .map_err(|e| CliError::input(anyhow::anyhow!("--output {o}: {e}")))?;
        outputs.push((name.to_owned(), mode));
    }
    let mut detectors = Vec::new();
    for d in &a.anomaly {
        let (name, det) = d.split_once('=').ok_or_else(|| {
            CliError::input(anyhow::anyhow!("--anomaly {d}: expected MODEL=DETECTOR"))
        })?;
        detectors.push((name.to_owned(), det.to_owned()));
    }
    let setup = ModelSetup {
        keys: keys.clone(),
        anchors: ctx.home.anchors(&policy)?,
        outputs,
        detectors,
        drift_window: a.drift_window.max(1),
    };
    let models = rampart_serve::load::load_served(&ctx.session(&policy)?, &reg, &refs, &setup)?;
    drop(reg);
    // Reloads (SIGHUP, --reload-every) load through the same checks.
    let registry_dir = ctx.home.root().join("registry");
    let explicit = a.models.clone();
    let reload_setup = setup.clone();
    let loader: rampart_serve::Loader =
        Box::new(move || rampart_serve::load::load_from(&registry_dir, &explicit, &reload_setup));
    let store = keystore(ctx)?;
    let (identity, _) = ctx.home.age_identity()?;
    let identity = identity.as_age().clone();
    let unseal: rampart_serve::Unseal = Box::new(move |sealed: &str| {
        let mut out = zeroize::Zeroizing::new(Vec::new());
        rampart_crypto::age_file::decrypt(
            sealed.as_bytes(),
            &mut *out,
            &rampart_crypto::age_file::Unlock::identities(vec![identity.clone()]),
        )
        .ok()?;
        Some(out)
    });
    if a.insecure_http && tls.is_none() && !bind.ip().is_loopback() {
        ctx.audit(
            ctx.event(Action::ServeInsecureHttp, Outcome::Ok)
                .subject_path(bind.to_string())
                .detail("reason", "--insecure-http on a non-loopback address"),
        )?;
    }
    // Security events reach the audit log through a bounded queue and one writer thread.
    let (tx, rx) = std::sync::mpsc::sync_channel::<rampart_serve::SecurityEvent>(4096);
    let audit_dir = ctx.home.audit_dir();
    let actor = rampart_home::os_user();
    let writer = std::thread::spawn(move || {
        let Ok(log) = rampart_audit::AuditLog::open(&audit_dir) else {
            return;
        };
        for ev in rx {
            let outcome = if ev.allowed {
                Outcome::Ok
            } else {
                Outcome::Denied
            };
            let mut e = rampart_audit::Event::new(actor.clone(), ev.action, outcome)
                .subject_path(ev.ip.to_string())
                .detail("reason", ev.reason);
            if let Some(k) = ev.key {
                e = e.detail("key", k);
            }
            if let Err(err) = log.append(e) {
                tracing::warn!("could not audit a security event: {err}");
            }
        }
    });
    let monitoring = rampart_serve::Monitoring {
        anomaly: rampart_serve::monitor::AnomalyPolicy::parse(&a.anomaly_policy)
            .map_err(|e| CliError::input(anyhow::anyhow!("--anomaly-policy: {e}")))?,
        drift_threshold: a.drift_threshold,
        drift_min_rows: a.drift_window.clamp(1, 100),
        extraction: rampart_serve::monitor::ExtractionConfig {
            enabled: !a.no_extraction_detection,
            budget: a.extraction_budget,
            action: match a.extraction_action.as_str() {
                "block" => rampart_serve::monitor::ExtractionAction::Block,
                "throttle" => rampart_serve::monitor::ExtractionAction::Throttle,
                other => {
                    return Err(CliError::input(anyhow::anyhow!(
                        "--extraction-action {other}: block or throttle"
                    )));
                }
            },
            cooldown: seconds("--extraction-cooldown", a.extraction_cooldown)?,
            ..rampart_serve::monitor::ExtractionConfig::default()
        },
        payload_sample: a.log_payloads,
    };
    if !(0.0..=1.0).contains(&a.log_payloads) {
        return Err(CliError::input(anyhow::anyhow!(
            "--log-payloads {}: a fraction from 0 to 1",
            a.log_payloads
        )));
    }
    // Sampled payloads are redacted by the same engine as `rampart data pii`.
    let detector = rampart_data::pii::Detector::new(rampart_data::pii::DetectorOptions::default())
        .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
    let redactor = rampart_data::pii::Redactor::new(rampart_data::pii::Operator::Replace);
    let redact: rampart_serve::Redact = Box::new(move |text: &str| {
        let findings = detector.scan(text);
        redactor
            .redact(text, &findings, None)
            .unwrap_or_else(|_| "<unredactable payload withheld>".into())
    });
    let drift_every = seconds("--drift-every", a.drift_every)?;
    let guard = if a.guard {
        Some(guard_proxy(ctx, a)?)
    } else {
        None
    };
    let state = Arc::new(
        AppState::new(
            models,
            store,
            ServeLimits {
                max_body: a.max_body,
                max_batch: a.max_batch,
                ip_rate: a.ip_rate,
                ip_burst: a.ip_burst,
                range_margin: a.range_margin,
                max_concurrency: a.max_concurrency.max(1),
                timeout: seconds("--request-timeout", a.request_timeout)?,
                ..ServeLimits::default()
            },
            Some(tx),
        )
        .with_loader(loader)
        .with_nonces(
            rampart_serve::httpsig::Nonces::shared(
                &ctx.home.root().join("serve").join("nonces.db"),
            )
            .map_err(|e| CliError::internal(anyhow::anyhow!("signed-request nonces: {e}")))?,
        )
        .with_unseal(unseal)
        .with_monitoring(monitoring)
        .with_redact(redact),
    );
    let state = match guard {
        Some(g) => Arc::new(
            Arc::try_unwrap(state)
                .map_err(|_| CliError::internal(anyhow::anyhow!("state shared too early")))?
                .with_guard(g),
        ),
        None => state,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::internal)?;
    let served = refs.join(", ");
    if a.verify_every <= 0.0 || !a.verify_every.is_finite() {
        return Err(CliError::input(anyhow::anyhow!(
            "--verify-every must be positive"
        )));
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let verify_ms = (a.verify_every * 1000.0).max(100.0) as u64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let reload_every = a
        .reload_every
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| (s * 1000.0).max(100.0) as u64);
    let result = rt.block_on(async move {
        let std_listener = std::net::TcpListener::bind(bind)?;
        let addr = std_listener.local_addr()?;
        state.set_public_names(public_names(a, addr, tls.is_some()));
        let scheme = if tls.is_some() { "https" } else { "http" };
        if !crate::output::quiet() {
            eprintln!("rampart serve: listening on {scheme}://{addr} ({served})");
        }
        let shutdown = async {
            let ctrl_c = tokio::signal::ctrl_c();
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .ok();
            tokio::select! {
                _ = ctrl_c => {},
                _ = async { match &mut term { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {},
            }
        };
        tokio::spawn(rampart_serve::watch_reload(
            std::sync::Arc::clone(&state),
            reload_every.map(std::time::Duration::from_millis),
        ));
        tokio::spawn(rampart_serve::watch_drift(std::sync::Arc::clone(&state), drift_every));
        tokio::spawn(rampart_serve::watch_integrity(
            std::sync::Arc::clone(&state),
            std::time::Duration::from_millis(verify_ms),
        ));
        match &tls {
            Some((cert, key)) => rampart_serve::serve_tls(std_listener, state, cert, key, shutdown).await,
            None => {
                std_listener.set_nonblocking(true)?;
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                rampart_serve::serve(listener, state, shutdown).await
            }
        }
    });
    // The watchers hold the state (and with it the audit queue's sender) until the runtime
    // is gone; only then does the writer see the queue close and finish.
    drop(rt);
    let _ = writer.join();
    result.map_err(|e| {
        CliError::internal(anyhow::Error::new(e).context(format!("cannot serve on {bind}")))
    })?;
    Ok(Status::Ok)
}
