//! API keys in PostgreSQL (`[storage] registry = "postgres://…"`): one key store for every
//! gateway replica and every home that names the database.
//!
//! A request is never held up by the database: each process authenticates against a snapshot
//! of the keys (hash of the secret, role, limits, revocation, sealed signing secret). Every
//! change (create, revoke) bumps a counter in the same transaction; a watcher thread reads the
//! counter every [`REFRESH`] and reloads the snapshot when it moved, so a key revoked through
//! any home is refused by every replica within a second. A snapshot not confirmed for
//! [`MAX_STALE`] (the database unreachable) refuses every key with
//! [`AuthFailure::Unavailable`] (503): fail closed, never on old data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rampart_postgres::{Client, Target};

use crate::keys::{
    ApiKeyStore, AuthFailure, KeyInfo, KeyStoreError, Minted, NewKey, Role, SealError,
    check_secret, live, parse_token,
};

/// How often the watcher asks whether the keys changed.
pub const REFRESH: Duration = Duration::from_millis(200);

/// How old a snapshot may be before no key is accepted.
pub const MAX_STALE: Duration = Duration::from_secs(1);

const MIGRATIONS: &[&str] = &["CREATE TABLE rampart_api_keys (
        id TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        role TEXT NOT NULL,
        model TEXT,
        rate BIGINT NOT NULL,
        burst BIGINT NOT NULL,
        expires BIGINT,
        revoked BOOLEAN NOT NULL DEFAULT FALSE,
        created_at TEXT NOT NULL,
        label TEXT NOT NULL,
        hmac TEXT
    );
    CREATE TABLE rampart_api_key_changes (
        one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        counter BIGINT NOT NULL
    );
    INSERT INTO rampart_api_key_changes (one, counter) VALUES (TRUE, 0);"];

const COLUMNS: &str = "id, role, model, rate, burst, expires, revoked, created_at, label";

/// One key as the snapshot holds it.
struct Entry {
    hash: String,
    info: Arc<KeyInfo>,
    sealed: Option<String>,
}

struct Snapshot {
    counter: i64,
    keys: HashMap<String, Entry>,
    confirmed: Instant,
}

/// API keys in a PostgreSQL database shared by every replica.
pub struct PgKeyStore {
    client: Mutex<Client>,
    target: Target,
    snapshot: Arc<RwLock<Snapshot>>,
    watching: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for PgKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgKeyStore({})", self.target)
    }
}

impl Drop for PgKeyStore {
    fn drop(&mut self) {
        if let Some(stop) = &self.watching {
            stop.store(true, Ordering::Relaxed);
        }
    }
}

fn db(e: &postgres::Error) -> KeyStoreError {
    KeyStoreError::Shared(rampart_postgres::db_reason(e))
}

fn info_at(r: &postgres::Row, o: usize) -> Result<KeyInfo, postgres::Error> {
    let role: String = r.try_get(o + 1)?;
    let count = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(KeyInfo {
        id: r.try_get(o)?,
        role: Role::parse(&role).unwrap_or(Role::Predict),
        model: r.try_get(o + 2)?,
        rate: count(r.try_get(o + 3)?),
        burst: count(r.try_get(o + 4)?),
        expires: r.try_get(o + 5)?,
        revoked: r.try_get(o + 6)?,
        created_at: r.try_get(o + 7)?,
        label: r.try_get(o + 8)?,
    })
}

fn counter(c: &mut Client) -> Result<i64, postgres::Error> {
    c.query_one("SELECT counter FROM rampart_api_key_changes", &[])?
        .try_get(0)
}

/// Every key, with the counter it was read at (one repeatable-read transaction).
fn read_all(c: &mut Client) -> Result<Snapshot, postgres::Error> {
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let counter: i64 = tx
        .query_one("SELECT counter FROM rampart_api_key_changes", &[])?
        .try_get(0)?;
    let rows = tx.query(
        &format!("SELECT hash, hmac, {COLUMNS} FROM rampart_api_keys"),
        &[],
    )?;
    let mut keys = HashMap::with_capacity(rows.len());
    for r in &rows {
        let info = info_at(r, 2)?;
        keys.insert(
            info.id.clone(),
            Entry {
                hash: r.try_get(0)?,
                sealed: r.try_get(1)?,
                info: Arc::new(info),
            },
        );
    }
    tx.commit()?;
    Ok(Snapshot {
        counter,
        keys,
        confirmed: Instant::now(),
    })
}

/// Brings `snapshot` up to date: confirms it when the counter has not moved, else reloads.
fn refresh(c: &mut Client, snapshot: &RwLock<Snapshot>) -> Result<(), postgres::Error> {
    let now = counter(c)?;
    let same = snapshot.read().is_ok_and(|s| s.counter == now);
    let fresh = if same { None } else { Some(read_all(c)?) };
    if let Ok(mut s) = snapshot.write() {
        match fresh {
            Some(f) => *s = f,
            None => s.confirmed = Instant::now(),
        }
    }
    Ok(())
}

impl PgKeyStore {
    /// Connects, migrates and reads every key. Authentication then trusts this snapshot for
    /// [`MAX_STALE`]; a gateway calls [`PgKeyStore::watch`] to keep it current.
    ///
    /// # Errors
    /// [`KeyStoreError::Shared`]: cannot connect, migrate or read.
    pub fn open(target: &Target) -> Result<Self, KeyStoreError> {
        let shared = |e: rampart_postgres::PgError| KeyStoreError::Shared(e.to_string());
        let mut client = target.connect().map_err(shared)?;
        rampart_postgres::migrate(&mut client, "api_keys", MIGRATIONS).map_err(shared)?;
        let snapshot = read_all(&mut client).map_err(|e| db(&e))?;
        Ok(Self {
            client: Mutex::new(client),
            target: target.clone(),
            snapshot: Arc::new(RwLock::new(snapshot)),
            watching: None,
        })
    }

    /// Starts the thread that keeps the snapshot current (its own connection, reconnecting
    /// after a failure); it stops when the store is dropped.
    ///
    /// # Errors
    /// When the thread's first connection fails.
    pub fn watch(mut self) -> Result<Self, KeyStoreError> {
        let mut client = self
            .target
            .connect()
            .map_err(|e| KeyStoreError::Shared(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (target, snapshot, halt) = (
            self.target.clone(),
            Arc::clone(&self.snapshot),
            Arc::clone(&stop),
        );
        std::thread::Builder::new()
            .name("rampart-apikeys".into())
            .spawn(move || {
                let mut warned = false;
                while !halt.load(Ordering::Relaxed) {
                    std::thread::sleep(REFRESH);
                    match refresh(&mut client, &snapshot) {
                        Ok(()) => warned = false,
                        Err(e) => {
                            if !warned {
                                tracing::warn!(
                                    "API keys: cannot read {target}: {}; keys are refused once \
                                     the last reading is {} s old",
                                    rampart_postgres::db_reason(&e),
                                    MAX_STALE.as_secs()
                                );
                                warned = true;
                            }
                            if client.is_closed()
                                && let Ok(c) = target.connect()
                            {
                                client = c;
                            }
                        }
                    }
                }
            })
            .map_err(|e| KeyStoreError::Shared(format!("cannot start the key watcher: {e}")))?;
        self.watching = Some(stop);
        Ok(self)
    }

    /// The snapshot, if it is recent enough to be trusted. Without a watcher, a stale one is
    /// refreshed here (a command, not a gateway request).
    fn trusted<T>(&self, read: impl FnOnce(&Snapshot) -> T) -> Result<T, AuthFailure> {
        let stale =
            |s: &RwLock<Snapshot>| s.read().map_or(true, |s| s.confirmed.elapsed() > MAX_STALE);
        if self.watching.is_none()
            && stale(&self.snapshot)
            && tokio::runtime::Handle::try_current().is_err()
            && let Ok(mut c) = self.client.lock()
        {
            let _ = refresh(&mut c, &self.snapshot);
        }
        let s = self.snapshot.read().map_err(|_| AuthFailure::Unavailable)?;
        if s.confirmed.elapsed() > MAX_STALE {
            return Err(AuthFailure::Unavailable);
        }
        Ok(read(&s))
    }

    /// Applies a change this process just committed, so its own next request sees it.
    fn changed(&self) {
        if let Ok(mut c) = self.client.lock() {
            let _ = refresh(&mut c, &self.snapshot);
        }
    }

    fn bump(tx: &mut postgres::Transaction<'_>) -> Result<(), KeyStoreError> {
        tx.execute(
            "UPDATE rampart_api_key_changes SET counter = counter + 1",
            &[],
        )
        .map_err(|e| db(&e))?;
        Ok(())
    }
}

impl ApiKeyStore for PgKeyStore {
    fn create_key(
        &self,
        n: &NewKey<'_>,
        seal: &dyn Fn(&[u8]) -> Result<String, SealError>,
        record: &mut dyn FnMut(&KeyInfo) -> Result<(), rampart_audit::NotRecorded>,
    ) -> Result<(KeyInfo, String), KeyStoreError> {
        let Minted {
            id,
            secret_hash,
            token,
            created,
        } = Minted::new();
        let sealed = seal(&crate::httpsig::hmac_key(&token)).map_err(KeyStoreError::Seal)?;
        let info = {
            let mut c = self
                .client
                .lock()
                .map_err(|_| KeyStoreError::Shared("the connection is poisoned".into()))?;
            let mut tx = c.transaction().map_err(|e| db(&e))?;
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO rampart_api_keys (id, hash, role, model, rate, burst, expires,
                            created_at, label, hmac)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
                    ),
                    &[
                        &id,
                        &secret_hash,
                        &n.role.as_str(),
                        &n.model,
                        &i64::from(n.rate),
                        &i64::from(n.burst),
                        &n.expires,
                        &created,
                        &n.label,
                        &sealed,
                    ],
                )
                .map_err(|e| db(&e))?;
            let info = info_at(&row, 0).map_err(|e| db(&e))?;
            Self::bump(&mut tx)?;
            record(&info).map_err(KeyStoreError::Unrecorded)?;
            tx.commit().map_err(|e| db(&e))?;
            info
        };
        self.changed();
        Ok((info, token))
    }

    fn key(&self, id: &str) -> Result<Option<KeyInfo>, KeyStoreError> {
        let mut c = self
            .client
            .lock()
            .map_err(|_| KeyStoreError::Shared("the connection is poisoned".into()))?;
        c.query_opt(
            &format!("SELECT {COLUMNS} FROM rampart_api_keys WHERE id = $1"),
            &[&id],
        )
        .map_err(|e| db(&e))?
        .map(|r| info_at(&r, 0).map_err(|e| db(&e)))
        .transpose()
    }

    fn keys(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        let mut c = self
            .client
            .lock()
            .map_err(|_| KeyStoreError::Shared("the connection is poisoned".into()))?;
        c.query(
            &format!("SELECT {COLUMNS} FROM rampart_api_keys ORDER BY created_at, id"),
            &[],
        )
        .map_err(|e| db(&e))?
        .iter()
        .map(|r| info_at(r, 0).map_err(|e| db(&e)))
        .collect()
    }

    fn revoke_key(
        &self,
        id: &str,
        record: &mut dyn FnMut(&str) -> Result<(), rampart_audit::NotRecorded>,
    ) -> Result<bool, KeyStoreError> {
        {
            let mut c = self
                .client
                .lock()
                .map_err(|_| KeyStoreError::Shared("the connection is poisoned".into()))?;
            let mut tx = c.transaction().map_err(|e| db(&e))?;
            let n = tx
                .execute(
                    "UPDATE rampart_api_keys SET revoked = TRUE WHERE id = $1",
                    &[&id],
                )
                .map_err(|e| db(&e))?;
            if n == 0 {
                return Ok(false);
            }
            Self::bump(&mut tx)?;
            record(id).map_err(KeyStoreError::Unrecorded)?;
            tx.commit().map_err(|e| db(&e))?;
        }
        self.changed();
        Ok(true)
    }

    fn authenticate_token(&self, token: &str, now: i64) -> Result<Arc<KeyInfo>, AuthFailure> {
        let (id, secret) = parse_token(token)?;
        let stored = self.trusted(|s| {
            s.keys
                .get(id)
                .map(|e| (e.hash.clone(), Arc::clone(&e.info)))
        })?;
        check_secret(secret, stored, now)
    }

    fn usable_key(&self, id: &str, now: i64) -> Result<Arc<KeyInfo>, AuthFailure> {
        let info = self
            .trusted(|s| s.keys.get(id).map(|e| Arc::clone(&e.info)))?
            .ok_or(AuthFailure::Invalid)?;
        live(info, now)
    }

    fn sealed_secret(&self, id: &str) -> Result<Option<String>, KeyStoreError> {
        self.trusted(|s| s.keys.get(id).and_then(|e| e.sealed.clone()))
            .map_err(|_| KeyStoreError::Shared("the API key store cannot be read".into()))
    }
}
