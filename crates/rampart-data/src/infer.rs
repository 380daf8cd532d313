//! `infer-schema`: a schema proposed from a sample of rows, for a person to review.
//!
//! Types are chosen narrowest first (bool, int, float, date, category, string); numbers never
//! seen negative get `min = 0` (the sample's extremes say little about the next file); a column is proposed `unique` when every sampled value differs and its name says
//! it is a key; text columns where every value looks like an email get an email regex.

use std::collections::{BTreeSet, HashSet};
use std::io::Read;

use crate::csv::{Next, ReaderOptions, RecordReader};
use crate::schema::{Bound, Column, ColumnType, Label, SCHEMA_VERSION, Schema, parse_date};
use crate::validate::ValidateError;

/// Category columns have at most this many distinct values.
pub const MAX_CATEGORIES: usize = 20;
/// Label columns have at most this many classes.
pub const MAX_CLASSES: usize = 1000;
/// The regex proposed for email columns.
pub const EMAIL_REGEX: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}";

/// What infer-schema saw.
#[derive(Debug)]
pub struct Inferred {
    /// The proposal.
    pub schema: Schema,
    /// Rows sampled.
    pub rows: u64,
    /// Malformed or ragged records skipped while sampling.
    pub skipped: u64,
}

struct Stats {
    name: String,
    nulls: u64,
    values: u64,
    all_bool: bool,
    all_int: bool,
    all_float: bool,
    all_date: bool,
    all_email: bool,
    min_i: i64,
    min_f: f64,
    /// Distinct values while there are few of them.
    distinct: Option<BTreeSet<String>>,
    /// Distinct count of all values (hashes), for uniqueness.
    hashes: HashSet<u64>,
    state: std::hash::RandomState,
}

impl Stats {
    fn new(name: String) -> Self {
        Self {
            name,
            nulls: 0,
            values: 0,
            all_bool: true,
            all_int: true,
            all_float: true,
            all_date: true,
            all_email: true,
            min_i: i64::MAX,
            min_f: f64::INFINITY,
            distinct: Some(BTreeSet::new()),
            hashes: HashSet::new(),
            state: std::hash::RandomState::new(),
        }
    }

    fn add(&mut self, v: &str, email: &regex::Regex, keep: usize) {
        use std::hash::BuildHasher as _;
        if v.is_empty() {
            self.nulls += 1;
            return;
        }
        self.values += 1;
        self.all_bool &= v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
        if self.all_int {
            match v.parse::<i64>() {
                Ok(n) => {
                    self.min_i = self.min_i.min(n);
                }
                Err(_) => self.all_int = false,
            }
        }
        if self.all_float {
            match v.parse::<f64>() {
                Ok(x) if x.is_finite() => {
                    self.min_f = self.min_f.min(x);
                }
                _ => self.all_float = false,
            }
        }
        self.all_date &= parse_date(v.as_bytes()).is_some();
        self.all_email &= email.is_match(v);
        if let Some(set) = &mut self.distinct {
            if set.len() < keep || set.contains(v) {
                set.insert(v.to_owned());
            } else {
                self.distinct = None;
            }
        }
        self.hashes.insert(self.state.hash_one(v));
    }

    fn looks_like_key(&self) -> bool {
        let n = self.name.to_ascii_lowercase();
        n == "id"
            || n.ends_with("_id")
            || n.ends_with("id") && n.len() <= 4
            || n == "uuid"
            || n == "key"
    }

    fn column(&self) -> Column {
        let mut c = Column {
            name: self.name.clone(),
            kind: ColumnType::String,
            nullable: self.nulls > 0,
            min: None,
            max: None,
            allowed: None,
            regex: None,
            min_length: None,
            max_length: None,
            unique: false,
            personal: false,
        };
        if self.values == 0 {
            c.nullable = true;
            return c;
        }
        let all_distinct = self.hashes.len() as u64 == self.values && self.values >= 2;
        if self.all_bool {
            c.kind = ColumnType::Bool;
        } else if self.all_int {
            c.kind = ColumnType::Int;
            c.unique = all_distinct && self.nulls == 0 && self.looks_like_key();
            // A sample's largest value says little about the next file's; non-negativity does.
            if self.min_i >= 0 && !c.unique {
                c.min = Some(Bound::Int(0));
            }
        } else if self.all_float {
            c.kind = ColumnType::Float;
            if self.min_f >= 0.0 {
                c.min = Some(Bound::Int(0));
            }
        } else if self.all_date {
            c.kind = ColumnType::Date;
        } else if let Some(set) = self
            .distinct
            .as_ref()
            .filter(|s| s.len() <= MAX_CATEGORIES && (s.len() as u64) * 2 <= self.values)
        {
            c.kind = ColumnType::Category;
            c.allowed = Some(set.iter().cloned().collect());
        } else {
            if self.all_email {
                c.regex = Some(EMAIL_REGEX.into());
            }
            c.unique = all_distinct && self.nulls == 0 && self.looks_like_key();
        }
        c
    }
}

/// The columns being sampled.
struct Sampler {
    stats: Vec<Stats>,
    label_idx: Option<usize>,
    email: regex::Regex,
}

impl Sampler {
    fn new(header: &[String], label: Option<&str>) -> Result<Self, ValidateError> {
        let mut seen = HashSet::new();
        if let Some(d) = header.iter().find(|h| !seen.insert(h.as_str())) {
            return Err(ValidateError::Header(format!("column `{d}` appears twice")));
        }
        let label_idx = match label {
            Some(l) => Some(header.iter().position(|h| h == l).ok_or_else(|| {
                ValidateError::Header(format!("the label column `{l}` is not in the header"))
            })?),
            None => None,
        };
        Ok(Self {
            stats: header.iter().cloned().map(Stats::new).collect(),
            label_idx,
            email: crate::schema::full_match_regex(EMAIL_REGEX)
                .map_err(|e| ValidateError::Header(e.to_string()))?,
        })
    }

    fn add(&mut self, column: usize, value: &str) {
        let keep = if Some(column) == self.label_idx {
            MAX_CLASSES + 1
        } else {
            MAX_CATEGORIES + 1
        };
        if let Some(s) = self.stats.get_mut(column) {
            s.add(value, &self.email, keep);
        }
    }

    fn finish(self, rows: u64, skipped: u64) -> Result<Inferred, ValidateError> {
        let columns: Vec<Column> = self.stats.iter().map(Stats::column).collect();
        let label = match self.label_idx.and_then(|i| self.stats.get(i)) {
            Some(s) => {
                let classes = s.distinct.as_ref().ok_or_else(|| {
                    ValidateError::Header(format!(
                        "the label column `{}` has more than {MAX_CLASSES} distinct values",
                        s.name
                    ))
                })?;
                Some(Label {
                    column: s.name.clone(),
                    classes: classes.iter().cloned().collect(),
                })
            }
            None => None,
        };
        let schema = Schema {
            version: SCHEMA_VERSION,
            nulls: vec![String::new()],
            label,
            columns,
        };
        schema
            .check()
            .map_err(|e| ValidateError::Header(format!("the proposal does not check: {e}")))?;
        Ok(Inferred {
            schema,
            rows,
            skipped,
        })
    }
}

/// Proposes a schema from the first `sample_rows` records of a CSV stream. With `label`, that
/// column becomes the label, its classes the distinct values seen.
///
/// # Errors
/// [`ValidateError::Header`] for a missing or malformed header, or a label column that is not
/// in it or has too many classes; I/O errors.
pub fn infer_csv<R: Read>(
    input: R,
    sample_rows: u64,
    label: Option<&str>,
    opts: ReaderOptions,
) -> Result<Inferred, ValidateError> {
    let mut reader = RecordReader::new(input, opts);
    let header = crate::validate::read_header(&mut reader)?;
    let mut sampler = Sampler::new(&header, label)?;
    let (mut rows, mut skipped) = (0u64, 0u64);
    while rows < sample_rows {
        match reader.next_record()? {
            Next::End => break,
            Next::Malformed(_) => skipped += 1,
            Next::Record if reader.len() != header.len() => skipped += 1,
            Next::Record if std::str::from_utf8(reader.raw()).is_err() => skipped += 1,
            Next::Record => {
                for i in 0..header.len() {
                    let v = String::from_utf8_lossy(reader.field(i)).into_owned();
                    sampler.add(i, &v);
                }
                rows += 1;
            }
        }
    }
    sampler.finish(rows, skipped)
}

/// As [`infer_csv`], for a Parquet file (values as Arrow displays them, nulls as null).
///
/// # Errors
/// As [`infer_csv`], plus [`ValidateError::Format`] for an unreadable file.
pub fn infer_parquet(
    file: std::fs::File,
    sample_rows: u64,
    label: Option<&str>,
) -> Result<Inferred, ValidateError> {
    use arrow_array::Array as _;
    let bad = |e: &dyn std::fmt::Display| {
        ValidateError::Format(format!("not a readable Parquet file: {e}"))
    };
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| bad(&e))?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut sampler = Sampler::new(&header, label)?;
    let reader = builder.with_batch_size(4096).build().map_err(|e| bad(&e))?;
    let options = arrow_cast::display::FormatOptions::default();
    let mut rows = 0u64;
    let mut text = String::new();
    'batches: for rb in reader {
        let rb = rb.map_err(|e| bad(&e))?;
        let formatters = rb
            .columns()
            .iter()
            .map(|c| arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&e))?;
        for i in 0..rb.num_rows() {
            if rows >= sample_rows {
                break 'batches;
            }
            for (c, f) in formatters.iter().enumerate() {
                text.clear();
                if !rb.column(c).is_null(i) {
                    use std::fmt::Write as _;
                    let _ = write!(text, "{}", f.value(i));
                }
                sampler.add(c, &text);
            }
            rows += 1;
        }
    }
    sampler.finish(rows, 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::validate::{Sinks, ValidateOptions, validate_csv};

    #[test]
    fn proposes_types_bounds_categories_keys_and_the_label() {
        let mut csv = String::from("user_id,age,score,ok,plan,email,day,note,y\n");
        for i in 0..50 {
            csv.push_str(&format!(
                "{},{},{}.5,{},{},u{i}@ex.com,2024-01-{:02},{},{}\n",
                i + 1,
                20 + i % 30,
                i,
                if i % 2 == 0 { "true" } else { "false" },
                ["free", "pro"][i % 2],
                i % 28 + 1,
                if i % 5 == 0 {
                    String::new()
                } else {
                    format!("note {i}")
                },
                i % 3
            ));
        }
        let got = infer_csv(csv.as_bytes(), 1000, Some("y"), ReaderOptions::default()).unwrap();
        assert_eq!(got.rows, 50);
        let s = &got.schema;
        let c = |n: &str| s.column(n).unwrap().clone();
        assert_eq!(c("user_id").kind, ColumnType::Int);
        assert!(c("user_id").unique);
        assert!(!c("age").unique);
        assert_eq!(c("age").min, Some(Bound::Int(0)));
        assert_eq!(c("age").max, None);
        assert_eq!(c("user_id").min, None);
        assert_eq!(c("score").kind, ColumnType::Float);
        assert_eq!(c("ok").kind, ColumnType::Bool);
        assert_eq!(c("plan").kind, ColumnType::Category);
        assert_eq!(c("plan").allowed.unwrap(), vec!["free", "pro"]);
        assert_eq!(c("email").regex.as_deref(), Some(EMAIL_REGEX));
        assert_eq!(c("day").kind, ColumnType::Date);
        assert_eq!(c("note").kind, ColumnType::String);
        assert!(c("note").nullable);
        assert_eq!(s.label.as_ref().unwrap().classes, vec!["0", "1", "2"]);

        // The proposal accepts the sample it came from.
        let report = validate_csv(
            csv.as_bytes(),
            s,
            &ValidateOptions::default(),
            Sinks {
                clean: None,
                quarantine: None,
            },
        )
        .unwrap();
        assert_eq!((report.accepted, report.rejected), (50, 0));
    }
}
