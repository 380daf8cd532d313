//! Errors as the user sees them: one line (the cause chain), an optional hint, an exit code.

use rampart_home::{Classify, ErrorKind};

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

    /// Adds a hint when there is one.
    #[must_use]
    pub fn hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
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

    /// The cause chain on one line. A cause that its parent's message already ends with (a
    /// library error that prints its source and also exposes it) is said once.
    pub fn message(&self) -> String {
        let mut out = String::new();
        for cause in self.error.chain() {
            let text = cause.to_string();
            if out.ends_with(&text) {
                continue;
            }
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
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

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::internal(e)
    }
}

impl CliError {
    /// A library error by its kind (the exit code), with its hint.
    fn classified(e: impl Classify) -> Self {
        let hint = e.hint();
        let err = match e.kind() {
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

/// Every service's error becomes a `CliError` by its [`Classify`] kind and hint.
macro_rules! classified {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                Self::classified(e)
            }
        })*
    };
}

classified!(
    rampart_home::HomeError,
    rampart_audit::AuditError,
    rampart_home::verify::VerifyError,
    rampart_home::sign::SignError,
    rampart_home::trust::EditError,
    rampart_home::scan::ScanError,
    rampart_home::audit::LogError,
    rampart_home::scan::ConvertFailed,
    rampart_ingest::IngestError,
    rampart_ingest::rekey::RekeyError,
    rampart_train::service::ServiceError,
    rampart_train::builtin::BuiltinError,
    rampart_pipeline::run::RunError,
    rampart_registry::RegistryError,
    rampart_serve::ServeError,
    rampart_serve::load::LoadError,
    rampart_serve::admin::AdminError,
);

impl From<rampart_data::table::TableError> for CliError {
    fn from(e: rampart_data::table::TableError) -> Self {
        let hint = e.hint.clone();
        Self::input(e).hint_opt(hint)
    }
}

/// An age error about `path`, with what to do about it.
pub fn age_err(path: &std::path::Path, e: rampart_crypto::age_file::AgeError) -> CliError {
    let hint = rampart_ingest::age_hint(&e).map(str::to_owned);
    CliError::input(anyhow::Error::new(e).context(path.display().to_string())).hint_opt(hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_its_parents_message_is_said_once() {
        #[derive(Debug)]
        struct Walk {
            source: std::io::Error,
        }
        impl std::fmt::Display for Walk {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot scan x: {}", self.source)
            }
        }
        impl std::error::Error for Walk {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
        let e = CliError::input(Walk {
            source: std::io::Error::other("x is a FIFO"),
        });
        assert_eq!(e.message(), "cannot scan x: x is a FIFO");
        let e = CliError::input(anyhow::anyhow!("inner").context("outer"));
        assert_eq!(e.message(), "outer: inner");
    }
}
