//! The registry's metadata behind a trait: models, versions, stages and their history,
//! approvals. [`crate::SqliteMetadata`] is the local store; a shared database (PostgreSQL) can
//! take its place without touching the services, and [`conformance::run`] is what it must
//! pass. The rules (which stage a version may come from, gates, who may approve) stay with the
//! callers; a store only makes each change atomically and refuses it when the version is no
//! longer where the caller found it.

use crate::{
    ApprovalRecord, HistoryEntry, NewApproval, NewVersion, Registration, RegistryError, Stage,
    StageChange, Transition, VersionInfo, Witness,
};

/// Where the registry's metadata lives. Every change calls its witness inside its
/// transaction, just before the commit; a witness error rolls the change back
/// ([`RegistryError::Unrecorded`]).
pub trait MetadataStore: Send + std::fmt::Debug {
    /// Stores a new version of `name` (creating the model) as the next number, in stage
    /// `none`. The name is already checked and the blobs already stored.
    ///
    /// # Errors
    /// The store's errors; the witness's.
    fn insert_version(
        &mut self,
        name: &str,
        v: &NewVersion,
        actor: &str,
        reason: &str,
        record: Witness<'_, Registration>,
    ) -> Result<VersionInfo, RegistryError>;

    /// Resolves `NAME`, `NAME@N`, `NAME@staging`, `NAME@production`.
    ///
    /// # Errors
    /// [`RegistryError::BadReference`], [`RegistryError::NotFound`].
    fn resolve(&self, reference: &str) -> Result<VersionInfo, RegistryError>;

    /// Every version of a model, oldest first.
    ///
    /// # Errors
    /// The store's errors; [`RegistryError::NotFound`].
    fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError>;

    /// Model names, sorted.
    ///
    /// # Errors
    /// The store's errors.
    fn names(&self) -> Result<Vec<String>, RegistryError>;

    /// The stage history of a model, oldest first.
    ///
    /// # Errors
    /// The store's errors.
    fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, RegistryError>;

    /// The approvals recorded for a version.
    ///
    /// # Errors
    /// The store's errors.
    fn approvals(&self, v: &VersionInfo) -> Result<Vec<ApprovalRecord>, RegistryError>;

    /// Records an approval (already verified by the caller); with `replace`, one recorded
    /// under this key is overwritten.
    ///
    /// # Errors
    /// [`RegistryError::Conflict`] when this key already approved this version (without
    /// `replace`); the witness's.
    #[allow(clippy::too_many_arguments)]
    fn add_approval(
        &mut self,
        v: &VersionInfo,
        approver_key: &str,
        approver: &str,
        bundle: &str,
        replace: bool,
        record: Witness<'_, NewApproval>,
    ) -> Result<(), RegistryError>;

    /// Moves a version to `to` if it is still in one of `from`; the version holding `to`
    /// before moves to `archived` (production) or `none` (staging).
    ///
    /// # Errors
    /// [`RegistryError::Conflict`] when the version is not in one of `from`; the witness's.
    #[allow(clippy::too_many_arguments)]
    fn set_stage(
        &mut self,
        v: &VersionInfo,
        to: Stage,
        from: &[Stage],
        actor: &str,
        reason: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError>;

    /// The version in production before the current one: the last displaced from production
    /// that is still archived.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] when there is none.
    fn previous_production(&self, name: &str) -> Result<VersionInfo, RegistryError>;

    /// Puts the previous production version back, atomically; the current one is archived.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] with no production or no earlier one; the witness's.
    fn rollback(
        &mut self,
        name: &str,
        actor: &str,
        record: Witness<'_, StageChange>,
    ) -> Result<Transition, RegistryError>;
}

/// What every [`MetadataStore`] must do.
pub mod conformance {
    use rampart_audit::NotRecorded;
    use rampart_crypto::sha256;

    use super::MetadataStore;
    use crate::{FileEntry, NewVersion, RegistryError, Stage};

    pub use rampart_audit::conformance::Failure;

    fn fail(case: &'static str, detail: impl Into<String>) -> Failure {
        Failure::new(case, detail)
    }

    fn version(n: u8) -> NewVersion {
        let d = sha256(&[n]);
        NewVersion {
            content: crate::VersionContent {
                root: d,
                files: vec![FileEntry {
                    name: "model.safetensors".into(),
                    sha256: d,
                    size: 1,
                }],
                signature: sha256(&[n, 1]),
                signer: "sha256:signer".into(),
                signer_identity: None,
                provenance: None,
                scan: serde_json::json!({"flagged": false}),
                metrics: Some(serde_json::json!({"accuracy": 0.9})),
                input_schema: None,
                lineage: Vec::new(),
                created_by: "conformance".into(),
                registrant_key: "sha256:registrant".into(),
            },
            source: format!("v{n}"),
        }
    }

    /// Moves `v` to `to` from one of `from`, with a witness that records.
    fn move_to(
        store: &mut dyn MetadataStore,
        v: &crate::VersionInfo,
        to: Stage,
        from: &[Stage],
    ) -> Result<crate::Transition, RegistryError> {
        store.set_stage(v, to, from, "bob", "promote", &mut |_| Ok(()))
    }

    fn refuse<T>(_: &T) -> Result<(), NotRecorded> {
        Err(NotRecorded("audit log full".into()))
    }

    /// Runs every case against an empty store.
    ///
    /// # Errors
    /// The first case the store fails.
    #[allow(clippy::too_many_lines)]
    pub fn run(store: &mut dyn MetadataStore) -> Result<(), Failure> {
        let e = |case: &'static str| move |err: RegistryError| fail(case, err.to_string());
        // Versions are numbered from 1 per model, in order, and read back as stored.
        let mut seen = Vec::new();
        let v1 = store
            .insert_version("m", &version(1), "alice", "register", &mut |r| {
                seen.push(r.version);
                Ok(())
            })
            .map_err(e("insert"))?;
        let v2 = store
            .insert_version("m", &version(2), "alice", "register", &mut |_| Ok(()))
            .map_err(e("insert"))?;
        if (v1.version, v2.version) != (1, 2) || seen != [1] {
            return Err(fail(
                "numbering",
                format!(
                    "versions {} and {}, witness saw {seen:?}",
                    v1.version, v2.version
                ),
            ));
        }
        // The content reads back whole, as stored.
        if v1.content != version(1).content || v1.stage != Stage::None || v1.name != "m" {
            return Err(fail("read back", format!("{v1:?}")));
        }
        // A registration its witness refuses is not made.
        match store.insert_version("m", &version(3), "alice", "register", &mut refuse) {
            Err(RegistryError::Unrecorded(_)) => {}
            other => return Err(fail("unrecorded insert", format!("{other:?}"))),
        }
        if store.versions("m").map_err(e("versions"))?.len() != 2 {
            return Err(fail("unrecorded insert", "the refused version was stored"));
        }
        // References.
        if store.resolve("m@2").map_err(e("resolve"))?.version != 2 {
            return Err(fail("resolve", "m@2"));
        }
        match store.resolve("m@production") {
            Err(RegistryError::NotFound(_)) => {}
            other => return Err(fail("resolve", format!("m@production: {other:?}"))),
        }
        match store.resolve("nope@1") {
            Err(RegistryError::NotFound(_)) => {}
            other => return Err(fail("resolve", format!("nope@1: {other:?}"))),
        }
        if store.names().map_err(e("names"))? != ["m"] {
            return Err(fail("names", "not [\"m\"]"));
        }
        // Stage changes: only from the stages the caller allows; the holder is displaced.
        let staging = [Stage::None, Stage::Archived];
        move_to(store, &v1, Stage::Staging, &staging).map_err(e("stage"))?;
        match move_to(store, &v2, Stage::Production, &[Stage::Staging]) {
            Err(RegistryError::Conflict(_)) => {}
            other => return Err(fail("stage rule", format!("{other:?}"))),
        }
        let v1 = store.resolve("m@1").map_err(e("resolve"))?;
        move_to(store, &v1, Stage::Production, &[Stage::Staging]).map_err(e("stage"))?;
        // A stale version record (it moved since it was read) is refused.
        match move_to(store, &v1, Stage::Production, &[Stage::Staging]) {
            Err(RegistryError::Conflict(_)) => {}
            other => return Err(fail("stale", format!("{other:?}"))),
        }
        let v2 = store.resolve("m@2").map_err(e("resolve"))?;
        move_to(store, &v2, Stage::Staging, &staging).map_err(e("stage"))?;
        // A stage change its witness refuses is not made.
        let v2 = store.resolve("m@2").map_err(e("resolve"))?;
        match store.set_stage(
            &v2,
            Stage::Production,
            &[Stage::Staging],
            "bob",
            "promote",
            &mut refuse,
        ) {
            Err(RegistryError::Unrecorded(_)) => {}
            other => return Err(fail("unrecorded stage", format!("{other:?}"))),
        }
        if store.resolve("m@production").map_err(e("resolve"))?.version != 1 {
            return Err(fail("unrecorded stage", "production moved"));
        }
        let t = move_to(store, &v2, Stage::Production, &[Stage::Staging]).map_err(e("stage"))?;
        if t.displaced != Some(1)
            || store.resolve("m@1").map_err(e("resolve"))?.stage != Stage::Archived
        {
            return Err(fail("displace", format!("{t:?}")));
        }
        // History, oldest first.
        let h = store.history("m").map_err(e("history"))?;
        let moves: Vec<(i64, Stage)> = h.iter().map(|x| (x.version, x.to)).collect();
        if !moves.ends_with(&[(1, Stage::Archived), (2, Stage::Production)])
            && !moves.ends_with(&[(2, Stage::Production), (1, Stage::Archived)])
        {
            return Err(fail("history", format!("{moves:?}")));
        }
        // Approvals: one per key; replace overwrites; a refused one is not stored.
        let v2 = store.resolve("m@2").map_err(e("resolve"))?;
        store
            .add_approval(&v2, "k1", "carol", "{}", false, &mut |_| Ok(()))
            .map_err(e("approve"))?;
        match store.add_approval(&v2, "k1", "carol", "{}", false, &mut |_| Ok(())) {
            Err(RegistryError::Conflict(_)) => {}
            other => return Err(fail("approve twice", format!("{other:?}"))),
        }
        store
            .add_approval(&v2, "k1", "carol", "{\"new\":1}", true, &mut |_| Ok(()))
            .map_err(e("approve replace"))?;
        if store
            .add_approval(&v2, "k2", "dave", "{}", false, &mut refuse)
            .is_ok()
        {
            return Err(fail("unrecorded approval", "accepted"));
        }
        let a = store.approvals(&v2).map_err(e("approvals"))?;
        if a.len() != 1 || a.first().is_none_or(|r| r.bundle != "{\"new\":1}") {
            return Err(fail("approvals", format!("{a:?}")));
        }
        // Rollback: the previous production version comes back, the current is archived.
        if store
            .previous_production("m")
            .map_err(e("previous"))?
            .version
            != 1
        {
            return Err(fail("previous", "not m@1"));
        }
        match store.rollback("m", "erin", &mut refuse) {
            Err(RegistryError::Unrecorded(_)) => {}
            other => return Err(fail("unrecorded rollback", format!("{other:?}"))),
        }
        let t = store
            .rollback("m", "erin", &mut |_| Ok(()))
            .map_err(e("rollback"))?;
        if (t.version, t.displaced) != (1, Some(2))
            || store.resolve("m@production").map_err(e("resolve"))?.version != 1
            || store.resolve("m@2").map_err(e("resolve"))?.stage != Stage::Archived
        {
            return Err(fail("rollback", format!("{t:?}")));
        }
        Ok(())
    }

    /// Opens another handle on the same store (another process or machine's connection).
    pub type Open<'a> = &'a (dyn Fn() -> Result<Box<dyn MetadataStore>, RegistryError> + Sync);

    /// Runs the cases that need several writers at once against an empty store, each writer
    /// its own handle from `open`: registrations racing from `WRITERS` handles get distinct
    /// consecutive numbers; of promotions of one staging version racing from every handle,
    /// exactly one wins and the others are told why.
    ///
    /// # Errors
    /// The first case the store fails.
    pub fn run_concurrent(open: Open<'_>) -> Result<(), Failure> {
        const WRITERS: usize = 4;
        const EACH: usize = 5;
        let e = |case: &'static str| move |err: RegistryError| fail(case, err.to_string());
        let numbers = std::thread::scope(|s| {
            let handles: Vec<_> = (0..WRITERS)
                .map(|w| {
                    s.spawn(move || -> Result<Vec<i64>, RegistryError> {
                        let mut store = open()?;
                        let mut got = Vec::new();
                        for i in 0..EACH {
                            let n = u8::try_from(w * EACH + i).unwrap_or(u8::MAX);
                            let v = store.insert_version(
                                "race",
                                &version(n),
                                "alice",
                                "register",
                                &mut |_| Ok(()),
                            )?;
                            got.push(v.version);
                        }
                        Ok(got)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(RegistryError::Db("a writer panicked".into())))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(e("concurrent insert"))?;
        let mut all: Vec<i64> = numbers.into_iter().flatten().collect();
        all.sort_unstable();
        let want: Vec<i64> = (1..=i64::try_from(WRITERS * EACH).unwrap_or(i64::MAX)).collect();
        if all != want {
            return Err(fail("concurrent numbering", format!("{all:?}")));
        }
        let mut store = open().map_err(e("open"))?;
        let v = store.resolve("race@1").map_err(e("resolve"))?;
        move_to(store.as_mut(), &v, Stage::Staging, &[Stage::None]).map_err(e("stage"))?;
        let v = store.resolve("race@1").map_err(e("resolve"))?;
        let results = std::thread::scope(|s| {
            let handles: Vec<_> = (0..WRITERS)
                .map(|_| {
                    let v = v.clone();
                    s.spawn(move || -> Result<crate::Transition, RegistryError> {
                        let mut store = open()?;
                        move_to(store.as_mut(), &v, Stage::Production, &[Stage::Staging])
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(RegistryError::Db("a writer panicked".into())))
                })
                .collect::<Vec<_>>()
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        let told = results
            .iter()
            .filter(|r| matches!(r, Err(RegistryError::Conflict(m)) if m.contains("already in production")))
            .count();
        if won != 1 || told != WRITERS - 1 {
            return Err(fail("racing promotions", format!("{results:?}")));
        }
        let moves = store
            .history("race")
            .map_err(e("history"))?
            .iter()
            .filter(|h| h.to == Stage::Production)
            .count();
        if moves != 1 {
            return Err(fail(
                "racing promotions",
                format!("{moves} moves to production recorded"),
            ));
        }
        Ok(())
    }
}
