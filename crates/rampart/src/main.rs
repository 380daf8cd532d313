//! `rampart`: the command-line front end. It parses flags, calls the library crates, formats
//! their results and picks the exit code; it holds no domain logic.
//!
//! Exit codes: 0 ok · 1 findings or verification failed · 2 bad usage or input · 3 internal error.

mod cli;
mod cmd;
mod context;
mod error;
mod outfile;
mod output;
mod report;
mod training;
mod unlock;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command, DataCommand};
use crate::context::Ctx;
use crate::error::{CliError, Status};

fn main() -> ExitCode {
    // The sandbox re-executes this binary for its helper stages.
    if let Some(code) = rampart_sandbox::helper_main() {
        return ExitCode::from(u8::try_from(code).unwrap_or(255));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    output::init_logging(&cli.global);
    output::set_quiet(cli.global.quiet);
    let format = cli.global.format;
    match run(cli) {
        Ok(Status::Ok) => ExitCode::SUCCESS,
        Ok(Status::Findings) => ExitCode::from(1),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            e.report(format);
            ExitCode::from(e.code())
        }
    }
}

fn run(cli: Cli) -> Result<Status, CliError> {
    if let Command::TrainBuiltin(args) = &cli.command {
        // Inside the sandbox: no home, no .env, no audit log.
        return cmd::ml::builtin(args);
    }
    if matches!(cli.command, Command::OnnxWorker) {
        // Started by the gateway: no home, no .env; it bounds itself before reading the model.
        return rampart_serve::onnx::worker::serve_stdin()
            .map(|()| Status::Ok)
            .map_err(|e| CliError::input(anyhow::anyhow!("onnx-worker: {e}")));
    }
    if let Ok(dir) = std::env::current_dir() {
        rampart_home::load_dotenv(&dir).map_err(CliError::from)?;
    }
    if let Command::Completions(args) = &cli.command {
        return cmd::completions::run(args);
    }
    let ctx = Ctx::new(&cli.global);
    let result = match cli.command {
        Command::Init(args) => cmd::init::run(&ctx, &args),
        Command::Storage(args) => cmd::storage::run(&ctx, &args),
        Command::Keys(args) => cmd::keys::run(&ctx, &args),
        Command::Trust(args) => cmd::trust::run(&ctx, &args),
        Command::Audit(args) => cmd::audit::run(&ctx, &args),
        Command::Sign(args) => cmd::sign::run(&ctx, &args, cli.global.quiet),
        Command::Verify(args) => cmd::verify::run(&ctx, &args, cli.global.quiet),
        Command::Attest(args) => cmd::attest::run(&ctx, &args),
        Command::Scan(args) => cmd::scan::run(&ctx, &args, cli.global.quiet),
        Command::Convert(args) => cmd::convert::run(&ctx, &args),
        Command::Encrypt(args) => cmd::age::encrypt(&ctx, &args),
        Command::Decrypt(args) => cmd::age::decrypt(&ctx, &args),
        Command::Rekey(args) => cmd::age::rekey(&ctx, &args),
        Command::Data(args) => match &args.command {
            DataCommand::Ingest(a) => cmd::ingest::run(&ctx, a),
            DataCommand::Pii(a) => cmd::pii::run(&ctx, a),
            DataCommand::Drift(a) => cmd::checks::drift(&ctx, a),
            DataCommand::Check(a) => match a.schema.as_deref() {
                Some(schema) => cmd::checks::check(&ctx, a, schema),
                None => cmd::data::run(&ctx, &args.command),
            },
            other => cmd::data::run(&ctx, other),
        },
        Command::Ml(args) => cmd::ml::run(&ctx, &args),
        Command::Model(args) => cmd::model::run(&ctx, &args),
        Command::Serve(args) => cmd::serve::run(&ctx, &args),
        Command::Apikey(args) => cmd::serve::apikey(&ctx, &args),
        Command::Guard(args) => cmd::guard::run(&ctx, &args),
        Command::Pipeline(args) => cmd::pipeline::run(&ctx, &args, cli.global.quiet),
        Command::Train(args) => cmd::train::run(&ctx, &args, cli.global.quiet),
        Command::TrainBuiltin(args) => cmd::ml::builtin(&args),
        Command::OnnxWorker => Ok(Status::Ok),
        Command::Completions(_) => Ok(Status::Ok),
    };
    ctx.finish();
    result
}
