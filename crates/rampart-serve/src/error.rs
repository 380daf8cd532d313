//! The gateway's errors (model loading has its own, [`crate::load::LoadError`], carried here).

use std::net::SocketAddr;
use std::path::PathBuf;

use rampart_home::{Classify, ErrorKind};

/// Why the gateway, or one of its parts, cannot be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A setting does not parse.
    #[error("{text:?} is not {expected}")]
    Setting {
        /// The text given.
        text: String,
        /// What it may be.
        expected: &'static str,
    },
    /// The gateway will not start this way.
    #[error("{reason}")]
    Refused {
        /// Why.
        reason: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// A database the gateway keeps its state in cannot be opened.
    #[error("{path}: {reason}")]
    State {
        /// The database.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client for an upstream cannot be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// A reload was asked of a gateway that has no loader.
    #[error("this gateway has no loader to reload its models with")]
    NoLoader,
    /// The models could not be loaded (nothing was swapped).
    #[error(transparent)]
    Load(#[from] crate::load::LoadError),
    /// The home, its policy or its keys.
    #[error(transparent)]
    Home(#[from] rampart_home::HomeError),
    /// The registry cannot be opened or listed.
    #[error(transparent)]
    Registry(#[from] rampart_registry::RegistryError),
    /// The API-key store.
    #[error(transparent)]
    KeyStore(#[from] crate::keys::KeyStoreError),
    /// The rails of `[guard]` do not compile.
    #[error("[guard]: {0}")]
    Guard(rampart_guard::GuardError),
    /// The PII engine for logged payloads.
    #[error(transparent)]
    Pii(#[from] rampart_pii::PiiError),
    /// An upstream model server cannot be put behind the gateway.
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    /// An action could not be recorded, so it was not taken.
    #[error(transparent)]
    Audit(#[from] rampart_audit::AuditError),
    /// The listener, the runtime or the TLS certificate.
    #[error("cannot serve on {bind}: {source}")]
    Listen {
        /// The address.
        bind: SocketAddr,
        /// The failure.
        source: std::io::Error,
    },
}

/// The home's and the loads' own kinds and hints are carried through.
impl Classify for ServeError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Setting { .. } | Self::Refused { .. } | Self::Guard(_) | Self::Upstream(_) => {
                ErrorKind::Input
            }
            Self::Load(e) => e.kind(),
            Self::Home(e) => e.kind(),
            Self::Audit(e) => e.kind(),
            _ => ErrorKind::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        let text = match self {
            Self::Refused { hint, .. } => hint,
            Self::Load(e) => return e.hint(),
            Self::Guard(_) => "fix [guard] in rampart.toml",
            Self::Upstream(_) => {
                "start the model server first and check `curl URL/v2/models/NAME` lists the model's inputs"
            }
            Self::Home(rampart_home::HomeError::NotInitialised { .. }) => {
                "models are served from a home's registry: create one with `rampart init`"
            }
            _ => return None,
        };
        Some(text.to_owned())
    }
}
