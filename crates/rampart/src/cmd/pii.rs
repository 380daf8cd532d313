//! `rampart data pii scan | redact | reveal`.

use rampart_audit::Action;
use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use rampart_audit::Outcome;
use rampart_data::csv::ReaderOptions;
use rampart_data::pii::table::{CsvJob, Input, PiiReport, process_any};
use rampart_data::pii::{Detector, DetectorOptions, Entity, Operator, PiiError, Redactor};
use rampart_home::PiiPolicy;
use serde_json::json;

use crate::cli::{Format, PiiArgs, PiiCommand, PiiInputArgs, PiiRedactArgs, PiiRevealArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use crate::unlock::open_dataset;

pub fn run(ctx: &Ctx, args: &PiiArgs) -> Result<Status, CliError> {
    match &args.command {
        PiiCommand::Scan(a) => scan(ctx, &a.input, a.findings.as_deref()),
        PiiCommand::Redact(a) => redact(ctx, a),
        PiiCommand::Reveal(a) => reveal(ctx, a),
    }
}

fn pii_err(path: &Path, e: PiiError) -> CliError {
    let hint = match &e {
        PiiError::Csv { .. } => Some("the file must be CSV with a header row (or pass --text)"),
        PiiError::Config(_) => {
            Some("operators: replace, mask, mask:N, remove, hash, encrypt, keep")
        }
        _ => None,
    };
    let err = CliError::input(anyhow::Error::new(e).context(path.display().to_string()));
    match hint {
        Some(h) => err.hint(h),
        None => err,
    }
}

/// The detector from the flags, falling back on the policy.
pub fn detector(policy: &PiiPolicy, input: &PiiInputArgs) -> Result<Detector, CliError> {
    let only = input
        .only
        .iter()
        .map(|s| s.trim().parse::<Entity>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::input(anyhow::anyhow!("--only: {e}")))?;
    let min_confidence = input.min_confidence.unwrap_or(policy.min_confidence);
    if !(0.0..=1.0).contains(&min_confidence) {
        return Err(CliError::input(anyhow::anyhow!(
            "--min-confidence must be between 0 and 1"
        )));
    }
    Detector::new(DetectorOptions {
        min_confidence,
        entities: only,
    })
    .map_err(|e| CliError::internal(anyhow::Error::new(e)))
}

/// Runs the detector (and the redactor) over the opened input ([`process_any`]; Parquet is
/// spooled into the home's private runs/ directory).
#[allow(clippy::too_many_arguments)]
fn process<'a>(
    ctx: &Ctx,
    path: &Path,
    input: &PiiInputArgs,
    reader: Box<dyn Read + Send>,
    detector: &'a Detector,
    redact: Option<(&'a Redactor, &'a mut dyn Write)>,
    columns: &'a BTreeMap<String, Operator>,
    findings: Option<&'a mut dyn Write>,
    safe_csv: bool,
) -> Result<PiiReport, CliError> {
    let runs = ctx.home.root().join("runs");
    rampart_home::secure_fs::create_private_dir(&runs)?;
    let job = CsvJob {
        detector,
        reader: ReaderOptions {
            max_record_bytes: input.max_row_bytes,
            ..ReaderOptions::default()
        },
        redact,
        columns,
        findings,
        safe_csv,
    };
    let kind = if input.text {
        Input::Text
    } else {
        Input::Table
    };
    process_any(reader, kind, &runs, job).map_err(|e| pii_err(path, e))
}

fn scan(ctx: &Ctx, input: &PiiInputArgs, findings: Option<&Path>) -> Result<Status, CliError> {
    let policy = ctx.home.load_policy()?;
    let detector = detector(&policy.data.pii, input)?;
    let data = open_dataset(ctx, &input.path, &input.unlock)?;
    let none = BTreeMap::new();
    let report = match findings {
        Some(out) if crate::outfile::is_stdio(out) => {
            return Err(CliError::input(anyhow::anyhow!(
                "--findings needs a file: the report goes to standard output"
            )));
        }
        Some(out) => crate::outfile::write_output(out, true, |w| {
            process(
                ctx,
                &input.path,
                input,
                data.reader,
                &detector,
                None,
                &none,
                Some(w),
                false,
            )
        })?,
        None => process(
            ctx,
            &input.path,
            input,
            data.reader,
            &detector,
            None,
            &none,
            None,
            false,
        )?,
    };
    ctx.audit(
        ctx.event(
            Action::DataPiiScan,
            if report.findings == 0 {
                Outcome::Ok
            } else {
                Outcome::Failed
            },
        )
        .subject_path(data.real.display().to_string())
        .detail("summary", report.audit_summary()),
    )?;
    print_report(ctx, &input.path, &report, None)?;
    Ok(if report.findings == 0 {
        Status::Ok
    } else {
        Status::Findings
    })
}

fn redact(ctx: &Ctx, args: &PiiRedactArgs) -> Result<Status, CliError> {
    let policy = ctx.home.load_policy()?;
    let detector = detector(&policy.data.pii, &args.input)?;
    let (redactor, columns) = rampart_ingest::redact::redactor(
        &ctx.home,
        &policy.data.pii,
        &rampart_ingest::redact::RedactOverrides {
            default: args.default_op.clone(),
            entities: args.entity_ops.clone(),
            columns: args.column_ops.clone(),
            recipients: args.recipients.clone(),
        },
    )?;
    let data = open_dataset(ctx, &args.input.path, &args.input.unlock)?;
    let report = crate::outfile::write_output(&args.output, args.force, |out| {
        process(
            ctx,
            &args.input.path,
            &args.input,
            data.reader,
            &detector,
            Some((&redactor, out)),
            &columns,
            None,
            rampart_data::safe_csv::SafeCsv::parse(&args.safe_csv)
                .unwrap_or_default()
                .for_reports(),
        )
    })?;
    ctx.audit(
        ctx.event(Action::DataPiiRedact, Outcome::Ok)
            .subject_path(data.real.display().to_string())
            .detail("output", args.output.display().to_string())
            .detail("summary", report.audit_summary()),
    )?;
    print_report(ctx, &args.input.path, &report, Some(&args.output))?;
    Ok(Status::Ok)
}

fn reveal(ctx: &Ctx, args: &PiiRevealArgs) -> Result<Status, CliError> {
    let keys = crate::unlock::unlock(ctx, &args.unlock)?;
    let data = open_dataset(ctx, &args.path, &args.unlock)?;
    let mut input = BufReader::with_capacity(1 << 20, data.reader);
    let lines = crate::outfile::write_output(&args.output, args.force, |out| {
        let mut line = Vec::new();
        let mut n = 0u64;
        loop {
            line.clear();
            let got = std::io::BufRead::read_until(
                &mut (&mut input).take(rampart_data::pii::table::MAX_LINE_BYTES as u64 + 1),
                b'\n',
                &mut line,
            )?;
            if got == 0 {
                break;
            }
            n += 1;
            let text = std::str::from_utf8(&line).map_err(|_| {
                CliError::input(anyhow::anyhow!(
                    "{}: line {n} is not valid UTF-8",
                    args.path.display()
                ))
            })?;
            let plain = rampart_data::pii::redact::reveal_with(
                text,
                &keys.identities,
                rampart_data::safe_csv::SafeCsv::parse(&args.safe_csv).unwrap_or_default().for_data(),
            )
            .map_err(|e| {
                CliError::input(anyhow::Error::new(e).context(format!(
                    "{}: line {n}",
                    args.path.display()
                )))
                .hint("reveal needs an identity of a recipient the values were encrypted to (-i FILE)")
            })?;
            out.write_all(plain.as_bytes())?;
        }
        Ok(n)
    });
    let outcome = if lines.is_ok() {
        Outcome::Ok
    } else {
        Outcome::Failed
    };
    ctx.audit(
        ctx.event(Action::DataPiiReveal, outcome)
            .subject_path(data.real.display().to_string())
            .detail("output", args.output.display().to_string()),
    )?;
    let lines = lines?;
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
    match ctx.format {
        Format::Json | Format::Sarif => {
            let mut v = serde_json::to_value(report)
                .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
            if let (Some(o), Some(map)) = (output, v.as_object_mut()) {
                map.insert("output".into(), json!(o));
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
            output::print(&s)
        }
    }
}
