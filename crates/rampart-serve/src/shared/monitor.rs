//! Extraction tracking and drift windows in Redis, so an attacker spreading queries over the
//! replicas is seen as one caller and drift is computed over the whole fleet's traffic.
//!
//! - **Extraction**, off the request path: a request's rows are queued, and a worker thread
//!   sends what is queued (per key and model one Lua script, all pipelined in one round trip).
//!   The script counts the rows in the budget's window (a counter expiring with the window)
//!   and keeps the pattern evidence of the last rows (which single feature changed from the
//!   row before, the distance from it, whether the answer lay near the boundary), computed in
//!   Redis against the last row *any* replica saw. The patterns are judged here, by the same
//!   code as in process; a hold is a key set with `NX` (so one replica reports it, once) and
//!   expiring when the hold ends. Every answer about a key's rows carries its hold, so each
//!   replica learns a hold another started with its next batch of that key's rows, and
//!   `admit` reads only what this replica knows: no Redis call on the request path.
//! - **Drift**: rows are buffered here and appended to one list per model version (trimmed to
//!   the window, expiring when idle) when [`FLUSH_ROWS`] are buffered and before each drift
//!   computation; a sequence number tells each replica whether rows arrived since it last
//!   looked. A replica's drift gauge therefore reflects every replica's rows, each buffered
//!   row at most one drift interval late.
//! - **Redis unreachable**: this process's own tracker and window take over (per replica, as
//!   without shared state), each such decision counted with the limiters' local decisions.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rampart_ml::Prediction;
use rampart_ml::model::FeatureStats;

use super::RedisState;
use crate::monitor::{
    Alert, DriftWindow, DriftWindowStore, Evidence, Extraction, ExtractionAction, ExtractionConfig,
    ExtractionState, Held, near_boundary, pattern,
};

/// One batch of observations of one key and model. `KEYS`: 1 the row counter, 2 the last
/// row, 3 the single-feature list, 4 the distances, 5 the near flags, 6 the hold. `ARGV`: 1
/// features `d`, 2 rows remembered, 3 the budget window (ms), 4 rows asked (all counted), 5
/// rows sent, then `d` standard deviations, the rows sent (`d` values each) and their near
/// flags (`0`/`1`). Returns the rows in the window, the window's ms left, the hold and its ms
/// left, and the three lists.
const OBSERVE: &str = r"
local d = tonumber(ARGV[1])
local hist = tonumber(ARGV[2])
local n = tonumber(ARGV[5])
local std_at = 6
local val_at = std_at + d
local near_at = val_at + n * d
local count = redis.call('INCRBY', KEYS[1], tonumber(ARGV[4]))
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
local prev = nil
local last = redis.call('GET', KEYS[2])
if last then prev = cjson.decode(last) end
local row = prev
for i = 0, n - 1 do
  row = {}
  for j = 1, d do row[j] = ARGV[val_at + i * d + j - 1] end
  if prev and #prev == d then
    local changed = -1
    local nch = 0
    local sq = 0
    for j = 1, d do
      if prev[j] ~= row[j] then
        nch = nch + 1
        changed = j - 1
      end
      local diff = ((tonumber(prev[j]) or 0) - (tonumber(row[j]) or 0)) / tonumber(ARGV[std_at + j - 1])
      sq = sq + diff * diff
    end
    if nch ~= 1 then changed = -1 end
    redis.call('RPUSH', KEYS[3], changed)
    redis.call('RPUSH', KEYS[4], string.format('%.17g', math.sqrt(sq / d)))
  end
  redis.call('RPUSH', KEYS[5], ARGV[near_at + i])
  prev = row
end
for k = 3, 5 do
  redis.call('LTRIM', KEYS[k], -hist, -1)
  redis.call('PEXPIRE', KEYS[k], ARGV[3])
end
if row then redis.call('SET', KEYS[2], cjson.encode(row), 'PX', ARGV[3]) end
return {count, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[6]) or '',
  redis.call('PTTL', KEYS[6]), redis.call('LRANGE', KEYS[3], 0, -1),
  redis.call('LRANGE', KEYS[4], 0, -1), redis.call('LRANGE', KEYS[5], 0, -1)}
";

/// Starts a hold unless another replica already did: `KEYS[1]` the hold, `KEYS[2..4]` the
/// evidence (cleared: the same rows do not alert twice); `ARGV[1]` the hold, `ARGV[2]` its ms.
/// Returns `{1, hold, ms}` when this call started it, else `{0, the hold there, its ms}`.
const HOLD: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  return {1, ARGV[1], tonumber(ARGV[2])}
end
return {0, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}
";

/// Most observations waiting to be sent to Redis; past it (or past [`MAX_QUEUED_VALUES`]) an
/// observation is judged by this process alone (counted), never dropped.
pub const MAX_QUEUED: usize = 10_000;

/// Most row values waiting to be sent (64 MiB of `f32`).
pub const MAX_QUEUED_VALUES: usize = 16 << 20;

/// Most keys whose holds this replica remembers (forgotten past it, then learnt again from
/// Redis with the key's next rows).
const MAX_HOLDS: usize = 100_000;

/// Most alerts waiting to be reported.
const MAX_ALERTS: usize = 1_000;

/// Extraction detection whose counts, evidence and holds are in Redis: queries spread over
/// the replicas count as one caller's. Made by [`RedisState::extraction`].
///
/// Off the request path: [`ExtractionState::observe`] queues the rows and returns; a worker
/// thread sends everything queued (grouped per key and model, one pipelined round trip) and
/// judges the patterns, and its alerts are taken with [`ExtractionState::take_alerts`].
/// [`ExtractionState::admit`] asks no one: it reads the holds this replica knows, learnt from
/// Redis with each batch of a key's rows (its own or another replica's hold). So a hold started
/// by one replica is applied by another from its first batch of that key's rows after the hold
/// (a request or two, a few milliseconds), and a throttled key gets one request per second
/// per replica.
pub struct RedisExtraction {
    inner: Arc<Inner>,
}

struct Inner {
    state: Arc<RedisState>,
    config: ExtractionConfig,
    local: Extraction,
    queue: Mutex<Queue>,
    ready: Condvar,
    idle: Condvar,
    /// key → model → the hold known here.
    holds: Mutex<HashMap<String, HashMap<String, Hold>>>,
    alerts: Mutex<Vec<(String, String, Alert)>>,
    /// model → its schema (the latest seen: kept for the alerts' feature names).
    schemas: Mutex<HashMap<String, Arc<[FeatureStats]>>>,
    stop: AtomicBool,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Obs>,
    /// Row values in `items`.
    values: usize,
    busy: bool,
}

struct Obs {
    key: String,
    model: String,
    schema: Arc<[FeatureStats]>,
    /// Rows asked about (all counted).
    rows: usize,
    /// The last rows (at most the history plus one), row-major.
    x: Vec<f32>,
    near: Vec<bool>,
}

#[derive(Debug, Clone, Copy)]
struct Hold {
    kind: &'static str,
    blocked: bool,
    until: Instant,
    last_allowed: Option<Instant>,
}

impl std::fmt::Debug for RedisExtraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisExtraction({})", self.inner.state.shown)
    }
}

impl Drop for RedisExtraction {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        self.inner.ready.notify_all();
    }
}

/// The kinds an alert can have (a hold read back from Redis names one).
const KINDS: [&str; 3] = ["budget", "sweep", "boundary"];

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RedisState {
    /// Extraction detection with these settings, tracked in this Redis (starts its worker
    /// thread, stopped when the tracker is dropped).
    #[must_use]
    pub fn extraction(self: &Arc<Self>, config: ExtractionConfig) -> RedisExtraction {
        let inner = Arc::new(Inner {
            state: Arc::clone(self),
            local: Extraction::new(config.clone()),
            config,
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            idle: Condvar::new(),
            holds: Mutex::new(HashMap::new()),
            alerts: Mutex::new(Vec::new()),
            schemas: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
        });
        let worker = Arc::clone(&inner);
        let spawned = std::thread::Builder::new()
            .name("rampart-extraction".into())
            .spawn(move || worker.run());
        if spawned.is_err() {
            // No worker: everything queued would wait for ever, so nothing is queued.
            inner.stop.store(true, Ordering::Relaxed);
        }
        RedisExtraction { inner }
    }

    /// A drift window of `rows` rows of `features` values for one served model version
    /// (`name`, `version`, `root`: the version's root hash), kept in this Redis.
    #[must_use]
    pub fn drift_window(
        self: &Arc<Self>,
        name: &str,
        version: i64,
        root: &str,
        rows: usize,
        features: usize,
    ) -> RedisDrift {
        let local = DriftWindow::new(rows, features);
        RedisDrift {
            state: Arc::clone(self),
            key: format!(
                "{}d:{}",
                self.prefix,
                digest(&[name, &version.to_string(), root])
            ),
            features: features.max(1),
            capacity: local.capacity(),
            pending: Mutex::new(Vec::new()),
            seen: AtomicU64::new(0),
            local: Mutex::new(local),
            flush: redis::Script::new(FLUSH),
            snapshot: redis::Script::new(SNAPSHOT),
        }
    }
}

/// A short, fixed-length name for `parts` (user-chosen names never shape Redis keys).
fn digest(parts: &[&str]) -> String {
    let mut h = rampart_crypto::Sha256Hasher::new();
    for p in parts {
        h.update(&(p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    let hex = h.finish().to_hex();
    hex.get(..32).unwrap_or(&hex).to_owned()
}

fn kind_of(hold: &str) -> &'static str {
    let name = hold.rsplit_once(':').map_or(hold, |(k, _)| k);
    KINDS
        .iter()
        .find(|k| **k == name)
        .copied()
        .unwrap_or("extraction")
}

/// What one observation script returns.
type Observed = (u64, i64, String, i64, Vec<i64>, Vec<f64>, Vec<i64>);

/// What the hold script returns.
type Started = (i64, String, i64);

impl Inner {
    fn keys(&self, key: &str, model: &str) -> [String; 6] {
        let base = format!("{}x:{}", self.state.prefix, digest(&[key, model]));
        ["c", "l", "s", "d", "n", "h"].map(|k| format!("{base}:{k}"))
    }

    fn run(&self) {
        loop {
            let batch: Vec<Obs> = {
                let mut q = lock(&self.queue);
                while q.items.is_empty() && !self.stop.load(Ordering::Relaxed) {
                    q = self
                        .ready
                        .wait_timeout(q, Duration::from_millis(200))
                        .map_or_else(|e| e.into_inner().0, |(g, _)| g);
                }
                if q.items.is_empty() {
                    return;
                }
                q.busy = true;
                q.values = 0;
                q.items.drain(..).collect()
            };
            self.judge(batch);
            lock(&self.queue).busy = false;
            self.idle.notify_all();
        }
    }

    /// Sends a batch (one script per key and model, pipelined) and judges what comes back.
    fn judge(&self, batch: Vec<Obs>) {
        let c = &self.config;
        // Per key, model and width, in order of first appearance.
        let mut groups: Vec<Vec<Obs>> = Vec::new();
        let mut at: HashMap<(String, String, usize), usize> = HashMap::new();
        for o in batch {
            let id = (o.key.clone(), o.model.clone(), o.schema.len());
            let i = *at.entry(id).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            if let Some(g) = groups.get_mut(i) {
                g.push(o);
            }
        }
        let mut pipe = redis::pipe();
        for g in &groups {
            let Some(first) = g.first() else { continue };
            let d = first.schema.len().max(1);
            let rows: usize = g.iter().map(|o| o.rows).sum();
            // The last rows that can still be remembered, in order.
            let mut x: Vec<f32> = Vec::new();
            let mut near: Vec<bool> = Vec::new();
            for o in g {
                x.extend_from_slice(&o.x);
                near.extend_from_slice(&o.near);
            }
            let sent = near.len().min(c.history + 1);
            let skip = near.len() - sent;
            let keys = self.keys(&first.key, &first.model);
            let cmd = pipe.cmd("EVAL").arg(OBSERVE).arg(keys.len());
            for k in &keys {
                cmd.arg(k);
            }
            cmd.arg(d)
                .arg(c.history.max(1))
                .arg(ms(c.budget_window))
                .arg(rows)
                .arg(sent);
            for f in first.schema.iter() {
                cmd.arg(if f.std > 0.0 { f.std } else { 1.0 });
            }
            for _ in first.schema.len()..d {
                cmd.arg(1.0);
            }
            for v in x.get(skip * d..).unwrap_or_default() {
                cmd.arg(if v.is_finite() {
                    v.to_string()
                } else {
                    "0".into()
                });
            }
            for n in near.get(skip..).unwrap_or_default() {
                cmd.arg(u8::from(*n));
            }
        }
        let answers = self.state.call(|conn| pipe.query::<Vec<Observed>>(conn));
        let Ok(answers) = answers else {
            // Redis cannot be asked: this process judges alone (counted).
            for o in groups.into_iter().flatten() {
                let alert =
                    self.alone()
                        .observe(&o.key, &o.model, &o.x, &o.schema, &near_preds(&o.near));
                if let Some(a) = alert {
                    self.alert(o.key, o.model, a);
                }
            }
            return;
        };
        for (g, answer) in groups.iter().zip(answers) {
            let Some(first) = g.first() else { continue };
            self.judged(first, answer);
        }
    }

    /// Learns the hold `answer` reports, or judges its evidence.
    fn judged(&self, o: &Obs, answer: Observed) {
        let c = &self.config;
        let (rows_in_window, window_left, hold, hold_left, single, dist, near) = answer;
        if !hold.is_empty() && hold_left > 0 {
            self.learn(&o.key, &o.model, &hold, hold_left);
            return;
        }
        let single: Vec<Option<usize>> = single
            .into_iter()
            .map(|j| usize::try_from(j).ok())
            .collect();
        let near: Vec<bool> = near.into_iter().map(|n| n == 1).collect();
        let evidence = Evidence {
            rows_in_window,
            single: &single,
            near: &near,
            dist: &dist,
        };
        let Some(alert) = pattern(c, &evidence, &o.schema) else {
            return;
        };
        let (until, blocked) = if alert.kind == "budget" {
            (
                u64::try_from(window_left)
                    .ok()
                    .filter(|l| *l > 0)
                    .unwrap_or_else(|| ms(c.budget_window)),
                true,
            )
        } else {
            (ms(c.cooldown), c.action == ExtractionAction::Block)
        };
        let value = format!("{}:{}", alert.kind, if blocked { 'b' } else { 't' });
        let [_, _, single, dist, near, hold] = self.keys(&o.key, &o.model);
        let started = self.state.call(|conn| {
            redis::cmd("EVAL")
                .arg(HOLD)
                .arg(4)
                .arg(&hold)
                .arg(&single)
                .arg(&dist)
                .arg(&near)
                .arg(&value)
                .arg(until)
                .query::<Started>(conn)
        });
        match started {
            Ok((won, held, left)) => {
                self.learn(&o.key, &o.model, &held, left);
                // Another replica started the hold first: it reports it.
                if won == 1 {
                    self.alert(o.key.clone(), o.model.clone(), alert);
                }
            }
            Err(_) => {
                // Not recorded in Redis: held here, and reported.
                self.state.local.fetch_add(1, Ordering::Relaxed);
                self.learn(
                    &o.key,
                    &o.model,
                    &value,
                    i64::try_from(until).unwrap_or(i64::MAX),
                );
                self.alert(o.key.clone(), o.model.clone(), alert);
            }
        }
    }

    fn learn(&self, key: &str, model: &str, hold: &str, left_ms: i64) {
        let Ok(left) = u64::try_from(left_ms) else {
            return;
        };
        let mut holds = lock(&self.holds);
        if holds.len() >= MAX_HOLDS && !holds.contains_key(key) {
            holds.clear();
        }
        let per_key = holds.entry(key.to_owned()).or_default();
        let last_allowed = per_key.get(model).and_then(|h| h.last_allowed);
        per_key.insert(
            model.to_owned(),
            Hold {
                kind: kind_of(hold),
                blocked: hold.ends_with('b'),
                until: Instant::now() + Duration::from_millis(left),
                last_allowed,
            },
        );
    }

    fn alert(&self, key: String, model: String, alert: Alert) {
        let mut alerts = lock(&self.alerts);
        if alerts.len() < MAX_ALERTS {
            alerts.push((key, model, alert));
        }
    }

    /// Counted: this process decides alone.
    fn alone(&self) -> &Extraction {
        self.state.local.fetch_add(1, Ordering::Relaxed);
        &self.local
    }

    /// The schema to keep with an observation (one copy per model while it stays the same).
    fn schema(&self, model: &str, schema: &[FeatureStats]) -> Arc<[FeatureStats]> {
        let mut schemas = lock(&self.schemas);
        match schemas.get(model) {
            Some(s) if **s == *schema => Arc::clone(s),
            _ => {
                if schemas.len() >= MAX_HOLDS {
                    schemas.clear();
                }
                let s: Arc<[FeatureStats]> = schema.into();
                schemas.insert(model.to_owned(), Arc::clone(&s));
                s
            }
        }
    }
}

/// Class predictions near the boundary or not, for the local fallback (which reads the
/// probabilities): a near row as an even split, another as a confident one.
fn near_preds(near: &[bool]) -> Vec<Prediction> {
    near.iter()
        .map(|n| Prediction::Class {
            class: 0,
            proba: if *n { vec![0.5, 0.5] } else { vec![1.0, 0.0] },
        })
        .collect()
}

impl ExtractionState for RedisExtraction {
    fn admit(&self, key: &str, model: &str) -> Result<(), Held> {
        let inner = &self.inner;
        if !inner.config.enabled {
            return Ok(());
        }
        {
            let now = Instant::now();
            let mut holds = lock(&inner.holds);
            if let Some(h) = holds.get_mut(key).and_then(|m| m.get_mut(model))
                && now < h.until
            {
                if h.blocked {
                    return Err(Held {
                        kind: h.kind,
                        retry_after: h.until - now,
                        blocked: true,
                    });
                }
                // Throttled: one request per second (on this replica).
                match h.last_allowed {
                    Some(at) if now.duration_since(at) < Duration::from_secs(1) => {
                        return Err(Held {
                            kind: h.kind,
                            retry_after: Duration::from_secs(1) - now.duration_since(at),
                            blocked: false,
                        });
                    }
                    _ => h.last_allowed = Some(now),
                }
            }
        }
        // Holds judged here while Redis could not be asked.
        inner.local.admit(key, model)
    }

    fn observe(
        &self,
        key: &str,
        model: &str,
        x: &[f32],
        schema: &[FeatureStats],
        preds: &[Prediction],
    ) -> Option<Alert> {
        let inner = &self.inner;
        let c = &inner.config;
        if !c.enabled {
            return None;
        }
        let d = schema.len().max(1);
        let rows = x.len() / d;
        // Only the rows that can still be remembered are kept; all are counted.
        let kept = rows.min(c.history + 1);
        let first = rows - kept;
        let values = kept * d;
        let full = {
            let q = lock(&inner.queue);
            q.items.len() >= MAX_QUEUED || q.values + values > MAX_QUEUED_VALUES
        };
        if full || inner.stop.load(Ordering::Relaxed) {
            return inner.alone().observe(key, model, x, schema, preds);
        }
        let o = Obs {
            key: key.to_owned(),
            model: model.to_owned(),
            schema: inner.schema(model, schema),
            rows,
            x: x.get(first * d..rows * d).unwrap_or_default().to_vec(),
            near: (first..rows)
                .map(|i| near_boundary(preds.get(i), c.boundary_margin))
                .collect(),
        };
        {
            let mut q = lock(&inner.queue);
            q.values += o.x.len();
            q.items.push_back(o);
        }
        inner.ready.notify_one();
        None
    }

    fn take_alerts(&self) -> Vec<(String, String, Alert)> {
        std::mem::take(&mut *lock(&self.inner.alerts))
    }

    fn settle(&self) {
        let inner = &self.inner;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut q = lock(&inner.queue);
        while (!q.items.is_empty() || q.busy) && Instant::now() < deadline {
            q = inner
                .idle
                .wait_timeout(q, Duration::from_millis(50))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }
}

/// Rows pushed are sent to Redis once this many are buffered (and before each snapshot).
pub const FLUSH_ROWS: usize = 64;

/// Appends rows: `KEYS[1]` the list, `KEYS[2]` the sequence; `ARGV[1]` the window's rows,
/// `ARGV[2]` the idle expiry (ms), then one row per argument (little-endian `f32`s).
const FLUSH: &str = r"
for i = 3, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('INCRBY', KEYS[2], #ARGV - 2)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
";

/// The window when rows arrived since `ARGV[1]` (this replica's last sequence) and at least
/// `ARGV[2]` rows are held: `{sequence, rows}`, else `{sequence, {}}`.
const SNAPSHOT: &str = r"
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
if seq == tonumber(ARGV[1]) or redis.call('LLEN', KEYS[1]) < tonumber(ARGV[2]) then
  return {seq, {}}
end
return {seq, redis.call('LRANGE', KEYS[1], 0, -1)}
";

/// How long a window nobody adds to is kept.
const IDLE: Duration = Duration::from_secs(24 * 3600);

/// One served model version's drift window in Redis, merged over the replicas. Made by
/// [`RedisState::drift_window`].
pub struct RedisDrift {
    state: Arc<RedisState>,
    key: String,
    features: usize,
    capacity: usize,
    pending: Mutex<Vec<f32>>,
    seen: AtomicU64,
    local: Mutex<DriftWindow>,
    flush: redis::Script,
    snapshot: redis::Script,
}

impl std::fmt::Debug for RedisDrift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisDrift({})", self.state.shown)
    }
}

impl RedisDrift {
    fn take_pending(&self) -> Vec<f32> {
        std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn flush(&self, rows: &[f32]) {
        if rows.is_empty() {
            return;
        }
        let d = self.features;
        // Only the window's length can matter.
        let n = rows.len() / d;
        let skip = n.saturating_sub(self.capacity) * d;
        let rows = rows.get(skip..).unwrap_or_default();
        let mut call = self.flush.prepare_invoke();
        call.key(&self.key)
            .key(format!("{}:seq", self.key))
            .arg(self.capacity)
            .arg(ms(IDLE));
        for row in rows.chunks_exact(d) {
            let bytes: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
            call.arg(bytes);
        }
        if self.state.call(|c| call.invoke::<i64>(c)).is_err() {
            self.state.local.fetch_add(1, Ordering::Relaxed);
            self.local
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(rows);
        }
    }
}

impl DriftWindowStore for RedisDrift {
    fn push(&self, x: &[f32]) {
        let full = {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.extend_from_slice(x);
            // Bounded: never more than the window's length waits here.
            let over = (pending.len() / self.features).saturating_sub(self.capacity);
            pending.drain(..over * self.features);
            (pending.len() / self.features >= FLUSH_ROWS).then(|| std::mem::take(&mut *pending))
        };
        if let Some(rows) = full {
            self.flush(&rows);
        }
    }

    fn snapshot(&self, min_rows: usize) -> Option<Vec<f32>> {
        self.flush(&self.take_pending());
        let seen = self.seen.load(Ordering::Relaxed);
        let answer = self.state.call(|c| {
            self.snapshot
                .key(&self.key)
                .key(format!("{}:seq", self.key))
                .arg(seen)
                .arg(min_rows.max(1))
                .invoke::<(u64, Vec<Vec<u8>>)>(c)
        });
        match answer {
            Ok((_, rows)) if rows.is_empty() => None,
            Ok((seq, rows)) => {
                self.seen.store(seq, Ordering::Relaxed);
                let d = self.features;
                let values: Vec<f32> = rows
                    .iter()
                    .filter(|r| r.len() == d * 4)
                    .flat_map(|r| {
                        r.chunks_exact(4)
                            .map(|b| f32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
                    })
                    .collect();
                Some(values)
            }
            Err(_) => {
                self.state.local.fetch_add(1, Ordering::Relaxed);
                self.local
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .snapshot(min_rows)
            }
        }
    }
}
