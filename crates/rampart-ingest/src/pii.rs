//! Personal data in a dataset as services: [`scan`], [`redact`] and [`reveal`] over a file
//! [`crate::open::open_file`] opened (CSV, Parquet, or free text; age files decrypted in
//! memory), each recorded (`data.pii.scan`, `data.pii.redact`, `data.pii.reveal`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use rampart_audit::{Action, Outcome};
use rampart_data::csv::ReaderOptions;
use rampart_data::pii::table::{
    CsvJob, Input, MAX_LINE_BYTES, PersonalColumns, PiiReport, process_any,
};
use rampart_data::pii::{Detector, DetectorOptions, Entity, Operator, PiiError, Redactor};
use rampart_home::Session;

use crate::IngestError;
use crate::open::Dataset;
use crate::redact::RedactOverrides;

/// How a file is read and what is looked for.
#[derive(Debug, Clone)]
pub struct PiiRequest {
    /// Only these entities (empty: every one).
    pub only: Vec<Entity>,
    /// Findings under this confidence are dropped (`None`: the policy's
    /// `data.pii.min_confidence`).
    pub min_confidence: Option<f32>,
    /// Read the file as free text, line by line, instead of a table.
    pub text: bool,
    /// The longest CSV record, in bytes.
    pub max_row_bytes: usize,
    /// Columns redacted (and reported) whole: a schema's personal columns.
    pub personal: PersonalColumns,
}

impl Default for PiiRequest {
    fn default() -> Self {
        Self {
            only: Vec::new(),
            min_confidence: None,
            text: false,
            max_row_bytes: 1 << 20,
            personal: PersonalColumns::default(),
        }
    }
}

/// The detector the request and the policy describe.
///
/// # Errors
/// [`IngestError::Request`] for a confidence outside `[0, 1]`.
pub fn detector(s: &Session<'_>, req: &PiiRequest) -> Result<Detector, IngestError> {
    let min_confidence = req
        .min_confidence
        .unwrap_or(s.policy.data.pii.min_confidence);
    if !(0.0..=1.0).contains(&min_confidence) {
        return Err(IngestError::Request(format!(
            "a minimum confidence of {min_confidence}: it must be between 0 and 1"
        )));
    }
    Detector::new(DetectorOptions {
        min_confidence,
        entities: req.only.clone(),
    })
    .map_err(IngestError::Pii)
}

/// The detector (and the redactor) over the opened file; Parquet is spooled into the home's
/// private `runs/` directory.
struct Job<'a> {
    detector: &'a Detector,
    redact: Option<(&'a Redactor, &'a mut dyn Write)>,
    columns: &'a BTreeMap<String, Operator>,
    findings: Option<&'a mut dyn Write>,
    safe_csv: bool,
}

fn process<'a>(
    s: &Session<'_>,
    path: &Path,
    req: &'a PiiRequest,
    reader: Box<dyn Read + Send>,
    job: Job<'a>,
) -> Result<PiiReport, IngestError> {
    let runs = s.home.root().join("runs");
    rampart_home::secure_fs::create_private_dir(&runs)?;
    let csv = CsvJob {
        detector: job.detector,
        reader: ReaderOptions {
            max_record_bytes: req.max_row_bytes,
            ..ReaderOptions::default()
        },
        redact: job.redact,
        columns: job.columns,
        findings: job.findings,
        safe_csv: job.safe_csv,
        personal: &req.personal,
    };
    let kind = if req.text { Input::Text } else { Input::Table };
    process_any(reader, kind, &runs, csv).map_err(|source| IngestError::PiiInput {
        path: path.to_path_buf(),
        source,
    })
}

/// Finds personal data in `data` (opened from `path`), each finding as a JSON line into
/// `findings` when given (where, never what), and records `data.pii.scan` (failed when
/// anything was found).
///
/// # Errors
/// The request, the file, or the record.
pub fn scan(
    s: &Session<'_>,
    path: &Path,
    req: &PiiRequest,
    data: Dataset,
    findings: Option<&mut dyn Write>,
) -> Result<PiiReport, IngestError> {
    static NONE: BTreeMap<String, Operator> = BTreeMap::new();
    let detector = detector(s, req)?;
    let job = Job {
        detector: &detector,
        redact: None,
        columns: &NONE,
        findings: findings.map(|w| {
            let w: &mut dyn Write = w;
            w
        }),
        safe_csv: false,
    };
    let report = process(s, path, req, data.reader, job)?;
    let outcome = if report.findings == 0 {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    s.audit.record(
        s.audit
            .event(Action::DataPiiScan, outcome)
            .subject_path(data.real.display().to_string())
            .detail("summary", report.audit_summary()),
    )?;
    Ok(report)
}

/// Where [`redact`] writes, and how.
pub struct RedactOutput<'a> {
    /// The redacted file (named in the record).
    pub path: &'a Path,
    /// Its bytes go here.
    pub writer: &'a mut dyn Write,
    /// Neutralise cells against CSV injection.
    pub safe_csv: bool,
}

/// Redacts `data` into `out` with the policy's `[data.pii]` operators under `overrides`, and
/// records `data.pii.redact`.
///
/// # Errors
/// An operator that cannot be built (or its key loaded), the file, or the record.
pub fn redact(
    s: &Session<'_>,
    path: &Path,
    req: &PiiRequest,
    data: Dataset,
    overrides: &RedactOverrides,
    out: RedactOutput<'_>,
) -> Result<PiiReport, IngestError> {
    let RedactOutput {
        path: output,
        writer,
        safe_csv,
    } = out;
    let (redactor, columns) = crate::redact::redactor(s.home, &s.policy.data.pii, overrides)?;
    let detector = detector(s, req)?;
    let job = Job {
        detector: &detector,
        redact: Some((&redactor, writer)),
        columns: &columns,
        findings: None,
        safe_csv,
    };
    let report = process(s, path, req, data.reader, job)?;
    s.audit.record(
        s.audit
            .event(Action::DataPiiRedact, Outcome::Ok)
            .subject_path(data.real.display().to_string())
            .detail("output", output.display().to_string())
            .detail("summary", report.audit_summary()),
    )?;
    Ok(report)
}

/// Decrypts the values the `encrypt` operator wrote in `data`, line by line, into `out`
/// (`safe_csv` neutralises the revealed cells), and records `data.pii.reveal`, ok or failed.
/// Returns the number of lines.
///
/// # Errors
/// [`IngestError::Reveal`] naming the line that holds a value none of `identities` opens (a
/// line that is not UTF-8 is a [`IngestError::Request`] naming it); the output; the record.
pub fn reveal(
    s: &Session<'_>,
    path: &Path,
    data: Dataset,
    identities: &[age::x25519::Identity],
    out: RedactOutput<'_>,
) -> Result<u64, IngestError> {
    let RedactOutput {
        path: output,
        writer,
        safe_csv,
    } = out;
    let result = reveal_lines(path, data.reader, identities, safe_csv, writer);
    let outcome = if result.is_ok() {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    s.audit.record(
        s.audit
            .event(Action::DataPiiReveal, outcome)
            .subject_path(data.real.display().to_string())
            .detail("output", output.display().to_string()),
    )?;
    result
}

fn reveal_lines(
    path: &Path,
    reader: Box<dyn Read + Send>,
    identities: &[age::x25519::Identity],
    safe_csv: bool,
    out: &mut dyn Write,
) -> Result<u64, IngestError> {
    let mut input = BufReader::with_capacity(1 << 20, reader);
    let io = |source| IngestError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let limit = u64::try_from(MAX_LINE_BYTES)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let got = (&mut input)
            .take(limit)
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        if got == 0 {
            return Ok(n);
        }
        n += 1;
        let text = std::str::from_utf8(&line).map_err(|_| {
            IngestError::Request(format!("{}: line {n} is not valid UTF-8", path.display()))
        })?;
        let plain = rampart_data::pii::redact::reveal_with(text, identities, safe_csv).map_err(
            |source: PiiError| IngestError::Reveal {
                path: path.to_path_buf(),
                line: n,
                source,
            },
        )?;
        out.write_all(plain.as_bytes())
            .map_err(|source| IngestError::Write {
                path: PathBuf::from("the revealed output"),
                source,
            })?;
    }
}
