//! The gateway's shared state in a real Redis (`redis-server`, started per test): the
//! rate-limit and nonce conformance suites, replicas holding one limit, and what happens
//! while Redis is gone (fail closed, or decide locally and count it), and after it returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rampart_serve::httpsig::{NonceStore, SigError, nonce_conformance};
use rampart_serve::keys::{KeyInfo, Role};
use rampart_serve::limits::{Limited, RateLimitStore, conformance};
use rampart_serve::shared::{Fallback, RETRY_AFTER, RedisState, parse_url, testing};

fn state(server: &testing::Server, prefix: &str, fallback: Fallback) -> RedisState {
    RedisState::open(
        parse_url(&server.url(), true).unwrap(),
        prefix,
        &conformance::limits(),
        fallback,
    )
    .unwrap()
}

fn key(rate: u32, burst: u32) -> KeyInfo {
    KeyInfo {
        id: "0123456789abcdef".into(),
        role: Role::Predict,
        model: None,
        rate,
        burst,
        expires: None,
        revoked: false,
        created_at: String::new(),
        label: String::new(),
    }
}

#[test]
fn redis_passes_the_rate_limit_and_nonce_conformance_suites() {
    let server = testing::Server::new().unwrap();
    conformance::run(&state(&server, "t1:", Fallback::Closed)).unwrap();
    let (a, b) = (
        state(&server, "t2:", Fallback::Closed),
        state(&server, "t2:", Fallback::Closed),
    );
    nonce_conformance::run(&a, Some(&b)).unwrap();
}

#[test]
fn three_replicas_hold_one_key_to_one_limit() {
    let server = testing::Server::new().unwrap();
    let replicas: Vec<RedisState> = (0..3)
        .map(|_| state(&server, "t3:", Fallback::Closed))
        .collect();
    let k = key(1, 10);
    let passed = (0..60).filter(|i| replicas[i % 3].key(&k).is_ok()).count();
    // One replica alone lets the burst (10) through, one more per second elapsed.
    assert!(
        (10..=11).contains(&passed),
        "{passed} passed across three replicas"
    );
}

#[test]
fn while_redis_is_gone_requests_are_refused_or_decided_locally_and_counted() {
    let mut server = testing::Server::new().unwrap();
    let closed = state(&server, "t4:", Fallback::Closed);
    let local = state(&server, "t4:", Fallback::Local);
    let ip = std::net::IpAddr::from([192, 0, 2, 9]);
    assert!(closed.ip(ip).is_ok());
    server.stop();
    let t = Instant::now();
    assert_eq!(closed.ip(ip), Err(Limited::Unavailable));
    assert_eq!(closed.key(&key(5, 5)), Err(Limited::Unavailable));
    assert!(matches!(
        closed.fresh("k", "n1", 1000),
        Err(SigError::NonceStore(_))
    ));
    // A dead server does not hold requests up: one timeout, then not asked for a second.
    assert!(
        t.elapsed() < Duration::from_millis(600),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(closed.local_decisions(), 0);
    // The local fallback decides alone (its own burst of 3), and counts every decision.
    let passed = (0..10).filter(|_| local.ip(ip).is_ok()).count();
    assert_eq!(passed, 3);
    assert!(local.fresh("k", "n2", 1000).is_ok());
    assert!(matches!(
        local.fresh("k", "n2", 1000),
        Err(SigError::Replayed)
    ));
    assert_eq!(local.local_decisions(), 12);
    // Redis is back: after the pause, both ask it again.
    server.start().unwrap();
    std::thread::sleep(RETRY_AFTER + Duration::from_millis(100));
    let other = std::net::IpAddr::from([192, 0, 2, 10]);
    assert!(closed.ip(other).is_ok());
    assert!(local.ip(other).is_ok());
    assert_eq!(local.local_decisions(), 12);
}

#[test]
fn a_password_in_the_file_and_other_schemes_are_refused() {
    let e = parse_url("redis://:hunter2@127.0.0.1:6379/0", true)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("RAMPART_STORAGE_SHARED_STATE") && !e.contains("hunter2"),
        "{e}"
    );
    assert!(parse_url("redis://:hunter2@127.0.0.1:6379/0", false).is_ok());
    assert!(parse_url("memcached://127.0.0.1", true).is_err());
}
