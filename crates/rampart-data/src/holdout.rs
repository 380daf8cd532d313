//! A table (CSV or Parquet) split into the rows a trainer sees and the rows held out to score
//! its model: made before the trainer starts, so the held-out rows never enter the sandbox.
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

/// A buffered writer that hashes what it writes.
struct Hashed<W: Write> {
    inner: BufWriter<W>,
    hasher: Sha256Hasher,
}

impl<W: Write> Hashed<W> {
    fn new(w: W) -> Self {
        Self {
            inner: BufWriter::new(w),
            hasher: Sha256Hasher::new(),
        }
    }

    fn line(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes)?;
        self.write_all(b"\n")
    }

    /// Flushes; the digest of everything written.
    fn finish(mut self) -> std::io::Result<Digest> {
        self.inner.flush()?;
        Ok(self.hasher.finish())
    }
}

impl<W: Write> Write for Hashed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
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
    check_fraction(path, spec.fraction)?;
    let opened = || open().map_err(|e| bad(path, format!("cannot open: {e}")));
    // Pass 1: the label column, as class indices.
    let mut label_at = None;
    let mut classes = Classes::default();
    records(path, opened()?, |row, rdr| {
        let Some(row) = row else {
            let found = (0..rdr.len())
                .find(|&i| String::from_utf8_lossy(rdr.field(i)).trim() == spec.label);
            label_at = Some(found.ok_or_else(|| no_label(path, spec.label))?);
            return Ok(());
        };
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
        classes.push(rdr.field(at));
        Ok(())
    })?;
    let n = classes.labels.len();
    let (held, stratified) = classes.assign(path, spec)?;
    // Pass 2: each record to its side, byte for byte.
    let mut out_train = Hashed::new(train);
    let mut out_holdout = Hashed::new(holdout);
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
    Ok(Split {
        train_rows: counts.0,
        holdout_rows: counts.1,
        train_digest: out_train.finish().map_err(write)?,
        holdout_digest: out_holdout.finish().map_err(write)?,
        classes: classes.count(),
        stratified,
    })
}

fn no_label(path: &Path, label: &str) -> TableError {
    bad(path, format!("no column `{label}`")).hint("name the label column with --label COL")
}

/// The label column as class indices.
#[derive(Default)]
struct Classes {
    index: HashMap<Vec<u8>, usize>,
    labels: Vec<usize>,
}

impl Classes {
    fn push(&mut self, value: &[u8]) {
        if self.index.len() <= MAX_STRATA {
            let next = self.index.len();
            let class = *self.index.entry(value.to_vec()).or_insert(next);
            self.labels.push(class);
        } else {
            self.labels.push(0);
        }
    }

    fn count(&self) -> usize {
        self.index.len().min(MAX_STRATA + 1)
    }

    /// Which rows are held out, and whether the split was stratified.
    fn assign(&self, path: &Path, spec: SplitSpec<'_>) -> Result<(Vec<bool>, bool), TableError> {
        let n = self.labels.len();
        // Classes are stratified; a continuous target (too many values, or a value seen once:
        // its own stratum would go wholly to one side) is not.
        let mut counts = vec![0usize; self.count()];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l) {
                *c += 1;
            }
        }
        let stratified = self.index.len() <= MAX_STRATA && counts.iter().all(|&c| c >= 2);
        let (_, test) = rampart_ml::split::train_test_split(
            n,
            spec.fraction,
            spec.seed,
            stratified.then_some(self.labels.as_slice()),
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
        Ok((held, stratified))
    }
}

fn check_fraction(path: &Path, fraction: f64) -> Result<(), TableError> {
    if fraction > 0.0 && fraction < 1.0 {
        Ok(())
    } else {
        Err(bad(
            path,
            format!("a holdout of {fraction} is not a fraction in (0, 1)"),
        ))
    }
}

/// One CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(out: &mut Vec<u8>, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(v.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(v.as_bytes());
    }
}

/// Splits a Parquet table `open()` reads (twice: the label column, then every column): the
/// trainer's rows go to `train` as Parquet (the table's schema, rows in file order,
/// Snappy-compressed), the held-out rows to `holdout` as CSV with a header (rampart's own
/// copy, read to score the model; values as Arrow prints them, empty for null).
///
/// # Errors
/// Not Parquet, no label column, a null label, too few rows, or a read or write error.
pub fn split_parquet<W: Write + Send, H: Write>(
    path: &Path,
    open: &dyn Fn() -> std::io::Result<std::fs::File>,
    spec: SplitSpec<'_>,
    train: W,
    holdout: H,
) -> Result<Split, TableError> {
    use arrow_array::{Array, BooleanArray};
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    check_fraction(path, spec.fraction)?;
    let opened = || open().map_err(|e| bad(path, format!("cannot open: {e}")));
    let parquet =
        |e: parquet::errors::ParquetError| bad(path, format!("cannot read it as Parquet: {e}"));
    let arrow = |e: arrow_schema::ArrowError| bad(path, format!("cannot read it as Parquet: {e}"));
    const BATCH: usize = 8192;
    // Pass 1: the label column.
    let builder = ParquetRecordBatchReaderBuilder::try_new(opened()?).map_err(parquet)?;
    let schema = builder.schema().clone();
    let at = schema
        .fields()
        .iter()
        .position(|f| f.name().trim() == spec.label)
        .ok_or_else(|| no_label(path, spec.label))?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [at]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(BATCH)
        .build()
        .map_err(parquet)?;
    let options = FormatOptions::default();
    let mut classes = Classes::default();
    for batch in reader {
        let batch = batch.map_err(arrow)?;
        let Some(column) = batch.columns().first() else {
            return Err(no_label(path, spec.label));
        };
        let shown = ArrayFormatter::try_new(column.as_ref(), &options).map_err(arrow)?;
        for i in 0..batch.num_rows() {
            if column.is_null(i) {
                return Err(bad(
                    path,
                    format!(
                        "data row {}: no `{}` value (null)",
                        classes.labels.len() + 1,
                        spec.label
                    ),
                ));
            }
            classes.push(shown.value(i).to_string().as_bytes());
        }
    }
    let n = classes.labels.len();
    let (held, stratified) = classes.assign(path, spec)?;
    // Pass 2: every column, each row to its side.
    let reader = ParquetRecordBatchReaderBuilder::try_new(opened()?)
        .map_err(parquet)?
        .with_batch_size(BATCH)
        .build()
        .map_err(parquet)?;
    let write = |e: std::io::Error| bad(path, format!("cannot write the split: {e}"));
    let mut out_train = Hashed::new(train);
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut out_train, schema.clone(), Some(props))
            .map_err(parquet)?;
    let mut out_holdout = Hashed::new(holdout);
    let mut line = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            line.push(b',');
        }
        csv_field(&mut line, f.name());
    }
    out_holdout.line(&line).map_err(write)?;
    let (mut row, mut counts) = (0usize, (0usize, 0usize));
    for batch in reader {
        let batch = batch.map_err(arrow)?;
        let rows = batch.num_rows();
        let Some(side) = held.get(row..row + rows) else {
            return Err(bad(path, "the table changed while it was split"));
        };
        row += rows;
        let keep = BooleanArray::from(side.iter().map(|h| !h).collect::<Vec<bool>>());
        let trained = arrow_select::filter::filter_record_batch(&batch, &keep).map_err(arrow)?;
        counts.0 += trained.num_rows();
        writer.write(&trained).map_err(parquet)?;
        let out = BooleanArray::from(side.to_vec());
        let kept = arrow_select::filter::filter_record_batch(&batch, &out).map_err(arrow)?;
        counts.1 += kept.num_rows();
        let shown = kept
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(arrow)?;
        for r in 0..kept.num_rows() {
            line.clear();
            for (i, (c, f)) in kept.columns().iter().zip(&shown).enumerate() {
                if i > 0 {
                    line.push(b',');
                }
                if !c.is_null(r) {
                    csv_field(&mut line, &f.value(r).to_string());
                }
            }
            out_holdout.line(&line).map_err(write)?;
        }
    }
    if row != n {
        return Err(bad(path, "the table changed while it was split"));
    }
    writer.close().map_err(parquet)?;
    Ok(Split {
        train_rows: counts.0,
        holdout_rows: counts.1,
        train_digest: out_train.finish().map_err(write)?,
        holdout_digest: out_holdout.finish().map_err(write)?,
        classes: classes.count(),
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

    /// A Parquet table of `n` rows: `x` (float, some null), `note` (text with commas and
    /// quotes), `y` (label: "a" for two thirds, "b" for a third), in batches of 100.
    fn parquet_table(n: usize) -> Vec<u8> {
        use arrow_array::{Float64Array, RecordBatch, StringArray};
        use arrow_schema::{DataType, Field, Schema};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("note", DataType::Utf8, false),
            Field::new("y", DataType::Utf8, false),
        ]));
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), None).unwrap();
        for start in (0..n).step_by(100) {
            let rows: Vec<usize> = (start..(start + 100).min(n)).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Float64Array::from(
                        rows.iter()
                            .map(|&i| (!i.is_multiple_of(7)).then_some(i as f64 / 4.0))
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        rows.iter()
                            .map(|&i| format!("row {i}, \"quoted\""))
                            .collect::<Vec<_>>(),
                    )),
                    Arc::new(StringArray::from(
                        rows.iter()
                            .map(|&i| if i.is_multiple_of(3) { "b" } else { "a" })
                            .collect::<Vec<_>>(),
                    )),
                ],
            )
            .unwrap();
            w.write(&batch).unwrap();
        }
        w.close().unwrap();
        out
    }

    fn split_pq(
        bytes: &[u8],
        label: &str,
        fraction: f64,
    ) -> Result<(Split, Vec<u8>, String), TableError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        std::fs::write(&path, bytes).unwrap();
        let (mut train, mut holdout) = (Vec::new(), Vec::new());
        let s = split_parquet(
            Path::new("t.parquet"),
            &|| std::fs::File::open(&path),
            SplitSpec {
                label,
                fraction,
                seed: 7,
            },
            &mut train,
            &mut holdout,
        )?;
        Ok((s, train, String::from_utf8(holdout).unwrap()))
    }

    #[test]
    fn a_parquet_table_splits_into_parquet_for_the_trainer_and_csv_for_scoring() {
        use arrow_array::Array;
        let (s, train, holdout) = split_pq(&parquet_table(1000), "y", 0.2).unwrap();
        // A fifth of each class, rounded up.
        assert_eq!((s.train_rows, s.holdout_rows), (799, 201));
        assert!(s.stratified);
        assert_eq!(s.classes, 2);
        assert_eq!(s.train_digest, rampart_crypto::sha256(&train));
        assert_eq!(s.holdout_digest, rampart_crypto::sha256(holdout.as_bytes()));
        // The trainer's copy: Parquet with the table's schema and the training rows.
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(train),
        )
        .unwrap();
        let names: Vec<String> = reader
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["x", "note", "y"]);
        let mut train_notes = Vec::new();
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            let notes = batch
                .column(1)
                .as_any()
                .downcast_ref::<arrow_array::StringArray>()
                .unwrap();
            train_notes.extend((0..notes.len()).map(|i| notes.value(i).to_owned()));
        }
        assert_eq!(train_notes.len(), 799);
        // The held-out copy: CSV a CSV reader reads back, nulls empty, quoting kept.
        let mut rdr = csv::Reader::from_reader(holdout.as_bytes());
        assert_eq!(rdr.headers().unwrap(), vec!["x", "note", "y"]);
        let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 201);
        let b = rows.iter().filter(|r| &r[2] == "b").count();
        assert_eq!(b, 67, "a fifth of class b's 334 rows, rounded up");
        for r in &rows {
            let i: usize = r[1]
                .trim_start_matches("row ")
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(&r[1], format!("row {i}, \"quoted\""));
            assert_eq!(r[0].is_empty(), i.is_multiple_of(7), "row {i}");
            assert!(
                !train_notes.contains(&r[1].to_owned()),
                "row {i} on both sides"
            );
        }
        // The same table and seed give the same split.
        let (again, train2, holdout2) = split_pq(&parquet_table(1000), "y", 0.2).unwrap();
        assert_eq!(again, s);
        assert_eq!(rampart_crypto::sha256(&train2), s.train_digest);
        assert_eq!(holdout2, holdout);
    }

    #[test]
    fn a_parquet_table_that_cannot_be_split_is_refused_naming_why() {
        let e = split_pq(&parquet_table(300), "label", 0.2).unwrap_err();
        assert!(e.reason.contains("no column `label`"), "{e}");
        let e = split_pq(b"PAR1 not really", "y", 0.2).unwrap_err();
        assert!(e.reason.contains("Parquet"), "{e}");
        let e = split_pq(&parquet_table(1), "y", 0.2).unwrap_err();
        assert!(e.reason.contains("too few"), "{e}");
        let e = split_pq(&parquet_table(300), "y", 0.0).unwrap_err();
        assert!(e.reason.contains("not a fraction"), "{e}");
    }
}
