//! The built-in models as a library: train on the host, evaluate and predict, each on the
//! audit record, without the CLI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rampart_audit::{Auditor, MemorySink};
use rampart_home::{Classify, Home, Session};
use rampart_ml::hyper::{Hyper, Kind};
use rampart_train::builtin::{self, BuiltinError, FitRequest};

struct Fixture {
    dir: tempfile::TempDir,
    home: Home,
    data: PathBuf,
}

/// Two separable classes on two features, with an id column the model ignores.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    home.init().unwrap();
    let mut csv = String::from("id,x,y,label\n");
    for i in 0..80 {
        let (x, y, label) = if i % 2 == 0 {
            (f64::from(i % 7), f64::from(i % 5), "low")
        } else {
            (20.0 + f64::from(i % 7), 30.0 + f64::from(i % 5), "high")
        };
        writeln!(csv, "{i},{x},{y},{label}").unwrap();
    }
    let data = dir.path().join("rows.csv");
    std::fs::write(&data, csv).unwrap();
    Fixture { dir, home, data }
}

fn with_session<T>(f: &Fixture, sink: &MemorySink, body: impl FnOnce(&Session<'_>) -> T) -> T {
    let policy = f.home.load_policy().unwrap();
    let s = Session {
        home: &f.home,
        policy: &policy,
        audit: Auditor::new(Some(sink), "tester"),
    };
    body(&s)
}

fn train(f: &Fixture, s: &Session<'_>) -> PathBuf {
    let out = f.dir.path().join("model.rpm");
    let ignore = vec!["id".to_owned()];
    let hyper = Hyper {
        trees: Some(10),
        ..Hyper::default()
    };
    let req = FitRequest {
        data: &f.data,
        kind: Kind::RandomForest,
        label: Some("label"),
        ignore: &ignore,
        hyper: &hyper,
        holdout: 0.0,
    };
    builtin::train_here(
        s,
        &req,
        builtin::open_table(s, &f.data, "ml").unwrap(),
        &out,
    )
    .unwrap();
    out
}

#[test]
fn train_evaluate_and_predict_are_each_on_record() {
    let f = fixture();
    let sink = MemorySink::new();
    with_session(&f, &sink, |s| {
        let model = train(&f, s);
        let e = builtin::evaluate(s, &model, &f.data, "label", "anomaly").unwrap();
        assert_eq!(e.rows, 80);
        assert!(e.evaluation.accuracy > 0.95, "{e:?}");
        assert_eq!(e.evaluation.classes, ["high", "low"]);
        let mut out = Vec::new();
        let p = builtin::predict(s, &model, &f.data, &mut out).unwrap();
        assert_eq!(
            (p.rows, p.data_digest.as_str()),
            (80, e.data_digest.as_str())
        );
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("id,x,y,label,prediction,proba_high,proba_low")
        );
        let first: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(first[..5], ["0", "0", "0", "low", "low"]);
        assert_eq!(text.lines().count(), 81);
    });
    let actions: Vec<String> = sink.actions().into_iter().map(|(a, _)| a).collect();
    assert_eq!(actions, ["ml.train", "ml.eval", "ml.predict"]);
    let eval = &sink.records()[1];
    assert!(eval.details["accuracy"].as_f64().unwrap() > 0.95);
    assert_eq!(
        eval.details["data_digest"],
        sink.records()[2].details["data_digest"]
    );
}

#[test]
fn a_column_the_output_would_add_is_refused_before_anything_is_written() {
    let f = fixture();
    let sink = MemorySink::new();
    with_session(&f, &sink, |s| {
        let model = train(&f, s);
        let clash = f.dir.path().join("clash.csv");
        let text = std::fs::read_to_string(&f.data).unwrap();
        let with_prediction: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("{l},prediction\n")
                } else {
                    format!("{l},x\n")
                }
            })
            .collect();
        std::fs::write(&clash, with_prediction).unwrap();
        let mut out = Vec::new();
        let err = builtin::predict(s, &model, &clash, &mut out).unwrap_err();
        assert!(
            matches!(&err, BuiltinError::Request { message, .. } if message.contains("`prediction`")),
            "{err}"
        );
        assert!(out.is_empty());
    });
    assert_eq!(sink.actions().last().unwrap().0, "ml.train");
}

#[test]
fn what_is_not_a_model_or_not_a_table_is_named_and_not_recorded() {
    let f = fixture();
    let sink = MemorySink::new();
    with_session(&f, &sink, |s| {
        // A CSV file is not a model.
        let err = builtin::evaluate(s, &f.data, &f.data, "label", "anomaly").unwrap_err();
        assert!(matches!(err, BuiltinError::Model { .. }), "{err}");
        assert_eq!(err.kind(), rampart_ingest::ErrorKind::Input);
        assert!(err.hint().unwrap().contains("rampart ml train"));
        // A FIFO is never read.
        let fifo = f.dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = builtin::evaluate(s, &fifo, &f.data, "label", "anomaly").unwrap_err();
        assert!(matches!(err, BuiltinError::Home(_)), "{err}");
        // A dataset reference the store does not hold.
        let model = train(&f, s);
        let missing = format!("sha256:{}", "0".repeat(64));
        let err =
            builtin::evaluate(s, &model, Path::new(&missing), "label", "anomaly").unwrap_err();
        assert!(matches!(err, BuiltinError::Ingest(_)), "{err}");
        assert_eq!(err.kind(), rampart_ingest::ErrorKind::Input);
        // A missing file names the file.
        let err = builtin::predict(s, &model, Path::new("/nonexistent.csv"), &mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent.csv"), "{err}");
    });
    assert_eq!(sink.actions(), [("ml.train".into(), "ok".into())]);
}
