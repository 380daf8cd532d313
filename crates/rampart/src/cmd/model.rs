//! `rampart model …`: the registry.

use std::path::Path;

use rampart_crypto::SigningKey;
use rampart_registry::service::{self, Promotion, RegisterRequest};
use rampart_registry::{LineageEntry, Location, Registry, Stage, VersionInfo};
use serde_json::{Value, json};

use crate::cli::{Format, ModelArgs, ModelCommand, TargetStage};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

fn open(ctx: &Ctx) -> Result<Registry, CliError> {
    ctx.home.require().map_err(|e| {
        CliError::from(e).hint("the registry lives in a home: create one with `rampart init`")
    })?;
    let policy = ctx.home.load_policy()?;
    Ok(Location::of(&ctx.home, &policy)?.open()?)
}

fn stage_of(t: TargetStage) -> Stage {
    match t {
        TargetStage::Staging => Stage::Staging,
        TargetStage::Production => Stage::Production,
    }
}

fn version_json(v: &VersionInfo) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

pub fn run(ctx: &Ctx, args: &ModelArgs) -> Result<Status, CliError> {
    match &args.command {
        ModelCommand::Register {
            path,
            name,
            sig,
            provenance,
            metrics,
        } => register(
            ctx,
            path,
            name,
            sig.as_deref(),
            provenance.as_deref(),
            metrics.as_deref(),
        ),
        ModelCommand::Promote { reference, to } => promote(ctx, reference, stage_of(*to)),
        ModelCommand::Approve {
            reference,
            key,
            stage,
        } => approve(ctx, reference, key.as_deref(), stage_of(*stage)),
        ModelCommand::Rollback { name } => rollback(ctx, name),
        ModelCommand::List => list(ctx),
        ModelCommand::Show { reference } => show(ctx, reference),
        ModelCommand::History { name } => history(ctx, name),
        ModelCommand::Checkout { reference, output } => checkout(ctx, reference, output),
        ModelCommand::Export { reference, output } => export(ctx, reference, output),
        ModelCommand::Import { archive, name } => import(ctx, archive, name.as_deref()),
    }
}

fn register(
    ctx: &Ctx,
    path: &Path,
    name: &str,
    sig: Option<&Path>,
    provenance: Option<&Path>,
    metrics: Option<&Path>,
) -> Result<Status, CliError> {
    let mut reg = open(ctx)?;
    let policy = ctx.home.load_policy()?;
    let v = service::register(
        &ctx.session(&policy)?,
        &mut reg,
        &RegisterRequest {
            path,
            name,
            signature: sig,
            provenance,
            metrics,
        },
    )?;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&version_json(&v))?,
        Format::Human => output::print(&format!(
            "registered {}@{} (root sha256:{})\n  files       {}\n  signed by   {}\n  provenance  {}\n  lineage     {}\n",
            v.name,
            v.version,
            v.root,
            v.files
                .iter()
                .map(|f| rampart_train::terminal::escape(&f.name))
                .collect::<Vec<_>>()
                .join(", "),
            v.signer,
            if v.provenance.is_some() {
                "verified, names every file"
            } else {
                "none"
            },
            if v.lineage.is_empty() {
                "none".to_owned()
            } else {
                v.lineage
                    .iter()
                    .map(|l| format!("{} sha256:{}", l.name, l.sha256))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ))?,
    }
    Ok(Status::Ok)
}

fn promote(ctx: &Ctx, reference: &str, to: Stage) -> Result<Status, CliError> {
    let mut reg = open(ctx)?;
    let policy = ctx.home.load_policy()?;
    let store = rampart_ingest::DatasetStore::of(&ctx.home);
    let lineage = |l: &LineageEntry| store.find(&l.sha256).is_some();
    let outcome = service::promote(&ctx.session(&policy)?, &mut reg, reference, to, &lineage)?;
    match outcome {
        Promotion::Refused { version: v, checks } => {
            let failed = checks.iter().filter(|c| !c.ok).count();
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "promoted": false, "model": v.name, "version": v.version, "to": to.as_str(), "gates": checks,
                }))?,
                Format::Human => {
                    let mut text = format!(
                        "{}@{} NOT promoted to {}: {failed} gate(s) failed\n",
                        v.name,
                        v.version,
                        to.as_str(),
                    );
                    for c in &checks {
                        text.push_str(&format!(
                            "  {} {:<10} {}\n",
                            if c.ok { "ok  " } else { "FAIL" },
                            c.gate,
                            c.detail
                        ));
                    }
                    output::print(&text)?;
                }
            }
            Ok(Status::Findings)
        }
        Promotion::Promoted {
            version: v,
            transition: t,
            checks,
        } => {
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "promoted": true, "model": v.name, "version": v.version, "from": t.from, "to": to,
                    "displaced": t.displaced, "gates": checks,
                }))?,
                Format::Human => {
                    let mut text = format!(
                        "{}@{} promoted {} → {}\n",
                        v.name,
                        v.version,
                        t.from.as_str(),
                        to.as_str()
                    );
                    for c in &checks {
                        text.push_str(&format!("  ok   {:<10} {}\n", c.gate, c.detail));
                    }
                    if let Some(d) = t.displaced {
                        text.push_str(&format!("  {}@{d} left {}\n", v.name, to.as_str()));
                    }
                    output::print(&text)?;
                }
            }
            Ok(Status::Ok)
        }
    }
}

fn approve(
    ctx: &Ctx,
    reference: &str,
    key: Option<&Path>,
    stage: Stage,
) -> Result<Status, CliError> {
    let mut reg = open(ctx)?;
    let policy = ctx.home.load_policy()?;
    let signing = match key {
        Some(p) => {
            let text = rampart_home::secure_fs::read_private_file(p)?;
            SigningKey::from_pem(&text).map_err(|e| {
                CliError::input(
                    anyhow::Error::new(e)
                        .context(format!("cannot use {} as a signing key", p.display())),
                )
            })?
        }
        None => ctx.home.signing_key()?.0,
    };
    let outcome = service::approve(&ctx.session(&policy)?, &mut reg, reference, stage, &signing)?;
    let (v, fp) = match outcome {
        service::Approval::Refused {
            version: v, reason, ..
        } => {
            return Err(CliError::verification(anyhow::anyhow!(
                "{}@{}: approval refused: {reason}",
                v.name,
                v.version
            )));
        }
        service::Approval::Approved {
            version,
            approver_key,
        } => (version, approver_key),
    };
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "approved": true, "model": v.name, "version": v.version, "stage": stage, "approver_key": fp,
        }))?,
        Format::Human => output::print(&format!(
            "approved {}@{} for {} with key {fp}\n",
            v.name,
            v.version,
            stage.as_str()
        ))?,
    }
    Ok(Status::Ok)
}

fn rollback(ctx: &Ctx, name: &str) -> Result<Status, CliError> {
    let mut reg = open(ctx)?;
    let policy = ctx.home.load_policy()?;
    let t = match service::rollback(&ctx.session(&policy)?, &mut reg, name)? {
        service::Rollback::Refused { version, reason } => {
            return Err(CliError::verification(anyhow::anyhow!(
                "{name}@{} cannot come back: {reason}",
                version.version
            )));
        }
        service::Rollback::RolledBack(t) => t,
    };
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "model": name, "production": t.version, "archived": t.displaced,
        }))?,
        Format::Human => output::print(&format!(
            "{name}: production is {name}@{} again ({name}@{} archived)\n",
            t.version,
            t.displaced.unwrap_or_default()
        ))?,
    }
    Ok(Status::Ok)
}

fn list(ctx: &Ctx) -> Result<Status, CliError> {
    let reg = open(ctx)?;
    let mut rows = Vec::new();
    for name in reg.names()? {
        let versions = reg.versions(&name)?;
        let at = |s: Stage| versions.iter().find(|v| v.stage == s).map(|v| v.version);
        rows.push(json!({
            "name": name,
            "versions": versions.len(),
            "latest": versions.last().map(|v| v.version),
            "staging": at(Stage::Staging),
            "production": at(Stage::Production),
        }));
    }
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({"models": rows}))?,
        Format::Human => {
            let mut text = format!(
                "{:<32} {:>8} {:>8} {:>10}\n",
                "MODEL", "VERSIONS", "STAGING", "PRODUCTION"
            );
            for r in &rows {
                let f = |k: &str| r[k].as_i64().map_or("-".to_owned(), |v| format!("v{v}"));
                text.push_str(&format!(
                    "{:<32} {:>8} {:>8} {:>10}\n",
                    r["name"].as_str().unwrap_or_default(),
                    r["versions"],
                    f("staging"),
                    f("production")
                ));
            }
            output::product(&text)?;
        }
    }
    Ok(Status::Ok)
}

fn show(ctx: &Ctx, reference: &str) -> Result<Status, CliError> {
    let reg = open(ctx)?;
    let v = reg.resolve(reference)?;
    let approvals = reg.approvals(&v)?;
    let mut j = version_json(&v);
    if let Value::Object(o) = &mut j {
        o.insert(
            "approvals".into(),
            serde_json::to_value(&approvals).unwrap_or_default(),
        );
    }
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&j)?,
        Format::Human => {
            let mut text = format!(
                "{}@{} [{}]\n  root        sha256:{}\n  signed by   {}\n  registered  {} by {} (key {})\n  source      {}\n",
                v.name,
                v.version,
                v.stage.as_str(),
                v.root,
                v.signer,
                v.created_at,
                v.created_by,
                v.registrant_key,
                v.source
            );
            for f in &v.files {
                text.push_str(&format!(
                    "  file        {} ({}, sha256:{})\n",
                    rampart_train::terminal::escape(&f.name),
                    output::bytes(f.size),
                    f.sha256
                ));
            }
            for l in &v.lineage {
                text.push_str(&format!(
                    "  lineage     {} sha256:{}\n",
                    rampart_train::terminal::escape(&l.name),
                    l.sha256
                ));
            }
            if let Some(m) = &v.metrics {
                text.push_str(&format!("  metrics     {}\n", metrics_line(m)));
            }
            for a in &approvals {
                text.push_str(&format!(
                    "  approved    by {} (key {}) at {}\n",
                    a.approver, a.approver_key, a.at
                ));
            }
            output::product(&text)?;
        }
    }
    Ok(Status::Ok)
}

fn history(ctx: &Ctx, name: &str) -> Result<Status, CliError> {
    let reg = open(ctx)?;
    reg.versions(name)?;
    let h = reg.history(name)?;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({"model": name, "history": h}))?,
        Format::Human => {
            let mut text = String::new();
            for e in &h {
                text.push_str(&format!(
                    "{}  v{:<4} {:>10} → {:<10} {} ({})\n",
                    e.at,
                    e.version,
                    e.from.as_str(),
                    e.to.as_str(),
                    e.actor,
                    e.reason
                ));
            }
            output::product(&text)?;
        }
    }
    Ok(Status::Ok)
}

fn export(ctx: &Ctx, reference: &str, out: &Path) -> Result<Status, CliError> {
    let reg = open(ctx)?;
    let policy = ctx.home.load_policy()?;
    let e = service::export(&ctx.session(&policy)?, &reg, reference, out)?;
    let (subject, fp) = (format!("{}@{}", e.version.name, e.version.version), e.key);
    match ctx.format {
        Format::Json | Format::Sarif => {
            output::print_json(&json!({"exported": subject, "archive": out, "key": fp}))?;
        }
        Format::Human => output::print(&format!(
            "exported {subject} to {} (signed by {fp}; the importing home must trust this key)\n",
            out.display()
        ))?,
    }
    Ok(Status::Ok)
}

fn import(ctx: &Ctx, archive: &Path, name: Option<&str>) -> Result<Status, CliError> {
    let mut reg = open(ctx)?;
    rampart_home::verify::home_keys(&ctx.home)?;
    let policy = ctx.home.load_policy()?;
    let i = service::import(&ctx.session(&policy)?, &mut reg, archive, name)?;
    let (v, m) = (&i.version, &i.manifest);
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&version_json(v))?,
        Format::Human => output::print(&format!(
            "imported {}@{} as {}@{} (root sha256:{}; exported by {}; signature, blobs, scan and provenance verified)\n",
            m.name, m.version, v.name, v.version, v.root, i.exporter
        ))?,
    }
    Ok(Status::Ok)
}

fn checkout(ctx: &Ctx, reference: &str, out: &Path) -> Result<Status, CliError> {
    let reg = open(ctx)?;
    let policy = ctx.home.load_policy()?;
    let v = service::checkout(&ctx.session(&policy)?, &reg, reference, out)?;
    match ctx.format {
        Format::Json | Format::Sarif => {
            output::print_json(&json!({"model": v.name, "version": v.version, "dir": out}))?;
        }
        Format::Human => output::print(&format!(
            "{}@{} → {} ({} file(s) verified)\n",
            v.name,
            v.version,
            out.display(),
            v.files.len()
        ))?,
    }
    Ok(Status::Ok)
}

/// A metrics record in one line: its scalar figures (curves and matrices are in `--format
/// json`), then whose they are.
fn metrics_line(m: &Value) -> String {
    let Some(o) = m.as_object() else {
        return m.to_string();
    };
    let mut parts: Vec<String> = o
        .iter()
        .filter(|(k, _)| *k != "source")
        .filter_map(|(k, v)| match v {
            Value::Number(n) => Some(match n.as_f64() {
                Some(f) if n.is_f64() => format!("{k} {f:.4}"),
                _ => format!("{k} {n}"),
            }),
            Value::String(s) => Some(format!("{k} {}", rampart_train::terminal::escape(s))),
            _ => None,
        })
        .collect();
    if let Some(s) = o.get("source").and_then(Value::as_str) {
        parts.push(format!("({})", rampart_train::terminal::escape(s)));
    }
    parts.join("  ")
}
