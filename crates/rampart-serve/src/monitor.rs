//! Monitoring and defence on the request path: input anomaly scores (a companion isolation
//! forest), per-feature drift (PSI over a rolling window, computed off the request path) and
//! model-extraction detection per API key (query budgets, sweeps along one feature, dense
//! probing near the decision boundary).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rampart_ml::Prediction;
use rampart_ml::model::FeatureStats;

/// What to do with a row whose anomaly score is above the detector's threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyPolicy {
    /// Count and audit it; answer as usual.
    Log,
    /// Also return `rampart.anomaly_score` and `rampart.anomalous` in the response.
    Flag,
    /// Refuse the request (422, `anomalous-input`).
    Reject,
}

impl AnomalyPolicy {
    /// Parses `log`, `flag` or `reject`.
    ///
    /// # Errors
    /// [`crate::ServeError::Setting`], naming the text.
    pub fn parse(text: &str) -> Result<Self, crate::ServeError> {
        match text {
            "log" => Ok(Self::Log),
            "flag" => Ok(Self::Flag),
            "reject" => Ok(Self::Reject),
            _ => Err(crate::ServeError::Setting {
                text: text.to_owned(),
                expected: "log, flag or reject",
            }),
        }
    }
}

/// Most values one model's drift window holds (rows × features): 16 MiB of `f32`.
const MAX_WINDOW_VALUES: usize = 4 << 20;
/// Most features given their own `rampart_drift_score` series (all count in `_max`).
pub const MAX_DRIFT_SERIES: usize = 100;

/// Where the rows one served model version was asked about are kept for drift. A
/// [`Mutex`]`<`[`DriftWindow`]`>` keeps them in this process (what one replica saw); a store
/// every replica reaches computes drift over the whole fleet's traffic.
/// [`drift_conformance::run`] is what any implementation must pass.
pub trait DriftWindowStore: Send + Sync + std::fmt::Debug {
    /// Appends rows (row-major); the oldest fall out once the window is full.
    fn push(&self, x: &[f32]);

    /// The rows held (row-major), when at least `min_rows` are held and some arrived since
    /// the last call.
    fn snapshot(&self, min_rows: usize) -> Option<Vec<f32>>;
}

impl DriftWindowStore for Mutex<DriftWindow> {
    fn push(&self, x: &[f32]) {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(x);
    }

    fn snapshot(&self, min_rows: usize) -> Option<Vec<f32>> {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .snapshot(min_rows)
    }
}

/// What every [`DriftWindowStore`] must do.
pub mod drift_conformance {
    use super::DriftWindowStore;

    pub use rampart_audit::conformance::Failure;

    /// The window length (rows) the store under test must be made with.
    pub const ROWS: usize = 50;
    /// Its features per row.
    pub const FEATURES: usize = 2;

    fn rows(from: u16, n: u16) -> Vec<f32> {
        (from..from + n)
            .flat_map(|i| [f32::from(i), -f32::from(i)])
            .collect()
    }

    /// Runs every case against an empty window of [`ROWS`] rows of [`FEATURES`] features.
    ///
    /// # Errors
    /// The first case the store fails.
    pub fn run(store: &dyn DriftWindowStore) -> Result<(), Failure> {
        if store.snapshot(1).is_some() {
            return Err(Failure::new("empty", "an empty window has rows"));
        }
        store.push(&rows(0, 10));
        if store.snapshot(20).is_some() {
            return Err(Failure::new(
                "min rows",
                "10 rows given out for a minimum of 20",
            ));
        }
        match store.snapshot(10) {
            Some(v) if v.len() == 10 * FEATURES => {}
            other => return Err(Failure::new("snapshot", format!("{other:?}"))),
        }
        if store.snapshot(1).is_some() {
            return Err(Failure::new("fresh", "the same rows given out twice"));
        }
        // Past its length the window keeps the latest rows only.
        store.push(&rows(10, 100));
        match store.snapshot(1) {
            Some(v) if v.len() == ROWS * FEATURES => {
                let mut firsts: Vec<f32> = v
                    .chunks_exact(FEATURES)
                    .filter_map(|r| r.first().copied())
                    .collect();
                firsts.sort_by(f32::total_cmp);
                let want: Vec<f32> = (60..110u16).map(f32::from).collect();
                if firsts != want {
                    return Err(Failure::new("latest", format!("kept {firsts:?}")));
                }
            }
            other => return Err(Failure::new("bounded", format!("{other:?}"))),
        }
        // Rows pushed from several threads at once are all kept (up to the length).
        std::thread::scope(|scope| {
            for t in 0..4u16 {
                scope.spawn(move || {
                    for i in 0..5u16 {
                        store.push(&rows(1000 + t * 10 + i, 1));
                    }
                });
            }
        });
        match store.snapshot(1) {
            Some(v) => {
                let new = v
                    .chunks_exact(FEATURES)
                    .filter(|r| r.first().is_some_and(|x| *x >= 1000.0))
                    .count();
                if new == 20 {
                    Ok(())
                } else {
                    Err(Failure::new("concurrent", format!("{new} of 20 rows kept")))
                }
            }
            None => Err(Failure::new("concurrent", "no rows after 20 pushes")),
        }
    }
}

/// The last rows a model was asked about, for drift.
#[derive(Debug)]
pub struct DriftWindow {
    features: usize,
    capacity: usize,
    values: Vec<f32>,
    next: usize,
    filled: usize,
    /// Rows seen since the last drift computation.
    fresh: u64,
}

impl DriftWindow {
    /// A window of `rows` rows (fewer if `rows × features` would pass the memory bound).
    #[must_use]
    pub fn new(rows: usize, features: usize) -> Self {
        let capacity = rows.min(MAX_WINDOW_VALUES / features.max(1)).max(1);
        Self {
            features,
            capacity,
            values: Vec::new(),
            next: 0,
            filled: 0,
            fresh: 0,
        }
    }

    /// Appends rows (row-major); the oldest fall out.
    pub fn push(&mut self, x: &[f32]) {
        let d = self.features.max(1);
        if self.values.is_empty() {
            self.values = vec![0.0; self.capacity * d];
        }
        for row in x.chunks_exact(d) {
            let at = self.next * d;
            if let Some(slot) = self.values.get_mut(at..at + d) {
                slot.copy_from_slice(row);
            }
            self.next = (self.next + 1) % self.capacity;
            self.filled = (self.filled + 1).min(self.capacity);
            self.fresh += 1;
        }
    }

    /// The most rows it holds.
    #[must_use]
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows held.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.filled
    }

    /// Whether it holds no rows.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Takes the rows held (row-major) and resets the fresh count, when at least `min_rows`
    /// are held and some arrived since the last call.
    pub fn snapshot(&mut self, min_rows: usize) -> Option<Vec<f32>> {
        if self.filled < min_rows.max(1) || self.fresh == 0 {
            return None;
        }
        self.fresh = 0;
        self.values
            .get(..self.filled * self.features)
            .map(<[f32]>::to_vec)
    }
}

/// PSI of each feature of the window (`rows × schema.len()`, row-major) against the
/// training reference.
#[must_use]
pub fn drift_scores(window: &[f32], schema: &[FeatureStats]) -> Vec<f64> {
    let d = schema.len().max(1);
    schema
        .iter()
        .enumerate()
        .map(|(j, f)| {
            let col: Vec<f64> = window
                .chunks_exact(d)
                .filter_map(|r| r.get(j))
                .map(|&v| f64::from(v))
                .collect();
            let current = rampart_ml::drift::shares(&col, &f.deciles);
            rampart_ml::drift::psi_from_shares(&f.reference_shares(), &current)
        })
        .collect()
}

/// What extraction defence does when a key shows a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractionAction {
    /// Refuse the key (429, `abnormal-usage-detected`) for the cooldown.
    Block,
    /// Hold the key to one request per second for the cooldown.
    Throttle,
}

/// Extraction-detection settings.
#[derive(Debug, Clone)]
pub struct ExtractionConfig {
    /// Rows a key may ask about per [`ExtractionConfig::budget_window`] (0: no budget).
    pub budget: u64,
    /// The budget's window.
    pub budget_window: Duration,
    /// Rows remembered per key and model for the pattern checks.
    pub history: usize,
    /// Patterns are looked for once this many rows are remembered.
    pub min_rows: usize,
    /// A sweep: at least this fraction of consecutive rows differ from the one before in the
    /// same single feature.
    pub sweep_fraction: f64,
    /// Near the boundary: the top two class probabilities within this of each other.
    pub boundary_margin: f64,
    /// Boundary probing: at least this fraction of rows near the boundary …
    pub boundary_fraction: f64,
    /// … and consecutive rows closer than this (root-mean-square distance per feature, in
    /// training standard deviations).
    pub dense_distance: f64,
    /// What to do.
    pub action: ExtractionAction,
    /// For how long.
    pub cooldown: Duration,
    /// Whether detection is on.
    pub enabled: bool,
}

impl Default for ExtractionConfig {
    fn default() -> Self {
        Self {
            budget: 100_000,
            budget_window: Duration::from_secs(3600),
            history: 64,
            min_rows: 32,
            sweep_fraction: 0.6,
            boundary_margin: 0.2,
            boundary_fraction: 0.5,
            dense_distance: 0.5,
            action: ExtractionAction::Block,
            cooldown: Duration::from_secs(300),
            enabled: true,
        }
    }
}

/// A detected pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// `budget`, `sweep` or `boundary`: the metric label.
    pub kind: &'static str,
    /// For people and the audit log.
    pub detail: String,
}

/// A key held back: why and for how long.
#[derive(Debug, Clone)]
pub struct Held {
    /// The alert's kind.
    pub kind: &'static str,
    /// Until it may ask again.
    pub retry_after: Duration,
    /// Blocked (not only throttled).
    pub blocked: bool,
}

#[derive(Debug)]
struct Track {
    window_start: Instant,
    rows_in_window: u64,
    last: Option<Vec<f32>>,
    /// Per remembered row: the one feature that changed from the row before, if only one did.
    single: VecDeque<Option<usize>>,
    near: VecDeque<bool>,
    dist: VecDeque<f64>,
    held: Option<(Instant, &'static str, bool)>,
    last_allowed: Option<Instant>,
}

impl Track {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            rows_in_window: 0,
            last: None,
            single: VecDeque::new(),
            near: VecDeque::new(),
            dist: VecDeque::new(),
            held: None,
            last_allowed: None,
        }
    }
}

/// Where what each key asked is tracked for extraction detection: the query budgets, the
/// remembered rows the patterns are looked for in, and the holds. [`Extraction`] keeps it in
/// this process; a store every replica reaches stops an attacker spreading queries across
/// replicas. [`extraction_conformance::run`] is what any implementation must pass.
pub trait ExtractionState: Send + Sync + std::fmt::Debug {
    /// Whether `key` may ask `model` now.
    ///
    /// # Errors
    /// The hold on the key.
    fn admit(&self, key: &str, model: &str) -> Result<(), Held>;

    /// Records what `key` asked (`x`, row-major, `schema.len()` features) and got; returns
    /// an alert when this starts a hold.
    fn observe(
        &self,
        key: &str,
        model: &str,
        x: &[f32],
        schema: &[FeatureStats],
        preds: &[Prediction],
    ) -> Option<Alert>;

    /// Alerts raised after [`ExtractionState::observe`] returned (a store that judges off the
    /// request path), each with its key and model; taken once.
    fn take_alerts(&self) -> Vec<(String, String, Alert)> {
        Vec::new()
    }

    /// Waits (a few seconds at most) until everything observed so far has been judged.
    fn settle(&self) {}
}

impl ExtractionState for Extraction {
    fn admit(&self, key: &str, model: &str) -> Result<(), Held> {
        Self::admit(self, key, model)
    }

    fn observe(
        &self,
        key: &str,
        model: &str,
        x: &[f32],
        schema: &[FeatureStats],
        preds: &[Prediction],
    ) -> Option<Alert> {
        Self::observe(self, key, model, x, schema, preds)
    }
}

/// What every [`ExtractionState`] must do, with the settings of [`extraction_conformance::config`].
pub mod extraction_conformance {
    use rampart_ml::Prediction;
    use rampart_ml::model::FeatureStats;

    use super::{ExtractionAction, ExtractionConfig, ExtractionState};

    pub use rampart_audit::conformance::Failure;

    /// The query budget of [`config`].
    pub const BUDGET: u64 = 40;

    /// The settings the store under test must be made with: a budget of [`BUDGET`] rows an
    /// hour, blocking; the default pattern settings.
    #[must_use]
    pub fn config() -> ExtractionConfig {
        ExtractionConfig {
            budget: BUDGET,
            action: ExtractionAction::Block,
            ..ExtractionConfig::default()
        }
    }

    /// `d` features with the statistics of a uniform 0..10 training set (the suite's schema,
    /// also for a store's own tests).
    #[must_use]
    pub fn schema_of(d: usize) -> Vec<FeatureStats> {
        (0..d)
            .map(|j| FeatureStats {
                name: format!("f{j}"),
                min: 0.0,
                max: 10.0,
                mean: 5.0,
                std: 2.0,
                deciles: (1..10).map(f64::from).collect(),
                shares: vec![0.1; 10],
            })
            .collect()
    }

    fn confident() -> Prediction {
        Prediction::Class {
            class: 0,
            proba: vec![0.95, 0.05],
        }
    }

    /// A row of ordinary traffic: every feature different each time.
    fn row(i: u16) -> [f32; 3] {
        let v = f32::from(i);
        [
            (v * 7.3) % 10.0,
            (v * 3.1 + 2.0) % 10.0,
            (v * 5.7 + 4.0) % 10.0,
        ]
    }

    /// What `key` asking one row of `m` raised: the alert `observe` returned, or the one the
    /// store raised for `key` once it settled.
    fn observed(
        store: &dyn ExtractionState,
        key: &str,
        row: &[f32],
        s: &[FeatureStats],
    ) -> Option<super::Alert> {
        let now = store.observe(key, "m", row, s, &[confident()]);
        store.settle();
        let later = store
            .take_alerts()
            .into_iter()
            .find(|(k, m, _)| k == key && m == "m")
            .map(|(_, _, a)| a);
        now.or(later)
    }

    /// Runs every case against a store made with [`config`] that has seen no traffic. A store
    /// that judges off the request path reports its alerts through
    /// [`ExtractionState::take_alerts`] and must have applied them once
    /// [`ExtractionState::settle`] returns.
    ///
    /// # Errors
    /// The first case the store fails.
    pub fn run(store: &dyn ExtractionState) -> Result<(), Failure> {
        let s = schema_of(3);
        if store.admit("new", "m").is_err() {
            return Err(Failure::new("unknown key", "a key never seen is held"));
        }
        // Ordinary traffic within the budget raises nothing.
        for i in 0..u16::try_from(BUDGET).unwrap_or(0) {
            if let Some(a) = observed(store, "k", &row(i), &s) {
                return Err(Failure::new("ordinary", format!("raised {a:?}")));
            }
        }
        if store.admit("k", "m").is_err() {
            return Err(Failure::new("ordinary", "held within its budget"));
        }
        // One row over the budget starts a blocking hold, reported once.
        match observed(store, "k", &row(999), &s) {
            Some(a) if a.kind == "budget" => {}
            other => return Err(Failure::new("budget", format!("{other:?}"))),
        }
        match store.admit("k", "m") {
            Err(h) if h.blocked && h.kind == "budget" && !h.retry_after.is_zero() => {}
            other => return Err(Failure::new("hold", format!("{other:?}"))),
        }
        // Another key is not held.
        if store.admit("other", "m").is_err() {
            return Err(Failure::new("per key", "another key is held"));
        }
        // A sweep along one feature is caught.
        let mut alert = None;
        for i in 0..40u16 {
            let row = [5.0, f32::from(i) * 0.25, 5.0];
            alert = alert.or_else(|| observed(store, "s", &row, &s));
        }
        match alert {
            Some(a) if a.kind == "sweep" => {}
            other => return Err(Failure::new("sweep", format!("{other:?}"))),
        }
        // Rows observed from several threads at once all count against the one budget.
        let total: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u16)
                .map(|t| {
                    let s = &s;
                    scope.spawn(move || {
                        (0..20u16)
                            .filter(|i| {
                                store
                                    .observe("c", "m", &row(t * 100 + i), s, &[confident()])
                                    .is_some_and(|a| a.kind == "budget")
                            })
                            .count()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
        });
        store.settle();
        let later = store
            .take_alerts()
            .into_iter()
            .filter(|(k, _, a)| k == "c" && a.kind == "budget")
            .count();
        let total = total + later;
        if total != 1 || store.admit("c", "m").is_ok() {
            return Err(Failure::new(
                "concurrent",
                format!("80 rows from 4 threads over a budget of {BUDGET}: {total} budget alerts"),
            ));
        }
        Ok(())
    }
}

/// Most keys tracked at once (the map is cleared past it).
const MAX_TRACKED: usize = 100_000;

/// Extraction detection for every key.
#[derive(Debug)]
pub struct Extraction {
    config: ExtractionConfig,
    /// key → model → track (looked up by `&str`: no allocation once a key is known).
    tracks: Mutex<HashMap<String, HashMap<String, Track>>>,
}

impl Extraction {
    /// With these settings.
    #[must_use]
    pub fn new(config: ExtractionConfig) -> Self {
        Self {
            config,
            tracks: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Track>>> {
        self.tracks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `key` may ask `model` now.
    ///
    /// # Errors
    /// The hold on the key.
    pub fn admit(&self, key: &str, model: &str) -> Result<(), Held> {
        if !self.config.enabled {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.lock();
        let Some(t) = map.get_mut(key).and_then(|m| m.get_mut(model)) else {
            return Ok(());
        };
        let Some((until, kind, blocked)) = t.held else {
            return Ok(());
        };
        if now >= until {
            t.held = None;
            return Ok(());
        }
        let left = until - now;
        if blocked {
            return Err(Held {
                kind,
                retry_after: left,
                blocked,
            });
        }
        // Throttled: one request per second.
        match t.last_allowed {
            Some(at) if now.duration_since(at) < Duration::from_secs(1) => Err(Held {
                kind,
                retry_after: Duration::from_secs(1) - now.duration_since(at),
                blocked,
            }),
            _ => {
                t.last_allowed = Some(now);
                Ok(())
            }
        }
    }

    /// Records what `key` asked (`x`, row-major, `schema.len()` features) and got; returns
    /// an alert when this starts a hold.
    pub fn observe(
        &self,
        key: &str,
        model: &str,
        x: &[f32],
        schema: &[FeatureStats],
        preds: &[Prediction],
    ) -> Option<Alert> {
        let c = &self.config;
        if !c.enabled {
            return None;
        }
        let d = schema.len().max(1);
        let now = Instant::now();
        let mut map = self.lock();
        if !map.contains_key(key) {
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
            map.insert(key.to_owned(), HashMap::new());
        }
        let per_key = map.get_mut(key)?;
        if !per_key.contains_key(model) {
            per_key.insert(model.to_owned(), Track::new(now));
        }
        let t = per_key.get_mut(model)?;
        if now.duration_since(t.window_start) >= c.budget_window {
            t.window_start = now;
            t.rows_in_window = 0;
        }
        t.rows_in_window += (x.len() / d) as u64;
        for (i, row) in x.chunks_exact(d).enumerate() {
            if let Some(prev) = &t.last {
                let mut changed = None;
                let mut n_changed = 0usize;
                let mut sq = 0.0;
                for (j, ((a, b), f)) in prev.iter().zip(row).zip(schema).enumerate() {
                    if a != b {
                        n_changed += 1;
                        changed = Some(j);
                    }
                    let s = if f.std > 0.0 { f.std } else { 1.0 };
                    sq += ((f64::from(*a) - f64::from(*b)) / s).powi(2);
                }
                t.single
                    .push_back(if n_changed == 1 { changed } else { None });
                #[allow(clippy::cast_precision_loss)]
                t.dist.push_back((sq / d as f64).sqrt());
            }
            t.near
                .push_back(near_boundary(preds.get(i), c.boundary_margin));
            match &mut t.last {
                Some(last) => {
                    last.clear();
                    last.extend_from_slice(row);
                }
                None => t.last = Some(row.to_vec()),
            }
            while t.single.len() > c.history {
                t.single.pop_front();
            }
            while t.dist.len() > c.history {
                t.dist.pop_front();
            }
            while t.near.len() > c.history {
                t.near.pop_front();
            }
        }
        if t.held.is_some_and(|(until, _, _)| now < until) {
            return None;
        }
        let evidence = Evidence {
            rows_in_window: t.rows_in_window,
            single: t.single.make_contiguous(),
            near: t.near.make_contiguous(),
            dist: t.dist.make_contiguous(),
        };
        let alert = pattern(c, &evidence, schema);
        if let Some(a) = &alert {
            let until = if a.kind == "budget" {
                t.window_start + c.budget_window
            } else {
                now + c.cooldown
            };
            let blocked = a.kind == "budget" || c.action == ExtractionAction::Block;
            t.held = Some((until, a.kind, blocked));
            // A fresh start after the hold: the same rows do not alert twice.
            t.single.clear();
            t.near.clear();
            t.dist.clear();
        }
        alert
    }
}

/// Whether a class prediction's top two probabilities are within `margin` of each other.
pub(crate) fn near_boundary(pred: Option<&Prediction>, margin: f64) -> bool {
    match pred {
        Some(Prediction::Class { proba, .. }) => {
            let mut top = [0.0f64; 2];
            for &p in proba {
                if p > top[0] {
                    top = [p, top[0]];
                } else if p > top[1] {
                    top[1] = p;
                }
            }
            top[0] - top[1] < margin
        }
        _ => false,
    }
}

/// What the pattern checks look at for one key and model: the rows asked about in the
/// budget's window and, per remembered row, the one feature that changed from the row before
/// (if only one did), whether it lay near the decision boundary, and its distance from the row
/// before (in training standard deviations).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Evidence<'a> {
    pub(crate) rows_in_window: u64,
    pub(crate) single: &'a [Option<usize>],
    pub(crate) near: &'a [bool],
    pub(crate) dist: &'a [f64],
}

/// The pattern `e` shows, if any: over the budget, a sweep along one feature, or dense
/// probing near the boundary.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn pattern(
    c: &ExtractionConfig,
    e: &Evidence<'_>,
    schema: &[FeatureStats],
) -> Option<Alert> {
    if c.budget > 0 && e.rows_in_window > c.budget {
        return Some(Alert {
            kind: "budget",
            detail: format!(
                "{} rows within {} s, over the budget of {}",
                e.rows_in_window,
                c.budget_window.as_secs(),
                c.budget
            ),
        });
    }
    if e.near.len() < c.min_rows {
        return None;
    }
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for j in e.single.iter().flatten() {
        *counts.entry(*j).or_default() += 1;
    }
    if let Some((&j, &n)) = counts.iter().max_by_key(|(_, n)| **n)
        && n as f64 >= c.sweep_fraction * e.single.len() as f64
    {
        let name = schema.get(j).map_or("?", |f| f.name.as_str());
        return Some(Alert {
            kind: "sweep",
            detail: format!(
                "{n} of the last {} rows changed only `{name}` from the row before: a sweep along one feature",
                e.single.len()
            ),
        });
    }
    let near = e.near.iter().filter(|n| **n).count();
    let mut dist: Vec<f64> = e.dist.to_vec();
    dist.sort_by(f64::total_cmp);
    let median = dist.get(dist.len() / 2).copied().unwrap_or(f64::INFINITY);
    if near as f64 >= c.boundary_fraction * e.near.len() as f64 && median < c.dense_distance {
        return Some(Alert {
            kind: "boundary",
            detail: format!(
                "{near} of the last {} rows lie near the decision boundary, {median:.3} standard deviations apart: dense probing",
                e.near.len()
            ),
        });
    }
    None
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
mod tests {
    use super::*;

    fn schema(d: usize) -> Vec<FeatureStats> {
        extraction_conformance::schema_of(d)
    }

    fn class(p: f64) -> Prediction {
        Prediction::Class {
            class: usize::from(p < 0.5),
            proba: vec![p, 1.0 - p],
        }
    }

    #[test]
    fn a_sweep_along_one_feature_is_caught_and_random_traffic_is_not() {
        let s = schema(3);
        let ex = Extraction::new(ExtractionConfig::default());
        // Ordinary traffic: every feature changes every time, predictions confident.
        let mut rng = rampart_ml::split::SplitMix64::new(1);
        for _ in 0..200 {
            let row: Vec<f32> = (0..3).map(|_| (5.0 + 2.0 * rng.normal()) as f32).collect();
            assert_eq!(ex.observe("k", "m", &row, &s, &[class(0.9)]), None);
        }
        assert!(ex.admit("k", "m").is_ok());
        // A sweep of f1, one row per request.
        let mut alert = None;
        for i in 0..40 {
            let row = [5.0, i as f32 * 0.25, 5.0];
            alert = alert.or(ex.observe("s", "m", &row, &s, &[class(0.9)]));
        }
        let a = alert.expect("the sweep is seen");
        assert_eq!(a.kind, "sweep");
        assert!(a.detail.contains("`f1`"), "{}", a.detail);
        let held = ex.admit("s", "m").unwrap_err();
        assert!(held.blocked && held.retry_after > Duration::from_secs(200));
        // Other keys are not affected.
        assert!(ex.admit("k", "m").is_ok());
    }

    #[test]
    fn dense_probing_near_the_boundary_is_caught() {
        let s = schema(2);
        let ex = Extraction::new(ExtractionConfig {
            action: ExtractionAction::Throttle,
            ..ExtractionConfig::default()
        });
        let mut rng = rampart_ml::split::SplitMix64::new(2);
        let mut alert = None;
        // Small random steps in both features around a point the model is unsure about.
        for _ in 0..40 {
            let row = [
                (5.0 + 0.1 * rng.normal()) as f32,
                (5.0 + 0.1 * rng.normal()) as f32,
            ];
            alert = alert.or(ex.observe("b", "m", &row, &s, &[class(0.55)]));
        }
        assert_eq!(alert.expect("probing is seen").kind, "boundary");
        // Throttled: one request goes through, the next within the second does not.
        assert!(ex.admit("b", "m").is_ok());
        let held = ex.admit("b", "m").unwrap_err();
        assert!(!held.blocked);
        // Near the boundary but spread out (a legitimately hard population) is not probing.
        let ex = Extraction::new(ExtractionConfig::default());
        for _ in 0..100 {
            let row = [
                (5.0 + 2.0 * rng.normal()) as f32,
                (5.0 + 2.0 * rng.normal()) as f32,
            ];
            assert_eq!(ex.observe("h", "m", &row, &s, &[class(0.55)]), None);
        }
    }

    #[test]
    fn the_local_tracker_passes_the_conformance_suite_and_it_can_fail() {
        extraction_conformance::run(&Extraction::new(extraction_conformance::config())).unwrap();
        // A tracker that never holds anyone is caught.
        let off = Extraction::new(ExtractionConfig {
            enabled: false,
            ..extraction_conformance::config()
        });
        assert_eq!(
            extraction_conformance::run(&off).unwrap_err().case,
            "budget"
        );
    }

    #[test]
    fn the_query_budget_blocks_until_the_window_ends() {
        let s = schema(1);
        let ex = Extraction::new(ExtractionConfig {
            budget: 10,
            ..ExtractionConfig::default()
        });
        let rows: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let preds: Vec<Prediction> = (0..10).map(|_| class(0.9)).collect();
        assert_eq!(ex.observe("q", "m", &rows, &s, &preds), None);
        let a = ex
            .observe("q", "m", &[1.0], &s, &preds)
            .expect("over budget");
        assert_eq!(a.kind, "budget");
        assert!(ex.admit("q", "m").unwrap_err().blocked);
    }

    #[test]
    fn the_local_drift_window_passes_the_conformance_suite_and_it_can_fail() {
        use drift_conformance::{FEATURES, ROWS, run};
        run(&Mutex::new(DriftWindow::new(ROWS, FEATURES))).unwrap();
        // A window that never forgets is caught.
        #[derive(Debug, Default)]
        struct Unbounded(Mutex<(Vec<f32>, bool)>);
        impl DriftWindowStore for Unbounded {
            fn push(&self, x: &[f32]) {
                let mut g = self.0.lock().unwrap();
                g.0.extend_from_slice(x);
                g.1 = true;
            }
            fn snapshot(&self, min_rows: usize) -> Option<Vec<f32>> {
                let mut g = self.0.lock().unwrap();
                if !g.1 || g.0.len() < min_rows * FEATURES {
                    return None;
                }
                g.1 = false;
                Some(g.0.clone())
            }
        }
        assert_eq!(run(&Unbounded::default()).unwrap_err().case, "bounded");
    }

    #[test]
    fn drift_window_keeps_the_latest_rows_and_scores_a_shift() {
        let s = schema(2);
        let mut w = DriftWindow::new(100, 2);
        assert!(w.snapshot(10).is_none());
        // Reference-like rows: uniform over 0..10 in both features.
        let rows: Vec<f32> = (0..200).map(|i| (i % 100) as f32 / 10.0).collect();
        w.push(&rows);
        assert_eq!(w.len(), 100);
        let snap = w.snapshot(10).unwrap();
        assert!(w.snapshot(10).is_none(), "nothing new since");
        let psi = drift_scores(&snap, &s);
        assert!(psi.iter().all(|p| *p < 0.05), "{psi:?}");
        // Feature 0 moves to the top decile; feature 1 stays.
        let shifted: Vec<f32> = (0..100)
            .flat_map(|i| [9.5, (i % 10) as f32 + 0.5])
            .collect();
        w.push(&shifted);
        let psi = drift_scores(&w.snapshot(10).unwrap(), &s);
        assert!(psi[0] > 0.2 && psi[1] < 0.05, "{psi:?}");
        // The memory bound holds for wide models.
        assert!(DriftWindow::new(1000, 1 << 20).capacity <= 4);
    }
}
