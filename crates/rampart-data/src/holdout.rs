//! A CSV table split into the rows a trainer sees and the rows held out to score its model:
//! made before the trainer starts, so the held-out rows never enter the sandbox.
//!
//! The split is stratified on the label column (each class held out in the same proportion)
//! and seeded, so the same table, fraction and seed give the same split. Records are copied
//! byte for byte (quoting kept); both files start with the table's header.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use rampart_crypto::{Digest, Sha256Hasher};

use crate::csv::{Next, ReaderOptions, RecordReader};
use crate::table::TableError;

/// The most distinct labels a split is stratified on; past it the label is a regressor's
/// target, and remembering every value would grow without bound.
pub const MAX_STRATA: usize = 1000;

/// How to split.
#[derive(Debug, Clone, Copy)]
pub struct SplitSpec<'a> {
    /// The label column (stratifies the split).
    pub label: &'a str,
    /// The fraction of rows held out, in (0, 1).
    pub fraction: f64,
    /// The shuffle's seed.
    pub seed: u64,
}

/// What a split wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Data rows in the trainer's file.
    pub train_rows: usize,
    /// Data rows held out.
    pub holdout_rows: usize,
    /// `sha256` of the trainer's file.
    pub train_digest: Digest,
    /// `sha256` of the held-out file.
    pub holdout_digest: Digest,
    /// Distinct labels in the table (counted up to [`MAX_STRATA`] + 1).
    pub classes: usize,
    /// Whether each class was held out in proportion.
    pub stratified: bool,
}

fn bad(path: &Path, reason: impl std::fmt::Display) -> TableError {
    TableError {
        path: path.to_path_buf(),
        reason: reason.to_string(),
        hint: None,
    }
}

/// Reads every record of a table, calling `each(None, reader)` for the header and
/// `each(Some(data_row), reader)` for each data record after it. Blank lines are skipped.
fn records<R: Read>(
    path: &Path,
    input: R,
    mut each: impl FnMut(Option<usize>, &mut RecordReader<BufReader<R>>) -> Result<(), TableError>,
) -> Result<usize, TableError> {
    let mut rdr = RecordReader::new(
        BufReader::with_capacity(1 << 20, input),
        ReaderOptions::default(),
    );
    let io = |e: std::io::Error| bad(path, format!("cannot read: {e}"));
    let mut row = 0usize;
    let mut first = true;
    loop {
        match rdr.next_record().map_err(io)? {
            Next::End => break,
            Next::Malformed(m) => {
                return Err(bad(path, format!("line {}: {}", rdr.line(), m.message())));
            }
            Next::Record => {
                if first {
                    first = false;
                    each(None, &mut rdr)?;
                    continue;
                }
                if rdr.len() == 1 && rdr.field(0).is_empty() {
                    continue;
                }
                each(Some(row), &mut rdr)?;
                row += 1;
            }
        }
    }
    if first {
        return Err(bad(path, "no header row").hint("the first line must name the columns"));
    }
    Ok(row)
}

/// A writer that hashes what it writes.
struct Hashed<W: Write> {
    inner: BufWriter<W>,
    hasher: Sha256Hasher,
}

impl<W: Write> Hashed<W> {
    fn line(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.hasher.update(b"\n");
        self.inner.write_all(bytes)?;
        self.inner.write_all(b"\n")
    }
}

/// Splits the table `open()` reads (it is opened twice: once for the labels, once to copy)
/// into `train` and `holdout`.
///
/// # Errors
/// A table without a header or the label column, a malformed record (naming its line), a
/// row without the label field, too few rows to hold any out, or a write error.
pub fn split_csv<R: Read, W: Write>(
    path: &Path,
    open: &dyn Fn() -> std::io::Result<R>,
    spec: SplitSpec<'_>,
    train: W,
    holdout: W,
) -> Result<Split, TableError> {
    if !(spec.fraction > 0.0 && spec.fraction < 1.0) {
        return Err(bad(
            path,
            format!("a holdout of {} is not a fraction in (0, 1)", spec.fraction),
        ));
    }
    let opened = || open().map_err(|e| bad(path, format!("cannot open: {e}")));
    // Pass 1: the label column, as class indices.
    let mut label_at = None;
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut labels: Vec<usize> = Vec::new();
    records(path, opened()?, |row, rdr| {
        let Some(row) = row else {
            let found = (0..rdr.len())
                .find(|&i| String::from_utf8_lossy(rdr.field(i)).trim() == spec.label);
            label_at = Some(found.ok_or_else(|| {
                bad(path, format!("no column `{}`", spec.label))
                    .hint("name the label column with --label COL")
            })?);
            return Ok(());
        };
        {
            let at = label_at.unwrap_or(0);
            if at >= rdr.len() {
                return Err(bad(
                    path,
                    format!(
                        "data row {}: {} fields, no `{}` field",
                        row + 1,
                        rdr.len(),
                        spec.label
                    ),
                ));
            }
            if index.len() <= MAX_STRATA {
                let value = rdr.field(at).to_vec();
                let next = index.len();
                labels.push(*index.entry(value).or_insert(next));
            } else {
                labels.push(0);
            }
            Ok(())
        }
    })?;
    let n = labels.len();
    // Classes are stratified; a continuous target (too many values, or a value seen once:
    // its own stratum would go wholly to one side) is not.
    let mut counts = vec![0usize; index.len().min(MAX_STRATA + 1)];
    for &l in &labels {
        if let Some(c) = counts.get_mut(l) {
            *c += 1;
        }
    }
    let stratified = index.len() <= MAX_STRATA && counts.iter().all(|&c| c >= 2);
    let (_, test) = rampart_ml::split::train_test_split(
        n,
        spec.fraction,
        spec.seed,
        stratified.then_some(labels.as_slice()),
    );
    if test.is_empty() || test.len() == n {
        return Err(bad(
            path,
            format!(
                "{n} data rows are too few to hold {} of them out",
                spec.fraction
            ),
        )
        .hint("train on more rows, or pass --holdout 0 (the model is then not scored)"));
    }
    let mut held = vec![false; n];
    for i in &test {
        if let Some(h) = held.get_mut(*i) {
            *h = true;
        }
    }
    // Pass 2: each record to its side, byte for byte.
    let mut out_train = Hashed {
        inner: BufWriter::new(train),
        hasher: Sha256Hasher::new(),
    };
    let mut out_holdout = Hashed {
        inner: BufWriter::new(holdout),
        hasher: Sha256Hasher::new(),
    };
    let write = |e: std::io::Error| bad(path, format!("cannot write the split: {e}"));
    let mut counts = (0usize, 0usize);
    let copied = records(path, opened()?, |row, rdr| match row {
        None => {
            let raw = rdr.raw().to_vec();
            out_train.line(&raw).map_err(write)?;
            out_holdout.line(&raw).map_err(write)
        }
        Some(row) => {
            if held.get(row).copied().unwrap_or(false) {
                counts.1 += 1;
                out_holdout.line(rdr.raw()).map_err(write)
            } else {
                counts.0 += 1;
                out_train.line(rdr.raw()).map_err(write)
            }
        }
    })?;
    if copied != n {
        return Err(bad(path, "the table changed while it was split"));
    }
    out_train.inner.flush().map_err(write)?;
    out_holdout.inner.flush().map_err(write)?;
    Ok(Split {
        train_rows: counts.0,
        holdout_rows: counts.1,
        train_digest: out_train.hasher.finish(),
        holdout_digest: out_holdout.hasher.finish(),
        classes: index.len().min(MAX_STRATA + 1),
        stratified,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn split(text: &str, fraction: f64) -> Result<(Split, String, String), TableError> {
        let mut train = Vec::new();
        let mut holdout = Vec::new();
        let bytes = text.as_bytes().to_vec();
        let s = split_csv(
            Path::new("t.csv"),
            &|| Ok(std::io::Cursor::new(bytes.clone())),
            SplitSpec {
                label: "y",
                fraction,
                seed: 7,
            },
            &mut train,
            &mut holdout,
        )?;
        Ok((
            s,
            String::from_utf8(train).unwrap(),
            String::from_utf8(holdout).unwrap(),
        ))
    }

    #[test]
    fn every_row_goes_to_one_side_with_each_class_held_out_in_proportion() {
        let mut text = String::from("a,\"note, quoted\",y\n");
        for i in 0..100 {
            let y = if i % 4 == 0 { "rare" } else { "common" };
            text.push_str(&format!("{i},\"x, \"\"{i}\"\"\",{y}\n"));
        }
        let (s, train, holdout) = split(&text, 0.2).unwrap();
        assert_eq!((s.train_rows, s.holdout_rows, s.classes), (80, 20, 2));
        assert!(s.stratified);
        assert!(train.starts_with("a,\"note, quoted\",y\n"));
        assert!(holdout.starts_with("a,\"note, quoted\",y\n"));
        // Stratified: a fifth of each class.
        assert_eq!(holdout.matches(",rare\n").count(), 5);
        assert_eq!(holdout.matches(",common\n").count(), 15);
        // Every record exactly once, quoting kept.
        let mut rows: Vec<&str> = train
            .lines()
            .skip(1)
            .chain(holdout.lines().skip(1))
            .collect();
        rows.sort_unstable();
        let mut want: Vec<&str> = text.lines().skip(1).collect();
        want.sort_unstable();
        assert_eq!(rows, want);
        // The digests are of the bytes written, and the split is the same every time.
        assert_eq!(s.holdout_digest, rampart_crypto::sha256(holdout.as_bytes()));
        assert_eq!(split(&text, 0.2).unwrap().2, holdout);
    }

    /// A regressor's continuous target: every value once, so no stratum could be split; the
    /// rows are split at random in the same proportion, and the labels remembered stay bounded.
    #[test]
    fn a_continuous_label_is_split_at_random() {
        let mut text = String::from("x,y\n");
        for i in 0..2500 {
            text.push_str(&format!("{i},{}.{i}\n", i * 7));
        }
        let (s, train, holdout) = split(&text, 0.2).unwrap();
        assert!(!s.stratified);
        assert_eq!((s.train_rows, s.holdout_rows), (2000, 500));
        assert_eq!(s.classes, MAX_STRATA + 1);
        assert_eq!(train.lines().count() + holdout.lines().count(), 2502);
        // A class seen once is not a stratum either.
        let (s, _, _) = split("x,y\n1,a\n2,a\n3,b\n4,b\n5,c\n", 0.4).unwrap();
        assert!(!s.stratified);
        assert_eq!(s.holdout_rows, 2);
    }

    #[test]
    fn a_table_that_cannot_be_split_is_refused_naming_why() {
        let e = split("a,b\n1,2\n", 0.2).unwrap_err();
        assert!(e.reason.contains("no column `y`"), "{e}");
        let e = split("a,y\n1,x\n", 0.2).unwrap_err();
        assert!(e.reason.contains("too few"), "{e}");
        let e = split("a,y\n1,x\n2\n", 0.5).unwrap_err();
        assert!(e.reason.contains("data row 2"), "{e}");
        let e = split("a,y\n1,\"x\n", 0.5).unwrap_err();
        assert!(e.reason.contains("line 2"), "{e}");
        let e = split("a,y\n1,x\n2,z\n", 1.0).unwrap_err();
        assert!(e.reason.contains("not a fraction"), "{e}");
    }
}
