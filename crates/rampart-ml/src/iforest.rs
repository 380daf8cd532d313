//! Isolation forest (Liu, Ting & Zhou 2008) with scikit-learn's scoring: each tree isolates a
//! subsample of at most 256 rows by random axis-parallel cuts down to depth ⌈log₂ ψ⌉; a row's
//! anomaly score is `2^(−E[h(x)] / c(ψ))`, where `h` is the depth it reaches plus the expected
//! depth `c(n)` of the `n` training rows left in its leaf. Scores near 1 are anomalies, well
//! below 0.5 normal. `contamination` turns scores into a yes/no at a threshold.

use rayon::prelude::*;

use crate::MlError;
use crate::matrix::Matrix;
use crate::split::SplitMix64;
use crate::tree::{Node, TreeSet};

/// Subsample size per tree.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaxSamples {
    /// `min(256, rows)`, scikit-learn's `"auto"`.
    Auto,
    /// A fixed count (clamped to the rows available).
    Count(usize),
}

/// How the anomaly threshold is set.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Contamination {
    /// Score > 0.5 is an anomaly (the paper's rule, scikit-learn's `"auto"`).
    Auto,
    /// This fraction of the training rows are flagged: the threshold is that quantile of
    /// their scores.
    Fraction(f64),
}

/// Isolation forest hyperparameters (scikit-learn's names and defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IsolationParams {
    /// Number of trees.
    pub n_trees: usize,
    /// Subsample size per tree.
    pub max_samples: MaxSamples,
    /// Threshold rule.
    pub contamination: Contamination,
    /// Seed for subsamples and cuts.
    pub seed: u64,
}

impl Default for IsolationParams {
    fn default() -> Self {
        Self {
            n_trees: 100,
            max_samples: MaxSamples::Auto,
            contamination: Contamination::Auto,
            seed: 0,
        }
    }
}

/// A trained isolation forest.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationForest {
    /// One value per node: the training rows in it.
    pub(crate) trees: TreeSet,
    pub(crate) n_features: usize,
    pub(crate) max_samples: usize,
    pub(crate) threshold: f64,
    /// Per node: its depth plus `c(rows in it)` — the path length of a row that ends there.
    pub(crate) path: Vec<f64>,
}

/// `c(n)`: the average path length of an unsuccessful search in a binary search tree of `n`
/// keys — scikit-learn's `_average_path_length`.
#[must_use]
pub fn average_path_length(n: f64) -> f64 {
    const EULER: f64 = 0.577_215_664_901_532_9;
    if n <= 1.0 {
        0.0
    } else if n <= 2.0 {
        1.0
    } else {
        2.0 * ((n - 1.0).ln() + EULER) - 2.0 * (n - 1.0) / n
    }
}

impl IsolationForest {
    /// Grows the forest on `x`, then sets the threshold from `contamination`.
    ///
    /// # Errors
    /// [`MlError::Input`] for no rows or bad parameters.
    pub fn fit(x: &Matrix, params: &IsolationParams) -> Result<Self, MlError> {
        if x.rows() == 0 {
            return Err(MlError::Input("no training rows".into()));
        }
        if params.n_trees == 0 {
            return Err(MlError::Input("n_trees must be at least 1".into()));
        }
        if let Contamination::Fraction(c) = params.contamination
            && !(c > 0.0 && c <= 0.5)
        {
            return Err(MlError::Input(format!(
                "contamination {c} must be in (0, 0.5]"
            )));
        }
        let psi = match params.max_samples {
            MaxSamples::Auto => x.rows().min(256),
            MaxSamples::Count(n) => n.clamp(1, x.rows()),
        };
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let max_depth = (psi.max(2) as f64).log2().ceil() as usize;
        let built: Vec<(Vec<Node>, Vec<f32>)> = (0..params.n_trees)
            .into_par_iter()
            .map(|t| grow(x, psi, max_depth, params.seed, t))
            .collect();
        let mut trees = TreeSet::new(1);
        for (nodes, values) in &built {
            trees.push(nodes, values);
        }
        let mut forest = Self::new(trees, x.cols(), psi, 0.5);
        if let Contamination::Fraction(c) = params.contamination {
            let mut s = forest.score(x);
            s.sort_unstable_by(f64::total_cmp);
            forest.threshold = crate::drift::quantile_sorted(&s, 1.0 - c);
        }
        Ok(forest)
    }

    pub(crate) fn new(
        trees: TreeSet,
        n_features: usize,
        max_samples: usize,
        threshold: f64,
    ) -> Self {
        let path = trees
            .depths()
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let n = trees.value(i).first().copied().unwrap_or(1.0);
                f64::from(d) + average_path_length(f64::from(n))
            })
            .collect();
        Self {
            trees,
            n_features,
            max_samples,
            threshold,
            path,
        }
    }

    fn score_from_total(&self, total: f64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let mean = total / self.trees.len().max(1) as f64;
        #[allow(clippy::cast_precision_loss)]
        let c = average_path_length(self.max_samples as f64).max(f64::MIN_POSITIVE);
        (-mean / c).exp2()
    }

    /// Number of input features.
    #[must_use]
    pub const fn n_features(&self) -> usize {
        self.n_features
    }

    /// Subsample size ψ the trees were grown on.
    #[must_use]
    pub const fn max_samples(&self) -> usize {
        self.max_samples
    }

    /// Scores above this are anomalies.
    #[must_use]
    pub const fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Anomaly score of one row, in (0, 1] (scikit-learn's `-score_samples`).
    #[must_use]
    pub fn score_row(&self, row: &[f32]) -> f64 {
        let mut total = 0.0;
        let items = self.trees.roots().iter().map(|&r| (0, r, row));
        self.trees.drain::<8>(items, |_, leaf| {
            total += self.path.get(leaf).copied().unwrap_or_default();
        });
        self.score_from_total(total)
    }

    /// Anomaly scores of all rows (blocks of rows in parallel, tree by tree).
    #[must_use]
    pub fn score(&self, x: &Matrix) -> Vec<f64> {
        let d = x.cols();
        let mut totals = vec![0.0; x.rows()];
        totals
            .par_chunks_mut(crate::forest::PREDICT_BLOCK)
            .zip(x.as_slice().par_chunks(crate::forest::PREDICT_BLOCK * d))
            .for_each(|(out, rows)| {
                self.trees.accumulate_batch(rows, d, out, 1, |leaf, slot| {
                    if let Some(s) = slot.first_mut() {
                        *s += self.path.get(leaf).copied().unwrap_or_default();
                    }
                });
            });
        totals
            .into_iter()
            .map(|t| self.score_from_total(t))
            .collect()
    }

    /// Whether `score` is above the threshold.
    #[must_use]
    pub fn is_anomaly(&self, score: f64) -> bool {
        score > self.threshold
    }
}

#[allow(clippy::indexing_slicing)] // rows < x.rows(), features < x.cols(), nodes built here
fn grow(x: &Matrix, psi: usize, max_depth: usize, seed: u64, t: usize) -> (Vec<Node>, Vec<f32>) {
    let mut rng =
        SplitMix64::new(seed.wrapping_add((t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) ^ 0x150F);
    // Subsample without replacement: a partial Fisher–Yates over the row indices.
    let n = x.rows();
    let mut rows: Vec<u32> = if psi == n {
        (0..u32::try_from(n).unwrap_or(u32::MAX)).collect()
    } else {
        let mut picked = std::collections::HashMap::<usize, usize>::new();
        let mut out = Vec::with_capacity(psi);
        for i in 0..psi {
            let j = i + usize::try_from(rng.below((n - i) as u64)).unwrap_or(0);
            let vj = *picked.get(&j).unwrap_or(&j);
            let vi = *picked.get(&i).unwrap_or(&i);
            picked.insert(j, vi);
            out.push(u32::try_from(vj).unwrap_or(u32::MAX));
        }
        out
    };
    let d = x.cols();
    let mut nodes = vec![Node::LEAF];
    #[allow(clippy::cast_precision_loss)]
    let mut values = vec![rows.len() as f32];
    let mut features: Vec<usize> = (0..d).collect();
    let mut stack = vec![(0usize, 0usize, rows.len(), 0usize)];
    while let Some((id, start, end, depth)) = stack.pop() {
        let span = &mut rows[start..end];
        if depth >= max_depth || span.len() < 2 {
            continue;
        }
        // Draw features until one is not constant in this node.
        let mut cut = None;
        for i in 0..d {
            let j = i + usize::try_from(rng.below((d - i) as u64)).unwrap_or(0);
            features.swap(i, j);
            let f = features[i];
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &r in span.iter() {
                let v = x.row(r as usize)[f];
                lo = lo.min(v);
                hi = hi.max(v);
            }
            if hi > lo {
                #[allow(clippy::cast_possible_truncation)]
                let mut th =
                    (f64::from(lo) + rng.next_f64() * (f64::from(hi) - f64::from(lo))) as f32;
                if th >= hi {
                    th = lo;
                }
                cut = Some((f, th));
                break;
            }
        }
        let Some((f, th)) = cut else { continue };
        let (mut i, mut j) = (0, span.len());
        while i < j {
            if x.row(span[i] as usize)[f] <= th {
                i += 1;
            } else {
                j -= 1;
                span.swap(i, j);
            }
        }
        let left = nodes.len();
        nodes[id] = Node {
            feature: u32::try_from(f).unwrap_or(u32::MAX),
            threshold: th,
            left: u32::try_from(left).unwrap_or(u32::MAX),
            right: u32::try_from(left + 1).unwrap_or(u32::MAX),
        };
        nodes.push(Node::LEAF);
        nodes.push(Node::LEAF);
        #[allow(clippy::cast_precision_loss)]
        values.extend([i as f32, (span.len() - i) as f32]);
        stack.push((left + 1, start + i, end, depth + 1));
        stack.push((left, start, start + i, depth + 1));
    }
    (nodes, values)
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
    fn path_length_matches_scikit_learn() {
        assert_eq!(average_path_length(1.0), 0.0);
        assert_eq!(average_path_length(2.0), 1.0);
        // sklearn.ensemble._iforest._average_path_length([256])
        assert!((average_path_length(256.0) - 10.244_770_920_119_917).abs() < 1e-12);
    }

    #[test]
    fn an_isolated_point_scores_higher_and_contamination_flags_that_fraction() {
        let mut rng = SplitMix64::new(1);
        let mut data = Vec::new();
        for _ in 0..1000 {
            data.extend([rng.normal() as f32, rng.normal() as f32]);
        }
        let x = Matrix::new(1000, 2, data).unwrap();
        let f = IsolationForest::fit(
            &x,
            &IsolationParams {
                contamination: Contamination::Fraction(0.1),
                ..IsolationParams::default()
            },
        )
        .unwrap();
        assert!(
            f.score_row(&[6.0, 6.0]) > 0.7,
            "{}",
            f.score_row(&[6.0, 6.0])
        );
        assert!(f.score_row(&[0.0, 0.0]) < 0.45);
        let flagged = f.score(&x).iter().filter(|&&s| f.is_anomaly(s)).count();
        assert!((95..=105).contains(&flagged), "{flagged}");
        let g = IsolationForest::fit(&x, &IsolationParams::default()).unwrap();
        assert_eq!(g.threshold(), 0.5);
        assert_eq!(
            g,
            IsolationForest::fit(&x, &IsolationParams::default()).unwrap()
        );
    }
}
