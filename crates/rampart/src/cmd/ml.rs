//! `rampart ml …`.

use rampart_ml::privacy::{DEFAULT_ORDERS, PrivacyError, epsilon, noise_for_epsilon};
use serde_json::json;

use crate::cli::{Format, MlArgs, MlCommand, PrivacyArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

pub fn run(ctx: &Ctx, args: &MlArgs) -> Result<Status, CliError> {
    match &args.command {
        MlCommand::Privacy(p) => privacy(ctx, p),
    }
}

fn input(e: PrivacyError) -> CliError {
    CliError::input(e)
}

fn privacy(ctx: &Ctx, p: &PrivacyArgs) -> Result<Status, CliError> {
    match (p.noise, p.target_epsilon) {
        (Some(sigma), _) => {
            let (eps, order) =
                epsilon(p.sample_rate, sigma, p.steps, p.delta, DEFAULT_ORDERS).map_err(input)?;
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "epsilon": eps, "order": order, "delta": p.delta,
                    "sample_rate": p.sample_rate, "noise": sigma, "steps": p.steps,
                }))?,
                Format::Human => output::print(&format!(
                    "ε = {eps:.6} at δ = {} (best RDP order {order}) for q = {}, σ = {sigma}, {} steps\n",
                    p.delta, p.sample_rate, p.steps
                ))?,
            }
        }
        (None, Some(target)) => {
            let sigma = noise_for_epsilon(p.sample_rate, p.steps, p.delta, target, DEFAULT_ORDERS)
                .map_err(input)?;
            let (eps, order) =
                epsilon(p.sample_rate, sigma, p.steps, p.delta, DEFAULT_ORDERS).map_err(input)?;
            match ctx.format {
                Format::Json | Format::Sarif => output::print_json(&json!({
                    "noise": sigma, "epsilon": eps, "order": order, "target_epsilon": target,
                    "delta": p.delta, "sample_rate": p.sample_rate, "steps": p.steps,
                }))?,
                Format::Human => output::print(&format!(
                    "σ = {sigma:.6} reaches ε = {eps:.6} ≤ {target} at δ = {} for q = {}, {} steps\n",
                    p.delta, p.sample_rate, p.steps
                ))?,
            }
        }
        (None, None) => {
            return Err(CliError::input(anyhow::anyhow!(
                "pass --noise or --target-epsilon"
            )));
        }
    }
    Ok(Status::Ok)
}
