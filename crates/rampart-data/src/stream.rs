//! A dataset stream in either supported format, told by its first bytes: CSV, or Parquet
//! (the `PAR1` magic). Parquet needs random access, so it is first copied into an unnamed
//! file in a directory the caller names (a private one: the plaintext of an encrypted dataset
//! passes through it), gone when closed.

use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::Path;

use crate::csv::ReaderOptions;
use crate::frame::{Frame, FrameError, FrameLimits};
use crate::schema::Schema;
use crate::validate::{Report, Sinks, ValidateError, ValidateOptions, validate_csv};

/// The format of a dataset's plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
}

impl DataFormat {
    /// The file extension (and the name in a dataset manifest).
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Parquet => "parquet",
        }
    }

    /// Both formats, in the order a store looks for them.
    pub const ALL: [Self; 2] = [Self::Csv, Self::Parquet];
}

/// The buffer a stream is sniffed and read through.
/// The read buffer of a sniffed stream.
pub const BUFFER: usize = 1 << 20;

/// Copies a stream into an unnamed file in `dir`, rewound.
///
/// # Errors
/// Creating the file in `dir`, reading or writing.
pub fn spool(reader: &mut dyn Read, dir: &Path) -> io::Result<std::fs::File> {
    let mut file = tempfile::tempfile_in(dir)?;
    io::copy(reader, &mut file)?;
    file.rewind()?;
    Ok(file)
}

/// Whether a buffered stream starts with the Parquet magic (nothing is consumed).
///
/// # Errors
/// Reading the stream's first bytes.
pub fn sniff(reader: &mut impl BufRead) -> io::Result<DataFormat> {
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(crate::parquet::MAGIC) {
        DataFormat::Parquet
    } else {
        DataFormat::Csv
    })
}

/// Validates a dataset stream, CSV or Parquet; clean rows are written in the input's format.
///
/// # Errors
/// As [`validate_csv`] and [`crate::parquet::validate_parquet`]; spooling errors as
/// [`ValidateError::Io`].
pub fn validate_any<'s>(
    reader: impl Read + Send,
    schema: &Schema,
    opts: &ValidateOptions,
    spool_dir: &Path,
    clean: Option<&'s mut (dyn Write + Send + 's)>,
    quarantine: Option<&'s mut (dyn Write + 's)>,
) -> Result<(Report, DataFormat), ValidateError> {
    let mut buffered = BufReader::with_capacity(BUFFER, reader);
    match sniff(&mut buffered)? {
        DataFormat::Csv => {
            let sinks = Sinks {
                clean: clean.map(|w| w as &mut dyn Write),
                quarantine,
            };
            let report = validate_csv(buffered, schema, opts, sinks)?;
            Ok((report, DataFormat::Csv))
        }
        DataFormat::Parquet => {
            let file = spool(&mut buffered, spool_dir)?;
            let report = crate::parquet::validate_parquet(
                file,
                schema,
                clean,
                quarantine,
                opts.safe_csv.for_reports(),
            )?;
            Ok((report, DataFormat::Parquet))
        }
    }
}

/// Proposes a schema from a sample of a dataset stream, CSV or Parquet (spooled into
/// `spool_dir` for its random access).
///
/// # Errors
/// As [`crate::infer::infer_csv`] and [`crate::infer::infer_parquet`]; spooling errors as
/// [`ValidateError::Io`].
pub fn infer_any(
    reader: impl Read,
    sample_rows: u64,
    label: Option<&str>,
    spool_dir: &Path,
) -> Result<crate::infer::Inferred, ValidateError> {
    let mut buffered = BufReader::with_capacity(BUFFER, reader);
    match sniff(&mut buffered)? {
        DataFormat::Csv => {
            crate::infer::infer_csv(buffered, sample_rows, label, ReaderOptions::default())
        }
        DataFormat::Parquet => {
            let file = spool(&mut buffered, spool_dir)?;
            crate::infer::infer_parquet(file, sample_rows, label)
        }
    }
}

/// Loads a whole table, CSV or Parquet, with the default limits.
///
/// # Errors
/// As [`Frame::read_csv`] and [`Frame::read_parquet`].
pub fn frame_any(reader: impl Read, nulls: &[&str], spool_dir: &Path) -> Result<Frame, FrameError> {
    let mut buffered = BufReader::with_capacity(BUFFER, reader);
    match sniff(&mut buffered)? {
        DataFormat::Csv => Frame::read_csv(
            buffered,
            nulls,
            ReaderOptions::default(),
            FrameLimits::default(),
        ),
        DataFormat::Parquet => {
            let file = spool(&mut buffered, spool_dir)?;
            Frame::read_parquet(file, nulls, FrameLimits::default())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn csv_and_parquet_are_told_apart_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let schema =
            Schema::from_toml("version = 1\n[[columns]]\nname = \"a\"\ntype = \"int\"\n").unwrap();
        let opts = ValidateOptions::default();
        let mut clean = Vec::new();
        let (report, format) = validate_any(
            &b"a\n1\nx\n"[..],
            &schema,
            &opts,
            dir.path(),
            Some(&mut clean),
            None,
        )
        .unwrap();
        assert_eq!(format, DataFormat::Csv);
        assert_eq!((report.accepted, report.rejected), (1, 1));
        assert_eq!(clean, b"a\n1\n");
        // A file that starts with the Parquet magic is spooled and read as Parquet: a broken
        // one is a format error, never read as CSV.
        let err = validate_any(
            &b"PAR1 not really"[..],
            &schema,
            &opts,
            dir.path(),
            None,
            None,
        )
        .unwrap_err();
        assert!(matches!(err, ValidateError::Format(_)), "{err}");
        let frame = frame_any(&b"a,b\n1,\n"[..], &[""], dir.path()).unwrap();
        assert_eq!(frame.rows(), 1);
        assert!(frame_any(&b"PAR1 broken"[..], &[""], dir.path()).is_err());
    }

    #[test]
    fn inference_and_pii_read_either_format_by_content() {
        use crate::pii::table::{CsvJob, Input, process_any};
        let dir = tempfile::tempdir().unwrap();
        let got = infer_any(&b"a,b\n1,x\n2,y\n"[..], 100, None, dir.path()).unwrap();
        assert_eq!(got.rows, 2);
        assert_eq!(got.schema.columns.len(), 2);
        assert!(infer_any(&b"PAR1 broken"[..], 100, None, dir.path()).is_err());
        let detector = crate::pii::Detector::new(crate::pii::DetectorOptions::default()).unwrap();
        let columns = std::collections::BTreeMap::new();
        let personal = crate::pii::table::PersonalColumns::default();
        let job = || CsvJob {
            detector: &detector,
            reader: ReaderOptions::default(),
            redact: None,
            columns: &columns,
            findings: None,
            safe_csv: false,
            personal: &personal,
        };
        let csv = b"name,email\nann,ann@example.com\n";
        let report = process_any(&csv[..], Input::Table, dir.path(), job()).unwrap();
        assert_eq!(report.findings, 1);
        // The same bytes as text: one finding too, in the one text column.
        let report = process_any(&csv[..], Input::Text, dir.path(), job()).unwrap();
        assert_eq!(report.findings, 1);
        // Parquet magic is never read as CSV.
        assert!(process_any(&b"PAR1 broken"[..], Input::Table, dir.path(), job()).is_err());
    }
}
