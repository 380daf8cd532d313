//! How every service's error tells its caller what kind of failure it is and what to do,
//! without the caller knowing its variants: the CLI turns [`ErrorKind`] into an exit code
//! and prints [`Classify::hint`] under the message.

use rampart_audit::AuditError;

use crate::HomeError;

/// What kind of failure an error is, for a caller choosing how to report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request or its input is wrong, or a rule refused it: the user can fix it.
    Input,
    /// Something that was vouched for does not match: tampering or an untrusted signer.
    Verification,
    /// The environment failed (disk, audit log).
    Internal,
}

/// An error that says what kind it is and what to do about it. An error wrapping another
/// (a service's error holding the home's) answers with the inner one's kind and hint.
pub trait Classify: std::error::Error + Send + Sync + 'static {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;

    /// What the user can do about it, when there is something to say.
    fn hint(&self) -> Option<String> {
        None
    }
}

impl Classify for HomeError {
    fn kind(&self) -> ErrorKind {
        if self.is_user_error() {
            ErrorKind::Input
        } else {
            ErrorKind::Internal
        }
    }
}

/// An action that cannot be recorded is not taken: the environment failed.
impl Classify for AuditError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }
}

impl Classify for crate::verify::VerifyError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Home(h) => h.kind(),
            Self::Audit(a) => a.kind(),
            _ => ErrorKind::Input,
        }
    }

    fn hint(&self) -> Option<String> {
        let text = match self {
            Self::Signature { .. } => "pass the signature with --sig FILE",
            Self::NoTrust(_) => {
                "trust a key with `rampart trust add KEY.pem`, or pass --key PUB.pem"
            }
            Self::TrustFile {
                what: "a Sigstore trusted root",
                ..
            } => "pass a Sigstore trusted_root.json (as `cosign` or sigstore-python keep it)",
            Self::Home(HomeError::NotInitialised { .. }) => {
                "pass --key PUB.pem, or trust keys with `rampart trust add`"
            }
            _ => return None,
        };
        Some(text.to_owned())
    }
}

impl Classify for crate::sign::SignError {
    fn kind(&self) -> ErrorKind {
        if self.is_user_error() {
            ErrorKind::Input
        } else {
            ErrorKind::Internal
        }
    }
}

impl Classify for crate::trust::EditError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Home(h) => h.kind(),
            Self::Audit(a) => a.kind(),
            Self::Certificates { .. } => ErrorKind::Input,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_error_answers_with_the_inner_kind_and_hint() {
        let user = HomeError::NotInitialised {
            home: "/nowhere".into(),
        };
        assert_eq!(user.kind(), ErrorKind::Input);
        let verify = crate::verify::VerifyError::Home(user);
        assert_eq!(verify.kind(), ErrorKind::Input);
        let internal = crate::verify::VerifyError::Home(HomeError::Io {
            action: "read",
            path: "/x".into(),
            source: std::io::Error::other("disk"),
        });
        assert_eq!(internal.kind(), ErrorKind::Internal);
        let no_trust = crate::verify::VerifyError::NoTrust("/p".into());
        assert!(no_trust.hint().is_some_and(|h| h.contains("trust add")));
        let edit = crate::trust::EditError::Certificates {
            path: "/c.pem".into(),
            reason: "no certificate".into(),
        };
        assert_eq!((edit.kind(), edit.hint()), (ErrorKind::Input, None));
    }
}
