//! API keys: `rk_<id>_<secret>`, shown once. The store (`HOME/serve/apikeys.db`, SQLite) keeps
//! the id, the SHA-256 of the secret, the role, an optional model, rate limits, expiry and
//! revocation — never the secret. Authentication looks the id up and compares the hash in
//! constant time.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use rampart_crypto::Sha256Hasher;
use rand_core::RngCore as _;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Inference and model metadata.
    Predict,
    /// Everything, including metrics.
    Admin,
}

impl Role {
    /// Its name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Predict => "predict",
            Self::Admin => "admin",
        }
    }

    /// Parses a name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "predict" => Some(Self::Predict),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A stored key (without its secret).
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    /// The public id.
    pub id: String,
    /// Role.
    pub role: Role,
    /// The only model it may use, if restricted.
    pub model: Option<String>,
    /// Requests per second.
    pub rate: u32,
    /// Burst.
    pub burst: u32,
    /// Unix time after which it no longer works.
    pub expires: Option<i64>,
    /// Revoked.
    pub revoked: bool,
    /// Created (RFC 3339).
    pub created_at: String,
    /// A label.
    pub label: String,
}

/// Why authentication failed (the metric label and the audit reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials.
    Missing,
    /// Not `rk_<id>_<secret>`.
    Malformed,
    /// No such key, or a wrong secret.
    Invalid,
    /// Revoked.
    Revoked,
    /// Expired.
    Expired,
    /// The shared key store could not be read recently enough to trust what it said.
    Unavailable,
}

impl AuthFailure {
    /// The label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Invalid => "invalid",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Unavailable => "unavailable",
        }
    }
}

/// Why the key store could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// The database file or its directory could not be opened or created.
    #[error("{path}: {reason}")]
    Open {
        /// The database or its directory.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The database.
    #[error("API key database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The change's record could not be written (the audit log), so it was not made.
    #[error("{0}")]
    Unrecorded(rampart_audit::NotRecorded),
    /// The new key's request-signing key could not be sealed.
    #[error("sealing the key's signing secret: {0}")]
    Seal(SealError),
    /// The shared (PostgreSQL) key store failed.
    #[error("shared API key store: {0}")]
    Shared(String),
}

/// The caller's sealing of a new key's request-signing secret failed: why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SealError(pub String);

/// The key store.
#[derive(Debug)]
pub struct KeyStore {
    db: Connection,
    /// The database file, read only for its header's change counter.
    file: Option<std::fs::File>,
    /// Keys read since the counter last changed: id → (hash, key).
    cache: std::cell::RefCell<(Option<[u8; 4]>, KeyCache)>,
}

/// id → (stored hash, key).
type KeyCache = HashMap<String, (String, std::sync::Arc<KeyInfo>)>;

/// Most keys held in the in-memory snapshot (about 300 bytes each).
pub const MAX_CACHED: usize = 100_000;

fn hash(secret: &str) -> String {
    let mut h = Sha256Hasher::new();
    h.update(b"rampart-apikey-v1\0");
    h.update(secret.as_bytes());
    h.finish().to_hex()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl KeyStore {
    /// Opens (creating) the store.
    ///
    /// # Errors
    /// [`KeyStoreError::Open`], [`KeyStoreError::Db`].
    pub fn open(path: &Path) -> Result<Self, KeyStoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| KeyStoreError::Open {
                path: dir.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        let db = Connection::open(path).map_err(|e| KeyStoreError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        db.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(KeyStoreError::from)?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS keys (
                id TEXT PRIMARY KEY,
                hash TEXT NOT NULL,
                role TEXT NOT NULL,
                model TEXT,
                rate INTEGER NOT NULL,
                burst INTEGER NOT NULL,
                expires INTEGER,
                revoked INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL,
                label TEXT NOT NULL
            );",
        )
        .map_err(KeyStoreError::from)?;
        // Added after the first schema: the sealed HMAC key for signed requests.
        let has_hmac: bool = db
            .prepare("SELECT 1 FROM pragma_table_info('keys') WHERE name = 'hmac'")
            .and_then(|mut st| st.exists([]))
            .map_err(KeyStoreError::from)?;
        if !has_hmac {
            db.execute_batch("ALTER TABLE keys ADD COLUMN hmac TEXT")
                .map_err(KeyStoreError::from)?;
        }
        // Rollback-journal mode: every commit, by any process, bumps the header's file change
        // counter, which is what lets `authenticate` cache keys and still see a revocation on
        // the very next request.
        db.pragma_update(None, "journal_mode", "DELETE")
            .map_err(KeyStoreError::from)?;
        Ok(Self {
            db,
            file: std::fs::File::open(path).ok(),
            cache: std::cell::RefCell::new((None, HashMap::new())),
        })
    }

    /// The database header's file change counter (bytes 24..28), re-read from the file.
    fn change_counter(&self) -> Option<[u8; 4]> {
        use std::os::unix::fs::FileExt as _;
        let mut b = [0u8; 4];
        self.file.as_ref()?.read_exact_at(&mut b, 24).ok()?;
        Some(b)
    }

    /// The stored hash and key of `id`, from a snapshot of the whole table taken when the
    /// header's change counter last moved (one 4-byte read per request while nothing commits).
    /// A known id and an unknown id are then the same hash-map lookup, so response time does
    /// not tell an attacker which ids exist. A table larger than the snapshot bound is read
    /// from SQLite for every id, known or not, which again costs both the same.
    fn lookup(
        &self,
        id: &str,
    ) -> Result<Option<(String, std::sync::Arc<KeyInfo>)>, rusqlite::Error> {
        let counter = self.change_counter();
        if let (Some(counter), Ok(mut cache)) = (counter, self.cache.try_borrow_mut()) {
            if cache.0 != Some(counter) {
                cache.0 = None;
                cache.1 = self.snapshot()?.unwrap_or_default();
                // Trust the snapshot only if no commit landed while it was read.
                if self.change_counter() == Some(counter) && !cache.1.is_empty() {
                    cache.0 = Some(counter);
                }
            }
            if cache.0.is_some() {
                return Ok(cache.1.get(id).cloned());
            }
        }
        self.db
            .prepare_cached(
                "SELECT hash, id, role, model, rate, burst, expires, revoked, created_at, label FROM keys WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.query_row([id], |r| {
                    let h: String = r.get(0)?;
                    Ok((h, std::sync::Arc::new(row_at(r, 1)?)))
                })
                .optional()
            })
    }

    /// Every key, or `None` when there are more than [`MAX_CACHED`].
    fn snapshot(&self) -> Result<Option<KeyCache>, rusqlite::Error> {
        let mut st = self.db.prepare_cached(
            "SELECT hash, id, role, model, rate, burst, expires, revoked, created_at, label FROM keys LIMIT ?1",
        )?;
        let limit = i64::try_from(MAX_CACHED)
            .unwrap_or(i64::MAX)
            .saturating_add(1);
        let rows = st.query_map([limit], |r| {
            let h: String = r.get(0)?;
            let info = row_at(r, 1)?;
            Ok((info.id.clone(), (h, std::sync::Arc::new(info))))
        })?;
        let all: KeyCache = rows.collect::<Result<_, _>>()?;
        Ok((all.len() <= MAX_CACHED).then_some(all))
    }

    /// The sealed HMAC key of a key (see [`crate::httpsig`]), if it has one.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn sealed_hmac(&self, id: &str) -> Result<Option<String>, KeyStoreError> {
        self.db
            .query_row("SELECT hmac FROM keys WHERE id = ?1", [id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(KeyStoreError::from)
    }

    /// Checks a key found by id (after a signature verified): not revoked, not expired.
    ///
    /// # Errors
    /// Why it may not be used.
    pub fn usable(&self, id: &str, now: i64) -> Result<std::sync::Arc<KeyInfo>, AuthFailure> {
        let info = self
            .lookup(id)
            .ok()
            .flatten()
            .map(|(_, k)| k)
            .ok_or(AuthFailure::Invalid)?;
        live(info, now)
    }

    /// Creates a key; returns it (the only time the secret exists outside the caller).
    /// `record` is called with the new key inside the transaction that stores it, before the
    /// commit: its error (the audit log cannot take the record) leaves no key behind.
    ///
    /// # Errors
    /// SQLite errors, or `record`'s.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &self,
        role: Role,
        model: Option<&str>,
        rate: u32,
        burst: u32,
        expires: Option<i64>,
        label: &str,
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
        let tx = self
            .db
            .unchecked_transaction()
            .map_err(KeyStoreError::from)?;
        tx.execute(
            "INSERT INTO keys (id, hash, role, model, rate, burst, expires, created_at, label, hmac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![id, secret_hash, role.as_str(), model, rate, burst, expires, created, label, sealed],
        )
        .map_err(KeyStoreError::from)?;
        let info = self
            .get(&id)?
            .ok_or(KeyStoreError::Db(rusqlite::Error::QueryReturnedNoRows))?;
        record(&info).map_err(KeyStoreError::Unrecorded)?;
        tx.commit().map_err(KeyStoreError::from)?;
        Ok((info, token))
    }

    /// One key by id.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn get(&self, id: &str) -> Result<Option<KeyInfo>, KeyStoreError> {
        self.db
            .prepare_cached(
                "SELECT id, role, model, rate, burst, expires, revoked, created_at, label FROM keys WHERE id = ?1",
            )
            .and_then(|mut st| st.query_row([id], row).optional())
            .map_err(KeyStoreError::from)
    }

    /// Every key.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn list(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        let mut st = self
            .db
            .prepare("SELECT id, role, model, rate, burst, expires, revoked, created_at, label FROM keys ORDER BY created_at")
            .map_err(KeyStoreError::from)?;
        let rows = st.query_map([], row).map_err(KeyStoreError::from)?;
        rows.collect::<Result<_, _>>().map_err(KeyStoreError::from)
    }

    /// Revokes a key; false if there is no such key. `record` is called inside the transaction
    /// before the commit, as for [`KeyStore::create`].
    ///
    /// # Errors
    /// SQLite errors, or `record`'s.
    pub fn revoke(
        &self,
        id: &str,
        record: &mut dyn FnMut(&str) -> Result<(), rampart_audit::NotRecorded>,
    ) -> Result<bool, KeyStoreError> {
        let tx = self
            .db
            .unchecked_transaction()
            .map_err(KeyStoreError::from)?;
        let n = tx
            .execute("UPDATE keys SET revoked = 1 WHERE id = ?1", [id])
            .map_err(KeyStoreError::from)?;
        if n == 0 {
            return Ok(false);
        }
        record(id).map_err(KeyStoreError::Unrecorded)?;
        tx.commit().map_err(KeyStoreError::from)?;
        Ok(true)
    }

    /// Checks a presented token; `now` is unix time.
    ///
    /// # Errors
    /// Why it does not authenticate.
    pub fn authenticate(
        &self,
        token: &str,
        now: i64,
    ) -> Result<std::sync::Arc<KeyInfo>, AuthFailure> {
        let (id, secret) = parse_token(token)?;
        let stored = self.lookup(id).map_err(|_| AuthFailure::Invalid)?;
        check_secret(secret, stored, now)
    }
}

/// A new key's id, the hash of its secret, its token (the only copy of the secret) and time.
pub(crate) struct Minted {
    pub id: String,
    pub secret_hash: String,
    pub token: String,
    pub created: String,
}

impl Minted {
    pub fn new() -> Self {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut id);
        rand_core::OsRng.fill_bytes(&mut secret);
        let id = hex_of(&id);
        let secret = b64(&secret);
        Self {
            token: format!("rk_{id}_{secret}"),
            secret_hash: hash(&secret),
            id,
            created: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }
    }
}

/// A token's id and secret (`rk_<16 hex>_<secret>`).
pub(crate) fn parse_token(token: &str) -> Result<(&str, &str), AuthFailure> {
    let rest = token.strip_prefix("rk_").ok_or(AuthFailure::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(AuthFailure::Malformed)?;
    if id.len() != 16
        || !id.bytes().all(|b| b.is_ascii_hexdigit())
        || secret.is_empty()
        || secret.len() > 64
    {
        return Err(AuthFailure::Malformed);
    }
    Ok((id, secret))
}

/// Checks a presented secret against what is stored for its id (the hash of the secret and
/// the key), in constant time, and that the key is live at `now`.
pub(crate) fn check_secret(
    secret: &str,
    stored: Option<(String, std::sync::Arc<KeyInfo>)>,
    now: i64,
) -> Result<std::sync::Arc<KeyInfo>, AuthFailure> {
    // Compare something even for an unknown id, so both paths cost the same.
    let (want, info) = match stored {
        Some((h, info)) => (h, Some(info)),
        None => ("0".repeat(64), None),
    };
    let got = hash(secret);
    let same: bool = got.as_bytes().ct_eq(want.as_bytes()).into();
    match info {
        Some(i) if same => live(i, now),
        _ => Err(AuthFailure::Invalid),
    }
}

/// A key that is neither revoked nor expired at `now`.
pub(crate) fn live(
    info: std::sync::Arc<KeyInfo>,
    now: i64,
) -> Result<std::sync::Arc<KeyInfo>, AuthFailure> {
    if info.revoked {
        return Err(AuthFailure::Revoked);
    }
    if info.expires.is_some_and(|e| now >= e) {
        return Err(AuthFailure::Expired);
    }
    Ok(info)
}

/// A key to create.
#[derive(Debug, Clone, Copy)]
pub struct NewKey<'a> {
    /// What it may do.
    pub role: Role,
    /// The one model it may call, if limited to one.
    pub model: Option<&'a str>,
    /// Requests per second.
    pub rate: u32,
    /// Burst.
    pub burst: u32,
    /// Unix time it stops working.
    pub expires: Option<i64>,
    /// A label for people.
    pub label: &'a str,
}

/// Where API keys are kept, so a gateway's replicas can share them: [`KeyStore`] (SQLite, in
/// the home) is today's; a shared database implements the same, and must pass
/// [`conformance::run`].
pub trait ApiKeyStore: Send {
    /// Creates a key and returns it with its token (the only time the secret exists outside
    /// the caller). `seal` seals the key's request-signing secret; `record` is called with the
    /// new key before it is committed, and its error leaves no key behind.
    ///
    /// # Errors
    /// The store's, `seal`'s ([`KeyStoreError::Seal`]) and `record`'s
    /// ([`KeyStoreError::Unrecorded`]).
    fn create_key(
        &self,
        new: &NewKey<'_>,
        seal: &dyn Fn(&[u8]) -> Result<String, SealError>,
        record: &mut dyn FnMut(&KeyInfo) -> Result<(), rampart_audit::NotRecorded>,
    ) -> Result<(KeyInfo, String), KeyStoreError>;

    /// One key by id.
    ///
    /// # Errors
    /// The store's.
    fn key(&self, id: &str) -> Result<Option<KeyInfo>, KeyStoreError>;

    /// Every key.
    ///
    /// # Errors
    /// The store's.
    fn keys(&self) -> Result<Vec<KeyInfo>, KeyStoreError>;

    /// Revokes a key (false if there is none); `record` as for `create_key`.
    ///
    /// # Errors
    /// The store's, `record`'s.
    fn revoke_key(
        &self,
        id: &str,
        record: &mut dyn FnMut(&str) -> Result<(), rampart_audit::NotRecorded>,
    ) -> Result<bool, KeyStoreError>;

    /// Checks a presented token at unix time `now`, in constant time in its secret.
    ///
    /// # Errors
    /// Why it does not authenticate.
    fn authenticate_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<std::sync::Arc<KeyInfo>, AuthFailure>;

    /// Checks a key found by id (after its request signature verified).
    ///
    /// # Errors
    /// Why it may not be used.
    fn usable_key(&self, id: &str, now: i64) -> Result<std::sync::Arc<KeyInfo>, AuthFailure>;

    /// The sealed request-signing secret of a key, if it has one.
    ///
    /// # Errors
    /// The store's.
    fn sealed_secret(&self, id: &str) -> Result<Option<String>, KeyStoreError>;
}

impl<T: ApiKeyStore + ?Sized> ApiKeyStore for Box<T> {
    fn create_key(
        &self,
        new: &NewKey<'_>,
        seal: &dyn Fn(&[u8]) -> Result<String, SealError>,
        record: &mut dyn FnMut(&KeyInfo) -> Result<(), rampart_audit::NotRecorded>,
    ) -> Result<(KeyInfo, String), KeyStoreError> {
        (**self).create_key(new, seal, record)
    }

    fn key(&self, id: &str) -> Result<Option<KeyInfo>, KeyStoreError> {
        (**self).key(id)
    }

    fn keys(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        (**self).keys()
    }

    fn revoke_key(
        &self,
        id: &str,
        record: &mut dyn FnMut(&str) -> Result<(), rampart_audit::NotRecorded>,
    ) -> Result<bool, KeyStoreError> {
        (**self).revoke_key(id, record)
    }

    fn authenticate_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<std::sync::Arc<KeyInfo>, AuthFailure> {
        (**self).authenticate_token(token, now)
    }

    fn usable_key(&self, id: &str, now: i64) -> Result<std::sync::Arc<KeyInfo>, AuthFailure> {
        (**self).usable_key(id, now)
    }

    fn sealed_secret(&self, id: &str) -> Result<Option<String>, KeyStoreError> {
        (**self).sealed_secret(id)
    }
}

impl ApiKeyStore for KeyStore {
    fn create_key(
        &self,
        n: &NewKey<'_>,
        seal: &dyn Fn(&[u8]) -> Result<String, SealError>,
        record: &mut dyn FnMut(&KeyInfo) -> Result<(), rampart_audit::NotRecorded>,
    ) -> Result<(KeyInfo, String), KeyStoreError> {
        self.create(
            n.role, n.model, n.rate, n.burst, n.expires, n.label, seal, record,
        )
    }

    fn key(&self, id: &str) -> Result<Option<KeyInfo>, KeyStoreError> {
        self.get(id)
    }

    fn keys(&self) -> Result<Vec<KeyInfo>, KeyStoreError> {
        self.list()
    }

    fn revoke_key(
        &self,
        id: &str,
        record: &mut dyn FnMut(&str) -> Result<(), rampart_audit::NotRecorded>,
    ) -> Result<bool, KeyStoreError> {
        self.revoke(id, record)
    }

    fn authenticate_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<std::sync::Arc<KeyInfo>, AuthFailure> {
        self.authenticate(token, now)
    }

    fn usable_key(&self, id: &str, now: i64) -> Result<std::sync::Arc<KeyInfo>, AuthFailure> {
        self.usable(id, now)
    }

    fn sealed_secret(&self, id: &str) -> Result<Option<String>, KeyStoreError> {
        self.sealed_hmac(id)
    }
}

/// What every [`ApiKeyStore`] must do: [`conformance::run`] on an empty store.
pub mod conformance {
    use super::{ApiKeyStore, AuthFailure, KeyStoreError, NewKey, Role};

    pub use rampart_audit::conformance::Failure;

    fn fail(case: &'static str, detail: impl Into<String>) -> Failure {
        Failure::new(case, detail)
    }

    fn auth(
        s: &dyn ApiKeyStore,
        case: &'static str,
        token: &str,
        now: i64,
        want: Result<(), AuthFailure>,
    ) -> Result<(), Failure> {
        let got = s.authenticate_token(token, now).map(|_| ());
        if got == want {
            Ok(())
        } else {
            Err(fail(case, format!("{got:?}, expected {want:?}")))
        }
    }

    /// Runs every case against an empty store.
    ///
    /// # Errors
    /// The first case the store fails.
    pub fn run(s: &dyn ApiKeyStore) -> Result<(), Failure> {
        let new = NewKey {
            role: Role::Predict,
            model: Some("credit"),
            rate: 5,
            burst: 10,
            expires: Some(2000),
            label: "conformance",
        };
        let seal = |k: &[u8]| Ok(format!("sealed-{}", k.len()));
        let mut seen = Vec::new();
        let (info, token) = s
            .create_key(&new, &seal, &mut |k| {
                seen.push(k.id.clone());
                Ok(())
            })
            .map_err(|e| fail("create", e.to_string()))?;
        if seen != [info.id.clone()] || info.model.as_deref() != Some("credit") {
            return Err(fail(
                "create",
                format!("recorded {seen:?}, stored {info:?}"),
            ));
        }
        if !token.starts_with(&format!("rk_{}_", info.id)) {
            return Err(fail("create", "the token does not name the key"));
        }
        auth(s, "authenticate", &token, 1000, Ok(()))?;
        auth(s, "expiry", &token, 2000, Err(AuthFailure::Expired))?;
        let mut wrong = token.clone();
        let last = wrong.pop().unwrap_or('A');
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        auth(s, "wrong secret", &wrong, 1000, Err(AuthFailure::Invalid))?;
        auth(
            s,
            "malformed",
            "Bearer x",
            1000,
            Err(AuthFailure::Malformed),
        )?;
        auth(
            s,
            "unknown id",
            "rk_0123456789abcdef_x",
            1000,
            Err(AuthFailure::Invalid),
        )?;
        match s.key(&info.id) {
            Ok(Some(k)) if k.id == info.id && !k.revoked => {}
            other => return Err(fail("get", format!("{other:?}"))),
        }
        match s.sealed_secret(&info.id) {
            Ok(Some(v)) if v.starts_with("sealed-") => {}
            other => return Err(fail("sealed secret", format!("{other:?}"))),
        }
        if s.usable_key(&info.id, 1000).is_err() {
            return Err(fail("usable", "a live key is not usable"));
        }
        // A key whose record cannot be written is not created.
        let before = s.keys().map_err(|e| fail("list", e.to_string()))?.len();
        match s.create_key(&new, &seal, &mut |_| {
            Err(rampart_audit::NotRecorded("audit log full".into()))
        }) {
            Err(KeyStoreError::Unrecorded(_)) => {}
            other => return Err(fail("unrecorded create", format!("{other:?}"))),
        }
        let after = s.keys().map_err(|e| fail("list", e.to_string()))?.len();
        if (before, after) != (1, 1) {
            return Err(fail(
                "unrecorded create",
                format!("{before} keys, then {after}"),
            ));
        }
        // Nor is a revocation.
        match s.revoke_key(&info.id, &mut |_| {
            Err(rampart_audit::NotRecorded("audit log full".into()))
        }) {
            Err(KeyStoreError::Unrecorded(_)) => {}
            other => return Err(fail("unrecorded revoke", format!("{other:?}"))),
        }
        auth(s, "unrecorded revoke", &token, 1000, Ok(()))?;
        match s.revoke_key(&info.id, &mut |_| Ok(())) {
            Ok(true) => {}
            other => return Err(fail("revoke", format!("{other:?}"))),
        }
        auth(s, "revoked", &token, 1000, Err(AuthFailure::Revoked))?;
        if s.usable_key(&info.id, 1000).err() != Some(AuthFailure::Revoked) {
            return Err(fail("revoked", "a revoked key is usable by id"));
        }
        match s.revoke_key("0123456789abcdef", &mut |_| Ok(())) {
            Ok(false) => Ok(()),
            other => Err(fail("revoke unknown", format!("{other:?}"))),
        }
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyInfo> {
    row_at(r, 0)
}

fn row_at(r: &rusqlite::Row<'_>, o: usize) -> rusqlite::Result<KeyInfo> {
    let role: String = r.get(o + 1)?;
    Ok(KeyInfo {
        id: r.get(o)?,
        role: Role::parse(&role).unwrap_or(Role::Predict),
        model: r.get(o + 2)?,
        rate: r.get(o + 3)?,
        burst: r.get(o + 4)?,
        expires: r.get(o + 5)?,
        revoked: r.get::<_, i64>(o + 6)? != 0,
        created_at: r.get(o + 7)?,
        label: r.get(o + 8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::{AuthFailure, KeyStore, Role};

    #[test]
    fn the_sqlite_store_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let s = KeyStore::open(&dir.path().join("k.db")).unwrap();
        super::conformance::run(&s).unwrap();
    }

    #[test]
    fn keys_authenticate_until_revoked_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let s = KeyStore::open(&dir.path().join("k.db")).unwrap();
        let (info, token) = s
            .create(
                Role::Predict,
                Some("credit"),
                50,
                100,
                Some(2000),
                "ci",
                &|k| Ok(k.len().to_string()),
                &mut |_| Ok(()),
            )
            .unwrap();
        assert!(token.starts_with(&format!("rk_{}_", info.id)));
        assert_eq!(
            s.authenticate(&token, 1000).unwrap().model.as_deref(),
            Some("credit")
        );
        assert_eq!(
            s.authenticate(&token, 2000).unwrap_err(),
            AuthFailure::Expired
        );
        let mut wrong = token.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            s.authenticate(&wrong, 1000).unwrap_err(),
            AuthFailure::Invalid
        );
        assert_eq!(
            s.authenticate("Bearer x", 1000).unwrap_err(),
            AuthFailure::Malformed
        );
        assert_eq!(
            s.authenticate("rk_0123456789abcdef_x", 1000).unwrap_err(),
            AuthFailure::Invalid
        );
        assert!(s.revoke(&info.id, &mut |_| Ok(())).unwrap());
        assert_eq!(
            s.authenticate(&token, 1000).unwrap_err(),
            AuthFailure::Revoked
        );
        // The secret is not stored.
        let bytes = std::fs::read(dir.path().join("k.db")).unwrap();
        // The secret is everything after `rk_<id>_` (base64url, so it may hold `_` itself).
        let secret = token.strip_prefix(&format!("rk_{}_", info.id)).unwrap();
        assert_eq!(secret.len(), 43);
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }

    /// A predict key with no model, label or expiry.
    fn predict_key(s: &KeyStore) -> (super::KeyInfo, String) {
        s.create(
            Role::Predict,
            None,
            50,
            100,
            None,
            "",
            &|k| Ok(k.len().to_string()),
            &mut |_| Ok(()),
        )
        .unwrap()
    }

    #[test]
    fn cached_keys_see_another_process_revoke_on_the_next_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let server = KeyStore::open(&path).unwrap();
        let (info, token) = predict_key(&server);
        // Served from the cache now …
        for _ in 0..3 {
            assert!(server.authenticate(&token, 1000).is_ok());
        }
        assert!(server.cache.borrow().1.contains_key(&info.id));
        assert!(server.cache.borrow().0.is_some());
        // … and a revocation through another connection (the CLI) holds at once.
        let cli = KeyStore::open(&path).unwrap();
        assert!(cli.revoke(&info.id, &mut |_| Ok(())).unwrap());
        assert_eq!(
            server.authenticate(&token, 1000).unwrap_err(),
            AuthFailure::Revoked
        );
        // A wrong secret for a cached id still fails.
        let (_, t2) = predict_key(&cli);
        assert!(server.authenticate(&t2, 1000).is_ok());
        // One lookup of an unknown id loads every key: known and unknown ids then cost one
        // hash-map lookup each, so timing does not tell which ids exist.
        assert_eq!(
            server
                .authenticate("rk_00000000000000ff_x", 1000)
                .unwrap_err(),
            AuthFailure::Invalid
        );
        assert_eq!(server.cache.borrow().1.len(), 2);
        let mut forged = t2.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            server.authenticate(&forged, 1000).unwrap_err(),
            AuthFailure::Invalid
        );
    }
}
