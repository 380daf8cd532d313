//! What every command shares: the home, the output format, and the audit log, which is opened
//! on first use and sealed with a signed checkpoint when the command ends.

use std::cell::{Cell, OnceCell};

use rampart_audit::{Action, AuditLog, Auditor, Event, Outcome};
use rampart_home::Home;

use crate::cli::{Format, GlobalArgs};
use crate::error::CliError;

pub struct Ctx {
    pub home: Home,
    pub format: Format,
    /// Who runs this command, as the audit records name them.
    pub actor: String,
    audit: OnceCell<Option<AuditLog>>,
    /// Set when this command found the log damaged: signing a new checkpoint then would vouch
    /// for a tampered chain.
    seal: Cell<bool>,
}

impl Ctx {
    pub fn new(global: &GlobalArgs) -> Self {
        Self {
            home: Home::resolve(global.home.as_deref()),
            format: global.format,
            actor: rampart_home::os_user(),
            audit: OnceCell::new(),
            seal: Cell::new(true),
        }
    }

    /// The audit log, if the home exists.
    pub fn audit_log(&self) -> Result<Option<&AuditLog>, CliError> {
        if let Some(log) = self.audit.get() {
            return Ok(log.as_ref());
        }
        // No home yet: nothing is cached, so a home this command creates is audited from then.
        if !self.home.exists() {
            return Ok(None);
        }
        // Checkpoints are anchored where the policy says. A home without a policy, or with
        // one that does not parse, names no anchor: the log is still opened (reading it,
        // and recording the refusal of a command the broken policy stops, must work), and
        // the next command with a good policy anchors a checkpoint covering these records.
        let log = match self.home.load_policy() {
            Ok(policy) => rampart_home::audit::open_log(&self.home, &policy)?,
            Err(e) => {
                if self.home.policy_path().exists() {
                    tracing::warn!("audit checkpoints of this command are not anchored: {e}");
                }
                AuditLog::open(&self.home.audit_dir())?
            }
        };
        Ok(self.audit.get_or_init(|| Some(log)).as_ref())
    }

    /// A new event attributed to the user running this command.
    pub fn event(&self, action: Action, outcome: Outcome) -> Event {
        Event::new(self.actor.clone(), action, outcome)
    }

    /// The home's policy, or the defaults when there is no home (a command that works
    /// without one: there is then no log to record in either).
    pub fn policy_or_default(&self) -> Result<rampart_home::Policy, CliError> {
        if self.home.exists() {
            Ok(self.home.load_policy()?)
        } else {
            Ok(rampart_home::Policy::default())
        }
    }

    /// What a library service is handed: the home, its policy, and this command's auditor.
    ///
    /// # Errors
    /// When the log exists but cannot be opened.
    pub fn session<'a>(
        &'a self,
        policy: &'a rampart_home::Policy,
    ) -> Result<rampart_home::Session<'a>, CliError> {
        Ok(rampart_home::Session {
            home: &self.home,
            policy,
            audit: self.auditor()?,
        })
    }

    /// What a library service is handed to audit its own actions: this user, this home's log.
    ///
    /// # Errors
    /// When the log exists but cannot be opened.
    pub fn auditor(&self) -> Result<Auditor<'_>, CliError> {
        let sink = self
            .audit_log()?
            .map(|l| l as &dyn rampart_audit::AuditSink);
        Ok(Auditor::new(sink, &self.actor))
    }

    /// Appends an event. An action that cannot be audited fails (fail closed).
    pub fn audit(&self, event: Event) -> Result<(), CliError> {
        if let Some(log) = self.audit_log()? {
            log.append(event)?;
        }
        Ok(())
    }

    /// Audits a refusal; the refusal's own error stays the one the user sees.
    pub fn audit_refusal(&self, event: Event) {
        if let Err(e) = self.audit(event) {
            tracing::warn!("could not audit a refusal: {}", e_message(&e));
        }
    }

    pub fn dont_seal(&self) {
        self.seal.set(false);
    }

    /// Signs a checkpoint over what this command appended.
    pub fn finish(&self) {
        let Some(Some(log)) = self.audit.get() else {
            return;
        };
        if !self.seal.get() {
            tracing::warn!("no audit checkpoint signed: the log failed verification");
            return;
        }
        match self.home.signing_key() {
            Ok((key, _)) => {
                if let Err(e) = log.checkpoint(&key) {
                    tracing::warn!("could not sign an audit checkpoint: {e}");
                }
            }
            Err(e) => tracing::warn!("no audit checkpoint signed: {e}"),
        }
    }
}

fn e_message(e: &CliError) -> String {
    format!("{e:?}")
}
