//! One file per subcommand.

pub mod audit;
pub mod completions;
pub mod init;
pub mod keys;
pub mod trust;
