//! Dataset ingestion for rampart.
//!
//! * [`paths`]: a dataset is opened only from an authorised data root, checked on the opened
//!   file so that the check cannot race the read.
//! * [`csv`]: a strict streaming CSV record reader that reports malformed records one by one.
//! * [`schema`]: TOML dataset schemas (types, nulls, ranges, allowed values, regexes,
//!   uniqueness, the label and its classes).
//! * [`integrity`]: signatures and pinned digests checked on the bytes actually read.
//! * [`infer`]: a schema proposed from a sample.
//! * [`parquet`]: Parquet datasets under the same rules, clean rows kept as Parquet.
//! * [`shards`]: a directory of CSV shards read as one table, each shard hashed as read.
//! * [`frame`]: a whole table in memory (bounded), for [`drift`] (PSI and KS per column)
//!   and [`poison`] (signs of data poisoning).
//! * [`pii`]: personal data and secrets found, redacted or pseudonymised, in text and CSV.
//! * [`validate`]: every row checked against a schema, clean rows and quarantined rows to
//!   their sinks, and a report whose counts reconcile.

pub mod csv;
pub mod drift;
pub mod frame;
pub mod holdout;
pub mod infer;
pub mod integrity;
pub mod parquet;
pub mod paths;
pub mod pii;
pub mod poison;
pub use rampart_pii::safe_csv;
pub mod schema;
pub mod shards;
pub mod stream;
pub mod table;
pub mod validate;

pub use paths::{Authorised, PathError, open_authorised, open_authorised_with};
