//! `rampart-sandbox-exec`: the sandbox helper on its own, and a way to run a command in the
//! sandbox by hand: `rampart-sandbox-exec SPEC.json` (the spec's `status_file` is ignored).

use std::process::ExitCode;

fn main() -> ExitCode {
    if let Some(code) = rampart_sandbox::helper_main() {
        return ExitCode::from(u8::try_from(code).unwrap_or(255));
    }
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: rampart-sandbox-exec SPEC.json");
        return ExitCode::from(2);
    };
    let spec: rampart_sandbox::Spec = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rampart-sandbox-exec: {}: {e}", path.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    let sandbox = match rampart_sandbox::Sandbox::current_exe() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rampart-sandbox-exec: {e}");
            return ExitCode::from(2);
        }
    };
    let mut forward = |stream: rampart_sandbox::Stream, chunk: &[u8]| {
        use std::io::Write as _;
        let _ = match stream {
            rampart_sandbox::Stream::Stdout => std::io::stdout().write_all(chunk),
            rampart_sandbox::Stream::Stderr => std::io::stderr().write_all(chunk),
        };
    };
    match sandbox.run(&spec, &mut forward) {
        Ok(report) => {
            eprintln!("rampart-sandbox-exec: {}", report.explain());
            ExitCode::from(if report.success() { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("rampart-sandbox-exec: {e}");
            ExitCode::from(2)
        }
    }
}
