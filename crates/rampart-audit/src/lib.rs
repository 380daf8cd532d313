//! The tamper-evident audit log.
//!
//! Every security-relevant event becomes one JSON line in `audit.jsonl`:
//!
//! ```json
//! {"action":"trust.add","actor":"alice","details":{},"hash":"…","outcome":"ok",
//!  "prev":"…","seq":7,"subject":{"digest":"…","path":"…"},"time":"2026-11-22T03:40:16.123456Z"}
//! ```
//!
//! * `hash` = SHA-256 over a domain tag and the record's canonical JSON without `hash` (keys
//!   sorted, no white space — see [`canonical`]); `prev` is the previous record's `hash` (64
//!   zeros for the first). Editing, deleting, inserting or reordering a record breaks the chain.
//! * A *checkpoint* (in `checkpoints.jsonl`) is an ECDSA signature by the home's key over
//!   `(seq, head hash, time)`. Checkpoints are written at the end of every command and every N
//!   records in long-running processes. They make a rewritten chain, or a log cut back before
//!   the last checkpoint, detectable by anyone holding the public key — and a checkpoint can't
//!   be forged without the private key.
//! * Appends take an exclusive OS file lock (`flock`) on the log, so a server and several CLI
//!   processes can append at once without interleaving.
//!
//! What it cannot prove: records appended after the last checkpoint can be rewritten or cut by
//! someone with write access to the files (the chain has no secret); and someone who can write
//! *both* files can roll both back to an earlier checkpointed state. Ship checkpoints off the
//! machine (a SIEM, a database) to close that gap; [`VerifyReport`] says how many records are
//! not yet covered by a checkpoint.
//!
//! ```
//! # let dir = tempfile::tempdir().unwrap();
//! use rampart_audit::{AuditLog, Event, Outcome};
//! let key = rampart_crypto::SigningKey::generate();
//! let log = AuditLog::open(dir.path())?;
//! log.append(Event::new("alice", "model.sign", Outcome::Ok).subject_path("m.safetensors"))?;
//! log.checkpoint(&key)?;
//! let report = log.verify(&[key.public_key()])?;
//! assert!(report.failure.is_none());
//! # Ok::<(), rampart_audit::AuditError>(())
//! ```

mod action;
pub mod anchor;
pub mod canonical;
pub mod conformance;
mod error;
mod log;
mod record;
pub mod siem;
mod verify;

pub use action::{Action, Auditor, NotRecorded, Recorder, Unrecorded};
pub use error::AuditError;
pub use log::{AuditLog, AuditSink, Checkpoint, MAX_RECORD_BYTES, MemorySink};
pub use record::{Event, Outcome, Record, Subject};
pub use verify::{Failure, FailureKind, VerifyReport};
