//! `rampart data roots add | list | remove`, `check`, `infer-schema`, `validate`.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::cmd::age::Sink;
use rampart_audit::Outcome;
use rampart_data::csv::ReaderOptions;
use rampart_data::infer::infer_csv;
use rampart_data::paths::Kind;
use rampart_data::safe_csv::SafeCsv;
use rampart_data::schema::Schema;
use rampart_data::validate::{Report, Sinks, ValidateError, ValidateOptions, validate_csv};
use rampart_data::{PathError, open_authorised_with};
use serde_json::json;

use crate::cli::{
    CheckArgs, DataArgs, DataCommand, Format, InferSchemaArgs, RootsCommand, UnlockArgs,
    ValidateArgs,
};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &DataArgs) -> Result<Status, CliError> {
    match &args.command {
        DataCommand::Roots(r) => match &r.command {
            RootsCommand::Add { dir } => {
                let real = ctx.recorded(|rec| {
                    ctx.home.data_root_add(dir, &mut |real| {
                        rec.write(
                            ctx.event("data.roots.add", Outcome::Ok)
                                .subject_path(real.display().to_string()),
                        )
                    })
                })?;
                say(ctx, "authorised", &real)?;
            }
            RootsCommand::Remove { dir } => {
                let removed = ctx.recorded(|rec| {
                    ctx.home.data_root_remove(dir, &mut |gone| {
                        rec.write(
                            ctx.event("data.roots.remove", Outcome::Ok)
                                .subject_path(gone.display().to_string()),
                        )
                    })
                })?;
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
        DataCommand::Ingest(a) => return crate::cmd::ingest::run(ctx, a),
        DataCommand::Pin { path } => {
            let digest = crate::cmd::ingest::file_digest(path)?;
            ctx.recorded(|rec| {
                ctx.home.data_pin_add(&digest, &mut |()| {
                    rec.write(
                        ctx.event("data.pin", Outcome::Ok)
                            .subject_path(path.display().to_string())
                            .subject_digest(digest.clone()),
                    )
                })
            })?;
            say(ctx, "pinned", Path::new(&digest))?;
        }
        DataCommand::Unpin { what } => {
            let digest = if what.starts_with("sha256:") {
                what.clone()
            } else {
                crate::cmd::ingest::file_digest(Path::new(what))?
            };
            ctx.recorded(|rec| {
                ctx.home.data_pin_remove(&digest, &mut |()| {
                    rec.write(
                        ctx.event("data.unpin", Outcome::Ok)
                            .subject_digest(digest.clone()),
                    )
                })
            })?;
            say(ctx, "unpinned", Path::new(&digest))?;
        }
        DataCommand::Pii(a) => return crate::cmd::pii::run(ctx, a),
        DataCommand::Drift(a) => return crate::cmd::checks::drift(ctx, a),
        DataCommand::Check(a) if a.schema.is_some() => {
            let schema = a.schema.as_deref().unwrap_or(Path::new(""));
            return crate::cmd::checks::check(ctx, a, schema);
        }
        DataCommand::Check(CheckArgs { path, .. }) => {
            let data = ctx.home.load_policy()?.data;
            match open_authorised_with(path, &data.roots, data.allow_hard_links) {
                Ok(a) => {
                    ctx.audit(
                        ctx.event("data.access", Outcome::Ok)
                            .subject_path(a.real.display().to_string())
                            .detail("requested", path.display().to_string())
                            .detail("root", a.root.display().to_string()),
                    )?;
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
                Err(e) => return Err(refused(ctx, path, e)),
            }
        }
    }
    Ok(Status::Ok)
}

/// Audits a refused dataset path and turns it into the user's error (exit 2).
pub fn refused(ctx: &Ctx, path: &Path, e: PathError) -> CliError {
    let (outcome, rule) = match &e {
        PathError::Refused { rule, .. } => (Outcome::Denied, *rule),
        _ => (Outcome::Error, "io"),
    };
    ctx.audit_refusal(
        ctx.event("data.access", outcome)
            .subject_path(path.display().to_string())
            .detail("rule", rule)
            .detail("reason", e.to_string()),
    );
    let hint = if rule == "data.roots" {
        "authorise its directory with `rampart data roots add DIR`"
    } else {
        "datasets are regular files or directories"
    };
    CliError::input(e).hint(hint)
}

/// A dataset file opened from an authorised root (the check made on the opened file), its
/// access audited, and its plaintext as a stream: `.age` files (recognised by their header)
/// are decrypted in memory with the keys at hand.
pub struct Dataset {
    pub reader: Box<dyn Read + Send>,
    pub real: PathBuf,
}

pub fn open_dataset(ctx: &Ctx, path: &Path, unlock: &UnlockArgs) -> Result<Dataset, CliError> {
    let data = ctx.home.load_policy()?.data;
    let a = open_authorised_with(path, &data.roots, data.allow_hard_links)
        .map_err(|e| refused(ctx, path, e))?;
    if a.kind != Kind::File {
        return Err(CliError::input(anyhow::anyhow!(
            "{} is a directory; this command reads one file",
            path.display()
        )));
    }
    let mut buffered = rampart_crypto::age_file::buffered(a.file);
    let encrypted = rampart_crypto::age_file::looks_like_age(&mut buffered).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
    })?;
    let reader: Box<dyn Read + Send> = if encrypted {
        let keys = crate::cmd::age::unlock(ctx, unlock)?;
        match rampart_crypto::age_file::decrypting_reader(buffered, &keys) {
            Ok(r) => r,
            Err(e) => {
                ctx.audit_refusal(
                    ctx.event("data.access", Outcome::Failed)
                        .subject_path(a.real.display().to_string())
                        .detail("reason", e.to_string()),
                );
                return Err(crate::cmd::age::age_err(path, e));
            }
        }
    } else {
        Box::new(buffered)
    };
    ctx.audit(
        ctx.event("data.access", Outcome::Ok)
            .subject_path(a.real.display().to_string())
            .detail("requested", path.display().to_string())
            .detail("root", a.root.display().to_string())
            .detail("encrypted", encrypted),
    )?;
    Ok(Dataset {
        reader,
        real: a.real,
    })
}

pub fn data_err(path: &Path, e: ValidateError) -> CliError {
    match e {
        ValidateError::Header(_) => {
            CliError::input(anyhow::Error::new(e).context(path.display().to_string()))
                .hint("the header must name exactly the schema's columns (any order, each once)")
        }
        other => CliError::input(
            anyhow::Error::new(other).context(format!("cannot read {}", path.display())),
        ),
    }
}

pub fn load_schema(path: &Path) -> Result<(Schema, String), CliError> {
    let text = rampart_home::secure_fs::read_small_file(path)?;
    let schema = Schema::from_toml(&text).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("schema {}", path.display())))
    })?;
    Ok((
        schema,
        format!(
            "sha256:{}",
            rampart_crypto::sha256(text.as_bytes()).to_hex()
        ),
    ))
}

fn infer_schema(ctx: &Ctx, args: &InferSchemaArgs) -> Result<Status, CliError> {
    let data = open_dataset(ctx, &args.path, &args.unlock)?;
    let mut buffered = std::io::BufReader::with_capacity(1 << 20, data.reader);
    let is_parquet = std::io::BufRead::fill_buf(&mut buffered)
        .map(|h| h.starts_with(rampart_data::parquet::MAGIC))
        .unwrap_or(false);
    let got = if is_parquet {
        let file = spool(ctx, &args.path, &mut buffered)?;
        rampart_data::infer::infer_parquet(file, args.rows, args.label.as_deref())
    } else {
        infer_csv(
            buffered,
            args.rows,
            args.label.as_deref(),
            ReaderOptions::default(),
        )
    }
    .map_err(|e| data_err(&args.path, e))?;
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
    let (schema, schema_digest) = load_schema(&args.schema)?;
    let data = open_dataset(ctx, &args.path, &args.unlock)?;
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
    let (report, _) = {
        let mut clean_w = clean
            .as_mut()
            .map(|f| BufWriter::with_capacity(1 << 20, f.file()));
        let mut quarantine_w = quarantine.as_mut().map(|f| BufWriter::new(f.file()));
        let got = run_validation(
            ctx,
            &args.path,
            data.reader,
            &schema,
            ValidateOptions {
                safe_csv: safe_csv(&args.safe_csv),
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
    ctx.audit(
        ctx.event(
            "data.validate",
            if report.rejected == 0 {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
        )
        .subject_path(data.real.display().to_string())
        .detail("schema", schema_digest.clone())
        .detail("rows", report.rows_read)
        .detail("accepted", report.accepted)
        .detail("rejected", report.rejected),
    )?;
    print_report(
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

/// The format of a dataset's plaintext, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    Csv,
    Parquet,
}

impl DataFormat {
    /// The stored file's extension.
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Parquet => "parquet",
        }
    }
}

/// Copies a stream into an unnamed file in the home's private `runs/` directory (0700), gone
/// when closed; for Parquet, which needs random access.
pub fn spool(ctx: &Ctx, path: &Path, reader: &mut dyn Read) -> Result<std::fs::File, CliError> {
    let read_err = |e: std::io::Error| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
    };
    let runs = ctx.home.root().join("runs");
    rampart_home::secure_fs::create_private_dir(&runs)?;
    let mut spool = tempfile::tempfile_in(&runs).map_err(|e| {
        CliError::internal(
            anyhow::Error::new(e).context(format!("cannot spool into {}", runs.display())),
        )
    })?;
    std::io::copy(reader, &mut spool).map_err(read_err)?;
    std::io::Seek::rewind(&mut spool).map_err(read_err)?;
    Ok(spool)
}

/// Validates a dataset stream, CSV or Parquet (told by the `PAR1` magic). Parquet needs random
/// access, so it is first spooled into an unnamed file in the home's private `runs/` directory
/// (0700), gone when closed. Clean rows are written in the input's format.
pub fn run_validation<'a, 's>(
    ctx: &Ctx,
    path: &Path,
    reader: Box<dyn Read + Send + 'a>,
    schema: &Schema,
    opts: ValidateOptions,
    clean: Option<&'s mut (dyn Write + Send + 's)>,
    quarantine: Option<&'s mut (dyn Write + 's)>,
) -> Result<(Report, DataFormat), CliError> {
    let read_err = |e: std::io::Error| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
    };
    let mut buffered = std::io::BufReader::with_capacity(1 << 20, reader);
    let head = std::io::BufRead::fill_buf(&mut buffered).map_err(read_err)?;
    if !head.starts_with(rampart_data::parquet::MAGIC) {
        let report = validate_csv(
            buffered,
            schema,
            &opts,
            Sinks {
                clean: clean.map(|w| w as &mut dyn Write),
                quarantine,
            },
        )
        .map_err(|e| data_err(path, e))?;
        return Ok((report, DataFormat::Csv));
    }
    let spool = spool(ctx, path, &mut buffered)?;
    let report = rampart_data::parquet::validate_parquet(
        spool,
        schema,
        clean,
        quarantine,
        opts.safe_csv.for_reports(),
    )
    .map_err(|e| data_err(path, e))?;
    Ok((report, DataFormat::Parquet))
}

/// The `--safe-csv` value (clap allows only the three names).
pub fn safe_csv(text: &str) -> SafeCsv {
    SafeCsv::parse(text).unwrap_or_default()
}

pub fn print_report(
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

fn say(ctx: &Ctx, what: &str, dir: &std::path::Path) -> Result<(), CliError> {
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({ what: dir })),
        Format::Human => output::print(&format!("{what}: {}\n", dir.display())),
    }
}
