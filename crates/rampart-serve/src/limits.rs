//! Rate limits (GCRA, `governor`): one limiter per API key at the key's own rate, one keyed
//! limiter per client address, and one for failed authentications per address. All are
//! shared by every worker thread.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

use crate::ServeLimits;
use crate::keys::KeyInfo;
use crate::problem::Problem;

fn quota(rate: u32, burst: u32) -> Quota {
    let r = NonZeroU32::new(rate.max(1)).unwrap_or(NonZeroU32::MIN);
    let b = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(r).allow_burst(b)
}

/// The limiters.
pub struct Limiters {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    auth: DefaultKeyedRateLimiter<IpAddr>,
    keys: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limiters")
    }
}

impl Limiters {
    /// From the gateway's limits.
    #[must_use]
    pub fn new(l: &ServeLimits) -> Self {
        Self {
            ip: DefaultKeyedRateLimiter::keyed(quota(l.ip_rate, l.ip_burst)),
            auth: DefaultKeyedRateLimiter::keyed(quota(l.auth_fail_rate, l.auth_fail_burst)),
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn wait(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> Duration {
        not_until.wait_time_from(DefaultClock::default().now())
    }

    /// One request from `ip`.
    ///
    /// # Errors
    /// How long to wait.
    pub fn ip(&self, ip: IpAddr) -> Result<(), Duration> {
        self.ip.check_key(&ip).map_err(|n| Self::wait(&n))
    }

    /// One failed authentication from `ip`.
    ///
    /// # Errors
    /// How long to wait.
    pub fn auth_failure(&self, ip: IpAddr) -> Result<(), Duration> {
        self.auth.check_key(&ip).map_err(|n| Self::wait(&n))
    }

    /// One request with `key`, at its own rate.
    ///
    /// # Errors
    /// How long to wait.
    pub fn key(&self, key: &KeyInfo) -> Result<(), Duration> {
        let limiter = {
            let mut map = self
                .keys
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match map.get(&key.id) {
                Some(l) => Arc::clone(l),
                None => {
                    if map.len() > 100_000 {
                        map.clear();
                    }
                    Arc::clone(map.entry(key.id.clone()).or_insert_with(|| {
                        Arc::new(DefaultDirectRateLimiter::direct(quota(key.rate, key.burst)))
                    }))
                }
            }
        };
        limiter.check().map_err(|n| Self::wait(&n))
    }
}

/// The 429 response: `Retry-After` (whole seconds, at least 1) and the IETF `RateLimit` and
/// `RateLimit-Policy` fields (draft-ietf-httpapi-ratelimit-headers).
#[must_use]
pub fn too_many(wait: Duration, burst: u32, rate: u32, policy: &str) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let secs = secs.max(1);
    let window = u64::from(burst.max(1))
        .div_ceil(u64::from(rate.max(1)))
        .max(1);
    Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        format!("rate limit ({policy}) exceeded; retry in {secs} s"),
    )
    .with_header(header::RETRY_AFTER, secs.to_string())
    .with_header(
        HeaderName::from_static("ratelimit-policy"),
        format!("\"{policy}\";q={burst};w={window}"),
    )
    .with_header(
        HeaderName::from_static("ratelimit"),
        format!("\"{policy}\";r=0;t={secs}"),
    )
    .into_response()
}
