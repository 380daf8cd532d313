//! Random forest classifier: bootstrap samples, a random subset of features per node, gini or
//! entropy splits found on binned features (histograms for large nodes, a sort for small ones),
//! trees grown in parallel and stored as flat arrays so that prediction is a tight loop.
//!
//! Same data, parameters and seed → the same trees, whatever the thread count: each tree draws
//! from its own generator seeded by `(seed, tree index)`.

use rayon::prelude::*;

use crate::MlError;
use crate::bins::Bins;
use crate::matrix::Matrix;
use crate::split::SplitMix64;
use crate::tree::{Node, TreeSet};

/// Split quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// Gini impurity.
    Gini,
    /// Shannon entropy (information gain).
    Entropy,
}

/// Features considered at each split.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaxFeatures {
    /// ⌊√d⌋ (at least one) — scikit-learn's default for classifiers.
    Sqrt,
    /// ⌊log₂ d⌋ (at least one).
    Log2,
    /// All features.
    All,
    /// A fixed count (clamped to `1..=d`).
    Count(usize),
    /// A fraction of the features.
    Fraction(f64),
}

impl MaxFeatures {
    /// The number of features for `d` features.
    #[must_use]
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    pub fn resolve(self, d: usize) -> usize {
        let n = match self {
            Self::Sqrt => (d as f64).sqrt().floor() as usize,
            Self::Log2 => (d as f64).log2().floor() as usize,
            Self::All => d,
            Self::Count(n) => n,
            Self::Fraction(f) => (f.clamp(0.0, 1.0) * d as f64).floor() as usize,
        };
        n.clamp(1, d.max(1))
    }
}

/// Per-class weights.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every row weighs 1.
    #[default]
    None,
    /// `n / (k · count(class))`, as scikit-learn's `"balanced"`.
    Balanced,
    /// Given per class, in class order.
    Manual(Vec<f64>),
}

/// Random forest hyperparameters (scikit-learn's names and defaults, plus `max_bins`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ForestParams {
    /// Number of trees.
    pub n_trees: usize,
    /// Split quality.
    pub criterion: Criterion,
    /// Deepest level (root = 0); `None` grows until leaves are pure or too small.
    pub max_depth: Option<usize>,
    /// A node with fewer rows is a leaf.
    pub min_samples_split: usize,
    /// Each child keeps at least this many rows.
    pub min_samples_leaf: usize,
    /// Features tried per split.
    pub max_features: MaxFeatures,
    /// Train each tree on a bootstrap sample (else on all rows).
    pub bootstrap: bool,
    /// Class weights.
    pub class_weight: ClassWeight,
    /// Bins per feature (2–256).
    pub max_bins: usize,
    /// Seed for the bootstrap, the feature draws and the binning sample.
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        Self {
            n_trees: 100,
            criterion: Criterion::Gini,
            max_depth: None,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features: MaxFeatures::Sqrt,
            bootstrap: true,
            class_weight: ClassWeight::None,
            max_bins: crate::bins::MAX_BINS,
            seed: 0,
        }
    }
}

/// A trained random forest.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomForest {
    pub(crate) trees: TreeSet,
    pub(crate) n_classes: usize,
    pub(crate) importances: Vec<f64>,
}

/// Rows per parallel prediction block.
pub(crate) const PREDICT_BLOCK: usize = 16384;

/// Nodes below this many rows are split by sorting rather than by histogram.
const SORT_BELOW: usize = 96;

impl RandomForest {
    /// Trains on `x` with labels `y` in `0..n_classes`.
    ///
    /// # Errors
    /// [`MlError::Input`] for empty data, mismatched lengths, labels out of range, fewer than
    /// two classes or bad parameters.
    pub fn fit(
        x: &Matrix,
        y: &[usize],
        n_classes: usize,
        params: &ForestParams,
    ) -> Result<Self, MlError> {
        check_labels(x, y, n_classes)?;
        if params.n_trees == 0 {
            return Err(MlError::Input("n_trees must be at least 1".into()));
        }
        if params.min_samples_split < 2 || params.min_samples_leaf < 1 {
            return Err(MlError::Input(
                "min_samples_split must be ≥ 2 and min_samples_leaf ≥ 1".into(),
            ));
        }
        let class_w = class_weights(&params.class_weight, y, n_classes)?;
        let bins = Bins::fit(x, params.max_bins, params.seed);
        let binned = bins.apply(x);
        let labels: Vec<u16> = y
            .iter()
            .map(|&c| u16::try_from(c).unwrap_or(u16::MAX))
            .collect();
        let ctx = Ctx {
            binned: &binned,
            labels: &labels,
            rows: x.rows(),
            cols: x.cols(),
            k: n_classes,
            bins: &bins,
            class_w: &class_w,
            max_features: params.max_features.resolve(x.cols()),
            params,
        };
        let built: Vec<(Vec<Node>, Vec<f32>, Vec<f64>)> = (0..params.n_trees)
            .into_par_iter()
            .map(|t| ctx.grow(t))
            .collect();
        let mut importances = vec![0.0; x.cols()];
        let mut trees = TreeSet::new(n_classes);
        for (nodes, values, imp) in built {
            let total: f64 = imp.iter().sum();
            if total > 0.0 {
                for (a, b) in importances.iter_mut().zip(&imp) {
                    *a += b / total;
                }
            }
            trees.push(&nodes, &values);
        }
        let total: f64 = importances.iter().sum();
        if total > 0.0 {
            for a in &mut importances {
                *a /= total;
            }
        }
        Ok(Self {
            trees,
            n_classes,
            importances,
        })
    }

    /// Number of input features.
    #[must_use]
    pub fn n_features(&self) -> usize {
        self.importances.len()
    }

    /// Number of classes.
    #[must_use]
    pub const fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of trees.
    #[must_use]
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Total nodes over all trees.
    #[must_use]
    pub fn n_nodes(&self) -> usize {
        self.trees.n_nodes()
    }

    /// Mean decrease in impurity per feature, summing to 1 (all zero if no tree split).
    #[must_use]
    pub fn feature_importances(&self) -> &[f64] {
        &self.importances
    }

    /// Class probabilities for one row (the mean of the trees' leaf distributions) into `out`
    /// (`n_classes` long).
    pub fn predict_proba_into(&self, row: &[f32], out: &mut [f64]) {
        self.trees.mean_leaf_values(row, out);
    }

    /// Class probabilities, one `Vec` per row: blocks of rows in parallel, each block going
    /// through one tree at a time while that tree is in cache.
    #[must_use]
    pub fn predict_proba(&self, x: &Matrix) -> Vec<Vec<f64>> {
        let k = self.n_classes;
        let d = x.cols();
        let mut flat = vec![0.0; x.rows() * k];
        flat.par_chunks_mut(PREDICT_BLOCK * k)
            .zip(x.as_slice().par_chunks(PREDICT_BLOCK * d))
            .for_each(|(out, rows)| {
                self.trees.accumulate_batch(rows, d, out, k, |leaf, slot| {
                    for (o, v) in slot.iter_mut().zip(self.trees.value(leaf)) {
                        *o += f64::from(*v);
                    }
                });
            });
        #[allow(clippy::cast_precision_loss)]
        let n = self.trees.len().max(1) as f64;
        flat.chunks_exact(k)
            .map(|p| p.iter().map(|v| v / n).collect())
            .collect()
    }
}

/// The most probable class (the first on ties, as numpy's `argmax`).
#[must_use]
pub fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p.get(best).copied().unwrap_or(f64::NEG_INFINITY) {
            best = i;
        }
    }
    best
}

pub(crate) fn check_labels(x: &Matrix, y: &[usize], n_classes: usize) -> Result<(), MlError> {
    if x.rows() == 0 {
        return Err(MlError::Input("no training rows".into()));
    }
    if y.len() != x.rows() {
        return Err(MlError::Input(format!(
            "{} labels for {} rows",
            y.len(),
            x.rows()
        )));
    }
    if n_classes < 2 || n_classes > usize::from(u16::MAX) {
        return Err(MlError::Input(format!(
            "{n_classes} classes: a classifier needs 2 to 65535"
        )));
    }
    if let Some((i, c)) = y.iter().enumerate().find(|(_, c)| **c >= n_classes) {
        return Err(MlError::Input(format!(
            "row {i}: label {c} is outside the {n_classes} classes"
        )));
    }
    Ok(())
}

fn class_weights(cw: &ClassWeight, y: &[usize], k: usize) -> Result<Vec<f64>, MlError> {
    match cw {
        ClassWeight::None => Ok(vec![1.0; k]),
        ClassWeight::Balanced => {
            let mut count = vec![0usize; k];
            for &c in y {
                if let Some(n) = count.get_mut(c) {
                    *n += 1;
                }
            }
            #[allow(clippy::cast_precision_loss)]
            Ok(count
                .iter()
                .map(|&n| {
                    if n == 0 {
                        0.0
                    } else {
                        y.len() as f64 / (k as f64 * n as f64)
                    }
                })
                .collect())
        }
        ClassWeight::Manual(w) => {
            if w.len() != k || w.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(MlError::Input(format!(
                    "class weights: need {k} finite, non-negative values, got {w:?}"
                )));
            }
            Ok(w.clone())
        }
    }
}

struct Ctx<'a> {
    binned: &'a [u8],
    labels: &'a [u16],
    rows: usize,
    cols: usize,
    k: usize,
    bins: &'a Bins,
    class_w: &'a [f64],
    max_features: usize,
    params: &'a ForestParams,
}

/// The best split found so far at a node.
#[derive(Clone, Copy)]
struct Best {
    feature: usize,
    bin: usize,
    /// Weighted child impurity `W_L·I_L + W_R·I_R`.
    cost: f64,
}

/// Weighted impurity `W · I(c / W)` of class weights `c` summing to `w`.
fn weighted_impurity(crit: Criterion, c: &[f64], w: f64) -> f64 {
    if w <= 0.0 {
        return 0.0;
    }
    match crit {
        Criterion::Gini => w - c.iter().map(|v| v * v).sum::<f64>() / w,
        Criterion::Entropy => {
            w * w.ln()
                - c.iter()
                    .filter(|v| **v > 0.0)
                    .map(|v| v * v.ln())
                    .sum::<f64>()
        }
    }
}

/// Left-to-right scan over one feature's occupied bins at a node.
struct Scan<'a> {
    crit: Criterion,
    total: &'a [f64],
    total_w: f64,
    total_n: usize,
    min_leaf: usize,
    left: &'a mut [f64],
    right: &'a mut [f64],
    left_w: f64,
    left_n: usize,
    prev: Option<usize>,
    groups: usize,
}

impl Scan<'_> {
    /// Adds the rows of bin `bin` (class weights `wc`, `n` rows), first trying the split between
    /// the previous occupied bin and this one.
    fn push(&mut self, feature: usize, bin: usize, wc: &[f64], n: usize, best: &mut Option<Best>) {
        if let Some(prev) = self.prev {
            let right_n = self.total_n - self.left_n;
            let right_w = self.total_w - self.left_w;
            if self.left_n >= self.min_leaf
                && right_n >= self.min_leaf
                && self.left_w > 0.0
                && right_w > 0.0
            {
                for ((r, t), l) in self.right.iter_mut().zip(self.total).zip(self.left.iter()) {
                    *r = (t - l).max(0.0);
                }
                let cost = weighted_impurity(self.crit, self.left, self.left_w)
                    + weighted_impurity(self.crit, self.right, right_w);
                if best.is_none_or(|b| cost < b.cost) {
                    *best = Some(Best {
                        feature,
                        // The middle of the empty gap between the two occupied bins.
                        bin: usize::midpoint(prev, bin - 1),
                        cost,
                    });
                }
            }
        }
        for (l, v) in self.left.iter_mut().zip(wc) {
            *l += v;
        }
        self.left_w += wc.iter().sum::<f64>();
        self.left_n += n;
        self.prev = Some(bin);
        self.groups += 1;
    }
}

/// Reusable per-tree buffers.
struct Buffers {
    hist: Vec<f64>,
    count: Vec<usize>,
    left: Vec<f64>,
    right: Vec<f64>,
    sorted: Vec<(u8, u32)>,
    features: Vec<usize>,
}

#[allow(clippy::indexing_slicing)] // indices built here: rows < self.rows, bins < 256, labels < k
impl Ctx<'_> {
    fn column(&self, f: usize) -> &[u8] {
        &self.binned[f * self.rows..(f + 1) * self.rows]
    }

    /// Grows tree `t`: nodes in pre-order (children after their parent), leaf values, and the
    /// impurity decrease per feature.
    fn grow(&self, t: usize) -> (Vec<Node>, Vec<f32>, Vec<f64>) {
        let k = self.k;
        let mut rng = SplitMix64::new(
            self.params
                .seed
                .wrapping_add((t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                ^ 0x5EED,
        );
        // Row weights: bootstrap multiplicity × class weight; rows with weight 0 are out of bag.
        let mut weight = vec![0.0f64; self.rows];
        if self.params.bootstrap {
            for _ in 0..self.rows {
                let r = usize::try_from(rng.below(self.rows as u64)).unwrap_or(0);
                weight[r] += 1.0;
            }
        } else {
            weight.fill(1.0);
        }
        let mut rows: Vec<u32> = Vec::with_capacity(self.rows);
        for (r, w) in weight.iter_mut().enumerate() {
            if *w > 0.0 {
                *w *= self.class_w[usize::from(self.labels[r])];
                rows.push(u32::try_from(r).unwrap_or(u32::MAX));
            }
        }
        let mut nodes: Vec<Node> = Vec::new();
        let mut values: Vec<f32> = Vec::new();
        let mut importance = vec![0.0; self.cols];
        let mut buf = Buffers {
            hist: vec![0.0; crate::bins::MAX_BINS * k],
            count: vec![0; crate::bins::MAX_BINS],
            left: vec![0.0; k],
            right: vec![0.0; k],
            sorted: Vec::new(),
            features: (0..self.cols).collect(),
        };
        let mut totals = vec![0.0; k];
        nodes.push(Node::LEAF);
        values.extend(std::iter::repeat_n(0.0, k));
        // (node, start, end, depth)
        let mut stack = vec![(0usize, 0usize, rows.len(), 0usize)];
        while let Some((id, start, end, depth)) = stack.pop() {
            let span = &mut rows[start..end];
            totals.fill(0.0);
            for &r in span.iter() {
                totals[usize::from(self.labels[r as usize])] += weight[r as usize];
            }
            let w: f64 = totals.iter().sum();
            if w > 0.0 {
                for (v, c) in values[id * k..(id + 1) * k].iter_mut().zip(&totals) {
                    #[allow(clippy::cast_possible_truncation)]
                    {
                        *v = (c / w) as f32;
                    }
                }
            }
            let n = span.len();
            let node_cost = weighted_impurity(self.params.criterion, &totals, w);
            if self.params.max_depth.is_some_and(|d| depth >= d)
                || n < self.params.min_samples_split
                || n < 2 * self.params.min_samples_leaf
                || node_cost <= 1e-12 * w.max(1.0)
            {
                continue;
            }
            let Some(best) = self.best_split(span, &weight, &totals, w, &mut buf, &mut rng) else {
                continue;
            };
            if best.cost >= node_cost {
                continue;
            }
            importance[best.feature] += node_cost - best.cost;
            // Partition: rows with bin ≤ best.bin first.
            let col = self.column(best.feature);
            let mut i = 0;
            let mut j = span.len();
            while i < j {
                if usize::from(col[span[i] as usize]) <= best.bin {
                    i += 1;
                } else {
                    j -= 1;
                    span.swap(i, j);
                }
            }
            let left = nodes.len();
            let right = left + 1;
            let threshold = self.bins.thresholds(best.feature)[best.bin];
            nodes[id] = Node {
                feature: u32::try_from(best.feature).unwrap_or(u32::MAX),
                threshold,
                left: u32::try_from(left).unwrap_or(u32::MAX),
                right: u32::try_from(right).unwrap_or(u32::MAX),
            };
            nodes.push(Node::LEAF);
            nodes.push(Node::LEAF);
            values.extend(std::iter::repeat_n(0.0, 2 * k));
            stack.push((right, start + i, end, depth + 1));
            stack.push((left, start, start + i, depth + 1));
        }
        (nodes, values, importance)
    }

    fn best_split(
        &self,
        span: &[u32],
        weight: &[f64],
        totals: &[f64],
        total_w: f64,
        buf: &mut Buffers,
        rng: &mut SplitMix64,
    ) -> Option<Best> {
        let k = self.k;
        let d = self.cols;
        let mut best = None;
        let mut informative = 0;
        for i in 0..d {
            let j = i + usize::try_from(rng.below((d - i) as u64)).unwrap_or(0);
            buf.features.swap(i, j);
            let f = buf.features[i];
            let col = self.column(f);
            buf.left.fill(0.0);
            let mut scan = Scan {
                crit: self.params.criterion,
                total: totals,
                total_w,
                total_n: span.len(),
                min_leaf: self.params.min_samples_leaf,
                left: &mut buf.left,
                right: &mut buf.right,
                left_w: 0.0,
                left_n: 0,
                prev: None,
                groups: 0,
            };
            if span.len() < SORT_BELOW {
                buf.sorted.clear();
                buf.sorted
                    .extend(span.iter().map(|&r| (col[r as usize], r)));
                buf.sorted.sort_unstable();
                let mut g = 0;
                let mut wc = [0.0f64; 64];
                while g < buf.sorted.len() {
                    let bin = buf.sorted[g].0;
                    let mut e = g;
                    if k <= 64 {
                        wc[..k].fill(0.0);
                        while e < buf.sorted.len() && buf.sorted[e].0 == bin {
                            let r = buf.sorted[e].1 as usize;
                            wc[usize::from(self.labels[r])] += weight[r];
                            e += 1;
                        }
                        scan.push(f, usize::from(bin), &wc[..k], e - g, &mut best);
                    } else {
                        let h = &mut buf.hist[..k];
                        h.fill(0.0);
                        while e < buf.sorted.len() && buf.sorted[e].0 == bin {
                            let r = buf.sorted[e].1 as usize;
                            h[usize::from(self.labels[r])] += weight[r];
                            e += 1;
                        }
                        scan.push(f, usize::from(bin), h, e - g, &mut best);
                    }
                    g = e;
                }
            } else {
                let (mut lo, mut hi) = (usize::MAX, 0);
                for &r in span {
                    let r = r as usize;
                    let b = usize::from(col[r]);
                    buf.count[b] += 1;
                    buf.hist[b * k + usize::from(self.labels[r])] += weight[r];
                    lo = lo.min(b);
                    hi = hi.max(b);
                }
                for b in lo..=hi {
                    let n = buf.count[b];
                    if n > 0 {
                        scan.push(f, b, &buf.hist[b * k..(b + 1) * k], n, &mut best);
                        buf.count[b] = 0;
                        buf.hist[b * k..(b + 1) * k].fill(0.0);
                    }
                }
            }
            if scan.groups > 1 {
                informative += 1;
            }
            if i + 1 >= self.max_features && informative > 0 {
                break;
            }
        }
        best
    }
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

    fn xor_data(n: usize, seed: u64) -> (Matrix, Vec<usize>) {
        let mut rng = SplitMix64::new(seed);
        let mut data = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let a = rng.next_f64() as f32;
            let b = rng.next_f64() as f32;
            let noise = rng.next_f64() as f32;
            data.extend([a, b, noise]);
            y.push(usize::from((a > 0.5) != (b > 0.5)));
        }
        (Matrix::new(n, 3, data).unwrap(), y)
    }

    #[test]
    fn learns_xor_and_ranks_the_noise_feature_last() {
        let (x, y) = xor_data(2000, 1);
        let params = ForestParams {
            n_trees: 30,
            seed: 3,
            max_features: MaxFeatures::All,
            ..ForestParams::default()
        };
        let rf = RandomForest::fit(&x, &y, 2, &params).unwrap();
        let (xt, yt) = xor_data(500, 2);
        let pred: Vec<usize> = rf.predict_proba(&xt).iter().map(|p| argmax(p)).collect();
        let acc = crate::metrics::accuracy(&yt, &pred).unwrap();
        assert!(acc > 0.97, "accuracy {acc}");
        let imp = rf.feature_importances();
        assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(imp[2] < imp[0] && imp[2] < imp[1], "{imp:?}");
    }

    #[test]
    fn same_seed_same_forest_other_seed_other_forest() {
        let (x, y) = xor_data(500, 4);
        let p = ForestParams {
            n_trees: 5,
            seed: 9,
            ..ForestParams::default()
        };
        let a = RandomForest::fit(&x, &y, 2, &p).unwrap();
        let b = RandomForest::fit(&x, &y, 2, &p).unwrap();
        assert_eq!(a, b);
        let c = RandomForest::fit(&x, &y, 2, &ForestParams { seed: 10, ..p }).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn depth_and_leaf_limits_hold() {
        let (x, y) = xor_data(1000, 5);
        let p = ForestParams {
            n_trees: 3,
            max_depth: Some(2),
            ..ForestParams::default()
        };
        let rf = RandomForest::fit(&x, &y, 2, &p).unwrap();
        for t in 0..rf.n_trees() {
            assert!(rf.trees.depth(t) <= 2);
        }
        let p = ForestParams {
            n_trees: 3,
            min_samples_leaf: 50,
            bootstrap: false,
            ..ForestParams::default()
        };
        let rf = RandomForest::fit(&x, &y, 2, &p).unwrap();
        // Every leaf of a tree trained on all rows holds ≥ 50 of them.
        let mut leaf_rows = std::collections::HashMap::<(usize, usize), usize>::new();
        for r in x.iter_rows() {
            for t in 0..rf.n_trees() {
                *leaf_rows.entry((t, rf.trees.leaf(t, r))).or_default() += 1;
            }
        }
        assert!(leaf_rows.values().all(|&n| n >= 50), "{leaf_rows:?}");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let (x, y) = xor_data(10, 6);
        assert!(RandomForest::fit(&x, &y[..5], 2, &ForestParams::default()).is_err());
        assert!(RandomForest::fit(&x, &y, 1, &ForestParams::default()).is_err());
        let mut bad = y.clone();
        bad[3] = 7;
        let e = RandomForest::fit(&x, &bad, 2, &ForestParams::default()).unwrap_err();
        assert!(e.to_string().contains("row 3"), "{e}");
    }

    #[test]
    fn balanced_class_weight_raises_minority_recall() {
        let mut rng = SplitMix64::new(11);
        let (mut data, mut y) = (Vec::new(), Vec::new());
        for _ in 0..3000 {
            let c = usize::from(rng.next_f64() < 0.05);
            let v = rng.next_f64() as f32 + if c == 1 { 0.6 } else { 0.0 };
            data.push(v);
            y.push(c);
        }
        let x = Matrix::new(3000, 1, data).unwrap();
        let base = ForestParams {
            n_trees: 20,
            min_samples_leaf: 20,
            ..ForestParams::default()
        };
        let recall = |p: &ForestParams| {
            let rf = RandomForest::fit(&x, &y, 2, p).unwrap();
            let pred: Vec<usize> = rf.predict_proba(&x).iter().map(|p| argmax(p)).collect();
            let m = crate::metrics::confusion_matrix(&y, &pred, 2).unwrap();
            m[1][1] as f64 / (m[1][0] + m[1][1]) as f64
        };
        let plain = recall(&base);
        let balanced = recall(&ForestParams {
            class_weight: ClassWeight::Balanced,
            ..base
        });
        assert!(
            balanced > plain + 0.1,
            "balanced {balanced} vs plain {plain}"
        );
    }
}
