//! CSV tables for `rampart ml`: a header row, numeric feature columns, an optional label
//! column of any text. Read in one streaming pass that also hashes the file, so the digest
//! recorded in a model is of exactly the bytes trained on.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rampart_crypto::Sha256Hasher;
use rampart_ml::Matrix;

use crate::error::CliError;

/// A loaded table.
pub struct Table {
    /// Every column name, in file order.
    pub header: Vec<String>,
    /// Feature column names, in the order of `x`'s columns.
    pub features: Vec<String>,
    /// Feature values.
    pub x: Matrix,
    /// The label column's raw values, if one was asked for.
    pub labels: Option<Vec<String>>,
    /// Every record as read (kept only when asked, for `predict`'s output).
    pub records: Vec<csv::StringRecord>,
    /// `sha256:<hex>` of the file.
    pub digest: String,
}

/// What to read.
pub struct Spec<'a> {
    /// The label column, if any.
    pub label: Option<&'a str>,
    /// Feature columns by name, in this order; `None` → every column but the label and
    /// `ignore`.
    pub features: Option<&'a [String]>,
    /// Columns to leave out.
    pub ignore: &'a [String],
    /// Keep the raw records.
    pub keep_records: bool,
}

struct Hashing<R> {
    inner: R,
    hasher: Sha256Hasher,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

fn bad(path: &Path, msg: impl std::fmt::Display) -> CliError {
    CliError::input(anyhow::anyhow!("{}: {msg}", path.display()))
}

/// Reads the table in `file` (named `path` in messages) as `spec` says.
pub fn read(path: &Path, file: Box<dyn Read>, spec: &Spec<'_>) -> Result<Table, CliError> {
    let mut hashing = Hashing {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: Sha256Hasher::new(),
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(&mut hashing);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| bad(path, format!("cannot read the header row: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(bad(path, "no header row").hint("the first line must name the columns"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = header.iter().find(|h| !seen.insert(h.as_str())) {
        return Err(bad(
            path,
            format!("column `{dup}` appears twice in the header"),
        ));
    }
    let find = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            bad(path, format!("no column `{name}`"))
                .hint(format!("the columns are: {}", header.join(", ")))
        })
    };
    let label_idx = spec.label.map(find).transpose()?;
    for i in spec.ignore {
        find(i)?;
    }
    let feature_idx: Vec<usize> = match spec.features {
        Some(names) => names.iter().map(|n| find(n)).collect::<Result<_, _>>()?,
        None => (0..header.len())
            .filter(|&i| {
                Some(i) != label_idx && header.get(i).is_some_and(|h| !spec.ignore.contains(h))
            })
            .collect(),
    };
    if feature_idx.is_empty() {
        return Err(bad(path, "no feature columns left"));
    }
    let features: Vec<String> = feature_idx
        .iter()
        .map(|&i| header.get(i).cloned().unwrap_or_default())
        .collect();
    let mut values: Vec<f32> = Vec::new();
    let mut labels = label_idx.map(|_| Vec::new());
    let mut records = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut rows = 0usize;
    loop {
        match rdr.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                return Err(bad(path, format!("line {line}: {e}"))
                    .hint("every row needs as many fields as the header"));
            }
        }
        let line = record
            .position()
            .map_or(rows as u64 + 2, csv::Position::line);
        for (&i, name) in feature_idx.iter().zip(&features) {
            let raw = record.get(i).unwrap_or_default().trim();
            let v: f32 = raw.parse().map_err(|_| {
                bad(
                    path,
                    format!("line {line}, column `{name}`: `{raw}` is not a number"),
                )
                .hint(format!(
                    "encode the column as numbers, or leave it out with --ignore {name}"
                ))
            })?;
            if !v.is_finite() {
                return Err(bad(
                    path,
                    format!("line {line}, column `{name}`: `{raw}` is not a finite number"),
                )
                .hint("fill or drop missing values before training"));
            }
            values.push(v);
        }
        if let (Some(l), Some(i)) = (labels.as_mut(), label_idx) {
            let raw = record.get(i).unwrap_or_default().trim();
            if raw.is_empty() {
                return Err(bad(
                    path,
                    format!(
                        "line {line}: the label column `{}` is empty",
                        spec.label.unwrap_or_default()
                    ),
                ));
            }
            l.push(raw.to_owned());
        }
        if spec.keep_records {
            records.push(record.clone());
        }
        rows += 1;
    }
    drop(rdr);
    // Hash whatever the CSV reader did not need to read (nothing, normally).
    std::io::copy(&mut hashing, &mut std::io::sink())
        .map_err(|e| bad(path, format!("cannot read: {e}")))?;
    if rows == 0 {
        return Err(bad(path, "no data rows after the header"));
    }
    let x = Matrix::new(rows, features.len(), values).map_err(|e| bad(path, e))?;
    Ok(Table {
        header,
        features,
        x,
        labels,
        records,
        digest: hashing.hasher.finish().reference().to_string(),
    })
}

/// The sorted distinct labels: numerically if every label is a number, else as text.
pub fn classes(labels: &[String]) -> Vec<String> {
    let mut c: Vec<String> = labels.to_vec();
    c.sort_unstable();
    c.dedup();
    let numeric: Option<Vec<f64>> = c.iter().map(|s| s.parse::<f64>().ok()).collect();
    if let Some(n) = numeric {
        let mut pairs: Vec<(f64, String)> = n.into_iter().zip(c).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        return pairs.into_iter().map(|p| p.1).collect();
    }
    c
}

/// Label indices into `classes`; an unknown label is an error naming its row.
pub fn encode(path: &Path, labels: &[String], classes: &[String]) -> Result<Vec<usize>, CliError> {
    let index: std::collections::HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    labels
        .iter()
        .enumerate()
        .map(|(row, l)| {
            index.get(l.as_str()).copied().ok_or_else(|| {
                bad(
                    path,
                    format!(
                        "data row {}: label `{l}` is not one of the model's classes",
                        row + 1
                    ),
                )
                .hint(format!("the model knows: {}", classes.join(", ")))
            })
        })
        .collect()
}

/// Bytes of a model file, refusing anything over `limit`.
pub fn read_model_file(path: &PathBuf, limit: u64) -> Result<Vec<u8>, CliError> {
    let file = File::open(path).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot open {}", path.display())))
    })?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(bad(
            path,
            format!("larger than the {limit}-byte model limit"),
        ));
    }
    Ok(bytes)
}
