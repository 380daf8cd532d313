//! Validation against schemas: each rule, malformed CSV, quarantine contents, reconciliation.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use rampart_data::schema::Schema;
use rampart_data::validate::{Report, Sinks, ValidateError, ValidateOptions, validate_csv};

const SCHEMA: &str = r#"
version = 1
nulls = ["", "NA"]

[label]
column = "label"
classes = ["yes", "no"]

[[columns]]
name = "id"
type = "int"
unique = true
min = 1

[[columns]]
name = "age"
type = "int"
nullable = true
min = 0
max = 120

[[columns]]
name = "score"
type = "float"
min = 0
max = 1.5

[[columns]]
name = "active"
type = "bool"

[[columns]]
name = "plan"
type = "category"
allowed = ["free", "pro"]

[[columns]]
name = "email"
type = "string"
nullable = true
regex = "[a-z0-9.]+@[a-z0-9.]+"
max_length = 20

[[columns]]
name = "signup"
type = "date"
min = "2000-01-01"
max = "2030-12-31"

[[columns]]
name = "label"
type = "string"
"#;

const HEADER: &str = "id,age,score,active,plan,email,signup,label\n";

fn run(body: &[u8]) -> (Report, String, String) {
    let schema = Schema::from_toml(SCHEMA).unwrap();
    let mut clean = Vec::new();
    let mut quarantine = Vec::new();
    let report = validate_csv(
        body,
        &schema,
        &ValidateOptions::default(),
        Sinks {
            clean: Some(&mut clean),
            quarantine: Some(&mut quarantine),
        },
    )
    .unwrap();
    assert!(report.reconciled);
    assert_eq!(report.rows_read, report.accepted + report.rejected);
    (
        report,
        String::from_utf8_lossy(&clean).into_owned(),
        String::from_utf8_lossy(&quarantine).into_owned(),
    )
}

/// The rule (and column) the single data row `row` is rejected for.
fn rejected_for(row: &str) -> (String, String) {
    let (report, clean, q) = run(format!("{HEADER}{row}\n").as_bytes());
    assert_eq!(report.rejected, 1, "{row} was accepted");
    assert_eq!(clean, HEADER);
    let line = q.lines().nth(1).unwrap().to_owned();
    let fields: Vec<&str> = line.splitn(6, ',').collect();
    (fields[2].to_owned(), fields[3].to_owned())
}

const GOOD: &str = "1,30,0.5,true,free,a@b.c,2020-02-29,yes";

#[test]
fn a_good_row_passes_byte_for_byte() {
    let (report, clean, q) =
        run(format!("{HEADER}{GOOD}\n2,NA,1,0,pro,,2000-01-01,no\n").as_bytes());
    assert_eq!((report.accepted, report.rejected), (2, 0));
    assert_eq!(
        clean,
        format!("{HEADER}{GOOD}\n2,NA,1,0,pro,,2000-01-01,no\n")
    );
    assert_eq!(q, "row,line,columns,rules,reasons,record\n");
}

#[test]
fn each_rule_rejects_with_its_column() {
    let cases = [
        ("x,30,0.5,true,free,a@b.c,2020-02-29,yes", "id", "type"),
        ("0,30,0.5,true,free,a@b.c,2020-02-29,yes", "id", "min"),
        ("1,121,0.5,true,free,a@b.c,2020-02-29,yes", "age", "max"),
        ("1,-1,0.5,true,free,a@b.c,2020-02-29,yes", "age", "min"),
        ("1,30,NaN,true,free,a@b.c,2020-02-29,yes", "score", "type"),
        ("1,30,1.6,true,free,a@b.c,2020-02-29,yes", "score", "max"),
        ("1,30,,true,free,a@b.c,2020-02-29,yes", "score", "null"),
        ("1,30,0.5,maybe,free,a@b.c,2020-02-29,yes", "active", "type"),
        ("1,30,0.5,true,gold,a@b.c,2020-02-29,yes", "plan", "allowed"),
        ("1,30,0.5,true,free,A@B.C,2020-02-29,yes", "email", "regex"),
        (
            "1,30,0.5,true,free,x a@b.c,2020-02-29,yes",
            "email",
            "regex",
        ),
        (
            "1,30,0.5,true,free,abcdefghijk@lmnopqrstu.v,2020-02-29,yes",
            "email",
            "length",
        ),
        ("1,30,0.5,true,free,a@b.c,2021-02-29,yes", "signup", "type"),
        ("1,30,0.5,true,free,a@b.c,1999-12-31,yes", "signup", "min"),
        ("1,30,0.5,true,free,a@b.c,2031-01-01,yes", "signup", "max"),
        (
            "1,30,0.5,true,free,a@b.c,2020-02-29,maybe",
            "label",
            "label",
        ),
        ("1,30,0.5,true,free,a@b.c,2020-02-29,NA", "label", "null"),
        ("1,30,0.5,true,free,a@b.c,2020-02-29", "(record)", "ragged"),
        (
            "1,30,0.5,true,free,a@b.c,2020-02-29,yes,extra",
            "(record)",
            "ragged",
        ),
        ("", "(record)", "ragged"),
        (
            "1,30,0.5,true,free,a\"b@c.d,2020-02-29,yes",
            "(record)",
            "quoting",
        ),
        (
            "1,30,0.5,true,free,\"a@b.c\"x,2020-02-29,yes",
            "(record)",
            "quoting",
        ),
    ];
    for (row, column, rule) in cases {
        assert_eq!(
            rejected_for(row),
            (column.to_owned(), rule.to_owned()),
            "{row}"
        );
    }
}

#[test]
fn several_violations_in_one_row_are_all_reported() {
    let (report, _, q) = run(format!("{HEADER}0,200,9,x,gold,bad,2020-13-01,maybe\n").as_bytes());
    assert_eq!(report.rejected, 1);
    assert_eq!(report.violations, 8);
    let line = q.lines().nth(1).unwrap();
    assert!(
        line.starts_with("1,2,id;age;score;active;plan;email;signup;label,min;max;max;type;allowed;regex;type;label,"),
        "{line}"
    );
    assert_eq!(report.by_column["age"]["max"], 1);
}

#[test]
fn unique_counts_only_accepted_rows() {
    let body = format!(
        "{HEADER}{GOOD}\n{GOOD}\n5,30,9,true,free,a@b.c,2020-02-29,yes\n5,30,0.5,true,free,a@b.c,2020-02-29,yes\n"
    );
    let (report, clean, q) = run(body.as_bytes());
    // Row 2 repeats id 1; row 3 (id 5) is rejected for its score, so row 4's id 5 is new.
    assert_eq!((report.accepted, report.rejected), (2, 2));
    assert_eq!(report.by_rule["unique"], 1);
    assert!(clean.ends_with("5,30,0.5,true,free,a@b.c,2020-02-29,yes\n"));
    assert!(q.contains("\n2,3,id,unique,"));
}

#[test]
fn malformed_csv_is_handled_row_by_row() {
    let mut body = b"\xEF\xBB\xBF".to_vec();
    body.extend_from_slice(HEADER.replace('\n', "\r\n").as_bytes());
    body.extend_from_slice(b"1,30,0.5,true,free,a@b.c,2020-02-29,yes\r\n");
    body.extend_from_slice(b"2,30,0.5,true,free,\"a@b\xff\",2020-02-29,yes\r\n");
    body.extend_from_slice(b"3,30,0.5,true,free,\"unterminated,2020-02-29,yes\r\n");
    body.extend_from_slice(b"4,30,0.5,true,free,\"x,y\",2020-02-29,no\r\n");
    body.extend_from_slice(b"5,30,0.5,true,pro,,2020-02-29,no");
    let (report, clean, q) = run(&body);
    assert_eq!(report.rows_read, 5);
    assert_eq!(report.accepted, 2, "{q}");
    assert_eq!(report.by_rule["utf8"], 1);
    assert_eq!(report.by_rule["quoting"], 1);
    assert_eq!(
        report.by_rule["regex"], 1,
        "the quoted x,y is one field: {q}"
    );
    // The header keeps its CRLF-free form without the BOM; clean rows are as read.
    assert!(clean.starts_with("id,age,"));
    assert!(clean.contains("\n5,30,0.5,true,pro,,2020-02-29,no\n"));
    // Quarantined records keep their original bytes (the invalid UTF-8 too).
    let raw = {
        let schema = Schema::from_toml(SCHEMA).unwrap();
        let mut quarantine = Vec::new();
        validate_csv(
            body.as_slice(),
            &schema,
            &ValidateOptions::default(),
            Sinks {
                clean: None,
                quarantine: Some(&mut quarantine),
            },
        )
        .unwrap();
        quarantine
    };
    assert!(
        raw.windows(4).any(|w| w == b"b\xff\"\""),
        "the 0xff byte survives"
    );
    let lines: Vec<&str> = q.lines().collect();
    assert!(lines[1].starts_with("2,3,email,utf8,"), "{}", lines[1]);
    assert!(
        lines[2].starts_with("3,4,(record),quoting,"),
        "{}",
        lines[2]
    );
}

#[test]
fn header_mismatches_are_errors_naming_the_columns() {
    let schema = Schema::from_toml(SCHEMA).unwrap();
    let check = |body: &str| match validate_csv(
        body.as_bytes(),
        &schema,
        &ValidateOptions::default(),
        Sinks {
            clean: None,
            quarantine: None,
        },
    ) {
        Err(ValidateError::Header(m)) => m,
        other => panic!("{body:?}: {other:?}"),
    };
    let m = check("id,age,score,active,plan,email,signup,label,extra\n");
    assert!(m.contains("not in the schema: `extra`"), "{m}");
    let m = check("id,age,score,active,plan,email,signup\n");
    assert!(m.contains("missing from the file: `label`"), "{m}");
    let m = check("id,id,age,score,active,plan,email,signup,label\n");
    assert!(m.contains("`id` appears twice"), "{m}");
    assert!(check("").contains("empty"));
    // Column order is free.
    let (report, ..) = run(b"id,age,score,active,plan,email,signup,label\n");
    assert_eq!(report.rows_read, 0);
}
