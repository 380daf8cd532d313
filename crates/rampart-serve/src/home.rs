//! Serving a home: [`start`] checks the exposure, loads and verifies the registry's models
//! (each load audited), assembles the gateway over the home's API keys, signed-request nonces
//! and audit log, and serves until shutdown. `rampart serve` is this call.

use std::net::SocketAddr;
use std::sync::Arc;

use rampart_audit::{Action, AuditSink, Outcome};
use rampart_guard::Guard;
use rampart_home::{GuardPolicy, Home, Session};
use rampart_registry::Location;

use crate::config::ServeConfig;
use crate::guard_proxy::GuardProxy;
use crate::keys::{ApiKeyStore, KeyStore};
use crate::load::{self, ModelSetup};
use crate::{AppState, Loader, ServeError, Unseal};

/// The home's API-key store: the home's `serve/apikeys.db`, or with `[storage] registry` on
/// PostgreSQL the shared one there (the gateway then keeps its snapshot current:
/// [`crate::pgkeys::PgKeyStore::watch`]).
///
/// # Errors
/// [`ServeError::Home`] without a home; [`ServeError::KeyStore`] when it cannot be opened.
pub fn keystore(
    home: &Home,
    policy: &rampart_home::Policy,
    gateway: bool,
) -> Result<Box<dyn ApiKeyStore>, ServeError> {
    home.require()?;
    let backend = policy
        .storage
        .registry()
        .map_err(|reason| ServeError::Refused {
            reason: reason.0,
            hint: "fix [storage] registry in rampart.toml or RAMPART_STORAGE_REGISTRY",
        })?;
    Ok(match backend {
        rampart_home::Backend::Home => Box::new(KeyStore::open(
            &home.root().join("serve").join("apikeys.db"),
        )?),
        rampart_home::Backend::Postgres(target) => {
            let store = crate::pgkeys::PgKeyStore::open(&target)?;
            Box::new(if gateway { store.watch()? } else { store })
        }
    })
}

/// The gateway's shared state `[storage] shared_state` names (Redis), connected; `None` for
/// the in-process default.
///
/// # Errors
/// [`ServeError::Refused`] for a URL that cannot be used or a Redis that does not answer.
pub fn shared_state(
    policy: &rampart_home::Policy,
    limits: &crate::ServeLimits,
) -> Result<Option<crate::shared::RedisState>, ServeError> {
    let Some((url, from_file)) = policy.storage.shared_state() else {
        return Ok(None);
    };
    let refused = |e: crate::shared::SharedError| ServeError::Refused {
        reason: format!("storage.shared_state: {e}"),
        hint: "fix [storage] shared_state (or RAMPART_STORAGE_SHARED_STATE) and check that \
               Redis is running",
    };
    let client = crate::shared::parse_url(&url, from_file).map_err(refused)?;
    crate::shared::RedisState::open(
        client,
        "rampart:",
        limits,
        policy.storage.shared_state_fallback,
    )
    .map(Some)
    .map_err(refused)
}

/// The guard `[guard]` describes.
///
/// # Errors
/// [`ServeError::Guard`] for rails that do not compile.
pub fn guard_for(g: &GuardPolicy) -> Result<Guard, ServeError> {
    use rampart_guard::output::{LinkAction, OutputConfig, PiiAction};
    let config = rampart_guard::GuardConfig {
        threshold: g.threshold,
        classifier: g.classifier,
        topics: g
            .topics
            .iter()
            .map(|t| rampart_guard::topics::Topic {
                name: t.name.clone(),
                keywords: t.keywords.clone(),
                examples: t.examples.clone(),
                refusal: t.refusal.clone(),
            })
            .collect(),
        output: OutputConfig {
            pii: match g.output.pii.as_str() {
                "off" => PiiAction::Off,
                "block" => PiiAction::Block,
                _ => PiiAction::Redact,
            },
            banned: g.output.banned.clone(),
            allowed_domains: g.output.allowed_domains.clone(),
            links: if g.output.links == "block" {
                LinkAction::Block
            } else {
                LinkAction::Redact
            },
            harm: harm_policy(&g.output.harm)?,
        },
        tools: rampart_guard::tools::ToolPolicy {
            allowed: g.tools.allowed.clone(),
            allowed_domains: g.tools.allowed_domains.clone(),
        },
        ..rampart_guard::GuardConfig::default()
    };
    Guard::new(config).map_err(ServeError::Guard)
}

/// `[guard.output.harm]` as the guard's policy (names and actions were checked when the
/// policy was read; checked again here for a policy built in code).
fn harm_policy(
    h: &rampart_home::GuardHarmPolicy,
) -> Result<rampart_guard::harm::HarmPolicy, ServeError> {
    use rampart_guard::harm::{Category, HarmAction};
    let act = |a: &str| {
        HarmAction::from_name(a).ok_or_else(|| {
            ServeError::Guard(format!("guard.output.harm: {a:?} is not block, flag or off").into())
        })
    };
    let mut categories = std::collections::BTreeMap::new();
    for (name, a) in &h.categories {
        let c = Category::from_name(name).ok_or_else(|| {
            ServeError::Guard(format!("guard.output.harm: {name:?} is not a harm category").into())
        })?;
        categories.insert(c, act(a)?);
    }
    Ok(rampart_guard::harm::HarmPolicy {
        default: act(&h.default)?,
        categories,
    })
}

/// Which rail [`check_texts_with`] runs.
#[derive(Debug, Clone, Copy)]
pub enum Rail<'a> {
    /// The input rail, reading the text as a user's, a document's or the deployment's.
    Input(rampart_guard::rules::Reading),
    /// The output rail, with the request's canary and system prompt.
    Output(&'a rampart_guard::Confidential),
}

/// Checks each text with the input rail, or with the output rail (and `canary`, a string that
/// must never be echoed) when `output`, and records the blocks (`guard.check` denied, by rule
/// and rail — never the text). Returns each text's verdict, in order.
///
/// # Errors
/// The record could not be written.
pub fn check_texts(
    audit: &rampart_audit::Auditor<'_>,
    guard: &Guard,
    texts: &[&str],
    output: Option<Option<&str>>,
) -> Result<Vec<rampart_guard::Verdict>, rampart_audit::AuditError> {
    let secret = rampart_guard::Confidential::canary(output.flatten().unwrap_or_default());
    let rail = match output {
        Some(_) => Rail::Output(&secret),
        None => Rail::Input(rampart_guard::rules::Reading::User),
    };
    check_texts_with(audit, guard, texts, rail)
}

/// [`check_texts`] with the rail given: the input rail by reading, or the output rail with a
/// system prompt's fingerprint as well as its canary.
///
/// # Errors
/// The record could not be written.
pub fn check_texts_with(
    audit: &rampart_audit::Auditor<'_>,
    guard: &Guard,
    texts: &[&str],
    rail: Rail<'_>,
) -> Result<Vec<rampart_guard::Verdict>, rampart_audit::AuditError> {
    use rampart_guard::rules::Reading;
    let output = matches!(rail, Rail::Output(_));
    let verdicts: Vec<rampart_guard::Verdict> = texts
        .iter()
        .map(|t| match rail {
            Rail::Output(secret) => {
                guard.check_answer(t, secret, &mut rampart_guard::leak::Seen::default())
            }
            Rail::Input(Reading::User) => guard.check_input(t),
            Rail::Input(Reading::Document) => guard.check_document(t),
            Rail::Input(Reading::Instructions) => guard.check_instructions(t),
        })
        .collect();
    let blocked: Vec<&rampart_guard::Verdict> = verdicts.iter().filter(|v| v.blocked).collect();
    if !blocked.is_empty() {
        let rules: std::collections::BTreeSet<&str> = blocked
            .iter()
            .flat_map(|v| v.findings.iter().map(|f| f.rule.as_str()))
            .collect();
        audit.record(
            audit
                .event(Action::GuardCheck, Outcome::Denied)
                .subject_path(if output { "output" } else { "input" })
                .detail("checked", verdicts.len())
                .detail("blocked", blocked.len())
                .detail("rules", rules.into_iter().collect::<Vec<_>>()),
        )?;
    }
    Ok(verdicts)
}

/// The guardrail proxy: the rails of `[guard]`, the upstream, and its key from the
/// environment variable the config names (never logged).
fn guard_proxy(policy: &GuardPolicy, config: &ServeConfig) -> Result<GuardProxy, ServeError> {
    let upstream = config.guard_upstream.clone().unwrap_or_default();
    if !(upstream.starts_with("https://") || upstream.starts_with("http://")) {
        return Err(ServeError::Setting {
            text: upstream,
            expected: "an http:// or https:// URL up to /v1 (--guard-upstream)",
        });
    }
    let key = std::env::var(&config.guard_upstream_key_env)
        .ok()
        .filter(|k| !k.is_empty())
        .map(zeroize::Zeroizing::new);
    let proxy = GuardProxy::new(
        guard_for(policy)?,
        upstream,
        key,
        !config.guard_keep_input_pii,
    )?;
    Ok(match &policy.moderation {
        Some(m) => proxy.with_moderation(moderation_for(m)?),
        None => proxy,
    })
}

/// The moderation hook of `[guard.moderation]`, its key from the environment variable it
/// names (never logged).
fn moderation_for(
    m: &rampart_home::GuardModerationPolicy,
) -> Result<crate::moderation::Moderation, ServeError> {
    use crate::moderation::Act;
    if !(m.url.starts_with("https://") || m.url.starts_with("http://")) {
        return Err(ServeError::Setting {
            text: m.url.clone(),
            expected: "an http:// or https:// URL ([guard.moderation] url)",
        });
    }
    let act = |s: &str| {
        Act::parse(s).map_err(|_| ServeError::Setting {
            text: s.to_owned(),
            expected: "\"block\" or \"flag\" ([guard.moderation])",
        })
    };
    let mut categories = std::collections::BTreeMap::new();
    for (c, a) in &m.categories {
        categories.insert(c.clone(), act(a)?);
    }
    Ok(crate::moderation::Moderation {
        url: m.url.clone(),
        key: std::env::var(&m.key_env)
            .ok()
            .filter(|k| !k.is_empty())
            .map(zeroize::Zeroizing::new),
        model: m.model.clone(),
        timeout: std::time::Duration::from_millis(m.timeout_ms.max(1)),
        categories,
        default: act(&m.default)?,
        on_error: act(&m.on_error)?,
    })
}

/// Opens tokens sealed to the home's age identity (API-key secrets for signed requests).
fn unseal(home: &Home) -> Result<Unseal, ServeError> {
    let identity = home.age_identity()?.0.as_age().clone();
    Ok(Box::new(move |sealed: &str| {
        let mut out = zeroize::Zeroizing::new(Vec::new());
        rampart_crypto::age_file::decrypt(
            sealed.as_bytes(),
            &mut *out,
            &rampart_crypto::age_file::Unlock::identities(vec![identity.clone()]),
        )
        .ok()?;
        Some(out)
    }))
}

/// Refuses what would expose the gateway: plain HTTP on an address other hosts reach (unless
/// `insecure_http`, which [`start`] audits), a TLS key others can read.
fn check_exposure(config: &ServeConfig) -> Result<(), ServeError> {
    if let Some(key) = &config.tls_key {
        rampart_home::secure_fs::read_private_file(key)?;
    }
    if config.plain_http_exposed() && !config.insecure_http {
        return Err(ServeError::Refused {
            reason: format!(
                "refusing to serve plain HTTP on {}, which is not a loopback address",
                config.bind
            ),
            hint: "pass --tls-cert and --tls-key, or --insecure-http behind a TLS terminator (audited), or bind 127.0.0.1",
        });
    }
    Ok(())
}

/// The `--upstream` models: each server's metadata read (on a runtime of its own, before the
/// gateway's starts); a name the registry already serves is refused.
fn upstreams(
    config: &ServeConfig,
    served: &[crate::LoadedModel],
) -> Result<Vec<crate::LoadedModel>, ServeError> {
    if config.upstream.is_empty() {
        return Ok(Vec::new());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError::Client(e.to_string()))?;
    let mut out = Vec::new();
    for u in &config.upstream {
        if served.iter().any(|m| m.name == u.model)
            || out.iter().any(|m: &crate::LoadedModel| m.name == u.model)
        {
            return Err(ServeError::Refused {
                reason: format!(
                    "{} is named twice (a registry model or another --upstream)",
                    u.model
                ),
                hint: "give each served model one source",
            });
        }
        // The gateway's own credential for that server, if it wants one: from the
        // environment only, zeroized once the client holds it.
        let token = std::env::var(crate::upstream::token_env(&u.model))
            .ok()
            .filter(|t| !t.is_empty())
            .map(zeroize::Zeroizing::new);
        let upstream = rt.block_on(crate::upstream::Upstream::connect(
            &u.model,
            &u.value.0,
            config.request_timeout.0,
            token.as_deref().map(String::as_str),
        ))?;
        let output = config
            .output
            .iter()
            .find(|o| o.model == u.model)
            .map_or(crate::OutputMode::Raw, |o| o.value.clone());
        out.push(crate::LoadedModel::upstream(
            u.model.clone(),
            upstream,
            output,
        ));
    }
    Ok(out)
}

/// Serves the home's registry as `config` says, until SIGINT or SIGTERM. Security events
/// (refusals, authentication failures, guard decisions) go to `security` through one writer
/// thread; model loads are recorded through the session. `on_listening` is told the bound
/// address and the references served once the listener is up.
///
/// # Errors
/// See [`ServeError`]: nothing listens unless every named model loads and verifies.
pub fn start(
    s: &Session<'_>,
    config: &ServeConfig,
    security: Box<dyn AuditSink>,
    on_listening: impl FnOnce(SocketAddr, &[String]) + Send,
) -> Result<(), ServeError> {
    let home = s.home;
    home.require()?;
    check_exposure(config)?;
    let keys = s.policy.trusted_public_keys();
    if keys.is_empty() {
        return Err(ServeError::Refused {
            reason: format!("no trusted keys in {}", home.policy_path().display()),
            hint: "trust a key with `rampart trust add KEY.pem`",
        });
    }
    let location = Location::of(home, s.policy)?;
    let reg = location.open()?;
    let refs = load::references(&reg, &config.models)?;
    if refs.is_empty() && !config.guard && config.upstream.is_empty() {
        return Err(ServeError::Refused {
            reason: "no model has a production version".into(),
            hint: "promote one (`rampart model promote N@V --to production`) or name one with --model",
        });
    }
    // Redis, when the gateway's state is shared: limits, nonces, extraction, drift windows.
    let shared = shared_state(s.policy, &config.limits())?.map(Arc::new);
    let setup = ModelSetup {
        keys,
        anchors: home.anchors(s.policy)?,
        outputs: config
            .output
            .iter()
            .map(|o| (o.model.clone(), o.value.clone()))
            .collect(),
        detectors: config
            .anomaly
            .iter()
            .map(|d| (d.model.clone(), d.value.0.clone()))
            .collect(),
        drift_window: config.drift_window.max(1),
        onnx: crate::onnx::OnnxLimits {
            run_timeout: config.request_timeout.0,
            sessions: config.onnx_sessions,
            ..crate::onnx::OnnxLimits::default()
        },
        onnx_isolation: config.onnx_isolation()?,
        shared: shared.clone(),
    };
    let mut models = load::load_served(s, &reg, &refs, &setup)?;
    models.extend(upstreams(config, &models)?);
    if config.plain_http_exposed() {
        s.audit.record(
            s.audit
                .event(Action::ServeInsecureHttp, Outcome::Ok)
                .subject_path(config.bind.to_string())
                .detail("reason", "--insecure-http on a non-loopback address"),
        )?;
    }
    drop(reg);
    // Reloads (SIGHUP, --reload-every) load through the same checks.
    let explicit = config.models.clone();
    let loader: Loader = Box::new(move || load::load_from(&location, &explicit, &setup));
    let guard = if config.guard {
        Some(guard_proxy(&s.policy.guard, config)?)
    } else {
        None
    };
    let (tx, writer) = crate::security_audit(security, s.audit.actor().to_owned());
    let mut state = AppState::new(
        models,
        keystore(home, s.policy, true)?,
        config.limits(),
        Some(tx),
    )
    .with_loader(loader)
    .with_nonces(crate::httpsig::Nonces::shared(
        &home.root().join("serve").join("nonces.db"),
    )?)
    .with_unseal(unseal(home)?)
    .with_monitoring(config.monitoring())
    // Sampled payloads are redacted by the same engine as `rampart data pii`.
    .with_redact(crate::pii_redactor()?);
    if let Some(g) = guard {
        state = state.with_guard(g);
    }
    if let Some(redis) = shared {
        state = state
            .with_extraction(redis.extraction(config.monitoring().extraction))
            .with_limiters(Arc::clone(&redis))
            .with_nonces(redis);
    }
    let opts = config.run_options();
    let mut served = refs;
    served.extend(
        config
            .upstream
            .iter()
            .map(|u| format!("{} (upstream {})", u.model, u.value.0)),
    );
    let result = crate::run(Arc::new(state), &opts, |addr| on_listening(addr, &served));
    let _ = writer.join();
    result.map_err(|source| ServeError::Listen {
        bind: config.bind,
        source,
    })
}
