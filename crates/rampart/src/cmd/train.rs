//! `rampart train`: one training run in the sandbox, then the model and its provenance signed.

use rampart_audit::Action;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rampart_audit::Outcome as AuditOutcome;
use rampart_crypto::{Digest, Sha256Hasher};
use rampart_sandbox::{Limits, Outcome, Sandbox, Stream};
use rampart_train::config::{SizeValue, TrainConfig};
use rampart_train::{Input, ProvenanceInfo, RunSpec, TrainError, Trainer};
use serde_json::{Value, json};

use crate::cli::{Format, ModelChoice, TrainRunArgs, UnlockArgs};
use crate::context::Ctx;
use crate::error::{CliError, Status};
use crate::output;

fn input_err(msg: impl std::fmt::Display) -> CliError {
    CliError::input(anyhow::anyhow!("{msg}"))
}

/// What the sandbox will run.
enum Plan {
    Builtin {
        kind: ModelChoice,
        holdout: f64,
        hyper: Vec<String>,
    },
    Exec {
        command: Vec<String>,
        cwd: PathBuf,
        read: Vec<PathBuf>,
    },
}

use crate::hyper::{hyper_args, model_choice};

fn size(v: &SizeValue, what: &str) -> Result<u64, CliError> {
    match v {
        SizeValue::Bytes(b) => Ok(*b),
        SizeValue::Text(t) => {
            rampart_home::parse_size(t).map_err(|e| input_err(format!("[limits] {what}: {e}")))
        }
    }
}

fn limits(
    policy: &rampart_home::TrainPolicy,
    config: Option<&TrainConfig>,
    a: &TrainRunArgs,
) -> Result<Limits, CliError> {
    let mut l = Limits {
        wall_ms: policy.timeout.saturating_mul(1000),
        cpu_seconds: policy.cpu,
        memory_bytes: policy.memory.0,
        file_size_bytes: policy.file_size.0,
        open_files: policy.open_files,
        processes: policy.processes,
        ..Limits::default()
    };
    if let Some(c) = config.map(|c| &c.limits) {
        if let Some(t) = c.timeout {
            l.wall_ms = t.saturating_mul(1000);
        }
        if let Some(v) = c.cpu {
            l.cpu_seconds = v;
        }
        if let Some(v) = &c.memory {
            l.memory_bytes = size(v, "memory")?;
        }
        if let Some(v) = &c.file_size {
            l.file_size_bytes = size(v, "file_size")?;
        }
        if let Some(v) = c.open_files {
            l.open_files = v;
        }
        if let Some(v) = c.processes {
            l.processes = v;
        }
    }
    if let Some(t) = a.timeout {
        l.wall_ms = t.saturating_mul(1000);
        // A shorter wall clock is the point; the CPU limit must not outlast it.
        l.cpu_seconds = l.cpu_seconds.min(t.max(1));
    }
    if let Some(m) = &a.memory {
        l.memory_bytes =
            rampart_home::parse_size(m).map_err(|e| input_err(format!("--memory: {e}")))?;
    }
    if let Some(m) = &a.max_output {
        l.output_bytes =
            rampart_home::parse_size(m).map_err(|e| input_err(format!("--max-output: {e}")))?;
    }
    if let Some(m) = &a.scratch {
        l.scratch_bytes =
            rampart_home::parse_size(m).map_err(|e| input_err(format!("--scratch: {e}")))?;
    }
    if l.wall_ms == 0 || l.cpu_seconds == 0 || l.open_files < 16 || l.processes < 2 {
        return Err(input_err(
            "limits: timeout and cpu must be positive, open_files at least 16, processes at least 2",
        ));
    }
    if l.memory_bytes < 16 << 20 {
        return Err(input_err(format!(
            "the memory limit of {} is too small to start a program (at least 16 MiB)",
            output::bytes(l.memory_bytes)
        )));
    }
    Ok(l)
}

/// A new input file of the run. It is readable by all (0644) so that the unprivileged uid of
/// a root run can read it inside the sandbox; the run's directory around it is private (0700)
/// on the host.
fn input_file(to: &Path) -> Result<std::fs::File, CliError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(to)
        .map_err(|e| {
            CliError::internal(
                anyhow::Error::new(e).context(format!("cannot write {}", to.display())),
            )
        })
}

/// Copies `reader` into a new input file (see [`input_file`]) while hashing it.
fn materialise(mut reader: impl Read, to: &Path) -> Result<(Digest, u64), CliError> {
    let err = |e: std::io::Error| {
        CliError::internal(anyhow::Error::new(e).context(format!("cannot write {}", to.display())))
    };
    let mut file = input_file(to)?;
    let mut hasher = Sha256Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| {
            CliError::input(anyhow::Error::new(e).context("cannot read the dataset"))
        })?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else {
            break;
        };
        hasher.update(chunk);
        file.write_all(chunk).map_err(err)?;
        total += n as u64;
    }
    file.sync_all().map_err(err)?;
    Ok((hasher.finish(), total))
}

/// Opens the dataset (an ingested one by digest, or a file in the data roots), copies the
/// plaintext into the run's private input directory and returns it as an input.
fn dataset_input(ctx: &Ctx, text: &str, dir: &Path) -> Result<Input, CliError> {
    if text.starts_with("sha256:") {
        let policy = ctx.home.load_policy()?;
        let session = ctx.session(&policy)?;
        let store = rampart_ingest::DatasetStore::of(&ctx.home);
        let ds = store.lookup(text)?;
        let path = dir.join(format!("data.{}", ds.format.extension()));
        let mut file = input_file(&path)?;
        rampart_ingest::open::copy_stored(&session, text, "train", &mut file)?;
        file.sync_all().map_err(|e| {
            CliError::internal(
                anyhow::Error::new(e).context(format!("cannot write {}", path.display())),
            )
        })?;
        return Ok(Input {
            name: "dataset".into(),
            path,
            digest: ds.digest,
            uri: Some(format!("rampart:dataset/{text}")),
        });
    }
    let requested = Path::new(text);
    let unlock = UnlockArgs {
        identities: Vec::new(),
        passphrase_file: None,
    };
    let ds = crate::unlock::open_dataset(ctx, requested, &unlock)?;
    let base = ds
        .real
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".age").to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "data".into());
    let path = dir.join(&base);
    let (digest, _) = materialise(ds.reader, &path)?;
    Ok(Input {
        name: "dataset".into(),
        path,
        digest,
        uri: Some(format!("file:{}", ds.real.display())),
    })
}

fn file_input(name: String, from: &Path, dir: Option<&Path>) -> Result<Input, CliError> {
    let f = std::fs::File::open(from).map_err(|e| {
        CliError::input(anyhow::Error::new(e).context(format!("cannot open {}", from.display())))
    })?;
    let real = from.canonicalize().unwrap_or_else(|_| from.to_path_buf());
    let (path, digest) = match dir {
        // Copied: the trainer reads the bytes that were digested.
        Some(dir) => {
            let base = real
                .file_name()
                .map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
            let to = dir.join(base);
            let (d, _) = materialise(f, &to)?;
            (to, d)
        }
        None => {
            let mut h = Sha256Hasher::new();
            std::io::copy(&mut std::io::BufReader::new(f), &mut h).map_err(|e| {
                CliError::input(
                    anyhow::Error::new(e).context(format!("cannot read {}", from.display())),
                )
            })?;
            (real.clone(), h.finish())
        }
    };
    Ok(Input {
        name,
        path,
        digest,
        uri: Some(format!("file:{}", real.display())),
    })
}

fn run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let stamp = now
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_default();
    let mut h = Sha256Hasher::new();
    h.update(
        format!(
            "{}:{}:{:?}",
            std::process::id(),
            now.unix_timestamp_nanos(),
            std::thread::current().id()
        )
        .as_bytes(),
    );
    let tag = h.finish().to_hex();
    format!("{stamp}-{}", tag.get(..8).unwrap_or_default())
}

pub fn run(ctx: &Ctx, a: &TrainRunArgs, quiet: bool) -> Result<Status, CliError> {
    ctx.home.require().map_err(|e| {
        CliError::from(e)
            .hint("training signs its model with the home's key: create one with `rampart init`")
    })?;
    let policy = ctx.home.load_policy()?;
    let config = match &a.config {
        Some(p) => {
            let text = rampart_home::secure_fs::read_small_file(p)?;
            Some((
                TrainConfig::parse(&text, p).map_err(input_err)?,
                p.clone(),
                text,
            ))
        }
        None => None,
    };
    let cfg = config.as_ref().map(|(c, _, _)| c);
    let cfg_path = config.as_ref().map(|(_, p, _)| p.as_path());
    let dataset = a
        .data
        .clone()
        .or_else(|| cfg.map(|c| c.data.dataset.clone()))
        .ok_or_else(|| {
            input_err("name the training data: --data DATASET (or [data] dataset in --config)")
        })?;
    let label = a
        .label
        .clone()
        .or_else(|| cfg.and_then(|c| c.data.label.clone()));
    let ignore = if a.ignore.is_empty() {
        cfg.map(|c| c.data.ignore.clone()).unwrap_or_default()
    } else {
        a.ignore.clone()
    };
    let base_model = a
        .base_model
        .clone()
        .or_else(|| cfg.and_then(|c| c.data.base_model.clone()));
    let mut extra_read: Vec<PathBuf> = policy.train.read.clone();
    extra_read.extend(a.read.iter().cloned());
    let mut env_allow = policy.train.env.clone();
    env_allow.extend(a.env.iter().cloned());
    let cwd = std::env::current_dir().map_err(CliError::internal)?;
    let plan = if a.exec {
        Plan::Exec {
            command: a.command.clone(),
            cwd: cwd.clone(),
            read: Vec::new(),
        }
    } else if let Some(kind) = a.kind {
        let holdout = a
            .holdout
            .or_else(|| cfg.and_then(|c| c.model.as_ref()?.get("holdout")?.as_float()))
            .unwrap_or(0.2);
        Plan::Builtin {
            kind,
            holdout,
            hyper: hyper_args(cfg.and_then(|c| c.model.as_ref()), cfg_path)?,
        }
    } else if let Some(t) = cfg.and_then(|c| c.trainer.as_ref()) {
        env_allow.extend(t.env.iter().cloned());
        Plan::Exec {
            command: t.command.clone(),
            cwd: t.cwd.clone().unwrap_or_else(|| cwd.clone()),
            read: t.read.clone(),
        }
    } else if let Some(m) = cfg.and_then(|c| c.model.as_ref()) {
        let kind = m
            .get("kind")
            .and_then(toml::Value::as_str)
            .ok_or_else(|| {
                input_err(
                    "[model] needs kind = \"random-forest\", \"isolation-forest\" or \"logistic\"",
                )
            })
            .and_then(model_choice)?;
        let holdout = a
            .holdout
            .or_else(|| m.get("holdout").and_then(toml::Value::as_float))
            .unwrap_or(0.2);
        Plan::Builtin {
            kind,
            holdout,
            hyper: hyper_args(Some(m), cfg_path)?,
        }
    } else {
        return Err(input_err("say what to train").hint(
            "--model random-forest|isolation-forest|logistic, --exec -- COMMAND, or --config train.toml",
        ));
    };
    if let Plan::Builtin { kind, holdout, .. } = &plan {
        if *kind != ModelChoice::IsolationForest && label.is_none() {
            return Err(
                input_err("a classifier needs --label COL").hint("name the column to predict")
            );
        }
        if !(0.0..1.0).contains(holdout) {
            return Err(input_err(format!(
                "--holdout {holdout}: expected a fraction in [0, 1)"
            )));
        }
    }
    let limits = limits(&policy.train, cfg, a)?;
    let (env, refused) = rampart_sandbox::scrub_env(std::env::vars_os(), &env_allow);
    if !refused.is_empty() {
        return Err(input_err(format!(
            "{} may not be passed to a trainer: RAMPART_* and secret-looking variables never enter the sandbox",
            refused.join(", ")
        )));
    }

    // The run directory, and a private scratch area for the plaintext inputs.
    let out = a
        .output
        .clone()
        .or_else(|| cfg.and_then(|c| c.output.dir.clone()))
        .unwrap_or_else(|| ctx.home.runs_dir().join(run_id()));
    let out = std::path::absolute(&out).map_err(CliError::internal)?;
    rampart_train::check_output(&out).map_err(|e| input_err(e.to_string()))?;
    let tmp_root = ctx.home.tmp_dir();
    rampart_home::secure_fs::create_private_dir(&tmp_root)?;
    // Locked and removed on every exit path (signals included); dead runs' are swept.
    let work = rampart_train::workdir::WorkDir::create(&tmp_root).map_err(CliError::internal)?;
    let inputs_dir = work.path().join("inputs");
    let scratch = work.path().join("scratch");
    for d in [&inputs_dir, &scratch] {
        std::fs::create_dir(d).map_err(CliError::internal)?;
    }
    let data = dataset_input(ctx, &dataset, &inputs_dir)?;
    let mut inputs = Vec::new();
    if let Some(b) = &base_model {
        inputs.push(file_input("base-model".into(), b, Some(&inputs_dir))?);
    }
    // Created only once the inputs are verified: a refused dataset leaves nothing behind.
    rampart_train::prepare_output(&out).map_err(|e| input_err(e.to_string()))?;

    let (trainer, parameters, build) = match &plan {
        Plan::Builtin {
            kind,
            holdout,
            hyper,
        } => {
            let is_csv = data
                .path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
            if !is_csv {
                return Err(input_err(format!(
                    "{dataset}: the built-in models read CSV; this dataset is {}",
                    data.path
                        .extension()
                        .map_or("not CSV".into(), |e| e.to_string_lossy().into_owned())
                ))
                .hint("train it with your own trainer: --exec -- COMMAND"));
            }
            let exe = std::env::current_exe()
                .and_then(|p| p.canonicalize())
                .map_err(CliError::internal)?;
            let kind_text = clap::ValueEnum::to_possible_value(kind)
                .map(|v| v.get_name().to_owned())
                .unwrap_or_default();
            let mut args = vec![
                "__train-builtin".to_owned(),
                "--data".into(),
                data.path.display().to_string(),
                "--model".into(),
                kind_text.clone(),
                "--holdout".into(),
                holdout.to_string(),
                "--output".into(),
                out.join(rampart_train::MODEL_DIR)
                    .join("model.safetensors")
                    .display()
                    .to_string(),
                "--metrics".into(),
                out.join(rampart_train::MODEL_DIR)
                    .join(rampart_train::METRICS)
                    .display()
                    .to_string(),
            ];
            if let Some(l) = &label {
                args.extend(["--label".into(), l.clone()]);
            }
            for i in &ignore {
                args.extend(["--ignore".into(), i.clone()]);
            }
            args.extend(hyper.iter().cloned());
            let params = json!({
                "trainer": "builtin",
                "model": kind_text,
                "label": label,
                "ignore": ignore,
                "holdout": holdout,
                "hyperparameters": hyper,
            });
            (
                Trainer {
                    program: exe.clone(),
                    args,
                    read: vec![exe],
                    cwd: scratch.clone(),
                    path: Vec::new(),
                },
                params,
                format!("builtin/{kind_text}"),
            )
        }
        Plan::Exec { command, cwd, read } => {
            let Some((program, rest)) = command.split_first() else {
                return Err(input_err("--exec needs a command after --"));
            };
            let path_var = std::env::var_os("PATH");
            // `--python` (or train.python) stands in for a python/python3/pythonX.Y command.
            let python = a.python.clone().or_else(|| policy.train.python.clone());
            let is_python = Path::new(program)
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| {
                    n == "python" || n.strip_prefix("python").is_some_and(|v| v.starts_with('3'))
                });
            let wanted = match (&python, is_python) {
                (Some(p), true) => p.clone(),
                _ => PathBuf::from(program),
            };
            let env_of = |k: &str| std::env::var(k).ok();
            let resolved =
                rampart_sandbox::resolve_program(&wanted, path_var.as_deref(), cwd, &env_of)
                    .map_err(|e| {
                        input_err(e).hint(
                            "name the program by its path, or the interpreter with --python PATH",
                        )
                    })?;
            let program_path = resolved.program.clone();
            let path_dirs = resolved.path_dirs.clone();
            let mut reads = resolved.read.clone();
            reads.extend(read.iter().cloned());
            // Arguments that name files are the trainer's code: readable, and digested into
            // the provenance.
            for arg in rest {
                let p = cwd.join(arg);
                if p.is_file() {
                    let input = file_input(format!("code:{arg}"), &p, None)?;
                    reads.push(input.path.clone());
                    inputs.push(input);
                }
            }
            for r in &reads {
                if std::fs::symlink_metadata(r).is_err() {
                    return Err(input_err(format!(
                        "--read {}: no such file or directory",
                        r.display()
                    )));
                }
            }
            let params = json!({
                "trainer": "exec",
                "command": command,
                "program": program_path,
                "resolved": resolved.via,
                "cwd": cwd,
                "read": reads,
            });
            (
                Trainer {
                    program: program_path,
                    args: rest.to_vec(),
                    read: reads,
                    cwd: cwd.clone(),
                    path: path_dirs,
                },
                params,
                "exec".to_owned(),
            )
        }
    };
    let mut trainer = trainer;
    trainer.read.extend(extra_read.iter().cloned());
    let spec = RunSpec {
        trainer,
        dataset: data,
        inputs,
        output: out.clone(),
        scratch,
        limits: limits.clone(),
        env,
        // The whole home: keys, registry, audit log, other runs' plaintext. The run's own
        // output and inputs inside it still show through.
        hide: vec![ctx.home.root().to_path_buf(), ctx.home.keys_dir()],
        devices: if a.gpu || policy.train.gpu {
            rampart_sandbox::gpu::nvidia_devices(Path::new("/dev"))
        } else {
            Vec::new()
        },
        strict: !a.allow_unsandboxed,
        // A test hook: debug builds only (the sandbox ignores it in release builds too).
        simulate_missing: if cfg!(debug_assertions) {
            std::env::var("RAMPART_SANDBOX_SIMULATE_MISSING")
                .map(|v| v.split(',').map(str::to_owned).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        },
    };
    let mut parameters = parameters;
    if let (Value::Object(p), Some((_, path, text))) = (&mut parameters, &config) {
        let mut h = Sha256Hasher::new();
        h.update(text.as_bytes());
        p.insert(
            "config".into(),
            json!({"path": path, "sha256": h.finish().to_hex(), "text": text}),
        );
    }
    if let Value::Object(p) = &mut parameters {
        p.insert(
            "limits".into(),
            serde_json::to_value(&limits).unwrap_or_default(),
        );
        p.insert("allow_unsandboxed".into(), json!(a.allow_unsandboxed));
    }
    if a.allow_unsandboxed {
        ctx.audit(
            ctx.event(Action::TrainUnsandboxed, AuditOutcome::Ok)
                .subject_path(out.display().to_string())
                .detail(
                    "reason",
                    "--allow-unsandboxed: protections the machine lacks are skipped",
                ),
        )?;
    }

    let sandbox = Sandbox::current_exe().map_err(CliError::internal)?;
    let mut show = |_: Stream, chunk: &[u8]| {
        if !quiet {
            let _ = std::io::stderr().write_all(chunk);
        }
    };
    let run_text = out.display().to_string();
    let run_started = std::time::Instant::now();
    let outcome = match rampart_train::run_trainer(&spec, &sandbox, &mut show) {
        Ok(o) => o,
        Err(TrainError::Sandbox(e @ rampart_sandbox::SandboxError::Unsupported(_))) => {
            ctx.audit_refusal(
                ctx.event(Action::TrainRun, AuditOutcome::Denied)
                    .subject_path(&run_text)
                    .detail("reason", e.to_string()),
            );
            return Err(input_err(e).hint(
                "run on a kernel with user namespaces, Landlock and seccomp, or pass --allow-unsandboxed (audited)",
            ));
        }
        Err(TrainError::Sandbox(
            e @ (rampart_sandbox::SandboxError::View(_)
            | rampart_sandbox::SandboxError::NotReadable { .. }
            | rampart_sandbox::SandboxError::Missing { .. }),
        )) => {
            let shown = rampart_train::terminal::escape(&e.to_string()).into_owned();
            ctx.audit_refusal(
                ctx.event(Action::TrainRun, AuditOutcome::Denied)
                    .subject_path(&run_text)
                    .detail("reason", shown.clone()),
            );
            return Err(input_err(shown));
        }
        Err(e) => return Err(CliError::internal(e)),
    };
    let r = &outcome.report;
    let mut report = json!({
        "run": out,
        "dataset": {"name": dataset, "sha256": spec.dataset.digest.to_hex(), "uri": spec.dataset.uri},
        "inputs": spec.inputs.iter().map(|i| json!({"name": i.name, "sha256": i.digest.to_hex()})).collect::<Vec<_>>(),
        "trainer": parameters,
        "sandbox": {
            "outcome": r.explain(),
            "success": r.success(),
            "landlock": r.landlock,
            "unsandboxed": r.missing.iter().map(|(s, why)| json!({"step": s, "reason": why})).collect::<Vec<_>>(),
            "seconds": r.elapsed.as_secs_f64(),
            "process_limit_hits": r.process_limit_hits,
            "memory_limit_hits": r.memory_limit_hits,
            "memory_scope": r.memory_scope,
            "run_as": r.run_as,
        },
        "started": outcome.started,
        "finished": outcome.finished,
        "log": out.join(rampart_train::LOG),
    });
    if !r.missing.is_empty() {
        tracing::warn!(
            "ran without: {}",
            r.missing
                .iter()
                .map(|(s, why)| format!("{s} ({why})"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        ctx.audit(
            ctx.event(Action::TrainUnsandboxed, AuditOutcome::Ok)
                .subject_path(&run_text)
                .detail(
                    "missing",
                    r.missing
                        .iter()
                        .map(|(s, _)| s.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
        )?;
    }
    if let Outcome::SetupFailed { step, message } = &r.outcome {
        let _ = rampart_train::write_report(&out, &report);
        ctx.audit_refusal(
            ctx.event(Action::TrainRun, AuditOutcome::Denied)
                .subject_path(&run_text)
                .detail("step", step.clone())
                .detail("reason", message.clone()),
        );
        return Err(input_err(format!("the sandbox could not be set up ({step}): {message}")).hint(
            "this machine cannot enforce the sandbox; pass --allow-unsandboxed to run without the missing protection (audited)",
        ));
    }
    let fail = |report: &mut Value, reason: String| -> Result<Status, CliError> {
        if let Value::Object(o) = report {
            o.insert("error".into(), json!(reason));
        }
        rampart_train::write_report(&out, report).map_err(CliError::internal)?;
        ctx.audit(
            ctx.event(Action::TrainRun, AuditOutcome::Failed)
                .subject_path(&run_text)
                .subject_digest(format!("sha256:{}", spec.dataset.digest))
                .detail("reason", reason.clone()),
        )?;
        match ctx.format {
            Format::Json | Format::Sarif => output::print_json(report)?,
            Format::Human => output::print(&format!(
                "training FAILED: {reason}\n  log  {}\n  run  {}\n",
                out.join(rampart_train::LOG).display(),
                out.display()
            ))?,
        }
        Ok(Status::Findings)
    };
    if !r.success() {
        return fail(&mut report, r.explain());
    }
    let policy_fail_on = policy.scan.fail_on;
    let scan = policy.scan.config();
    let bounds = rampart_train::CollectBounds {
        max_bytes: limits.output_bytes,
        // The run's wall clock counts the collection too.
        deadline: Some(run_started + std::time::Duration::from_millis(limits.wall_ms)),
    };
    let outputs = match rampart_train::collect_outputs(&out, &scan, policy_fail_on, bounds) {
        Ok(o) => o,
        Err(TrainError::Refused { path, reason }) => {
            return fail(&mut report, format!("{path}: {reason}"));
        }
        Err(e) => return Err(CliError::internal(e)),
    };
    let (key, _) = ctx.home.signing_key()?;
    let info = ProvenanceInfo {
        parameters: report.get("trainer").cloned().unwrap_or_default(),
        invocation_id: out
            .file_name()
            .map_or_else(run_id, |n| n.to_string_lossy().into_owned()),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let signed = match rampart_train::sign_outputs(&spec, &outcome, &outputs, &info, &key) {
        Ok(s) => s,
        Err(TrainError::Refused { path, reason }) => {
            return fail(&mut report, format!("{path}: {reason}"));
        }
        Err(e) => return Err(CliError::internal(e)),
    };
    let _ = build;
    if let Value::Object(o) = &mut report {
        o.insert(
            "model".into(),
            json!({
                "dir": out.join(rampart_train::MODEL_DIR),
                "root": signed.root.to_hex(),
                "files": outputs.files.iter().map(|f| json!({"name": f.name, "format": f.format, "size": f.size, "sha256": f.digest.to_hex()})).collect::<Vec<_>>(),
            }),
        );
        o.insert("signature".into(), json!(signed.signature));
        o.insert("provenance".into(), json!(signed.provenance));
        o.insert("key".into(), json!(signed.key.to_string()));
        o.insert(
            "metrics".into(),
            outputs.metrics.clone().unwrap_or(Value::Null),
        );
    }
    rampart_train::write_report(&out, &report).map_err(CliError::internal)?;
    let mut event = ctx
        .event(Action::TrainRun, AuditOutcome::Ok)
        .subject_path(out.join(rampart_train::MODEL_DIR).display().to_string())
        .subject_digest(format!("sha256:{}", signed.root))
        .detail("dataset", format!("sha256:{}", spec.dataset.digest))
        .detail("trainer", build.clone())
        .detail("files", outputs.files.len())
        .detail("seconds", r.elapsed.as_secs_f64());
    if let Some(ll) = &r.landlock {
        event = event.detail("landlock", ll.clone());
    }
    ctx.audit(event)?;
    ctx.audit(
        ctx.event(Action::TrainProvenance, AuditOutcome::Ok)
            .subject_path(signed.provenance.display().to_string())
            .subject_digest(format!("sha256:{}", signed.root))
            .detail("key", signed.key.to_string())
            .detail("signature", signed.signature.display().to_string()),
    )?;
    match ctx.format {
        Format::Json | Format::Sarif => output::print_json(&report)?,
        Format::Human => {
            let total: u64 = outputs.files.iter().map(|f| f.size).sum();
            let mut text = format!(
                "trained in the sandbox ({build}) in {:.1} s\n  model       {} ({} file(s), {}, root sha256:{})\n  dataset     sha256:{}\n  signature   {} (key {})\n  provenance  {}\n",
                r.elapsed.as_secs_f64(),
                out.join(rampart_train::MODEL_DIR).display(),
                outputs.files.len(),
                output::bytes(total),
                signed.root,
                spec.dataset.digest,
                signed.signature.display(),
                signed.key,
                signed.provenance.display(),
            );
            if let Some(m) = &outputs.metrics {
                let shown: Vec<String> = ["accuracy", "roc_auc", "f1_macro", "log_loss"]
                    .iter()
                    .filter_map(|k| {
                        m.get(*k)
                            .and_then(Value::as_f64)
                            .map(|v| format!("{k} {v:.4}"))
                    })
                    .collect();
                if !shown.is_empty() {
                    text.push_str(&format!("  metrics     {}\n", shown.join("  ")));
                }
            }
            text.push_str(&format!(
                "  log         {}\n  run         {}\n",
                out.join(rampart_train::LOG).display(),
                out.display()
            ));
            output::print(&text)?;
        }
    }
    Ok(Status::Ok)
}
