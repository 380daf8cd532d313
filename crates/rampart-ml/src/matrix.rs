//! Dense feature matrices: row-major `f32`, every value finite.

use crate::MlError;

/// `rows × cols` finite `f32` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Matrix {
    /// Wraps `data` (row-major). Refuses a length that is not `rows × cols`, zero columns, and
    /// non-finite values (naming the first one's row and column).
    ///
    /// # Errors
    /// [`MlError::Input`] as above.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Self, MlError> {
        if cols == 0 {
            return Err(MlError::Input("a matrix needs at least one column".into()));
        }
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(MlError::Input(format!(
                "{} values do not make {rows} rows of {cols} columns",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(MlError::Input(format!(
                "row {}, column {}: value {} is not finite",
                i / cols,
                i % cols,
                data.get(i).copied().unwrap_or(f32::NAN)
            )));
        }
        Ok(Self { rows, cols, data })
    }

    /// Number of rows.
    #[must_use]
    pub const fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    #[must_use]
    pub const fn cols(&self) -> usize {
        self.cols
    }

    /// All values, row-major.
    #[must_use]
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Row `i` (empty when out of range).
    #[must_use]
    pub fn row(&self, i: usize) -> &[f32] {
        let start = i.saturating_mul(self.cols);
        self.data
            .get(start..start.saturating_add(self.cols))
            .unwrap_or_default()
    }

    /// All rows in order.
    pub fn iter_rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.data.chunks_exact(self.cols)
    }

    /// Column `j`, copied out.
    #[must_use]
    pub fn column(&self, j: usize) -> Vec<f32> {
        self.iter_rows()
            .map(|r| r.get(j).copied().unwrap_or_default())
            .collect()
    }

    /// The rows at `indices`, in that order (out-of-range indices are skipped).
    #[must_use]
    pub fn select_rows(&self, indices: &[usize]) -> Self {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        let mut rows = 0;
        for &i in indices {
            if i < self.rows {
                data.extend_from_slice(self.row(i));
                rows += 1;
            }
        }
        Self {
            rows,
            cols: self.cols,
            data,
        }
    }
}
