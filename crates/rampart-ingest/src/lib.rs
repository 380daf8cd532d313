//! The ingest stage as a library service.
//!
//! [`ingest`] takes a [`rampart_home::Session`] (the home, its policy, the auditor) and an
//! [`IngestRequest`], and returns a typed [`IngestOutcome`]: a dataset enters the
//! [`DatasetStore`] only through it. [`open`] opens dataset files from authorised roots (and
//! stored datasets by digest) for the other stages, audited; [`redact`] builds the PII
//! redactor a policy describes. Every refusal is audited before it is returned.

pub mod checks;
pub mod crypt;
mod error;
mod ingest;
pub mod open;
pub mod pii;
pub mod redact;
pub mod rekey;
pub mod store;

pub use error::{ErrorKind, IngestError, age_hint};
pub use ingest::{
    IngestOutcome, IngestRequest, Ingested, RejectReason, Rejected, ingest, load_schema,
    path_digest,
};
pub use store::{DatasetManifest, DatasetStore, StoredDataset, dataset_ref};
