//! The learned part of the input rail: hashed character n-grams and words, scored by a
//! logistic regression (`rampart_ml::sparse`).
//!
//! Features are taken from the plain view of [`crate::normalize`] (invisible characters gone,
//! NFKC, confusables folded, lower case) with whitespace runs collapsed: byte 3-, 4- and
//! 5-grams over the text padded with a space, plus words (runs of letters, digits and non-ASCII
//! bytes) and word pairs. Each feature hashes (SplitMix64's finaliser, salted by kind) to one of
//! `2^bits` buckets with a sign bit; each distinct feature weighs `1 + ln(count)` and a text's
//! vector is L2-normalised. Scoring hashes the text once into a reused per-thread buffer and
//! sorts it to count repeats.
//!
//! The shipped model (`model/injection-classifier.safetensors`) is trained by
//! `examples/train_classifier.rs` on the `train` split of `data/prompts.jsonl.gz` (see
//! `data/DATASET.md`); its metadata names the dataset's SHA-256, the feature settings and the
//! logit offset chosen on the `valid` split. A test retrains it and compares every weight.

use std::collections::HashMap;

use rampart_ml::sparse::{SparseLogistic, SparseParams, sigmoid};
use serde_json::Value;

/// The shipped model.
pub const BUILTIN: &[u8] = include_bytes!("../model/injection-classifier.safetensors");

/// The format this module reads and writes (safetensors metadata `format`).
pub const FORMAT: &str = "rampart-guard-classifier/1";

/// Hash buckets of the shipped model: 2^18.
pub const DEFAULT_BITS: u32 = 18;

const SALT_GRAM: u64 = 0x6a09_e667_f3bc_c908;
const SALT_WORD: u64 = 0xbb67_ae85_84ca_a73b;
const SALT_PAIR: u64 = 0x3c6e_f372_fe94_f82b;

const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Calls `f(hash)` for every feature occurrence of `plain` (an already normalised text).
pub fn hashes(plain: &str, mut f: impl FnMut(u64)) {
    let mut window = 0u64;
    let mut filled = 0u64;
    let mut last_space = false;
    let (mut word, mut word_len, mut prev_word) = (0xcbf2_9ce4_8422_2325u64, 0usize, 0u64);
    let bytes = std::iter::once(b' ')
        .chain(plain.bytes())
        .chain(std::iter::once(b' '));
    for b in bytes {
        let b = if b.is_ascii_whitespace() { b' ' } else { b };
        if b == b' ' && last_space {
            continue;
        }
        last_space = b == b' ';
        window = (window << 8) | u64::from(b);
        filled = filled.saturating_add(1);
        for n in 3..=5u64 {
            if filled >= n {
                let gram = window & (u64::MAX >> (64 - 8 * n));
                f(mix(gram ^ SALT_GRAM ^ (n << 56).rotate_left(3)));
            }
        }
        if is_word_byte(b) {
            word = (word ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            word_len += 1;
        } else if word_len > 0 {
            f(mix(word ^ SALT_WORD));
            if prev_word != 0 {
                f(mix(prev_word.rotate_left(17) ^ word ^ SALT_PAIR));
            }
            prev_word = word;
            (word, word_len) = (0xcbf2_9ce4_8422_2325, 0);
        }
    }
}

/// Walks the distinct features of `plain` with their sublinear weight `1 + ln(count)`:
/// calls `f(bucket, signed weight)` and returns the vector's L2 norm. `buf` is scratch space.
fn weighted(plain: &str, bits: u32, buf: &mut Vec<u64>, mut f: impl FnMut(u32, f64)) -> f64 {
    buf.clear();
    hashes(plain, |h| buf.push(h));
    buf.sort_unstable();
    let shift = 64 - bits;
    let mut norm = 0.0f64;
    let mut i = 0;
    while let Some(&h) = buf.get(i) {
        let mut j = i + 1;
        while buf.get(j) == Some(&h) {
            j += 1;
        }
        #[allow(clippy::cast_precision_loss)]
        let w = 1.0 + ((j - i) as f64).ln();
        norm += w * w;
        #[allow(clippy::cast_possible_truncation)]
        f((h >> shift) as u32, if h & 1 == 0 { w } else { -w });
        i = j;
    }
    norm.sqrt()
}

/// A text's sparse vector (sublinear counts, L2-normalised, summed per bucket, sorted by
/// bucket), as used in training.
#[must_use]
pub fn vector(plain: &str, bits: u32) -> Vec<(u32, f32)> {
    let mut acc: HashMap<u32, f64> = HashMap::new();
    let norm = weighted(plain, bits, &mut Vec::new(), |i, w| {
        *acc.entry(i).or_default() += w;
    });
    let scale = 1.0 / norm.max(1e-12);
    #[allow(clippy::cast_possible_truncation)]
    let mut v: Vec<(u32, f32)> = acc
        .into_iter()
        .filter(|&(_, s)| s != 0.0)
        .map(|(i, s)| (i, (s * scale) as f32))
        .collect();
    v.sort_unstable_by_key(|&(i, _)| i);
    v
}

/// A trained classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    model: SparseLogistic,
    bits: u32,
    offset: f64,
    meta: HashMap<String, String>,
}

impl Classifier {
    /// The shipped model.
    ///
    /// # Errors
    /// A message if the embedded file does not load (a broken build).
    pub fn builtin() -> Result<Self, crate::GuardError> {
        Self::from_safetensors(BUILTIN)
    }

    /// Loads a model file.
    ///
    /// # Errors
    /// A message for a file that is not a classifier of this format.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, crate::GuardError> {
        let (model, meta) = SparseLogistic::from_safetensors(bytes).map_err(|e| e.to_string())?;
        if meta.get("format").map(String::as_str) != Some(FORMAT) {
            return Err(format!("not a {FORMAT} model").into());
        }
        let bits: u32 = meta
            .get("bits")
            .and_then(|b| b.parse().ok())
            .filter(|b| (8..=24).contains(b))
            .ok_or("metadata bits: missing or outside 8..=24")?;
        if model.dim() != 1usize << bits {
            return Err(format!("{} weights for {bits} bits", model.dim()).into());
        }
        let offset: f64 = meta
            .get("offset")
            .and_then(|o| o.parse().ok())
            .filter(|o: &f64| o.is_finite())
            .ok_or("metadata offset: missing or not a number")?;
        Ok(Self {
            model,
            bits,
            offset,
            meta,
        })
    }

    /// Trains on `(plain text, is attack)` pairs; `offset` is added to every margin.
    ///
    /// # Errors
    /// A message when training refuses the data (one class only, …).
    pub fn train(
        examples: &[(String, bool)],
        bits: u32,
        params: &SparseParams,
        mut meta: HashMap<String, String>,
    ) -> Result<Self, crate::GuardError> {
        let rows: Vec<Vec<(u32, f32)>> = examples.iter().map(|(t, _)| vector(t, bits)).collect();
        let labels: Vec<bool> = examples.iter().map(|&(_, l)| l).collect();
        let model =
            SparseLogistic::fit(1 << bits, &rows, &labels, params).map_err(|e| e.to_string())?;
        meta.insert("format".into(), FORMAT.into());
        meta.insert("bits".into(), bits.to_string());
        meta.insert("offset".into(), "0".into());
        meta.insert(
            "features".into(),
            "byte 3-5-grams, words, word pairs of the plain view; 1 + ln(count), L2-normalised"
                .into(),
        );
        Ok(Self {
            model,
            bits,
            offset: 0.0,
            meta,
        })
    }

    /// Sets the logit offset (chosen on a validation split).
    pub fn set_offset(&mut self, offset: f64) {
        self.offset = offset;
        self.meta.insert("offset".into(), format!("{offset}"));
    }

    /// The metadata stored with the model.
    #[must_use]
    pub const fn metadata(&self) -> &HashMap<String, String> {
        &self.meta
    }

    /// The model file.
    ///
    /// # Errors
    /// A message if serialisation fails.
    pub fn to_safetensors(&self) -> Result<Vec<u8>, crate::GuardError> {
        self.model
            .to_safetensors(self.meta.clone())
            .map_err(|e| e.to_string().into())
    }

    /// The margin (log-odds, offset included) of an already normalised text. Allocates only
    /// when the thread's scratch buffer must grow.
    #[must_use]
    pub fn margin(&self, plain: &str) -> f64 {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let (sum, norm) = BUF.with(|b| {
            let mut buf = b.borrow_mut();
            let mut sum = 0.0f64;
            let norm = weighted(plain, self.bits, &mut buf, |i, w| {
                sum += f64::from(self.model.weight(i)) * w;
            });
            // A huge text leaves a huge buffer behind: give it back.
            if buf.capacity() > 1 << 20 {
                *buf = Vec::new();
            }
            (sum, norm)
        });
        f64::from(self.model.bias()) + sum / norm.max(1e-12) + self.offset
    }

    /// The probability that an already normalised text is an injection or jailbreak.
    #[must_use]
    pub fn probability(&self, plain: &str) -> f64 {
        sigmoid(self.margin(plain))
    }
}

/// What [`fit_dataset`] measured on the validation split.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// Training texts.
    pub train: usize,
    /// Validation texts.
    pub valid: usize,
    /// Recall of the whole input rail (rules and classifier) on the validation attacks.
    pub recall: f64,
    /// Share of validation benign texts it blocks.
    pub false_positive_rate: f64,
    /// The logit offset chosen.
    pub offset: f64,
    /// `(offset, recall, false-positive rate)` on the validation split for every offset tried.
    pub curve: Vec<(f64, f64, f64)>,
}

/// The shipped model's training settings.
#[must_use]
pub const fn default_params() -> SparseParams {
    SparseParams {
        epochs: 12,
        learning_rate: 0.2,
        l2: 1e-6,
        positive_weight: None,
        seed: 20_261_202,
    }
}

/// Most benign validation texts the chosen offset may let the input rail block.
pub const MAX_VALID_FPR: f64 = 0.01;

/// Trains on the `train` records of a JSONL prompt set (`{"text", "label", "split"}`, as in
/// `data/prompts.jsonl.gz`), then picks, on the `valid` records, the logit offset that gives
/// the input rail (default rules plus the classifier, threshold 0.5) its highest recall while
/// it blocks at most [`MAX_VALID_FPR`] of the benign texts. `heldout` records are skipped
/// unread. `dataset_sha256` goes into the metadata.
///
/// # Errors
/// A message naming the line of a malformed record, or when training or the offset search
/// finds nothing usable.
pub fn fit_dataset(
    jsonl: &str,
    dataset_sha256: &str,
) -> Result<(Classifier, FitReport), crate::GuardError> {
    let mut train = Vec::new();
    let mut valid = Vec::new();
    for (n, line) in jsonl.lines().enumerate() {
        let r: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        let split = r.get("split").and_then(Value::as_str);
        if split == Some("heldout") {
            continue;
        }
        let t = r
            .get("text")
            .and_then(Value::as_str)
            .ok_or(format!("line {}: no \"text\" string", n + 1))?;
        let label = match r.get("label").and_then(Value::as_u64) {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(format!("line {}: \"label\" must be 0 or 1", n + 1).into()),
        };
        match split {
            Some("train") => train.push((crate::normalize::views(t).plain, label)),
            Some("valid") => valid.push((t.to_owned(), label)),
            other => return Err(format!("line {}: unknown split {other:?}", n + 1).into()),
        }
    }
    let params = default_params();
    let meta = HashMap::from([
        ("dataset_sha256".to_owned(), dataset_sha256.to_owned()),
        ("train_examples".to_owned(), train.len().to_string()),
        (
            "training".to_owned(),
            format!(
                "rampart_ml::sparse AdaGrad, {} epochs, lr {}, l2 {}, balanced classes, seed {}",
                params.epochs, params.learning_rate, params.l2, params.seed
            ),
        ),
    ]);
    let mut model = Classifier::train(&train, DEFAULT_BITS, &params, meta)?;
    let rules_only = crate::Guard::with_classifier(crate::GuardConfig::default(), None)
        .map_err(|e| e.to_string())?;
    let scored: Vec<(f64, f64, bool)> = valid
        .iter()
        .map(|(t, l)| {
            let r = rules_only.check_input(t).score;
            (r, model.margin(&crate::normalize::views(t).plain), *l)
        })
        .collect();
    let rate = |offset: f64| {
        let (mut tp, mut pos, mut fp, mut neg) = (0usize, 0usize, 0usize, 0usize);
        for &(r, m, l) in &scored {
            let hit = crate::rules::combine([r, sigmoid(m + offset)]) >= 0.5;
            if l {
                pos += 1;
                tp += usize::from(hit);
            } else {
                neg += 1;
                fp += usize::from(hit);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        (tp as f64 / pos.max(1) as f64, fp as f64 / neg.max(1) as f64)
    };
    let mut best: Option<(f64, f64, f64)> = None;
    let mut curve = Vec::new();
    for step in -160..=160 {
        let offset = f64::from(step) / 40.0;
        let (recall, fpr) = rate(offset);
        curve.push((offset, recall, fpr));
        if fpr <= MAX_VALID_FPR && best.is_none_or(|(_, r, f)| (recall, -fpr) > (r, -f)) {
            best = Some((offset, recall, fpr));
        }
    }
    let (offset, recall, fpr) =
        best.ok_or("no offset keeps the validation false-positive rate within bounds")?;
    model.set_offset(offset);
    let report = FitReport {
        train: train.len(),
        valid: scored.len(),
        recall,
        false_positive_rate: fpr,
        offset,
        curve,
    };
    Ok((model, report))
}
