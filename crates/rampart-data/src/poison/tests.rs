#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use super::*;
use crate::csv::ReaderOptions;
use crate::frame::{DEFAULT_NULLS, FrameLimits};

/// SplitMix64 and Box–Muller: a seeded, dependency-free normal generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

type Row = (Vec<f64>, &'static str, &'static str);

/// Four normal features, a region drawn from five, label yes when f1 + f2 > 0.
fn clean_rows(seed: u64, n: usize) -> Vec<Row> {
    let mut rng = Rng(seed);
    let regions = ["north", "south", "east", "west", "centre"];
    (0..n)
        .map(|_| {
            let f: Vec<f64> = (0..4).map(|_| rng.normal()).collect();
            let region = regions[(rng.next() % 5) as usize];
            let label = if f[0] + f[1] > 0.0 { "yes" } else { "no" };
            (f, region, label)
        })
        .collect()
}

fn frame(rows: &[Row]) -> Frame {
    let mut s = String::from("id,f1,f2,f3,f4,region,label\n");
    for (i, (f, region, label)) in rows.iter().enumerate() {
        s.push_str(&format!(
            "{i},{:.6},{:.6},{:.6},{:.6},{region},{label}\n",
            f[0], f[1], f[2], f[3]
        ));
    }
    Frame::read_csv(
        s.as_bytes(),
        DEFAULT_NULLS,
        ReaderOptions::default(),
        FrameLimits::default(),
    )
    .unwrap()
}

fn cols() -> Columns {
    Columns {
        label: "label".into(),
        numeric: ["f1", "f2", "f3", "f4"].map(String::from).to_vec(),
        categorical: vec!["region".into()],
    }
}

fn severity(report: &PoisonReport, id: &str) -> Severity {
    report.checks.iter().find(|c| c.id == id).unwrap().severity
}

fn run(current: &[Row], reference: Option<&[Row]>) -> PoisonReport {
    let r = reference.map(frame);
    check(&frame(current), r.as_ref(), &cols()).unwrap()
}

#[test]
fn clean_data_passes() {
    let reference = clean_rows(1, 3000);
    let report = run(&clean_rows(2, 3000), Some(&reference));
    for c in &report.checks {
        assert!(
            c.severity <= Severity::Low,
            "{}: {:?} {}",
            c.id,
            c.severity,
            c.summary
        );
    }
    assert_eq!(report.checks.len(), CHECKS.len());
    let ids: Vec<&str> = report.checks.iter().map(|c| c.id).collect();
    assert_eq!(ids, CHECKS);
    // Without a reference, the reference checks say they were skipped.
    let alone = run(&clean_rows(2, 3000), None);
    assert!(alone.worst() <= Severity::Low);
    assert!(alone.checks[0].summary.starts_with("skipped"));
}

#[test]
fn flipped_labels_are_caught() {
    let reference = clean_rows(1, 3000);
    let mut current = clean_rows(2, 3000);
    for (i, row) in current.iter_mut().enumerate() {
        if row.2 == "yes" && i % 10 < 4 {
            row.2 = "no";
        }
    }
    let report = run(&current, Some(&reference));
    assert_eq!(severity(&report, "label-distribution"), Severity::High);
    assert_eq!(severity(&report, "class-conditional-shift"), Severity::High);
    assert_eq!(
        severity(&report, "feature-shift"),
        Severity::Pass,
        "features did not move"
    );
}

#[test]
fn planted_trigger_is_caught() {
    let mut current = clean_rows(2, 3000);
    let mut rng = Rng(9);
    for _ in 0..40 {
        let f = vec![rng.normal() - 1.0, rng.normal() - 1.0, rng.normal(), 7.777];
        current.push((f, "north", "yes"));
    }
    let report = run(&current, Some(&clean_rows(1, 3000)));
    assert_eq!(severity(&report, "backdoor-trigger"), Severity::High);
    let t = &report
        .checks
        .iter()
        .find(|c| c.id == "backdoor-trigger")
        .unwrap()
        .details["triggers"][0];
    assert_eq!(t["column"], "f4");
    assert_eq!(t["value"], "7.777000");
    assert_eq!(t["label"], "yes");
}

#[test]
fn flood_of_duplicates_is_caught() {
    let mut current = clean_rows(2, 3000);
    let template = current[7].clone();
    for k in 0..120 {
        let mut r = template.clone();
        r.0[0] += 1e-7 * f64::from(k); // near-identical, not identical
        current.push(r);
    }
    let report = run(&current, None);
    assert_eq!(severity(&report, "near-duplicate-flood"), Severity::High);
    let d = &report
        .checks
        .iter()
        .find(|c| c.id == "near-duplicate-flood")
        .unwrap();
    assert!(d.summary.contains("121"), "{}", d.summary);
}

#[test]
fn conflicting_duplicates_are_caught() {
    let mut current = clean_rows(2, 3000);
    for i in 0..30 {
        let mut r = current[i].clone();
        r.2 = if r.2 == "yes" { "no" } else { "yes" };
        current.push(r);
    }
    let report = run(&current, None);
    assert_eq!(severity(&report, "conflicting-duplicates"), Severity::High);
    assert_eq!(
        report
            .checks
            .iter()
            .find(|c| c.id == "conflicting-duplicates")
            .unwrap()
            .details["rows"],
        60
    );
}

#[test]
fn shifted_feature_is_caught() {
    let mut current = clean_rows(2, 3000);
    for r in &mut current {
        r.0[2] += 1.5;
    }
    let report = run(&current, Some(&clean_rows(1, 3000)));
    assert_eq!(severity(&report, "feature-shift"), Severity::High);
    let d = &report
        .checks
        .iter()
        .find(|c| c.id == "feature-shift")
        .unwrap()
        .details;
    assert_eq!(d["f3"]["severity"], "high");
    assert_eq!(d["f1"]["severity"], "pass");
}

#[test]
fn class_outliers_are_caught() {
    let mut current = clean_rows(2, 3000);
    for r in current.iter_mut().filter(|r| r.2 == "yes").take(200) {
        r.0[3] += 40.0;
    }
    let report = run(&current, None);
    assert_eq!(severity(&report, "class-outliers"), Severity::High);
}

#[test]
fn chi_square_matches_known_values() {
    // scipy.stats.chi2.sf(3.84, 1) = 0.05004, chi2.sf(10, 4) = 0.04043, chi2.sf(100, 10) ≈ 5.0e-17
    assert!((chi2_sf(3.841_458_820_694_124, 1.0) - 0.05).abs() < 1e-9);
    assert!((chi2_sf(10.0, 4.0) - 0.040_427_681_994_512_8).abs() < 1e-9);
    assert!((chi2_sf(1.0, 2.0) - (-0.5f64).exp()).abs() < 1e-12);
    assert!(chi2_sf(100.0, 10.0) < 1e-15);
    assert_eq!(chi2_sf(0.0, 3.0), 1.0);
}

#[test]
fn planted_value_combination_is_caught() {
    // A second categorical column: channel, with a rare kiosk value of mixed labels.
    let build = |rows: &[Row], planted: usize| {
        let mut s = String::from("f1,f2,region,channel,label\n");
        let mut rng = Rng(5);
        for (f, region, label) in rows {
            let u = rng.uniform();
            let channel = if u < 0.01 {
                "kiosk"
            } else if u < 0.5 {
                "web"
            } else {
                "shop"
            };
            s.push_str(&format!(
                "{:.6},{:.6},{region},{channel},{label}\n",
                f[0], f[1]
            ));
        }
        for _ in 0..planted {
            let (a, b) = (rng.normal() - 1.0, rng.normal() - 1.0);
            s.push_str(&format!("{a:.6},{b:.6},north,kiosk,yes\n"));
        }
        Frame::read_csv(
            s.as_bytes(),
            DEFAULT_NULLS,
            ReaderOptions::default(),
            FrameLimits::default(),
        )
        .unwrap()
    };
    let cols = Columns {
        label: "label".into(),
        numeric: vec!["f1".into(), "f2".into()],
        categorical: vec!["region".into(), "channel".into()],
    };
    let rows = clean_rows(2, 3000);
    let clean = check(&build(&rows, 0), None, &cols).unwrap();
    assert_eq!(severity(&clean, "backdoor-trigger"), Severity::Pass);
    let poisoned = check(&build(&rows, 90), None, &cols).unwrap();
    let c = poisoned
        .checks
        .iter()
        .find(|c| c.id == "backdoor-trigger")
        .unwrap();
    assert_eq!(c.severity, Severity::Medium, "{}", c.summary);
    let t = c.details["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["column"] == "region+channel")
        .unwrap();
    assert_eq!(t["value"], "north+kiosk");
    assert_eq!(t["label"], "yes");
}

#[test]
fn personal_and_unique_columns_are_not_features() {
    let schema = crate::schema::Schema::from_toml(
        r#"
version = 1
[label]
column = "y"
classes = ["a", "b"]
[[columns]]
name = "id"
type = "int"
unique = true
[[columns]]
name = "email"
type = "string"
personal = true
[[columns]]
name = "x"
type = "float"
[[columns]]
name = "colour"
type = "category"
allowed = ["red", "blue"]
[[columns]]
name = "y"
type = "category"
allowed = ["a", "b"]
"#,
    )
    .unwrap();
    let c = Columns::from_schema(&schema).unwrap();
    assert_eq!(c.numeric, vec!["x".to_owned()]);
    assert_eq!(c.categorical, vec!["colour".to_owned()]);
}
