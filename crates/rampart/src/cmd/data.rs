//! `rampart data roots add | list | remove`, `check`, `infer-schema`, `validate`.

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::outfile::Sink;
use rampart_data::validate::ValidateOptions;
use rampart_home::roots;
use rampart_ingest::checks;
use serde_json::json;

use crate::cli::{CheckArgs, DataCommand, Format, InferSchemaArgs, RootsCommand, ValidateArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

/// The `data` subcommands this file implements; `main` sends `ingest`, `pii`, `drift` and
/// `check --schema` to their own files.
pub fn run(ctx: &Ctx, command: &DataCommand) -> Result<Status, CliError> {
    match command {
        DataCommand::Roots(r) => match &r.command {
            RootsCommand::Add { dir } => {
                let real = roots::add_root(&ctx.home, &ctx.auditor()?, dir)?;
                say(ctx, "authorised", &real)?;
            }
            RootsCommand::Remove { dir } => {
                let removed = roots::remove_root(&ctx.home, &ctx.auditor()?, dir)?;
                say(ctx, "no longer authorised", &removed)?;
            }
            RootsCommand::List => {
                let roots = ctx.home.load_policy()?.data.roots;
                match ctx.format {
                    Format::Json | Format::Sarif => output::print_json(&json!({ "roots": roots }))?,
                    Format::Human if roots.is_empty() => output::product(
                        "no data roots: no location is authorised until you `rampart data roots add DIR`\n",
                    )?,
                    Format::Human => output::product(
                        &roots
                            .iter()
                            .map(|r| format!("{}\n", r.display()))
                            .collect::<String>(),
                    )?,
                }
            }
        },
        DataCommand::InferSchema(a) => return infer_schema(ctx, a),
        DataCommand::Validate(a) => return validate(ctx, a),
        DataCommand::Pin { path } => {
            let digest = rampart_ingest::path_digest(path)?;
            roots::pin(&ctx.home, &ctx.auditor()?, &digest, path)?;
            say(ctx, "pinned", Path::new(&digest))?;
        }
        DataCommand::Unpin { what } => {
            let digest = if what.starts_with("sha256:") {
                what.clone()
            } else {
                rampart_ingest::path_digest(Path::new(what))?
            };
            roots::unpin(&ctx.home, &ctx.auditor()?, &digest)?;
            say(ctx, "unpinned", Path::new(&digest))?;
        }
        DataCommand::Ingest(_) | DataCommand::Pii(_) | DataCommand::Drift(_) => {
            return Err(CliError::internal(anyhow::anyhow!(
                "`data` subcommand dispatched to the wrong file"
            )));
        }
        DataCommand::Check(CheckArgs { path, .. }) => {
            let policy = ctx.home.load_policy()?;
            let a = checks::check_path(&ctx.session(&policy)?, path)?;
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "path": path, "real_path": a.real, "root": a.root, "authorised": true,
                }))?,
                Format::Human => output::print(&format!(
                    "{} is authorised: {} lies in data root {}\n",
                    path.display(),
                    a.real.display(),
                    a.root.display()
                ))?,
            }
        }
    }
    Ok(Status::Ok)
}

fn infer_schema(ctx: &Ctx, args: &InferSchemaArgs) -> Result<Status, CliError> {
    let data = crate::unlock::open_dataset(ctx, &args.path, &args.unlock)?;
    let policy = ctx.home.load_policy()?;
    let s = ctx.session(&policy)?;
    let got = checks::infer_schema(&s, &args.path, data, args.rows, args.label.as_deref())?;
    let toml = got
        .schema
        .to_toml()
        .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
    let text = format!(
        "# Proposed by `rampart data infer-schema` from {} rows of {} ({} malformed rows skipped).\n\
         # Review every rule before use: bounds and categories are only what the sample showed.\n{toml}",
        got.rows,
        args.path.display(),
        got.skipped
    );
    match &args.output {
        Some(out) => {
            rampart_home::secure_fs::atomic_write(out, text.as_bytes(), 0o644)?;
            if ctx.format == Format::Human && !output::quiet() {
                eprintln!(
                    "wrote {} ({} columns, from {} rows)",
                    out.display(),
                    got.schema.columns.len(),
                    got.rows
                );
            }
        }
        None => output::product(&text)?,
    }
    Ok(Status::Ok)
}

fn validate(ctx: &Ctx, args: &ValidateArgs) -> Result<Status, CliError> {
    let data = crate::unlock::open_dataset(ctx, &args.path, &args.unlock)?;
    let policy = ctx.home.load_policy()?;
    let s = ctx.session(&policy)?;
    let mut clean = args
        .output
        .as_deref()
        .map(|p| Sink::open(p, args.force))
        .transpose()?;
    let mut quarantine = args
        .quarantine
        .as_deref()
        .map(|p| Sink::open(p, args.force))
        .transpose()?;
    let (report, schema_digest) = {
        let mut clean_w = clean
            .as_mut()
            .map(|f| BufWriter::with_capacity(1 << 20, f.file()));
        let mut quarantine_w = quarantine.as_mut().map(|f| BufWriter::new(f.file()));
        let got = checks::validate(
            &s,
            &args.path,
            data,
            &args.schema,
            &ValidateOptions {
                safe_csv: args.safe_csv,
                ..ValidateOptions::max_record_bytes(args.max_row_bytes)
            },
            clean_w.as_mut().map(|w| w as &mut (dyn Write + Send)),
            quarantine_w.as_mut().map(|w| w as &mut dyn Write),
        )?;
        for w in clean_w.iter_mut() {
            w.flush()
                .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
        }
        got
    };
    for f in [clean, quarantine].into_iter().flatten() {
        f.commit(args.force)?;
    }
    crate::report::validation(
        ctx,
        &args.path,
        &schema_digest,
        &report,
        args.output.as_deref(),
        args.quarantine.as_deref(),
    )?;
    Ok(if report.rejected == 0 {
        Status::Ok
    } else {
        Status::Findings
    })
}

fn say(ctx: &Ctx, what: &str, dir: &std::path::Path) -> Result<(), CliError> {
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({ what: dir })),
        Format::Human => output::print(&format!("{what}: {}\n", dir.display())),
    }
}
