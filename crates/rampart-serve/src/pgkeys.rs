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
    ApiKeyStore, AuthFailure, KeyInfo, KeyStoreError, MAX_CACHED, Minted, NewKey, Role, SealError,
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

/// A key's stored hash, its details and its sealed HMAC key.
type Found = (String, Arc<KeyInfo>, Option<String>);

/// One key as the snapshot holds it.
struct Entry {
    hash: String,
    info: Arc<KeyInfo>,
    sealed: Option<String>,
}

struct Snapshot {
    counter: i64,
    /// Every key; `None` when there are more than `cap` (each is then read when asked for).
    keys: Option<HashMap<String, Entry>>,
    confirmed: Instant,
    cap: usize,
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

/// Every key (unless there are more than `cap`), with the counter it was read at (one
/// repeatable-read transaction).
fn read_all(c: &mut Client, cap: usize) -> Result<Snapshot, postgres::Error> {
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let counter: i64 = tx
        .query_one("SELECT counter FROM rampart_api_key_changes", &[])?
        .try_get(0)?;
    let limit = i64::try_from(cap).unwrap_or(i64::MAX).saturating_add(1);
    let rows = tx.query(
        &format!("SELECT hash, hmac, {COLUMNS} FROM rampart_api_keys LIMIT $1"),
        &[&limit],
    )?;
    let mut keys = HashMap::with_capacity(rows.len().min(cap));
    for r in rows.iter().take(cap) {
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
        keys: (rows.len() <= cap).then_some(keys),
        confirmed: Instant::now(),
        cap,
    })
}

/// Brings `snapshot` up to date: confirms it when the counter has not moved, else reloads.
fn refresh(c: &mut Client, snapshot: &RwLock<Snapshot>) -> Result<(), postgres::Error> {
    let now = counter(c)?;
    let (same, cap) = snapshot
        .read()
        .map_or((false, MAX_CACHED), |s| (s.counter == now, s.cap));
    let fresh = if same { None } else { Some(read_all(c, cap)?) };
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
        let snapshot = read_all(&mut client, MAX_CACHED).map_err(|e| db(&e))?;
        Ok(Self {
            client: Mutex::new(client),
            target: target.clone(),
            snapshot: Arc::new(RwLock::new(snapshot)),
            watching: None,
        })
    }

    /// Holds at most `cap` keys in memory (default [`MAX_CACHED`]); past it, each key is read
    /// from the database when asked for.
    ///
    /// # Errors
    /// [`KeyStoreError::Shared`]: the keys cannot be read again.
    pub fn with_max_cached(self, cap: usize) -> Result<Self, KeyStoreError> {
        {
            let mut c = self
                .client
                .lock()
                .map_err(|_| KeyStoreError::Shared("the connection is poisoned".into()))?;
            let fresh = read_all(&mut c, cap).map_err(|e| db(&e))?;
            if let Ok(mut s) = self.snapshot.write() {
                *s = fresh;
            }
        }
        Ok(self)
    }

    /// Whether every key is held in memory (else each is read when asked for).
    #[must_use]
    pub fn holds_every_key(&self) -> bool {
        self.snapshot.read().is_ok_and(|s| s.keys.is_some())
    }

    /// One key, from the snapshot, or from the database when there are too many keys to
    /// hold (on a thread of its own: the synchronous driver cannot run on the reactor).
    fn entry(&self, id: &str) -> Result<Option<Found>, AuthFailure> {
        let held = self.trusted(|s| {
            s.keys.as_ref().map(|k| {
                k.get(id)
                    .map(|e| (e.hash.clone(), Arc::clone(&e.info), e.sealed.clone()))
            })
        })?;
        if let Some(found) = held {
            return Ok(found);
        }
        let read = || -> Result<Option<Found>, AuthFailure> {
            let mut c = self.client.lock().map_err(|_| AuthFailure::Unavailable)?;
            let row = c
                .query_opt(
                    &format!("SELECT hash, hmac, {COLUMNS} FROM rampart_api_keys WHERE id = $1"),
                    &[&id],
                )
                .map_err(|_| AuthFailure::Unavailable)?;
            row.map(|r| -> Result<Found, postgres::Error> {
                Ok((r.try_get(0)?, Arc::new(info_at(&r, 2)?), r.try_get(1)?))
            })
            .transpose()
            .map_err(|_| AuthFailure::Unavailable)
        };
        std::thread::scope(|scope| scope.spawn(read).join())
            .unwrap_or(Err(AuthFailure::Unavailable))
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
        let stored = self.entry(id)?.map(|(hash, info, _)| (hash, info));
        check_secret(secret, stored, now)
    }

    fn usable_key(&self, id: &str, now: i64) -> Result<Arc<KeyInfo>, AuthFailure> {
        let (_, info, _) = self.entry(id)?.ok_or(AuthFailure::Invalid)?;
        live(info, now)
    }

    fn sealed_secret(&self, id: &str) -> Result<Option<String>, KeyStoreError> {
        self.entry(id)
            .map(|found| found.and_then(|(_, _, sealed)| sealed))
            .map_err(|_| KeyStoreError::Shared("the API key store cannot be read".into()))
    }
}
