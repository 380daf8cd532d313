//! What every library service is handed: the home, its policy (loaded once), and who is
//! acting, with where their audit records go.

use rampart_audit::Auditor;

use crate::{Home, Policy};

/// One caller's view of a home for the length of an operation.
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    /// The home (keys, stores).
    pub home: &'a Home,
    /// Its policy, loaded and validated.
    pub policy: &'a Policy,
    /// The actor and audit sink every service records its actions with.
    pub audit: Auditor<'a>,
}
