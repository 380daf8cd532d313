//! `rampart data pii scan | redact | reveal`: [`rampart_ingest::pii`].

use std::path::Path;

use rampart_data::pii::table::{PersonalColumns, PiiReport};
use rampart_ingest::pii::{self, PiiRequest, RedactOutput};
use serde_json::json;

use crate::cli::{Format, PiiArgs, PiiCommand, PiiInputArgs, PiiRedactArgs, PiiRevealArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::outfile::{is_stdio, write_output};
use crate::output;
use crate::unlock::open_dataset;

pub fn run(ctx: &Ctx, args: &PiiArgs) -> Result<Status, CliError> {
    match &args.command {
        PiiCommand::Scan(a) => scan(ctx, &a.input, a.findings.as_deref()),
        PiiCommand::Redact(a) => redact(ctx, a),
        PiiCommand::Reveal(a) => reveal(ctx, a),
    }
}

fn request(input: &PiiInputArgs) -> Result<PiiRequest, CliError> {
    let personal = match &input.schema {
        Some(path) => {
            if input.text {
                return Err(CliError::input(anyhow::anyhow!(
                    "--schema names a table's columns; free text (--text) has none"
                )));
            }
            let (schema, _) = rampart_ingest::load_schema(path)?;
            PersonalColumns::from_schema(&schema)
        }
        None => PersonalColumns::default(),
    };
    Ok(PiiRequest {
        only: input.only.clone(),
        min_confidence: input.min_confidence,
        text: input.text,
        max_row_bytes: input.max_row_bytes,
        personal,
    })
}

fn scan(ctx: &Ctx, input: &PiiInputArgs, findings: Option<&Path>) -> Result<Status, CliError> {
    let policy = ctx.home.load_policy()?;
    let s = ctx.session(&policy)?;
    let req = request(input)?;
    let data = open_dataset(ctx, &input.path, &input.unlock)?;
    let report = match findings {
        Some(out) if is_stdio(out) => {
            return Err(CliError::input(anyhow::anyhow!(
                "--findings needs a file: the report goes to standard output"
            )));
        }
        Some(out) => write_output(out, true, |w| {
            Ok(pii::scan(&s, &input.path, &req, data, Some(w))?)
        })?,
        None => pii::scan(&s, &input.path, &req, data, None)?,
    };
    print_report(ctx, &input.path, &report, None)?;
    Ok(if report.findings == 0 {
        Status::Ok
    } else {
        Status::Findings
    })
}

fn redact(ctx: &Ctx, args: &PiiRedactArgs) -> Result<Status, CliError> {
    let policy = ctx.home.load_policy()?;
    let s = ctx.session(&policy)?;
    let overrides = rampart_ingest::redact::RedactOverrides {
        default: args.default_op.clone(),
        entities: args.entity_ops.clone(),
        columns: args.column_ops.clone(),
        recipients: args.recipients.clone(),
    };
    let req = request(&args.input)?;
    let data = open_dataset(ctx, &args.input.path, &args.input.unlock)?;
    let report = write_output(&args.output, args.force, |writer| {
        let out = RedactOutput {
            path: &args.output,
            writer,
            safe_csv: args.safe_csv.for_reports(),
        };
        Ok(pii::redact(
            &s,
            &args.input.path,
            &req,
            data,
            &overrides,
            out,
        )?)
    })?;
    print_report(ctx, &args.input.path, &report, Some(&args.output))?;
    Ok(Status::Ok)
}

fn reveal(ctx: &Ctx, args: &PiiRevealArgs) -> Result<Status, CliError> {
    let keys = crate::unlock::unlock(ctx, &args.unlock)?;
    let policy = ctx.home.load_policy()?;
    let s = ctx.session(&policy)?;
    let data = open_dataset(ctx, &args.path, &args.unlock)?;
    let lines = write_output(&args.output, args.force, |writer| {
        let out = RedactOutput {
            path: &args.output,
            writer,
            safe_csv: args.safe_csv.for_data(),
        };
        Ok(pii::reveal(&s, &args.path, data, &keys.identities, out)?)
    })?;
    if ctx.format == Format::Human && !output::quiet() {
        eprintln!(
            "revealed {} ({lines} lines) into {}",
            args.path.display(),
            args.output.display()
        );
    }
    Ok(Status::Ok)
}

fn print_report(
    ctx: &Ctx,
    path: &Path,
    report: &PiiReport,
    output: Option<&Path>,
) -> Result<(), CliError> {
    // When the redacted data goes to standard output, the report goes to standard error:
    // never into the data.
    let to_stderr = output.is_some_and(is_stdio);
    match ctx.format {
        Format::Json | Format::Sarif => {
            let mut v = serde_json::to_value(report)
                .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
            if let (Some(o), Some(map)) = (output, v.as_object_mut()) {
                map.insert("output".into(), json!(o));
            }
            if to_stderr {
                eprintln!("{v}");
                return Ok(());
            }
            output::print_json(&v)
        }
        Format::Human => {
            let mut s = format!(
                "{}: {} rows, {} findings{}\n",
                path.display(),
                report.rows,
                report.findings,
                output.map_or_else(String::new, |o| format!(
                    ", {} values redacted into {}",
                    report.redacted,
                    o.display()
                ))
            );
            for c in &report.columns {
                for (e, st) in &c.entities {
                    let rules: Vec<String> =
                        st.rules.iter().map(|(r, n)| format!("{r}×{n}")).collect();
                    s.push_str(&format!(
                        "  {:<20} {:<15} {:>7} in {:>7} rows  {}  e.g. {}\n",
                        c.column,
                        e.name(),
                        st.count,
                        st.rows,
                        rules.join(" "),
                        st.samples.join(", ")
                    ));
                }
            }
            if to_stderr {
                output::print_stderr(&s);
                return Ok(());
            }
            output::print(&s)
        }
    }
}
