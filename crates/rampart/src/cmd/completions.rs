//! `rampart completions SHELL`.

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs};
use crate::error::{CliError, Status};

pub fn run(args: &CompletionsArgs) -> Result<Status, CliError> {
    let mut buf = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "rampart", &mut buf);
    crate::output::product(&String::from_utf8_lossy(&buf))?;
    Ok(Status::Ok)
}
