//! The dataset services that are not an ingest, called without the CLI: each verdict on the
//! record, a refusal recorded, the file named in errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};

use rampart_audit::{Auditor, MemorySink};
use rampart_crypto::age_file::Unlock;
use rampart_data::validate::ValidateOptions;
use rampart_home::{Classify, Home, Session};
use rampart_ingest::checks::{self, DriftRequest};
use rampart_ingest::open::{Dataset, Keys, open_file};

const SCHEMA: &str = "version = 1\n[[columns]]\nname = \"id\"\ntype = \"int\"\nunique = true\n[[columns]]\nname = \"score\"\ntype = \"float\"\nmin = 0\nmax = 1\n";

fn setup() -> (tempfile::TempDir, Home, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir(&root).unwrap();
    home.data_root_add(&root, &mut |_| Ok(())).unwrap();
    std::fs::write(root.join("schema.toml"), SCHEMA).unwrap();
    (dir, home, root)
}

fn open(s: &Session<'_>, path: &Path) -> Dataset {
    let none = Unlock::identities(Vec::new());
    open_file(s, path, Keys::Given(&none)).unwrap()
}

fn rows(root: &Path, name: &str, scores: impl Iterator<Item = f64>) -> PathBuf {
    let mut text = String::from("id,score\n");
    for (i, v) in scores.enumerate() {
        text.push_str(&format!("{i},{v}\n"));
    }
    let path = root.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn validate_drift_and_path_checks_record_their_verdicts() {
    let (dir, home, root) = setup();
    let policy = home.load_policy().unwrap();
    let sink = MemorySink::new();
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(Some(&sink), "tester"),
    };
    // A path inside the roots is authorised; one outside is refused, and that is recorded.
    let inside = rows(&root, "a.csv", (0..200).map(|i| f64::from(i % 10) / 10.0));
    let a = checks::check_path(&s, &inside).unwrap();
    assert_eq!(a.real, inside.canonicalize().unwrap());
    let outside = dir.path().join("elsewhere.csv");
    std::fs::write(&outside, "id,score\n").unwrap();
    assert!(checks::check_path(&s, &outside).is_err());
    // Validation: the out-of-range and malformed rows are rejected into the quarantine.
    let mixed = root.join("mixed.csv");
    std::fs::write(&mixed, "id,score\n1,0.5\n2,7\nx,0.1\n").unwrap();
    let (mut clean, mut quarantine) = (Vec::new(), Vec::new());
    let (report, digest) = checks::validate(
        &s,
        &mixed,
        open(&s, &mixed),
        &root.join("schema.toml"),
        &ValidateOptions::default(),
        Some(&mut clean),
        Some(&mut quarantine),
    )
    .unwrap();
    assert_eq!((report.accepted, report.rejected), (1, 2));
    assert!(digest.starts_with("sha256:"));
    assert_eq!(String::from_utf8(clean).unwrap(), "id,score\n1,0.5\n");
    assert_eq!(String::from_utf8(quarantine).unwrap().lines().count(), 3);
    // Drift: the same distribution does not drift; a shifted one does.
    let same = rows(&root, "b.csv", (0..200).map(|i| f64::from(i % 10) / 10.0));
    let shifted = rows(
        &root,
        "c.csv",
        (0..200).map(|i| 0.9 + f64::from(i % 2) / 20.0),
    );
    let req = DriftRequest {
        bins: "deciles".parse().unwrap(),
        threshold: 0.2,
        ignore: vec!["id".into()],
    };
    let r = checks::drift(
        &s,
        (&inside, open(&s, &inside)),
        (&same, open(&s, &same)),
        &req,
    )
    .unwrap();
    assert!(r.drifted().is_empty(), "{r:?}");
    let r = checks::drift(
        &s,
        (&inside, open(&s, &inside)),
        (&shifted, open(&s, &shifted)),
        &req,
    )
    .unwrap();
    assert_eq!(r.drifted(), ["score"]);
    let verdicts: Vec<(String, String)> = sink
        .actions()
        .into_iter()
        .filter(|(a, o)| a != "data.access" || o != "ok")
        .collect();
    let want = [
        ("data.access", "denied"),
        ("data.validate", "failed"),
        ("data.drift", "ok"),
        ("data.drift", "failed"),
    ];
    assert_eq!(
        verdicts,
        want.map(|(a, o)| (a.to_owned(), o.to_owned())).to_vec(),
        "{:?}",
        sink.actions()
    );
}

#[test]
fn a_table_that_cannot_be_read_is_named() {
    let (_dir, home, root) = setup();
    let policy = home.load_policy().unwrap();
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(None, "tester"),
    };
    let wrong = root.join("wrong.csv");
    std::fs::write(&wrong, "name,other\na,b\n").unwrap();
    let err = checks::validate(
        &s,
        &wrong,
        open(&s, &wrong),
        &root.join("schema.toml"),
        &ValidateOptions::default(),
        None,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("wrong.csv"), "{err}");
    assert!(err.hint().unwrap().contains("header"), "{err}");
    let err = checks::check(
        &s,
        &wrong,
        open(&s, &wrong),
        &root.join("schema.toml"),
        None,
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("poisoning checks"), "{err}");
}
