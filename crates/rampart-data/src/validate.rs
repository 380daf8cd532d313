//! Row-by-row validation of a CSV stream against a [`Schema`]: clean rows to one sink,
//! rejected rows (with row, line, columns, rules and reasons, and the original record) to
//! another, and a [`Report`] whose counts reconcile exactly.
//!
//! Memory is bounded by the reader's window, the batches in flight (at most four, each handed
//! over at 8192 rows or 8 MiB), plus, for `unique` columns, the values seen so far: integer and date columns in a compressed bitmap (sequential ids cost almost nothing),
//! other types as one 64-bit keyed hash per distinct value.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::io::{self, Read, Write};

use roaring::RoaringTreemap;
use serde::Serialize;

use crate::csv::{Next, ReaderOptions, RecordReader};
use crate::schema::{Bound, ColumnType, Schema, full_match_regex, parse_date};

/// The rules a row can break. Row-level rules (the record itself is malformed) have no column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// A quote out of place (see [`crate::csv::Malformed`]).
    Quoting,
    /// The record exceeds the size limit.
    TooLong,
    /// Not as many fields as the header.
    Ragged,
    /// A field that is not valid UTF-8.
    Utf8,
    /// A null in a column that is not nullable.
    Null,
    /// A value that does not parse as the column's type.
    Type,
    /// Below the minimum.
    Min,
    /// Above the maximum.
    Max,
    /// Not one of the allowed values.
    Allowed,
    /// Does not match the column's regex.
    Regex,
    /// Too short or too long.
    Length,
    /// A value an earlier accepted row already has.
    Unique,
    /// A label outside the schema's classes.
    Label,
}

impl Rule {
    /// The rule's name in reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Quoting => "quoting",
            Self::TooLong => "too-long",
            Self::Ragged => "ragged",
            Self::Utf8 => "utf8",
            Self::Null => "null",
            Self::Type => "type",
            Self::Min => "min",
            Self::Max => "max",
            Self::Allowed => "allowed",
            Self::Regex => "regex",
            Self::Length => "length",
            Self::Unique => "unique",
            Self::Label => "label",
        }
    }
}

/// The column name used in reports for row-level rules.
pub const ROW_LEVEL: &str = "(record)";

/// What a validation found.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    /// Data records read (the header excluded).
    pub rows_read: u64,
    /// Records that passed every rule.
    pub accepted: u64,
    /// Records that broke at least one rule.
    pub rejected: u64,
    /// Whether `rows_read == accepted + rejected` (always, unless this code is wrong).
    pub reconciled: bool,
    /// Rule violations in total (a rejected row may break several).
    pub violations: u64,
    /// Violations per rule.
    pub by_rule: BTreeMap<String, u64>,
    /// Violations per column, then per rule ([`ROW_LEVEL`] for malformed records).
    pub by_column: BTreeMap<String, BTreeMap<String, u64>>,
    /// Bytes of input read.
    pub bytes_read: u64,
}

/// A file the validator cannot check row by row: its header does not fit the schema.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidateError {
    /// The header is missing, malformed or does not match the schema.
    #[error("header (line 1): {0}")]
    Header(String),
    /// The file is not in the format it claims (a broken Parquet file).
    #[error("{0}")]
    Format(String),
    /// Reading the input or writing an output failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Options.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidateOptions {
    /// CSV reader limits.
    pub reader: ReaderOptions,
    /// CSV-injection neutralisation of the outputs ([`crate::safe_csv`]).
    pub safe_csv: crate::safe_csv::SafeCsv,
}

impl ValidateOptions {
    /// The defaults, with records longer than `bytes` rejected.
    #[must_use]
    pub fn max_record_bytes(bytes: usize) -> Self {
        Self {
            reader: ReaderOptions {
                max_record_bytes: bytes,
                ..ReaderOptions::default()
            },
            safe_csv: crate::safe_csv::SafeCsv::default(),
        }
    }
}

/// Where clean and rejected rows go.
pub struct Sinks<'a> {
    /// Clean rows (with the header), byte for byte as read.
    pub clean: Option<&'a mut dyn Write>,
    /// Rejected rows as CSV: `row,line,columns,rules,reasons,record`.
    pub quarantine: Option<&'a mut dyn Write>,
}

/// The quarantine file's header.
pub const QUARANTINE_HEADER: &str = "row,line,columns,rules,reasons,record\n";

#[derive(Default)]
struct Identity(u64);
impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

enum Seen {
    /// Integers and dates, exactly.
    Exact(RoaringTreemap),
    /// Other values, as keyed 64-bit hashes.
    Hashed(HashSet<u64, BuildHasherDefault<Identity>>),
}

impl Seen {
    fn for_type(kind: ColumnType) -> Self {
        match kind {
            ColumnType::Int | ColumnType::Date => Self::Exact(RoaringTreemap::new()),
            _ => Self::Hashed(HashSet::default()),
        }
    }

    fn contains(&self, key: Key) -> bool {
        match (self, key) {
            (Self::Exact(set), Key::Exact(k)) => set.contains(k),
            (Self::Hashed(set), Key::Hashed(h)) => set.contains(&h),
            _ => false,
        }
    }

    fn insert(&mut self, key: Key) {
        match (self, key) {
            (Self::Exact(set), Key::Exact(k)) => {
                set.insert(k);
            }
            (Self::Hashed(set), Key::Hashed(h)) => {
                set.insert(h);
            }
            _ => {}
        }
    }
}

/// A parsed value, kept for the uniqueness check.
#[derive(Clone, Copy)]
enum Key {
    None,
    Exact(u64),
    Hashed(u64),
}

/// Maps an i64 to a u64 preserving order (flips the sign bit).
#[allow(clippy::cast_sign_loss)]
const fn order_key(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

/// A set of allowed texts: a linear scan for the few values of a typical category (faster than
/// hashing), a hash set beyond that.
enum ValueSet {
    Few(Vec<String>),
    Many(HashSet<String>),
}

impl ValueSet {
    const FEW: usize = 16;

    fn new(values: &[String]) -> Self {
        if values.len() <= Self::FEW {
            Self::Few(values.to_vec())
        } else {
            Self::Many(values.iter().cloned().collect())
        }
    }

    fn contains(&self, v: &str) -> bool {
        match self {
            Self::Few(list) => list.iter().any(|x| x == v),
            Self::Many(set) => set.contains(v),
        }
    }
}

struct Compiled {
    name: String,
    kind: ColumnType,
    nullable: bool,
    min_i: Option<i64>,
    max_i: Option<i64>,
    min_f: Option<f64>,
    max_f: Option<f64>,
    min_d: Option<i32>,
    max_d: Option<i32>,
    allowed: Option<ValueSet>,
    allowed_int: Option<HashSet<i64>>,
    classes: Option<ValueSet>,
    regex: Option<regex::Regex>,
    min_len: Option<usize>,
    max_len: Option<usize>,
    unique: bool,
    /// Keys the uniqueness hashes.
    state: std::hash::RandomState,
}

#[allow(clippy::cast_precision_loss)]
fn compile(schema: &Schema, name: &str) -> Option<Compiled> {
    let c = schema.column(name)?;
    let (mut min_i, mut max_i, mut min_f, mut max_f, mut min_d, mut max_d) =
        (None, None, None, None, None, None);
    for (b, is_min) in [(&c.min, true), (&c.max, false)] {
        match (b, c.kind) {
            (Some(Bound::Int(v)), ColumnType::Int) => {
                *(if is_min { &mut min_i } else { &mut max_i }) = Some(*v);
            }
            (Some(Bound::Int(v)), ColumnType::Float) => {
                *(if is_min { &mut min_f } else { &mut max_f }) = Some(*v as f64);
            }
            (Some(Bound::Float(v)), _) => {
                *(if is_min { &mut min_f } else { &mut max_f }) = Some(*v);
            }
            (Some(Bound::Text(d)), _) => {
                *(if is_min { &mut min_d } else { &mut max_d }) = parse_date(d.as_bytes());
            }
            _ => {}
        }
    }
    let allowed = c
        .allowed
        .as_ref()
        .filter(|_| c.kind != ColumnType::Int)
        .map(|a| ValueSet::new(a));
    let allowed_int = c
        .allowed
        .as_ref()
        .filter(|_| c.kind == ColumnType::Int)
        .map(|a| a.iter().filter_map(|v| v.parse().ok()).collect());
    let classes = schema
        .label
        .as_ref()
        .filter(|l| l.column == name)
        .map(|l| ValueSet::new(&l.classes));
    Some(Compiled {
        name: c.name.clone(),
        kind: c.kind,
        nullable: c.nullable,
        min_i,
        max_i,
        min_f,
        max_f,
        min_d,
        max_d,
        allowed,
        allowed_int,
        classes,
        regex: c.regex.as_deref().and_then(|r| full_match_regex(r).ok()),
        min_len: c.min_length,
        max_len: c.max_length,
        unique: c.unique,
        state: std::hash::RandomState::new(),
    })
}

/// One broken rule in the current row.
pub(crate) struct Violation {
    column: Option<usize>,
    rule: Rule,
    reason: String,
}

/// Shows at most 40 characters of a value in a reason.
fn show(v: &str) -> String {
    let mut out: String = v.chars().take(40).collect();
    if out.len() < v.len() {
        out.push('…');
    }
    out
}

impl Compiled {
    /// Checks one (non-null, UTF-8) value; on success returns its uniqueness key.
    fn check(&self, v: &str) -> Result<Key, (Rule, String)> {
        let mut key = Key::None;
        match self.kind {
            ColumnType::Int => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| (Rule::Type, format!("`{}` is not an integer", show(v))))?;
                if let Some(lo) = self.min_i.filter(|lo| n < *lo) {
                    return Err((Rule::Min, format!("{n} is below the minimum {lo}")));
                }
                if let Some(hi) = self.max_i.filter(|hi| n > *hi) {
                    return Err((Rule::Max, format!("{n} is above the maximum {hi}")));
                }
                if let Some(a) = &self.allowed_int
                    && !a.contains(&n)
                {
                    return Err((Rule::Allowed, format!("{n} is not an allowed value")));
                }
                key = Key::Exact(order_key(n));
            }
            ColumnType::Float => {
                let x: f64 = v
                    .parse()
                    .ok()
                    .filter(|x: &f64| x.is_finite())
                    .ok_or_else(|| (Rule::Type, format!("`{}` is not a finite number", show(v))))?;
                if let Some(lo) = self.min_f.filter(|lo| x < *lo) {
                    return Err((Rule::Min, format!("{x} is below the minimum {lo}")));
                }
                if let Some(hi) = self.max_f.filter(|hi| x > *hi) {
                    return Err((Rule::Max, format!("{x} is above the maximum {hi}")));
                }
                if self.unique {
                    // -0.0 and 0.0 are the same value.
                    key = Key::Hashed((x + 0.0).to_bits());
                }
            }
            ColumnType::Bool => {
                let b = match v {
                    "1" => true,
                    "0" => false,
                    _ if v.eq_ignore_ascii_case("true") => true,
                    _ if v.eq_ignore_ascii_case("false") => false,
                    _ => {
                        return Err((
                            Rule::Type,
                            format!("`{}` is not a bool (true/false/1/0)", show(v)),
                        ));
                    }
                };
                key = Key::Hashed(u64::from(b));
            }
            ColumnType::Date => {
                let d = parse_date(v.as_bytes()).ok_or_else(|| {
                    (
                        Rule::Type,
                        format!("`{}` is not a YYYY-MM-DD date", show(v)),
                    )
                })?;
                if self.min_d.is_some_and(|lo| d < lo) {
                    return Err((Rule::Min, format!("{v} is before the minimum date")));
                }
                if self.max_d.is_some_and(|hi| d > hi) {
                    return Err((Rule::Max, format!("{v} is after the maximum date")));
                }
                key = Key::Exact(order_key(i64::from(d)));
            }
            ColumnType::String | ColumnType::Category => {
                if let Some(a) = &self.allowed
                    && !a.contains(v)
                {
                    return Err((
                        Rule::Allowed,
                        format!("`{}` is not an allowed value", show(v)),
                    ));
                }
                if self.min_len.is_some() || self.max_len.is_some() {
                    let n = v.chars().count();
                    if self.min_len.is_some_and(|lo| n < lo)
                        || self.max_len.is_some_and(|hi| n > hi)
                    {
                        return Err((Rule::Length, format!("{n} characters is out of bounds")));
                    }
                }
                if let Some(r) = &self.regex
                    && !r.is_match(v)
                {
                    return Err((
                        Rule::Regex,
                        format!("`{}` does not match {}", show(v), r.as_str()),
                    ));
                }
                if self.unique {
                    key = Key::Hashed(self.state.hash_one(v));
                }
            }
        }
        if let Some(c) = &self.classes
            && !c.contains(v)
        {
            return Err((
                Rule::Label,
                format!("`{}` is not one of the label classes", show(v)),
            ));
        }
        if let Key::Hashed(h) = key
            && self.unique
            && !matches!(self.kind, ColumnType::String | ColumnType::Category)
        {
            key = Key::Hashed(self.state.hash_one(h));
        }
        Ok(if self.unique { key } else { Key::None })
    }
}

/// Checks the header against the schema: every schema column present once, nothing else.
fn match_header(header: &[String], schema: &Schema) -> Result<Vec<Compiled>, ValidateError> {
    let mut seen = HashSet::new();
    if let Some(d) = header.iter().find(|h| !seen.insert(h.as_str())) {
        return Err(ValidateError::Header(format!("column `{d}` appears twice")));
    }
    let unknown: Vec<&str> = header
        .iter()
        .filter(|h| schema.column(h).is_none())
        .map(String::as_str)
        .collect();
    let missing: Vec<&str> = schema
        .columns
        .iter()
        .filter(|c| !seen.contains(c.name.as_str()))
        .map(|c| c.name.as_str())
        .collect();
    if !unknown.is_empty() || !missing.is_empty() {
        let mut parts = Vec::new();
        if !unknown.is_empty() {
            parts.push(format!(
                "columns not in the schema: {}",
                quote_list(&unknown)
            ));
        }
        if !missing.is_empty() {
            parts.push(format!(
                "schema columns missing from the file: {}",
                quote_list(&missing)
            ));
        }
        return Err(ValidateError::Header(parts.join("; ")));
    }
    Ok(header.iter().filter_map(|h| compile(schema, h)).collect())
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `bytes` as one CSV field (quoted when needed).
pub(crate) fn csv_field(out: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    if memchr::memchr3(b',', b'"', b'\n', bytes).is_none() && memchr::memchr(b'\r', bytes).is_none()
    {
        return out.write_all(bytes);
    }
    out.write_all(b"\"")?;
    let mut rest = bytes;
    while let Some(i) = memchr::memchr(b'"', rest) {
        out.write_all(rest.get(..=i).unwrap_or_default())?;
        out.write_all(b"\"")?;
        rest = rest.get(i + 1..).unwrap_or_default();
    }
    out.write_all(rest)?;
    out.write_all(b"\"")
}

/// Reads the header record: the column names, each valid UTF-8.
///
/// # Errors
/// [`ValidateError::Header`] for an empty file or a malformed or non-UTF-8 header.
pub fn read_header<R: Read>(reader: &mut RecordReader<R>) -> Result<Vec<String>, ValidateError> {
    match reader.next_record()? {
        Next::End => Err(ValidateError::Header("the file is empty".into())),
        Next::Malformed(m) => Err(ValidateError::Header(m.message().into())),
        Next::Record => (0..reader.len())
            .map(|i| {
                String::from_utf8(reader.field(i).to_vec()).map_err(|_| {
                    ValidateError::Header(format!("column {} is not valid UTF-8", i + 1))
                })
            })
            .collect(),
    }
}

/// Rows per batch handed from the parsing thread to the checkers.
const BATCH_ROWS: usize = 8192;
/// A batch is also handed over once it holds this many bytes, so that long records cannot make
/// the batches in flight (at most four) grow past a few tens of MiB plus one record.
const BATCH_BYTES: usize = 8 << 20;
/// Rows per parallel check task.
const TASK_ROWS: usize = 1024;

/// What the parser saw of a record.
#[derive(Clone, Copy)]
enum Shape {
    /// As many fields as the header; they follow in `Batch::fields`.
    Fields,
    /// Malformed.
    Malformed(crate::csv::Malformed),
    /// Another number of fields.
    Ragged(usize),
}

struct BatchRow {
    raw: (usize, usize),
    line: u64,
    shape: Shape,
    first_field: usize,
}

/// Parsed records, copied out of the reader so that they can be checked on other threads.
/// Field ranges index `data`: inside the raw record, or (for escaped fields) an unescaped copy
/// after it.
#[derive(Default)]
pub(crate) struct Batch {
    data: Vec<u8>,
    rows: Vec<BatchRow>,
    fields: Vec<(usize, usize, bool)>,
}

impl Batch {
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.rows.clear();
        self.fields.clear();
    }

    /// Adds a row given as field values (from a columnar source): its raw form for the
    /// quarantine is the values as one CSV line.
    pub(crate) fn push_values(&mut self, line: u64, values: &[&[u8]]) {
        let start = self.data.len();
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                self.data.push(b',');
            }
            // Writing into a Vec cannot fail.
            let _ = csv_field(&mut self.data, v);
        }
        let raw = (start, self.data.len());
        let first_field = self.fields.len();
        for v in values {
            let s = self.data.len();
            self.data.extend_from_slice(v);
            self.fields.push((s, self.data.len(), true));
        }
        self.rows.push(BatchRow {
            raw,
            line,
            shape: Shape::Fields,
            first_field,
        });
    }

    /// Bytes held (raw rows and field copies).
    pub(crate) fn bytes(&self) -> usize {
        self.data.len()
    }

    fn raw(&self, r: &BatchRow) -> &[u8] {
        self.data.get(r.raw.0..r.raw.1).unwrap_or_default()
    }

    /// Writes an accepted row (every field parsed) as CSV, each cell neutralised against CSV
    /// injection.
    fn write_safe(&self, out: &mut dyn Write, r: &BatchRow, columns: usize) -> io::Result<()> {
        let spans = self
            .fields
            .get(r.first_field..r.first_field + columns)
            .unwrap_or_default();
        for (i, &(a, b, _)) in spans.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            let field = self.data.get(a..b).unwrap_or_default();
            csv_field(out, &crate::safe_csv::neutralise(field))?;
        }
        out.write_all(b"\n")
    }

    fn push<R: Read>(&mut self, reader: &mut RecordReader<R>, next: Next, columns: usize) {
        let start = self.data.len();
        self.data.extend_from_slice(reader.raw());
        let raw = (start, self.data.len());
        let line = reader.line();
        let first_field = self.fields.len();
        let shape = match next {
            Next::Malformed(m) => Shape::Malformed(m),
            _ if reader.len() != columns => Shape::Ragged(reader.len()),
            _ => {
                for i in 0..columns {
                    let Some((a, b, escaped)) = reader.field_span(i) else {
                        continue;
                    };
                    if escaped {
                        let s = self.data.len();
                        self.data.extend_from_slice(reader.field(i));
                        self.fields.push((s, self.data.len(), true));
                    } else {
                        self.fields.push((start + a, start + b, false));
                    }
                }
                Shape::Fields
            }
        };
        self.rows.push(BatchRow {
            raw,
            line,
            shape,
            first_field,
        });
    }
}

/// The checks of one run of rows: violations by row (in order) and every field's key.
struct Checked {
    first_row: usize,
    violations: Vec<(usize, Violation)>,
    keys: Vec<Key>,
}

struct Checker<'a> {
    cols: &'a [Compiled],
    nulls: &'a [Vec<u8>],
}

impl Checker<'_> {
    fn is_null(&self, v: &[u8]) -> bool {
        match self.nulls {
            [only] if only.is_empty() => v.is_empty(),
            nulls => nulls.iter().any(|n| n == v),
        }
    }

    /// The stateless rules (everything but uniqueness) for rows `range` of `batch`.
    fn check(&self, batch: &Batch, range: std::ops::Range<usize>) -> Checked {
        let n = self.cols.len();
        let mut out = Checked {
            first_row: range.start,
            violations: Vec::new(),
            keys: vec![Key::None; range.len() * n],
        };
        for (k, row) in batch
            .rows
            .get(range.clone())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let at = range.start + k;
            match row.shape {
                Shape::Malformed(m) => out.violations.push((
                    at,
                    Violation {
                        column: None,
                        rule: if m == crate::csv::Malformed::TooLong {
                            Rule::TooLong
                        } else {
                            Rule::Quoting
                        },
                        reason: m.message().into(),
                    },
                )),
                Shape::Ragged(got) => out.violations.push((
                    at,
                    Violation {
                        column: None,
                        rule: Rule::Ragged,
                        reason: format!("{got} fields where the header has {n}"),
                    },
                )),
                Shape::Fields => {
                    let raw = batch.raw(row);
                    // One UTF-8 check for the whole record; fields then slice it for free.
                    let raw_str = std::str::from_utf8(raw).ok();
                    for (i, col) in self.cols.iter().enumerate() {
                        let Some(&(a, b, escaped)) = batch.fields.get(row.first_field + i) else {
                            continue;
                        };
                        let text = match raw_str {
                            Some(r) if !escaped => r.get(a - row.raw.0..b - row.raw.0),
                            _ => std::str::from_utf8(batch.data.get(a..b).unwrap_or_default()).ok(),
                        };
                        let Some(text) = text else {
                            out.violations.push((
                                at,
                                Violation {
                                    column: Some(i),
                                    rule: Rule::Utf8,
                                    reason: "not valid UTF-8".into(),
                                },
                            ));
                            continue;
                        };
                        if self.is_null(text.as_bytes()) {
                            if !col.nullable {
                                out.violations.push((
                                    at,
                                    Violation {
                                        column: Some(i),
                                        rule: Rule::Null,
                                        reason: "a null where a value is required".into(),
                                    },
                                ));
                            }
                            continue;
                        }
                        match col.check(text) {
                            Ok(key) => {
                                if let Some(slot) = out.keys.get_mut(k * n + i) {
                                    *slot = key;
                                }
                            }
                            Err((rule, reason)) => out.violations.push((
                                at,
                                Violation {
                                    column: Some(i),
                                    rule,
                                    reason,
                                },
                            )),
                        }
                    }
                }
            }
        }
        out
    }
}

/// The state of one validation: the compiled columns, the values seen by `unique` columns, and
/// the counts. Batches go in in file order; each row's verdict comes out through a callback.
pub(crate) struct Engine {
    cols: Vec<Compiled>,
    nulls: Vec<Vec<u8>>,
    seen: Vec<Option<Seen>>,
    counts: BTreeMap<(Option<usize>, Rule), u64>,
    report: Report,
}

/// One row's verdict.
pub(crate) struct Verdict<'a> {
    /// The row's index in its batch.
    pub index: usize,
    /// The data row number (1-based).
    pub row: u64,
    /// Empty when accepted.
    pub violations: &'a [Violation],
    cols: &'a [Compiled],
}

impl Verdict<'_> {
    /// Writes the quarantine line for this (rejected) row; with `safe`, its cells are
    /// neutralised against CSV injection.
    pub(crate) fn quarantine(
        &self,
        out: &mut dyn Write,
        batch: &Batch,
        safe: bool,
    ) -> io::Result<()> {
        let Some(row) = batch.rows.get(self.index) else {
            return Ok(());
        };
        write_rejected(
            out,
            self.cols,
            self.row,
            row.line,
            self.violations,
            batch.raw(row),
            safe,
        )
    }
}

impl Engine {
    pub(crate) fn new(header: &[String], schema: &Schema) -> Result<Self, ValidateError> {
        let cols = match_header(header, schema)?;
        let seen = cols
            .iter()
            .map(|c| c.unique.then(|| Seen::for_type(c.kind)))
            .collect();
        Ok(Self {
            cols,
            nulls: schema.nulls.iter().map(|n| n.as_bytes().to_vec()).collect(),
            seen,
            counts: BTreeMap::new(),
            report: Report::default(),
        })
    }

    pub(crate) fn columns(&self) -> usize {
        self.cols.len()
    }

    /// Checks a batch (the stateless rules in parallel), then applies uniqueness and calls
    /// `verdict` for every row in order.
    pub(crate) fn process(
        &mut self,
        batch: &Batch,
        mut verdict: impl FnMut(&Batch, Verdict<'_>) -> io::Result<()>,
    ) -> io::Result<()> {
        let ncols = self.cols.len();
        let checker = Checker {
            cols: &self.cols,
            nulls: &self.nulls,
        };
        let tasks: Vec<std::ops::Range<usize>> = (0..batch.rows.len())
            .step_by(TASK_ROWS)
            .map(|s| s..(s + TASK_ROWS).min(batch.rows.len()))
            .collect();
        let checked: Vec<Checked> = {
            use rayon::prelude::*;
            tasks
                .into_par_iter()
                .map(|r| checker.check(batch, r))
                .collect()
        };
        let mut violations: Vec<Violation> = Vec::new();
        for part in checked {
            let mut pending = part.violations.into_iter().peekable();
            let rows = part.keys.len() / ncols.max(1);
            for k in 0..rows {
                let at = part.first_row + k;
                violations.clear();
                while let Some((_, v)) = pending.next_if(|(r, _)| *r == at) {
                    violations.push(v);
                }
                let keys = part
                    .keys
                    .get(k * ncols..(k + 1) * ncols)
                    .unwrap_or_default();
                if violations.is_empty() {
                    for (i, (set, key)) in self.seen.iter().zip(keys).enumerate() {
                        if set.as_ref().is_some_and(|s| s.contains(*key)) {
                            violations.push(Violation {
                                column: Some(i),
                                rule: Rule::Unique,
                                reason: "repeats the value of an earlier accepted row".into(),
                            });
                        }
                    }
                }
                self.report.rows_read += 1;
                if violations.is_empty() {
                    self.report.accepted += 1;
                    for (set, key) in self.seen.iter_mut().zip(keys) {
                        if let Some(set) = set {
                            set.insert(*key);
                        }
                    }
                } else {
                    self.report.rejected += 1;
                    for v in &violations {
                        *self.counts.entry((v.column, v.rule)).or_default() += 1;
                    }
                }
                verdict(
                    batch,
                    Verdict {
                        index: at,
                        row: self.report.rows_read,
                        violations: &violations,
                        cols: &self.cols,
                    },
                )?;
            }
        }
        Ok(())
    }

    /// The final report.
    pub(crate) fn finish(self, bytes_read: u64) -> Report {
        let mut report = self.report;
        for ((column, rule), n) in self.counts {
            let col = column
                .and_then(|c| self.cols.get(c))
                .map_or(ROW_LEVEL, |c| c.name.as_str());
            report.violations += n;
            *report.by_rule.entry(rule.name().into()).or_default() += n;
            *report
                .by_column
                .entry(col.into())
                .or_default()
                .entry(rule.name().into())
                .or_default() += n;
        }
        report.reconciled = report.rows_read == report.accepted + report.rejected;
        report.bytes_read = bytes_read;
        report
    }
}

/// Validates a CSV stream. Clean rows go to `sinks.clean` (header first) exactly as read;
/// rejected rows to `sinks.quarantine`.
///
/// One thread parses records into batches; the rules are checked on the batches in parallel
/// (rayon); uniqueness and the outputs are applied in file order, so results do not depend on
/// scheduling.
///
/// # Errors
/// [`ValidateError::Header`] when the header cannot be matched to the schema (no row is
/// checked then); [`ValidateError::Io`] when reading or writing fails.
pub fn validate_csv<R: Read + Send>(
    input: R,
    schema: &Schema,
    opts: &ValidateOptions,
    sinks: Sinks<'_>,
) -> Result<Report, ValidateError> {
    let Sinks {
        mut clean,
        mut quarantine,
    } = sinks;
    let mut reader = RecordReader::new(input, opts.reader);
    let header = read_header(&mut reader)?;
    let mut engine = Engine::new(&header, schema)?;
    if let Some(out) = clean.as_deref_mut() {
        out.write_all(reader.raw())?;
        out.write_all(b"\n")?;
    }
    if let Some(out) = quarantine.as_deref_mut() {
        out.write_all(QUARANTINE_HEADER.as_bytes())?;
    }
    let ncols = engine.columns();
    let (to_checker, batches) = std::sync::mpsc::sync_channel::<Batch>(2);
    let (give_back, spare) = std::sync::mpsc::channel::<Batch>();
    let bytes_read = std::thread::scope(|scope| -> Result<u64, ValidateError> {
        let parser = scope.spawn(move || -> io::Result<u64> {
            loop {
                let mut batch = spare.try_recv().unwrap_or_default();
                batch.clear();
                let mut done = false;
                while batch.rows.len() < BATCH_ROWS && batch.data.len() < BATCH_BYTES {
                    match reader.next_record()? {
                        Next::End => {
                            done = true;
                            break;
                        }
                        next => batch.push(&mut reader, next, ncols),
                    }
                }
                if !batch.rows.is_empty() && to_checker.send(batch).is_err() {
                    // The consumer stopped (an output failed); its error is the one reported.
                    return Ok(reader.bytes_read());
                }
                if done {
                    return Ok(reader.bytes_read());
                }
            }
        });
        for batch in batches {
            engine.process(&batch, |batch, v| {
                if v.violations.is_empty() {
                    if let (Some(out), Some(row)) = (clean.as_deref_mut(), batch.rows.get(v.index))
                    {
                        if opts.safe_csv.for_data() {
                            batch.write_safe(out, row, ncols)?;
                        } else {
                            out.write_all(batch.raw(row))?;
                            out.write_all(b"\n")?;
                        }
                    }
                } else if let Some(out) = quarantine.as_deref_mut() {
                    v.quarantine(out, batch, opts.safe_csv.for_reports())?;
                }
                Ok(())
            })?;
            let _ = give_back.send(batch);
        }
        parser
            .join()
            .map_err(|_| ValidateError::Io(io::Error::other("the CSV parsing thread panicked")))?
            .map_err(ValidateError::Io)
    })?;
    if let Some(out) = clean {
        out.flush()?;
    }
    if let Some(out) = quarantine {
        out.flush()?;
    }
    Ok(engine.finish(bytes_read))
}

/// One quarantine line: `row,line,columns,rules,reasons,record`.
fn write_rejected(
    out: &mut dyn Write,
    cols: &[Compiled],
    row: u64,
    line: u64,
    violations: &[Violation],
    raw: &[u8],
    safe: bool,
) -> io::Result<()> {
    let cell = |out: &mut dyn Write, bytes: &[u8]| {
        if safe {
            csv_field(out, &crate::safe_csv::neutralise(bytes))
        } else {
            csv_field(out, bytes)
        }
    };
    let name = |v: &Violation| {
        v.column
            .and_then(|c| cols.get(c))
            .map_or(ROW_LEVEL, |c| c.name.as_str())
    };
    let columns: Vec<&str> = violations.iter().map(name).collect();
    let rules: Vec<&str> = violations.iter().map(|v| v.rule.name()).collect();
    let reasons: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", name(v), v.reason))
        .collect();
    write!(out, "{row},{line},")?;
    cell(out, columns.join(";").as_bytes())?;
    out.write_all(b",")?;
    cell(out, rules.join(";").as_bytes())?;
    out.write_all(b",")?;
    cell(out, reasons.join("; ").as_bytes())?;
    out.write_all(b",")?;
    cell(out, raw)?;
    out.write_all(b"\n")
}
