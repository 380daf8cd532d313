//! Logistic regression (binary and multinomial, as one softmax model) trained by mini-batch
//! SGD, or by DP-SGD (Abadi et al. 2016): Poisson sampling at rate `q`, each example's gradient
//! clipped to norm `C`, Gaussian noise `σ·C` on the sum, and `σ` calibrated by the RDP
//! accountant ([`crate::privacy`]) so that the whole run is (ε, δ)-differentially private.
//!
//! Features are scaled before training. Plain SGD standardises with the data's mean and
//! standard deviation. DP-SGD maps each feature from public bounds `[lo, hi]` onto `[-1, 1]`
//! (clamping outside values); without bounds it takes them from the data's min and max, which
//! the ε guarantee does not cover — [`PrivacySpent::scaling`] records which one was used.
//!
//! DP noise and sampling come from ChaCha20 seeded by the operating system, never from the
//! training seed: anyone who knows the noise can subtract it.

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::MlError;
use crate::matrix::Matrix;
use crate::privacy::{DEFAULT_ORDERS, epsilon, noise_for_epsilon};
use crate::split::{SplitMix64, normal_from};

/// Differential-privacy settings for DP-SGD.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DpParams {
    /// Target ε.
    pub epsilon: f64,
    /// δ.
    pub delta: f64,
    /// Per-example gradient norm bound `C`.
    pub clip_norm: f64,
    /// Poisson sampling rate `q`; `None` → `batch_size / rows`.
    pub sample_rate: Option<f64>,
    /// Public per-feature `(lo, hi)` bounds; `None` → the data's min and max (outside ε).
    pub feature_bounds: Option<Vec<(f64, f64)>>,
    /// Seeds the noise for reproducible tests. **Destroys the privacy guarantee** for anyone
    /// who knows it; `None` (the default) draws the seed from the operating system.
    #[serde(skip)]
    pub insecure_noise_seed: Option<u64>,
}

impl Default for DpParams {
    fn default() -> Self {
        Self {
            epsilon: 1.0,
            delta: 1e-5,
            clip_norm: 1.0,
            sample_rate: None,
            feature_bounds: None,
            insecure_noise_seed: None,
        }
    }
}

/// Logistic regression hyperparameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogisticParams {
    /// Passes over the data (for DP-SGD: expected passes, `steps = epochs / q`).
    pub epochs: usize,
    /// Mini-batch size (for DP-SGD: the expected batch size when `sample_rate` is unset).
    pub batch_size: usize,
    /// Initial learning rate.
    pub learning_rate: f64,
    /// L2 penalty on the weights.
    pub l2: f64,
    /// Seed for shuffling (plain SGD only).
    pub seed: u64,
    /// DP-SGD instead of plain SGD.
    pub dp: Option<DpParams>,
}

impl Default for LogisticParams {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 64,
            learning_rate: 0.1,
            l2: 1e-4,
            seed: 0,
            dp: None,
        }
    }
}

/// What a DP-SGD run spent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PrivacySpent {
    /// ε at `delta` (from the accountant, at most the target).
    pub epsilon: f64,
    /// δ.
    pub delta: f64,
    /// Best RDP order.
    pub order: f64,
    /// Noise multiplier σ.
    pub noise: f64,
    /// Sampling rate q.
    pub sample_rate: f64,
    /// Steps taken.
    pub steps: u64,
    /// Clipping norm C.
    pub clip_norm: f64,
    /// `"public-bounds"` or `"data-min-max"` (the latter is outside the ε guarantee).
    pub scaling: String,
}

/// A trained logistic regression.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    pub(crate) k: usize,
    pub(crate) d: usize,
    /// `k × d`, row-major.
    pub(crate) weights: Vec<f64>,
    pub(crate) bias: Vec<f64>,
    pub(crate) shift: Vec<f64>,
    pub(crate) scale: Vec<f64>,
    /// Clamp bounds applied before scaling (DP models).
    pub(crate) clamp: Option<(Vec<f64>, Vec<f64>)>,
    pub(crate) privacy: Option<PrivacySpent>,
}

impl LogisticRegression {
    /// Trains on `x` with labels in `0..n_classes`.
    ///
    /// # Errors
    /// [`MlError::Input`] for bad data or parameters (including DP settings the accountant
    /// cannot meet).
    pub fn fit(
        x: &Matrix,
        y: &[usize],
        n_classes: usize,
        params: &LogisticParams,
    ) -> Result<Self, MlError> {
        crate::forest::check_labels(x, y, n_classes)?;
        if params.epochs == 0 || params.batch_size == 0 || params.learning_rate <= 0.0 {
            return Err(MlError::Input(
                "epochs, batch_size and learning_rate must be positive".into(),
            ));
        }
        let d = x.cols();
        let mut model = Self {
            k: n_classes,
            d,
            weights: vec![0.0; n_classes * d],
            bias: vec![0.0; n_classes],
            shift: vec![0.0; d],
            scale: vec![1.0; d],
            clamp: None,
            privacy: None,
        };
        match &params.dp {
            None => {
                model.standardise(x);
                model.sgd(x, y, params);
            }
            Some(dp) => model.dp_sgd(x, y, params, dp)?,
        }
        Ok(model)
    }

    /// Number of input features.
    #[must_use]
    pub const fn n_features(&self) -> usize {
        self.d
    }

    /// Number of classes.
    #[must_use]
    pub const fn n_classes(&self) -> usize {
        self.k
    }

    /// The privacy a DP-SGD run spent (`None` for plain SGD).
    #[must_use]
    pub const fn privacy(&self) -> Option<&PrivacySpent> {
        self.privacy.as_ref()
    }

    fn standardise(&mut self, x: &Matrix) {
        #[allow(clippy::cast_precision_loss)]
        let n = x.rows() as f64;
        for j in 0..self.d {
            let col = x.column(j);
            let mean = col.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let var = col
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / n;
            set(&mut self.shift, j, mean);
            set(&mut self.scale, j, if var > 0.0 { var.sqrt() } else { 1.0 });
        }
    }

    /// The scaled features of `row` into `z`.
    fn transform(&self, row: &[f32], z: &mut [f64]) {
        for (j, zj) in z.iter_mut().enumerate() {
            let mut v = f64::from(row.get(j).copied().unwrap_or_default());
            if let Some((lo, hi)) = &self.clamp {
                v = v.clamp(at(lo, j), at(hi, j).max(at(lo, j)));
            }
            *zj = (v - at(&self.shift, j)) / at(&self.scale, j);
        }
    }

    /// Softmax probabilities from scaled features `z` into `p`.
    fn softmax(&self, z: &[f64], p: &mut [f64]) {
        for (c, pc) in p.iter_mut().enumerate() {
            let w = self
                .weights
                .get(c * self.d..(c + 1) * self.d)
                .unwrap_or_default();
            *pc = at(&self.bias, c) + w.iter().zip(z).map(|(a, b)| a * b).sum::<f64>();
        }
        let m = p.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut s = 0.0;
        for pc in p.iter_mut() {
            *pc = (*pc - m).exp();
            s += *pc;
        }
        for pc in p.iter_mut() {
            *pc /= s;
        }
    }

    /// Class probabilities for one row into `out` (`n_classes` long).
    pub fn predict_proba_into(&self, row: &[f32], out: &mut [f64]) {
        let mut z = vec![0.0; self.d];
        self.transform(row, &mut z);
        self.softmax(&z, out);
    }

    /// Class probabilities, one `Vec` per row.
    #[must_use]
    pub fn predict_proba(&self, x: &Matrix) -> Vec<Vec<f64>> {
        let mut z = vec![0.0; self.d];
        x.iter_rows()
            .map(|r| {
                let mut p = vec![0.0; self.k];
                self.transform(r, &mut z);
                self.softmax(&z, &mut p);
                p
            })
            .collect()
    }

    /// Adds the gradient of row `row` (label `y`) into `gw`/`gb`, scaled by `factor`; returns
    /// the gradient's norm before scaling.
    fn example_gradient(
        &self,
        z: &[f64],
        y: usize,
        p: &mut [f64],
        gw: &mut [f64],
        gb: &mut [f64],
        clip: Option<f64>,
    ) {
        self.softmax(z, p);
        if let Some(t) = p.get_mut(y) {
            *t -= 1.0;
        }
        let factor = clip.map_or(1.0, |c| {
            let err2: f64 = p.iter().map(|e| e * e).sum();
            let z2: f64 = z.iter().map(|v| v * v).sum::<f64>() + 1.0;
            let norm = (err2 * z2).sqrt();
            if norm > c { c / norm } else { 1.0 }
        });
        for (c, e) in p.iter().enumerate() {
            let e = e * factor;
            if let Some(g) = gb.get_mut(c) {
                *g += e;
            }
            for (g, v) in gw
                .get_mut(c * self.d..(c + 1) * self.d)
                .unwrap_or_default()
                .iter_mut()
                .zip(z)
            {
                *g += e * v;
            }
        }
    }

    fn step(&mut self, gw: &[f64], gb: &[f64], lr: f64, l2: f64) {
        for (w, g) in self.weights.iter_mut().zip(gw) {
            *w -= lr * (g + l2 * *w);
        }
        for (b, g) in self.bias.iter_mut().zip(gb) {
            *b -= lr * g;
        }
    }

    fn sgd(&mut self, x: &Matrix, y: &[usize], params: &LogisticParams) {
        let mut rng = SplitMix64::new(params.seed);
        let mut order: Vec<usize> = (0..x.rows()).collect();
        let (mut z, mut p) = (vec![0.0; self.d], vec![0.0; self.k]);
        let (mut gw, mut gb) = (vec![0.0; self.k * self.d], vec![0.0; self.k]);
        for epoch in 0..params.epochs {
            rng.shuffle(&mut order);
            #[allow(clippy::cast_precision_loss)]
            let lr = params.learning_rate / (1.0 + 0.1 * epoch as f64);
            for batch in order.chunks(params.batch_size) {
                gw.fill(0.0);
                gb.fill(0.0);
                for &i in batch {
                    self.transform(x.row(i), &mut z);
                    self.example_gradient(&z, at_label(y, i), &mut p, &mut gw, &mut gb, None);
                }
                #[allow(clippy::cast_precision_loss)]
                let inv = 1.0 / batch.len() as f64;
                gw.iter_mut().chain(gb.iter_mut()).for_each(|g| *g *= inv);
                self.step(&gw, &gb, lr, params.l2);
            }
        }
    }

    fn dp_sgd(
        &mut self,
        x: &Matrix,
        y: &[usize],
        params: &LogisticParams,
        dp: &DpParams,
    ) -> Result<(), MlError> {
        let n = x.rows();
        #[allow(clippy::cast_precision_loss)]
        let q = dp
            .sample_rate
            .unwrap_or_else(|| (params.batch_size as f64 / n as f64).min(1.0));
        if !(q > 0.0 && q <= 1.0 && dp.clip_norm > 0.0) {
            return Err(MlError::Input(format!(
                "DP-SGD needs 0 < sample rate ≤ 1 and a positive clipping norm (got q = {q}, C = {})",
                dp.clip_norm
            )));
        }
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let steps = ((params.epochs as f64 / q).ceil() as u64).max(1);
        let sigma = noise_for_epsilon(q, steps, dp.delta, dp.epsilon, DEFAULT_ORDERS)
            .map_err(|e| MlError::Input(format!("DP-SGD: {e}")))?;
        let (eps, order) = epsilon(q, sigma, steps, dp.delta, DEFAULT_ORDERS)
            .map_err(|e| MlError::Input(format!("DP-SGD: {e}")))?;
        let scaling = self.bounds_scaling(x, dp.feature_bounds.as_deref())?;
        let mut rng = match dp.insecure_noise_seed {
            Some(s) => ChaCha20Rng::seed_from_u64(s),
            None => ChaCha20Rng::from_rng(rand_core::OsRng)
                .map_err(|e| MlError::Input(format!("no randomness for DP noise: {e}")))?,
        };
        let mut uniform = move || {
            #[allow(clippy::cast_precision_loss)]
            let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            u
        };
        let (mut z, mut p) = (vec![0.0; self.d], vec![0.0; self.k]);
        let (mut gw, mut gb) = (vec![0.0; self.k * self.d], vec![0.0; self.k]);
        #[allow(clippy::cast_precision_loss)]
        let expected = q * n as f64;
        let log1mq = (-q).ln_1p();
        for t in 0..steps {
            gw.fill(0.0);
            gb.fill(0.0);
            // Poisson sampling: each row independently with probability q, visited by
            // geometric skips so a step costs O(q·n).
            let mut i = 0usize;
            loop {
                if q < 1.0 {
                    let gap = ((1.0 - uniform()).ln() / log1mq).floor();
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let gap = if gap.is_finite() && gap < n as f64 {
                        gap as usize
                    } else {
                        n
                    };
                    i = i.saturating_add(gap);
                }
                if i >= n {
                    break;
                }
                self.transform(x.row(i), &mut z);
                self.example_gradient(
                    &z,
                    at_label(y, i),
                    &mut p,
                    &mut gw,
                    &mut gb,
                    Some(dp.clip_norm),
                );
                i += 1;
            }
            let sd = sigma * dp.clip_norm;
            for g in gw.iter_mut().chain(gb.iter_mut()) {
                *g = (*g + sd * normal_from(&mut uniform)) / expected;
            }
            #[allow(clippy::cast_precision_loss)]
            let lr = params.learning_rate / (1.0 + 2.0 * t as f64 / steps as f64);
            self.step(&gw, &gb, lr, params.l2);
        }
        self.privacy = Some(PrivacySpent {
            epsilon: eps,
            delta: dp.delta,
            order,
            noise: sigma,
            sample_rate: q,
            steps,
            clip_norm: dp.clip_norm,
            scaling: scaling.into(),
        });
        Ok(())
    }

    /// Maps features from `[lo, hi]` onto `[-1, 1]`, with public bounds if given.
    fn bounds_scaling(
        &mut self,
        x: &Matrix,
        bounds: Option<&[(f64, f64)]>,
    ) -> Result<&'static str, MlError> {
        let (lo, hi, how): (Vec<f64>, Vec<f64>, _) = match bounds {
            Some(b) => {
                if b.len() != self.d || b.iter().any(|(l, h)| !(l.is_finite() && h >= l)) {
                    return Err(MlError::Input(format!(
                        "feature bounds: need {} finite (lo, hi) pairs with lo ≤ hi",
                        self.d
                    )));
                }
                (
                    b.iter().map(|p| p.0).collect(),
                    b.iter().map(|p| p.1).collect(),
                    "public-bounds",
                )
            }
            None => {
                let mut lo = vec![f64::INFINITY; self.d];
                let mut hi = vec![f64::NEG_INFINITY; self.d];
                for r in x.iter_rows() {
                    for ((l, h), v) in lo.iter_mut().zip(hi.iter_mut()).zip(r) {
                        *l = l.min(f64::from(*v));
                        *h = h.max(f64::from(*v));
                    }
                }
                (lo, hi, "data-min-max")
            }
        };
        for j in 0..self.d {
            let (l, h) = (at(&lo, j), at(&hi, j));
            set(&mut self.shift, j, f64::midpoint(l, h));
            set(&mut self.scale, j, if h > l { (h - l) / 2.0 } else { 1.0 });
        }
        self.clamp = Some((lo, hi));
        Ok(how)
    }
}

fn at(v: &[f64], i: usize) -> f64 {
    v.get(i).copied().unwrap_or_default()
}

fn at_label(y: &[usize], i: usize) -> usize {
    y.get(i).copied().unwrap_or_default()
}

fn set(v: &mut [f64], i: usize, x: f64) {
    if let Some(s) = v.get_mut(i) {
        *s = x;
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
    use crate::forest::argmax;

    fn blobs(n: usize, k: usize, seed: u64) -> (Matrix, Vec<usize>) {
        let mut rng = SplitMix64::new(seed);
        let (mut data, mut y) = (Vec::new(), Vec::new());
        for i in 0..n {
            let c = i % k;
            #[allow(clippy::cast_precision_loss)]
            let centre = c as f64 * 3.0;
            data.extend([
                (centre + rng.normal()) as f32 * 100.0,
                (rng.normal() - centre) as f32,
            ]);
            y.push(c);
        }
        (Matrix::new(n, 2, data).unwrap(), y)
    }

    fn accuracy(m: &LogisticRegression, x: &Matrix, y: &[usize]) -> f64 {
        let pred: Vec<usize> = m.predict_proba(x).iter().map(|p| argmax(p)).collect();
        crate::metrics::accuracy(y, &pred).unwrap()
    }

    #[test]
    fn separates_three_blobs() {
        let (x, y) = blobs(3000, 3, 1);
        let m = LogisticRegression::fit(&x, &y, 3, &LogisticParams::default()).unwrap();
        assert!(accuracy(&m, &x, &y) > 0.95);
        let p = m.predict_proba(&x);
        assert!(p.iter().all(|r| (r.iter().sum::<f64>() - 1.0).abs() < 1e-9));
        assert!(m.privacy().is_none());
    }

    #[test]
    fn dp_sgd_spends_at_most_the_target_and_still_learns() {
        let (x, y) = blobs(20_000, 2, 2);
        let params = LogisticParams {
            epochs: 5,
            batch_size: 256,
            learning_rate: 0.5,
            dp: Some(DpParams {
                epsilon: 1.0,
                delta: 1e-5,
                insecure_noise_seed: Some(7),
                ..DpParams::default()
            }),
            ..LogisticParams::default()
        };
        let m = LogisticRegression::fit(&x, &y, 2, &params).unwrap();
        let spent = m.privacy().unwrap();
        assert!(spent.epsilon <= 1.0 && spent.epsilon > 0.9, "{spent:?}");
        assert_eq!(spent.steps, (5.0 / (256.0 / 20_000.0_f64)).ceil() as u64);
        assert_eq!(spent.scaling, "data-min-max");
        assert!(accuracy(&m, &x, &y) > 0.9, "{}", accuracy(&m, &x, &y));
    }

    #[test]
    fn dp_clamps_to_public_bounds_and_refuses_bad_settings() {
        let (x, y) = blobs(2000, 2, 3);
        let dp = DpParams {
            feature_bounds: Some(vec![(-500.0, 800.0), (-8.0, 5.0)]),
            insecure_noise_seed: Some(1),
            ..DpParams::default()
        };
        let params = LogisticParams {
            dp: Some(dp.clone()),
            ..LogisticParams::default()
        };
        let m = LogisticRegression::fit(&x, &y, 2, &params).unwrap();
        assert_eq!(m.privacy().unwrap().scaling, "public-bounds");
        // Far outside the bounds behaves as at the bound.
        let mut a = [0.0; 2];
        let mut b = [0.0; 2];
        m.predict_proba_into(&[800.0, 5.0], &mut a);
        m.predict_proba_into(&[1e9, 1e9], &mut b);
        assert_eq!(a, b);
        let bad = LogisticParams {
            dp: Some(DpParams {
                epsilon: 1e-9,
                ..dp
            }),
            ..LogisticParams::default()
        };
        assert!(LogisticRegression::fit(&x, &y, 2, &bad).is_err());
    }
}
