//! What an audited event did: one closed list, so an action name is never a string literal
//! typed at the place that writes it (a typo there would be a new, silently unmatched action).

use std::fmt;

use crate::log::AuditSink;
use crate::{AuditError, Event, Outcome};

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// An audited action. Its [`Action::name`] is what the log's `action` field holds.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The name written to the log.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    /// A home was created.
    HomeInit => "home.init",
    /// A key, certificate authority or identity was trusted.
    TrustAdd => "trust.add",
    /// A trust entry was removed.
    TrustRemove => "trust.remove",
    /// A Sigstore trusted root was installed.
    TrustSigstoreRoot => "trust.sigstore-root",
    /// The home's public keys were exported.
    KeysExportPublic => "keys.export-public",
    /// A dataset file was opened from an authorised root (or refused).
    DataAccess => "data.access",
    /// A dataset was ingested into the store (or refused).
    DataIngest => "data.ingest",
    /// A dataset was validated against its schema.
    DataValidate => "data.validate",
    /// Two datasets were compared for drift.
    DataDrift => "data.drift",
    /// A dataset was scanned for personal data.
    DataPiiScan => "data.pii.scan",
    /// Personal data was redacted.
    DataPiiRedact => "data.pii.redact",
    /// Encrypted personal data was revealed.
    DataPiiReveal => "data.pii.reveal",
    /// A dataset digest was pinned.
    DataPin => "data.pin",
    /// A pin was removed.
    DataUnpin => "data.unpin",
    /// The poisoning checks ran on a dataset.
    DataPoisonCheck => "data.poison-check",
    /// A data root was authorised.
    DataRootsAdd => "data.roots.add",
    /// A data root was removed.
    DataRootsRemove => "data.roots.remove",
    /// A file was encrypted.
    Encrypt => "encrypt",
    /// A file was decrypted.
    Decrypt => "decrypt",
    /// A file was re-encrypted to new recipients.
    Rekey => "rekey",
    /// A model was signed.
    Sign => "sign",
    /// A signature was verified.
    Verify => "verify",
    /// A provenance attestation was verified.
    AttestVerify => "attest.verify",
    /// A model file was scanned.
    Scan => "scan",
    /// A model file was converted.
    Convert => "convert",
    /// A training run (sandboxed).
    TrainRun => "train.run",
    /// A training run without the sandbox (explicitly allowed).
    TrainUnsandboxed => "train.unsandboxed",
    /// A training run's provenance was signed.
    TrainProvenance => "train.provenance",
    /// A built-in model was fitted.
    MlTrain => "ml.train",
    /// A model was evaluated.
    MlEval => "ml.eval",
    /// A model predicted.
    MlPredict => "ml.predict",
    /// A model version was registered.
    ModelRegister => "model.register",
    /// A model version was promoted.
    ModelPromote => "model.promote",
    /// A promotion was approved.
    ModelApprove => "model.approve",
    /// A stage was rolled back.
    ModelRollback => "model.rollback",
    /// A model version was exported.
    ModelExport => "model.export",
    /// A model archive was imported.
    ModelImport => "model.import",
    /// A model version was checked out.
    ModelCheckout => "model.checkout",
    /// The gateway loaded a model.
    ServeLoad => "serve.load",
    /// The gateway was started without TLS (explicitly allowed).
    ServeInsecureHttp => "serve.insecure-http",
    /// A gateway request was refused by authentication.
    ServeAuth => "serve.auth",
    /// An API key was created.
    ApikeyCreate => "apikey.create",
    /// An API key was revoked.
    ApikeyRevoke => "apikey.revoke",
    /// A guardrail check.
    GuardCheck => "guard.check",
    /// The audit log was verified.
    AuditVerify => "audit.verify",
    /// A pipeline run.
    PipelineRun => "pipeline.run",
    /// One step of a pipeline run.
    PipelineStep => "pipeline.step",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Action> for String {
    fn from(a: Action) -> Self {
        a.name().to_owned()
    }
}

/// Who is acting and where their events go: what a library service is handed to audit its
/// own actions. Without a sink (no home yet) events are dropped: there is no log to keep.
#[derive(Clone, Copy)]
pub struct Auditor<'a> {
    sink: Option<&'a dyn AuditSink>,
    actor: &'a str,
}

impl fmt::Debug for Auditor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auditor")
            .field("actor", &self.actor)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl<'a> Auditor<'a> {
    /// Events by `actor`, appended to `sink`.
    #[must_use]
    pub const fn new(sink: Option<&'a dyn AuditSink>, actor: &'a str) -> Self {
        Self { sink, actor }
    }

    /// Who is acting.
    #[must_use]
    pub const fn actor(&self) -> &'a str {
        self.actor
    }

    /// A new event by this actor.
    #[must_use]
    pub fn event(&self, action: Action, outcome: Outcome) -> Event {
        Event::new(self.actor, action, outcome)
    }

    /// Appends an event. An action that cannot be audited must fail: callers propagate this.
    ///
    /// # Errors
    /// The sink's error.
    pub fn record(&self, event: Event) -> Result<(), AuditError> {
        if let Some(sink) = self.sink {
            sink.append(event)?;
        }
        Ok(())
    }

    /// Appends the record of a refusal. The refusal's own error is what the caller reports;
    /// when the record cannot be written either, that is returned so the caller can say so.
    #[must_use]
    pub fn refusal(&self, event: Event) -> Option<AuditError> {
        self.record(event).err()
    }
}

/// A change being made that must be on record before it takes effect: see
/// [`Auditor::recorded`].
#[derive(Debug)]
pub struct Recorder<'a> {
    audit: Auditor<'a>,
    /// Why the record could not be written.
    failed: Option<AuditError>,
    /// The record written, to follow with an `aborted` one if the change then fails.
    written: Option<Event>,
}

impl Recorder<'_> {
    /// Appends the change's record; an error refuses the change.
    ///
    /// # Errors
    /// [`NotRecorded`], for the library making the change (the audit error itself is
    /// returned by [`Auditor::recorded`]).
    pub fn write(&mut self, event: Event) -> Result<(), NotRecorded> {
        match self.audit.record(event.clone()) {
            Ok(()) => {
                self.written = Some(event);
                Ok(())
            }
            Err(e) => {
                let text = e.to_string();
                self.failed = Some(e);
                Err(NotRecorded(text))
            }
        }
    }
}

/// A change's record could not be written, so the change is refused: what a library's
/// witness callback returns (the audit error's text; [`Auditor::recorded`] returns the error
/// itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not recorded in the audit log: {0}")]
pub struct NotRecorded(pub String);

/// Why a recorded change did not happen.
#[derive(Debug)]
pub enum Unrecorded<E> {
    /// Its record could not be written, so it was refused.
    Audit(AuditError),
    /// The change itself failed (after an `aborted` record, if its record was written).
    Change(E),
}

impl<'a> Auditor<'a> {
    /// Runs one change that must be in the audit log before it takes effect: the change
    /// calls [`Recorder::write`] with its record just before it commits (a policy file renamed
    /// into place, a database transaction committed) and refuses itself when the record
    /// cannot be written. A change that fails after its record was written gets an `aborted`
    /// record.
    ///
    /// # Errors
    /// [`Unrecorded::Audit`] when the record could not be written, else the change's error.
    pub fn recorded<T, E: fmt::Display>(
        &self,
        change: impl FnOnce(&mut Recorder<'a>) -> Result<T, E>,
    ) -> Result<T, Unrecorded<E>> {
        let mut rec = Recorder {
            audit: *self,
            failed: None,
            written: None,
        };
        match change(&mut rec) {
            Ok(v) => Ok(v),
            Err(e) => {
                if let Some(f) = rec.failed {
                    return Err(Unrecorded::Audit(f));
                }
                if let Some(ev) = &rec.written {
                    // The change's own error is what matters; a lost `aborted` record leaves
                    // the earlier record standing, which the caller cannot improve on.
                    let _ = self.refusal(ev.aborted(e.to_string()));
                }
                Err(Unrecorded::Change(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn action_names_are_unique_and_dotted_lowercase() {
        let mut seen = HashSet::new();
        for a in Action::ALL {
            assert!(seen.insert(a.name()), "{} twice", a.name());
            assert!(
                a.name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || matches!(c, '.' | '_' | '-')),
                "{}",
                a.name()
            );
        }
    }

    struct Memory(Mutex<Vec<Event>>);
    impl AuditSink for Memory {
        fn append(&self, event: Event) -> Result<crate::Record, AuditError> {
            self.0.lock().unwrap().push(event);
            Err(AuditError::RecordTooLarge {
                action: "test".into(),
                len: 1,
                max: 0,
            })
        }
    }

    #[test]
    fn an_auditor_names_its_actor_and_reports_sink_errors() {
        let sink = Memory(Mutex::new(Vec::new()));
        let a = Auditor::new(Some(&sink), "alice");
        let err = a.record(a.event(Action::DataIngest, Outcome::Ok));
        assert!(err.is_err(), "a sink error is the action's error");
        assert!(
            a.refusal(a.event(Action::DataAccess, Outcome::Denied))
                .is_some()
        );
        let got = sink.0.lock().unwrap();
        assert_eq!(got.len(), 2);
        drop(got);
        // A recorded change whose record fails is refused with the audit error.
        let got: Result<(), Unrecorded<String>> = a.recorded(|rec| {
            rec.write(a.event(Action::ModelPromote, Outcome::Ok))
                .map_err(|e| e.to_string())?;
            Ok(())
        });
        assert!(matches!(got, Err(Unrecorded::Audit(_))));
        let none = Auditor::new(None, "bob");
        // Recorded, then failed: the change's error, and an aborted record follows.
        let got: Result<(), Unrecorded<String>> = none.recorded(|rec| {
            rec.write(none.event(Action::ModelPromote, Outcome::Ok))
                .map_err(|e| e.to_string())?;
            Err("disk full".into())
        });
        assert!(matches!(got, Err(Unrecorded::Change(ref e)) if e == "disk full"));
        assert!(none.record(none.event(Action::Verify, Outcome::Ok)).is_ok());
    }
}
