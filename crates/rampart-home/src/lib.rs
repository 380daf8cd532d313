//! The rampart home: where policy, keys and the audit log live.
//!
//! A home is a directory (default `./.rampart`, or `$RAMPART_HOME`, or `--home DIR`) laid out as
//!
//! ```text
//! .rampart/                 0700
//!   rampart.toml            policy: data roots, trusted keys, audit, gates — never secrets
//!   keys/                   0700
//!     signing.key.pem       ECDSA private key (P-256 made by init; P-384/P-521 accepted), PEM, 0600
//!     signing.pub.pem       its public key (SubjectPublicKeyInfo PEM)
//!     age.key               age X25519 identity, age-keygen format, 0600
//!     age.pub               its recipient (age1…)
//!   audit/                  0700, see rampart-audit
//! ```
//!
//! Main types: [`Home`] (paths, [`Home::init`], loading), [`Policy`] (the parsed `rampart.toml`),
//! [`KeySource`] (where a private key came from). Secrets come only from key files (refused unless
//! mode 0600 or stricter, like ssh) or from `RAMPART_*` environment variables, optionally set by
//! a `.env` file in the working directory ([`load_dotenv`]). The policy file is refused if it
//! contains anything that looks like private key material.
//!
//! ```no_run
//! let home = rampart_home::Home::resolve(None);
//! let policy = home.load_policy()?;
//! let key = home.signing_key()?;
//! # Ok::<(), rampart_home::HomeError>(())
//! ```

pub mod audit;
mod classify;
mod env;
mod error;
mod home;
mod policy;
pub mod roots;
pub mod scan;
pub mod secure_fs;
mod session;
pub mod sign;
pub mod trust;
pub mod verify;

pub use classify::{Classify, ErrorKind};
pub use env::{ENV_AGE_IDENTITY, ENV_AGE_IDENTITY_FILE, ENV_HOME, ENV_SIGNING_KEY};
pub use env::{ENV_PII_KEY, ENV_PII_KEY_FILE, ENV_SIGNING_KEY_FILE, load_dotenv, os_user};
pub use error::HomeError;
pub use home::{Home, InitReport, KeySource, Witness};
pub use policy::{
    AuditPolicy, Backend, ChecksPolicy, DataPolicy, ENV_STORAGE_AUDIT_ANCHOR, ENV_STORAGE_BLOBS,
    ENV_STORAGE_REGISTRY, ENV_STORAGE_SHARED_STATE, ENV_STORAGE_SIEM, GatePolicy, GatesPolicy,
    GuardHarmPolicy, GuardModerationPolicy, GuardOutputPolicy, GuardPolicy, GuardToolsPolicy,
    GuardTopic, PiiPolicy, Policy, ScanPolicy, SharedFallback, Size, SizeError, StoragePolicy,
    StorageUrlError, TrainPolicy, TrustPolicy, TrustedCertificate, TrustedIdentity, TrustedKey,
    parse_size,
};
pub use session::Session;
