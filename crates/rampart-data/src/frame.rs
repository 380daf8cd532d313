//! A whole CSV table in memory, column by column, for the statistics that need every row at
//! once (drift, poisoning checks). Loading is bounded: [`FrameLimits`] caps rows and bytes, and
//! a file over either is an error that names the limit, never a partial result.

use std::io::Read;

use crate::csv::{Next, ReaderOptions, RecordReader};

/// Load limits.
#[derive(Debug, Clone, Copy)]
pub struct FrameLimits {
    /// The most data rows.
    pub max_rows: usize,
    /// The most bytes of cell text held.
    pub max_bytes: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_rows: 10_000_000,
            max_bytes: 2 << 30,
        }
    }
}

/// Why a table could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The CSV is malformed or over a limit.
    #[error("line {line}: {reason}")]
    Csv {
        /// 1-based line of the record.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// A Parquet file cannot be read.
    #[error("not a readable Parquet file: {0}")]
    Format(String),
    /// The file is over a load limit.
    #[error("{0}")]
    TooLarge(String),
}

/// Texts read as missing values when no schema says otherwise.
pub const DEFAULT_NULLS: &[&str] = &["", "NA", "N/A", "null", "NULL", "None", "NaN", "nan"];

/// A table: header names and one vector of cells per column (`None` for a null).
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// Column names in file order.
    pub names: Vec<String>,
    /// `columns[c][r]`: the cell of row `r` in column `c`.
    pub columns: Vec<Vec<Option<Box<str>>>>,
}

impl Frame {
    /// Reads a CSV file with a header row; cells equal to one of `nulls` become `None`.
    ///
    /// # Errors
    /// [`FrameError::Csv`] naming the line of a malformed, ragged or non-UTF-8 record (validate
    /// the file first: validation quarantines such rows); [`FrameError::TooLarge`].
    pub fn read_csv<R: Read>(
        input: R,
        nulls: &[&str],
        reader: ReaderOptions,
        limits: FrameLimits,
    ) -> Result<Self, FrameError> {
        let mut r = RecordReader::new(input, reader);
        let names: Vec<String> = match r.next_record()? {
            Next::Record => (0..r.len())
                .map(|i| String::from_utf8_lossy(r.field(i)).trim().to_owned())
                .collect(),
            Next::End => {
                return Err(FrameError::Csv {
                    line: 1,
                    reason: "the file is empty (a header row is needed)".into(),
                });
            }
            Next::Malformed(m) => {
                return Err(FrameError::Csv {
                    line: 1,
                    reason: format!("malformed header: {}", m.message()),
                });
            }
        };
        let mut columns: Vec<Vec<Option<Box<str>>>> = vec![Vec::new(); names.len()];
        let mut bytes = 0usize;
        let mut rows = 0usize;
        loop {
            match r.next_record()? {
                Next::End => break,
                Next::Malformed(m) => {
                    return Err(FrameError::Csv {
                        line: r.line(),
                        reason: format!("{}; validate the file first", m.message()),
                    });
                }
                Next::Record => {}
            }
            if r.len() != names.len() {
                return Err(FrameError::Csv {
                    line: r.line(),
                    reason: format!("{} fields where the header has {}", r.len(), names.len()),
                });
            }
            rows += 1;
            if rows > limits.max_rows {
                return Err(FrameError::TooLarge(format!(
                    "more than {} rows: this check holds the whole table in memory",
                    limits.max_rows
                )));
            }
            let line = r.line();
            for (i, col) in columns.iter_mut().enumerate() {
                let cell = std::str::from_utf8(r.field(i)).map_err(|_| FrameError::Csv {
                    line,
                    reason: format!("column {:?} is not valid UTF-8", names.get(i)),
                })?;
                bytes += cell.len() + 16;
                col.push((!nulls.contains(&cell)).then(|| cell.into()));
            }
            if bytes > limits.max_bytes {
                return Err(FrameError::TooLarge(format!(
                    "more than {} bytes of cells: this check holds the whole table in memory",
                    limits.max_bytes
                )));
            }
        }
        Ok(Self { names, columns })
    }

    /// Reads a Parquet file, each value in its text form as Arrow displays it (as validation
    /// sees it); nulls become `None`, and so do values equal to one of `nulls`.
    ///
    /// # Errors
    /// [`FrameError::Format`] for a file Parquet cannot read; [`FrameError::TooLarge`].
    pub fn read_parquet(
        file: std::fs::File,
        nulls: &[&str],
        limits: FrameLimits,
    ) -> Result<Self, FrameError> {
        use arrow_array::Array as _;
        use arrow_cast::display::{ArrayFormatter, FormatOptions};
        use std::fmt::Write as _;
        let bad = |e: &dyn std::fmt::Display| FrameError::Format(e.to_string());
        let on_disk = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bomb = usize::try_from(
            on_disk
                .saturating_mul(crate::parquet::MAX_EXPANSION)
                .max(crate::parquet::MIN_DECODED_LIMIT),
        )
        .unwrap_or(usize::MAX);
        let builder = crate::parquet::dictionary_builder(file).map_err(|e| bad(&e))?;
        let names: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let reader = builder.with_batch_size(8192).build().map_err(|e| bad(&e))?;
        let mut columns: Vec<Vec<Option<Box<str>>>> = vec![Vec::new(); names.len()];
        let options = FormatOptions::default().with_null("");
        let (mut rows, mut bytes) = (0usize, 0usize);
        let mut text = String::new();
        for rb in reader {
            let rb = rb.map_err(|e| bad(&e))?;
            rows += rb.num_rows();
            if rows > limits.max_rows {
                return Err(FrameError::TooLarge(format!(
                    "more than {} rows: this check holds the whole table in memory",
                    limits.max_rows
                )));
            }
            for (c, col) in rb.columns().iter().enumerate() {
                let f = ArrayFormatter::try_new(col.as_ref(), &options).map_err(|e| bad(&e))?;
                let Some(out) = columns.get_mut(c) else {
                    continue;
                };
                for i in 0..rb.num_rows() {
                    if col.is_null(i) {
                        out.push(None);
                        continue;
                    }
                    text.clear();
                    let _ = write!(text, "{}", f.value(i));
                    bytes += text.len() + 16;
                    if bytes > limits.max_bytes {
                        return Err(FrameError::TooLarge(format!(
                            "more than {} bytes of cells: this check holds the whole table in memory",
                            limits.max_bytes
                        )));
                    }
                    if bytes > bomb {
                        return Err(FrameError::TooLarge(format!(
                            "its decoded values exceed {bomb} bytes, over {} times the file's {on_disk} bytes (a dictionary or compression bomb); refused",
                            crate::parquet::MAX_EXPANSION
                        )));
                    }
                    out.push((!nulls.contains(&text.as_str())).then(|| text.as_str().into()));
                }
            }
        }
        Ok(Self { names, columns })
    }

    /// The number of data rows.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// The index of the column called `name`.
    #[must_use]
    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Column `c` as numbers, if every non-null cell is a finite number; nulls are skipped
    /// when `keep_rows` is false and become NaN when it is true.
    #[must_use]
    pub fn numeric(&self, c: usize, keep_rows: bool) -> Option<Vec<f64>> {
        let col = self.columns.get(c)?;
        let mut out = Vec::with_capacity(col.len());
        let mut any = false;
        for cell in col {
            match cell {
                Some(s) => {
                    let v: f64 = s.trim().parse().ok().filter(|v: &f64| v.is_finite())?;
                    out.push(v);
                    any = true;
                }
                None if keep_rows => out.push(f64::NAN),
                None => {}
            }
        }
        any.then_some(out)
    }
}
