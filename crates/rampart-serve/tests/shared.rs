//! The gateway's shared state in a real Redis (`redis-server`, started per test): the
//! rate-limit and nonce conformance suites, replicas holding one limit, and what happens
//! while Redis is gone (fail closed, or decide locally and count it), and after it returns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rampart_serve::httpsig::{NonceStore, SigError, nonce_conformance};
use rampart_serve::keys::{KeyInfo, Role};
use rampart_serve::limits::{Limited, RateLimitStore, conformance};
use rampart_serve::monitor::{
    DriftWindowStore, ExtractionState, drift_conformance, extraction_conformance,
};
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
fn redis_passes_the_extraction_and_drift_conformance_suites() {
    let server = testing::Server::new().unwrap();
    let s = std::sync::Arc::new(state(&server, "t5:", Fallback::Closed));
    extraction_conformance::run(&s.extraction(extraction_conformance::config())).unwrap();
    let window = s.drift_window(
        "m",
        1,
        "root",
        drift_conformance::ROWS,
        drift_conformance::FEATURES,
    );
    drift_conformance::run(&window).unwrap();
    assert_eq!(s.local_decisions(), 0);
}

fn stats(d: usize) -> Vec<rampart_ml::model::FeatureStats> {
    extraction_conformance::schema_of(d)
}

fn confident() -> rampart_ml::Prediction {
    rampart_ml::Prediction::Class {
        class: 0,
        proba: vec![0.95, 0.05],
    }
}

/// One request's rows observed by `r`, judged (the store works off the request path), and
/// the alerts it raised.
fn observe_settled(
    r: &rampart_serve::shared::RedisExtraction,
    key: &str,
    x: &[f32],
    s: &[rampart_ml::model::FeatureStats],
) -> Vec<rampart_serve::monitor::Alert> {
    let preds = vec![confident(); x.len() / s.len()];
    assert!(
        r.observe(key, "m", x, s, &preds).is_none(),
        "judged on the request path"
    );
    r.settle();
    r.take_alerts().into_iter().map(|(_, _, a)| a).collect()
}

#[test]
fn a_sweep_spread_over_three_replicas_is_seen_as_one_and_held_on_all() {
    let server = testing::Server::new().unwrap();
    let config = rampart_serve::monitor::ExtractionConfig::default();
    let replicas: Vec<_> = (0..3)
        .map(|_| {
            std::sync::Arc::new(state(&server, "t6:", Fallback::Closed)).extraction(config.clone())
        })
        .collect();
    let s = stats(3);
    // 40 rows along one feature, round robin: each replica sees 13 or 14, fewer than the 32
    // rows a replica alone needs before it looks for patterns, and each of its rows changes
    // the feature by three steps, not one.
    let mut alert = None;
    for i in 0..40u16 {
        let r = &replicas[usize::from(i) % 3];
        assert!(
            r.admit("sweeper", "m").is_ok(),
            "held before the sweep was seen"
        );
        let alerts = observe_settled(r, "sweeper", &[5.0, f32::from(i) * 0.25, 5.0], &s);
        if let Some(a) = alerts.into_iter().next() {
            alert = Some((i, a));
            break;
        }
    }
    // Seen once 32 rows are remembered, across the three.
    let (at, alert) = alert.expect("the sweep was not seen");
    assert_eq!(at, 31);
    assert_eq!(alert.kind, "sweep");
    // Held at once by the replica that saw it; by the others from their next rows of the key
    // (each learns the hold with its next answer from Redis), and reported once.
    let first = usize::from(at) % 3;
    for (i, r) in replicas.iter().enumerate() {
        if i != first {
            let more = observe_settled(r, "sweeper", &[5.0, 9.0, 5.0], &s);
            assert!(more.is_empty(), "reported again: {more:?}");
        }
        let held = r.admit("sweeper", "m").unwrap_err();
        assert!(held.blocked && held.kind == "sweep", "{held:?}");
        assert!(held.retry_after > Duration::from_secs(200), "{held:?}");
    }
    // Another key is not.
    assert!(replicas[1].admit("someone-else", "m").is_ok());
    // The same rows each asked of one replica alone (in process): nothing, for want of rows.
    let alone = rampart_serve::monitor::Extraction::new(config);
    let seen = (0..40u16)
        .filter(|i| i % 3 == 0)
        .filter_map(|i| {
            alone.observe(
                "sweeper",
                "m",
                &[5.0, f32::from(i) * 0.25, 5.0],
                &s,
                &[confident()],
            )
        })
        .count();
    assert_eq!(seen, 0);
}

#[test]
fn a_budget_spent_across_replicas_holds_the_key_everywhere() {
    let server = testing::Server::new().unwrap();
    let config = extraction_conformance::config();
    let a = std::sync::Arc::new(state(&server, "t7:", Fallback::Closed)).extraction(config.clone());
    let b = std::sync::Arc::new(state(&server, "t7:", Fallback::Closed)).extraction(config);
    let s = stats(3);
    let budget = u16::try_from(extraction_conformance::BUDGET).unwrap();
    // Rows from both replicas at once, not waiting for each other: one budget, one alert.
    let alerts: usize = std::thread::scope(|scope| {
        let runs: Vec<_> = [&a, &b]
            .into_iter()
            .enumerate()
            .map(|(t, r)| {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..=budget / 2 {
                        let row = [
                            f32::from(i % 10),
                            f32::from((i * 3 + 1) % 10),
                            f32::from((i * 7 + u16::try_from(t).unwrap()) % 10),
                        ];
                        assert!(r.observe("k", "m", &row, s, &[confident()]).is_none());
                    }
                    r.settle();
                    r.take_alerts().len()
                })
            })
            .collect();
        runs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(alerts, 1);
    // Each replica learns the hold with its next answer from Redis, at the latest.
    for r in [&a, &b] {
        if r.admit("k", "m").is_ok() {
            observe_settled(r, "k", &[1.0, 2.0, 3.0], &s);
        }
        assert!(r.admit("k", "m").is_err());
    }
    // A batch counts every row it holds.
    for r in [&a, &b] {
        assert!(r.admit("batch", "m").is_ok());
    }
    let rows: Vec<f32> = (0..3 * 41).map(|v| (v % 10) as f32).collect();
    let alerts = observe_settled(&a, "batch", &rows, &s);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, "budget");
    assert!(a.admit("batch", "m").is_err());
}

#[test]
fn the_drift_window_merges_the_replicas_rows() {
    let server = testing::Server::new().unwrap();
    let (a, b) = (
        std::sync::Arc::new(state(&server, "t8:", Fallback::Closed)),
        std::sync::Arc::new(state(&server, "t8:", Fallback::Closed)),
    );
    let (wa, wb) = (
        a.drift_window("m", 3, "r", 100, 2),
        b.drift_window("m", 3, "r", 100, 2),
    );
    // Another version of the model has its own window.
    let other = a.drift_window("m", 4, "r", 100, 2);
    for i in 0..30u16 {
        wa.push(&[f32::from(i), 1.0]);
        wb.push(&[f32::from(i), 2.0]);
    }
    // Replica b flushes before it looks; a's rows arrive when a looks (or past 64 rows).
    assert_eq!(wb.snapshot(1).unwrap().len(), 30 * 2);
    let merged = wa.snapshot(1).unwrap();
    assert_eq!(merged.len(), 60 * 2);
    assert_eq!(merged.chunks_exact(2).filter(|r| r[1] == 1.0).count(), 30);
    // b sees a's rows on its next look; then nothing new for either.
    assert_eq!(wb.snapshot(1).unwrap().len(), 60 * 2);
    assert!(wa.snapshot(1).is_none() && wb.snapshot(1).is_none());
    assert!(other.snapshot(1).is_none());
    // Past the window's length the latest rows are kept.
    for i in 0..150u16 {
        wa.push(&[f32::from(i), 3.0]);
    }
    // b sees the 128 a has sent so far (two batches of 64); a sends the rest when it looks.
    let sent = wb.snapshot(1).unwrap();
    assert_eq!(sent.len(), 100 * 2);
    assert!(
        sent.chunks_exact(2)
            .all(|r| r[1] == 3.0 && (28.0..128.0).contains(&r[0]))
    );
    let latest = wa.snapshot(1).unwrap();
    assert!(latest.chunks_exact(2).all(|r| r[1] == 3.0 && r[0] >= 50.0));
}

/// Redis's count of script calls so far.
fn script_calls(server: &testing::Server) -> u64 {
    let mut c = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .unwrap();
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[test]
fn a_busy_key_takes_leases_and_still_gets_no_more_than_one_limit() {
    use rampart_serve::shared::{LEASE_FOR, lease_size};
    assert_eq!(lease_size(1, 10), 1);
    assert_eq!(lease_size(1000, 2000), 50);
    assert_eq!(lease_size(1_000_000, 1_000_000), 256);
    let server = testing::Server::new().unwrap();
    let replicas: Vec<RedisState> = (0..3)
        .map(|_| state(&server, "t9:", Fallback::Closed))
        .collect();
    let k = key(1000, 2000);
    let before = script_calls(&server);
    let started = Instant::now();
    let passed = (0..6000)
        .filter(|i| replicas[i % 3].key(&k).is_ok())
        .count();
    let elapsed = started.elapsed();
    let calls = script_calls(&server) - before;
    // Never more than one limit allows: the burst and the rate over the time taken.
    let one_limit = 2000.0 + 1000.0 * elapsed.as_secs_f64();
    assert!(
        passed as f64 <= one_limit + 1.0,
        "{passed} passed; one limit allows {one_limit:.0} in {elapsed:?}"
    );
    // And not much less: what the replicas leave unused is at most a lease each per
    // LEASE_FOR (50 requests).
    let unused = 3.0 * 50.0 * (elapsed.as_secs_f64() / LEASE_FOR.as_secs_f64()).ceil();
    assert!(
        passed as f64 >= (one_limit - unused).min(2000.0) * 0.9,
        "{passed} passed of {one_limit:.0} in {elapsed:?}"
    );
    // Redis was asked about once per lease while the burst lasted, not once per request.
    assert!(calls < 6000 / 10, "{calls} script calls for 6000 requests");
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
    // Extraction tracking falls back to this process's own (and counts it).
    let local = std::sync::Arc::new(local);
    let x = local.extraction(extraction_conformance::config());
    assert!(x.admit("k", "m").is_ok());
    assert!(observe_settled(&x, "k", &[1.0, 2.0, 3.0], &stats(3)).is_empty());
    assert_eq!(local.local_decisions(), 13);
    // Redis is back: after the pause, both ask it again.
    server.start().unwrap();
    std::thread::sleep(RETRY_AFTER + Duration::from_millis(100));
    let other = std::net::IpAddr::from([192, 0, 2, 10]);
    assert!(closed.ip(other).is_ok());
    assert!(local.ip(other).is_ok());
    assert!(observe_settled(&x, "k", &[1.0, 2.0, 3.0], &stats(3)).is_empty());
    assert_eq!(local.local_decisions(), 13);
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
