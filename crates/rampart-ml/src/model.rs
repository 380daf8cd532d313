//! Models as safetensors files: every array a tensor, everything else (kind, features, classes,
//! hyperparameters, training-data digest, the input schema used as a drift and anomaly
//! reference) one JSON document under the header metadata key `rampart`.
//!
//! Loading trusts nothing: the safetensors header is checked by the `safetensors` crate, then
//! every tensor's name, dtype and shape, the metadata's shape and limits, and the trees'
//! structure (children must follow their parent inside their tree) — a hostile file gives [`MlError::Model`], never a panic or
//! an out-of-bounds read.

use std::collections::HashMap;

use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::MlError;
use crate::forest::RandomForest;
use crate::iforest::IsolationForest;
use crate::linear::{LogisticRegression, PrivacySpent};
use crate::matrix::Matrix;
use crate::tree::{TreeArrays, TreeSet};

/// The header metadata key holding [`ModelMeta`] as JSON.
pub const METADATA_KEY: &str = "rampart";
/// The only format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Most features a model may declare.
pub const MAX_FEATURES: usize = 1 << 20;
/// Most classes a classifier may declare.
pub const MAX_CLASSES: usize = 1 << 16;

/// Which estimator a model holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// [`RandomForest`].
    RandomForest,
    /// [`IsolationForest`].
    IsolationForest,
    /// [`LogisticRegression`].
    LogisticRegression,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::RandomForest => "random-forest",
            Self::IsolationForest => "isolation-forest",
            Self::LogisticRegression => "logistic-regression",
        })
    }
}

/// Training-time statistics of one input feature: the reference for input validation, drift
/// (PSI over the deciles) and anomaly checks at serving time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureStats {
    /// Column name.
    pub name: String,
    /// Smallest training value.
    pub min: f64,
    /// Largest training value.
    pub max: f64,
    /// Mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// The nine decile edges (numpy's linear quantiles).
    pub deciles: Vec<f64>,
    /// The training share of each decile bin `(-inf, e1) [e1, e2) … [e9, +inf)`: the drift
    /// reference. Absent in older files (then [`FeatureStats::reference_shares`] estimates it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<f64>,
}

impl FeatureStats {
    /// Statistics of every column of `x`, named by `names`.
    #[must_use]
    pub fn of(x: &Matrix, names: &[String]) -> Vec<Self> {
        (0..x.cols())
            .map(|j| {
                let col: Vec<f64> = x.column(j).into_iter().map(f64::from).collect();
                #[allow(clippy::cast_precision_loss)]
                let n = col.len().max(1) as f64;
                let mean = col.iter().sum::<f64>() / n;
                let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                let deciles = crate::drift::decile_edges(&col);
                Self {
                    name: names.get(j).cloned().unwrap_or_else(|| format!("f{j}")),
                    min: col.iter().copied().fold(f64::INFINITY, f64::min),
                    max: col.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    mean,
                    std: var.sqrt(),
                    shares: crate::drift::shares(&col, &deciles),
                    deciles,
                }
            })
            .collect()
    }

    /// The drift reference: the stored training shares of the decile bins, or for files
    /// without them an estimate from the edges ([`crate::drift::reference_shares`]).
    #[must_use]
    pub fn reference_shares(&self) -> Vec<f64> {
        if self.shares.len() == self.deciles.len() + 1 {
            self.shares.clone()
        } else {
            crate::drift::reference_shares(&self.deciles, self.min)
        }
    }
}

/// Everything about a model that is not an array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The estimator.
    pub kind: ModelKind,
    /// Feature names, in input order.
    pub features: Vec<String>,
    /// Class labels in index order (empty for the isolation forest).
    pub classes: Vec<String>,
    /// The label column it was trained on, if any.
    pub label: Option<String>,
    /// Hyperparameters as given.
    pub hyperparameters: serde_json::Value,
    /// `sha256:<hex>` of the training data, if known.
    pub training_data_digest: Option<String>,
    /// Training rows.
    pub training_rows: u64,
    /// Per-feature training statistics (same order as `features`).
    pub input_schema: Vec<FeatureStats>,
    /// Isolation forest: the subsample size ψ and the anomaly threshold.
    pub isolation: Option<IsolationMeta>,
    /// Logistic regression trained with DP-SGD: what it spent.
    pub privacy: Option<PrivacySpent>,
    /// The program that wrote it.
    pub created_by: String,
}

/// Isolation forest scalars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationMeta {
    /// Subsample size per tree.
    pub max_samples: usize,
    /// Scores above this are anomalies.
    pub threshold: f64,
}

/// A trained estimator.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Estimator {
    /// Random forest classifier.
    RandomForest(RandomForest),
    /// Isolation forest anomaly detector.
    IsolationForest(IsolationForest),
    /// Logistic regression classifier.
    LogisticRegression(LogisticRegression),
}

impl Estimator {
    /// The kind tag.
    #[must_use]
    pub const fn kind(&self) -> ModelKind {
        match self {
            Self::RandomForest(_) => ModelKind::RandomForest,
            Self::IsolationForest(_) => ModelKind::IsolationForest,
            Self::LogisticRegression(_) => ModelKind::LogisticRegression,
        }
    }

    /// Number of input features.
    #[must_use]
    pub fn n_features(&self) -> usize {
        match self {
            Self::RandomForest(m) => m.n_features(),
            Self::IsolationForest(m) => m.n_features(),
            Self::LogisticRegression(m) => m.n_features(),
        }
    }

    /// Number of classes (0 for the isolation forest).
    #[must_use]
    pub const fn n_classes(&self) -> usize {
        match self {
            Self::RandomForest(m) => m.n_classes(),
            Self::IsolationForest(_) => 0,
            Self::LogisticRegression(m) => m.n_classes(),
        }
    }
}

/// A model: its estimator and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// Metadata.
    pub meta: ModelMeta,
    /// Estimator.
    pub estimator: Estimator,
}

/// One row's output.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// A classifier's class index and probabilities.
    Class {
        /// Most probable class.
        class: usize,
        /// Probability per class.
        proba: Vec<f64>,
    },
    /// An anomaly detector's score and verdict.
    Anomaly {
        /// Score in (0, 1].
        score: f64,
        /// Above the threshold.
        is_anomaly: bool,
    },
}

impl Model {
    /// Wraps a trained estimator, computing the input schema from its training matrix.
    ///
    /// # Errors
    /// [`MlError::Input`] if names or classes do not match the estimator.
    pub fn new(
        estimator: Estimator,
        x: &Matrix,
        features: Vec<String>,
        classes: Vec<String>,
        hyperparameters: serde_json::Value,
    ) -> Result<Self, MlError> {
        let input_schema = FeatureStats::of(x, &features);
        let isolation = match &estimator {
            Estimator::IsolationForest(f) => Some(IsolationMeta {
                max_samples: f.max_samples(),
                threshold: f.threshold(),
            }),
            _ => None,
        };
        let privacy = match &estimator {
            Estimator::LogisticRegression(m) => m.privacy().cloned(),
            _ => None,
        };
        let meta = ModelMeta {
            format_version: FORMAT_VERSION,
            kind: estimator.kind(),
            features,
            classes,
            label: None,
            hyperparameters,
            training_data_digest: None,
            training_rows: x.rows() as u64,
            input_schema,
            isolation,
            privacy,
            created_by: concat!("rampart-ml ", env!("CARGO_PKG_VERSION")).into(),
        };
        check_meta(&meta, &estimator).map_err(|e| MlError::Input(e.to_string()))?;
        Ok(Self { meta, estimator })
    }

    /// Predictions for every row of `x` (whose columns must be the model's features, in order).
    ///
    /// # Errors
    /// [`MlError::Input`] when the column count differs.
    pub fn predict(&self, x: &Matrix) -> Result<Vec<Prediction>, MlError> {
        if x.cols() != self.estimator.n_features() {
            return Err(MlError::Input(format!(
                "the model takes {} features, the data has {}",
                self.estimator.n_features(),
                x.cols()
            )));
        }
        let class = |proba: Vec<f64>| Prediction::Class {
            class: crate::forest::argmax(&proba),
            proba,
        };
        Ok(match &self.estimator {
            Estimator::RandomForest(m) => m.predict_proba(x).into_iter().map(class).collect(),
            Estimator::LogisticRegression(m) => m.predict_proba(x).into_iter().map(class).collect(),
            Estimator::IsolationForest(m) => m
                .score(x)
                .into_iter()
                .map(|score| Prediction::Anomaly {
                    score,
                    is_anomaly: m.is_anomaly(score),
                })
                .collect(),
        })
    }

    /// The safetensors bytes. The same model always gives the same bytes.
    ///
    /// # Errors
    /// [`MlError::Model`] if serialisation fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MlError> {
        safetensors::serialize(self.tensors(), Some(self.header_metadata()?))
            .map_err(|e| MlError::Model(e.to_string()))
    }

    /// Writes the same bytes as [`Model::to_bytes`] to `path` (created or truncated), holding
    /// only one tensor's bytes in memory at a time — a forest of 100 deep trees is hundreds of
    /// megabytes. The caller makes it atomic (write to a temporary name, then rename).
    ///
    /// # Errors
    /// [`MlError::Model`] if serialisation or the write fails.
    pub fn write_file(&self, path: &std::path::Path) -> Result<(), MlError> {
        safetensors::serialize_to_file(self.tensors(), Some(self.header_metadata()?), path)
            .map_err(|e| MlError::Model(format!("cannot write {}: {e}", path.display())))
    }

    fn header_metadata(&self) -> Result<HashMap<String, String>, MlError> {
        let meta = serde_json::to_string(&self.meta).map_err(|e| MlError::Model(e.to_string()))?;
        Ok(HashMap::from([(METADATA_KEY.into(), meta)]))
    }

    fn tensors(&self) -> Vec<(String, Lazy<'_>)> {
        let mut t = Vec::new();
        let f64s = f64_tensor;
        match &self.estimator {
            Estimator::RandomForest(m) => {
                tree_tensors(&mut t, "rf", &m.trees, m.n_classes);
                f64s(
                    &mut t,
                    "rf.feature_importances",
                    &m.importances,
                    vec![m.importances.len()],
                );
            }
            Estimator::IsolationForest(m) => tree_tensors(&mut t, "if", &m.trees, 1),
            Estimator::LogisticRegression(m) => {
                f64s(&mut t, "lr.weights", &m.weights, vec![m.k, m.d]);
                f64s(&mut t, "lr.bias", &m.bias, vec![m.k]);
                f64s(&mut t, "lr.shift", &m.shift, vec![m.d]);
                f64s(&mut t, "lr.scale", &m.scale, vec![m.d]);
                if let Some((lo, hi)) = &m.clamp {
                    f64s(&mut t, "lr.clamp_low", lo, vec![m.d]);
                    f64s(&mut t, "lr.clamp_high", hi, vec![m.d]);
                }
            }
        }
        t
    }

    /// Parses and validates a model file's bytes.
    ///
    /// # Errors
    /// [`MlError::Model`] naming what is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MlError> {
        let bad = |m: String| MlError::Model(m);
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| {
                bad(format!(
                    "no `{METADATA_KEY}` metadata: not a rampart model (a third-party file? \
                     scan it with `rampart scan`)"
                ))
            })?;
        let meta: ModelMeta =
            serde_json::from_str(json).map_err(|e| bad(format!("model metadata: {e}")))?;
        if meta.format_version != FORMAT_VERSION {
            return Err(bad(format!(
                "model format version {} (this build reads {FORMAT_VERSION})",
                meta.format_version
            )));
        }
        let d = meta.features.len();
        if d == 0 || d > MAX_FEATURES {
            return Err(bad(format!("{d} features (1 to {MAX_FEATURES} allowed)")));
        }
        let k = meta.classes.len();
        let r = Reader(&st);
        let estimator = match meta.kind {
            ModelKind::RandomForest => {
                check_classes(k)?;
                let trees = TreeSet::from_arrays(&r.trees("rf", k)?, k, d)?;
                let importances = r.f64s("rf.feature_importances", &[d])?;
                Estimator::RandomForest(RandomForest {
                    trees,
                    n_classes: k,
                    importances,
                })
            }
            ModelKind::IsolationForest => {
                let iso = meta
                    .isolation
                    .ok_or_else(|| bad("isolation forest without `isolation` metadata".into()))?;
                if iso.max_samples == 0 || !iso.threshold.is_finite() {
                    return Err(bad(format!("isolation metadata out of range: {iso:?}")));
                }
                let trees = TreeSet::from_arrays(&r.trees("if", 1)?, 1, d)?;
                Estimator::IsolationForest(IsolationForest::new(
                    trees,
                    d,
                    iso.max_samples,
                    iso.threshold,
                ))
            }
            ModelKind::LogisticRegression => {
                check_classes(k)?;
                let weights = r.f64s("lr.weights", &[k, d])?;
                let bias = r.f64s("lr.bias", &[k])?;
                let shift = r.f64s("lr.shift", &[d])?;
                let scale = r.f64s("lr.scale", &[d])?;
                if scale.contains(&0.0) {
                    return Err(bad("lr.scale has a zero".into()));
                }
                let clamp = match (st.tensor("lr.clamp_low"), st.tensor("lr.clamp_high")) {
                    (Ok(_), Ok(_)) => Some((
                        r.f64s("lr.clamp_low", &[d])?,
                        r.f64s("lr.clamp_high", &[d])?,
                    )),
                    (Err(_), Err(_)) => None,
                    _ => return Err(bad("lr.clamp_low and lr.clamp_high come as a pair".into())),
                };
                Estimator::LogisticRegression(LogisticRegression {
                    k,
                    d,
                    weights,
                    bias,
                    shift,
                    scale,
                    clamp,
                    privacy: meta.privacy.clone(),
                })
            }
        };
        let expected = r.expected_names(meta.kind);
        if let Some(extra) = st.names().into_iter().find(|n| !expected.contains(n)) {
            return Err(bad(format!("unexpected tensor `{extra}`")));
        }
        check_meta(&meta, &estimator)?;
        Ok(Self { meta, estimator })
    }
}

fn check_classes(k: usize) -> Result<(), MlError> {
    if (2..=MAX_CLASSES).contains(&k) {
        Ok(())
    } else {
        Err(MlError::Model(format!(
            "{k} classes (a classifier has 2 to {MAX_CLASSES})"
        )))
    }
}

fn check_meta(meta: &ModelMeta, est: &Estimator) -> Result<(), MlError> {
    let bad = |m: String| Err(MlError::Model(m));
    if meta.kind != est.kind() {
        return bad(format!(
            "metadata says {}, arrays hold {}",
            meta.kind,
            est.kind()
        ));
    }
    if meta.features.len() != est.n_features() {
        return bad(format!(
            "{} feature names for {} features",
            meta.features.len(),
            est.n_features()
        ));
    }
    if meta.classes.len() != est.n_classes() {
        return bad(format!(
            "{} class labels for {} classes",
            meta.classes.len(),
            est.n_classes()
        ));
    }
    if !meta.input_schema.is_empty() && meta.input_schema.len() != meta.features.len() {
        return bad(format!(
            "input schema has {} features, the model {}",
            meta.input_schema.len(),
            meta.features.len()
        ));
    }
    for f in &meta.input_schema {
        if f.deciles.len() > 64
            || !(f.shares.is_empty() || f.shares.len() == f.deciles.len() + 1)
            || f.shares.iter().any(|s| !(0.0..=1.0).contains(s))
        {
            return bad(format!(
                "input schema of `{}`: {} decile edges and {} shares",
                f.name,
                f.deciles.len(),
                f.shares.len()
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = meta.features.iter().find(|f| !seen.insert(f.as_str())) {
        return bad(format!("feature `{dup}` appears twice"));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = meta.classes.iter().find(|c| !seen.insert(c.as_str())) {
        return bad(format!("class `{dup}` appears twice"));
    }
    Ok(())
}

/// Little-endian bytes of `v`.
fn le_bytes<const N: usize, T: Copy>(v: &[T], le: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|x| le(*x)).collect()
}

/// A tensor whose bytes are produced only when the serialiser asks for them.
struct Lazy<'a> {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Box<dyn Fn() -> Vec<u8> + 'a>,
}

impl<'a> Lazy<'a> {
    fn new(dtype: Dtype, shape: Vec<usize>, bytes: impl Fn() -> Vec<u8> + 'a) -> Self {
        Self {
            dtype,
            shape,
            bytes: Box::new(bytes),
        }
    }
}

impl safetensors::View for Lazy<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Owned((self.bytes)())
    }

    fn data_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.bitsize() / 8
    }
}

fn f64_tensor<'a>(t: &mut Vec<(String, Lazy<'a>)>, name: &str, v: &'a [f64], shape: Vec<usize>) {
    t.push((
        name.to_owned(),
        Lazy::new(Dtype::F64, shape, move || le_bytes(v, f64::to_le_bytes)),
    ));
}

fn tree_tensors<'a>(t: &mut Vec<(String, Lazy<'a>)>, p: &str, trees: &'a TreeSet, k: usize) {
    use crate::tree::Column;
    let n = trees.n_nodes();
    for (name, col, dtype) in [
        ("feature", Column::Feature, Dtype::I32),
        ("threshold", Column::Threshold, Dtype::F32),
        ("left", Column::Left, Dtype::I32),
        ("right", Column::Right, Dtype::I32),
    ] {
        t.push((
            format!("{p}.{name}"),
            Lazy::new(dtype, vec![n], move || trees.column_bytes(col)),
        ));
    }
    t.push((
        format!("{p}.value"),
        Lazy::new(Dtype::F32, vec![n, k], || trees.value_bytes()),
    ));
    t.push((
        format!("{p}.tree_offsets"),
        Lazy::new(Dtype::I64, vec![trees.len() + 1], || trees.offset_bytes()),
    ));
}

struct Reader<'a, 'd>(&'a SafeTensors<'d>);

impl Reader<'_, '_> {
    fn raw<const N: usize, T>(
        &self,
        name: &str,
        dtype: Dtype,
        shape: Option<&[usize]>,
        from: impl Fn([u8; N]) -> T,
    ) -> Result<Vec<T>, MlError> {
        let t = self
            .0
            .tensor(name)
            .map_err(|_| MlError::Model(format!("tensor `{name}` is missing")))?;
        if t.dtype() != dtype {
            return Err(MlError::Model(format!(
                "tensor `{name}` is {:?}, expected {dtype:?}",
                t.dtype()
            )));
        }
        if let Some(s) = shape
            && t.shape() != s
        {
            return Err(MlError::Model(format!(
                "tensor `{name}` has shape {:?}, expected {s:?}",
                t.shape()
            )));
        }
        Ok(t.data()
            .chunks_exact(N)
            .map(|c| from(c.try_into().unwrap_or([0; N])))
            .collect())
    }

    fn f64s(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>, MlError> {
        let v = self.raw(name, Dtype::F64, Some(shape), f64::from_le_bytes)?;
        if v.iter().any(|x| !x.is_finite()) {
            return Err(MlError::Model(format!(
                "tensor `{name}` has a non-finite value"
            )));
        }
        Ok(v)
    }

    fn trees(&self, p: &str, k: usize) -> Result<TreeArrays, MlError> {
        let feature = self.raw(
            &format!("{p}.feature"),
            Dtype::I32,
            None,
            i32::from_le_bytes,
        )?;
        let n = feature.len();
        let one = [n];
        let int = |s: &str| {
            self.raw(
                &format!("{p}.{s}"),
                Dtype::I32,
                Some(&one),
                i32::from_le_bytes,
            )
        };
        Ok(TreeArrays {
            threshold: self.raw(
                &format!("{p}.threshold"),
                Dtype::F32,
                Some(&one),
                f32::from_le_bytes,
            )?,
            left: int("left")?,
            right: int("right")?,
            value: self.raw(
                &format!("{p}.value"),
                Dtype::F32,
                Some(&[n, k]),
                f32::from_le_bytes,
            )?,
            offsets: self.raw(
                &format!("{p}.tree_offsets"),
                Dtype::I64,
                None,
                i64::from_le_bytes,
            )?,
            feature,
        })
    }

    fn expected_names(&self, kind: ModelKind) -> Vec<&'static str> {
        match kind {
            ModelKind::RandomForest => vec![
                "rf.feature",
                "rf.threshold",
                "rf.left",
                "rf.right",
                "rf.value",
                "rf.tree_offsets",
                "rf.feature_importances",
            ],
            ModelKind::IsolationForest => vec![
                "if.feature",
                "if.threshold",
                "if.left",
                "if.right",
                "if.value",
                "if.tree_offsets",
            ],
            ModelKind::LogisticRegression => vec![
                "lr.weights",
                "lr.bias",
                "lr.shift",
                "lr.scale",
                "lr.clamp_low",
                "lr.clamp_high",
            ],
        }
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
    use crate::forest::ForestParams;
    use crate::iforest::IsolationParams;
    use crate::linear::LogisticParams;
    use crate::split::SplitMix64;
    use safetensors::tensor::TensorView;

    fn data() -> (Matrix, Vec<usize>) {
        let mut rng = SplitMix64::new(5);
        let (mut v, mut y) = (Vec::new(), Vec::new());
        for _ in 0..400 {
            let a = rng.normal();
            let b = rng.normal();
            v.extend([a as f32, b as f32, rng.normal() as f32]);
            y.push(usize::from(a + b > 0.0) + usize::from(a > 1.0));
        }
        (Matrix::new(400, 3, v).unwrap(), y)
    }

    fn names() -> Vec<String> {
        vec!["a".into(), "b".into(), "noise".into()]
    }

    fn models() -> Vec<Model> {
        let (x, y) = data();
        let classes = vec!["low".into(), "mid".into(), "high".into()];
        let rf = RandomForest::fit(
            &x,
            &y,
            3,
            &ForestParams {
                n_trees: 4,
                ..Default::default()
            },
        );
        let lr = LogisticRegression::fit(&x, &y, 3, &LogisticParams::default());
        let iso = IsolationForest::fit(
            &x,
            &IsolationParams {
                n_trees: 4,
                ..Default::default()
            },
        );
        vec![
            Model::new(
                Estimator::RandomForest(rf.unwrap()),
                &x,
                names(),
                classes.clone(),
                serde_json::json!({}),
            )
            .unwrap(),
            Model::new(
                Estimator::LogisticRegression(lr.unwrap()),
                &x,
                names(),
                classes,
                serde_json::json!({}),
            )
            .unwrap(),
            Model::new(
                Estimator::IsolationForest(iso.unwrap()),
                &x,
                names(),
                vec![],
                serde_json::json!({}),
            )
            .unwrap(),
        ]
    }

    #[test]
    fn round_trips_and_predicts_the_same() {
        let (x, _) = data();
        for m in models() {
            let bytes = m.to_bytes().unwrap();
            assert_eq!(
                bytes,
                m.to_bytes().unwrap(),
                "serialisation is deterministic"
            );
            let back = Model::from_bytes(&bytes).unwrap();
            assert_eq!(back, m);
            assert_eq!(back.predict(&x).unwrap(), m.predict(&x).unwrap());
            // The file is plain safetensors that any reader can list.
            let st = SafeTensors::deserialize(&bytes).unwrap();
            assert!(st.names().len() >= 4);
        }
    }

    /// The fuzz seeds (one tiny model of each kind, written by `rampart ml train`) still load:
    /// a format change that orphans them fails here, not silently in the fuzzer.
    #[test]
    fn fuzz_seeds_load() {
        for (bytes, kind) in [
            (
                &include_bytes!("../../../fuzz/seeds/model_loader/random_forest.safetensors")[..],
                ModelKind::RandomForest,
            ),
            (
                include_bytes!("../../../fuzz/seeds/model_loader/isolation_forest.safetensors"),
                ModelKind::IsolationForest,
            ),
            (
                include_bytes!("../../../fuzz/seeds/model_loader/logistic.safetensors"),
                ModelKind::LogisticRegression,
            ),
            (
                include_bytes!("../../../fuzz/seeds/model_loader/logistic_dp.safetensors"),
                ModelKind::LogisticRegression,
            ),
        ] {
            let m = Model::from_bytes(bytes).unwrap();
            assert_eq!(m.meta.kind, kind);
            assert_eq!(
                m.to_bytes().unwrap(),
                bytes,
                "{kind} re-serialises to the same bytes"
            );
        }
    }

    #[test]
    fn same_seed_same_bytes() {
        let (a, b) = (models(), models());
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(
                a.to_bytes().unwrap(),
                b.to_bytes().unwrap(),
                "{}",
                a.meta.kind
            );
        }
    }

    /// Rewrites one tensor of a model file.
    fn with_tensor(bytes: &[u8], name: &str, f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
        let st = SafeTensors::deserialize(bytes).unwrap();
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        let owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(n, t)| {
                let mut d = t.data().to_vec();
                if n == name {
                    f(&mut d);
                }
                (n, t.dtype(), t.shape().to_vec(), d)
            })
            .collect();
        let views: Vec<_> = owned
            .iter()
            .map(|(n, dt, s, d)| (n.clone(), TensorView::new(*dt, s.clone(), d).unwrap()))
            .collect();
        safetensors::serialize(views, header.metadata().clone()).unwrap()
    }

    #[test]
    fn hostile_tree_arrays_are_refused() {
        let rf = models().remove(0).to_bytes().unwrap();
        let set_i32 = |at: usize, v: i32| {
            move |d: &mut Vec<u8>| d[at * 4..at * 4 + 4].copy_from_slice(&v.to_le_bytes())
        };
        type Edit = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("rf.left", Box::new(set_i32(0, 0)), "children"), // self-loop
            ("rf.right", Box::new(set_i32(0, 1_000_000)), "children"), // out of range
            ("rf.feature", Box::new(set_i32(0, 3)), "feature 3"), // feature ≥ d
            ("rf.feature", Box::new(set_i32(0, -7)), "children"),
            (
                "rf.threshold",
                Box::new(|d: &mut Vec<u8>| d[0..4].copy_from_slice(&f32::NAN.to_le_bytes())),
                "threshold",
            ),
            (
                "rf.value",
                Box::new(|d: &mut Vec<u8>| d[0..4].copy_from_slice(&f32::INFINITY.to_le_bytes())),
                "not finite",
            ),
            (
                "rf.tree_offsets",
                Box::new(|d: &mut Vec<u8>| d[8..16].copy_from_slice(&(-1i64).to_le_bytes())),
                "negative",
            ),
            (
                "rf.tree_offsets",
                Box::new(|d: &mut Vec<u8>| d[0..8].copy_from_slice(&5i64.to_le_bytes())),
                "offset",
            ),
        ];
        for (name, f, want) in cases {
            let e = Model::from_bytes(&with_tensor(&rf, name, f)).unwrap_err();
            assert!(e.to_string().contains(want), "{name}: {e}");
        }
    }

    #[test]
    fn hostile_metadata_and_shapes_are_refused() {
        let m = models().remove(1);
        let good = m.to_bytes().unwrap();
        let rewrite = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(&m.meta).unwrap();
            f(&mut v);
            let st = SafeTensors::deserialize(&good).unwrap();
            let views = st.tensors();
            safetensors::serialize(
                views,
                Some(HashMap::from([(METADATA_KEY.to_string(), v.to_string())])),
            )
            .unwrap()
        };
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| v["features"] = serde_json::json!(["a", "b"])),
                "shape",
            ),
            (
                Box::new(|v| v["features"] = serde_json::json!(["a", "a", "c"])),
                "twice",
            ),
            (
                Box::new(|v| v["classes"] = serde_json::json!(["x"])),
                "classes",
            ),
            (
                Box::new(|v| v["kind"] = serde_json::json!("random-forest")),
                "missing",
            ),
            (
                Box::new(|v| v["format_version"] = serde_json::json!(9)),
                "version",
            ),
            (
                Box::new(|v| v["surprise"] = serde_json::json!(1)),
                "unknown field",
            ),
        ];
        for (f, want) in cases {
            let e = Model::from_bytes(&rewrite(&*f)).unwrap_err();
            assert!(e.to_string().contains(want), "{want}: {e}");
        }
        let e = Model::from_bytes(&with_tensor(&good, "lr.scale", |d| d.fill(0))).unwrap_err();
        assert!(e.to_string().contains("zero"), "{e}");
        assert!(Model::from_bytes(b"\x08\0\0\0\0\0\0\0{}      ").is_err());
        assert!(Model::from_bytes(&good[..good.len() - 1]).is_err());
    }
}
