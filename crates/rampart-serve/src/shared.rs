//! The gateway's shared state in Redis (`[storage] shared_state = "redis://…"`): the rate-limit
//! cells and the signed-request nonces every replica consults, so N replicas enforce one limit
//! and a request accepted by one cannot be replayed to another; and the extraction tracking and
//! drift windows ([`RedisExtraction`], [`RedisDrift`]), so queries spread over the replicas
//! count as one caller's and drift covers the fleet's traffic.
//!
//! - **Limits**: GCRA in one Lua script (atomic in Redis, no module), the time taken from
//!   Redis's own clock (`TIME`) so replicas on skewed machines agree; a cell holds the
//!   theoretical arrival time and expires when it no longer matters. A replica takes up to
//!   [`lease_size`] requests from a cell at once and uses them for at most [`LEASE_FOR`], so a
//!   busy key costs one Redis call per lease, not per request; cells with a burst or rate
//!   under 40 are asked for every request. Leases never let more through than one limit. A
//!   refusal's wait is remembered too (no request can fit sooner on any replica), so a
//!   flood over the limit does not become a flood of Redis calls.
//! - **Nonces**: one script per pair, the nonce hashed into the key (bounded size): a pair
//!   still remembered is a replay, else it is set until `now + 2×window` (expiring in Redis
//!   then too).
//! - **Redis unreachable**: calls time out after [`TIMEOUT`], and for [`RETRY_AFTER`] after a
//!   failure Redis is not asked at all (requests are not held up by a dead server). Then either
//!   every request is refused with 503 ([`Fallback::Closed`], the default) or decided by this
//!   process's own limiters and nonces ([`Fallback::Local`]: per-replica limits, replays across
//!   replicas possible), each such decision counted ([`RateLimitStore::local_decisions`]) and
//!   audited by the gateway.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::ServeLimits;
use crate::httpsig::{NonceStore, Nonces, SigError, WINDOW_SECS};
use crate::keys::KeyInfo;
use crate::limits::{Limited, Limiters, RateLimitStore};

mod monitor;
pub use monitor::{FLUSH_ROWS, RedisDrift, RedisExtraction};

/// The longest a Redis call may take.
pub const TIMEOUT: Duration = Duration::from_millis(250);

/// How long Redis is left alone after a failure.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Connections kept open to Redis.
const POOL: usize = 8;

pub use rampart_home::SharedFallback as Fallback;

/// Why the shared state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    /// The URL cannot be used.
    #[error("{0}")]
    Url(String),
    /// Redis could not be reached at start.
    #[error("cannot reach {shown}: {reason}")]
    Connect {
        /// The URL without its password.
        shown: String,
        /// Why.
        reason: String,
    },
}

/// GCRA taking up to `ARGV[3]` requests at once (a lease): `KEYS[1]` the cell, `ARGV[1]` the
/// emission interval and `ARGV[2]` the burst tolerance, in microseconds. `k` requests fit
/// when `tat + (k - 1) × interval - tolerance <= now`. Returns `{granted, wait µs}`: at least
/// one granted, or none and how long until one would be.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local room = math.floor((now + tolerance - tat) / interval) + 1
if room < 1 then return {0, tat - tolerance - now} end
local k = math.min(tonumber(ARGV[3]), room)
local new_tat = tat + k * interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.floor((new_tat - now) / 1000) + 1)
return {k, 0}
";

/// The most requests a replica takes from a shared cell at once.
pub const MAX_LEASE: u32 = 256;

/// How long a replica may use what it took before the rest is given up.
pub const LEASE_FOR: Duration = Duration::from_millis(100);

/// Most cells remembered at once (all are forgotten past it: requests are then only refused
/// early or asked about again, never let through).
const MAX_LEASES: usize = 10_000;

/// How many requests a replica takes from a cell of `rate`/s and `burst` at once: a
/// twentieth of the burst and of a second's rate, at most [`MAX_LEASE`], at least one (a
/// cell with a burst under 40 or a rate under 40/s is asked for every request). A request is
/// only ever let through on a token taken from the shared cell, so leases never let more
/// through than one limit; the tokens a replica leaves unused when its lease ends are lost
/// (at most one lease per replica per [`LEASE_FOR`]).
#[must_use]
pub fn lease_size(rate: u32, burst: u32) -> u32 {
    (burst / 20).min(rate / 20).clamp(1, MAX_LEASE)
}

/// A nonce: `KEYS[1]` the pair, `ARGV[1]` now, `ARGV[2]` until when it is remembered (the
/// caller's clock, as the local stores), `ARGV[3]` Redis's own expiry in seconds. 1 when
/// fresh, 0 for a replay.
const NONCE: &str = r"
local held = redis.call('GET', KEYS[1])
if held and tonumber(held) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
";

/// The URL with any password replaced.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
                None => format!("{scheme}://{userinfo}@{host}"),
            },
            None => url.to_owned(),
        },
        None => "(a Redis URL)".into(),
    }
}

/// Reads a `redis://` or `rediss://` (TLS) URL; one read from a file may not carry a password.
///
/// # Errors
/// [`SharedError::Url`].
pub fn parse_url(url: &str, from_file: bool) -> Result<redis::Client, SharedError> {
    let shown = redact(url);
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(SharedError::Url(format!(
            "{shown} is not a Redis URL (redis://HOST:PORT/DB, or rediss:// for TLS)"
        )));
    }
    let has_password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    if has_password && from_file {
        return Err(SharedError::Url(format!(
            "{shown} carries a password, and secrets never belong in rampart.toml: give the \
             whole URL in RAMPART_STORAGE_SHARED_STATE instead"
        )));
    }
    redis::Client::open(url).map_err(|e| SharedError::Url(format!("{shown}: {e}")))
}

/// What a replica knows of a cell without asking Redis.
#[derive(Debug, Clone, Copy)]
enum Lease {
    /// Requests taken from it and not yet used, until when.
    Taken(u32, Instant),
    /// Redis said no request fits before then (exact: no replica can take one sooner).
    Empty(Instant),
}

/// Rate-limit cells and nonces in Redis, shared by every replica.
pub struct RedisState {
    client: redis::Client,
    shown: String,
    pool: Vec<Mutex<Option<redis::Connection>>>,
    next: AtomicUsize,
    down_until: RwLock<Option<Instant>>,
    script: redis::Script,
    nonce_script: redis::Script,
    prefix: String,
    limits: ServeLimits,
    fallback: Option<(Limiters, Nonces)>,
    local: AtomicU64,
    /// Cell → what this replica knows of it without asking.
    leases: Mutex<std::collections::HashMap<String, Lease>>,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisState({})", self.shown)
    }
}

impl RedisState {
    /// Connects (and pings) `client`; cells are named under `prefix` (one deployment's).
    ///
    /// # Errors
    /// [`SharedError::Connect`] when Redis does not answer now.
    pub fn open(
        client: redis::Client,
        prefix: &str,
        limits: &ServeLimits,
        fallback: Fallback,
    ) -> Result<Self, SharedError> {
        let shown = format!("Redis at {}", client.get_connection_info().addr());
        let state = Self {
            client,
            shown,
            pool: (0..POOL).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            down_until: RwLock::new(None),
            script: redis::Script::new(GCRA),
            nonce_script: redis::Script::new(NONCE),
            prefix: prefix.to_owned(),
            limits: limits.clone(),
            fallback: (fallback == Fallback::Local)
                .then(|| (Limiters::new(limits), Nonces::default())),
            local: AtomicU64::new(0),
            leases: Mutex::new(std::collections::HashMap::new()),
        };
        state
            .call(|c| redis::cmd("PING").query::<String>(c))
            .map_err(|reason| SharedError::Connect {
                shown: state.shown.clone(),
                reason,
            })?;
        Ok(state)
    }

    /// Which server, for people (no password).
    #[must_use]
    pub fn server(&self) -> &str {
        &self.shown
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let c = self.client.get_connection_with_timeout(TIMEOUT)?;
        c.set_read_timeout(Some(TIMEOUT))?;
        c.set_write_timeout(Some(TIMEOUT))?;
        Ok(c)
    }

    /// Runs `f` on a pooled connection; a failure drops the connection and leaves Redis
    /// alone for [`RETRY_AFTER`].
    fn call<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, String> {
        if self
            .down_until
            .read()
            .is_ok_and(|d| d.is_some_and(|until| Instant::now() < until))
        {
            return Err("Redis failed less than a second ago".into());
        }
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % POOL;
        let Some(cell) = self.pool.get(slot) else {
            return Err("no connection slot".into());
        };
        let mut guard = cell
            .lock()
            .map_err(|_| "a poisoned connection".to_owned())?;
        let result = match guard.as_mut() {
            Some(c) => f(c),
            None => self.connect().and_then(|mut c| {
                let r = f(&mut c);
                *guard = Some(c);
                r
            }),
        };
        result.map_err(|e| {
            *guard = None;
            drop(guard);
            // A failure usually means the server went away: every pooled connection is
            // suspect, so all are dropped and made afresh once Redis is asked again.
            for cell in &self.pool {
                if let Ok(mut c) = cell.try_lock() {
                    *c = None;
                }
            }
            if let Ok(mut d) = self.down_until.write() {
                *d = Some(Instant::now() + RETRY_AFTER);
            }
            e.to_string()
        })
    }

    /// The decision this replica can take for `cell` without asking: a request from its
    /// lease, or the wait Redis last gave.
    fn known(&self, cell: &str) -> Option<Result<(), Limited>> {
        let now = Instant::now();
        let mut leases = self
            .leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match leases.get_mut(cell)? {
            Lease::Taken(left, until) if *left > 0 && now < *until => {
                *left -= 1;
                Some(Ok(()))
            }
            Lease::Empty(until) if now < *until => Some(Err(Limited::Wait(*until - now))),
            _ => None,
        }
    }

    fn remember(&self, cell: &str, lease: Lease) {
        let mut leases = self
            .leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if leases.len() >= MAX_LEASES && !leases.contains_key(cell) {
            leases.clear();
        }
        leases.insert(cell.to_owned(), lease);
    }

    fn gcra(&self, cell: &str, rate: u32, burst: u32) -> Result<(), Limited> {
        if let Some(decided) = self.known(cell) {
            return decided;
        }
        let want = lease_size(rate, burst);
        let interval = 1_000_000 / u64::from(rate.max(1));
        let tolerance = interval.saturating_mul(u64::from(burst.max(1)) - 1);
        let key = format!("{}rl:{cell}", self.prefix);
        let answer = self.call(|c| {
            self.script
                .key(&key)
                .arg(interval)
                .arg(tolerance)
                .arg(want)
                .invoke::<(u32, i64)>(c)
        });
        match answer {
            Ok((0, us)) => {
                let wait = Duration::from_micros(u64::try_from(us).unwrap_or(0));
                self.remember(cell, Lease::Empty(Instant::now() + wait));
                Err(Limited::Wait(wait))
            }
            Ok((granted, _)) => {
                if granted > 1 {
                    self.remember(cell, Lease::Taken(granted - 1, Instant::now() + LEASE_FOR));
                }
                Ok(())
            }
            Err(_) => Err(Limited::Unavailable),
        }
    }

    /// A decision this process takes alone, or the refusal.
    fn locally(
        &self,
        decide: impl FnOnce(&Limiters) -> Result<(), Limited>,
    ) -> Result<(), Limited> {
        match &self.fallback {
            Some((limiters, _)) => {
                self.local.fetch_add(1, Ordering::Relaxed);
                decide(limiters)
            }
            None => Err(Limited::Unavailable),
        }
    }

    fn decide(
        &self,
        shared: Result<(), Limited>,
        local: impl FnOnce(&Limiters) -> Result<(), Limited>,
    ) -> Result<(), Limited> {
        match shared {
            Err(Limited::Unavailable) => self.locally(local),
            other => other,
        }
    }
}

impl RateLimitStore for RedisState {
    fn ip(&self, ip: IpAddr) -> Result<(), Limited> {
        let shared = self.gcra(
            &format!("ip:{ip}"),
            self.limits.ip_rate,
            self.limits.ip_burst,
        );
        self.decide(shared, |l| l.ip(ip))
    }

    fn auth_failure(&self, ip: IpAddr) -> Result<(), Limited> {
        let shared = self.gcra(
            &format!("auth:{ip}"),
            self.limits.auth_fail_rate,
            self.limits.auth_fail_burst,
        );
        self.decide(shared, |l| l.auth_failure(ip))
    }

    fn key(&self, key: &KeyInfo) -> Result<(), Limited> {
        // The key's limits are part of its cell: a key whose rate was changed starts afresh.
        let shared = self.gcra(
            &format!("key:{}:{}:{}", key.id, key.rate, key.burst),
            key.rate,
            key.burst,
        );
        self.decide(shared, |l| l.key(key))
    }

    fn local_decisions(&self) -> u64 {
        self.local.load(Ordering::Relaxed)
    }
}

impl NonceStore for RedisState {
    fn fresh(&self, keyid: &str, nonce: &str, now: i64) -> Result<(), SigError> {
        let mut h = rampart_crypto::Sha256Hasher::new();
        h.update(nonce.as_bytes());
        let key = format!("{}n:{keyid}:{}", self.prefix, h.finish().to_hex());
        let ttl = 2 * WINDOW_SECS;
        let set = self.call(|c| {
            self.nonce_script
                .key(&key)
                .arg(now)
                .arg(now.saturating_add(ttl))
                .arg(ttl)
                .invoke::<i64>(c)
        });
        match set {
            Ok(1) => Ok(()),
            Ok(_) => Err(SigError::Replayed),
            Err(e) => match &self.fallback {
                Some((_, nonces)) => {
                    self.local.fetch_add(1, Ordering::Relaxed);
                    nonces.fresh(keyid, nonce, now)
                }
                None => Err(SigError::NonceStore(format!("{}: {e}", self.shown))),
            },
        }
    }
}

/// A Redis server for tests: `redis-server` (Debian's package) on a free loopback port,
/// without persistence, stopped when dropped; [`testing::Server::stop`] and
/// [`testing::Server::start`] take it away and bring it back on the same port.
pub mod testing {
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// The server could not be started, and why.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{0}")]
    pub struct Unavailable(pub String);

    /// A running test server.
    pub struct Server {
        child: Option<Child>,
        /// Its port on 127.0.0.1.
        pub port: u16,
    }

    impl Server {
        /// Starts one.
        ///
        /// # Errors
        /// When `redis-server` is missing or does not answer within 10 s.
        pub fn new() -> Result<Self, Unavailable> {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| Unavailable(format!("no free port: {e}")))?;
            let mut s = Self { child: None, port };
            s.start()?;
            Ok(s)
        }

        /// `redis://127.0.0.1:PORT/`.
        #[must_use]
        pub fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }

        /// Starts the server (again) on its port.
        ///
        /// # Errors
        /// As [`Server::new`].
        pub fn start(&mut self) -> Result<(), Unavailable> {
            self.spawn().map_err(Unavailable)
        }

        fn spawn(&mut self) -> Result<(), String> {
            let child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "yes",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    format!(
                        "redis-server: {e} (install Debian's redis-server package; .ci/run does)"
                    )
                })?;
            self.child = Some(child);
            let client = redis::Client::open(self.url()).map_err(|e| e.to_string())?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let pong = client
                    .get_connection_with_timeout(Duration::from_millis(200))
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
                match pong {
                    Ok(_) => return Ok(()),
                    Err(e) if Instant::now() > deadline => {
                        return Err(format!("redis-server did not answer: {e}"));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }

        /// Kills the server.
        pub fn stop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop();
        }
    }
}
