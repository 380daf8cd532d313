//! The SQLite metadata store passes the metadata conformance suite, and the suite can fail.

#![allow(clippy::unwrap_used)]

use rampart_registry::meta::{MetadataStore, conformance};
use rampart_registry::{
    ApprovalRecord, HistoryEntry, NewApproval, NewVersion, Registration, RegistryError,
    SqliteMetadata, Stage, StageChange, Transition, VersionInfo, Witness,
};

#[test]
fn the_sqlite_store_passes_the_metadata_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteMetadata::open(&dir.path().join("registry.db")).unwrap();
    conformance::run(&mut store).unwrap();
}

/// A store that ignores the stages the caller allows a version to come from.
#[derive(Debug)]
struct Lax(SqliteMetadata);

impl MetadataStore for Lax {
    fn insert_version(
        &mut self,
        name: &str,
        v: &NewVersion,
        actor: &str,
        reason: &str,
        record: Witness<'_, Registration>,
    ) -> Result<VersionInfo, RegistryError> {
        self.0.insert_version(name, v, actor, reason, record)
    }
    fn resolve(&self, reference: &str) -> Result<VersionInfo, RegistryError> {
        self.0.resolve(reference)
    }
    fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        self.0.versions(name)
    }
    fn names(&self) -> Result<Vec<String>, RegistryError> {
        self.0.names()
    }
    fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, RegistryError> {
        self.0.history(name)
    }
    fn approvals(&self, v: &VersionInfo) -> Result<Vec<ApprovalRecord>, RegistryError> {
        self.0.approvals(v)
    }
    fn add_approval(
        &mut self,
        v: &VersionInfo,
        approver_key: &str,
        approver: &str,
        bundle: &str,
        replace: bool,
        record: Witness<'_, NewApproval>,
    ) -> Result<(), RegistryError> {
        self.0
            .add_approval(v, approver_key, approver, bundle, replace, record)
    }
    fn set_stage(
        &mut self,
        v: &VersionInfo,
        to: Stage,
        _from: &[Stage],
        actor: &str,
        reason: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError> {
        let any = [
            Stage::None,
            Stage::Staging,
            Stage::Production,
            Stage::Archived,
        ];
        self.0.set_stage(v, to, &any, actor, reason, record)
    }
    fn previous_production(&self, name: &str) -> Result<VersionInfo, RegistryError> {
        self.0.previous_production(name)
    }
    fn rollback(
        &mut self,
        name: &str,
        actor: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError> {
        self.0.rollback(name, actor, record)
    }
}

#[test]
fn a_store_that_ignores_where_a_version_may_come_from_fails_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Lax(SqliteMetadata::open(&dir.path().join("registry.db")).unwrap());
    let err = conformance::run(&mut store).unwrap_err();
    assert_eq!(err.case, "stage rule", "{err}");
}

#[test]
fn the_sqlite_store_passes_the_concurrent_cases() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let open = || -> Result<Box<dyn MetadataStore>, RegistryError> {
        Ok(Box::new(SqliteMetadata::open(&path)?))
    };
    conformance::run_concurrent(&open).unwrap();
}
