//! The ingest service called as a library, without the CLI: a home, a policy, an in-memory
//! audit sink.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use rampart_audit::{Auditor, MemorySink};
use rampart_crypto::age_file::Unlock;
use rampart_home::{Classify, Home, Session};
use rampart_ingest::{
    DatasetStore, IngestError, IngestOutcome, IngestRequest, RejectReason, Rejected, dataset_ref,
    ingest,
};

const SCHEMA: &str = "version = 1\n[[columns]]\nname = \"id\"\ntype = \"int\"\nunique = true\n[[columns]]\nname = \"score\"\ntype = \"float\"\nmin = 0\nmax = 1\n";
const DATA: &str = "id,score\n1,0.5\n2,0.25\n3,7\nx,0.1\n";
const CLEAN: &str = "id,score\n1,0.5\n2,0.25\n";

struct Fixture {
    _dir: tempfile::TempDir,
    home: Home,
    data: PathBuf,
    schema: PathBuf,
}

fn fixture(data: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir(&root).unwrap();
    home.data_root_add(&root, &mut |_| Ok(())).unwrap();
    let data_path = root.join("scores.csv");
    std::fs::write(&data_path, data).unwrap();
    let schema = dir.path().join("schema.toml");
    std::fs::write(&schema, SCHEMA).unwrap();
    Fixture {
        _dir: dir,
        home,
        data: data_path,
        schema,
    }
}

fn pin(f: &Fixture, path: &Path) {
    let d = rampart_ingest::path_digest(path).unwrap();
    f.home.data_pin_add(&d, &mut |_| Ok(())).unwrap();
}

fn run(f: &Fixture, sink: &MemorySink, req: &IngestRequest) -> Result<IngestOutcome, IngestError> {
    let policy = f.home.load_policy().unwrap();
    let s = Session {
        home: &f.home,
        policy: &policy,
        audit: Auditor::new(Some(sink), "tester"),
    };
    let (id, _) = f.home.age_identity().unwrap();
    ingest(&s, req, &Unlock::identities(vec![id.as_age().clone()]))
}

#[test]
fn a_pinned_dataset_is_stored_encrypted_with_a_typed_manifest_and_audited() {
    let f = fixture(DATA);
    pin(&f, &f.data);
    let sink = MemorySink::new();
    let out = run(&f, &sink, &IngestRequest::new(&f.data, &f.schema)).unwrap();
    let IngestOutcome::Stored(i) = out else {
        panic!("not stored: {out:?}")
    };
    let want = dataset_ref(&rampart_crypto::sha256(CLEAN.as_bytes()));
    assert_eq!(i.dataset(), want);
    assert_eq!((i.report.accepted, i.report.rejected), (2, 2));
    assert_eq!(i.manifest.source.integrity, "pinned");
    assert_eq!(i.manifest.counts.rows_read, 4);
    assert!(!i.committed.already_stored);
    // The manifest on disk reads back as the same typed record.
    let store = DatasetStore::of(&f.home);
    let ds = store.lookup(&want).unwrap();
    let manifests = store.manifests(&ds.digest).unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0].1.dataset, want);
    assert_eq!(manifests[0].0, i.committed.manifest);
    // Ciphertext at rest; the verified reader gives the clean rows.
    assert!(
        std::fs::read(&ds.data)
            .unwrap()
            .starts_with(b"age-encryption.org/v1")
    );
    let (id, _) = f.home.age_identity().unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(
        &mut store
            .open(&ds, &Unlock::identities(vec![id.as_age().clone()]))
            .unwrap(),
        &mut plain,
    )
    .unwrap();
    assert_eq!(plain, CLEAN);
    assert_eq!(
        sink.actions(),
        [
            ("data.access".into(), "ok".into()),
            ("data.ingest".into(), "ok".into())
        ]
    );
    // The same rows again: a second manifest, the data kept as it was.
    let again = run(&f, &sink, &IngestRequest::new(&f.data, &f.schema)).unwrap();
    let IngestOutcome::Stored(j) = again else {
        panic!()
    };
    assert!(j.committed.already_stored);
}

#[test]
fn refusals_are_typed_and_audited_before_they_are_returned() {
    let f = fixture(DATA);
    let sink = MemorySink::new();
    // Neither signed nor pinned.
    let err = run(&f, &sink, &IngestRequest::new(&f.data, &f.schema)).unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::Refused {
                rule: "integrity",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("rampart sign"));
    assert_eq!(
        sink.actions().last().unwrap(),
        &("data.ingest".to_owned(), "denied".to_owned())
    );
    // Outside the data roots.
    let outside = f.schema.with_file_name("outside.csv");
    std::fs::write(&outside, DATA).unwrap();
    let err = run(&f, &sink, &IngestRequest::new(&outside, &f.schema)).unwrap_err();
    assert!(matches!(err, IngestError::Path(_)), "{err}");
    assert!(err.hint().unwrap().contains("data roots add"));
    assert_eq!(
        sink.actions().last().unwrap(),
        &("data.access".to_owned(), "denied".to_owned())
    );
    // A bad request is refused before anything is read.
    let mut req = IngestRequest::new(&f.data, &f.schema);
    req.max_reject_rate = 2.0;
    assert!(matches!(
        run(&f, &sink, &req).unwrap_err(),
        IngestError::Request(_)
    ));
    // Nothing was stored.
    assert!(
        std::fs::read_dir(f.home.dataset_store())
            .map(|d| d.flatten().all(|e| e.file_name() == "incoming"))
            .unwrap_or(true)
    );
}

#[test]
fn too_many_rejected_rows_is_an_outcome_not_an_error_and_stores_nothing() {
    let f = fixture(DATA);
    pin(&f, &f.data);
    let sink = MemorySink::new();
    let mut req = IngestRequest::new(&f.data, &f.schema);
    req.max_reject_rate = 0.1;
    let out = run(&f, &sink, &req).unwrap();
    let IngestOutcome::Rejected(Rejected {
        report,
        schema_digest,
        reason: RejectReason::RejectRate { rate, max },
    }) = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        schema_digest,
        rampart_ingest::path_digest(&f.schema).unwrap()
    );
    assert!((rate - 0.5).abs() < 1e-9 && (max - 0.1).abs() < 1e-9);
    assert_eq!(report.rejected, 2);
    assert_eq!(
        sink.actions().last().unwrap(),
        &("data.ingest".to_owned(), "failed".to_owned())
    );
    let store = DatasetStore::of(&f.home);
    assert!(
        store
            .find(&rampart_crypto::sha256(CLEAN.as_bytes()))
            .is_none()
    );
}

#[test]
fn a_tampered_store_is_caught_when_read_and_the_access_is_denied() {
    let f = fixture(DATA);
    pin(&f, &f.data);
    let sink = MemorySink::new();
    let IngestOutcome::Stored(i) = run(&f, &sink, &IngestRequest::new(&f.data, &f.schema)).unwrap()
    else {
        panic!()
    };
    // Replace the stored rows by other rows encrypted to the same identity.
    let (id, _) = f.home.age_identity().unwrap();
    let to = rampart_crypto::age_file::Recipients::parse(&[id.recipient()]).unwrap();
    let mut forged = Vec::new();
    {
        let mut w =
            rampart_crypto::age_file::EncryptingWriter::new(&mut forged, &to, false).unwrap();
        std::io::Write::write_all(&mut w, b"id,score\n9,0.9\n").unwrap();
        w.finish().unwrap();
    }
    std::fs::write(&i.committed.data, forged).unwrap();
    let policy = f.home.load_policy().unwrap();
    let s = Session {
        home: &f.home,
        policy: &policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let mut out = Vec::new();
    let err = rampart_ingest::open::copy_stored(&s, i.dataset(), "test", &mut out).unwrap_err();
    assert!(matches!(err, IngestError::Tampered { .. }), "{err}");
    assert_eq!(err.kind(), rampart_ingest::ErrorKind::Verification);
    assert_eq!(
        sink.actions().last().unwrap(),
        &("data.access".to_owned(), "denied".to_owned())
    );
}

/// Runs `f` on a thread and fails if it has not returned within ten seconds (a hang).
fn within_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("hung for ten seconds")
}

#[test]
fn a_fifo_planted_as_the_datasets_signature_is_refused_not_waited_on() {
    let f = fixture(DATA);
    let sig = f.data.with_file_name("scores.csv.sig");
    nix::unistd::mkfifo(&sig, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let got = within_seconds(move || {
        let sink = MemorySink::new();
        run(&f, &sink, &IngestRequest::new(&f.data, &f.schema)).map(|_| ())
    });
    let err = got.unwrap_err();
    assert!(err.to_string().contains("scores.csv.sig"), "{err}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn an_oversized_signature_is_refused_naming_the_limit_not_truncated() {
    let f = fixture(DATA);
    let sig = f.data.with_file_name("scores.csv.sig");
    let file = std::fs::File::create(&sig).unwrap();
    file.set_len(rampart_crypto::dsse::MAX_BUNDLE_BYTES + 1)
        .unwrap();
    let sink = MemorySink::new();
    let err = run(&f, &sink, &IngestRequest::new(&f.data, &f.schema)).unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    assert!(err.to_string().contains("scores.csv.sig"), "{err}");
}

#[test]
fn store_references_are_digests_and_swapped_or_special_store_files_are_caught() {
    let f = fixture(DATA);
    pin(&f, &f.data);
    let sink = MemorySink::new();
    let IngestOutcome::Stored(a) = run(&f, &sink, &IngestRequest::new(&f.data, &f.schema)).unwrap()
    else {
        panic!()
    };
    let store = DatasetStore::of(&f.home);
    // A reference is sha256: and 64 hex digits, nothing a path could be made of.
    for bad in [
        "sha256:../../etc/passwd",
        "sha256:",
        "../x",
        &format!("{}/", a.dataset()),
        &a.dataset().to_uppercase(),
    ] {
        assert!(
            matches!(store.lookup(bad), Err(IngestError::Request(_))),
            "{bad}"
        );
    }
    // A second dataset, then the first one's stored file made a link to the second's: a valid
    // age file encrypted to the same identity, but not the content its address names.
    let other = f.data.with_file_name("other.csv");
    std::fs::write(&other, "id,score\n7,0.7\n").unwrap();
    pin(&f, &other);
    let IngestOutcome::Stored(b) = run(&f, &sink, &IngestRequest::new(&other, &f.schema)).unwrap()
    else {
        panic!()
    };
    std::fs::remove_file(&a.committed.data).unwrap();
    std::os::unix::fs::symlink(&b.committed.data, &a.committed.data).unwrap();
    let policy = f.home.load_policy().unwrap();
    let s = Session {
        home: &f.home,
        policy: &policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    let err = rampart_ingest::open::copy_stored(&s, a.dataset(), "test", &mut std::io::sink())
        .unwrap_err();
    assert!(matches!(err, IngestError::Tampered { .. }), "{err}");
    // A FIFO in its place is not a stored dataset (and is never opened, so nothing waits).
    std::fs::remove_file(&a.committed.data).unwrap();
    nix::unistd::mkfifo(
        &a.committed.data,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let reference = a.dataset().to_owned();
    let home = f.home.clone();
    let got = within_seconds(move || DatasetStore::of(&home).lookup(&reference).map(|_| ()));
    assert!(matches!(got, Err(IngestError::Request(_))));
    // A truncated ciphertext never reads as a dataset.
    let bytes = std::fs::read(&b.committed.data).unwrap();
    std::fs::write(&b.committed.data, &bytes[..bytes.len() / 2]).unwrap();
    let err = rampart_ingest::open::copy_stored(&s, b.dataset(), "test", &mut std::io::sink())
        .unwrap_err();
    assert!(
        matches!(err, IngestError::Read { .. } | IngestError::Age { .. }),
        "{err}"
    );
}
