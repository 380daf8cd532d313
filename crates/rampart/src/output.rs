//! Writing results to stdout and logs to stderr.

use std::io::{IsTerminal as _, Write as _};

use crate::cli::{GlobalArgs, LogFormat};
use crate::error::CliError;

/// Whether colour may be used on stderr: a terminal, and `NO_COLOR` unset or empty.
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Sets up `tracing` on stderr: human or JSON Lines, level from -q / -v (or RAMPART_LOG).
pub fn init_logging(global: &GlobalArgs) {
    let level = if global.quiet {
        "error"
    } else {
        match global.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match global.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.with_ansi(color_allowed()).without_time().try_init(),
    };
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets `-q` for the process: human summaries are not printed.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `-q` was given.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes a human summary of what a command did to stdout — nothing under `-q`, where the
/// exit status tells the result. See [`product`] for output that is the command's purpose.
pub fn print(text: &str) -> Result<(), CliError> {
    if quiet() {
        return Ok(());
    }
    product(text)
}

/// Writes what the user asked the command for (a listing, an exported key, a new token,
/// predictions, a completion script) to stdout, `-q` or not; a closed pipe becomes a quiet
/// exit, not a panic. Control characters other than newline and tab are escaped: names and
/// messages that came from a file or a trainer never drive the terminal.
pub fn product(text: &str) -> Result<(), CliError> {
    let text = rampart_train::terminal::escape_text(text);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::internal)
}

/// Writes a human summary to stderr, escaped as [`product`] escapes, for commands whose
/// stdout carries their data (`-o -`); nothing under `-q`.
pub fn print_stderr(text: &str) {
    if !quiet() {
        eprint!("{}", rampart_train::terminal::escape_text(text));
    }
}

/// Writes one JSON value and a newline to stdout (machine output asked for with `--format`:
/// printed under `-q` too).
pub fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string(value).map_err(CliError::internal)?;
    product(&format!("{text}\n"))
}

/// A byte-count progress bar on stderr, only when stderr is a terminal and not `-q`.
pub fn progress(quiet: bool, message: &'static str) -> Option<indicatif::ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {msg} {bytes} ({bytes_per_sec})")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}
