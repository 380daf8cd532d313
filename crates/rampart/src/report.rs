//! The reports more than one command prints: a validation report and a poisoning report, as
//! human text or JSON.

use std::path::Path;

use rampart_data::poison::{PoisonReport, Severity};
use rampart_data::validate::Report;
use serde_json::json;

use crate::cli::Format;
use crate::context::Ctx;
use crate::error::CliError;
use crate::output;

/// Prints a validation report.
pub fn validation(
    ctx: &Ctx,
    path: &Path,
    schema_digest: &str,
    report: &Report,
    clean: Option<&Path>,
    quarantine: Option<&Path>,
) -> Result<(), CliError> {
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "file": path,
            "schema": schema_digest,
            "report": report,
            "clean": clean,
            "quarantine": quarantine,
        })),
        Format::Human => {
            let mut text = format!(
                "{}: {} rows read = {} accepted + {} rejected ({})\n",
                path.display(),
                report.rows_read,
                report.accepted,
                report.rejected,
                if report.reconciled {
                    "reconciled"
                } else {
                    "NOT RECONCILED"
                }
            );
            if !report.by_column.is_empty() {
                text.push_str("violations by column and rule:\n");
                let width = report.by_column.keys().map(String::len).max().unwrap_or(0);
                for (col, rules) in &report.by_column {
                    for (rule, n) in rules {
                        text.push_str(&format!("  {col:width$}  {rule:10} {n}\n"));
                    }
                }
            }
            if let Some(c) = clean {
                text.push_str(&format!("clean rows → {}\n", c.display()));
            }
            if let Some(q) = quarantine {
                text.push_str(&format!("rejected rows → {}\n", q.display()));
            } else if report.rejected > 0 {
                text.push_str("rejected rows were counted but not kept: pass --quarantine FILE to keep them\n");
            }
            output::print(&text)
        }
    }
}

/// Prints a poisoning report.
pub fn poison(
    ctx: &Ctx,
    path: &Path,
    report: &PoisonReport,
    threshold: Severity,
) -> Result<(), CliError> {
    let fired = report.worst() >= threshold;
    match ctx.format {
        Format::Json | Format::Sarif => {
            let mut v = serde_json::to_value(report)
                .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
            if let Some(m) = v.as_object_mut() {
                m.insert("fail_on".into(), json!(threshold));
                m.insert("fired".into(), json!(fired));
            }
            output::print_json(&v)
        }
        Format::Human => {
            let mut s = format!(
                "{}: {} rows{}, label {}\n",
                path.display(),
                report.rows,
                report
                    .reference_rows
                    .map_or_else(String::new, |r| format!(" against a reference of {r}")),
                report.label
            );
            for c in &report.checks {
                let sev = serde_json::to_value(c.severity)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                s.push_str(&format!("  {sev:<6} {:<24} {}\n", c.id, c.summary));
            }
            s.push_str(if fired {
                "poisoning checks fired at or above the policy severity\n"
            } else {
                "no check at or above the policy severity\n"
            });
            output::print(&s)
        }
    }
}
