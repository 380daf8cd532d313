//! The CSV validation path over arbitrary bytes and tiny read sizes: never a panic, the counts
//! always reconcile, every accepted row reaches the clean output and every rejected one the
//! quarantine, and the output is the same however the input is split into reads.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use rampart_data::csv::ReaderOptions;
use rampart_data::schema::Schema;
use rampart_data::validate::{Sinks, ValidateOptions, validate_csv};

const SCHEMA: &str = r#"
version = 1
nulls = ["", "NA"]
[label]
column = "y"
classes = ["a", "b"]
[[columns]]
name = "id"
type = "int"
unique = true
[[columns]]
name = "x"
type = "float"
nullable = true
min = -1
max = 1
[[columns]]
name = "s"
type = "string"
regex = "[a-z]{1,3}"
[[columns]]
name = "d"
type = "date"
nullable = true
[[columns]]
name = "y"
type = "category"
allowed = ["a", "b"]
"#;

struct Chunked<'a>(&'a [u8], usize);

impl Read for Chunked<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(self.1).min(out.len());
        let (head, tail) = self.0.split_at(n);
        out.get_mut(..n).unwrap_or_default().copy_from_slice(head);
        self.0 = tail;
        Ok(n)
    }
}

fn run(data: &[u8], chunk: usize) -> Option<(u64, u64, Vec<u8>, Vec<u8>)> {
    let schema = Schema::from_toml(SCHEMA).unwrap();
    let mut clean = Vec::new();
    let mut quarantine = Vec::new();
    let opts = ValidateOptions {
        reader: ReaderOptions {
            max_record_bytes: 64,
            ..ReaderOptions::default()
        },
        ..ValidateOptions::default()
    };
    let report = validate_csv(
        Chunked(data, chunk),
        &schema,
        &opts,
        Sinks {
            clean: Some(&mut clean),
            quarantine: Some(&mut quarantine),
        },
    )
    .ok()?;
    assert!(report.reconciled);
    assert_eq!(report.rows_read, report.accepted + report.rejected);
    Some((report.accepted, report.rejected, clean, quarantine))
}

fuzz_target!(|input: &[u8]| {
    let Some((&split, rest)) = input.split_first() else {
        return;
    };
    let mut data = b"id,x,s,d,y\n".to_vec();
    data.extend_from_slice(rest);
    let whole = run(&data, usize::MAX);
    let chunked = run(&data, usize::from(split % 16) + 1);
    assert_eq!(whole, chunked);
    if let Some((accepted, rejected, clean, quarantine)) = whole {
        // One line per clean row after the header (clean records never hold a raw LF outside
        // quotes, but quoted fields may, so count at least).
        assert!(clean.iter().filter(|b| **b == b'\n').count() as u64 > accepted);
        assert!(quarantine.iter().filter(|b| **b == b'\n').count() as u64 > rejected);
    }
});
