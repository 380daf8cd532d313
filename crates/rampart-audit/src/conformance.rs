//! What every [`AuditSink`] must do, as a suite a new backend (a SIEM forwarder, a database
//! table) runs against itself: [`run`] on an empty sink.

use crate::record::hash_of;
use crate::{Action, AuditError, AuditSink, Event, MAX_RECORD_BYTES, Outcome, Record};

/// The case of a conformance suite that failed, and how (this suite's, and the other storage
/// traits' suites that can depend on this crate).
#[derive(Debug, thiserror::Error)]
#[error("conformance: {case}: {detail}")]
pub struct Failure {
    /// The case.
    pub case: &'static str,
    /// What happened instead.
    pub detail: String,
}

impl Failure {
    /// A failure of `case`, with what happened instead.
    #[must_use]
    pub fn new(case: &'static str, detail: impl Into<String>) -> Self {
        Self {
            case,
            detail: detail.into(),
        }
    }
}

fn fail(case: &'static str, detail: impl Into<String>) -> Failure {
    Failure::new(case, detail)
}

/// Checks one stored record against the event and its predecessor.
fn check(case: &'static str, r: &Record, prev: Option<&Record>) -> Result<(), Failure> {
    if r.hash != hash_of(&r.to_value()) {
        return Err(fail(
            case,
            format!("record {} does not hash to its hash", r.seq),
        ));
    }
    if let Some(p) = prev
        && (r.seq != p.seq + 1 || r.prev != p.hash)
    {
        return Err(fail(
            case,
            format!(
                "record {} (prev {}) does not follow record {} (hash {})",
                r.seq, r.prev, p.seq, p.hash
            ),
        ));
    }
    Ok(())
}

/// Runs every case against an empty sink.
///
/// # Errors
/// The first case the sink fails.
pub fn run(sink: &dyn AuditSink) -> Result<(), Failure> {
    // An append returns the stored record: what was asked, chained, hashed.
    let first = sink
        .append(
            Event::new("conformance", Action::Verify, Outcome::Ok)
                .subject_path("model")
                .detail("files", 3),
        )
        .map_err(|e| fail("append", e.to_string()))?;
    if first.seq != 1 || first.action != "verify" || first.actor != "conformance" {
        return Err(fail("append", format!("stored {first:?}")));
    }
    check("append", &first, None)?;
    let second = sink
        .append(Event::new("conformance", Action::Sign, Outcome::Denied))
        .map_err(|e| fail("append", e.to_string()))?;
    check("chain", &second, Some(&first))?;
    // An oversized event is refused, and refusing it stores nothing.
    let huge = "x".repeat(MAX_RECORD_BYTES + 1);
    match sink.append(Event::new("conformance", Action::Sign, Outcome::Ok).detail("big", huge)) {
        Err(AuditError::RecordTooLarge { .. }) => {}
        other => return Err(fail("oversized event", format!("{other:?}"))),
    }
    // Appends from several threads at once form one chain without gaps or repeats.
    let mut all: Vec<Record> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                scope.spawn(move || {
                    (0..16)
                        .map(|i| {
                            sink.append(
                                Event::new("conformance", Action::Scan, Outcome::Ok)
                                    .detail("thread", t)
                                    .detail("i", i),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect::<Result<Vec<_>, _>>()
    })
    .map_err(|e| fail("concurrent appends", e.to_string()))?;
    if all.len() != 64 {
        return Err(fail(
            "concurrent appends",
            format!("{} records of 64", all.len()),
        ));
    }
    all.sort_by_key(|r| r.seq);
    let mut prev = second;
    for r in &all {
        check("concurrent appends", r, Some(&prev))?;
        prev = r.clone();
    }
    Ok(())
}
