//! One file per subcommand.

pub mod age;
pub mod attest;
pub mod audit;
pub mod checks;
pub mod completions;
pub mod convert;
pub mod data;
pub mod guard;
pub mod ingest;
pub mod init;
pub mod keys;
pub mod ml;
pub mod model;
pub mod pii;
pub mod pipeline;
pub mod scan;
pub mod serve;
pub mod sign;
pub mod storage;
pub mod train;
pub mod trust;
pub mod verify;
