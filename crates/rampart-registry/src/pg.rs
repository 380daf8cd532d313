//! The registry's metadata in PostgreSQL: the shared [`MetadataStore`] for many machines
//! (`[storage] registry = "postgres://…"`). Tables `rampart_models`, `rampart_versions`,
//! `rampart_stage_history` and `rampart_approvals`, migrated by [`rampart_postgres::migrate`].
//!
//! Every change is one transaction that first locks its model's row (`SELECT … FOR UPDATE`),
//! so two machines registering or moving versions of one model take turns: version numbers
//! never collide, and of two racing promotions the second finds the version already moved
//! and is refused with the reason. Partial unique indexes keep one version per model in
//! staging and in production even against a writer that skipped the checks. The witness
//! (the audit record) is called before the commit, as in SQLite.

use rampart_postgres::{Client, PgError, Target};
use serde_json::Value;

use crate::{
    ApprovalRecord, HistoryEntry, MetadataStore, NewApproval, NewVersion, Registration,
    RegistryError, Selector, Stage, StageChange, Transition, VersionInfo, Witness,
    approval_recorded, displaced_to, left_production, no_earlier_production, no_model, not_found,
    now, parse_reference, stage_changed, stage_refusal, version_from, witnessed,
};

const MIGRATIONS: &[&str] = &[
    // 1: models, versions, stage history, approvals (as in SQLite's schema 2).
    "CREATE TABLE rampart_models (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL
    );
    CREATE TABLE rampart_versions (
        id BIGSERIAL PRIMARY KEY,
        model_id BIGINT NOT NULL REFERENCES rampart_models(id),
        version BIGINT NOT NULL,
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
        signer_identity TEXT,
        UNIQUE (model_id, version)
    );
    CREATE UNIQUE INDEX rampart_one_production ON rampart_versions(model_id)
        WHERE stage = 'production';
    CREATE UNIQUE INDEX rampart_one_staging ON rampart_versions(model_id)
        WHERE stage = 'staging';
    CREATE TABLE rampart_stage_history (
        id BIGSERIAL PRIMARY KEY,
        version_id BIGINT NOT NULL REFERENCES rampart_versions(id),
        from_stage TEXT NOT NULL,
        to_stage TEXT NOT NULL,
        actor TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE rampart_approvals (
        id BIGSERIAL PRIMARY KEY,
        version_id BIGINT NOT NULL REFERENCES rampart_versions(id),
        approver_key TEXT NOT NULL,
        approver TEXT NOT NULL,
        bundle TEXT NOT NULL,
        at TEXT NOT NULL,
        UNIQUE (version_id, approver_key)
    );",
];

const VERSION_COLUMNS: &str = "v.id, m.name, v.version, v.root, v.files, v.signature, v.signer, \
    v.provenance, v.scan, v.metrics, v.input_schema, v.lineage, v.created_by, v.registrant_key, \
    v.created_at, v.source, v.stage, v.signer_identity";

const FROM_VERSIONS: &str = "FROM rampart_versions v JOIN rampart_models m ON m.id = v.model_id";

#[allow(clippy::needless_pass_by_value)] // used as `map_err(db)`
fn db(e: postgres::Error) -> RegistryError {
    RegistryError::Db(rampart_postgres::db_reason(&e))
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(pg)`
fn pg(e: PgError) -> RegistryError {
    RegistryError::Db(e.to_string())
}

fn version_row(r: &postgres::Row) -> Result<VersionInfo, RegistryError> {
    version_from((
        r.try_get(0).map_err(db)?,
        r.try_get(1).map_err(db)?,
        r.try_get(2).map_err(db)?,
        r.try_get(3).map_err(db)?,
        r.try_get(4).map_err(db)?,
        r.try_get(5).map_err(db)?,
        r.try_get(6).map_err(db)?,
        r.try_get(7).map_err(db)?,
        r.try_get(8).map_err(db)?,
        r.try_get(9).map_err(db)?,
        r.try_get(10).map_err(db)?,
        r.try_get(11).map_err(db)?,
        r.try_get(12).map_err(db)?,
        r.try_get(13).map_err(db)?,
        r.try_get(14).map_err(db)?,
        r.try_get(15).map_err(db)?,
        r.try_get(16).map_err(db)?,
        r.try_get(17).map_err(db)?,
    ))
}

/// What [`PgMetadata::check`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PgCheck {
    /// The server's version.
    pub server: String,
    /// Whether the connection uses TLS.
    pub tls: bool,
    /// Models registered.
    pub models: i64,
}

/// Registry metadata in a PostgreSQL database shared by every machine of a deployment.
pub struct PgMetadata {
    client: std::cell::RefCell<Client>,
    target: Target,
}

impl std::fmt::Debug for PgMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgMetadata({})", self.target)
    }
}

impl PgMetadata {
    /// Connects and brings the tables to this build's schema.
    ///
    /// # Errors
    /// [`RegistryError::Db`]: cannot connect, a failed migration, tables from a newer rampart.
    pub fn open(target: &Target) -> Result<Self, RegistryError> {
        let mut client = target.connect().map_err(pg)?;
        rampart_postgres::migrate(&mut client, "registry", MIGRATIONS).map_err(pg)?;
        Ok(Self {
            client: std::cell::RefCell::new(client),
            target: target.clone(),
        })
    }

    /// What `rampart storage check` reports: the server's version, whether the connection
    /// uses TLS, the number of models, and that this user may write (a registration row is
    /// inserted and rolled back).
    ///
    /// # Errors
    /// [`RegistryError::Db`] naming what failed.
    pub fn check(&self) -> Result<PgCheck, RegistryError> {
        let mut c = self.client.borrow_mut();
        let server: String = c
            .query_one("SHOW server_version", &[])
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        let models: i64 = c
            .query_one("SELECT COUNT(*) FROM rampart_models", &[])
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        let mut tx = c.transaction().map_err(db)?;
        tx.execute(
            "INSERT INTO rampart_models (name, created_at, created_by)
             VALUES ('rampart storage check', '', '')",
            &[],
        )
        .map_err(|e| {
            RegistryError::Db(format!(
                "this user may not write: {}",
                rampart_postgres::db_reason(&e)
            ))
        })?;
        tx.rollback().map_err(db)?;
        Ok(PgCheck {
            server,
            tls: self.target.tls(),
            models,
        })
    }

    fn one(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<VersionInfo>, RegistryError> {
        let mut c = self.client.borrow_mut();
        c.query_opt(sql, params)
            .map_err(db)?
            .as_ref()
            .map(version_row)
            .transpose()
    }

    fn model_known(&self, name: &str) -> Result<bool, RegistryError> {
        let mut c = self.client.borrow_mut();
        let row = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM rampart_models WHERE name = $1)",
                &[&name],
            )
            .map_err(db)?;
        row.try_get(0).map_err(db)
    }
}

/// Locks a model's row for the rest of the transaction: changes to one model take turns.
fn lock_model(tx: &mut postgres::Transaction<'_>, model_id: i64) -> Result<(), RegistryError> {
    tx.query_one(
        "SELECT id FROM rampart_models WHERE id = $1 FOR UPDATE",
        &[&model_id],
    )
    .map_err(db)?;
    Ok(())
}

fn history(
    tx: &mut postgres::Transaction<'_>,
    version_id: i64,
    from: Stage,
    to: Stage,
    actor: &str,
    at: &str,
    reason: &str,
) -> Result<(), RegistryError> {
    tx.execute(
        "INSERT INTO rampart_stage_history (version_id, from_stage, to_stage, actor, at, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &version_id,
            &from.as_str(),
            &to.as_str(),
            &actor,
            &at,
            &reason,
        ],
    )
    .map_err(db)?;
    Ok(())
}

fn set_row_stage(
    tx: &mut postgres::Transaction<'_>,
    version_id: i64,
    stage: Stage,
) -> Result<(), RegistryError> {
    tx.execute(
        "UPDATE rampart_versions SET stage = $1 WHERE id = $2",
        &[&stage.as_str(), &version_id],
    )
    .map_err(db)?;
    Ok(())
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

impl MetadataStore for PgMetadata {
    fn insert_version(
        &mut self,
        name: &str,
        v: &NewVersion,
        actor: &str,
        reason: &str,
        record: Witness<'_, Registration>,
    ) -> Result<VersionInfo, RegistryError> {
        let (source, v) = (&v.source, &v.content);
        let at = now();
        let next = {
            let mut c = self.client.borrow_mut();
            let mut tx = c.transaction().map_err(db)?;
            tx.execute(
                "INSERT INTO rampart_models (name, created_at, created_by) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &at, &actor],
            )
            .map_err(db)?;
            let model_id: i64 = tx
                .query_one(
                    "SELECT id FROM rampart_models WHERE name = $1 FOR UPDATE",
                    &[&name],
                )
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
            let next: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM rampart_versions WHERE model_id = $1",
                    &[&model_id],
                )
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO rampart_versions (model_id, version, root, files, signature, signer,
                        provenance, scan, metrics, input_schema, lineage, created_by, registrant_key,
                        created_at, source, signer_identity)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                     RETURNING id",
                    &[
                        &model_id,
                        &next,
                        &v.root.to_hex(),
                        &json(&v.files),
                        &v.signature.to_hex(),
                        &v.signer,
                        &v.provenance.map(|d| d.to_hex()),
                        &v.scan.to_string(),
                        &v.metrics.as_ref().map(Value::to_string),
                        &v.input_schema.as_ref().map(Value::to_string),
                        &json(&v.lineage),
                        &v.created_by,
                        &v.registrant_key,
                        &at,
                        source,
                        &v.signer_identity,
                    ],
                )
                .map_err(db)?
                .try_get(0)
                .map_err(db)?;
            history(&mut tx, id, Stage::None, Stage::None, actor, &at, reason)?;
            witnessed(record, &Registration::of(name, next, v, source, reason))?;
            tx.commit().map_err(db)?;
            next
        };
        self.resolve(&format!("{name}@{next}"))
    }

    fn resolve(&self, reference: &str) -> Result<VersionInfo, RegistryError> {
        let (name, sel) = parse_reference(reference)?;
        let base = format!("SELECT {VERSION_COLUMNS} {FROM_VERSIONS} WHERE m.name = $1");
        let found = match &sel {
            Selector::Latest => {
                self.one(&format!("{base} ORDER BY v.version DESC LIMIT 1"), &[&name])?
            }
            Selector::Number(n) => self.one(&format!("{base} AND v.version = $2"), &[&name, n])?,
            Selector::Stage(s) => {
                self.one(&format!("{base} AND v.stage = $2"), &[&name, &s.as_str()])?
            }
        };
        match found {
            Some(v) => Ok(v),
            None => Err(not_found(reference, &name, &sel, self.model_known(&name)?)),
        }
    }

    fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                &format!(
                    "SELECT {VERSION_COLUMNS} {FROM_VERSIONS} WHERE m.name = $1 ORDER BY v.version"
                ),
                &[&name],
            )
            .map_err(db)?;
        let out = rows
            .iter()
            .map(version_row)
            .collect::<Result<Vec<_>, _>>()?;
        if out.is_empty() {
            return Err(no_model(name));
        }
        Ok(out)
    }

    fn names(&self) -> Result<Vec<String>, RegistryError> {
        let rows = self
            .client
            .borrow_mut()
            .query("SELECT name FROM rampart_models ORDER BY name", &[])
            .map_err(db)?;
        rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
    }

    fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, RegistryError> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT v.version, h.from_stage, h.to_stage, h.actor, h.at, h.reason
                 FROM rampart_stage_history h JOIN rampart_versions v ON v.id = h.version_id
                 JOIN rampart_models m ON m.id = v.model_id
                 WHERE m.name = $1 ORDER BY h.id",
                &[&name],
            )
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                let stage = |i: usize| -> Result<Stage, RegistryError> {
                    let s: String = r.try_get(i).map_err(db)?;
                    Ok(Stage::parse(&s).unwrap_or(Stage::None))
                };
                Ok(HistoryEntry {
                    version: r.try_get(0).map_err(db)?,
                    from: stage(1)?,
                    to: stage(2)?,
                    actor: r.try_get(3).map_err(db)?,
                    at: r.try_get(4).map_err(db)?,
                    reason: r.try_get(5).map_err(db)?,
                })
            })
            .collect()
    }

    fn approvals(&self, v: &VersionInfo) -> Result<Vec<ApprovalRecord>, RegistryError> {
        let rows = self
            .client
            .borrow_mut()
            .query(
                "SELECT approver_key, approver, bundle, at FROM rampart_approvals
                 WHERE version_id = $1 ORDER BY id",
                &[&v.id],
            )
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(ApprovalRecord {
                    approver_key: r.try_get(0).map_err(db)?,
                    approver: r.try_get(1).map_err(db)?,
                    bundle: r.try_get(2).map_err(db)?,
                    at: r.try_get(3).map_err(db)?,
                })
            })
            .collect()
    }

    fn add_approval(
        &mut self,
        v: &VersionInfo,
        approver_key: &str,
        approver: &str,
        bundle: &str,
        replace: bool,
        record: Witness<'_, NewApproval>,
    ) -> Result<(), RegistryError> {
        let sql = if replace {
            "INSERT INTO rampart_approvals (version_id, approver_key, approver, bundle, at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (version_id, approver_key) DO UPDATE
             SET approver = excluded.approver, bundle = excluded.bundle, at = excluded.at"
        } else {
            "INSERT INTO rampart_approvals (version_id, approver_key, approver, bundle, at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (version_id, approver_key) DO NOTHING"
        };
        let mut c = self.client.borrow_mut();
        let mut tx = c.transaction().map_err(db)?;
        let n = tx
            .execute(sql, &[&v.id, &approver_key, &approver, &bundle, &now()])
            .map_err(db)?;
        approval_recorded(v, approver_key, n, record)?;
        tx.commit().map_err(db)
    }

    fn set_stage(
        &mut self,
        v: &VersionInfo,
        to: Stage,
        from: &[Stage],
        actor: &str,
        reason: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError> {
        let mut c = self.client.borrow_mut();
        let mut tx = c.transaction().map_err(db)?;
        let model_id: i64 = tx
            .query_one(
                "SELECT model_id FROM rampart_versions WHERE id = $1",
                &[&v.id],
            )
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        lock_model(&mut tx, model_id)?;
        // Read after the lock: a change committed by another machine meanwhile is seen.
        let current: String = tx
            .query_one("SELECT stage FROM rampart_versions WHERE id = $1", &[&v.id])
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        let current = Stage::parse(&current).unwrap_or(Stage::None);
        if let Some(refused) = stage_refusal(v, current, to, from) {
            return Err(refused);
        }
        let at = now();
        let holder = tx
            .query_opt(
                "SELECT id, version FROM rampart_versions WHERE model_id = $1 AND stage = $2",
                &[&model_id, &to.as_str()],
            )
            .map_err(db)?;
        let mut displaced = None;
        if let Some(h) = holder {
            let (hid, hver): (i64, i64) = (h.try_get(0).map_err(db)?, h.try_get(1).map_err(db)?);
            let out = displaced_to(to);
            set_row_stage(&mut tx, hid, out)?;
            history(
                &mut tx,
                hid,
                to,
                out,
                actor,
                &at,
                &format!("displaced by v{}", v.version),
            )?;
            displaced = Some(hver);
        }
        set_row_stage(&mut tx, v.id, to)?;
        history(&mut tx, v.id, current, to, actor, &at, reason)?;
        let transition = Transition {
            version: v.version,
            from: current,
            to,
            displaced,
        };
        let transition = stage_changed(&v.name, v.root, transition, record)?;
        tx.commit().map_err(db)?;
        Ok(transition)
    }

    fn previous_production(&self, name: &str) -> Result<VersionInfo, RegistryError> {
        let version: Option<i64> = self
            .client
            .borrow_mut()
            .query_opt(
                "SELECT v.version FROM rampart_stage_history h
                 JOIN rampart_versions v ON v.id = h.version_id
                 JOIN rampart_models m ON m.id = v.model_id
                 WHERE m.name = $1 AND h.from_stage = 'production' AND v.stage = 'archived'
                 ORDER BY h.id DESC LIMIT 1",
                &[&name],
            )
            .map_err(db)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(db)?;
        match version {
            Some(v) => self.resolve(&format!("{name}@{v}")),
            None => Err(no_earlier_production(name)),
        }
    }

    fn rollback(
        &mut self,
        name: &str,
        actor: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError> {
        let current = self.resolve(&format!("{name}@production"))?;
        let previous = self.previous_production(name)?;
        let mut c = self.client.borrow_mut();
        let mut tx = c.transaction().map_err(db)?;
        let model_id: i64 = tx
            .query_one(
                "SELECT model_id FROM rampart_versions WHERE id = $1",
                &[&current.id],
            )
            .map_err(db)?
            .try_get(0)
            .map_err(db)?;
        lock_model(&mut tx, model_id)?;
        let stages = tx
            .query(
                "SELECT id, stage FROM rampart_versions WHERE id = $1 OR id = $2",
                &[&current.id, &previous.id],
            )
            .map_err(db)?;
        let stage_of = |id: i64| -> Option<String> {
            stages
                .iter()
                .find(|r| r.try_get::<_, i64>(0).ok() == Some(id))
                .and_then(|r| r.try_get(1).ok())
        };
        if stage_of(current.id).as_deref() != Some("production")
            || stage_of(previous.id).as_deref() != Some("archived")
        {
            return Err(left_production(name, current.version));
        }
        let at = now();
        set_row_stage(&mut tx, current.id, Stage::Archived)?;
        history(
            &mut tx,
            current.id,
            Stage::Production,
            Stage::Archived,
            actor,
            &at,
            &format!("rolled back to v{}", previous.version),
        )?;
        set_row_stage(&mut tx, previous.id, Stage::Production)?;
        history(
            &mut tx,
            previous.id,
            Stage::Archived,
            Stage::Production,
            actor,
            &at,
            "rollback",
        )?;
        let transition = Transition {
            version: previous.version,
            from: Stage::Archived,
            to: Stage::Production,
            displaced: Some(current.version),
        };
        let transition = stage_changed(name, previous.root, transition, record)?;
        tx.commit().map_err(db)?;
        Ok(transition)
    }
}
