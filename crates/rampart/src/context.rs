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
    actor: String,
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
        let log = if self.home.exists() {
            Some(AuditLog::open(&self.home.audit_dir())?)
        } else {
            None
        };
        Ok(self.audit.get_or_init(|| log).as_ref())
    }

    /// A new event attributed to the user running this command.
    pub fn event(&self, action: Action, outcome: Outcome) -> Event {
        Event::new(self.actor.clone(), action, outcome)
    }

    /// Copies a stream (the plaintext of `path`) into an unnamed file in the home's private
    /// `runs/` directory (0700), gone when closed: for Parquet, which needs random access.
    pub fn spool(
        &self,
        path: &std::path::Path,
        reader: &mut dyn std::io::Read,
    ) -> Result<std::fs::File, CliError> {
        let runs = self.home.root().join("runs");
        rampart_home::secure_fs::create_private_dir(&runs)?;
        rampart_data::stream::spool(reader, &runs).map_err(|e| {
            CliError::input(
                anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
            )
        })
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

    /// Runs one change that must be in the audit log before it takes effect: the
    /// library calls [`Recorder::write`] with the change's record just before it commits (a
    /// policy file renamed into place, a database transaction committed), and refuses the
    /// change when the record cannot be written.
    pub fn recorded<T, E: Into<CliError>>(
        &self,
        change: impl FnOnce(&mut Recorder<'_>) -> Result<T, E>,
    ) -> Result<T, CliError> {
        let mut rec = Recorder {
            ctx: self,
            failed: None,
            written: None,
        };
        let result = change(&mut rec);
        rec.finish(result)
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

/// See [`Ctx::recorded`].
pub struct Recorder<'c> {
    ctx: &'c Ctx,
    /// Why the record could not be written (the error the user sees).
    failed: Option<CliError>,
    /// The record written, to follow with an `aborted` one if the change then fails.
    written: Option<Event>,
}

impl Recorder<'_> {
    /// Appends the change's record; an error refuses the change.
    ///
    /// # Errors
    /// The audit log's error, as text for the library (the full error is kept for the user).
    pub fn write(&mut self, event: Event) -> Result<(), String> {
        match self.ctx.audit(event.clone()) {
            Ok(()) => {
                self.written = Some(event);
                Ok(())
            }
            Err(e) => {
                let text = format!("not recorded in the audit log: {}", e.message());
                self.failed = Some(e);
                Err(text)
            }
        }
    }

    /// The change's result. When the record could not be written, the audit error (the change
    /// was refused); when the record was written but the change then failed, an `aborted`
    /// record follows and the change's own error is returned.
    ///
    /// # Errors
    /// As described.
    fn finish<T, E: Into<CliError>>(self, result: Result<T, E>) -> Result<T, CliError> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                if let Some(f) = self.failed {
                    return Err(f);
                }
                let e: CliError = e.into();
                if let Some(ev) = &self.written {
                    self.ctx.audit_refusal(ev.aborted(e.message()));
                }
                Err(e)
            }
        }
    }
}
