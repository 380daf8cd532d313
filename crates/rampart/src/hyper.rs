//! The built-in trainer's model kind and hyperparameter flags, from a config's `[model]` table
//! and the command line, checked by clap before anything runs (`rampart train` and
//! `rampart pipeline run` both build them).

use std::path::Path;

use clap::{Args as _, CommandFactory as _, Parser};

use crate::cli::{Cli, HyperArgs, ModelChoice};
use crate::error::CliError;

fn input_err(msg: impl std::fmt::Display) -> CliError {
    CliError::input(anyhow::anyhow!("{msg}"))
}

/// Hyperparameter flags alone, to check the ones assembled from a config and the command line.
#[derive(Debug, Parser)]
#[command(name = "[model]", no_binary_name = true)]
struct HyperOnly {
    #[command(flatten)]
    hyper: HyperArgs,
}

pub fn model_choice(text: &str) -> Result<ModelChoice, CliError> {
    <ModelChoice as clap::ValueEnum>::from_str(text, true).map_err(|_| {
        input_err(format!(
            "[model] kind {text:?} is not random-forest, isolation-forest or logistic"
        ))
    })
}

/// The hyperparameter flags given on the command line (not clap's defaults), as `--name value`.
fn command_line_hyper() -> Vec<(String, Vec<String>)> {
    let Ok(matches) = Cli::command().try_get_matches_from(std::env::args_os()) else {
        return Vec::new();
    };
    let Some(sub) = matches.subcommand_matches("train") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for arg in HyperArgs::augment_args(clap::Command::new("h")).get_arguments() {
        let id = arg.get_id().as_str();
        if sub.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        let values = if arg.get_action().takes_values() {
            sub.get_raw(id)
                .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        out.push((long.to_owned(), values));
    }
    out
}

/// The built-in trainer's hyperparameter flags: the config's `[model]` table, then the
/// command line's flags on top; checked by clap here, so a typo is a usage error before
/// anything runs.
pub fn hyper_args(
    model: Option<&toml::Table>,
    config: Option<&Path>,
) -> Result<Vec<String>, CliError> {
    let known: Vec<(String, bool)> = HyperArgs::augment_args(clap::Command::new("h"))
        .get_arguments()
        .filter_map(|a| {
            a.get_long()
                .map(|l| (l.to_owned(), a.get_action().takes_values()))
        })
        .collect();
    let mut chosen: Vec<(String, Vec<String>)> = Vec::new();
    let where_ = config.map_or(String::new(), |p| format!("{}: ", p.display()));
    if let Some(table) = model {
        for (key, value) in table {
            if key == "kind" || key == "holdout" {
                continue;
            }
            let long = key.replace('_', "-");
            let Some((_, takes)) = known.iter().find(|(l, _)| *l == long) else {
                return Err(input_err(format!(
                    "{where_}[model] has no setting {key:?}"
                ))
                .hint("the settings are the flags of `rampart ml train`, e.g. trees = 200, max_depth = 8"));
            };
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) if !takes => {
                    if *b {
                        chosen.push((long, Vec::new()));
                    }
                    continue;
                }
                other => {
                    return Err(input_err(format!(
                        "{where_}[model] {key} = {other}: expected a number or a string"
                    )));
                }
            };
            chosen.push((long, vec![text]));
        }
    }
    for (long, values) in command_line_hyper() {
        chosen.retain(|(l, _)| *l != long);
        chosen.push((long, values));
    }
    let mut argv = Vec::new();
    for (long, values) in chosen {
        argv.push(format!("--{long}"));
        argv.extend(values);
    }
    HyperOnly::try_parse_from(&argv).map_err(|e| {
        input_err(format!(
            "{where_}{}",
            e.to_string().lines().next().unwrap_or_default()
        ))
    })?;
    Ok(argv)
}
