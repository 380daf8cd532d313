//! `rampart guard check`: the guardrails on one text or a JSONL batch.

use rampart_audit::Action;
use std::io::{BufRead as _, Read as _};

use rampart_audit::Outcome;
use rampart_guard::Verdict;
use serde_json::{Value, json};

use crate::cli::{Format, GuardArgs, GuardCommand};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

/// Most bytes read from stdin or one JSONL line.
const MAX_TEXT: u64 = 1 << 20;

fn human(v: &Verdict, id: Option<&str>) -> String {
    let mut t = String::new();
    if let Some(id) = id {
        t.push_str(&format!("{id}: "));
    }
    t.push_str(if v.blocked { "BLOCKED" } else { "ok" });
    t.push_str(&format!(" (score {:.2})\n", v.score));
    for f in &v.findings {
        t.push_str(&format!(
            "  {} {}{}: {}\n",
            f.rail,
            f.rule,
            f.family.map(|x| format!(" [{x}]")).unwrap_or_default(),
            f.detail
        ));
    }
    if let Some(r) = &v.refusal {
        t.push_str(&format!("  refusal: {r}\n"));
    }
    if let Some(r) = &v.redacted {
        t.push_str(&format!("  redacted: {r}\n"));
    }
    t
}

fn read_limited(mut r: impl std::io::Read, what: &str) -> Result<String, CliError> {
    let mut buf = Vec::new();
    r.by_ref()
        .take(MAX_TEXT + 1)
        .read_to_end(&mut buf)
        .map_err(CliError::internal)?;
    if buf.len() as u64 > MAX_TEXT {
        return Err(CliError::input(anyhow::anyhow!(
            "{what}: more than {MAX_TEXT} bytes; split it"
        )));
    }
    String::from_utf8(buf).map_err(|_| CliError::input(anyhow::anyhow!("{what}: not UTF-8")))
}

pub fn run(ctx: &Ctx, args: &GuardArgs) -> Result<Status, CliError> {
    let GuardCommand::Check {
        text,
        jsonl,
        output: as_output,
        canary,
    } = &args.command;
    let guard = rampart_serve::home::guard_for(&ctx.policy_or_default()?.guard)?;
    let check = |t: &str| {
        if *as_output {
            guard.check_output(t, canary.as_deref())
        } else {
            guard.check_input(t)
        }
    };
    let rail = if *as_output { "output" } else { "input" };
    let mut blocked = 0usize;
    let mut checked = 0usize;
    let mut rules = std::collections::BTreeSet::new();
    if let Some(path) = jsonl {
        let reader: Box<dyn std::io::BufRead> = if path == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            Box::new(std::io::BufReader::new(
                std::fs::File::open(path)
                    .map_err(|e| CliError::input(anyhow::anyhow!("{path}: {e}")))?,
            ))
        };
        let mut out = String::new();
        for (n, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(|e| CliError::input(anyhow::anyhow!("{path}: {e}")))?;
            if line.len() as u64 > MAX_TEXT {
                return Err(CliError::input(anyhow::anyhow!(
                    "{path} line {}: more than {MAX_TEXT} bytes",
                    n + 1
                )));
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let item: Value = serde_json::from_slice(&line).map_err(|e| {
                CliError::input(anyhow::anyhow!("{path} line {}: not JSON: {e}", n + 1))
            })?;
            let (id, t) = match &item {
                Value::String(s) => (json!(n + 1), s.clone()),
                Value::Object(o) => match o.get("text").and_then(Value::as_str) {
                    Some(t) => (o.get("id").cloned().unwrap_or(json!(n + 1)), t.to_owned()),
                    None => {
                        return Err(CliError::input(anyhow::anyhow!(
                            "{path} line {}: an object needs a \"text\" string",
                            n + 1
                        )));
                    }
                },
                _ => {
                    return Err(CliError::input(anyhow::anyhow!(
                        "{path} line {}: expected a JSON string or {{\"id\": …, \"text\": …}}",
                        n + 1
                    )));
                }
            };
            let v = check(&t);
            checked += 1;
            if v.blocked {
                blocked += 1;
                rules.extend(v.findings.iter().map(|f| f.rule.clone()));
            }
            match ctx.format {
                Format::Human => out.push_str(&human(&v, Some(&id.to_string()))),
                _ => {
                    let mut o = serde_json::to_value(&v).map_err(CliError::internal)?;
                    if let Value::Object(m) = &mut o {
                        m.insert("id".into(), id);
                    }
                    out.push_str(&o.to_string());
                    out.push('\n');
                }
            }
        }
        output::product(&out)?;
    } else {
        let t = match text.as_deref() {
            None | Some("-") => read_limited(std::io::stdin().lock(), "stdin")?,
            Some(t) => t.to_owned(),
        };
        let v = check(&t);
        checked = 1;
        if v.blocked {
            blocked = 1;
            rules.extend(v.findings.iter().map(|f| f.rule.clone()));
        }
        match ctx.format {
            Format::Human => output::print(&human(&v, None))?,
            _ => output::print_json(&serde_json::to_value(&v).map_err(CliError::internal)?)?,
        }
    }
    // Blocks are audited by rule and rail, never with the text.
    if blocked > 0 {
        ctx.audit(
            ctx.event(Action::GuardCheck, Outcome::Denied)
                .subject_path(rail)
                .detail("checked", checked)
                .detail("blocked", blocked)
                .detail("rules", rules.into_iter().collect::<Vec<_>>()),
        )?;
        return Ok(Status::Findings);
    }
    Ok(Status::Ok)
}
