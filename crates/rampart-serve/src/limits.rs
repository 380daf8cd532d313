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

/// Why a request may not pass now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Over the limit: how long to wait (429).
    Wait(Duration),
    /// The shared store could not be asked, and the gateway is set to fail closed (503).
    Unavailable,
}

/// Where the rate-limit cells live: the GCRA state of each client address, each address's
/// failed authentications and each API key. [`Limiters`] keeps them in this process (one
/// server's limits); a store every replica reaches makes N replicas enforce one limit instead
/// of N. [`conformance::run`] is what any implementation must pass.
pub trait RateLimitStore: Send + Sync + std::fmt::Debug {
    /// One request from `ip`, at the gateway's per-address rate.
    ///
    /// # Errors
    /// How long to wait, or that the store cannot be asked.
    fn ip(&self, ip: IpAddr) -> Result<(), Limited>;

    /// One failed authentication from `ip`, at the gateway's failed-authentication rate.
    ///
    /// # Errors
    /// As [`RateLimitStore::ip`].
    fn auth_failure(&self, ip: IpAddr) -> Result<(), Limited>;

    /// One request with `key`, at the key's own rate and burst.
    ///
    /// # Errors
    /// As [`RateLimitStore::ip`].
    fn key(&self, key: &KeyInfo) -> Result<(), Limited>;

    /// Decisions taken in this process because the shared store could not be asked (a
    /// store set to fall back locally); 0 for a store that never does.
    fn local_decisions(&self) -> u64 {
        0
    }
}

impl<T: RateLimitStore + ?Sized> RateLimitStore for Arc<T> {
    fn ip(&self, ip: IpAddr) -> Result<(), Limited> {
        (**self).ip(ip)
    }

    fn auth_failure(&self, ip: IpAddr) -> Result<(), Limited> {
        (**self).auth_failure(ip)
    }

    fn key(&self, key: &KeyInfo) -> Result<(), Limited> {
        (**self).key(key)
    }

    fn local_decisions(&self) -> u64 {
        (**self).local_decisions()
    }
}

/// The in-process limiters.
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

    fn wait(not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> Limited {
        Limited::Wait(not_until.wait_time_from(DefaultClock::default().now()))
    }
}

impl RateLimitStore for Limiters {
    fn ip(&self, ip: IpAddr) -> Result<(), Limited> {
        self.ip.check_key(&ip).map_err(|n| Self::wait(&n))
    }

    fn auth_failure(&self, ip: IpAddr) -> Result<(), Limited> {
        self.auth.check_key(&ip).map_err(|n| Self::wait(&n))
    }

    fn key(&self, key: &KeyInfo) -> Result<(), Limited> {
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

/// What every [`RateLimitStore`] must do.
pub mod conformance {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::{Limited, RateLimitStore};
    use crate::ServeLimits;
    use crate::keys::{KeyInfo, Role};

    pub use rampart_audit::conformance::Failure;

    /// The per-address burst of [`limits`] (its rates are 1 per second).
    pub const IP_BURST: u32 = 3;
    /// The failed-authentication burst of [`limits`].
    pub const AUTH_BURST: u32 = 2;

    /// The gateway limits to build the store under test with.
    #[must_use]
    pub fn limits() -> ServeLimits {
        ServeLimits {
            ip_rate: 1,
            ip_burst: IP_BURST,
            auth_fail_rate: 1,
            auth_fail_burst: AUTH_BURST,
            ..ServeLimits::default()
        }
    }

    fn key(id: &str, burst: u32) -> KeyInfo {
        KeyInfo {
            id: id.into(),
            role: Role::Predict,
            model: None,
            rate: 1,
            burst,
            expires: None,
            revoked: false,
            created_at: String::new(),
            label: String::new(),
        }
    }

    /// How many of `n` calls pass.
    fn passed(n: u32, f: &dyn Fn() -> Result<(), Limited>) -> Result<u32, Failure> {
        let mut ok = 0;
        for _ in 0..n {
            match f() {
                Ok(()) => ok += 1,
                Err(Limited::Wait(wait))
                    if wait > Duration::ZERO && wait <= Duration::from_secs(2) => {}
                Err(Limited::Unavailable) => {
                    return Err(Failure::new("available", "the store could not be asked"));
                }
                Err(Limited::Wait(wait)) => {
                    return Err(Failure::new(
                        "wait",
                        format!("told to wait {wait:?} at 1 request per second"),
                    ));
                }
            }
        }
        Ok(ok)
    }

    /// `got` passed where `burst` should: GCRA refills one cell per second, so a slow run may
    /// see one more.
    fn burst(case: &'static str, got: u32, burst: u32) -> Result<(), Failure> {
        if got == burst || got == burst + 1 {
            Ok(())
        } else {
            Err(Failure::new(
                case,
                format!("{got} passed, burst is {burst}"),
            ))
        }
    }

    /// Runs every case against a store made with [`limits`] that has seen no traffic.
    ///
    /// # Errors
    /// The first case the store fails.
    pub fn run(store: &dyn RateLimitStore) -> Result<(), Failure> {
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        burst("ip burst", passed(10, &|| store.ip(a))?, IP_BURST)?;
        // Another address has its own cell; failed authentications have theirs.
        burst("ip cells", passed(10, &|| store.ip(b))?, IP_BURST)?;
        burst(
            "auth cell",
            passed(10, &|| store.auth_failure(a))?,
            AUTH_BURST,
        )?;
        // A key is limited at its own burst, per key.
        let k1 = key("k1", 5);
        let k2 = key("k2", 1);
        burst("key burst", passed(20, &|| store.key(&k1))?, 5)?;
        burst("key cells", passed(20, &|| store.key(&k2))?, 1)?;
        // Many threads on one cell share it: no more than the burst passes in total.
        let c: IpAddr = [192, 0, 2, 3].into();
        let total: u32 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| (0..10).filter(|_| store.ip(c).is_ok()).count()))
                .collect();
            handles
                .into_iter()
                .map(|h| u32::try_from(h.join().unwrap_or(0)).unwrap_or(u32::MAX))
                .sum()
        });
        burst("concurrent", total, IP_BURST)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Limiters, RateLimitStore, conformance};

    #[test]
    fn the_local_limiters_pass_the_conformance_suite_and_it_can_fail() {
        conformance::run(&Limiters::new(&conformance::limits())).unwrap();
        // A store that limits nothing is caught.
        #[derive(Debug)]
        struct Open;
        impl RateLimitStore for Open {
            fn ip(&self, _: std::net::IpAddr) -> Result<(), super::Limited> {
                Ok(())
            }
            fn auth_failure(&self, _: std::net::IpAddr) -> Result<(), super::Limited> {
                Ok(())
            }
            fn key(&self, _: &crate::keys::KeyInfo) -> Result<(), super::Limited> {
                Ok(())
            }
        }
        assert_eq!(conformance::run(&Open).unwrap_err().case, "ip burst");
        // One that shares a cell between addresses is caught too.
        let shared = Limiters::new(&conformance::limits());
        #[derive(Debug)]
        struct OneCell(Limiters);
        impl RateLimitStore for OneCell {
            fn ip(&self, _: std::net::IpAddr) -> Result<(), super::Limited> {
                self.0.ip([0, 0, 0, 0].into())
            }
            fn auth_failure(&self, ip: std::net::IpAddr) -> Result<(), super::Limited> {
                self.0.auth_failure(ip)
            }
            fn key(&self, k: &crate::keys::KeyInfo) -> Result<(), super::Limited> {
                self.0.key(k)
            }
        }
        assert_eq!(
            conformance::run(&OneCell(shared)).unwrap_err().case,
            "ip cells"
        );
    }
}
