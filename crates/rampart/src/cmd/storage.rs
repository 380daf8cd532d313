//! `rampart storage check`.

use rampart_registry::{Location, MetadataCheck};
use serde_json::json;

use crate::cli::{Format, StorageArgs, StorageCommand};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &StorageArgs) -> Result<Status, CliError> {
    match args.command {
        StorageCommand::Check => check(ctx),
    }
}

fn check(ctx: &Ctx) -> Result<Status, CliError> {
    ctx.home.require()?;
    let policy = ctx.home.load_policy()?;
    let location = Location::of(&ctx.home, &policy)?;
    let metadata = location.check().map_err(|e| {
        CliError::from(e).hint(match location.metadata() {
            rampart_home::Backend::Home => {
                "the home's registry directory must be readable and writable by this user"
            }
            rampart_home::Backend::Postgres(_) => {
                "check the URL ([storage] registry or RAMPART_STORAGE_REGISTRY), PGPASSWORD, \
                 PGSSLROOTCERT for TLS, and that the user may create tables in the database"
            }
        })
    })?;
    let blobs = location.check_blobs().map_err(|e| {
        CliError::from(e).hint(
            "check [storage] blobs (or RAMPART_STORAGE_BLOBS) and the AWS_* settings: \
             endpoint, region, credentials that may read and write the bucket",
        )
    })?;
    // The shared state: reachable (a PING), and what a gateway does without it.
    let shared =
        rampart_serve::home::shared_state(&policy, &rampart_serve::ServeLimits::default())?
            .map(|r| (r.server().to_owned(), policy.storage.shared_state_fallback));
    // The anchor: connected and migrated, and what it holds for this home's key.
    let anchor = match rampart_home::audit::anchor(&policy)? {
        Some(a) => {
            let key = ctx.home.signing_public_key()?.fingerprint().to_hex();
            let url = policy
                .storage
                .audit_anchor()
                .ok()
                .flatten()
                .map(|t| t.to_string())
                .unwrap_or_default();
            Some((url, a.anchored(&key)?.len()))
        }
        None => None,
    };
    // The SIEM: reachable now (connected, TLS handshake done).
    let siem = match policy.storage.siem().map_err(CliError::input)? {
        Some(target) => {
            rampart_audit::siem::probe(&target).map_err(|e| {
                CliError::input(e).hint(
                    "check [storage] siem (or RAMPART_STORAGE_SIEM), that the collector \
                     listens, and for TLS its certificate and ?ca=",
                )
            })?;
            Some(target.addr)
        }
        None => None,
    };
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "siem": match &siem {
                Some(addr) => json!({"backend": "syslog", "server": addr}),
                None => json!({"backend": "none"}),
            },
            "registry": metadata,
            "blobs": blobs,
            "shared_state": match &shared {
                Some((redis, fallback)) => json!({
                    "backend": "redis", "server": redis, "fallback": fallback,
                }),
                None => json!({"backend": "process"}),
            },
            "audit_anchor": match &anchor {
                Some((url, n)) => json!({"backend": "postgres", "url": url, "anchored": n}),
                None => json!({"backend": "none"}),
            },
        }))?,
        Format::Human => {
            let registry = match &metadata {
                MetadataCheck::Sqlite { path, models } => {
                    format!("SQLite {}  ok ({models} models)", path.display())
                }
                MetadataCheck::Postgres { url, check } => format!(
                    "{url}  ok (PostgreSQL {}, TLS {}, {} models, may write)",
                    check.server,
                    if check.tls { "on" } else { "off" },
                    check.models
                ),
            };
            let anchor = match &anchor {
                Some((url, n)) => format!("{url}  ok ({n} checkpoints of this home anchored)"),
                None => "none (each machine's hash chain stands alone)".into(),
            };
            let shared = match &shared {
                Some((redis, fallback)) => format!(
                    "{redis}  ok (limits, nonces, extraction tracking, drift; without it: {})",
                    match fallback {
                        rampart_home::SharedFallback::Closed => "refuse (503)",
                        rampart_home::SharedFallback::Local => "decide per replica, audited",
                    }
                ),
                None => "in each gateway process (limits, nonces and counters per replica)".into(),
            };
            output::print(&format!(
                "registry     {registry}\n\
                 blobs        {}\n\
                 shared state {shared}\n\
                 audit anchor {anchor}\n\
                 siem         {}\n",
                match &blobs {
                    rampart_registry::BlobsCheck::Files { path } =>
                        format!("files in {}", path.display()),
                    rampart_registry::BlobsCheck::S3 { url } =>
                        format!("{url}  ok (written and read back)"),
                },
                match &siem {
                    Some(addr) => format!("syslog at {addr}  ok (connected)"),
                    None => "none (records stay in each home's log)".into(),
                }
            ))?;
        }
    }
    Ok(Status::Ok)
}
