//! Dataset ingestion for rampart. So far: [`paths`] — a dataset is opened only from an
//! authorised data root, checked on the opened file so that the check cannot race the read.
//! Integrity, encryption at rest, schemas and quarantine follow (issue "Data ingestion").

pub mod paths;

pub use paths::{Authorised, PathError, open_authorised};
