//! What the sandbox test files share: the helper binary, a spec over the system paths, a run
//! that collects both streams.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;

use rampart_sandbox::{Limits, Report, Sandbox, Spec, Stream};

pub fn sandbox() -> Sandbox {
    Sandbox::new(env!("CARGO_BIN_EXE_rampart-sandbox-exec"))
}

/// `program ARGS` over the system paths, strict, with a 30 s wall clock.
pub fn spec(program: &str, args: &[&str]) -> Spec {
    Spec {
        program: PathBuf::from(program),
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: PathBuf::from("/"),
        read: rampart_sandbox::system_read_paths(),
        write: Vec::new(),
        scratch: None,
        devices: Vec::new(),
        hide: Vec::new(),
        limits: Limits {
            wall_ms: 30_000,
            ..Limits::default()
        },
        strict: true,
        simulate_missing: Vec::new(),
    }
}

/// Runs `spec`; returns the report, stdout and stderr.
pub fn run(spec: &Spec) -> (Report, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let report = sandbox()
        .run(spec, &mut |s, chunk| match s {
            Stream::Stdout => out.extend_from_slice(chunk),
            Stream::Stderr => err.extend_from_slice(chunk),
        })
        .unwrap();
    (
        report,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// Command lines of live processes that contain `marker`.
pub fn survivors(marker: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(marker))
        .collect()
}
