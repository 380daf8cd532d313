//! Why an ingest, or opening a dataset, did not happen.

use std::path::PathBuf;

use rampart_crypto::age_file::AgeError;

pub use rampart_home::ErrorKind;

/// Why the stage could not do its job. Each variant names the file it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// A rule refused the dataset (its location, signature, integrity or shards). Audited.
    #[error("{path}: {reason}")]
    Refused {
        /// The dataset as requested.
        path: PathBuf,
        /// The rule (`data.roots`, `integrity.signature`, …).
        rule: &'static str,
        /// Why.
        reason: String,
        /// What to do.
        hint: &'static str,
    },
    /// A dataset path is outside the authorised roots, or cannot be opened. Audited.
    #[error(transparent)]
    Path(#[from] rampart_data::PathError),
    /// The request is inconsistent (a value out of range, a named file missing).
    #[error("{0}")]
    Request(String),
    /// A schema file cannot be used.
    #[error("schema {path}: {source}")]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rampart_data::schema::SchemaError,
    },
    /// An input could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The dataset cannot be validated (its header does not fit the schema, a broken file).
    #[error("{path}: {source}")]
    Validate {
        /// The dataset.
        path: PathBuf,
        /// Why.
        #[source]
        source: rampart_data::validate::ValidateError,
    },
    /// A table could not be loaded for the poisoning checks.
    #[error("{path}: {source}")]
    Frame {
        /// The table.
        path: PathBuf,
        /// Why.
        #[source]
        source: rampart_data::frame::FrameError,
    },
    /// An age file could not be decrypted.
    #[error("{path}: {source}")]
    Age {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: AgeError,
    },
    /// The redaction settings are wrong (an unknown operator or entity, a missing key).
    #[error("{0}")]
    Redaction(String),
    /// Redacting the rows failed.
    #[error("redacting the clean rows: {0}")]
    Pii(#[source] rampart_data::pii::PiiError),
    /// A file cannot be scanned or redacted (not CSV with a header, an operator that cannot
    /// be used, a row too long).
    #[error("{}: {source}", path.display())]
    PiiInput {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rampart_data::pii::PiiError,
    },
    /// A value written by the `encrypt` operator cannot be revealed.
    #[error("{}: line {line}: {source}", path.display())]
    Reveal {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: u64,
        /// Why.
        #[source]
        source: rampart_data::pii::PiiError,
    },
    /// An output could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The output.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The poisoning checks cannot run on this data (a named column is missing, …).
    #[error("poisoning checks: {0}")]
    Checks(rampart_data::poison::ColumnError),
    /// A stored dataset does not decrypt to its content address.
    #[error(
        "{path}: the stored dataset's content is {got}, not {want}: the store was tampered with"
    )]
    Tampered {
        /// The stored file.
        path: PathBuf,
        /// Its content address.
        want: String,
        /// What it holds.
        got: String,
    },
    /// The dataset store could not be written.
    #[error("the dataset store {path}: {source}")]
    Store {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The home (keys, policy, files).
    #[error(transparent)]
    Home(#[from] rampart_home::HomeError),
    /// The audit log refused the record: the action is refused with it.
    #[error(transparent)]
    Audit(#[from] rampart_audit::AuditError),
}

use rampart_home::Classify;

impl Classify for IngestError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Tampered { .. } => ErrorKind::Verification,
            Self::Store { .. } | Self::Write { .. } | Self::Audit(_) => ErrorKind::Internal,
            Self::Home(e) => e.kind(),
            _ => ErrorKind::Input,
        }
    }

    fn hint(&self) -> Option<String> {
        let text: &str = match self {
            Self::Refused { hint, .. } => hint,
            Self::Validate {
                source: rampart_data::validate::ValidateError::Header(_),
                ..
            } => "the header must name exactly the schema's columns (any order, each once)",
            Self::Frame {
                source: rampart_data::frame::FrameError::Csv { .. },
                ..
            } => "run `rampart data validate` first: it quarantines malformed rows",
            Self::Age { source, .. } => return age_hint(source).map(str::to_owned),
            Self::Path(rampart_data::PathError::Refused {
                rule: "data.roots", ..
            }) => "authorise its directory with `rampart data roots add DIR`",
            Self::Path(_) => "datasets are regular files or directories",
            Self::PiiInput {
                source: rampart_data::pii::PiiError::Csv { .. },
                ..
            } => "the file must be CSV with a header row (or pass --text)",
            Self::Reveal { .. } => {
                "reveal needs an identity of a recipient the values were encrypted to (-i FILE)"
            }
            Self::PiiInput { .. } | Self::Pii(_) | Self::Redaction(_) => {
                "fix the operators in [data.pii] of rampart.toml or the redaction flags"
            }
            Self::Tampered { .. } => "restore the store from a backup, or ingest the dataset again",
            _ => return None,
        };
        Some(text.to_owned())
    }
}

/// What to do about an age error, when there is something to say.
#[must_use]
pub fn age_hint(e: &AgeError) -> Option<&'static str> {
    match e {
        AgeError::NoMatchingKey => Some(
            "pass the identity the file was encrypted to with -i FILE (the home's identity is always tried)",
        ),
        AgeError::BadPassphrase | AgeError::WrongMode(_) => Some(
            "set $RAMPART_AGE_PASSPHRASE or pass --passphrase-file FILE for passphrase files; -i FILE for the others",
        ),
        AgeError::NoRecipients | AgeError::BadRecipient(_) => {
            Some("recipients look like age1…; `rampart keys export-public --age` prints the home's")
        }
        _ => None,
    }
}
