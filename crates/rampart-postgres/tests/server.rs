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

#[test]
fn tls_is_used_and_the_servers_certificate_is_verified() {
    let url = testing::fresh_database().unwrap();
    let ca = testing::ca_file().unwrap();
    let tls_url = format!("{url}?sslmode=require");
    let target = Target::parse(&tls_url, Origin::Environment)
        .unwrap()
        .with_root_cert(&ca);
    assert!(target.tls());
    let mut c = target.connect().unwrap();
    let on: bool = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(on, "the session is not encrypted");
    // Another CA: the server's certificate does not chain to it.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=someone else"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success());
    for target in [
        Target::parse(&tls_url, Origin::Environment)
            .unwrap()
            .with_root_cert(&other),
        // No CA named: the web PKI's roots, which do not include a private CA either.
        Target::parse(&tls_url, Origin::Environment).unwrap(),
    ] {
        let e = target.connect().err().unwrap().to_string();
        assert!(e.to_ascii_lowercase().contains("certificate"), "{e}");
    }
    // A file with no certificate in it is named.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "nothing here").unwrap();
    let e = Target::parse(&tls_url, Origin::Environment)
        .unwrap()
        .with_root_cert(&empty)
        .connect()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no PEM certificate"), "{e}");
}
