//! Against a real PostgreSQL server (started by `rampart_postgres::testing`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rampart_postgres::{Origin, PgError, Target, migrate, testing};

#[test]
fn migrations_apply_once_in_order_and_newer_tables_are_refused() {
    let url = testing::fresh_database().unwrap();
    let target = Target::parse(&url, Origin::Environment).unwrap();
    let mut c = target.connect().unwrap();
    let steps = [
        "CREATE TABLE t (a INTEGER)",
        "ALTER TABLE t ADD COLUMN b TEXT",
    ];
    migrate(&mut c, "demo", &steps[..1]).unwrap();
    migrate(&mut c, "demo", &steps).unwrap();
    // Applied again: nothing to do (a second CREATE TABLE would fail).
    migrate(&mut c, "demo", &steps).unwrap();
    c.execute("INSERT INTO t (a, b) VALUES (1, 'x')", &[])
        .unwrap();
    // Another component's version is its own.
    migrate(&mut c, "other", &["CREATE TABLE u (a INTEGER)"]).unwrap();
    match migrate(&mut c, "demo", &steps[..1]) {
        Err(PgError::Newer {
            have: 2, know: 1, ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn replicas_starting_together_migrate_once() {
    let url = testing::fresh_database().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut c = Target::parse(&url, Origin::Environment)
                    .unwrap()
                    .connect()
                    .unwrap();
                migrate(&mut c, "race", &["CREATE TABLE r (a INTEGER)"])
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
}

#[test]
fn a_wrong_password_is_a_connect_error_that_does_not_show_it() {
    let url = testing::fresh_database().unwrap();
    let (head, tail) = url.split_once('@').unwrap();
    let user = head.rsplit_once(':').unwrap().0;
    let wrong = format!("{user}:wrong-secret@{tail}");
    let e = Target::parse(&wrong, Origin::Environment)
        .unwrap()
        .connect()
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("cannot connect") && !e.contains("wrong-secret"),
        "{e}"
    );
}

#[test]
fn a_server_that_does_not_answer_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = Target::parse(
        &format!("postgres://nobody@127.0.0.1:{port}/x"),
        Origin::File,
    )
    .unwrap()
    .connect()
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
}
