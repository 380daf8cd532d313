//! The strict reader agrees with the `csv` crate on every well-formed file that crate writes,
//! whatever the read sizes.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use std::io::Read;

use proptest::prelude::*;
use rampart_data::csv::{Next, ReaderOptions, RecordReader};

struct Dribble<'a>(&'a [u8], usize);

impl Read for Dribble<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(self.1).min(out.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn field() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just(','),
            Just('"'),
            Just('\n'),
            Just('\r'),
            Just('é')
        ],
        0..6,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn matches_the_csv_crate(
        rows in proptest::collection::vec(proptest::collection::vec(field(), 1..5), 1..20),
        crlf in any::<bool>(),
        chunk in 1usize..64,
    ) {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .terminator(if crlf { csv::Terminator::CRLF } else { csv::Terminator::Any(b'\n') })
            .from_writer(Vec::new());
        for r in &rows {
            w.write_record(r).unwrap();
        }
        let bytes = w.into_inner().unwrap();
        let mut reader = RecordReader::new(Dribble(&bytes, chunk), ReaderOptions::default());
        let mut got: Vec<Vec<String>> = Vec::new();
        loop {
            match reader.next_record().unwrap() {
                Next::End => break,
                Next::Record => got.push(
                    (0..reader.len())
                        .map(|i| String::from_utf8(reader.field(i).to_vec()).unwrap())
                        .collect(),
                ),
                Next::Malformed(m) => panic!("{m:?} in {:?}", String::from_utf8_lossy(&bytes)),
            }
        }
        prop_assert_eq!(got, rows);
    }
}
