//! Errors as the user sees them: one line (the cause chain), an optional hint, an exit code.

use std::fmt::Write as _;

use crate::cli::Format;

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Ok,
    /// Exit 1: findings, or a verification failed.
    Findings,
}

/// A command that could not do its job.
#[derive(Debug)]
pub struct CliError {
    code: u8,
    error: anyhow::Error,
    hint: Option<String>,
}

impl CliError {
    /// Exit 2: bad usage or input.
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 2,
            error: error.into(),
            hint: None,
        }
    }

    /// Exit 1: a verification failed (tampered input) and nothing was done.
    pub fn verification(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 1,
            error: error.into(),
            hint: None,
        }
    }

    /// Exit 3: an internal or environment failure.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: 3,
            error: error.into(),
            hint: None,
        }
    }

    /// Adds a hint (what to do next).
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub const fn code(&self) -> u8 {
        self.code
    }

    pub fn is_broken_pipe(&self) -> bool {
        self.error.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }

    pub fn message(&self) -> String {
        let mut out = String::new();
        for (i, cause) in self.error.chain().enumerate() {
            if i > 0 {
                out.push_str(": ");
            }
            let _ = write!(out, "{cause}");
        }
        out
    }

    /// Prints the error to stderr, as one line plus a hint, or as JSON.
    pub fn report(&self, format: Format) {
        let message = self.message();
        match format {
            Format::Json | Format::Sarif => {
                let value = serde_json::json!({
                    "error": message,
                    "hint": self.hint,
                    "exit_code": self.code,
                });
                eprintln!("{value}");
            }
            Format::Human => {
                // Nothing in a message (a file name, a trainer's text) drives the terminal;
                // untrusted names are escaped (newlines too) where they are put in.
                eprintln!("error: {}", rampart_train::terminal::escape_text(&message));
                if let Some(hint) = &self.hint {
                    eprintln!("hint: {}", rampart_train::terminal::escape_text(hint));
                }
            }
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl From<rampart_home::HomeError> for CliError {
    fn from(e: rampart_home::HomeError) -> Self {
        let code = if e.is_user_error() { 2 } else { 3 };
        Self {
            code,
            error: e.into(),
            hint: None,
        }
    }
}

impl From<rampart_audit::AuditError> for CliError {
    fn from(e: rampart_audit::AuditError) -> Self {
        Self::internal(e)
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::internal(e)
    }
}

impl CliError {
    /// A library error by its kind, with its hint.
    fn of_kind(
        kind: rampart_ingest::ErrorKind,
        e: impl std::error::Error + Send + Sync + 'static,
        hint: Option<String>,
    ) -> Self {
        use rampart_ingest::ErrorKind;
        let err = match kind {
            ErrorKind::Input => Self::input(e),
            ErrorKind::Verification => Self::verification(e),
            ErrorKind::Internal => Self::internal(e),
        };
        match hint {
            Some(h) => err.hint(h),
            None => err,
        }
    }
}

impl From<rampart_ingest::IngestError> for CliError {
    fn from(e: rampart_ingest::IngestError) -> Self {
        let hint = e.hint().map(str::to_owned);
        Self::of_kind(e.kind(), e, hint)
    }
}

/// An age error about `path`, with what to do about it.
pub fn age_err(path: &std::path::Path, e: rampart_crypto::age_file::AgeError) -> CliError {
    let hint = rampart_ingest::age_hint(&e);
    let err = CliError::input(anyhow::Error::new(e).context(path.display().to_string()));
    match hint {
        Some(h) => err.hint(h),
        None => err,
    }
}

impl From<rampart_train::service::ServiceError> for CliError {
    fn from(e: rampart_train::service::ServiceError) -> Self {
        use rampart_train::service::ServiceError;
        match e {
            ServiceError::Ingest(i) => i.into(),
            ServiceError::Home(h) => h.into(),
            other => {
                let hint = other.hint().map(str::to_owned);
                Self::of_kind(other.kind(), other, hint)
            }
        }
    }
}

impl From<rampart_serve::load::LoadError> for CliError {
    fn from(e: rampart_serve::load::LoadError) -> Self {
        rampart_serve::ServeError::Load(e).into()
    }
}

impl From<rampart_data::table::TableError> for CliError {
    fn from(e: rampart_data::table::TableError) -> Self {
        let hint = e.hint.clone();
        Self::of_kind(rampart_ingest::ErrorKind::Input, e, hint)
    }
}

impl From<rampart_train::builtin::BuiltinError> for CliError {
    fn from(e: rampart_train::builtin::BuiltinError) -> Self {
        use rampart_ingest::ErrorKind;
        use rampart_train::builtin::BuiltinError;
        let e = match e {
            BuiltinError::Ingest(i) => return i.into(),
            BuiltinError::Home(h) => return h.into(),
            other => other,
        };
        let kind = if e.is_user_error() {
            ErrorKind::Input
        } else {
            ErrorKind::Internal
        };
        let hint = e.hint();
        Self::of_kind(kind, e, hint)
    }
}

impl From<rampart_pipeline::run::RunError> for CliError {
    fn from(e: rampart_pipeline::run::RunError) -> Self {
        use rampart_pipeline::run::RunError;
        match e {
            RunError::Ingest(i) => i.into(),
            RunError::Home(h) => h.into(),
            RunError::Train(t) => t.into(),
            RunError::Audit(a) => a.into(),
            RunError::Verify(v) => v.into(),
            other => {
                let hint = other.hint().map(str::to_owned);
                Self::of_kind(other.kind(), other, hint)
            }
        }
    }
}

impl From<rampart_ingest::rekey::RekeyError> for CliError {
    fn from(e: rampart_ingest::rekey::RekeyError) -> Self {
        use rampart_ingest::rekey::RekeyError;
        match e {
            RekeyError::Age { path, source } => age_err(&path, source),
            RekeyError::Home(h) => h.into(),
            RekeyError::Audit(a) => a.into(),
            other => {
                let hint = other.hint().map(str::to_owned);
                Self::of_kind(other.kind(), other, hint)
            }
        }
    }
}

impl From<rampart_home::verify::VerifyError> for CliError {
    fn from(e: rampart_home::verify::VerifyError) -> Self {
        use rampart_home::verify::VerifyError;
        match e {
            VerifyError::Home(h) => h.into(),
            VerifyError::Audit(a) => a.into(),
            other => {
                let hint = other.hint().map(str::to_owned);
                Self::of_kind(rampart_ingest::ErrorKind::Input, other, hint)
            }
        }
    }
}

impl From<rampart_home::trust::EditError> for CliError {
    fn from(e: rampart_home::trust::EditError) -> Self {
        use rampart_home::trust::EditError;
        match e {
            EditError::Home(h) => h.into(),
            EditError::Audit(a) => a.into(),
            other @ EditError::Certificates { .. } => Self::input(other),
        }
    }
}

impl From<rampart_serve::admin::AdminError> for CliError {
    fn from(e: rampart_serve::admin::AdminError) -> Self {
        use rampart_serve::admin::AdminError;
        match e {
            AdminError::Home(h) => h.into(),
            AdminError::Audit(a) => a.into(),
            e @ (AdminError::Request(_) | AdminError::NotFound(_)) => Self::input(e),
            other @ AdminError::Store(_) => Self::internal(other),
        }
    }
}

impl From<rampart_home::sign::SignError> for CliError {
    fn from(e: rampart_home::sign::SignError) -> Self {
        use rampart_home::sign::SignError;
        match e {
            SignError::Home(h) => h.into(),
            SignError::Audit(a) => a.into(),
            other if other.is_user_error() => Self::input(other),
            other => Self::internal(other),
        }
    }
}

impl From<rampart_serve::ServeError> for CliError {
    fn from(e: rampart_serve::ServeError) -> Self {
        use rampart_ingest::ErrorKind;
        use rampart_serve::load::LoadErrorKind;
        let kind = match e.kind() {
            LoadErrorKind::Input => ErrorKind::Input,
            LoadErrorKind::Verification => ErrorKind::Verification,
            LoadErrorKind::Internal => ErrorKind::Internal,
        };
        let hint = e.hint().map(str::to_owned);
        Self::of_kind(kind, e, hint)
    }
}
