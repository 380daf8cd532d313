//! `rampart convert`.

use rampart_home::scan::{self, Conversion};
use serde_json::json;

use crate::cli::{ConvertArgs, Format};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &ConvertArgs) -> Result<Status, CliError> {
    if !args.input.is_file() {
        return Err(CliError::input(anyhow::anyhow!(
            "{} is not a file",
            args.input.display()
        )));
    }
    if args.output.exists() && !args.force {
        return Err(
            CliError::input(anyhow::anyhow!("{} exists", args.output.display()))
                .hint("pass --force to replace it"),
        );
    }
    let input = args.input.display().to_string();
    match scan::convert(&ctx.auditor()?, &args.input, &args.output)? {
        Conversion::Converted(c) => {
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "input": input,
                    "output": args.output,
                    "layout": c.layout,
                    "tensors": c.tensors.iter().map(|(n, d, s)| json!({"name": n, "dtype": d, "shape": s})).collect::<Vec<_>>(),
                    "skipped": c.skipped,
                    "bytes": c.bytes,
                }))?,
                Format::Human => {
                    let mut text = format!(
                        "converted {input} ({}) → {}: {} tensors, {}\n",
                        c.layout,
                        args.output.display(),
                        c.tensors.len(),
                        output::bytes(c.bytes)
                    );
                    if !c.skipped.is_empty() {
                        text.push_str(&format!(
                            "  left out (not tensors): {}\n",
                            c.skipped.join(", ")
                        ));
                    }
                    output::print(&text)?;
                }
            }
            Ok(Status::Ok)
        }
        Conversion::Refused(e) => {
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(
                    &json!({"input": input, "converted": false, "error": e.to_string()}),
                )?,
                Format::Human => output::print(&format!("conversion REFUSED for {input}: {e}\n"))?,
            }
            Ok(Status::Findings)
        }
    }
}
