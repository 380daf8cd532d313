//! `rampart serve` and `rampart apikey`.

use rampart_audit::Action;
use std::net::SocketAddr;
use std::sync::Arc;

use rampart_audit::Outcome;
use rampart_registry::Registry;
use rampart_serve::admin;
use rampart_serve::keys::{KeyStore, NewKey, Role};
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
    let policy = ctx.home.load_policy()?;
    let session = ctx.session(&policy)?;
    match &args.command {
        ApikeyCommand::Create {
            role,
            model,
            rate,
            burst,
            expires,
            label,
        } => {
            let role = match role {
                KeyRole::Predict => Role::Predict,
                KeyRole::Admin => Role::Admin,
            };
            let new = NewKey {
                role,
                model: model.as_deref(),
                rate: *rate,
                burst: *burst,
                expires: expires.as_deref().map(parse_expiry).transpose()?,
                label,
            };
            let (info, token) = admin::create(&session, &store, &new)?;
            match ctx.format {
                Format::Json | Format::Sarif => {
                    output::print_json(&json!({"key": info, "token": *token}))?;
                }
                Format::Human => {
                    // The token is the product; the note after it is a summary.
                    output::product(&format!("{}\n", *token))?;
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
            let keys = store
                .list()
                .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
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
            admin::revoke(&session, &store, id)?;
            output::print(&format!("revoked {id}\n"))?;
        }
    }
    Ok(Status::Ok)
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
    let log = rampart_audit::AuditLog::open(&ctx.home.audit_dir())?;
    let (tx, writer) = rampart_serve::security_audit(Box::new(log), ctx.actor.clone());
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
    let redact = rampart_serve::pii_redactor().map_err(CliError::internal)?;
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
    let served = refs.join(", ");
    let least = std::time::Duration::from_millis(100);
    let opts = rampart_serve::RunOptions {
        bind,
        tls,
        public_names: a.public_names.clone(),
        reload_every: match a.reload_every {
            Some(s) => Some(seconds("--reload-every", s)?.max(least)),
            None => None,
        },
        drift_every,
        verify_every: seconds("--verify-every", a.verify_every)?.max(least),
    };
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let result = rampart_serve::run(state, &opts, |addr| {
        if !crate::output::quiet() {
            eprintln!("rampart serve: listening on {scheme}://{addr} ({served})");
        }
    });
    let _ = writer.join();
    result.map_err(|e| {
        CliError::internal(anyhow::Error::new(e).context(format!("cannot serve on {bind}")))
    })?;
    Ok(Status::Ok)
}
