//! Checkpoints anchored outside the machine. Each home keeps its own hash-chained log; with an
//! anchor every signed checkpoint is also written to a shared, append-only store (PostgreSQL:
//! [`PgAnchor`]). Someone who can rewrite a machine's files — even with its signing key, able
//! to re-sign a rewritten chain — cannot take back what was anchored: [`check`] compares the
//! local log with every anchored checkpoint of its key, and a log cut back or rewritten after
//! a checkpoint was anchored fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

use rampart_crypto::PublicKey;
use rampart_postgres::{Client, Target};

use crate::log::Checkpoint;
use crate::verify::{Failure, FailureKind};
use crate::{AuditError, AuditLog};

/// Where checkpoints are anchored.
pub trait Anchor: Send + Sync + std::fmt::Debug {
    /// Stores a checkpoint. Storing one already there is a no-op; a checkpoint for a seq
    /// already anchored under the same key with another head is refused (the chain was
    /// rewritten).
    ///
    /// # Errors
    /// [`AuditError::Anchor`].
    fn anchor(&self, checkpoint: &Checkpoint) -> Result<(), AuditError>;

    /// Every checkpoint anchored under the key with this fingerprint (hex), by seq.
    ///
    /// # Errors
    /// [`AuditError::Anchor`].
    fn anchored(&self, key: &str) -> Result<Vec<Checkpoint>, AuditError>;
}

const MIGRATIONS: &[&str] = &["CREATE TABLE rampart_audit_anchors (
        key TEXT NOT NULL,
        seq BIGINT NOT NULL,
        head TEXT NOT NULL,
        time TEXT NOT NULL,
        sig TEXT NOT NULL,
        anchored_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        PRIMARY KEY (key, seq)
    );
    CREATE FUNCTION rampart_audit_anchors_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'rampart_audit_anchors is append-only';
        END $$;
    CREATE TRIGGER rampart_audit_anchors_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON rampart_audit_anchors
        FOR EACH STATEMENT EXECUTE FUNCTION rampart_audit_anchors_append_only();"];

/// Checkpoints anchored in PostgreSQL (`rampart_audit_anchors`, append-only: a trigger refuses
/// updates, deletes and truncation; grant the role rampart uses only `INSERT` and `SELECT`).
pub struct PgAnchor {
    client: Mutex<Client>,
    target: Target,
}

impl std::fmt::Debug for PgAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgAnchor({})", self.target)
    }
}

fn anchor_error(target: &Target, e: &postgres::Error) -> AuditError {
    AuditError::Anchor(format!("{target}: {}", rampart_postgres::db_reason(e)))
}

impl PgAnchor {
    /// Connects and migrates.
    ///
    /// # Errors
    /// [`AuditError::Anchor`].
    pub fn open(target: &Target) -> Result<Self, AuditError> {
        let mut client = target
            .connect()
            .map_err(|e| AuditError::Anchor(e.to_string()))?;
        rampart_postgres::migrate(&mut client, "audit_anchor", MIGRATIONS)
            .map_err(|e| AuditError::Anchor(format!("{target}: {e}")))?;
        Ok(Self {
            client: Mutex::new(client),
            target: target.clone(),
        })
    }

    fn client(&self) -> Result<std::sync::MutexGuard<'_, Client>, AuditError> {
        self.client
            .lock()
            .map_err(|_| AuditError::Anchor("the anchor's connection is poisoned".into()))
    }
}

fn seq_column(seq: u64) -> Result<i64, AuditError> {
    i64::try_from(seq).map_err(|_| AuditError::Anchor(format!("seq {seq} is out of range")))
}

impl Anchor for PgAnchor {
    fn anchor(&self, c: &Checkpoint) -> Result<(), AuditError> {
        let seq = seq_column(c.seq)?;
        let mut client = self.client()?;
        let n = client
            .execute(
                "INSERT INTO rampart_audit_anchors (key, seq, head, time, sig)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key, seq) DO NOTHING",
                &[&c.key, &seq, &c.head, &c.time, &c.sig],
            )
            .map_err(|e| anchor_error(&self.target, &e))?;
        if n == 0 {
            let head: String = client
                .query_one(
                    "SELECT head FROM rampart_audit_anchors WHERE key = $1 AND seq = $2",
                    &[&c.key, &seq],
                )
                .and_then(|r| r.try_get(0))
                .map_err(|e| anchor_error(&self.target, &e))?;
            if head != c.head {
                return Err(AuditError::Anchor(format!(
                    "{}: seq {} was anchored with head {head}, and this log now has {} there: \
                     the log was rewritten after it was anchored",
                    self.target, c.seq, c.head
                )));
            }
        }
        Ok(())
    }

    fn anchored(&self, key: &str) -> Result<Vec<Checkpoint>, AuditError> {
        let rows = self
            .client()?
            .query(
                "SELECT seq, head, time, sig FROM rampart_audit_anchors WHERE key = $1 ORDER BY seq",
                &[&key],
            )
            .map_err(|e| anchor_error(&self.target, &e))?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get(0).map_err(|e| anchor_error(&self.target, &e))?;
                Ok(Checkpoint {
                    seq: u64::try_from(seq).unwrap_or(0),
                    head: r.try_get(1).map_err(|e| anchor_error(&self.target, &e))?,
                    time: r.try_get(2).map_err(|e| anchor_error(&self.target, &e))?,
                    key: key.to_owned(),
                    sig: r.try_get(3).map_err(|e| anchor_error(&self.target, &e))?,
                })
            })
            .collect()
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnchorReport {
    /// Checkpoints anchored under the key.
    pub anchored: usize,
    /// The newest anchored seq.
    pub last_anchored_seq: Option<u64>,
    /// The first disagreement between the anchor and the local log.
    pub failure: Option<Failure>,
}

/// Compares the local log with every checkpoint `anchor` holds for `key`: each must be signed
/// by `key`, and the record at its seq must exist with its head hash.
///
/// # Errors
/// When the anchor or the log cannot be read.
pub fn check(
    log: &AuditLog,
    anchor: &dyn Anchor,
    key: &PublicKey,
) -> Result<AnchorReport, AuditError> {
    let anchored = anchor.anchored(&key.fingerprint().to_hex())?;
    let report = |failure| AnchorReport {
        anchored: anchored.len(),
        last_anchored_seq: anchored.last().map(|c| c.seq),
        failure,
    };
    if let Some(c) = anchored.iter().find(|c| !c.verifies_with(key)) {
        return Ok(report(Some(Failure {
            seq: c.seq,
            kind: FailureKind::ForgedCheckpoint,
            reason: format!(
                "the anchor holds a checkpoint at seq {} that this home's key did not sign",
                c.seq
            ),
        })));
    }
    let wanted: BTreeSet<u64> = anchored.iter().map(|c| c.seq).collect();
    let (last, heads) = heads_at(log.log_path(), &wanted)?;
    for c in &anchored {
        let failure = match heads.get(&c.seq) {
            Some(h) if *h == c.head => continue,
            Some(h) => Failure {
                seq: c.seq,
                kind: FailureKind::CheckpointMismatch,
                reason: format!(
                    "record {} has hash {h}, but the checkpoint anchored at {} says {}: the log \
                     was rewritten after it was anchored",
                    c.seq, c.time, c.head
                ),
            },
            None => Failure {
                seq: c.seq,
                kind: FailureKind::Truncated,
                reason: format!(
                    "a checkpoint at seq {} was anchored at {}, but the local log ends at seq \
                     {last}: it was cut back after it was anchored",
                    c.seq, c.time
                ),
            },
        };
        return Ok(report(Some(failure)));
    }
    Ok(report(None))
}

/// The last seq of the log and the hashes of the records at `wanted`.
fn heads_at(
    path: &Path,
    wanted: &BTreeSet<u64>,
) -> Result<(u64, BTreeMap<u64, String>), AuditError> {
    let file = std::fs::File::open(path).map_err(AuditError::io("cannot open", path))?;
    let mut reader = std::io::BufReader::new(file);
    let (mut last, mut heads) = (0, BTreeMap::new());
    loop {
        match crate::verify::read_bounded_line(&mut reader)
            .map_err(AuditError::io("cannot read", path))?
        {
            crate::verify::Line::Eof => break,
            crate::verify::Line::Full(bytes) => {
                if let Ok(r) = serde_json::from_slice::<crate::Record>(&bytes) {
                    last = last.max(r.seq);
                    if wanted.contains(&r.seq) {
                        heads.insert(r.seq, r.hash);
                    }
                }
            }
            crate::verify::Line::Partial | crate::verify::Line::TooLong => {}
        }
    }
    Ok((last, heads))
}
