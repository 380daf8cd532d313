//! CSV tables for the built-in models: a header row, numeric feature columns, an optional
//! label column of any text. Read in one streaming pass with this crate's strict record reader
//! ([`crate::csv`]: the one CSV reader rampart has) that also hashes the file, so the digest
//! recorded in a model is of exactly the bytes trained on.

use std::io::Read;
use std::path::{Path, PathBuf};

use rampart_crypto::Sha256Hasher;
use rampart_ml::Matrix;

use crate::csv::{Next, ReaderOptions, RecordReader};

/// A loaded table.
#[derive(Debug)]
pub struct Table {
    /// Every column name, in file order.
    pub header: Vec<String>,
    /// Feature column names, in the order of `x`'s columns.
    pub features: Vec<String>,
    /// Feature values.
    pub x: Matrix,
    /// The label column's raw values, if one was asked for.
    pub labels: Option<Vec<String>>,
    /// Every record's fields as read (kept only when asked, for `predict`'s output).
    pub records: Vec<Vec<String>>,
    /// `sha256:<hex>` of the file.
    pub digest: String,
}

/// What to read.
#[derive(Debug, Clone, Copy)]
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

/// A table that cannot be used: the file, what is wrong (naming the line and column), and
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct TableError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
    /// What to do, when there is something.
    pub hint: Option<String>,
}

fn bad(path: &Path, reason: impl std::fmt::Display) -> TableError {
    TableError {
        path: path.to_path_buf(),
        reason: reason.to_string(),
        hint: None,
    }
}

impl TableError {
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
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

/// The current record's fields as text, or why they are not.
fn fields<R: Read>(
    rdr: &mut RecordReader<R>,
    path: &Path,
    width: Option<usize>,
) -> Result<Vec<String>, TableError> {
    let line = rdr.line();
    if let Some(w) = width
        && rdr.len() != w
    {
        return Err(bad(
            path,
            format!("line {line}: {} fields, the header has {w}", rdr.len()),
        )
        .hint("every row needs as many fields as the header"));
    }
    (0..rdr.len())
        .map(|i| {
            String::from_utf8(rdr.field(i).to_vec())
                .map_err(|_| bad(path, format!("line {line}: field {} is not UTF-8", i + 1)))
        })
        .collect()
}

/// Reads the table in `file` (named `path` in messages) as `spec` says.
///
/// # Errors
/// A [`TableError`] naming the line and column: no or a duplicate header, an unknown column,
/// a malformed record, a wrong field count, a feature that is not a finite number, an empty
/// label, no rows.
#[allow(clippy::too_many_lines)]
pub fn read(path: &Path, file: impl Read, spec: &Spec<'_>) -> Result<Table, TableError> {
    let mut hashing = Hashing {
        inner: std::io::BufReader::with_capacity(1 << 20, file),
        hasher: Sha256Hasher::new(),
    };
    let mut rdr = RecordReader::new(&mut hashing, ReaderOptions::default());
    let io = |e: std::io::Error| bad(path, format!("cannot read: {e}"));
    let header: Vec<String> = match rdr.next_record().map_err(io)? {
        Next::Record => fields(&mut rdr, path, None)?
            .into_iter()
            .map(|h| h.trim().to_owned())
            .collect(),
        Next::Malformed(m) => {
            return Err(bad(
                path,
                format!("cannot read the header row: {}", m.message()),
            ));
        }
        Next::End => Vec::new(),
    };
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
    let mut rows = 0usize;
    loop {
        match rdr.next_record().map_err(io)? {
            Next::Record => {}
            Next::End => break,
            Next::Malformed(m) => {
                return Err(bad(path, format!("line {}: {}", rdr.line(), m.message())));
            }
        }
        let line = rdr.line();
        let record = fields(&mut rdr, path, Some(header.len()))?;
        for (&i, name) in feature_idx.iter().zip(&features) {
            let raw = record.get(i).map_or("", |f| f.trim());
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
            let raw = record.get(i).map_or("", |f| f.trim());
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
            records.push(record);
        }
        rows += 1;
    }
    drop(rdr);
    // Hash whatever the reader did not need to read (nothing, normally).
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(io)?;
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
#[must_use]
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

/// Label indices into `classes`.
///
/// # Errors
/// An unknown label, naming its data row.
pub fn encode(
    path: &Path,
    labels: &[String],
    classes: &[String],
) -> Result<Vec<usize>, TableError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    use super::{Spec, classes, read};

    fn spec<'a>(label: Option<&'a str>, ignore: &'a [String]) -> Spec<'a> {
        Spec {
            label,
            features: None,
            ignore,
            keep_records: true,
        }
    }

    #[test]
    fn reads_features_labels_and_the_digest_of_the_bytes() {
        let text = "a,b,y\n1,2,no\n\"3\",4.5,yes\n";
        let t = read(Path::new("t.csv"), text.as_bytes(), &spec(Some("y"), &[])).unwrap();
        assert_eq!(t.features, ["a", "b"]);
        assert_eq!(t.labels.as_deref().unwrap(), ["no", "yes"]);
        assert_eq!(t.records[1], ["3", "4.5", "yes"]);
        assert_eq!(
            t.digest,
            rampart_crypto::sha256(text.as_bytes())
                .reference()
                .to_string()
        );
        assert_eq!(classes(&["2".into(), "10".into(), "2".into()]), ["2", "10"]);
    }

    #[test]
    fn bad_tables_name_the_line_and_column() {
        for (text, needle) in [
            ("", "no header row"),
            ("a,a\n1,2\n", "appears twice"),
            ("a,y\n1\n", "line 2: 1 fields, the header has 2"),
            ("a,y\nx,1\n", "line 2, column `a`: `x` is not a number"),
            ("a,y\ninf,1\n", "not a finite number"),
            ("a,y\n1,\n", "line 2: the label column `y` is empty"),
            (
                "a,y\n1,\"open\n",
                "line 2: a quoted field that never closes",
            ),
            ("a,y\n", "no data rows"),
            ("a,b\n1,2\n", "no column `y`"),
        ] {
            let e = read(Path::new("t.csv"), text.as_bytes(), &spec(Some("y"), &[])).unwrap_err();
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
            assert!(e.to_string().starts_with("t.csv: "), "{e}");
        }
    }
}
