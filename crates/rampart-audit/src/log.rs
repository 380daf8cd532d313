//! The log files, appends under an OS lock, and checkpoints.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use rampart_crypto::{PublicKey, SigningKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::record::{GENESIS, Record};
use crate::{AuditError, Event, VerifyReport, canonical};

/// The largest record (one line) the log writes or reads.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// Where audit events go. The file log implements it; a SIEM or database sink can too.
pub trait AuditSink: Send + Sync {
    /// Appends one event and returns the stored record.
    ///
    /// # Errors
    /// When the event could not be stored. Callers treat that as a failure of the action.
    fn append(&self, event: Event) -> Result<Record, AuditError>;
}

/// A shared sink is a sink: one log behind several writers (the gateway's security-event
/// thread and its commands).
impl<T: AuditSink + ?Sized> AuditSink for std::sync::Arc<T> {
    fn append(&self, event: Event) -> Result<Record, AuditError> {
        (**self).append(event)
    }
}

/// A signed checkpoint: the home key's signature over `(seq, head, time)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The last record covered.
    pub seq: u64,
    /// That record's hash.
    pub head: String,
    /// When the checkpoint was made.
    pub time: String,
    /// Fingerprint (hex) of the signing key.
    pub key: String,
    /// Base64 DER ECDSA signature over [`Checkpoint::signed_bytes`].
    pub sig: String,
}

impl Checkpoint {
    /// The exact bytes the signature covers.
    #[must_use]
    pub fn signed_bytes(seq: u64, head: &str, time: &str) -> Vec<u8> {
        canonical::to_string(&json!({
            "type": "rampart.audit.checkpoint.v1",
            "seq": seq,
            "head": head,
            "time": time,
        }))
        .into_bytes()
    }

    /// Checks the signature with `key`.
    #[must_use]
    pub fn verifies_with(&self, key: &PublicKey) -> bool {
        let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(&self.sig) else {
            return false;
        };
        key.fingerprint().to_hex() == self.key
            && key
                .verify(&Self::signed_bytes(self.seq, &self.head, &self.time), &sig)
                .is_ok()
    }
}

/// The audit log in a directory: `audit.jsonl` and `checkpoints.jsonl`.
#[derive(Debug)]
pub struct AuditLog {
    log_path: PathBuf,
    checkpoints_path: PathBuf,
    /// Serialises threads of this process; the file lock serialises processes.
    local: Mutex<()>,
    auto_checkpoint: Option<(SigningKey, u64)>,
    anchor: Option<std::sync::Arc<dyn crate::anchor::Anchor>>,
    siem: Option<crate::siem::Syslog>,
}

impl AuditLog {
    /// Opens (creating if needed, mode 0600) the log in `dir`.
    ///
    /// # Errors
    /// When the directory or files cannot be created.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        std::fs::create_dir_all(dir).map_err(AuditError::io("cannot create", dir))?;
        let log = Self {
            log_path: dir.join("audit.jsonl"),
            checkpoints_path: dir.join("checkpoints.jsonl"),
            local: Mutex::new(()),
            auto_checkpoint: None,
            anchor: None,
            siem: None,
        };
        for path in [&log.log_path, &log.checkpoints_path] {
            open_append(path)?;
        }
        Ok(log)
    }

    /// Signs a checkpoint automatically every `every` records (for long-running processes).
    #[must_use]
    pub fn with_auto_checkpoint(mut self, key: SigningKey, every: u64) -> Self {
        self.auto_checkpoint = Some((key, every.max(1)));
        self
    }

    /// Also writes every new checkpoint to `anchor` (after the local file): a checkpoint that
    /// cannot be anchored is an error of the call that made it.
    #[must_use]
    pub fn with_anchor(mut self, anchor: std::sync::Arc<dyn crate::anchor::Anchor>) -> Self {
        self.anchor = Some(anchor);
        self
    }

    /// Also ships every record appended from now on to a SIEM (after it is in the local log).
    #[must_use]
    pub fn with_siem(mut self, siem: crate::siem::Syslog) -> Self {
        self.siem = Some(siem);
        self
    }

    /// The SIEM forwarder, if any (its sent and dropped counts).
    #[must_use]
    pub const fn siem(&self) -> Option<&crate::siem::Syslog> {
        self.siem.as_ref()
    }

    /// The anchor checkpoints go to, if any.
    #[must_use]
    pub fn anchor(&self) -> Option<&dyn crate::anchor::Anchor> {
        self.anchor.as_deref()
    }

    /// The records file.
    #[must_use]
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The checkpoints file.
    #[must_use]
    pub fn checkpoints_path(&self) -> &Path {
        &self.checkpoints_path
    }

    /// Appends an event as the next record, under an exclusive file lock, and fsyncs it.
    ///
    /// # Errors
    /// I/O failures, an oversized record, or an unreadable last record.
    pub fn append(&self, event: Event) -> Result<Record, AuditError> {
        let _local = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut file, head) = self.lock_head()?;
        let (seq, prev) = head.map_or_else(|| (1, GENESIS.to_owned()), |h| (h.seq + 1, h.hash));
        let action = event.action.clone();
        let record = Record::seal(seq, now(), event, prev);
        let mut line = record.to_line();
        if line.len() > MAX_RECORD_BYTES {
            return Err(AuditError::RecordTooLarge {
                action,
                len: line.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(AuditError::io("cannot append to", &self.log_path))?;
        if let Some((key, every)) = &self.auto_checkpoint
            && seq % every == 0
        {
            self.write_checkpoint(key, seq, &record.hash)?;
        }
        if let Some(siem) = &self.siem {
            siem.send(&record);
        }
        Ok(record)
        // `file` is closed here, which releases the lock.
    }

    /// Signs a checkpoint over the current head, unless the last checkpoint already covers it.
    /// Returns the new checkpoint, if one was written.
    ///
    /// # Errors
    /// I/O failures or an unreadable last record.
    pub fn checkpoint(&self, key: &SigningKey) -> Result<Option<Checkpoint>, AuditError> {
        let _local = self
            .local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (_file, head) = self.lock_head()?;
        let Some(head) = head else {
            return Ok(None);
        };
        self.write_checkpoint(key, head.seq, &head.hash)
    }

    /// Opens the log, takes the exclusive file lock (held until the returned file is dropped)
    /// and reads the last record.
    fn lock_head(&self) -> Result<(File, Option<Record>), AuditError> {
        let mut file = open_append(&self.log_path)?;
        file.lock()
            .map_err(AuditError::io("cannot lock", &self.log_path))?;
        let head = last_line(&mut file, &self.log_path)?
            .map(|line| {
                serde_json::from_str::<Record>(&line).map_err(|e| AuditError::CorruptTail {
                    path: self.log_path.clone(),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        Ok((file, head))
    }

    /// Appends a checkpoint for (seq, head) if the last one is older. Caller holds the lock.
    fn write_checkpoint(
        &self,
        key: &SigningKey,
        seq: u64,
        head: &str,
    ) -> Result<Option<Checkpoint>, AuditError> {
        let mut file = open_append(&self.checkpoints_path)?;
        if let Some(line) = last_line(&mut file, &self.checkpoints_path)?
            && let Ok(last) = serde_json::from_str::<Checkpoint>(&line)
            && last.seq >= seq
        {
            return Ok(None);
        }
        let time = now();
        let sig = key.sign(&Checkpoint::signed_bytes(seq, head, &time));
        let checkpoint = Checkpoint {
            seq,
            head: head.to_owned(),
            time,
            key: key.public_key().fingerprint().to_hex(),
            sig: base64::engine::general_purpose::STANDARD.encode(sig),
        };
        let value = serde_json::to_value(&checkpoint).unwrap_or_default();
        let mut line = canonical::to_string(&value);
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(AuditError::io("cannot append to", &self.checkpoints_path))?;
        if let Some(anchor) = &self.anchor {
            anchor.anchor(&checkpoint)?;
        }
        Ok(Some(checkpoint))
    }

    /// Verifies the whole log: chain, hashes, and checkpoints against `keys`.
    ///
    /// # Errors
    /// Only when the files cannot be read; tampering is reported in the report.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<VerifyReport, AuditError> {
        crate::verify::verify(&self.log_path, &self.checkpoints_path, keys)
    }

    /// Reads every record, in order, for display. Unparseable lines are skipped here;
    /// `verify` is the place that reports them.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn records(&self) -> Result<impl Iterator<Item = Record>, AuditError> {
        let file =
            File::open(&self.log_path).map_err(AuditError::io("cannot open", &self.log_path))?;
        let mut reader = BufReader::new(file);
        Ok(std::iter::from_fn(move || {
            loop {
                match crate::verify::read_bounded_line(&mut reader) {
                    Ok(crate::verify::Line::Eof) | Err(_) => return None,
                    Ok(crate::verify::Line::TooLong | crate::verify::Line::Partial) => {}
                    Ok(crate::verify::Line::Full(bytes)) => {
                        if let Ok(r) = serde_json::from_slice::<Record>(&bytes) {
                            return Some(r);
                        }
                    }
                }
            }
        }))
    }
}

impl AuditSink for AuditLog {
    fn append(&self, event: Event) -> Result<Record, AuditError> {
        Self::append(self, event)
    }
}

fn open_append(path: &Path) -> Result<File, AuditError> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(AuditError::io("cannot open", path))
}

/// The last complete line of the file (without its newline), reading at most
/// `MAX_RECORD_BYTES + 1` bytes from the end.
fn last_line(file: &mut File, path: &Path) -> Result<Option<String>, AuditError> {
    let len = file
        .metadata()
        .map_err(AuditError::io("cannot stat", path))?
        .len();
    if len == 0 {
        return Ok(None);
    }
    let window = len.min(MAX_RECORD_BYTES as u64 + 1);
    file.seek(SeekFrom::Start(len - window))
        .map_err(AuditError::io("cannot seek in", path))?;
    let mut buf = Vec::with_capacity(usize::try_from(window).unwrap_or(0));
    std::io::Read::by_ref(file)
        .take(window)
        .read_to_end(&mut buf)
        .map_err(AuditError::io("cannot read", path))?;
    let corrupt = |reason: &str| AuditError::CorruptTail {
        path: path.into(),
        reason: reason.into(),
    };
    let Some(body) = buf.strip_suffix(b"\n") else {
        return Err(corrupt("the file does not end with a complete line"));
    };
    let start = match body.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if window == len => 0,
        None => {
            return Err(corrupt(
                "the last line is longer than the record size limit",
            ));
        }
    };
    let line = body.get(start..).unwrap_or_default();
    String::from_utf8(line.to_vec())
        .map(Some)
        .map_err(|_| corrupt("the last line is not UTF-8"))
}

/// Now, UTC, RFC 3339 with microseconds (fixed width, so lines sort and align).
pub(crate) fn now() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(format)
        .unwrap_or_default()
}

/// An audit sink that keeps its records in memory, chained and hashed exactly like
/// [`AuditLog`]: for tests and for callers that collect a run's events before storing them.
/// It passes [`crate::conformance::run`].
#[derive(Debug, Default)]
pub struct MemorySink {
    records: Mutex<Vec<Record>>,
}

impl MemorySink {
    /// An empty sink.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The records stored so far, in order.
    #[must_use]
    pub fn records(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `(action, outcome)` of each record so far, in order — what most assertions need.
    #[must_use]
    pub fn actions(&self) -> Vec<(String, String)> {
        self.records()
            .into_iter()
            .map(|r| (r.action, r.outcome.as_str().to_owned()))
            .collect()
    }
}

impl AuditSink for MemorySink {
    fn append(&self, event: Event) -> Result<Record, AuditError> {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (seq, prev) = records
            .last()
            .map_or_else(|| (1, GENESIS.to_owned()), |h| (h.seq + 1, h.hash.clone()));
        let action = event.action.clone();
        let record = Record::seal(seq, now(), event, prev);
        let len = record.to_line().len();
        if len > MAX_RECORD_BYTES {
            return Err(AuditError::RecordTooLarge {
                action,
                len,
                max: MAX_RECORD_BYTES,
            });
        }
        records.push(record.clone());
        Ok(record)
    }
}
