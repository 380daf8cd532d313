//! Feature binning for histogram split search: each feature's values are cut at up to 255
//! thresholds (midpoints between neighbouring sample values), so training works on one byte per
//! value and a split `bin ≤ b` is exactly the real-valued test `x ≤ thresholds[b]`.

use rayon::prelude::*;

use crate::matrix::Matrix;
use crate::split::SplitMix64;

/// Most bins per feature (bin indices fit a byte).
pub const MAX_BINS: usize = 256;
/// Rows sampled to place the thresholds (as LightGBM and scikit-learn's histogram models do).
pub const BIN_SAMPLE_ROWS: usize = 200_000;

/// Per-feature thresholds, strictly increasing. `bin(x)` is the number of thresholds below
/// `x`, so `bin(x) ≤ b ⇔ x ≤ thresholds[b]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    thresholds: Vec<Vec<f32>>,
}

/// A point in `[a, b)`, as close to the middle as `f32` allows.
fn midpoint(a: f32, b: f32) -> f32 {
    #[allow(clippy::cast_possible_truncation)]
    let m = ((f64::from(a) + f64::from(b)) / 2.0) as f32;
    if m >= b || m < a { a } else { m }
}

impl Bins {
    /// Places up to `max_bins` bins per feature from a seeded sample of at most
    /// [`BIN_SAMPLE_ROWS`] rows: features with few distinct values get one bin per value;
    /// others get quantile bins.
    #[must_use]
    pub fn fit(x: &Matrix, max_bins: usize, seed: u64) -> Self {
        let max_bins = max_bins.clamp(2, MAX_BINS);
        let sample: Vec<usize> = if x.rows() <= BIN_SAMPLE_ROWS {
            (0..x.rows()).collect()
        } else {
            let mut rng = SplitMix64::new(seed ^ 0xB1A5);
            let mut s: Vec<usize> = (0..BIN_SAMPLE_ROWS)
                .map(|_| usize::try_from(rng.below(x.rows() as u64)).unwrap_or(0))
                .collect();
            s.sort_unstable();
            s
        };
        let thresholds = (0..x.cols())
            .into_par_iter()
            .map(|f| {
                let mut v: Vec<f32> = sample
                    .iter()
                    .map(|&r| x.row(r).get(f).copied().unwrap_or_default())
                    .collect();
                v.sort_unstable_by(f32::total_cmp);
                feature_thresholds(&v, max_bins)
            })
            .collect();
        Self { thresholds }
    }

    /// Thresholds of feature `f`.
    #[must_use]
    pub fn thresholds(&self, f: usize) -> &[f32] {
        self.thresholds.get(f).map_or(&[], Vec::as_slice)
    }

    /// Number of bins of feature `f`.
    #[must_use]
    pub fn n_bins(&self, f: usize) -> usize {
        self.thresholds(f).len() + 1
    }

    /// The bin of `v` in feature `f`.
    #[must_use]
    pub fn bin(&self, f: usize, v: f32) -> u8 {
        u8::try_from(self.thresholds(f).partition_point(|&t| t < v)).unwrap_or(u8::MAX)
    }

    /// The whole matrix binned, column-major (`out[f * rows + r]`).
    #[must_use]
    pub fn apply(&self, x: &Matrix) -> Vec<u8> {
        let rows = x.rows();
        let mut out = vec![0u8; rows * x.cols()];
        if rows == 0 {
            return out;
        }
        out.par_chunks_mut(rows).enumerate().for_each(|(f, col)| {
            for (slot, row) in col.iter_mut().zip(x.iter_rows()) {
                *slot = self.bin(f, row.get(f).copied().unwrap_or_default());
            }
        });
        out
    }
}

/// Thresholds for one feature from its sorted sample values.
fn feature_thresholds(sorted: &[f32], max_bins: usize) -> Vec<f32> {
    let mut distinct = sorted.to_vec();
    distinct.dedup();
    let mut out = Vec::new();
    if distinct.len() <= max_bins {
        for w in distinct.windows(2) {
            if let [a, b] = *w {
                out.push(midpoint(a, b));
            }
        }
        return out;
    }
    for k in 1..max_bins {
        let idx = k * sorted.len() / max_bins;
        let Some(&v) = sorted.get(idx.saturating_sub(1)) else {
            continue;
        };
        let next = sorted.partition_point(|&a| a <= v);
        if let Some(&b) = sorted.get(next) {
            let t = midpoint(v, b);
            if out.last().is_none_or(|&l| t > l) {
                out.push(t);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        clippy::cast_sign_loss
    )]
    use super::*;

    #[test]
    fn few_values_get_one_bin_each_and_bins_match_thresholds() {
        let x = Matrix::new(6, 1, vec![3.0, 1.0, 2.0, 2.0, 1.0, 3.0]).unwrap();
        let b = Bins::fit(&x, 256, 0);
        assert_eq!(b.thresholds(0), &[1.5, 2.5]);
        assert_eq!(b.apply(&x), vec![2, 0, 1, 1, 0, 2]);
    }

    #[test]
    fn many_values_are_cut_at_quantiles_and_bin_order_matches_value_order() {
        let data: Vec<f32> = (0..10_000).map(|i| ((i * 7919) % 10_000) as f32).collect();
        let x = Matrix::new(10_000, 1, data.clone()).unwrap();
        let b = Bins::fit(&x, 256, 0);
        assert_eq!(b.n_bins(0), 256);
        let binned = b.apply(&x);
        for (i, &v) in data.iter().enumerate() {
            let bin = binned[i] as usize;
            let t = b.thresholds(0);
            if bin > 0 {
                assert!(v > t[bin - 1]);
            }
            if bin < t.len() {
                assert!(v <= t[bin]);
            }
        }
        let mut counts = [0usize; 256];
        for &bin in &binned {
            counts[bin as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (30..=50).contains(&c)), "{counts:?}");
    }
}
