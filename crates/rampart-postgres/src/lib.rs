//! PostgreSQL for rampart's shared stores (registry metadata, API keys, audit anchors): one
//! way to read a connection URL, connect (TLS through rustls) and migrate a component's
//! tables, so every store behaves the same.
//!
//! - **No secret in a file.** A URL read from `rampart.toml` must not carry a password
//!   ([`Target::parse`] with [`Origin::File`] refuses it); the password comes from
//!   `PGPASSWORD` or from a URL given in the environment.
//! - **No silent downgrade.** `sslmode=prefer` (plain text when the server — or whoever sits
//!   between — says it has no TLS) is refused; without `sslmode`, a loopback or Unix-socket
//!   host gets `disable` and any other host `require`. Under TLS the server's certificate is
//!   always verified, against `PGSSLROOTCERT` (a PEM file) when set, else the web PKI roots.
//! - **Versioned migrations**, per component, in `rampart_schema`, applied in one transaction
//!   under an advisory lock, so replicas starting together migrate once; a database written
//!   by a newer rampart is refused.

use std::fmt;
use std::str::FromStr as _;
use std::sync::Arc;

use postgres::config::{Host, SslMode};
pub use postgres::{Client, Row, Transaction};
/// The TLS library the connections use (for other clients sharing [`client_config`]).
pub use rustls;

/// What can go wrong reaching or preparing a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The URL cannot be used; says why and what to write instead.
    #[error("{0}")]
    Url(String),
    /// The TLS set-up failed (`PGSSLROOTCERT`).
    #[error("TLS for PostgreSQL: {0}")]
    Tls(String),
    /// Connecting failed.
    #[error("cannot connect to {shown}: {reason}")]
    Connect {
        /// The URL without its password.
        shown: String,
        /// The driver's error, with its causes.
        reason: String,
    },
    /// A statement failed.
    #[error("PostgreSQL: {0}")]
    Db(#[from] postgres::Error),
    /// The tables were written by a newer rampart.
    #[error(
        "{component} tables are at schema version {have}, written by a newer rampart (this one \
         knows up to {know})"
    )]
    Newer {
        /// Whose tables.
        component: String,
        /// The version found.
        have: i32,
        /// The newest this build knows.
        know: i32,
    },
}

impl PgError {
    /// The database's own message for a statement error (its `DETAIL` too), else the whole.
    #[must_use]
    pub fn reason(&self) -> String {
        match self {
            Self::Db(e) => db_reason(e),
            other => other.to_string(),
        }
    }
}

/// A driver error as one line, the server's message first.
#[must_use]
pub fn db_reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{} ({detail})", d.message()),
            None => d.message().to_owned(),
        },
        None => e.to_string(),
    }
}

/// Where a URL was read: a file may not hold a password, the environment may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `rampart.toml` (or another file people commit).
    File,
    /// An environment variable.
    Environment,
}

/// A database to connect to.
#[derive(Clone)]
pub struct Target {
    config: postgres::Config,
    shown: String,
    root_cert: Option<std::path::PathBuf>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

fn loopback(h: &Host) -> bool {
    match h {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }
}

/// The URL with any password replaced, for messages and reports.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a PostgreSQL URL)".into();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<&str> = query
                .split('&')
                .map(|kv| {
                    if kv.starts_with("password=") {
                        "password=***"
                    } else {
                        kv
                    }
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl Target {
    /// Reads a `postgres://` or `postgresql://` URL (what libpq accepts: user, host, port,
    /// database, `sslmode`, `connect_timeout`, `application_name`…).
    ///
    /// # Errors
    /// [`PgError::Url`]: not a PostgreSQL URL, a password read from a file, `sslmode=prefer`,
    /// no host.
    pub fn parse(url: &str, origin: Origin) -> Result<Self, PgError> {
        let shown = redact(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PgError::Url(format!(
                "{shown} is not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE)"
            )));
        }
        let mut config =
            postgres::Config::from_str(url).map_err(|e| PgError::Url(format!("{shown}: {e}")))?;
        if config.get_password().is_some() && origin == Origin::File {
            return Err(PgError::Url(format!(
                "{shown} carries a password, and secrets never belong in rampart.toml: remove it \
                 and set PGPASSWORD, or give the whole URL in the environment"
            )));
        }
        if config.get_password().is_none()
            && let Some(p) = std::env::var_os("PGPASSWORD")
        {
            config.password(p.as_encoded_bytes());
        }
        if config.get_hosts().is_empty() {
            return Err(PgError::Url(format!("{shown} names no host")));
        }
        let explicit = url
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("sslmode=")));
        if explicit {
            if config.get_ssl_mode() == SslMode::Prefer {
                return Err(PgError::Url(format!(
                    "{shown}: sslmode=prefer falls back to plain text whenever the server (or \
                     anyone on the way) says it has no TLS; write sslmode=require, or \
                     sslmode=disable for a trusted network"
                )));
            }
        } else if config.get_hosts().iter().all(loopback) {
            config.ssl_mode(SslMode::Disable);
        } else {
            config.ssl_mode(SslMode::Require);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("rampart");
        }
        Ok(Self {
            config,
            shown,
            root_cert: std::env::var_os("PGSSLROOTCERT").map(std::path::PathBuf::from),
        })
    }

    /// Verifies the server's TLS certificate against the CA certificates in `pem` (what
    /// `PGSSLROOTCERT` names when it is set) instead of the web PKI's roots.
    #[must_use]
    pub fn with_root_cert(mut self, pem: &std::path::Path) -> Self {
        self.root_cert = Some(pem.to_path_buf());
        self
    }

    /// Whether connections use TLS.
    #[must_use]
    pub fn tls(&self) -> bool {
        self.config.get_ssl_mode() != SslMode::Disable
    }

    /// Connects.
    ///
    /// # Errors
    /// [`PgError::Tls`] for an unreadable `PGSSLROOTCERT`, [`PgError::Connect`].
    pub fn connect(&self) -> Result<Client, PgError> {
        let connected = if self.tls() {
            self.config.connect(tls(self.root_cert.as_deref())?)
        } else {
            self.config.connect(postgres::NoTls)
        };
        connected.map_err(|e| {
            let mut reason = db_reason(&e);
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                let text = c.to_string();
                if !reason.ends_with(&text) {
                    reason = format!("{reason}: {text}");
                }
                cause = c.source();
            }
            if reason.contains("password missing") {
                reason.push_str(
                    " (set PGPASSWORD, or give the password in the URL's environment variable)",
                );
            }
            PgError::Connect {
                shown: self.shown.clone(),
                reason,
            }
        })
    }
}

/// The TLS connector: the certificates in `root_cert` (`PGSSLROOTCERT`), else the web PKI's
/// roots.
fn tls(
    root_cert: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    client_config(root_cert, "PGSSLROOTCERT").map(tokio_postgres_rustls::MakeRustlsConnect::new)
}

/// A TLS client configuration (rustls, ring) trusting the certificates in `root_cert`, else the
/// web PKI's roots; `label` names the setting the file came from in errors.
///
/// # Errors
/// [`PgError::Tls`]: the file cannot be read or holds no PEM certificate.
pub fn client_config(
    root_cert: Option<&std::path::Path>,
    label: &str,
) -> Result<rustls::ClientConfig, PgError> {
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let text = std::fs::read(path)
                .map_err(|e| PgError::Tls(format!("{label} {}: {e}", path.display())))?;
            let mut n = 0usize;
            for cert in rustls_pemfile::certs(&mut text.as_slice()) {
                let cert =
                    cert.map_err(|e| PgError::Tls(format!("{label} {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| PgError::Tls(format!("{label}: {e}")))?;
                n += 1;
            }
            if n == 0 {
                return Err(PgError::Tls(format!(
                    "{label} {} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Brings `component`'s tables to the newest of `migrations` (each one SQL batch, in order;
/// the number applied is the schema version), in one transaction under an advisory lock.
///
/// # Errors
/// [`PgError::Newer`] for tables a newer rampart wrote; a failed statement.
pub fn migrate(client: &mut Client, component: &str, migrations: &[&str]) -> Result<(), PgError> {
    let know = i32::try_from(migrations.len()).unwrap_or(i32::MAX);
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('rampart_schema'))",
        &[],
    )?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS rampart_schema (
            component TEXT PRIMARY KEY,
            version INTEGER NOT NULL
        )",
    )?;
    let have: i32 = tx
        .query_opt(
            "SELECT version FROM rampart_schema WHERE component = $1",
            &[&component],
        )?
        .map_or(0, |r| r.get(0));
    if have > know {
        return Err(PgError::Newer {
            component: component.to_owned(),
            have,
            know,
        });
    }
    if have == know {
        return Ok(());
    }
    for (i, sql) in migrations
        .iter()
        .enumerate()
        .skip(usize::try_from(have).unwrap_or(0))
    {
        tx.batch_execute(sql)?;
        let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO rampart_schema (component, version) VALUES ($1, $2)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            &[&component, &v],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub mod testing;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn a_password_in_a_file_is_refused_and_never_shown() {
        let e = Target::parse("postgres://alice:s3cret@db.example/reg", Origin::File)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PGPASSWORD") && !e.contains("s3cret"), "{e}");
        let e = Target::parse(
            "postgres://alice@db.example/reg?password=s3cret",
            Origin::File,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("password=***") && !e.contains("s3cret"), "{e}");
        let t = Target::parse(
            "postgres://alice:s3cret@db.example/reg",
            Origin::Environment,
        )
        .unwrap();
        assert_eq!(t.to_string(), "postgres://alice:***@db.example/reg");
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn tls_is_required_off_the_machine_and_prefer_is_refused() {
        let remote = Target::parse("postgres://a@db.example/reg", Origin::File).unwrap();
        assert!(remote.tls());
        let local = Target::parse("postgres://a@127.0.0.1:5432/reg", Origin::File).unwrap();
        assert!(!local.tls());
        let local6 = Target::parse("postgres://a@[::1]/reg", Origin::File).unwrap();
        assert!(!local6.tls());
        let forced =
            Target::parse("postgres://a@localhost/reg?sslmode=require", Origin::File).unwrap();
        assert!(forced.tls());
        let off =
            Target::parse("postgres://a@db.example/reg?sslmode=disable", Origin::File).unwrap();
        assert!(!off.tls());
        let e = Target::parse("postgres://a@db.example/reg?sslmode=prefer", Origin::File)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode=require"), "{e}");
    }

    #[test]
    fn other_urls_are_refused_by_name() {
        for bad in [
            "mysql://a@h/db",
            "postgres://a@h/db?nonsense=1",
            "sqlite:reg.db",
        ] {
            assert!(matches!(
                Target::parse(bad, Origin::File),
                Err(PgError::Url(_))
            ));
        }
    }
}
