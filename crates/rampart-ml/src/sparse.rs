//! Binary logistic regression on sparse, hashed features (the guard's text classifier).
//!
//! Rows are lists of `(index, value)` pairs into a weight vector of `dim` entries. Training
//! is AdaGrad on the log loss, one example at a time in a seeded shuffled order, with the L2
//! penalty applied to the coordinates an example touches (the usual sparse approximation) and
//! an optional weight on positive examples for unbalanced classes. Deterministic: the same rows,
//! parameters and seed give the same weights, bit for bit.
//!
//! The model is stored as safetensors: `weight` (F32, `[dim]`) and `bias` (F32, `[1]`), with
//! caller metadata; loading checks names, types, shapes, the size bound and finiteness.

use std::collections::HashMap;

use crate::MlError;
use crate::split::SplitMix64;

/// The largest weight vector accepted: 2²⁴ entries (64 MiB).
pub const MAX_DIM: usize = 1 << 24;

/// Training settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseParams {
    /// Passes over the data.
    pub epochs: usize,
    /// AdaGrad's base learning rate.
    pub learning_rate: f64,
    /// L2 penalty per touched coordinate and step.
    pub l2: f64,
    /// Weight of a positive example's loss (`None`: negatives / positives).
    pub positive_weight: Option<f64>,
    /// Shuffling seed.
    pub seed: u64,
}

impl Default for SparseParams {
    fn default() -> Self {
        Self {
            epochs: 12,
            learning_rate: 0.2,
            l2: 1e-6,
            positive_weight: None,
            seed: 0,
        }
    }
}

/// A trained model.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseLogistic {
    weights: Vec<f32>,
    bias: f32,
}

/// The logistic function.
#[must_use]
pub fn sigmoid(margin: f64) -> f64 {
    1.0 / (1.0 + (-margin).exp())
}

impl SparseLogistic {
    /// Trains on `rows` (indices below `dim`) with labels `labels`.
    ///
    /// # Errors
    /// [`MlError::Input`] for mismatched lengths, an empty or one-class set, a `dim` of zero or
    /// above [`MAX_DIM`], an index out of range or a non-finite value.
    pub fn fit(
        dim: usize,
        rows: &[Vec<(u32, f32)>],
        labels: &[bool],
        params: &SparseParams,
    ) -> Result<Self, MlError> {
        if dim == 0 || dim > MAX_DIM {
            return Err(MlError::Input(format!(
                "dimension {dim}: must be 1..={MAX_DIM}"
            )));
        }
        if rows.len() != labels.len() {
            return Err(MlError::Input(format!(
                "{} rows but {} labels",
                rows.len(),
                labels.len()
            )));
        }
        let positives = labels.iter().filter(|&&l| l).count();
        let negatives = labels.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(MlError::Input(
                "training needs both positive and negative examples".into(),
            ));
        }
        for (r, row) in rows.iter().enumerate() {
            for &(i, v) in row {
                if i as usize >= dim || !v.is_finite() {
                    return Err(MlError::Input(format!(
                        "row {r}: feature ({i}, {v}) is out of range or not finite"
                    )));
                }
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let pos_weight = params
            .positive_weight
            .unwrap_or(negatives as f64 / positives as f64);
        let mut w = vec![0.0f64; dim];
        let mut g = vec![1e-8f64; dim];
        let (mut b, mut gb) = (0.0f64, 1e-8f64);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut rng = SplitMix64::new(params.seed);
        for _ in 0..params.epochs {
            for i in (1..order.len()).rev() {
                #[allow(clippy::cast_possible_truncation)]
                let j = rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            for &k in &order {
                let (Some(row), Some(&y)) = (rows.get(k), labels.get(k)) else {
                    continue;
                };
                let mut m = b;
                for &(i, v) in row {
                    m += w.get(i as usize).copied().unwrap_or(0.0) * f64::from(v);
                }
                let (target, weight) = if y { (1.0, pos_weight) } else { (0.0, 1.0) };
                let err = (sigmoid(m) - target) * weight;
                for &(i, v) in row {
                    let (Some(wi), Some(gi)) = (w.get_mut(i as usize), g.get_mut(i as usize))
                    else {
                        continue;
                    };
                    let grad = err * f64::from(v) + params.l2 * *wi;
                    *gi += grad * grad;
                    *wi -= params.learning_rate * grad / gi.sqrt();
                }
                gb += err * err;
                b -= params.learning_rate * err / gb.sqrt();
            }
        }
        #[allow(clippy::cast_possible_truncation)]
        Ok(Self {
            weights: w.iter().map(|&x| x as f32).collect(),
            bias: b as f32,
        })
    }

    /// Builds a model from its parts.
    ///
    /// # Errors
    /// [`MlError::Model`] for an empty or oversized vector or a non-finite value.
    pub fn from_parts(weights: Vec<f32>, bias: f32) -> Result<Self, MlError> {
        if weights.is_empty() || weights.len() > MAX_DIM {
            return Err(MlError::Model(format!(
                "{} weights: must be 1..={MAX_DIM}",
                weights.len()
            )));
        }
        if !bias.is_finite() || weights.iter().any(|w| !w.is_finite()) {
            return Err(MlError::Model("a weight is not finite".into()));
        }
        Ok(Self { weights, bias })
    }

    /// The weight vector's length.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.weights.len()
    }

    /// The weight of feature `i` (0 outside the vector).
    #[must_use]
    pub fn weight(&self, i: u32) -> f32 {
        self.weights.get(i as usize).copied().unwrap_or(0.0)
    }

    /// The intercept.
    #[must_use]
    pub const fn bias(&self) -> f32 {
        self.bias
    }

    /// The margin (log-odds) of a row.
    #[must_use]
    pub fn margin(&self, row: &[(u32, f32)]) -> f64 {
        f64::from(self.bias)
            + row
                .iter()
                .map(|&(i, v)| f64::from(self.weight(i)) * f64::from(v))
                .sum::<f64>()
    }

    /// The model as safetensors bytes with `metadata`.
    ///
    /// # Errors
    /// [`MlError::Model`] if serialisation fails.
    pub fn to_safetensors(&self, metadata: HashMap<String, String>) -> Result<Vec<u8>, MlError> {
        use safetensors::tensor::{Dtype, TensorView};
        let w: Vec<u8> = self.weights.iter().flat_map(|x| x.to_le_bytes()).collect();
        let b = self.bias.to_le_bytes().to_vec();
        let views = [
            (
                "bias",
                TensorView::new(Dtype::F32, vec![1], &b)
                    .map_err(|e| MlError::Model(e.to_string()))?,
            ),
            (
                "weight",
                TensorView::new(Dtype::F32, vec![self.weights.len()], &w)
                    .map_err(|e| MlError::Model(e.to_string()))?,
            ),
        ];
        safetensors::serialize(views, Some(metadata)).map_err(|e| MlError::Model(e.to_string()))
    }

    /// Loads a model written by [`Self::to_safetensors`], with its metadata.
    ///
    /// # Errors
    /// [`MlError::Model`] for anything but exactly `weight` (F32, `[dim]`, dim ≤ [`MAX_DIM`])
    /// and `bias` (F32, `[1]`) with finite values.
    pub fn from_safetensors(bytes: &[u8]) -> Result<(Self, HashMap<String, String>), MlError> {
        use safetensors::tensor::{Dtype, SafeTensors};
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| MlError::Model(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let st = SafeTensors::deserialize(bytes).map_err(|e| MlError::Model(e.to_string()))?;
        let mut names = st.names();
        names.sort_unstable();
        if names != ["bias", "weight"] {
            return Err(MlError::Model(format!(
                "expected tensors bias and weight, found {names:?}"
            )));
        }
        let floats = |name: &str, shape_ok: &dyn Fn(&[usize]) -> bool| {
            let t = st.tensor(name).map_err(|e| MlError::Model(e.to_string()))?;
            if t.dtype() != Dtype::F32 || !shape_ok(t.shape()) {
                return Err(MlError::Model(format!(
                    "{name}: {:?} {:?} is not the expected F32 shape",
                    t.dtype(),
                    t.shape()
                )));
            }
            Ok(t.data()
                .chunks_exact(4)
                .map(|c| <[u8; 4]>::try_from(c).map_or(f32::NAN, f32::from_le_bytes))
                .collect::<Vec<f32>>())
        };
        let weights = floats("weight", &|s| {
            s.len() == 1 && s.first().is_some_and(|&d| (1..=MAX_DIM).contains(&d))
        })?;
        let bias = floats("bias", &|s| s == [1])?;
        let model = Self::from_parts(weights, bias.first().copied().unwrap_or(f32::NAN))?;
        Ok((model, meta))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn data() -> (Vec<Vec<(u32, f32)>>, Vec<bool>) {
        // Feature 0 and 1 say positive, 2 and 3 negative, 4 is noise on both.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..200u32 {
            let pos = i % 3 == 0;
            let a = if pos { i % 2 } else { 2 + i % 2 };
            rows.push(vec![(a, 1.0), (4, 0.5)]);
            labels.push(pos);
        }
        (rows, labels)
    }

    #[test]
    fn separates_and_is_deterministic() {
        let (rows, labels) = data();
        let p = SparseParams::default();
        let m = SparseLogistic::fit(8, &rows, &labels, &p).unwrap();
        assert!(sigmoid(m.margin(&[(0, 1.0), (4, 0.5)])) > 0.9);
        assert!(sigmoid(m.margin(&[(3, 1.0), (4, 0.5)])) < 0.1);
        assert_eq!(m.weight(7), 0.0, "an unseen feature keeps weight 0");
        assert_eq!(m, SparseLogistic::fit(8, &rows, &labels, &p).unwrap());
        let other = SparseParams { seed: 9, ..p };
        assert_ne!(m, SparseLogistic::fit(8, &rows, &labels, &other).unwrap());
    }

    #[test]
    fn refuses_bad_training_input() {
        let (rows, labels) = data();
        let p = SparseParams::default();
        assert!(SparseLogistic::fit(0, &rows, &labels, &p).is_err());
        assert!(
            SparseLogistic::fit(4, &rows, &labels, &p).is_err(),
            "index 4 ≥ dim"
        );
        assert!(SparseLogistic::fit(8, &rows[..3], &labels, &p).is_err());
        assert!(SparseLogistic::fit(8, &rows, &vec![true; rows.len()], &p).is_err());
        let nan = vec![vec![(0, f32::NAN)], vec![(1, 1.0)]];
        assert!(SparseLogistic::fit(8, &nan, &[true, false], &p).is_err());
    }

    #[test]
    fn safetensors_round_trip_and_hostile_files() {
        let (rows, labels) = data();
        let m = SparseLogistic::fit(8, &rows, &labels, &SparseParams::default()).unwrap();
        let meta = HashMap::from([("k".to_owned(), "v".to_owned())]);
        let bytes = m.to_safetensors(meta.clone()).unwrap();
        let (back, got) = SparseLogistic::from_safetensors(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(got, meta);
        assert!(SparseLogistic::from_safetensors(&bytes[..bytes.len() - 4]).is_err());
        assert!(SparseLogistic::from_safetensors(b"garbage").is_err());
        // A non-finite weight is refused.
        let bad = SparseLogistic {
            weights: vec![f32::INFINITY; 4],
            bias: 0.0,
        }
        .to_safetensors(HashMap::new())
        .unwrap();
        assert!(SparseLogistic::from_safetensors(&bad).is_err());
    }
}
