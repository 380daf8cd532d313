//! `rampart serve` and `rampart apikey`.

use rampart_serve::admin;
use rampart_serve::config::ServeConfig;
use rampart_serve::keys::{ApiKeyStore, NewKey, Role};
use serde_json::json;

use crate::cli::{ApikeyArgs, ApikeyCommand, Format, KeyRole};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

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
    ctx.home.require().map_err(|e| {
        CliError::from(e).hint("API keys live in a home: create one with `rampart init`")
    })?;
    let policy = ctx.home.load_policy()?;
    let store = rampart_serve::home::keystore(&ctx.home, &policy, false)?;
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
                .keys()
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

/// `rampart serve`: [`rampart_serve::home::start`] with the home's log for security events.
pub fn run(ctx: &Ctx, config: &ServeConfig) -> Result<Status, CliError> {
    ctx.home
        .require()
        .map_err(rampart_serve::ServeError::from)?;
    let policy = ctx.home.load_policy()?;
    let log = rampart_home::audit::open_log(&ctx.home, &policy)?;
    let scheme = if config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    rampart_serve::home::start(
        &ctx.session(&policy)?,
        config,
        Box::new(log),
        |addr, served| {
            if !output::quiet() {
                eprintln!(
                    "rampart serve: listening on {scheme}://{addr} ({})",
                    served.join(", ")
                );
            }
        },
    )?;
    Ok(Status::Ok)
}
