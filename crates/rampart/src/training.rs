//! A training run from the command line or a pipeline step: the `rampart_train::service`
//! called in-process with this executable as the built-in trainer and the keys at hand.

use std::io::Write as _;
use std::path::PathBuf;

use rampart_sandbox::{Sandbox, Stream};
use rampart_train::service::{self, TrainOutcome, TrainRequest};

use crate::context::Ctx;
use crate::error::CliError;
use crate::unlock::{LazyKeys, NO_UNLOCK_ARGS};

/// The rampart executable, which runs the built-in trainer inside the sandbox.
pub fn builtin_program() -> Result<PathBuf, CliError> {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(CliError::internal)
}

/// Runs a training request in-process, with the keys at hand for an encrypted dataset file and
/// the trainer's output shown unless `quiet`.
pub fn train(ctx: &Ctx, req: &TrainRequest<'_>, quiet: bool) -> Result<TrainOutcome, CliError> {
    let policy = ctx.home.load_policy()?;
    let session = ctx.session(&policy)?;
    let sandbox = Sandbox::current_exe().map_err(CliError::internal)?;
    let mut show = |_: Stream, chunk: &[u8]| {
        if !quiet {
            let _ = std::io::stderr().write_all(chunk);
        }
    };
    let keys = LazyKeys::new(ctx, &NO_UNLOCK_ARGS);
    let load = || keys.load();
    let outcome = service::train(
        &session,
        req,
        rampart_ingest::open::Keys::Lazy(&load),
        &sandbox,
        &mut show,
    );
    let outcome = outcome.map_err(|e| keys.error(e))?;
    let missing = match &outcome {
        TrainOutcome::Trained(t) => &t.missing,
        TrainOutcome::Failed(f) => &f.missing,
    };
    if !missing.is_empty() {
        tracing::warn!(
            "ran without: {}",
            missing
                .iter()
                .map(|(s, why)| format!("{s} ({why})"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(outcome)
}
