//! Verification of the chain and the checkpoints.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use rampart_crypto::PublicKey;
use serde::Serialize;
use serde_json::Value;

use crate::AuditError;
use crate::log::{Checkpoint, MAX_RECORD_BYTES};
use crate::record::{GENESIS, Record, hash_of};

/// What kind of tampering (or damage) was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FailureKind {
    /// A record's contents no longer match its hash.
    Edited,
    /// A sequence number is missing: a record was deleted (or records were reordered).
    Deleted,
    /// A sequence number repeats or goes back: a record was inserted (or records reordered).
    InsertedOrReordered,
    /// A record's `prev` does not match the previous record's hash.
    BrokenLink,
    /// A line is not a valid record.
    Malformed,
    /// The log ends before the last signed checkpoint.
    Truncated,
    /// A checkpoint's signature does not verify with a trusted key.
    ForgedCheckpoint,
    /// A checkpoint signs a different head than the record at its seq: the chain was rewritten.
    CheckpointMismatch,
}

/// The first problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The first bad sequence number.
    pub seq: u64,
    /// What kind of problem.
    pub kind: FailureKind,
    /// A sentence for people.
    pub reason: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Records read.
    pub records: u64,
    /// Checkpoints read.
    pub checkpoints: u64,
    /// The last record's seq.
    pub head_seq: u64,
    /// The last record's hash.
    pub head_hash: Option<String>,
    /// The newest valid checkpoint's seq.
    pub last_checkpoint_seq: Option<u64>,
    /// Records after the last checkpoint (not yet protected by a signature).
    pub unsigned_tail: u64,
    /// The first problem, if any. `None` means intact.
    pub failure: Option<Failure>,
}

pub(crate) enum Line {
    Eof,
    Full(Vec<u8>),
    /// Data at the end of the file without a newline.
    Partial,
    /// A line over the size limit (consumed and discarded).
    TooLong,
}

/// Reads one line of at most `MAX_RECORD_BYTES`, without ever buffering more.
pub(crate) fn read_bounded_line(reader: &mut impl BufRead) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(if too_long {
                Line::TooLong
            } else if line.is_empty() {
                Line::Eof
            } else {
                Line::Partial
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (buf.get(..i).unwrap_or_default(), Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_RECORD_BYTES {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = done.unwrap_or(buf.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Full(line)
            });
        }
    }
}

fn fail(seq: u64, kind: FailureKind, reason: String) -> Option<Failure> {
    Some(Failure { seq, kind, reason })
}

pub(crate) fn verify(
    log_path: &Path,
    checkpoints_path: &Path,
    keys: &[PublicKey],
) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        records: 0,
        checkpoints: 0,
        head_seq: 0,
        head_hash: None,
        last_checkpoint_seq: None,
        unsigned_tail: 0,
        failure: None,
    };

    // 1. Checkpoints: each must be signed by a trusted key, in increasing seq order.
    let mut checkpoints: BTreeMap<u64, Checkpoint> = BTreeMap::new();
    let file =
        File::open(checkpoints_path).map_err(AuditError::io("cannot open", checkpoints_path))?;
    let mut reader = BufReader::new(file);
    let mut index = 0u64;
    loop {
        let line = read_bounded_line(&mut reader)
            .map_err(AuditError::io("cannot read", checkpoints_path))?;
        let bytes = match line {
            Line::Eof => break,
            Line::Full(b) => b,
            Line::Partial | Line::TooLong => {
                report.failure = fail(
                    report.last_checkpoint_seq.unwrap_or(0) + 1,
                    FailureKind::ForgedCheckpoint,
                    format!("checkpoint line {} is incomplete or oversized", index + 1),
                );
                return Ok(report);
            }
        };
        index += 1;
        let Ok(cp) = serde_json::from_slice::<Checkpoint>(&bytes) else {
            report.failure = fail(
                report.last_checkpoint_seq.unwrap_or(0) + 1,
                FailureKind::ForgedCheckpoint,
                format!("checkpoint line {index} is not a valid checkpoint"),
            );
            return Ok(report);
        };
        if !keys.iter().any(|k| cp.verifies_with(k)) {
            report.failure = fail(
                cp.seq,
                FailureKind::ForgedCheckpoint,
                format!(
                    "checkpoint at seq {} is not signed by a trusted key (key {}): forged or made with another key",
                    cp.seq, cp.key
                ),
            );
            return Ok(report);
        }
        if report
            .last_checkpoint_seq
            .is_some_and(|last| cp.seq <= last)
        {
            report.failure = fail(
                cp.seq,
                FailureKind::ForgedCheckpoint,
                format!("checkpoint at seq {} is out of order", cp.seq),
            );
            return Ok(report);
        }
        report.last_checkpoint_seq = Some(cp.seq);
        report.checkpoints += 1;
        checkpoints.insert(cp.seq, cp);
    }

    // 2. The chain.
    let file = File::open(log_path).map_err(AuditError::io("cannot open", log_path))?;
    let mut reader = BufReader::new(file);
    let mut prev_hash = GENESIS.to_owned();
    let mut expected = 1u64;
    loop {
        let line =
            read_bounded_line(&mut reader).map_err(AuditError::io("cannot read", log_path))?;
        let bytes = match line {
            Line::Eof => break,
            Line::Full(b) => b,
            Line::Partial => {
                report.failure = fail(
                    expected,
                    FailureKind::Malformed,
                    format!("record at seq {expected} is incomplete (the file ends mid-line)"),
                );
                return Ok(report);
            }
            Line::TooLong => {
                report.failure = fail(
                    expected,
                    FailureKind::Malformed,
                    format!("record at seq {expected} is over {MAX_RECORD_BYTES} bytes"),
                );
                return Ok(report);
            }
        };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            report.failure = fail(
                expected,
                FailureKind::Malformed,
                format!("record at seq {expected} is not valid JSON"),
            );
            return Ok(report);
        };
        let record: Record = match serde_json::from_value(value.clone()) {
            Ok(r) => r,
            Err(e) => {
                report.failure = fail(
                    expected,
                    FailureKind::Malformed,
                    format!("record at seq {expected} is not a valid record: {e}"),
                );
                return Ok(report);
            }
        };
        if record.seq > expected {
            report.failure = fail(
                expected,
                FailureKind::Deleted,
                format!(
                    "expected seq {expected} but found seq {}: record(s) deleted or reordered",
                    record.seq
                ),
            );
            return Ok(report);
        }
        if record.seq < expected {
            report.failure = fail(
                expected,
                FailureKind::InsertedOrReordered,
                format!(
                    "expected seq {expected} but found seq {} again: a record was inserted or records were reordered",
                    record.seq
                ),
            );
            return Ok(report);
        }
        if hash_of(&value) != record.hash {
            report.failure = fail(
                record.seq,
                FailureKind::Edited,
                format!(
                    "record at seq {} does not match its hash: it was edited",
                    record.seq
                ),
            );
            return Ok(report);
        }
        if record.prev != prev_hash {
            report.failure = fail(
                record.seq,
                FailureKind::BrokenLink,
                format!(
                    "record at seq {} does not link to record {} (prev mismatch): record {} was replaced or this one inserted",
                    record.seq,
                    record.seq - 1,
                    record.seq - 1
                ),
            );
            return Ok(report);
        }
        if let Some(cp) = checkpoints.get(&record.seq)
            && cp.head != record.hash
        {
            report.failure = fail(
                record.seq,
                FailureKind::CheckpointMismatch,
                format!(
                    "the signed checkpoint at seq {} covers a different record: the chain up to here was rewritten",
                    record.seq
                ),
            );
            return Ok(report);
        }
        prev_hash = record.hash;
        report.records += 1;
        report.head_seq = record.seq;
        expected += 1;
    }
    report.head_hash = (report.records > 0).then_some(prev_hash);
    if let Some(last) = report.last_checkpoint_seq
        && last > report.head_seq
    {
        report.failure = fail(
            report.head_seq + 1,
            FailureKind::Truncated,
            format!(
                "the log ends at seq {} but a signed checkpoint covers seq {last}: records were cut",
                report.head_seq
            ),
        );
        return Ok(report);
    }
    report.unsigned_tail = report.head_seq - report.last_checkpoint_seq.unwrap_or(0);
    Ok(report)
}
