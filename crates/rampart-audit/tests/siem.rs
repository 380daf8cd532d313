//! Audit records shipped to a real syslog collector (Debian's rsyslogd, started per test):
//! parsed by it as RFC 5424 (app name, message id, process id, host), over plain TCP and TLS,
//! waiting while the collector is down, and refused TLS to a server the CA does not vouch for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Duration;

use rampart_audit::siem::{Syslog, Target, probe, testing::Rsyslog};
use rampart_audit::{AuditLog, Event, Outcome};

fn ship(dir: &std::path::Path, url: &str, actions: &[&str]) -> (Vec<String>, u64, u64) {
    let log = AuditLog::open(dir)
        .unwrap()
        .with_siem(Syslog::start(Target::parse(url).unwrap()).unwrap());
    let hashes = actions
        .iter()
        .map(|a| {
            let outcome = if a.starts_with("serve") {
                Outcome::Denied
            } else {
                Outcome::Ok
            };
            log.append(Event::new("tester", *a, outcome).detail("n", 1))
                .unwrap()
                .hash
        })
        .collect();
    let siem = log.siem().unwrap();
    let (sent, dropped) = {
        // Dropping the log flushes the forwarder (up to its FLUSH time).
        let started = std::time::Instant::now();
        while siem.sent() < actions.len() as u64 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        (siem.sent(), siem.dropped())
    };
    drop(log);
    (hashes, sent, dropped)
}

fn check(received: &[Vec<String>], actions: &[&str], hashes: &[String]) {
    assert_eq!(received.len(), actions.len(), "{received:?}");
    for ((fields, action), hash) in received.iter().zip(actions).zip(hashes) {
        assert_eq!(fields[0], "rampart");
        assert_eq!(fields[1], *action, "the message id is the action");
        assert_eq!(fields[2], std::process::id().to_string());
        let record: serde_json::Value = serde_json::from_str(fields[4].trim()).unwrap();
        assert_eq!(record["hash"], serde_json::Value::from(hash.as_str()));
        assert_eq!(record["action"], serde_json::Value::from(*action));
    }
}

#[test]
fn records_reach_rsyslog_over_tcp_as_rfc5424() {
    let collector = Rsyslog::new(false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let actions = ["model.register", "serve.auth", "model.promote"];
    let (hashes, sent, dropped) = ship(dir.path(), &collector.url(), &actions);
    assert_eq!((sent, dropped), (3, 0));
    check(
        &collector.wait_for(3, Duration::from_secs(5)),
        &actions,
        &hashes,
    );
    // The local chain is untouched by the shipping.
    let report = rampart_audit::AuditLog::open(dir.path())
        .unwrap()
        .verify(&[])
        .unwrap();
    assert_eq!(report.records, 3);
}

#[test]
fn records_reach_rsyslog_over_tls_and_an_unknown_ca_is_refused() {
    let collector = Rsyslog::new(true).unwrap();
    let target = Target::parse(&collector.url()).unwrap();
    probe(&target).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let actions = ["trust.add", "audit.verify"];
    let (hashes, sent, _) = ship(dir.path(), &collector.url(), &actions);
    assert_eq!(sent, 2);
    check(
        &collector.wait_for(2, Duration::from_secs(5)),
        &actions,
        &hashes,
    );
    // Without the test CA (the web PKI's roots) the server is not trusted: nothing is sent.
    let untrusted = format!("syslog+tls://localhost:{}", collector.port);
    let e = probe(&Target::parse(&untrusted).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot reach the SIEM"), "{e}");
    let other = tempfile::tempdir().unwrap();
    let (_, sent, _) = ship(other.path(), &untrusted, &["data.ingest"]);
    assert_eq!(sent, 0);
    assert_eq!(collector.received().len(), 2);
}

#[test]
fn records_wait_while_the_collector_is_down_and_arrive_when_it_starts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("syslog+tcp://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path())
        .unwrap()
        .with_siem(Syslog::start(Target::parse(&url).unwrap()).unwrap());
    for a in ["registry.export", "registry.import"] {
        log.append(Event::new("tester", a, Outcome::Ok)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(log.siem().unwrap().sent(), 0);
    let collector = Rsyslog::on(port, false).unwrap();
    let got = collector.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(log.siem().unwrap().sent(), 2);
    assert_eq!(log.siem().unwrap().dropped(), 0);
}

/// Log injection: a detail carrying newlines and a forged syslog frame (what a hostile file
/// name or model name could hold) stays inside its one message.
#[test]
fn a_forged_frame_inside_a_record_stays_one_message() {
    let collector = Rsyslog::new(false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path())
        .unwrap()
        .with_siem(Syslog::start(Target::parse(&collector.url()).unwrap()).unwrap());
    let forged = "x\n58 <13>1 2026-01-01T00:00:00Z h rampart 1 trust.add - {\"forged\":true}\n";
    let record = log
        .append(Event::new("tester", "scan.model", Outcome::Denied).detail("path", forged))
        .unwrap();
    drop(log);
    std::thread::sleep(Duration::from_millis(500));
    let got = collector.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0][1], "scan.model");
    let shipped: serde_json::Value = serde_json::from_str(got[0][4].trim()).unwrap();
    assert_eq!(shipped["details"]["path"], serde_json::Value::from(forged));
    assert_eq!(
        shipped["hash"],
        serde_json::Value::from(record.hash.as_str())
    );
}
