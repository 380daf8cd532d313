//! `rampart data roots add | list | remove`, `rampart data check`.

use rampart_audit::Outcome;
use rampart_data::{PathError, open_authorised};
use serde_json::json;

use crate::cli::{DataArgs, DataCommand, Format, RootsCommand};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &DataArgs) -> Result<Status, CliError> {
    match &args.command {
        DataCommand::Roots(r) => match &r.command {
            RootsCommand::Add { dir } => {
                let real = ctx.home.data_root_add(dir)?;
                ctx.audit(
                    ctx.event("data.roots.add", Outcome::Ok)
                        .subject_path(real.display().to_string()),
                )?;
                say(ctx, "authorised", &real)?;
            }
            RootsCommand::Remove { dir } => {
                let removed = ctx.home.data_root_remove(dir)?;
                ctx.audit(
                    ctx.event("data.roots.remove", Outcome::Ok)
                        .subject_path(removed.display().to_string()),
                )?;
                say(ctx, "no longer authorised", &removed)?;
            }
            RootsCommand::List => {
                let roots = ctx.home.load_policy()?.data.roots;
                match ctx.format {
                    Format::Json | Format::Sarif => output::print_json(&json!({ "roots": roots }))?,
                    Format::Human if roots.is_empty() => output::print(
                        "no data roots: no location is authorised until you `rampart data roots add DIR`\n",
                    )?,
                    Format::Human => output::print(
                        &roots
                            .iter()
                            .map(|r| format!("{}\n", r.display()))
                            .collect::<String>(),
                    )?,
                }
            }
        },
        DataCommand::Check { path } => {
            let roots = ctx.home.load_policy()?.data.roots;
            match open_authorised(path, &roots) {
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
                Err(e) => {
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
                    return Err(CliError::input(e).hint(hint));
                }
            }
        }
    }
    Ok(Status::Ok)
}

fn say(ctx: &Ctx, what: &str, dir: &std::path::Path) -> Result<(), CliError> {
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({ what: dir })),
        Format::Human => output::print(&format!("{what}: {}\n", dir.display())),
    }
}
