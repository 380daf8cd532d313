//! The metadata database: SQLite in WAL mode, schema versioned by `PRAGMA user_version`.
//!
//! Stage changes run in `BEGIN IMMEDIATE` transactions (one writer at a time across
//! processes, waiting up to [`BUSY_TIMEOUT`]), and partial unique indexes make "two versions
//! in production" impossible even for a writer that skipped the checks.

use std::time::Duration;

use rusqlite::Connection;

/// How long a writer waits for another process's transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The migrations, in order; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: models, versions, stage history, approvals.
    "CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL
    );
    CREATE TABLE versions (
        id INTEGER PRIMARY KEY,
        model_id INTEGER NOT NULL REFERENCES models(id),
        version INTEGER NOT NULL,
        root TEXT NOT NULL,
        files TEXT NOT NULL,
        signature TEXT NOT NULL,
        signer TEXT NOT NULL,
        provenance TEXT,
        scan TEXT NOT NULL,
        metrics TEXT,
        input_schema TEXT,
        lineage TEXT NOT NULL,
        created_by TEXT NOT NULL,
        registrant_key TEXT NOT NULL,
        created_at TEXT NOT NULL,
        source TEXT NOT NULL,
        stage TEXT NOT NULL DEFAULT 'none'
            CHECK (stage IN ('none', 'staging', 'production', 'archived')),
        UNIQUE (model_id, version)
    );
    CREATE UNIQUE INDEX one_production ON versions(model_id) WHERE stage = 'production';
    CREATE UNIQUE INDEX one_staging ON versions(model_id) WHERE stage = 'staging';
    CREATE TABLE stage_history (
        id INTEGER PRIMARY KEY,
        version_id INTEGER NOT NULL REFERENCES versions(id),
        from_stage TEXT NOT NULL,
        to_stage TEXT NOT NULL,
        actor TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        version_id INTEGER NOT NULL REFERENCES versions(id),
        approver_key TEXT NOT NULL,
        approver TEXT NOT NULL,
        bundle TEXT NOT NULL,
        at TEXT NOT NULL,
        UNIQUE (version_id, approver_key)
    );",
    // 2: who signed, beyond the key: a certificate's subject or a Sigstore identity.
    "ALTER TABLE versions ADD COLUMN signer_identity TEXT;",
];

/// The schema version this build writes.
#[must_use]
pub fn schema_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

/// Opens (creating if needed) and migrates the database.
///
/// # Errors
/// SQLite errors, or a database written by a newer rampart.
pub fn open(path: &std::path::Path) -> Result<Connection, crate::RegistryError> {
    use crate::RegistryError::Db;
    let mut c = Connection::open(path).map_err(|e| Db(format!("{}: {e}", path.display())))?;
    c.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| Db(e.to_string()))?;
    c.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| Db(e.to_string()))?;
    c.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| Db(e.to_string()))?;
    c.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| Db(e.to_string()))?;
    let tx = c
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| Db(e.to_string()))?;
    let have: u32 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| Db(e.to_string()))?;
    if have > schema_version() {
        return Err(Db(format!(
            "{}: schema version {have} was written by a newer rampart (this one reads up to {})",
            path.display(),
            schema_version()
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(have).unwrap_or(0))
    {
        tx.execute_batch(sql)
            .map_err(|e| Db(format!("migration {}: {e}", i + 1)))?;
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(|e| Db(e.to_string()))?;
    }
    tx.commit().map_err(|e| Db(e.to_string()))?;
    Ok(c)
}
