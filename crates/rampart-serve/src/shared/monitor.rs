//! Extraction tracking and drift windows in Redis, so an attacker spreading queries over the
//! replicas is seen as one caller and drift is computed over the whole fleet's traffic.
//!
//! - **Extraction**: per key and model, one Lua script per observation counts the rows in the
//!   budget's window (a counter expiring with the window) and keeps the pattern evidence of the
//!   last rows (which single feature changed from the row before, the distance from it, whether
//!   the answer lay near the boundary), computed in Redis against the last row *any* replica
//!   saw. The patterns are judged here, by the same code as in process; a hold is a key set
//!   with `NX` (so one replica reports it, once) and expiring when the hold ends, and every
//!   replica consults it before running a request.
//! - **Drift**: rows are buffered here and appended to one list per model version (trimmed to
//!   the window, expiring when idle) when [`FLUSH_ROWS`] are buffered and before each drift
//!   computation; a sequence number tells each replica whether rows arrived since it last
//!   looked. A replica's drift gauge therefore reflects every replica's rows, each buffered
//!   row at most one drift interval late.
//! - **Redis unreachable**: this process's own tracker and window take over (per replica, as
//!   without shared state), each such decision counted with the limiters' local decisions.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_ml::Prediction;
use rampart_ml::model::FeatureStats;

use super::RedisState;
use crate::monitor::{
    Alert, DriftWindow, DriftWindowStore, Evidence, Extraction, ExtractionAction, ExtractionConfig,
    ExtractionState, Held, near_boundary, pattern,
};

/// Whether a key is held: `KEYS[1]` the hold (`KIND:b` blocked or `KIND:t` throttled),
/// `KEYS[2]` the throttled key's mark for this second. `{0}` free, `{1, hold, ms}` blocked,
/// `{2, hold, ms}` throttled and already asked this second.
const ADMIT: &str = r"
local h = redis.call('GET', KEYS[1])
if not h then return {0, '', 0} end
if string.sub(h, -1) == 'b' then return {1, h, redis.call('PTTL', KEYS[1])} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', 1000) then return {0, '', 0} end
return {2, h, redis.call('PTTL', KEYS[2])}
";

/// One observation. `KEYS`: 1 the row counter, 2 the last row, 3 the single-feature list,
/// 4 the distances, 5 the near flags, 6 the hold. `ARGV`: 1 features `d`, 2 rows remembered,
/// 3 the budget window (ms), 4 rows asked (all counted), 5 rows sent, then `d` standard
/// deviations, the rows sent (`d` values each) and their near flags (`0`/`1`). Returns the
/// rows in the window, the window's ms left, the hold's ms left, and the three lists.
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
return {count, redis.call('PTTL', KEYS[1]), redis.call('PTTL', KEYS[6]),
  redis.call('LRANGE', KEYS[3], 0, -1), redis.call('LRANGE', KEYS[4], 0, -1),
  redis.call('LRANGE', KEYS[5], 0, -1)}
";

/// Starts a hold unless another replica already did: `KEYS[1]` the hold, `KEYS[2..4]` the
/// evidence (cleared: the same rows do not alert twice); `ARGV[1]` the hold, `ARGV[2]` its ms.
const HOLD: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
  return 1
end
return 0
";

/// Extraction detection whose counts, evidence and holds are in Redis: queries spread over
/// the replicas count as one caller's. Made by [`RedisState::extraction`].
pub struct RedisExtraction {
    state: Arc<RedisState>,
    config: ExtractionConfig,
    local: Extraction,
    admit: redis::Script,
    observe: redis::Script,
    hold: redis::Script,
}

impl std::fmt::Debug for RedisExtraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisExtraction({})", self.state.shown)
    }
}

/// The kinds an alert can have (a hold read back from Redis names one).
const KINDS: [&str; 3] = ["budget", "sweep", "boundary"];

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisState {
    /// Extraction detection with these settings, tracked in this Redis.
    #[must_use]
    pub fn extraction(self: &Arc<Self>, config: ExtractionConfig) -> RedisExtraction {
        RedisExtraction {
            state: Arc::clone(self),
            local: Extraction::new(config.clone()),
            config,
            admit: redis::Script::new(ADMIT),
            observe: redis::Script::new(OBSERVE),
            hold: redis::Script::new(HOLD),
        }
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

impl RedisExtraction {
    fn keys(&self, key: &str, model: &str) -> [String; 7] {
        let base = format!("{}x:{}", self.state.prefix, digest(&[key, model]));
        ["c", "l", "s", "d", "n", "h", "t"].map(|k| format!("{base}:{k}"))
    }

    /// Counted: this process decides alone.
    fn alone(&self) -> &Extraction {
        self.state.local.fetch_add(1, Ordering::Relaxed);
        &self.local
    }
}

fn kind_of(hold: &str) -> &'static str {
    let name = hold.rsplit_once(':').map_or(hold, |(k, _)| k);
    KINDS
        .iter()
        .find(|k| **k == name)
        .copied()
        .unwrap_or("extraction")
}

impl ExtractionState for RedisExtraction {
    fn admit(&self, key: &str, model: &str) -> Result<(), Held> {
        if !self.config.enabled {
            return Ok(());
        }
        let [.., h, t] = self.keys(key, model);
        let answer = self
            .state
            .call(|c| self.admit.key(&h).key(&t).invoke::<(i64, String, i64)>(c));
        match answer {
            Ok((0, _, _)) => Ok(()),
            Ok((state, hold, left)) => Err(Held {
                kind: kind_of(&hold),
                retry_after: Duration::from_millis(u64::try_from(left).unwrap_or(1).max(1)),
                blocked: state == 1,
            }),
            Err(_) => self.alone().admit(key, model),
        }
    }

    fn observe(
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
        let rows = x.len() / d;
        // Only the rows that can still be remembered are sent; all are counted.
        let sent = rows.min(c.history + 1);
        let first = rows - sent;
        let [count, last, single, dist, near, hold, _] = self.keys(key, model);
        let mut call = self.observe.prepare_invoke();
        call.key(&count)
            .key(&last)
            .key(&single)
            .key(&dist)
            .key(&near)
            .key(&hold)
            .arg(d)
            .arg(c.history.max(1))
            .arg(ms(c.budget_window))
            .arg(rows)
            .arg(sent);
        for f in schema {
            call.arg(if f.std > 0.0 { f.std } else { 1.0 });
        }
        for _ in schema.len()..d {
            call.arg(1.0);
        }
        for v in x.get(first * d..rows * d).unwrap_or_default() {
            call.arg(if v.is_finite() {
                v.to_string()
            } else {
                "0".into()
            });
        }
        for i in first..rows {
            call.arg(u8::from(near_boundary(preds.get(i), c.boundary_margin)));
        }
        type Observed = (u64, i64, i64, Vec<i64>, Vec<f64>, Vec<i64>);
        let observed = self.state.call(|conn| call.invoke::<Observed>(conn));
        let Ok((rows_in_window, window_left, held, single, dist, near)) = observed else {
            return self.alone().observe(key, model, x, schema, preds);
        };
        if held > 0 {
            return None;
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
        let alert = pattern(c, &evidence, schema)?;
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
        let won = self.state.call(|conn| {
            self.hold
                .key(&hold)
                .key(&single)
                .key(&dist)
                .key(&near)
                .arg(value)
                .arg(until)
                .invoke::<i64>(conn)
        });
        // Another replica started the hold first: it reports it.
        matches!(won, Ok(1)).then_some(alert)
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
