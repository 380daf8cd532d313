//! Personal data and secrets ([`rampart_pii`], re-exported here) applied to datasets:
//! [`table`] streams CSV files, Parquet files and free text through the detector and the
//! redactor, with a report that never holds a raw value.

pub use rampart_pii::*;

pub mod table;

#[cfg(test)]
mod table_tests;
