//! Scanning and redacting whole files: CSV column by column (the column's name is context),
//! free text line by line. Both stream: memory is one record (or line) plus the report, whose
//! samples are masked and capped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read, Write};
use std::path::Path;

use serde::Serialize;

use super::{ColumnHint, Detector, Entity, Finding, Operator, PiiError, Redactor, mask_sample};
use crate::csv::{Next, ReaderOptions, RecordReader};
use crate::schema::Schema;
use crate::stream::DataFormat;
use crate::validate::csv_field;

/// Masked samples kept per column and entity.
const SAMPLES: usize = 3;
/// The longest line of free text read, in bytes.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What was found of one entity in one column.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EntityStats {
    /// Findings.
    pub count: u64,
    /// Rows (or lines) with at least one.
    pub rows: u64,
    /// Findings per rule.
    pub rules: BTreeMap<&'static str, u64>,
    /// Up to three masked samples ([`mask_sample`]); never a raw value.
    pub samples: Vec<String>,
}

/// One column's findings.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    /// The column (`text` for free text).
    pub column: String,
    /// Findings per entity.
    pub entities: BTreeMap<Entity, EntityStats>,
}

/// The result of a scan or a redaction.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PiiReport {
    /// Data rows (CSV, header excluded) or lines read.
    pub rows: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Findings in all.
    pub findings: u64,
    /// Findings per entity.
    pub by_entity: BTreeMap<Entity, u64>,
    /// Per column, in file order; columns without findings are listed too.
    pub columns: Vec<ColumnReport>,
    /// Values rewritten (0 for a scan, and for `keep`).
    pub redacted: u64,
}

impl PiiReport {
    /// What an audit record keeps of a report: counts and rules, never values.
    #[must_use]
    pub fn audit_summary(&self) -> serde_json::Value {
        let mut rules: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &self.columns {
            for s in c.entities.values() {
                for (r, n) in &s.rules {
                    *rules.entry(r).or_default() += n;
                }
            }
        }
        serde_json::json!({
            "rows": self.rows,
            "findings": self.findings,
            "redacted": self.redacted,
            "by_entity": self.by_entity,
            "by_column": self.counts(),
            "rules": rules,
        })
    }

    fn with_columns(names: &[String]) -> Self {
        Self {
            columns: names
                .iter()
                .map(|n| ColumnReport {
                    column: n.clone(),
                    entities: BTreeMap::new(),
                })
                .collect(),
            ..Self::default()
        }
    }

    fn record(&mut self, column: usize, value: &str, findings: &[Finding]) {
        let Some(col) = self.columns.get_mut(column) else {
            return;
        };
        let mut seen: Vec<Entity> = Vec::new();
        for f in findings {
            self.findings += 1;
            *self.by_entity.entry(f.entity).or_default() += 1;
            let s = col.entities.entry(f.entity).or_default();
            s.count += 1;
            *s.rules.entry(f.rule).or_default() += 1;
            if !seen.contains(&f.entity) {
                s.rows += 1;
                seen.push(f.entity);
            }
            if s.samples.len() < SAMPLES
                && let Some(v) = value.get(f.start..f.end)
            {
                s.samples.push(mask_sample(v));
            }
        }
    }

    /// Counts per `column → entity`, with no samples (what the audit log keeps).
    #[must_use]
    pub fn counts(&self) -> BTreeMap<String, BTreeMap<Entity, u64>> {
        self.columns
            .iter()
            .filter(|c| !c.entities.is_empty())
            .map(|c| {
                (
                    c.column.clone(),
                    c.entities.iter().map(|(e, s)| (*e, s.count)).collect(),
                )
            })
            .collect()
    }
}

/// Columns whose every value is personal data (a schema's `personal = true`): each value that
/// is not a null is one finding over the whole value (rule `personal-column`), redacted with
/// the column's operator whether or not the detector recognises it: an ITIN in an `ssn`
/// column, a nickname in a `name` column. The finding's entity is the one the detector saw in
/// the value (the longest finding), else the one the column's name suggests, else
/// `PERSONAL_DATA`.
#[derive(Debug, Clone, Default)]
pub struct PersonalColumns {
    names: BTreeSet<String>,
    nulls: Vec<String>,
}

impl PersonalColumns {
    /// These columns; `nulls` are the field texts that mean "no value" (never redacted).
    #[must_use]
    pub fn new(names: impl IntoIterator<Item = String>, nulls: Vec<String>) -> Self {
        Self {
            names: names.into_iter().collect(),
            nulls,
        }
    }

    /// The columns `schema` marks `personal = true`, with its nulls.
    #[must_use]
    pub fn from_schema(schema: &Schema) -> Self {
        Self::new(
            schema
                .columns
                .iter()
                .filter(|c| c.personal)
                .map(|c| c.name.clone()),
            schema.nulls.clone(),
        )
    }

    /// Whether no column is personal.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Which of `header` are personal; an error names a personal column the file lacks.
    fn flags(&self, header: &[String]) -> Result<Vec<bool>, PiiError> {
        if let Some(missing) = self.names.iter().find(|n| !header.contains(n)) {
            return Err(PiiError::Config(format!(
                "the schema marks column {missing:?} personal, but the file has no such column (columns: {}); check that the schema is this file's",
                header.join(", ")
            )));
        }
        Ok(header.iter().map(|h| self.names.contains(h)).collect())
    }

    /// The findings of a personal column's value: the whole value as one finding.
    fn whole(&self, value: &str, found: &[Finding], hint: Option<&ColumnHint>) -> Vec<Finding> {
        let trimmed = value.trim();
        if trimmed.is_empty() || self.nulls.iter().any(|n| n == value) {
            return Vec::new();
        }
        let entity = found
            .iter()
            .max_by_key(|f| f.end - f.start)
            .map(|f| f.entity)
            .or_else(|| hint.and_then(|h| h.entities.first().copied()))
            .unwrap_or(Entity::PersonalData);
        let start = value.len() - value.trim_start().len();
        vec![Finding {
            entity,
            start,
            end: start + trimmed.len(),
            confidence: 1.0,
            rule: "personal-column",
        }]
    }
}

/// What to do with a table (CSV or Parquet) or a text.
pub struct CsvJob<'a> {
    /// The detector.
    pub detector: &'a Detector,
    /// Reader limits.
    pub reader: ReaderOptions,
    /// When set, the redacted file goes here.
    pub redact: Option<(&'a Redactor, &'a mut dyn Write)>,
    /// Column operators (they win over the entity operators for findings in that column).
    pub columns: &'a BTreeMap<String, Operator>,
    /// When set, every finding as a JSON line (row, column, entity, span, confidence, rule;
    /// never the value).
    pub findings: Option<&'a mut dyn Write>,
    /// Neutralise the redacted file's cells against CSV injection ([`crate::safe_csv`]).
    pub safe_csv: bool,
    /// Columns redacted whole (a schema's personal columns).
    pub personal: &'a PersonalColumns,
}

/// Writes one finding as a JSON line: where it is, never what it is.
fn write_finding(out: &mut dyn Write, row: u64, column: &str, f: &Finding) -> std::io::Result<()> {
    let line = serde_json::json!({
        "row": row, "column": column, "entity": f.entity, "start": f.start, "end": f.end,
        "confidence": f.confidence, "rule": f.rule,
    });
    writeln!(out, "{line}")
}

/// What a dataset stream is read as by [`process_any`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// CSV or Parquet, by content.
    Table,
    /// Free text, line by line.
    Text,
}

/// Runs the detector (and the redactor) over a dataset stream: free text, or a table sniffed
/// as CSV or Parquet. Parquet is spooled into `spool_dir` for its random access, and its
/// redacted copy is staged there too (the Parquet writer needs a `Send` sink) and copied to
/// the job's writer once complete.
///
/// # Errors
/// As [`process_csv`], [`process_text`] and [`process_parquet`]; spooling errors as
/// [`PiiError::Io`].
pub fn process_any(
    reader: impl Read,
    input: Input,
    spool_dir: &Path,
    job: CsvJob<'_>,
) -> Result<PiiReport, PiiError> {
    let mut reader = std::io::BufReader::with_capacity(crate::stream::BUFFER, reader);
    if input == Input::Text {
        return process_text(reader, job.detector, job.redact, job.findings);
    }
    match crate::stream::sniff(&mut reader)? {
        DataFormat::Csv => process_csv(reader, job),
        DataFormat::Parquet => {
            let file = crate::stream::spool(&mut reader, spool_dir)?;
            match job.redact {
                None => process_parquet(
                    file,
                    job.detector,
                    None,
                    ParquetColumns {
                        operators: job.columns,
                        personal: job.personal,
                    },
                    job.findings,
                ),
                Some((redactor, out)) => {
                    let mut staged = crate::stream::spool(&mut std::io::empty(), spool_dir)?;
                    let report = process_parquet(
                        file,
                        job.detector,
                        Some((redactor, &mut staged)),
                        ParquetColumns {
                            operators: job.columns,
                            personal: job.personal,
                        },
                        job.findings,
                    )?;
                    std::io::Seek::rewind(&mut staged)?;
                    std::io::copy(&mut staged, out)?;
                    Ok(report)
                }
            }
        }
    }
}

/// Scans (and, with [`CsvJob::redact`], redacts) a CSV file with a header row.
///
/// # Errors
/// [`PiiError::Csv`] for an empty file, a malformed record or a value that is not UTF-8 (a
/// malformed record cannot be redacted safely: validate the file first, which quarantines
/// it); [`PiiError::Config`] for a column operator naming no column; I/O and crypto errors.
pub fn process_csv<R: Read>(input: R, mut job: CsvJob<'_>) -> Result<PiiReport, PiiError> {
    let mut reader = RecordReader::new(input, job.reader);
    let header = match reader.next_record()? {
        Next::Record => (0..reader.len())
            .map(|i| String::from_utf8_lossy(reader.field(i)).into_owned())
            .collect::<Vec<_>>(),
        Next::End => {
            return Err(PiiError::Csv {
                line: 1,
                reason: "the file is empty (a header row is needed)".into(),
            });
        }
        Next::Malformed(m) => {
            return Err(PiiError::Csv {
                line: 1,
                reason: format!("malformed header: {}", m.message()),
            });
        }
    };
    if let Some(unknown) = job.columns.keys().find(|k| !header.contains(k)) {
        return Err(PiiError::Config(format!(
            "column operator for {unknown:?}: the file has no such column (columns: {})",
            header.join(", ")
        )));
    }
    let hints: Vec<ColumnHint> = header.iter().map(|h| ColumnHint::from_name(h)).collect();
    let personal = job.personal.flags(&header)?;
    let ops: Vec<Option<Operator>> = header.iter().map(|h| job.columns.get(h).copied()).collect();
    let mut report = PiiReport::with_columns(&header);
    if let Some((_, out)) = job.redact.as_mut() {
        write_row(*out, header.iter().map(String::as_bytes))?;
    }
    let mut cells: Vec<String> = Vec::with_capacity(header.len());
    loop {
        match reader.next_record()? {
            Next::End => break,
            Next::Malformed(m) => {
                return Err(PiiError::Csv {
                    line: reader.line(),
                    reason: format!(
                        "{}; run `rampart data validate` to quarantine malformed rows first",
                        m.message()
                    ),
                });
            }
            Next::Record => {}
        }
        report.rows += 1;
        let line = reader.line();
        cells.clear();
        for i in 0..reader.len() {
            let bytes = reader.field(i);
            let text = std::str::from_utf8(bytes).map_err(|_| PiiError::Csv {
                line,
                reason: format!(
                    "column {:?} is not valid UTF-8",
                    header.get(i).map_or("?", String::as_str)
                ),
            })?;
            let mut findings = job.detector.scan_with(text, hints.get(i));
            if personal.get(i).copied().unwrap_or(false) {
                findings = job.personal.whole(text, &findings, hints.get(i));
            }
            report.record(i, text, &findings);
            if let Some(out) = job.findings.as_mut() {
                let name = header.get(i).map_or("", String::as_str);
                for f in &findings {
                    write_finding(*out, report.rows, name, f)?;
                }
            }
            if let Some((redactor, _)) = job.redact.as_ref() {
                let op = ops.get(i).copied().flatten();
                let changed = findings
                    .iter()
                    .filter(|f| redactor.operator(f.entity, op) != Operator::Keep)
                    .count();
                report.redacted += changed as u64;
                cells.push(if changed == 0 {
                    text.to_owned()
                } else {
                    redactor.redact(text, &findings, op)?
                });
            }
        }
        if let Some((_, out)) = job.redact.as_mut() {
            if job.safe_csv {
                write_row(
                    *out,
                    cells
                        .iter()
                        .map(|c| crate::safe_csv::neutralise(c.as_bytes()))
                        .collect::<Vec<_>>()
                        .iter()
                        .map(AsRef::as_ref),
                )?;
            } else {
                write_row(*out, cells.iter().map(String::as_bytes))?;
            }
        }
    }
    report.bytes = reader.bytes_read();
    Ok(report)
}

fn write_row<'b>(
    out: &mut dyn Write,
    fields: impl Iterator<Item = &'b [u8]>,
) -> std::io::Result<()> {
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        csv_field(out, f)?;
    }
    out.write_all(b"\n")
}

/// Text is scanned in blocks of whole lines of about this many bytes: one pass of each pattern
/// over a block costs far less than one per short line.
const TEXT_BLOCK_BYTES: usize = 256 << 10;

/// Scans (and, with `redact`, redacts) free text. Lines are read in blocks of about 256 KiB
/// and scanned a block at a time (context never crosses a line end; a finding may, as a
/// street address or a PEM block written over several lines does). Findings are reported per
/// line, with spans relative to their line.
///
/// # Errors
/// [`PiiError::Csv`] (naming the line) for a line over [`MAX_LINE_BYTES`] or not UTF-8; I/O
/// and crypto errors.
pub fn process_text<R: BufRead>(
    mut input: R,
    detector: &Detector,
    mut redact: Option<(&Redactor, &mut dyn Write)>,
    mut findings_out: Option<&mut dyn Write>,
) -> Result<PiiReport, PiiError> {
    let mut report = PiiReport::with_columns(&["text".to_owned()]);
    let mut block: Vec<u8> = Vec::with_capacity(TEXT_BLOCK_BYTES + MAX_LINE_BYTES + (64 << 10));
    let mut starts: Vec<usize> = Vec::new();
    let mut carry: Vec<u8> = Vec::new();
    loop {
        // Read whole buffers until the block holds TEXT_BLOCK_BYTES and ends a line (or the
        // input ends); the unfinished line is carried into the next block.
        block.clear();
        block.append(&mut carry);
        let mut eof = false;
        let mut last_newline = memchr::memrchr(b'\n', &block);
        while !eof && (block.len() < TEXT_BLOCK_BYTES || last_newline.is_none()) {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                eof = true;
                break;
            }
            let n = buf.len().min(64 << 10);
            let from = block.len();
            block.extend_from_slice(buf.get(..n).unwrap_or_default());
            input.consume(n);
            if let Some(i) = memchr::memrchr(b'\n', block.get(from..).unwrap_or_default()) {
                last_newline = Some(from + i);
            }
            let open_line = block.len() - last_newline.map_or(0, |i| i + 1);
            if open_line > MAX_LINE_BYTES {
                let line = report.rows
                    + 1
                    + memchr::memchr_iter(
                        b'\n',
                        block.get(..block.len() - open_line).unwrap_or_default(),
                    )
                    .count() as u64;
                return Err(PiiError::Csv {
                    line,
                    reason: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
                });
            }
        }
        let cut = if eof {
            block.len()
        } else {
            last_newline.map_or(block.len(), |i| i + 1)
        };
        carry.extend_from_slice(block.get(cut..).unwrap_or_default());
        block.truncate(cut);
        if block.is_empty() {
            break;
        }
        starts.clear();
        starts.push(0);
        starts.extend(
            memchr::memchr_iter(b'\n', &block)
                .map(|i| i + 1)
                .filter(|&i| i < block.len()),
        );
        if let Some(long) = starts
            .iter()
            .enumerate()
            .find(|&(k, &a)| starts.get(k + 1).copied().unwrap_or(block.len()) - a > MAX_LINE_BYTES)
        {
            return Err(PiiError::Csv {
                line: report.rows + long.0 as u64 + 1,
                reason: format!("the line is longer than {MAX_LINE_BYTES} bytes"),
            });
        }
        let text = std::str::from_utf8(&block).map_err(|e| PiiError::Csv {
            line: report.rows
                + 1
                + memchr::memchr_iter(b'\n', block.get(..e.valid_up_to()).unwrap_or_default())
                    .count() as u64,
            reason: "the line is not valid UTF-8".into(),
        })?;
        let findings = detector.scan(text);
        let mut at = 0;
        for (i, &line_start) in starts.iter().enumerate() {
            let line_end = starts.get(i + 1).copied().unwrap_or(block.len());
            let from = at;
            while findings.get(at).is_some_and(|f| f.start < line_end) {
                at += 1;
            }
            let mine = findings.get(from..at).unwrap_or_default();
            report.rows += 1;
            report.record(0, text, mine);
            if let Some(out) = findings_out.as_mut() {
                for f in mine {
                    let local = Finding {
                        start: f.start - line_start,
                        end: f.end - line_start,
                        ..f.clone()
                    };
                    write_finding(*out, report.rows, "text", &local)?;
                }
            }
        }
        report.bytes += block.len() as u64;
        if let Some((redactor, out)) = redact.as_mut() {
            report.redacted += findings
                .iter()
                .filter(|f| redactor.operator(f.entity, None) != Operator::Keep)
                .count() as u64;
            out.write_all(redactor.redact(text, &findings, None)?.as_bytes())?;
        }
        if eof && carry.is_empty() {
            break;
        }
    }
    Ok(report)
}

/// A Parquet job's column settings.
#[derive(Debug, Clone, Copy)]
pub struct ParquetColumns<'a> {
    /// Column operators (they win over the entity operators).
    pub operators: &'a BTreeMap<String, Operator>,
    /// Columns redacted whole.
    pub personal: &'a PersonalColumns,
}

/// Scans (and, with `redact`, redacts) a Parquet file column by column, record batch by
/// record batch (memory: one batch). Values are scanned in their text form as Arrow displays
/// them, so a phone number stored as an integer is found too. The redacted file keeps the
/// input's Arrow schema: text columns are rewritten; a finding in a column that is not text
/// (which cannot hold `<TYPE>`) is an error naming the column, and nothing is written.
///
/// # Errors
/// [`PiiError::Config`] for a finding to redact in a non-text column or an unknown column
/// operator; [`PiiError::Format`] (with the row number when known) for an unreadable file or
/// batch.
pub fn process_parquet(
    file: std::fs::File,
    detector: &Detector,
    redact: Option<(&Redactor, &mut (dyn Write + Send))>,
    columns: ParquetColumns<'_>,
    mut findings_out: Option<&mut dyn Write>,
) -> Result<PiiReport, PiiError> {
    use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    use arrow_schema::DataType;
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    let bad = |row: u64, e: &dyn std::fmt::Display| {
        PiiError::Format(if row == 0 {
            format!("not a readable Parquet file: {e}")
        } else {
            format!("not a readable Parquet file (near row {row}): {e}")
        })
    };
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(0, &e))?;
    let arrow_schema = builder.schema().clone();
    let header: Vec<String> = arrow_schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    if let Some(unknown) = columns.operators.keys().find(|k| !header.contains(k)) {
        return Err(PiiError::Config(format!(
            "column operator for {unknown:?}: the file has no such column (columns: {})",
            header.join(", ")
        )));
    }
    let hints: Vec<ColumnHint> = header.iter().map(|h| ColumnHint::from_name(h)).collect();
    let personal = columns.personal.flags(&header)?;
    let reader = builder
        .with_batch_size(8192)
        .build()
        .map_err(|e| bad(0, &e))?;
    let (redactor, out) = match redact {
        Some((r, o)) => (Some(r), Some(o)),
        None => (None, None),
    };
    let mut writer = match out {
        Some(out) => {
            Some(ArrowWriter::try_new(out, arrow_schema.clone(), None).map_err(|e| bad(0, &e))?)
        }
        None => None,
    };
    let mut report = PiiReport::with_columns(&header);
    let options = FormatOptions::default().with_null("");
    let mut text = String::new();
    for rb in reader {
        let rb: RecordBatch = rb.map_err(|e| bad(report.rows + 1, &e))?;
        let first_row = report.rows;
        let mut new_columns: Vec<ArrayRef> = Vec::with_capacity(rb.num_columns());
        // Which rows carry a finding, for the per-row counts.
        for (c, col) in rb.columns().iter().enumerate() {
            let name = header.get(c).map_or("", String::as_str);
            let f = ArrayFormatter::try_new(col.as_ref(), &options)
                .map_err(|e| bad(first_row + 1, &e))?;
            let is_text = matches!(
                col.data_type(),
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            );
            let mut rewritten: Vec<Option<String>> = Vec::new();
            let mut changed = false;
            for i in 0..rb.num_rows() {
                let row = first_row + i as u64 + 1;
                if col.is_null(i) {
                    rewritten.push(None);
                    continue;
                }
                text.clear();
                use std::fmt::Write as _;
                let _ = write!(text, "{}", f.value(i));
                let mut found = detector.scan_with(&text, hints.get(c));
                if personal.get(c).copied().unwrap_or(false) {
                    found = columns.personal.whole(&text, &found, hints.get(c));
                }
                report.record(c, &text, &found);
                if let Some(out) = findings_out.as_mut() {
                    for x in &found {
                        write_finding(*out, row, name, x)?;
                    }
                }
                if let Some(redactor) = redactor {
                    let op = columns.operators.get(name).copied();
                    let n = found
                        .iter()
                        .filter(|x| redactor.operator(x.entity, op) != Operator::Keep)
                        .count();
                    if n > 0 && !is_text {
                        return Err(PiiError::Config(format!(
                            "row {row}, column {name:?}: a finding to redact in a {} column, which cannot hold text; cast the column to string first",
                            col.data_type()
                        )));
                    }
                    report.redacted += n as u64;
                    changed |= n > 0;
                    rewritten.push(Some(if n > 0 {
                        redactor.redact(&text, &found, op)?
                    } else {
                        text.clone()
                    }));
                }
            }
            if writer.is_some() {
                let array: ArrayRef = if changed {
                    let strings: ArrayRef = Arc::new(StringArray::from(rewritten));
                    arrow_cast::cast(&strings, col.data_type())
                        .map_err(|e| bad(first_row + 1, &e))?
                } else {
                    col.clone()
                };
                new_columns.push(array);
            }
        }
        report.rows += rb.num_rows() as u64;
        if let Some(w) = writer.as_mut() {
            let out = RecordBatch::try_new(arrow_schema.clone(), new_columns)
                .map_err(|e| bad(first_row + 1, &e))?;
            w.write(&out).map_err(|e| bad(first_row + 1, &e))?;
        }
    }
    if let Some(w) = writer {
        w.close().map_err(|e| bad(report.rows, &e))?;
    }
    report.bytes = bytes;
    Ok(report)
}
