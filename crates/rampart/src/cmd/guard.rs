//! `rampart guard check`: the guardrails on one text or a JSONL batch.

use std::io::Read as _;

use rampart_guard::Verdict;
use rampart_guard::batch::{MAX_TEXT, read_jsonl};
use rampart_guard::rules::Reading;
use rampart_serve::home::{Rail, check_texts_with};
use serde_json::Value;

use crate::cli::{Format, GuardArgs, GuardCommand, TextRole};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

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
        system_prompt,
        role,
    } = &args.command;
    let guard = rampart_serve::home::guard_for(&ctx.policy_or_default()?.guard)?;
    let prompt = match system_prompt {
        Some(path) => {
            let f = std::fs::File::open(path)
                .map_err(|e| CliError::input(anyhow::anyhow!("{}: {e}", path.display())))?;
            read_limited(f, &path.display().to_string())?
        }
        None => String::new(),
    };
    let secret = rampart_guard::Confidential::new(canary.clone().unwrap_or_default(), &prompt);
    if system_prompt.is_some() && secret.print.is_none() {
        return Err(CliError::input(anyhow::anyhow!(
            "{}: too short to recognise a restatement of it (fewer than {} letters and digits, or {} Chinese or Japanese characters)",
            system_prompt
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            rampart_guard::leak::RUN,
            rampart_guard::leak::RUN_CJK
        )));
    }
    let rail = if *as_output {
        Rail::Output(&secret)
    } else {
        Rail::Input(match role {
            TextRole::User => Reading::User,
            TextRole::Document => Reading::Document,
            TextRole::Instructions => Reading::Instructions,
        })
    };
    let audit = ctx.auditor()?;
    let check = |texts: &[&str]| check_texts_with(&audit, &guard, texts, rail);
    let blocked = if let Some(path) = jsonl {
        let reader: Box<dyn std::io::BufRead> = if path == "-" {
            Box::new(std::io::BufReader::new(std::io::stdin()))
        } else {
            Box::new(std::io::BufReader::new(
                std::fs::File::open(path)
                    .map_err(|e| CliError::input(anyhow::anyhow!("{path}: {e}")))?,
            ))
        };
        let items = read_jsonl(reader, path).map_err(CliError::input)?;
        let texts: Vec<&str> = items.iter().map(|i| i.text.as_str()).collect();
        let verdicts = check(&texts)?;
        let mut out = String::new();
        for (item, v) in items.iter().zip(&verdicts) {
            match ctx.format {
                Format::Human => out.push_str(&human(v, Some(&item.id.to_string()))),
                _ => {
                    let mut o = serde_json::to_value(v).map_err(CliError::internal)?;
                    if let Value::Object(m) = &mut o {
                        m.insert("id".into(), item.id.clone());
                    }
                    out.push_str(&format!("{o}\n"));
                }
            }
        }
        output::product(&out)?;
        verdicts.iter().any(|v| v.blocked)
    } else {
        let t = match text.as_deref() {
            None | Some("-") => read_limited(std::io::stdin().lock(), "stdin")?,
            Some(t) => t.to_owned(),
        };
        let verdicts = check(&[&t])?;
        for v in &verdicts {
            match ctx.format {
                Format::Human => output::print(&human(v, None))?,
                _ => output::print_json(v)?,
            }
        }
        verdicts.iter().any(|v| v.blocked)
    };
    Ok(if blocked {
        Status::Findings
    } else {
        Status::Ok
    })
}
