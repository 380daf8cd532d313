//! The table and text runners of the PII engine: CSV, Parquet and line-by-line text.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;

use rampart_pii::{Detector, DetectorOptions, Entity, Operator, PiiError, Redactor};

use super::table;

fn detector() -> Detector {
    Detector::new(DetectorOptions::default()).unwrap()
}

#[test]
fn csv_scan_and_redact_stream() {
    let d = detector();
    let csv = "id,name,email,notes\n1,Ann Lee,ann@example.com,\"call +1 415-555-2671, SSN 536-22-1234\"\n2,Bob Stone,bob@example.org,nothing here\n";
    let key = zeroize::Zeroizing::new(vec![3u8; 32]);
    let r = Redactor::new(Operator::Replace)
        .entity(Entity::Email, Operator::Hash)
        .hash_key(key)
        .unwrap();
    let mut out = Vec::new();
    let cols = BTreeMap::from([("name".to_owned(), Operator::Mask(2))]);
    let mut spans = Vec::new();
    let report = table::process_csv(
        csv.as_bytes(),
        table::CsvJob {
            detector: &d,
            reader: crate::csv::ReaderOptions::default(),
            redact: Some((&r, &mut out)),
            columns: &cols,
            findings: Some(&mut spans),
            safe_csv: false,
            personal: &table::PersonalColumns::default(),
        },
    )
    .unwrap();
    let out = String::from_utf8(out).unwrap();
    let spans = String::from_utf8(spans).unwrap();
    assert_eq!(spans.lines().count(), 6);
    let first: serde_json::Value = serde_json::from_str(spans.lines().next().unwrap()).unwrap();
    assert_eq!(first["row"], 1);
    assert_eq!(first["column"], "name");
    assert_eq!(first["entity"], "PERSON");
    assert!(!spans.contains("ann@"), "{spans}");
    assert_eq!(report.rows, 2);
    assert_eq!(report.by_entity[&Entity::Email], 2);
    assert_eq!(report.by_entity[&Entity::Person], 2);
    assert_eq!(report.redacted, 6);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "id,name,email,notes");
    assert!(lines[1].starts_with("1,*** *ee,<EMAIL:"), "{}", lines[1]);
    assert!(
        lines[1].ends_with(",\"call <PHONE>, SSN <US_SSN>\""),
        "{}",
        lines[1]
    );
    assert!(lines[2].ends_with(",nothing here"));
    let json = serde_json::to_string(&report).unwrap();
    for raw in ["ann@", "bob@", "2671", "536-22", "Ann Lee"] {
        assert!(!json.contains(raw), "{raw} leaked into the report: {json}");
    }
    // An unknown column operator and a malformed row are errors, never silent.
    let bad = BTreeMap::from([("nope".to_owned(), Operator::Remove)]);
    let no_personal = table::PersonalColumns::default();
    let job = |cols| table::CsvJob {
        detector: &d,
        reader: crate::csv::ReaderOptions::default(),
        redact: None,
        columns: cols,
        findings: None,
        safe_csv: false,
        personal: &no_personal,
    };
    assert!(matches!(
        table::process_csv(csv.as_bytes(), job(&bad)),
        Err(PiiError::Config(_))
    ));
    let empty = BTreeMap::new();
    let err = table::process_csv(&b"a,b\n1,\"x\"y\n"[..], job(&empty)).unwrap_err();
    assert!(matches!(err, PiiError::Csv { line: 2, .. }), "{err}");
}

#[test]
fn text_lines() {
    let d = detector();
    let r = Redactor::new(Operator::Replace);
    let mut out = Vec::new();
    let text = "first jane@example.com\nsecond line\nthird 536-22-1234";
    let report = table::process_text(text.as_bytes(), &d, Some((&r, &mut out)), None).unwrap();
    assert_eq!(report.rows, 3);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "first <EMAIL>\nsecond line\nthird <US_SSN>"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Scanning text a block at a time reports what scanning it line by line does.
    #[test]
    fn blocks_match_lines(lines in proptest::collection::vec("[a-zA-Z0-9 @.:+\\-]{0,60}", 0..30)) {
        let d = detector();
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let mut spans = Vec::new();
        table::process_text(text.as_bytes(), &d, None, Some(&mut spans)).unwrap();
        let mut expected = String::new();
        for (i, l) in lines.iter().enumerate() {
            let line = format!("{l}\n");
            for f in d.scan(&line) {
                expected.push_str(&format!("{} {:?} {} {}\n", i + 1, f.entity, f.start, f.end));
            }
        }
        let got: String = String::from_utf8(spans).unwrap().lines().map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let e: Entity = v["entity"].as_str().unwrap().parse().unwrap();
            format!("{} {:?} {} {}\n", v["row"], e, v["start"], v["end"])
        }).collect();
        proptest::prop_assert_eq!(got, expected);
    }
}

#[test]
fn parquet_columns_are_scanned_and_text_columns_redacted() {
    use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("id", arrow_schema::DataType::Int64, false),
        arrow_schema::Field::new("email", arrow_schema::DataType::Utf8, true),
        arrow_schema::Field::new("phone", arrow_schema::DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(StringArray::from(vec![
                Some("ann@example.com"),
                None,
                Some("none here"),
            ])),
            Arc::new(Int64Array::from(vec![Some(4_155_552_671), Some(7), None])),
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let d = detector();
    let none_map = BTreeMap::new();
    let no_personal = table::PersonalColumns::default();
    let none = table::ParquetColumns {
        operators: &none_map,
        personal: &no_personal,
    };
    let open = || std::fs::File::open(&path).unwrap();
    let report = table::process_parquet(open(), &d, None, none, None).unwrap();
    assert_eq!(report.rows, 3);
    assert_eq!(report.by_entity[&Entity::Email], 1);
    assert_eq!(
        report.by_entity[&Entity::Phone],
        1,
        "an integer phone column is found too"
    );
    // Redacting needs text: the integer phone column is refused by name, and nothing written.
    let r = Redactor::new(Operator::Replace);
    let mut out = Vec::new();
    let err = table::process_parquet(open(), &d, Some((&r, &mut out)), none, None).unwrap_err();
    assert!(err.to_string().contains("\"phone\""), "{err}");
    // With the phone column kept, the email is replaced and the file stays Parquet.
    let keep = BTreeMap::from([("phone".to_owned(), Operator::Keep)]);
    let keep = table::ParquetColumns {
        operators: &keep,
        personal: &no_personal,
    };
    let mut out = Vec::new();
    let report = table::process_parquet(open(), &d, Some((&r, &mut out)), keep, None).unwrap();
    assert_eq!(report.redacted, 1);
    let back = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(out),
    )
    .unwrap()
    .build()
    .unwrap()
    .next()
    .unwrap()
    .unwrap();
    let emails = back
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(emails.value(0), "<EMAIL>");
    assert!(emails.is_null(1));
    assert_eq!(emails.value(2), "none here");
    let phones = back
        .column(2)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(phones.value(0), 4_155_552_671);
}

#[test]
fn text_errors_name_the_line() {
    let d = detector();
    let long = format!("ok\nfine\n{}\n", "x".repeat(table::MAX_LINE_BYTES + 10));
    let err = table::process_text(long.as_bytes(), &d, None, None).unwrap_err();
    assert!(matches!(err, PiiError::Csv { line: 3, .. }), "{err}");
    let mut bad = b"one\ntwo\nthree \xff\n".to_vec();
    bad.extend_from_slice(b"four\n");
    let err = table::process_text(&bad[..], &d, None, None).unwrap_err();
    assert!(matches!(err, PiiError::Csv { line: 3, .. }), "{err}");
    // Lines past a block boundary keep their numbers; no final newline is fine.
    let many: String = (0..40_000)
        .map(|i| format!("line {i} padding padding\n"))
        .collect::<String>()
        + "last jane@example.com";
    let mut spans = Vec::new();
    let report = table::process_text(many.as_bytes(), &d, None, Some(&mut spans)).unwrap();
    assert_eq!(report.rows, 40_001);
    let f: serde_json::Value =
        serde_json::from_str(String::from_utf8(spans).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(f["row"], 40_001);
    assert_eq!(f["start"], 5);
}

#[test]
fn broken_parquet_is_a_format_error_not_a_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.parquet");
    std::fs::write(&path, b"PAR1 this is not really parquet PAR1").unwrap();
    let err = table::process_parquet(
        std::fs::File::open(&path).unwrap(),
        &detector(),
        None,
        table::ParquetColumns {
            operators: &BTreeMap::new(),
            personal: &table::PersonalColumns::default(),
        },
        None,
    )
    .unwrap_err();
    assert!(matches!(err, PiiError::Format(_)), "{err}");
    assert!(
        err.to_string().starts_with("not a readable Parquet file"),
        "{err}"
    );
    let err = crate::frame::Frame::read_parquet(
        std::fs::File::open(&path).unwrap(),
        &[],
        crate::frame::FrameLimits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, crate::frame::FrameError::Format(_)), "{err}");
}

#[test]
fn personal_columns_are_redacted_whole_recognised_or_not() {
    // An ITIN is no SSN, a nickname is no recognised name, a free-form note is no entity: in
    // columns the schema marks personal, every value goes, with the column's operator.
    let schema = crate::schema::Schema::from_toml(
        r#"
version = 1
nulls = ["", "NA"]
[[columns]]
name = "id"
type = "int"
[[columns]]
name = "ssn"
type = "string"
personal = true
[[columns]]
name = "nickname"
type = "string"
personal = true
[[columns]]
name = "remark"
type = "string"
personal = true
"#,
    )
    .unwrap();
    let personal = table::PersonalColumns::from_schema(&schema);
    let csv =
        "id,ssn,nickname,remark\n1,912-78-1234,zed,likes cats\n2,K-4471,NA, lives on a boat \n";
    let d = detector();
    let r = Redactor::new(Operator::Replace);
    let cols = BTreeMap::from([("remark".to_owned(), Operator::Mask(0))]);
    let mut out = Vec::new();
    let report = table::process_csv(
        csv.as_bytes(),
        table::CsvJob {
            detector: &d,
            reader: crate::csv::ReaderOptions::default(),
            redact: Some((&r, &mut out)),
            columns: &cols,
            findings: None,
            safe_csv: false,
            personal: &personal,
        },
    )
    .unwrap();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    // The ITIN keeps the entity the detector saw; "zed" is nothing the detector or the name
    // "nickname" knows, so PERSONAL_DATA; the NA null is kept; the masked remark keeps its
    // surrounding spaces.
    assert_eq!(lines[1], "1,<US_ITIN>,<PERSONAL_DATA>,***** ****", "{out}");
    // An unrecognised value takes the entity the column's name says (ssn).
    assert_eq!(lines[2], "2,<US_SSN>,NA, ***** ** * **** ", "{out}");
    assert_eq!(report.redacted, 5);
    assert_eq!(
        report.columns[1].entities[&Entity::UsSsn].rules["personal-column"],
        1
    );
    // Without the schema, the nickname passes through: what this guards against.
    let mut plain = Vec::new();
    table::process_csv(
        csv.as_bytes(),
        table::CsvJob {
            detector: &d,
            reader: crate::csv::ReaderOptions::default(),
            redact: Some((&r, &mut plain)),
            columns: &BTreeMap::new(),
            findings: None,
            safe_csv: false,
            personal: &table::PersonalColumns::default(),
        },
    )
    .unwrap();
    let plain = String::from_utf8(plain).unwrap();
    assert!(plain.contains(",zed,"), "{plain}");
    // A personal column the file lacks is an error naming it.
    let err = table::process_csv(
        &b"id,ssn\n1,x\n"[..],
        table::CsvJob {
            detector: &d,
            reader: crate::csv::ReaderOptions::default(),
            redact: None,
            columns: &BTreeMap::new(),
            findings: None,
            safe_csv: false,
            personal: &personal,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("\"nickname\""), "{err}");
}

#[test]
fn personal_parquet_columns_are_redacted_whole() {
    use arrow_array::{Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("tax_id", arrow_schema::DataType::Utf8, true),
        arrow_schema::Field::new("notes", arrow_schema::DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![Some("K-4471"), None])),
            Arc::new(StringArray::from(vec![Some("fine"), Some("ok")])),
        ],
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let personal = table::PersonalColumns::new(["tax_id".to_owned()], vec![String::new()]);
    let r = Redactor::new(Operator::Replace);
    let mut out = Vec::new();
    let report = table::process_parquet(
        std::fs::File::open(&path).unwrap(),
        &detector(),
        Some((&r, &mut out)),
        table::ParquetColumns {
            operators: &BTreeMap::new(),
            personal: &personal,
        },
        None,
    )
    .unwrap();
    assert_eq!(report.redacted, 1);
    let back = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(out),
    )
    .unwrap()
    .build()
    .unwrap()
    .next()
    .unwrap()
    .unwrap();
    let ids = back
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(ids.value(0), "<PERSONAL_DATA>");
    assert!(ids.is_null(1));
    let notes = back
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(notes.value(0), "fine");
}

#[test]
fn personal_columns_fail_closed() {
    // Attacks on the whole-column rule: a header written twice (the second copy is personal
    // too), a null padded with spaces (not the schema's null, so redacted), a column name
    // in another case (not the schema's column: refused, nothing written).
    let personal = table::PersonalColumns::new(["ssn".to_owned()], vec!["NA".to_owned()]);
    let d = detector();
    let r = Redactor::new(Operator::Replace);
    let run = |csv: &str| {
        let mut out = Vec::new();
        let got = table::process_csv(
            csv.as_bytes(),
            table::CsvJob {
                detector: &d,
                reader: crate::csv::ReaderOptions::default(),
                redact: Some((&r, &mut out)),
                columns: &BTreeMap::new(),
                findings: None,
                safe_csv: false,
                personal: &personal,
            },
        );
        (got, String::from_utf8(out).unwrap())
    };
    let (got, out) = run("ssn,ssn\nK-1,K-2\n NA ,NA\n");
    got.unwrap();
    assert_eq!(out, "ssn,ssn\n<US_SSN>,<US_SSN>\n <US_SSN> ,NA\n");
    let (got, out) = run("SSN\nK-1\n");
    assert!(matches!(got, Err(PiiError::Config(_))), "{got:?}");
    assert!(!out.contains("K-1"), "{out}");
}

#[test]
fn a_personal_parquet_column_that_cannot_hold_text_is_refused() {
    use arrow_array::{Int64Array, RecordBatch};
    use std::sync::Arc;
    let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "account",
        arrow_schema::DataType::Int64,
        false,
    )]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![42]))]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let personal = table::PersonalColumns::new(["account".to_owned()], Vec::new());
    let r = Redactor::new(Operator::Replace);
    let mut out = Vec::new();
    // Through the stream runner, which stages a redacted Parquet file and copies it out only
    // when it is complete.
    let err = table::process_any(
        std::fs::File::open(&path).unwrap(),
        table::Input::Table,
        dir.path(),
        table::CsvJob {
            detector: &detector(),
            reader: crate::csv::ReaderOptions::default(),
            redact: Some((&r, &mut out)),
            columns: &BTreeMap::new(),
            findings: None,
            safe_csv: false,
            personal: &personal,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("\"account\""), "{err}");
    assert!(out.is_empty(), "nothing is written");
}
