//! Audit errors: the log could not be read or written. Tampering is not an error — it is a
//! [`crate::Failure`] in a successful [`crate::VerifyReport`].

use std::path::PathBuf;

/// Why an audit operation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A filesystem operation failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The shared checkpoint anchor could not be written or read, or refused a checkpoint.
    #[error("audit anchor: {0}")]
    Anchor(String),
    /// An event's encoded record would exceed [`crate::MAX_RECORD_BYTES`].
    #[error(
        "audit record for {action:?} is {len} bytes, over the {max}-byte limit; trim its details"
    )]
    RecordTooLarge {
        /// The event's action.
        action: String,
        /// Encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The last record in the log is unreadable, so nothing can be chained onto it.
    #[error(
        "cannot append to {path}: its last record is unreadable ({reason}); run `rampart audit verify` and restore the log from a backup"
    )]
    CorruptTail {
        /// The log.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl AuditError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}
