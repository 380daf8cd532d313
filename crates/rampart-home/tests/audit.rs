//! The home's audit log checked as a library call: an intact log verifies and the check is
//! recorded; an emptied one is truncated, not clean; records are filtered by action prefix
//! and time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use rampart_audit::{Action, AuditLog, Auditor, Event, FailureKind, Outcome};
use rampart_home::audit::{Filter, verify_log};
use rampart_home::{Home, Session};

#[test]
fn an_intact_log_verifies_and_an_emptied_one_is_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::resolve(Some(&dir.path().join("home")));
    let report = home.init().unwrap();
    let log = AuditLog::open(&home.audit_dir()).unwrap();
    let audit = Auditor::new(Some(&log), "tester");
    report.record(&audit, None).unwrap();
    log.append(Event::new("tester", Action::TrustAdd, Outcome::Ok))
        .unwrap();
    let policy = home.load_policy().unwrap();
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(Some(&log), "tester"),
    };
    let got = verify_log(&s, &log).unwrap();
    assert!(got.failure.is_none(), "{got:?}");
    assert_eq!(got.records, 2);
    let last = log.records().unwrap().last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("audit.verify", "ok")
    );
    // Filters: by action prefix (not a mere string prefix), and by time.
    let only = Filter::new(Some("trust"), None).unwrap();
    let hits: Vec<String> = log
        .records()
        .unwrap()
        .filter(|r| only.matches(r))
        .map(|r| r.action)
        .collect();
    assert_eq!(hits, ["trust.add"]);
    let future = Filter::new(None, Some("2999-01-01")).unwrap();
    assert_eq!(
        log.records().unwrap().filter(|r| future.matches(r)).count(),
        0
    );
    assert!(Filter::new(None, Some("yesterday")).is_err());
    drop(log);
    // Every record deleted: the log is empty, which an initialised home's never is.
    std::fs::write(home.audit_dir().join("audit.jsonl"), "").unwrap();
    let log = AuditLog::open(&home.audit_dir()).unwrap();
    let s = Session {
        home: &home,
        policy: &policy,
        audit: Auditor::new(None, "tester"),
    };
    let got = verify_log(&s, &log).unwrap();
    let failure = got.failure.unwrap();
    assert_eq!(failure.kind, FailureKind::Truncated);
    assert!(failure.reason.contains("deleted"), "{}", failure.reason);
}
