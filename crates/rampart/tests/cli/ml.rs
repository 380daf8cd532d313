//! `rampart ml privacy | train | eval | predict`: JSON keys as the issue names them, the
//! predict CSV layout, determinism, audit records, and bad input is exit 2 naming what is wrong.

use crate::Scratch;

#[test]
fn privacy_reports_epsilon_or_noise() {
    let s = Scratch::new();
    let v = s.json(&[
        "ml",
        "privacy",
        "--sample-rate",
        "0.01",
        "--noise",
        "1.1",
        "--steps",
        "10000",
        "--delta",
        "1e-5",
    ]);
    let eps = v["epsilon"].as_f64().unwrap();
    assert!(eps > 5.0 && eps < 6.5, "{v}");
    assert!(v["order"].as_f64().unwrap() > 1.0);
    let v = s.json(&[
        "ml",
        "privacy",
        "--sample-rate",
        "0.01",
        "--target-epsilon",
        "1",
        "--steps",
        "10000",
        "--delta",
        "1e-5",
    ]);
    let sigma = v["noise"].as_f64().unwrap();
    assert!(v["epsilon"].as_f64().unwrap() <= 1.0 && sigma > 1.1, "{v}");
    // Round trip: the noise found gives back the target.
    let back = s.json(&[
        "ml",
        "privacy",
        "--sample-rate",
        "0.01",
        "--noise",
        &sigma.to_string(),
        "--steps",
        "10000",
        "--delta",
        "1e-5",
    ]);
    assert!(
        (back["epsilon"].as_f64().unwrap() - 1.0).abs() < 1e-3,
        "{back}"
    );
    for bad in [["--sample-rate", "1.5"], ["--delta", "0"]] {
        let mut args = vec![
            "ml",
            "privacy",
            "--sample-rate",
            "0.01",
            "--noise",
            "1",
            "--steps",
            "10",
            "--delta",
            "1e-5",
        ];
        let i = args.iter().position(|a| *a == bad[0]).unwrap();
        args[i + 1] = bad[1];
        let (code, _, err) = s.run(&args);
        assert_eq!(code, 2, "{err}");
    }
    let (code, _, _) = s.run(&[
        "ml",
        "privacy",
        "--sample-rate",
        "0.01",
        "--steps",
        "10",
        "--delta",
        "1e-5",
    ]);
    assert_eq!(code, 2);
}

/// Three well-separated classes with text labels, plus an id column to ignore.
fn write_blobs(s: &Scratch, name: &str, n: usize, seed: u64) {
    let mut rng = rampart_ml::split::SplitMix64::new(seed);
    let mut text = String::from("id,x,y,z,animal\n");
    for i in 0..n {
        let (c, label) = [(0.0, "cat"), (4.0, "dog"), (8.0, "bird")][i % 3];
        text.push_str(&format!(
            "row{i},{},{},{},{label}\n",
            c + rng.normal(),
            -c + rng.normal(),
            rng.normal()
        ));
    }
    std::fs::write(s.path().join(name), text).unwrap();
}

#[test]
fn train_eval_predict_random_forest() {
    let s = Scratch::init();
    write_blobs(&s, "train.csv", 600, 1);
    write_blobs(&s, "test.csv", 150, 2);
    let train = |out: &str| {
        s.json(&[
            "ml",
            "train",
            "--data",
            "train.csv",
            "--label",
            "animal",
            "--ignore",
            "id",
            "--model",
            "random-forest",
            "--trees",
            "20",
            "--seed",
            "5",
            "-o",
            out,
        ])
    };
    let v = train("rf.safetensors");
    assert_eq!(v["kind"], "random-forest");
    assert_eq!(v["features"], serde_json::json!(["x", "y", "z"]));
    // Numeric-looking labels sort numerically, text labels as text.
    assert_eq!(v["classes"], serde_json::json!(["bird", "cat", "dog"]));
    assert!(v["data_digest"].as_str().unwrap().starts_with("sha256:"));
    // Same data, options and seed → the same bytes.
    train("again.safetensors");
    assert_eq!(
        std::fs::read(s.path().join("rf.safetensors")).unwrap(),
        std::fs::read(s.path().join("again.safetensors")).unwrap()
    );
    let e = s.json(&[
        "ml",
        "eval",
        "--model",
        "rf.safetensors",
        "--data",
        "test.csv",
        "--label",
        "animal",
    ]);
    for key in ["accuracy", "roc_auc", "f1_macro", "log_loss"] {
        assert!(e[key].as_f64().is_some(), "{key} missing: {e}");
    }
    assert!(e["accuracy"].as_f64().unwrap() > 0.95, "{e}");
    let cm = e["confusion_matrix"].as_array().unwrap();
    assert_eq!(cm.len(), 3);
    let total: u64 = cm
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(total, 150);
    s.rampart(&[
        "ml",
        "predict",
        "--model",
        "rf.safetensors",
        "--data",
        "test.csv",
        "-o",
        "out.csv",
    ])
    .assert()
    .success();
    let out = std::fs::read_to_string(s.path().join("out.csv")).unwrap();
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,x,y,z,animal,prediction,proba_bird,proba_cat,proba_dog"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 150);
    let right = rows.iter().filter(|r| r[4] == r[5]).count();
    assert!(right > 140, "{right}");
    for r in &rows {
        let p: f64 = r[6..].iter().map(|v| v.parse::<f64>().unwrap()).sum();
        assert!((p - 1.0).abs() < 1e-6, "{r:?}");
    }
    // Every training run, evaluation and prediction is in the audit log.
    let log = std::fs::read_to_string(s.home().join("audit/audit.jsonl")).unwrap();
    for action in ["\"ml.train\"", "\"ml.eval\"", "\"ml.predict\""] {
        assert!(log.contains(action), "{action} not audited");
    }
    s.rampart(&["audit", "verify"]).assert().success();
}

#[test]
fn isolation_forest_and_dp_logistic_through_the_cli() {
    let s = Scratch::init();
    let mut rng = rampart_ml::split::SplitMix64::new(9);
    let mut text = String::from("a,b,outlier\n");
    for i in 0..1000 {
        let out = i % 50 == 0;
        let shift = if out { 6.0 } else { 0.0 };
        text.push_str(&format!(
            "{},{},{}\n",
            rng.normal() + shift,
            rng.normal() - shift,
            u8::from(out)
        ));
    }
    std::fs::write(s.path().join("d.csv"), text).unwrap();
    let v = s.json(&[
        "ml",
        "train",
        "--data",
        "d.csv",
        "--label",
        "outlier",
        "--model",
        "isolation-forest",
        "--contamination",
        "0.02",
        "-o",
        "if.safetensors",
    ]);
    assert_eq!(
        v["features"],
        serde_json::json!(["a", "b"]),
        "label left out: {v}"
    );
    let e = s.json(&[
        "ml",
        "eval",
        "--model",
        "if.safetensors",
        "--data",
        "d.csv",
        "--label",
        "outlier",
    ]);
    assert!(e["roc_auc"].as_f64().unwrap() > 0.99, "{e}");
    let (code, out, _) = s.run(&[
        "ml",
        "predict",
        "--model",
        "if.safetensors",
        "--data",
        "d.csv",
        "-o",
        "-",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("a,b,outlier,anomaly_score,is_anomaly\n"),
        "{out}"
    );
    let flagged = out.lines().filter(|l| l.ends_with(",true")).count();
    assert!((15..=25).contains(&flagged), "{flagged}");

    let v = s.json(&[
        "ml",
        "train",
        "--data",
        "d.csv",
        "--label",
        "outlier",
        "--model",
        "logistic",
        "--dp-epsilon",
        "1",
        "--dp-delta",
        "1e-5",
        "-o",
        "lr.safetensors",
    ]);
    let p = &v["privacy"];
    assert!(p["epsilon"].as_f64().unwrap() <= 1.0, "{v}");
    assert!(p["noise"].as_f64().unwrap() > 0.5);
    assert_eq!(p["scaling"], "data-min-max");
    // DP is for logistic regression only.
    let (code, _, err) = s.run(&[
        "ml",
        "train",
        "--data",
        "d.csv",
        "--label",
        "outlier",
        "--model",
        "random-forest",
        "--dp-epsilon",
        "1",
        "--dp-delta",
        "1e-5",
        "-o",
        "x.safetensors",
    ]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn bad_data_and_bad_models_are_exit_2_with_the_place_named() {
    let s = Scratch::init();
    std::fs::write(s.path().join("bad.csv"), "x,y,label\n1,2,a\n3,oops,b\n").unwrap();
    let (code, _, err) = s.run(&[
        "ml",
        "train",
        "--data",
        "bad.csv",
        "--label",
        "label",
        "--model",
        "random-forest",
        "-o",
        "m.safetensors",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("line 3") && err.contains("`y`") && err.contains("oops"),
        "{err}"
    );
    assert!(err.contains("--ignore y"), "{err}");
    std::fs::write(s.path().join("nan.csv"), "x,label\n1,a\nNaN,b\n").unwrap();
    let (code, _, err) = s.run(&[
        "ml",
        "train",
        "--data",
        "nan.csv",
        "--label",
        "label",
        "--model",
        "logistic",
        "-o",
        "m.safetensors",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("not a finite number"), "{err}");
    let (code, _, err) = s.run(&[
        "ml",
        "train",
        "--data",
        "bad.csv",
        "--label",
        "nope",
        "--model",
        "random-forest",
        "-o",
        "m.safetensors",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no column `nope`") && err.contains("x, y, label"),
        "{err}"
    );
    std::fs::write(s.path().join("ragged.csv"), "x,label\n1,a\n2\n").unwrap();
    let (code, _, err) = s.run(&[
        "ml",
        "train",
        "--data",
        "ragged.csv",
        "--label",
        "label",
        "--model",
        "random-forest",
        "-o",
        "m.safetensors",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        !s.path().join("m.safetensors").exists(),
        "nothing written on failure"
    );

    // A model file that is not one, or was tampered with.
    write_blobs(&s, "t.csv", 60, 3);
    s.json(&[
        "ml",
        "train",
        "--data",
        "t.csv",
        "--label",
        "animal",
        "--ignore",
        "id",
        "--model",
        "random-forest",
        "--trees",
        "3",
        "-o",
        "m.safetensors",
    ]);
    let mut bytes = std::fs::read(s.path().join("m.safetensors")).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    // The metadata is a JSON string inside the JSON header, so its quotes are escaped.
    let at = text.find(r#"format_version\":1"#).unwrap() + r#"format_version\":"#.len();
    bytes[at] = b'7';
    std::fs::write(s.path().join("tampered.safetensors"), &bytes).unwrap();
    std::fs::write(s.path().join("junk.safetensors"), b"not a model").unwrap();
    for model in ["tampered.safetensors", "junk.safetensors"] {
        let (code, _, err) = s.run(&[
            "ml", "eval", "--model", model, "--data", "t.csv", "--label", "animal",
        ]);
        assert_eq!(code, 2, "{model}: {err}");
        assert!(
            err.contains("invalid model") && err.contains(model),
            "{err}"
        );
    }
    // Labels the model does not know.
    std::fs::write(s.path().join("new.csv"), "id,x,y,z,animal\nr,1,2,3,fox\n").unwrap();
    let (code, _, err) = s.run(&[
        "ml",
        "eval",
        "--model",
        "m.safetensors",
        "--data",
        "new.csv",
        "--label",
        "animal",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`fox`") && err.contains("bird, cat, dog"),
        "{err}"
    );
    // Missing feature columns.
    std::fs::write(s.path().join("few.csv"), "x,y\n1,2\n").unwrap();
    let (code, _, err) = s.run(&[
        "ml",
        "predict",
        "--model",
        "m.safetensors",
        "--data",
        "few.csv",
        "-o",
        "p.csv",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no column `z`"), "{err}");
}
