//! `rampart pipeline run|status`: parses the request, creates the home when there is none
//! (authorising the spec's data directories), runs [`rampart_pipeline::run`] and prints its
//! outcome.

use std::path::Path;

use rampart_pipeline::STEPS;
use rampart_pipeline::run::{RunError, RunOutcome, Runner};
use rampart_pipeline::spec::Spec;
use rampart_pipeline::state::{State, StepStatus};
use serde_json::json;

use crate::cli::{Format, PipelineArgs, PipelineCommand, PipelineRunArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;
use crate::unlock::{LazyKeys, NO_UNLOCK_ARGS};

pub fn run(ctx: &Ctx, args: &PipelineArgs, quiet: bool) -> Result<Status, CliError> {
    match &args.command {
        PipelineCommand::Run(a) => run_pipeline(ctx, a, quiet),
        PipelineCommand::Status { pipeline } => status(ctx, pipeline),
    }
}

fn progress(quiet: bool, text: &str) {
    if !quiet {
        eprintln!("{text}");
    }
}

fn run_pipeline(ctx: &Ctx, a: &PipelineRunArgs, quiet: bool) -> Result<Status, CliError> {
    // The spec is checked before anything (a home) is created.
    let spec_path = std::fs::canonicalize(&a.spec).unwrap_or_else(|_| a.spec.clone());
    let spec = Spec::load(&spec_path).map_err(RunError::from)?;
    if let Some(from) = &a.from
        && !STEPS.contains(&from.as_str())
    {
        return Err(RunError::Input {
            message: format!("--from {from:?}: the steps are {}", STEPS.join(", ")),
            hint: None,
        }
        .into());
    }
    // A fresh home is created, and the spec's data directories authorised in it.
    if !ctx.home.exists() {
        let roots = rampart_pipeline::run::data_roots(&spec)?;
        let home = ctx.home.root().display().to_string();
        progress(quiet, &format!("no home at {home}: creating one"));
        ctx.home.init()?.record(&ctx.auditor()?, Some("pipeline"))?;
        for dir in &roots {
            rampart_home::roots::add_root(&ctx.home, &ctx.auditor()?, dir)?;
            progress(quiet, &format!("  authorised data root {}", dir.display()));
        }
    }
    let log = ctx
        .audit_log()?
        .ok_or_else(|| CliError::internal(anyhow::anyhow!("the home has no audit log")))?;
    let keys = LazyKeys::new(ctx, &NO_UNLOCK_ARGS);
    let load = || keys.load();
    let sandbox = rampart_sandbox::Sandbox::current_exe().map_err(CliError::internal)?;
    let builtin = crate::training::builtin_program()?;
    let show = |text: &str| progress(quiet, text);
    let runner = Runner {
        home: &ctx.home,
        log,
        actor: &ctx.actor,
        keys: &load,
        sandbox: &sandbox,
        builtin: &builtin,
        onnx_worker: Some(
            rampart_train::service::Isolation::rampart(0).map_err(CliError::internal)?,
        ),
        progress: &show,
    };
    let outcome = rampart_pipeline::run::run(&runner, &spec_path, a.from.as_deref())
        .map_err(|e| keys.error(e))?;
    print_outcome(ctx, &outcome)?;
    Ok(if outcome.failure.is_some() {
        Status::Findings
    } else {
        Status::Ok
    })
}

fn print_outcome(ctx: &Ctx, o: &RunOutcome) -> Result<(), CliError> {
    let (failure, registry) = (&o.failure, o.registry.as_ref());
    let outcome = if failure.is_some() { "failed" } else { "ok" };
    let (shown, json_path, html_path) = (&o.steps, &o.report_json, &o.report_html);
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "pipeline": o.pipeline, "run": o.run, "outcome": outcome,
            "steps": shown, "failed_step": failure.as_ref().map(|(s, _)| s),
            "reason": failure.as_ref().map(|(_, r)| r),
            "report": {"json": json_path, "html": html_path},
            "registry": registry,
        }))?,
        Format::Human => {
            let mut text = match (failure, registry) {
                (Some((s, why)), _) => {
                    format!("pipeline {} FAILED at {s}: {why}\n", o.pipeline)
                }
                (None, Some(g)) => format!(
                    "pipeline {}: {}@{} is in {}\n",
                    o.pipeline, g.name, g.version, g.stage
                ),
                (None, None) => format!("pipeline {}: done\n", o.pipeline),
            };
            for s in shown {
                text.push_str(&format!("  {:<9} {:<8} {}\n", s.name, s.status, s.summary));
            }
            text.push_str(&format!(
                "report {}\n       {}\n",
                html_path.display(),
                json_path.display()
            ));
            if failure.is_none()
                && let Some(g) = registry
            {
                text.push_str(&format!(
                    "serve it: rampart serve --model {}@{}\n",
                    g.name, g.stage
                ));
            }
            output::print(&text)?;
        }
    }
    Ok(())
}

fn status(ctx: &Ctx, pipeline: &str) -> Result<Status, CliError> {
    ctx.home.require()?;
    let as_path = Path::new(pipeline);
    let name = if as_path.is_file() {
        Spec::load(as_path).map_err(RunError::from)?.pipeline.name
    } else {
        pipeline.to_owned()
    };
    let dir = ctx.home.root().join("pipelines").join(&name);
    let st = State::load(&dir.join("state.json"))
        .map_err(RunError::from)?
        .ok_or_else(|| {
            CliError::input(anyhow::anyhow!(
                "pipeline {name:?} has not run in this home"
            ))
            .hint("run it: `rampart pipeline run PIPELINE.toml`")
        })?;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&json!({
            "pipeline": st.pipeline, "spec": st.spec, "runs": st.runs, "last_run": st.last_run,
            "steps": STEPS.iter().map(|s| json!({"name": s, "record": st.steps.get(*s)})).collect::<Vec<_>>(),
            "report": {"json": dir.join("report.json"), "html": dir.join("report.html")},
        }))?,
        Format::Human => {
            let mut text = format!(
                "pipeline {} ({} run(s), last {}; spec {})\n",
                st.pipeline,
                st.runs,
                st.last_run.as_deref().unwrap_or("-"),
                st.spec.display()
            );
            for s in STEPS {
                match st.steps.get(s) {
                    None => text.push_str(&format!("  {s:<9} never ran\n")),
                    Some(r) => {
                        let status = match r.status {
                            StepStatus::Ok => "ok",
                            StepStatus::Failed => "FAILED",
                        };
                        text.push_str(&format!(
                            "  {s:<9} {status:<7} {} ({:.1} s) {}\n",
                            r.finished,
                            r.seconds,
                            r.error
                                .clone()
                                .unwrap_or_else(|| rampart_pipeline::outputs::summary(&r.outputs))
                        ));
                        for a in &r.artifacts {
                            text.push_str(&format!(
                                "            {} {}\n",
                                a.sha256,
                                a.path.display()
                            ));
                        }
                    }
                }
            }
            text.push_str(&format!("report {}\n", dir.join("report.html").display()));
            output::product(&text)?;
        }
    }
    Ok(Status::Ok)
}
