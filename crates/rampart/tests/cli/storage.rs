//! `[storage] registry = "postgres://…"`: two homes (two machines) sharing one registry on a
//! real PostgreSQL server (`rampart_postgres::testing`), racing promotions between them,
//! `rampart storage check`, and URLs that must be refused.

use serde_json::Value;

use crate::Scratch;
use crate::model::{copy_dir, setup, train};

/// A fresh database: (URL without the password, the password).
fn database() -> (String, String) {
    let url = rampart_postgres::testing::fresh_database().unwrap();
    let (head, tail) = url.split_once('@').unwrap();
    let (user, password) = head.rsplit_once(':').unwrap();
    (format!("{user}@{tail}"), password.to_owned())
}

fn use_postgres(s: &Scratch, url: &str) {
    let p = s.home().join("rampart.toml");
    let mut policy = std::fs::read_to_string(&p).unwrap();
    policy.push_str(&format!("\n[storage]\nregistry = \"{url}\"\n"));
    std::fs::write(&p, policy).unwrap();
}

/// (exit code, stdout, stderr) with the database password in the environment.
fn run(s: &Scratch, password: &str, args: &[&str]) -> (i32, String, String) {
    run_with(s, &[("PGPASSWORD", password.to_owned())], args)
}

fn json(s: &Scratch, password: &str, args: &[&str]) -> Value {
    let mut full = vec!["--format", "json"];
    full.extend_from_slice(args);
    let (code, out, err) = run(s, password, &full);
    assert_eq!(code, 0, "rampart {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Two homes ("machines") on one database, B trusting A's key; A has a trained run.
struct Machines {
    a: Scratch,
    b: Scratch,
    password: String,
    run_dir: std::path::PathBuf,
}

fn two_machines() -> Machines {
    let (url, password) = database();
    let (a, ds) = setup();
    let run_dir = train(&a, &ds, "a", "5");
    let b = Scratch::init();
    a.rampart(&["keys", "export-public", "-o", "a.pub.pem"])
        .assert()
        .success();
    let a_key = a.path().join("a.pub.pem");
    b.rampart(&["trust", "add", a_key.to_str().unwrap(), "--name", "a"])
        .assert()
        .success();
    use_postgres(&a, &url);
    use_postgres(&b, &url);
    Machines {
        a,
        b,
        password,
        run_dir,
    }
}

#[test]
fn two_homes_share_one_postgres_registry_and_their_promotions_serialise() {
    let Machines {
        a,
        b,
        password,
        run_dir,
    } = two_machines();

    // Machine A registers; machine B sees the version, with the same digests.
    let v = json(
        &a,
        &password,
        &[
            "model",
            "register",
            run_dir.to_str().unwrap(),
            "--name",
            "credit",
        ],
    );
    let seen = json(&b, &password, &["model", "show", "credit@1"]);
    assert_eq!(seen["root"], v["root"]);
    assert_eq!(seen["stage"], "none");
    // Without the password nothing is read (and nothing falls back to the local SQLite).
    let (code, _, err) = b.run(&["model", "show", "credit@1"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("password"), "{err}");

    // Blobs are still per home (object storage is not built): B gets A's, by digest.
    copy_dir(
        &a.home().join("registry/blobs"),
        &b.home().join("registry/blobs"),
    );
    // The same promotion from both machines at once: exactly one wins, the other is told why.
    let spawn = |s: &Scratch| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("rampart"));
        c.current_dir(s.path())
            .env("PGPASSWORD", &password)
            .args(["model", "promote", "credit@1", "--to", "staging"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let (x, y) = (spawn(&a), spawn(&b));
    let (x, y) = (x.wait_with_output().unwrap(), y.wait_with_output().unwrap());
    let codes = [x.status.code().unwrap(), y.status.code().unwrap()];
    assert!(codes.contains(&0) && codes.contains(&1), "{codes:?}");
    let loser = if codes[0] == 1 { &x } else { &y };
    let why = String::from_utf8_lossy(&loser.stderr);
    assert!(why.contains("already in staging"), "{why}");
    let h = json(&a, &password, &["model", "history", "credit"]);
    let into_staging = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["to"] == "staging")
        .count();
    assert_eq!(into_staging, 1, "{h}");
    // B checks the version out from its blobs, each verified.
    let (code, _, err) = run(
        &b,
        &password,
        &["model", "checkout", "credit@staging", "--output", "out"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(b.path().join("out").read_dir().unwrap().count() > 0);

    // Each machine's audit log has its own side: A the registration, the winner the move.
    let a_log = std::fs::read_to_string(a.home().join("audit/audit.jsonl")).unwrap();
    assert!(a_log.contains("model.register"), "{a_log}");

    // `storage check` names the backend, without the password, and proves it may write.
    let check = json(&b, &password, &["storage", "check"]);
    assert_eq!(check["registry"]["backend"], "postgres");
    assert_eq!(check["registry"]["models"], 1);
    assert!(!check.to_string().contains(&password), "{check}");
    let (code, out, _) = run(&b, &password, &["storage", "check"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("PostgreSQL") && out.contains("may write"),
        "{out}"
    );
}

#[test]
fn storage_urls_that_must_not_be_used_are_refused_by_name() {
    let s = Scratch::init();
    // A password in rampart.toml.
    use_postgres(&s, "postgres://alice:hunter2@127.0.0.1:5432/reg");
    let (code, _, err) = s.run(&["model", "list"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("PGPASSWORD") && !err.contains("hunter2"),
        "{err}"
    );
    // sslmode=prefer, and parts not built yet: refused, not ignored.
    for (bad, says) in [
        (
            "registry = \"postgres://alice@db.example/reg?sslmode=prefer\"",
            "sslmode=require",
        ),
        (
            "blobs = \"s3://AKIAEXAMPLE:s3cr3tvalue@bucket/models\"",
            "storage.blobs",
        ),
        (
            "shared_state = \"redis://:hunter2@127.0.0.1:6379/0\"",
            "RAMPART_STORAGE_SHARED_STATE",
        ),
        ("siem = \"udp://127.0.0.1:514\"", "syslog+tls://HOST:PORT"),
    ] {
        let s = Scratch::init();
        let p = s.home().join("rampart.toml");
        let mut policy = std::fs::read_to_string(&p).unwrap();
        policy.push_str(&format!("\n[storage]\n{bad}\n"));
        std::fs::write(&p, policy).unwrap();
        let (code, _, err) = s.run(&["storage", "check"]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains(says), "{bad}: {err}");
        assert!(
            !err.contains("s3cr3tvalue") && !err.contains("hunter2"),
            "{err}"
        );
    }
    // A server that is not there: exit 3 naming it, with what to check.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = Scratch::init();
    use_postgres(&s, &format!("postgres://alice@127.0.0.1:{port}/reg"));
    let (code, _, err) = s.run(&["storage", "check"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("PGPASSWORD"),
        "{err}"
    );
    // The home's default, checked too.
    let s = Scratch::init();
    let check = s.json(&["storage", "check"]);
    assert_eq!(check["registry"]["backend"], "sqlite");
}

#[test]
fn every_command_ships_its_audit_records_to_the_siem_and_storage_check_probes_it() {
    let collector = rampart_audit::siem::testing::Rsyslog::new(true).unwrap();
    let s = Scratch::init();
    let p = s.home().join("rampart.toml");
    let mut policy = std::fs::read_to_string(&p).unwrap();
    policy.push_str(&format!("\n[storage]\nsiem = \"{}\"\n", collector.url()));
    std::fs::write(&p, policy).unwrap();
    let check = s.json(&["storage", "check"]);
    assert_eq!(check["siem"]["backend"], "syslog", "{check}");
    // A refused command and an allowed one: both records arrive, as in the local log.
    let (code, _, _) = s.run(&["model", "show", "nothing@1"]);
    assert_ne!(code, 0);
    let (code, out, err) = s.run(&["audit", "verify"]);
    assert_eq!(code, 0, "{out}{err}");
    let local: Vec<Value> = std::fs::read_to_string(s.home().join("audit/audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shipped = collector.wait_for(local.len(), std::time::Duration::from_secs(5));
    let shipped_hashes: Vec<Value> = shipped
        .iter()
        .map(|f| serde_json::from_str::<Value>(f[4].trim()).unwrap()["hash"].clone())
        .collect();
    // Every record written since the SIEM was configured (init's came before it).
    for record in local.iter().filter(|r| r["action"] != "home.init") {
        assert!(
            shipped_hashes.contains(&record["hash"]),
            "{} not shipped: {shipped:?}",
            record["action"]
        );
    }
    assert!(
        shipped.iter().any(|f| f[1] == "audit.verify"),
        "{shipped:?}"
    );
    // A collector that is not there: storage check fails, naming it.
    let port = collector.port;
    drop(collector);
    let (code, _, err) = s.run(&["storage", "check"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("localhost:{port}")) && err.contains("siem"),
        "{err}"
    );
}

#[test]
fn a_key_revoked_through_one_home_is_refused_by_every_gateway_within_a_second() {
    use crate::serve::{JSON, auth, curl, infer_body, start_env};
    let Machines {
        a,
        b,
        password,
        run_dir,
    } = two_machines();
    json(
        &a,
        &password,
        &[
            "model",
            "register",
            run_dir.to_str().unwrap(),
            "--name",
            "credit",
        ],
    );
    let (code, _, err) = run(
        &a,
        &password,
        &["model", "promote", "credit@1", "--to", "staging"],
    );
    assert_eq!(code, 0, "{err}");
    copy_dir(
        &a.home().join("registry/blobs"),
        &b.home().join("registry/blobs"),
    );
    // A key made on A; gateways on both machines serve the version the shared registry holds.
    let key = json(&a, &password, &["apikey", "create"]);
    let (token, id) = (
        key["token"].as_str().unwrap().to_owned(),
        key["key"]["id"].as_str().unwrap().to_owned(),
    );
    let env = [("PGPASSWORD", password.as_str())];
    let gateways = [
        start_env(&a, &["--model", "credit@staging"], &env),
        start_env(&b, &["--model", "credit@staging"], &env),
    ];
    let ask = |addr: &str| {
        curl(
            "POST",
            &format!("http://{addr}/v2/models/credit/infer"),
            &[auth(&token), JSON.into()],
            Some(&infer_body(&[[0.1, 0.2]])),
        )
    };
    for g in &gateways {
        let (status, _, body) = ask(&g.addr);
        assert_eq!(status, 200, "{body}");
    }
    // Revoked through B's home: every gateway refuses it within a second.
    let (code, _, err) = run(&b, &password, &["apikey", "revoke", &id]);
    assert_eq!(code, 0, "{err}");
    let revoked = std::time::Instant::now();
    for g in &gateways {
        loop {
            let (status, _, body) = ask(&g.addr);
            if status == 401 {
                assert!(body.contains("revoked"), "{body}");
                break;
            }
            assert_eq!(status, 200, "{body}");
            assert!(
                revoked.elapsed() < std::time::Duration::from_secs(1),
                "still accepted {:?} after the revocation",
                revoked.elapsed()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    // The list on either home shows it revoked.
    let keys = json(&a, &password, &["apikey", "list"]);
    assert_eq!(keys["keys"][0]["revoked"], true, "{keys}");
}

#[test]
fn a_home_log_cut_back_after_anchoring_fails_audit_verify_anchor() {
    let (url, password) = database();
    let s = Scratch::init();
    let p = s.home().join("rampart.toml");
    let mut policy = std::fs::read_to_string(&p).unwrap();
    policy.push_str(&format!("\n[storage]\naudit_anchor = \"{url}\"\n"));
    std::fs::write(&p, policy).unwrap();
    std::fs::create_dir_all(s.path().join("data")).unwrap();
    for args in [
        &["data", "roots", "add", "data"][..],
        &["keys", "export-public", "-o", "me.pub.pem"],
        &["audit", "show"],
    ] {
        let (code, _, err) = run(&s, &password, args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    let report = json(&s, &password, &["audit", "verify", "--anchor"]);
    // `init` signed its checkpoint before the anchor was configured; every later one is there.
    assert!(
        report["anchor"]["anchored"].as_u64().unwrap() >= 2,
        "{report}"
    );
    assert!(report["log"]["failure"].is_null(), "{report}");
    let check = json(&s, &password, &["storage", "check"]);
    assert_eq!(check["audit_anchor"]["backend"], "postgres", "{check}");
    assert!(
        check["audit_anchor"]["anchored"].as_u64().unwrap() >= 2,
        "{check}"
    );
    // Without the database the anchor cannot be checked: an error, not a pass.
    let (code, _, err) = s.run(&["audit", "verify", "--anchor"]);
    assert_ne!(code, 0, "{err}");
    assert_ne!(code, 1, "{err}");

    // Cut back to the first two records, and the local checkpoints with them.
    let seq = |l: &str| {
        serde_json::from_str::<Value>(l).unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    for file in ["audit/audit.jsonl", "audit/checkpoints.jsonl"] {
        let path = s.home().join(file);
        let kept: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| seq(l) <= 2)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, kept).unwrap();
    }
    let (code, out, err) = run(&s, &password, &["audit", "verify"]);
    assert_eq!(code, 0, "the cut log is intact on its own: {out}{err}");
    let (code, out, err) = run(&s, &password, &["audit", "verify", "--anchor"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("after it was anchored"), "{out}");
}

/// A home with a production model whose gateways share `redis`.
fn home_with_redis(redis: &rampart_serve::shared::testing::Server) -> Scratch {
    let s = crate::serve::home_with_production_model();
    let p = s.home().join("rampart.toml");
    let mut policy = std::fs::read_to_string(&p).unwrap();
    policy.push_str(&format!(
        "\n[storage]\nshared_state = \"{}\"\n",
        redis.url()
    ));
    std::fs::write(&p, policy).unwrap();
    s
}

#[test]
fn three_gateways_sharing_redis_hold_one_limit_refuse_replays_and_fail_closed_without_it() {
    use crate::serve::{JSON, auth, curl, infer_body, key, send_signed, start};
    let mut redis = rampart_serve::shared::testing::Server::new().unwrap();
    let s = home_with_redis(&redis);
    let slow = key(&s, &["--rate", "1", "--burst", "10"]);
    let replicas = [start(&s, &[]), start(&s, &[]), start(&s, &[])];
    let body = infer_body(&[[10.0, 5.0]]);
    let ask = |i: usize, token: &str| {
        curl(
            "POST",
            &format!("http://{}/v2/models/credit/infer", replicas[i % 3].addr),
            &[auth(token), JSON.into()],
            Some(&body),
        )
        .0
    };
    // One key's requests spread over three replicas: one limit, not three.
    let started = std::time::Instant::now();
    let codes: Vec<u16> = (0..45).map(|i| ask(i, &slow)).collect();
    let allowed = codes.iter().filter(|c| **c == 200).count();
    let one_alone = 10 + usize::try_from(started.elapsed().as_secs()).unwrap() + 1;
    assert!(
        (10..=one_alone).contains(&allowed),
        "{allowed} accepted; one replica alone allows {one_alone}: {codes:?}"
    );
    assert!(codes.iter().all(|c| *c == 200 || *c == 429), "{codes:?}");
    // A signed request accepted by one replica is refused by another.
    let token = key(&s, &[]);
    let id = token.split('_').nth(1).unwrap().to_owned();
    let k = rampart_serve::httpsig::hmac_key(&token);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (code, _, text) = send_signed(
        &replicas[0].addr,
        &replicas[0].addr,
        &id,
        &k,
        (now, "captured"),
        (&body, &body),
    );
    assert_eq!(code, 200, "{text}");
    let (code, _, text) = send_signed(
        &replicas[1].addr,
        &replicas[1].addr,
        &id,
        &k,
        (now, "captured"),
        (&body, &body),
    );
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("replayed"), "{text}");
    // Redis stopped: every replica refuses (fail closed, the default), and says why, once
    // the requests it already took from the shared cells (a lease lasts at most LEASE_FOR)
    // are spent.
    redis.stop();
    std::thread::sleep(rampart_serve::shared::LEASE_FOR + std::time::Duration::from_millis(50));
    for r in &replicas {
        let (code, head, text) = curl(
            "POST",
            &format!("http://{}/v2/models/credit/infer", r.addr),
            &[auth(&token), JSON.into()],
            Some(&body),
        );
        assert_eq!(code, 503, "{text}");
        assert!(head.contains("retry-after: 1"), "{head}");
        assert!(text.contains("shared"), "{text}");
    }
    // Started again: service resumes within about a second.
    redis.start().unwrap();
    let back = std::time::Instant::now();
    for i in 0..3 {
        while ask(i, &token) != 200 {
            assert!(
                back.elapsed() < std::time::Duration::from_secs(3),
                "replica {i} did not resume"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    for r in replicas {
        r.stop();
    }
    let log = std::fs::read_to_string(s.home().join("audit/audit.jsonl")).unwrap();
    assert!(
        log.contains("serve.shared-state"),
        "the refusals are audited"
    );
}

#[test]
fn an_extraction_sweep_spread_over_three_gateways_is_seen_and_held_on_all() {
    use crate::serve::{JSON, auth, curl, infer_body, key, start};
    let redis = rampart_serve::shared::testing::Server::new().unwrap();
    let s = home_with_redis(&redis);
    let token = key(&s, &[]);
    let replicas = [start(&s, &[]), start(&s, &[]), start(&s, &[])];
    let ask = |i: usize, row: [f64; 2]| {
        curl(
            "POST",
            &format!("http://{}/v2/models/credit/infer", replicas[i % 3].addr),
            &[auth(&token), JSON.into()],
            Some(&infer_body(&[row])),
        )
    };
    // A sweep along the second feature, round robin: each gateway alone sees 15 rows (it
    // looks for patterns from 32), each three steps apart.
    let codes: Vec<u16> = (0..45u32)
        .map(|i| {
            let (code, _, text) = ask(i as usize, [10.0, f64::from(i) * 0.15]);
            assert!(code == 200 || code == 429, "{code}: {text}");
            if code == 429 {
                assert!(text.contains("extraction"), "{text}");
            }
            code
        })
        .collect();
    // The 32nd row starts the hold (judged just after its answer). The gateway that saw it
    // refuses the key's next request; each other one learns the hold with the answer about
    // the key's next rows it sends to Redis: at most one more request each (and the few
    // milliseconds the judging takes).
    let first = codes.iter().position(|c| *c == 429).expect("never refused");
    assert!(
        (32..=37).contains(&first),
        "first refused: {first}: {codes:?}"
    );
    let late = codes.iter().skip(32).filter(|c| **c == 200).count();
    assert!(late <= 3, "{late} answered after the hold: {codes:?}");
    assert!(codes[first + 3..].iter().all(|c| *c == 429), "{codes:?}");
    for i in 0..3 {
        let (code, head, text) = ask(i, [10.0, 5.0]);
        assert_eq!(code, 429, "gateway {i}: {text}");
        assert!(head.contains("retry-after"), "{head}");
    }
    // The alert is reported with a later request or within a second.
    let log_path = s.home().join("audit/audit.jsonl");
    let count = |what: &str| {
        std::fs::read_to_string(&log_path)
            .unwrap()
            .lines()
            .filter(|l| l.contains("serve.extraction") && l.contains(what))
            .count()
    };
    let started = std::time::Instant::now();
    while count("a sweep along one feature") == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the alert is not audited"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for r in replicas {
        r.stop();
    }
    assert_eq!(
        count("a sweep along one feature"),
        1,
        "audited once, by the gateway that saw it"
    );
    let refused = codes.iter().filter(|c| **c == 429).count() + 3;
    assert_eq!(
        count("request refused (blocked)"),
        refused,
        "every refusal is audited"
    );
}

/// What `deploy/kubernetes/gateway.yaml` runs, without the image (no container runtime or
/// base image is reachable here): the gateway as uid 65532 with no capabilities and
/// no-new-privileges, its home's policy and blobs read-only and owned by root, only the audit
/// and serve directories and a TMPDIR writable, the secrets in the environment, the registry
/// and API keys in PostgreSQL. It starts, is ready, and answers a key made elsewhere.
#[test]
fn the_gateway_starts_as_the_container_runs_it() {
    use crate::serve::{JSON, auth, curl, infer_body};
    use std::io::BufRead as _;
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs the gateway as another user: run it as root (CI does)"
    );
    let Machines {
        a,
        password,
        run_dir,
        ..
    } = two_machines();
    json(
        &a,
        &password,
        &[
            "model",
            "register",
            run_dir.to_str().unwrap(),
            "--name",
            "credit",
        ],
    );
    let (code, _, err) = run(
        &a,
        &password,
        &["model", "promote", "credit@1", "--to", "staging"],
    );
    assert_eq!(code, 0, "{err}");
    let token = json(&a, &password, &["apikey", "create"])["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The pod's home: what the ConfigMaps and the blob volume hold, root-owned and read-only.
    let pod = tempfile::tempdir().unwrap();
    let home = pod.path().join("home");
    std::fs::create_dir_all(home.join("keys")).unwrap();
    std::fs::copy(a.home().join("rampart.toml"), home.join("rampart.toml")).unwrap();
    std::fs::copy(
        a.home().join("keys/signing.pub.pem"),
        home.join("keys/signing.pub.pem"),
    )
    .unwrap();
    copy_dir(
        &a.home().join("registry/blobs"),
        &home.join("registry/blobs"),
    );
    let writable = ["audit", "serve", "tmp"].map(|d| {
        let p = if d == "tmp" {
            pod.path().join(d)
        } else {
            home.join(d)
        };
        std::fs::create_dir_all(&p).unwrap();
        nix::unistd::chown(
            &p,
            Some(nix::unistd::Uid::from_raw(65532)),
            Some(nix::unistd::Gid::from_raw(65532)),
        )
        .unwrap();
        p
    });
    let status = std::process::Command::new("chmod")
        .args(["-R", "a-w,a+rX"])
        .arg(&home)
        .status()
        .unwrap();
    assert!(status.success());
    for p in &writable {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    }
    std::fs::set_permissions(
        pod.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let secret = |f: &str| std::fs::read_to_string(a.home().join("keys").join(f)).unwrap();
    let mut c = std::process::Command::new("setpriv");
    c.args([
        "--reuid=65532",
        "--regid=65532",
        "--clear-groups",
        "--no-new-privs",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ])
    .arg(assert_cmd::cargo::cargo_bin("rampart"))
    .args([
        "serve",
        "--bind",
        "0.0.0.0:0",
        "--insecure-http",
        "--model",
        "credit@staging",
    ])
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .env("RAMPART_HOME", &home)
    .env("PGPASSWORD", &password)
    .env("RAMPART_SIGNING_KEY", secret("signing.key.pem"))
    .env("RAMPART_AGE_IDENTITY", secret("age.key"))
    .env("TMPDIR", &writable[2])
    .current_dir("/")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let port = loop {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            let _ = child.kill();
            panic!("the gateway exited before listening: {line}");
        }
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .to_owned();
        }
    };
    std::thread::spawn(move || for _ in err.lines() {});
    let base = format!("http://127.0.0.1:{port}");
    let (ready, _, _) = curl("GET", &format!("{base}/v2/health/ready"), &[], None);
    let (code, _, body) = curl(
        "POST",
        &format!("{base}/v2/models/credit/infer"),
        &[auth(&token), JSON.into()],
        Some(&infer_body(&[[0.1, 0.2]])),
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    assert_eq!(ready, 200);
    assert_eq!(code, 200, "{body}");
    // It ran as 65532 and wrote only where it may: its audit records are there.
    let log = std::fs::read_to_string(home.join("audit/audit.jsonl")).unwrap();
    assert!(log.contains("serve.insecure-http"), "{log}");
}

/// (exit code, stdout, stderr) with `env` set.
fn run_with(s: &Scratch, env: &[(&str, String)], args: &[&str]) -> (i32, String, String) {
    let mut c = s.rampart(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn two_homes_share_postgres_and_s3_a_blob_corrupted_in_the_bucket_is_caught() {
    use crate::serve::{JSON, auth, curl, infer_body, start_env};
    let moto = rampart_registry::s3::testing::Moto::new().unwrap();
    let Machines {
        a,
        b,
        password,
        run_dir,
    } = two_machines();
    for s in [&a, &b] {
        let p = s.home().join("rampart.toml");
        let mut policy = std::fs::read_to_string(&p).unwrap();
        policy.push_str("blobs = \"s3://rampart-test/registry\"\n");
        std::fs::write(&p, policy).unwrap();
    }
    let mut env = moto.env();
    env.push(("PGPASSWORD", password.clone()));
    let ok = |s: &Scratch, args: &[&str]| {
        let (code, out, err) = run_with(s, &env, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    // A registers (its blobs go to the bucket); B, with no copy of anything, checks the
    // version out and serves it.
    let v: Value = serde_json::from_str(&ok(
        &a,
        &[
            "--format",
            "json",
            "model",
            "register",
            run_dir.to_str().unwrap(),
            "--name",
            "credit",
        ],
    ))
    .unwrap();
    assert!(
        !a.home().join("registry/blobs").exists(),
        "no blob stays on A"
    );
    ok(&a, &["model", "promote", "credit@1", "--to", "staging"]);
    ok(
        &b,
        &["model", "checkout", "credit@staging", "--output", "out"],
    );
    let token = serde_json::from_str::<Value>(&ok(&a, &["--format", "json", "apikey", "create"]))
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gateway = start_env(&b, &["--model", "credit@staging"], &env_refs);
    let (code, _, body) = curl(
        "POST",
        &format!("http://{}/v2/models/credit/infer", gateway.addr),
        &[auth(&token), JSON.into()],
        Some(&infer_body(&[[0.1, 0.2]])),
    );
    assert_eq!(code, 200, "{body}");
    gateway.stop();
    // `storage check` names both backends and proves it may write to the bucket.
    let check: Value =
        serde_json::from_str(&ok(&b, &["--format", "json", "storage", "check"])).unwrap();
    assert_eq!(check["blobs"]["backend"], "s3", "{check}");
    // Someone with write access to the bucket replaces the model's file.
    let model = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"].as_str().unwrap().ends_with(".safetensors"))
        .unwrap()["sha256"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_owned();
    moto.overwrite(
        &format!("registry/sha256/{}/{model}", &model[..2]),
        b"not the model",
    )
    .unwrap();
    let (code, _, err) = run_with(
        &b,
        &env,
        &["model", "checkout", "credit@staging", "--output", "again"],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("corrupted"), "{err}");
    assert!(!b.path().join("again").join("model").exists());
    let (code, _, err) = {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("rampart"));
        c.current_dir(b.path()).args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--model",
            "credit@staging",
        ]);
        for (k, v) in &env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_ne!(code, 0, "the gateway started on a corrupted blob: {err}");
    assert!(err.contains("corrupted"), "{err}");
}

#[test]
fn a_version_exported_from_a_local_home_imports_into_an_s3_backed_one() {
    let moto = rampart_registry::s3::testing::Moto::new().unwrap();
    let (a, ds) = setup();
    let run_dir = train(&a, &ds, "a", "5");
    a.json(&[
        "model",
        "register",
        run_dir.to_str().unwrap(),
        "--name",
        "credit",
    ]);
    a.json(&["model", "export", "credit@1", "-o", "credit.tar"]);
    a.rampart(&["keys", "export-public", "-o", "a.pub.pem"])
        .assert()
        .success();
    let b = Scratch::init();
    let p = b.home().join("rampart.toml");
    let mut policy = std::fs::read_to_string(&p).unwrap();
    policy.push_str("\n[storage]\nblobs = \"s3://rampart-test/imported\"\n");
    std::fs::write(&p, policy).unwrap();
    let env = moto.env();
    let a_key = a.path().join("a.pub.pem");
    let (code, _, err) = run_with(
        &b,
        &env,
        &["trust", "add", a_key.to_str().unwrap(), "--name", "a"],
    );
    assert_eq!(code, 0, "{err}");
    let archive = a.path().join("credit.tar");
    let (code, _, err) = run_with(&b, &env, &["model", "import", archive.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_with(
        &b,
        &env,
        &["model", "checkout", "credit@1", "--output", "out"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!b.home().join("registry/blobs").exists());
    // And back: exported from the S3-backed home, imported into a local one.
    let (code, _, err) = run_with(&b, &env, &["model", "export", "credit@1", "-o", "back.tar"]);
    assert_eq!(code, 0, "{err}");
    let c = Scratch::init();
    c.rampart(&["trust", "add", a_key.to_str().unwrap(), "--name", "a"])
        .assert()
        .success();
    b.rampart(&["keys", "export-public", "-o", "b.pub.pem"])
        .assert()
        .success();
    let b_key = b.path().join("b.pub.pem");
    c.rampart(&["trust", "add", b_key.to_str().unwrap(), "--name", "b"])
        .assert()
        .success();
    let back = b.path().join("back.tar");
    c.json(&["model", "import", back.to_str().unwrap()]);
    c.json(&["model", "checkout", "credit@1", "--output", "out"]);
}
