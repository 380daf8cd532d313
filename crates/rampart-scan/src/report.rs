//! Machine-readable reports.
//!
//! **JSON** (`schema` 1, stable: fields are only ever added):
//!
//! ```json
//! {"schema": 1,
//!  "summary": {"files": 2, "flagged": 1, "unreadable": 0, "max_severity": "critical"},
//!  "files": [{"path": "m.pt", "format": "pytorch", "size": 1234,
//!             "findings": [{"rule": "pickle-dangerous-import", "severity": "critical",
//!                           "message": "imports posix.system: a dangerous callable",
//!                           "location": ["archive/data.pkl"], "offset": 87, "import": "posix.system"}],
//!             "imports": [{"location": ["archive/data.pkl"], "offset": 87, "opcode": "GLOBAL",
//!                          "import": "posix.system", "class": "dangerous"}],
//!             "error": null}]}
//! ```
//!
//! `flagged` counts files with a finding at or above the threshold the caller chose; `error`
//! is set (and the file counts as `unreadable`) when a file could not be scanned.
//!
//! **SARIF** 2.1.0: one run, every rule in `tool.driver.rules`, one result per finding with the
//! file as artifact location, the byte offset as `region.byteOffset`, and the container path
//! and import in `properties`. Levels: critical/high → `error`, medium → `warning`, low/info →
//! `note`.

use serde_json::{Value, json};

use crate::finding::{RULES, Severity};
use crate::scan::FileReport;

/// Counts for a set of reports at a threshold.
#[must_use]
pub fn summary(reports: &[FileReport], fail_on: Severity) -> Value {
    let flagged = reports
        .iter()
        .filter(|r| r.max_severity().is_some_and(|s| s >= fail_on))
        .count();
    let unreadable = reports.iter().filter(|r| r.error.is_some()).count();
    let max = reports.iter().filter_map(FileReport::max_severity).max();
    json!({
        "files": reports.len(),
        "flagged": flagged,
        "unreadable": unreadable,
        "max_severity": max.map(Severity::as_str),
        "fail_on": fail_on.as_str(),
    })
}

/// The JSON report.
#[must_use]
pub fn to_json(reports: &[FileReport], fail_on: Severity) -> Value {
    json!({
        "schema": 1,
        "summary": summary(reports, fail_on),
        "files": reports,
    })
}

const fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The SARIF 2.1.0 log.
#[must_use]
pub fn to_sarif(reports: &[FileReport], tool_version: &str) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, sev, desc)| {
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": desc},
                "defaultConfiguration": {"level": level(*sev)},
                "properties": {"severity": sev.as_str()},
            })
        })
        .collect();
    let mut results = Vec::new();
    for r in reports {
        let uri = r.path.to_string_lossy().replace('\\', "/");
        for f in &r.findings {
            let physical = match (f.offset, f.location.is_empty()) {
                (Some(offset), true) => {
                    json!({"artifactLocation": {"uri": uri}, "region": {"byteOffset": offset}})
                }
                _ => json!({"artifactLocation": {"uri": uri}}),
            };
            let index = RULES.iter().position(|x| x.0 == f.rule);
            results.push(json!({
                "ruleId": f.rule,
                "ruleIndex": index,
                "level": level(f.severity),
                "message": {"text": f.message},
                "locations": [{"physicalLocation": physical}],
                "properties": {
                    "severity": f.severity.as_str(),
                    "container_path": f.location,
                    "offset": f.offset,
                    "import": f.import,
                    "format": r.format,
                },
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rampart",
                "semanticVersion": tool_version,
                "informationUri": "https://github.com/rampart-ml/rampart",
                "rules": rules,
            }},
            "artifacts": reports.iter().map(|r| json!({"location": {"uri": r.path.to_string_lossy()}, "length": r.size})).collect::<Vec<_>>(),
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    })
}
