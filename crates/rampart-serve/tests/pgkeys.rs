//! API keys in PostgreSQL against a real server (`rampart_postgres::testing`): the key-store
//! conformance suite, a revocation seen by another replica's watcher within a second, and a
//! database that cannot be reached refusing every key (503) until it can be again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rampart_postgres::{Origin, Target, testing};
use rampart_serve::keys::{ApiKeyStore, AuthFailure, NewKey, Role, conformance};
use rampart_serve::pgkeys::{MAX_STALE, PgKeyStore};

fn database() -> (String, Target) {
    let url = testing::fresh_database().unwrap();
    let target = Target::parse(&url, Origin::Environment).unwrap();
    (url, target)
}

fn new_key() -> NewKey<'static> {
    NewKey {
        role: Role::Predict,
        model: None,
        rate: 10,
        burst: 10,
        expires: None,
        label: "replica test",
    }
}

fn seal(k: &[u8]) -> Result<String, rampart_serve::keys::SealError> {
    Ok(format!("sealed-{}", k.len()))
}

/// Polls `check` until it holds; how long that took.
fn until(limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

#[test]
fn the_postgres_key_store_passes_the_conformance_suite() {
    let (_, target) = database();
    conformance::run(&PgKeyStore::open(&target).unwrap()).unwrap();
}

/// Past the most keys held in memory, each key is read when asked for: the same answers,
/// also from the reactor's own threads (where the synchronous driver cannot run).
#[test]
fn past_the_keys_held_in_memory_each_is_read_when_asked_for() {
    let (_, target) = database();
    conformance::run(
        &PgKeyStore::open(&target)
            .unwrap()
            .with_max_cached(0)
            .unwrap(),
    )
    .unwrap();
    let (_, target) = database();
    let admin = PgKeyStore::open(&target).unwrap();
    let tokens: Vec<(String, String)> = (0..3)
        .map(|_| {
            let (info, token) = admin
                .create_key(&new_key(), &seal, &mut |_| Ok(()))
                .unwrap();
            (info.id, token)
        })
        .collect();
    let small = PgKeyStore::open(&target)
        .unwrap()
        .with_max_cached(2)
        .unwrap()
        .watch()
        .unwrap();
    assert!(!small.holds_every_key());
    let all = PgKeyStore::open(&target)
        .unwrap()
        .with_max_cached(3)
        .unwrap();
    assert!(all.holds_every_key());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for (id, token) in &tokens {
            assert_eq!(small.authenticate_token(token, 0).unwrap().id, *id);
            assert_eq!(
                small.sealed_secret(id).unwrap().as_deref(),
                Some("sealed-32")
            );
        }
        let token = &tokens[0].1;
        let wrong = format!("{}x", &token[..token.len() - 1]);
        assert_eq!(
            small.authenticate_token(&wrong, 0).err(),
            Some(AuthFailure::Invalid)
        );
    });
    // A key revoked elsewhere is refused at once: it is read afresh each time.
    let id = &tokens[0].0;
    assert!(admin.revoke_key(id, &mut |_| Ok(())).unwrap());
    rt.block_on(async {
        assert_eq!(small.usable_key(id, 0).err(), Some(AuthFailure::Revoked));
    });
}

#[test]
fn a_key_created_and_revoked_through_one_home_reaches_every_replica_within_a_second() {
    let (_, target) = database();
    let admin = PgKeyStore::open(&target).unwrap();
    let replicas: Vec<PgKeyStore> = (0..3)
        .map(|_| PgKeyStore::open(&target).unwrap().watch().unwrap())
        .collect();
    let (info, token) = admin
        .create_key(&new_key(), &seal, &mut |_| Ok(()))
        .unwrap();
    for r in &replicas {
        until(Duration::from_secs(1), || {
            r.authenticate_token(&token, 0).is_ok()
        });
        assert_eq!(
            r.sealed_secret(&info.id).unwrap().as_deref(),
            Some("sealed-32")
        );
    }
    assert!(admin.revoke_key(&info.id, &mut |_| Ok(())).unwrap());
    let revoked_at = Instant::now();
    for r in &replicas {
        until(Duration::from_secs(1), || {
            matches!(r.authenticate_token(&token, 0), Err(AuthFailure::Revoked))
        });
        assert_eq!(r.usable_key(&info.id, 0).err(), Some(AuthFailure::Revoked));
    }
    assert!(
        revoked_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        revoked_at.elapsed()
    );
}

#[test]
fn an_unreachable_database_refuses_every_key_then_service_resumes() {
    let (url, target) = database();
    let db_name = url.rsplit_once('/').unwrap().1.to_owned();
    let server = Target::parse(
        &format!("{}/postgres", url.rsplit_once('/').unwrap().0),
        Origin::Environment,
    )
    .unwrap();
    let admin = PgKeyStore::open(&target).unwrap();
    let (_, token) = admin
        .create_key(&new_key(), &seal, &mut |_| Ok(()))
        .unwrap();
    let replica = PgKeyStore::open(&target).unwrap().watch().unwrap();
    assert!(replica.authenticate_token(&token, 0).is_ok());
    // The database refuses connections and every session on it is ended.
    let mut su = server.connect().unwrap();
    su.batch_execute(&format!(
        "ALTER DATABASE {db_name} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = '{db_name}' AND pid <> pg_backend_pid();"
    ))
    .unwrap();
    let took = until(MAX_STALE * 3, || {
        matches!(
            replica.authenticate_token(&token, 0),
            Err(AuthFailure::Unavailable)
        )
    });
    assert!(took <= MAX_STALE + Duration::from_millis(500), "{took:?}");
    // A wrong token is no better: nothing is accepted on old data.
    assert_eq!(
        replica.authenticate_token("rk_0123456789abcdef_x", 0).err(),
        Some(AuthFailure::Unavailable)
    );
    su.batch_execute(&format!("ALTER DATABASE {db_name} ALLOW_CONNECTIONS true"))
        .unwrap();
    until(Duration::from_secs(5), || {
        replica.authenticate_token(&token, 0).is_ok()
    });
}

/// The gateway reloads its models (and so opens the shared registry) on tokio's blocking
/// pool: the synchronous driver must work there.
#[test]
fn the_synchronous_driver_works_on_the_gateways_blocking_threads() {
    let (_, target) = database();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let keys = rt
        .block_on(async move {
            tokio::task::spawn_blocking(move || {
                PgKeyStore::open(&target).map(|s| s.keys().map(|k| k.len()))
            })
            .await
        })
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(keys, 0);
}
