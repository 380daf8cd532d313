//! ONNX models run by ONNX Runtime, for everything in rampart that runs one: the gateway
//! serves them (`rampart-serve`), and training scores them on held-out rows outside the
//! sandbox (`rampart-train`).
//!
//! **The runtime.** ONNX Runtime (through the `ort` crate, loading the `libonnxruntime`
//! shared library at run time) rather than `tract` (pure Rust): the models people serve from
//! scikit-learn come through skl2onnx with `ai.onnx.ml` classifiers whose probabilities are a
//! sequence of maps (`ZipMap`), and tract keeps to plain tensors by design (its maintainers
//! declined sequence and map types, sonos/tract#1262); ONNX Runtime is also the reference the
//! exporters test against, so its answers are the answers. Nothing is downloaded at build or
//! run time: the library is the one the `onnxruntime` wheel on PyPI ships
//! (`site-packages/onnxruntime/capi/libonnxruntime.so.1.*`), named by [`LIBRARY_ENV`] (or
//! `ORT_DYLIB_PATH`, ort's own variable). Its version is checked when it is loaded.
//!
//! **Limits for hostile models.** A model is built only after the registry's checks
//! (signature, scan: custom operator domains and external data are refused there), and only
//! within [`OnnxLimits`]: file size and graph node count (counted by the scanner's protobuf
//! walk before ONNX Runtime sees a byte), a per-request time limit (a watchdog terminates the
//! run), and intra-op threads. An op the runtime does not implement is a refusal at load with
//! ONNX Runtime's words, which name the op. Inputs and outputs the gateway cannot carry as V2
//! tensors are refused at load, naming them.
//!
//! **Tensors.** See [`tensor`]: the gateway checks inputs against the graph (names, datatype, rank,
//! fixed dimensions, element count) before a tensor is built; a classifier's sequence of maps
//! becomes an `FP32` tensor `[rows, classes]` with the classes in its `parameters`.

pub mod tensor;
mod wire;
pub mod worker;

pub use worker::Isolation;

use std::sync::{Arc, Mutex, OnceLock, Weak, mpsc};
use std::time::{Duration, Instant};

use ort::session::{RunOptions, Session};
use ort::value::{DynValue, TensorElementType, ValueType};
use serde_json::{Value, json};

use crate::tensor::{Data, Datatype, Port, Request, Tensor};

/// The environment variable naming ONNX Runtime's shared library.
pub const LIBRARY_ENV: &str = "RAMPART_ONNXRUNTIME";

/// Bounds on what an ONNX model may cost.
#[derive(Debug, Clone, Copy)]
pub struct OnnxLimits {
    /// Most bytes of the model file.
    pub max_file: u64,
    /// Most graph nodes (subgraphs included).
    pub max_nodes: u64,
    /// Longest one inference may run before it is terminated.
    pub run_timeout: Duration,
    /// Threads one inference may use (0: the machine's cores shared among the sessions).
    pub threads: usize,
    /// Sessions of the model that run requests side by side (0: one per core for a model of
    /// at most [`SMALL_MODEL`] bytes, else one). Each holds its own copy of the weights.
    pub sessions: usize,
}

/// The largest model file that gets a session per core by default: small graphs (a forest, a
/// linear model) answer faster side by side on one thread each than one at a time on all.
pub const SMALL_MODEL: u64 = 64 << 20;

impl Default for OnnxLimits {
    fn default() -> Self {
        Self {
            max_file: 2 << 30,
            max_nodes: 200_000,
            run_timeout: Duration::from_secs(10),
            threads: 0,
            sessions: 0,
        }
    }
}

/// Why an ONNX model cannot be served or a request not answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// ONNX Runtime's library is not there or not usable.
    #[error("ONNX Runtime is not available: {0}")]
    Runtime(String),
    /// The model is refused before it is built.
    #[error("{0}")]
    Refused(String),
    /// ONNX Runtime could not build the model (an op it does not implement, a malformed graph).
    #[error("ONNX Runtime cannot build the model: {0}")]
    Build(String),
    /// The run did not finish within the time limit.
    #[error("the model did not answer within {0:?}; the run was terminated")]
    Timeout(Duration),
    /// The run failed.
    #[error("the model failed on this input: {0}")]
    Run(String),
    /// The model's worker process could not start, build the model, or answer.
    #[error("{0}")]
    Worker(String),
}

fn locate() -> Result<std::path::PathBuf, String> {
    std::env::var_os(LIBRARY_ENV)
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH"))
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
        .ok_or_else(|| {
            format!(
                "serving an ONNX model needs ONNX Runtime's shared library: `pip install onnxruntime` \
                 and set {LIBRARY_ENV} to its site-packages/onnxruntime/capi/libonnxruntime.so.1.*"
            )
        })
}

/// Loads ONNX Runtime's shared library (once per process) without starting it: what a worker
/// does while it can still open files, before it confines itself and builds the environment
/// (whose threads then start inside the confinement).
///
/// # Errors
/// [`OnnxError::Runtime`] when the library is not named, not found, or too old.
pub fn load_library() -> Result<(), OnnxError> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path = locate()?;
            ort::init_from(&path)
                .map(drop)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .clone()
        .map_err(OnnxError::Runtime)
}

/// The process's one ONNX Runtime environment, loaded on first use.
///
/// # Errors
/// [`OnnxError::Runtime`] when the library is not named, not found, or too old.
pub fn runtime() -> Result<&'static ort::environment::Environment, OnnxError> {
    static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    load_library()?;
    ENV.get_or_init(|| {
        ort::init()
            .with_name("rampart")
            .build()
            .map_err(|e| format!("ONNX Runtime's environment: {e}"))
    })
    .as_ref()
    .map_err(|e| OnnxError::Runtime(e.clone()))
}

/// How a graph output becomes a V2 tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OutputKind {
    /// A tensor of this type.
    Tensor(Datatype),
    /// A sequence of maps from class (integer or string) to probability: one row per map.
    ClassMaps {
        /// Whether the classes are strings.
        string_keys: bool,
    },
}

/// A graph output.
#[derive(Debug, Clone)]
struct OutputPort {
    port: Port,
    kind: OutputKind,
}

/// Where a model's runs happen.
enum Engine {
    /// Sessions in this process (each run takes a free one, else waits its turn).
    InProcess {
        sessions: Vec<Mutex<Session>>,
        /// Where the next run starts looking for a free session.
        next: std::sync::atomic::AtomicUsize,
    },
    /// One session per worker process, each under a memory ceiling.
    Workers(worker::Pool),
}

/// A loaded ONNX model.
pub struct OnnxModel {
    engine: Engine,
    inputs: Vec<Port>,
    outputs: Vec<OutputPort>,
    nodes: u64,
    limits: OnnxLimits,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("inputs", &self.inputs)
            .field("nodes", &self.nodes)
            .field("isolated", &self.isolated())
            .finish_non_exhaustive()
    }
}

fn datatype_of(t: TensorElementType) -> Option<Datatype> {
    Some(match t {
        TensorElementType::Float32 => Datatype::Fp32,
        TensorElementType::Float64 => Datatype::Fp64,
        TensorElementType::Int64 => Datatype::Int64,
        TensorElementType::Int32 => Datatype::Int32,
        TensorElementType::Bool => Datatype::Bool,
        TensorElementType::String => Datatype::Bytes,
        _ => return None,
    })
}

fn tensor_port(name: &str, ty: &ValueType, what: &str) -> Result<Port, OnnxError> {
    match ty {
        ValueType::Tensor { ty, shape, .. } => {
            let datatype = datatype_of(*ty).ok_or_else(|| {
                OnnxError::Refused(format!(
                    "{what} {name} is a tensor of {ty}, which the gateway does not carry \
                     (it takes FP32, FP64, INT64, INT32, BOOL and BYTES)"
                ))
            })?;
            Ok(Port {
                name: name.to_owned(),
                datatype,
                shape: Some(shape.iter().map(|d| if *d < 0 { -1 } else { *d }).collect()),
            })
        }
        other => Err(OnnxError::Refused(format!(
            "{what} {name} is {other:?}, not a tensor the gateway can carry"
        ))),
    }
}

fn output_port(name: &str, ty: &ValueType) -> Result<OutputPort, OnnxError> {
    if let ValueType::Sequence(inner) = ty
        && let ValueType::Map { key, value } = inner.as_ref()
        && matches!(key, TensorElementType::Int64 | TensorElementType::String)
        && *value == TensorElementType::Float32
    {
        return Ok(OutputPort {
            port: Port {
                name: name.to_owned(),
                datatype: Datatype::Fp32,
                shape: Some(vec![-1, -1]),
            },
            kind: OutputKind::ClassMaps {
                string_keys: *key == TensorElementType::String,
            },
        });
    }
    let port = tensor_port(name, ty, "output")?;
    let kind = OutputKind::Tensor(port.datatype);
    Ok(OutputPort { port, kind })
}

impl OnnxModel {
    /// Builds a model from its bytes, within `limits`.
    ///
    /// # Errors
    /// [`OnnxError::Refused`] past a limit or for inputs and outputs the gateway cannot carry;
    /// [`OnnxError::Build`] with ONNX Runtime's reason (naming an op it does not implement);
    /// [`OnnxError::Runtime`] without the library.
    pub fn load(bytes: &[u8], limits: OnnxLimits) -> Result<Self, OnnxError> {
        let nodes = precheck(bytes, &limits)?;
        let env = runtime()?;
        let (count, threads) = plan(bytes, &limits);
        let mut sessions = Vec::with_capacity(count);
        for _ in 0..count {
            sessions.push(Self::session(env, bytes, threads)?);
        }
        let Some(session) = sessions.first() else {
            return Err(OnnxError::Build("no session".into()));
        };
        let inputs = session
            .inputs()
            .iter()
            .map(|o| tensor_port(o.name(), o.dtype(), "input"))
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = session
            .outputs()
            .iter()
            .map(|o| output_port(o.name(), o.dtype()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            engine: Engine::InProcess {
                sessions: sessions.into_iter().map(Mutex::new).collect(),
                next: std::sync::atomic::AtomicUsize::new(0),
            },
            inputs,
            outputs,
            nodes,
            limits,
        })
    }

    /// Builds a model whose sessions each run in a worker process under `isolation`'s memory
    /// ceiling (see [`worker`]); the same limits apply, and the same checks run before the
    /// first worker starts.
    ///
    /// # Errors
    /// As [`OnnxModel::load`]; also [`OnnxError::Refused`] for a model larger than the
    /// allowance and [`OnnxError::Worker`] when a worker cannot start or build it.
    pub fn load_isolated(
        bytes: &[u8],
        limits: OnnxLimits,
        isolation: &Isolation,
    ) -> Result<Self, OnnxError> {
        let nodes = precheck(bytes, &limits)?;
        if bytes.len() as u64 >= isolation.memory {
            return Err(OnnxError::Refused(format!(
                "the model is {} bytes, more than its memory allowance of {} MiB \
                 (--onnx-memory raises it)",
                bytes.len(),
                isolation.memory >> 20
            )));
        }
        let library = locate().map_err(OnnxError::Runtime)?;
        let (count, threads) = plan(bytes, &limits);
        let one = OnnxLimits {
            threads,
            sessions: 1,
            ..limits
        };
        let (pool, loaded) =
            worker::Pool::start(bytes, one, isolation, library.into_os_string(), count)?;
        Ok(Self {
            engine: Engine::Workers(pool),
            inputs: loaded.inputs,
            outputs: loaded.outputs,
            nodes: loaded.nodes.max(nodes),
            limits,
        })
    }

    /// One session of the model, running each inference on `threads` threads.
    fn session(
        env: &ort::environment::Environment,
        bytes: &[u8],
        threads: usize,
    ) -> Result<Session, OnnxError> {
        let build = |e: ort::Error<_>| OnnxError::Build(e.message().to_owned());
        Session::builder(env)
            .map_err(|e| OnnxError::Build(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(build)?
            .with_inter_threads(1)
            .map_err(build)?
            // Idle pool threads block instead of spinning: a gateway runs many small requests
            // side by side, and spinning burns the cores they need.
            .with_intra_op_spinning(false)
            .map_err(build)?
            .commit_from_memory(bytes)
            .map_err(|e| OnnxError::Build(e.to_string()))
    }

    /// Sessions that run requests side by side (in workers when isolated).
    #[must_use]
    pub fn sessions(&self) -> usize {
        match &self.engine {
            Engine::InProcess { sessions, .. } => sessions.len(),
            Engine::Workers(pool) => pool.len(),
        }
    }

    /// The memory allowance of each worker when the model runs isolated.
    #[must_use]
    pub fn isolated(&self) -> Option<u64> {
        match &self.engine {
            Engine::InProcess { .. } => None,
            Engine::Workers(pool) => Some(pool.memory()),
        }
    }

    /// The process ids of the model's workers running now (none in process).
    #[must_use]
    pub fn worker_pids(&self) -> Vec<u32> {
        match &self.engine {
            Engine::InProcess { .. } => Vec::new(),
            Engine::Workers(pool) => pool.pids(),
        }
    }

    /// The graph's inputs.
    #[must_use]
    pub fn inputs(&self) -> &[Port] {
        &self.inputs
    }

    /// The graph's outputs, as the gateway renders them.
    #[must_use]
    pub fn outputs(&self) -> Vec<Port> {
        self.outputs.iter().map(|o| o.port.clone()).collect()
    }

    /// Graph nodes, subgraphs included.
    #[must_use]
    pub const fn nodes(&self) -> u64 {
        self.nodes
    }

    /// V2 model metadata.
    #[must_use]
    pub fn metadata(&self, name: &str, version: i64) -> Value {
        json!({
            "name": name,
            "versions": [version.to_string()],
            "platform": "onnxruntime",
            "inputs": self.inputs.iter().map(Port::to_json).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(|o| o.port.to_json()).collect::<Vec<_>>(),
        })
    }

    /// Runs a checked request (the gateway checks it against [`OnnxModel::inputs`] first), within the time limit.
    ///
    /// # Errors
    /// [`OnnxError::Timeout`] when it was terminated; [`OnnxError::Run`] when ONNX Runtime
    /// refused the input or produced something the gateway cannot render.
    pub fn infer(&self, req: &Request) -> Result<Vec<Tensor>, OnnxError> {
        match &self.engine {
            Engine::InProcess { sessions, next } => {
                let mut session = take(sessions, next)?;
                self.run(&mut session, req)
            }
            Engine::Workers(pool) => pool.infer(req),
        }
    }

    /// Runs a request on one session in this process.
    fn run(&self, session: &mut Session, req: &Request) -> Result<Vec<Tensor>, OnnxError> {
        let run = |e: ort::Error| OnnxError::Run(e.message().to_owned());
        let mut values: Vec<(String, DynValue)> = Vec::with_capacity(req.inputs.len());
        for t in &req.inputs {
            let shape = t.shape.clone();
            let v: DynValue = match &t.data {
                Data::Fp32(d) => ort::value::Tensor::from_array((shape, d.clone()))
                    .map_err(run)?
                    .into_dyn(),
                Data::Fp64(d) => ort::value::Tensor::from_array((shape, d.clone()))
                    .map_err(run)?
                    .into_dyn(),
                Data::Int64(d) => ort::value::Tensor::from_array((shape, d.clone()))
                    .map_err(run)?
                    .into_dyn(),
                Data::Int32(d) => ort::value::Tensor::from_array((shape, d.clone()))
                    .map_err(run)?
                    .into_dyn(),
                Data::Bool(d) => ort::value::Tensor::from_array((shape, d.clone()))
                    .map_err(run)?
                    .into_dyn(),
                Data::Bytes(d) => ort::value::Tensor::from_string_array((shape, d.as_slice()))
                    .map_err(run)?
                    .into_dyn(),
            };
            values.push((t.name.clone(), v));
        }
        let options = Arc::new(RunOptions::new().map_err(run)?);
        watchdog(Instant::now() + self.limits.run_timeout, &options)?;
        let outputs = match session.run_with_options(values, &*options) {
            Ok(o) => o,
            Err(e) if options_terminated(&e) => {
                return Err(OnnxError::Timeout(self.limits.run_timeout));
            }
            Err(e) => return Err(run(e)),
        };
        let mut out = Vec::with_capacity(self.outputs.len());
        for o in &self.outputs {
            let name = o.port.name.as_str();
            let v = outputs
                .get(name)
                .ok_or_else(|| OnnxError::Run(format!("output {name} was not produced")))?;
            out.push(render_output(name, &o.kind, v).map_err(OnnxError::Run)?);
        }
        Ok(out)
    }
}

/// A free slot (round robin from the last one taken), else the next one in turn once it is
/// free.
pub(crate) fn take<'a, T>(
    slots: &'a [Mutex<T>],
    next: &std::sync::atomic::AtomicUsize,
) -> Result<std::sync::MutexGuard<'a, T>, OnnxError> {
    use std::sync::atomic::Ordering;
    let n = slots.len().max(1);
    let start = next.fetch_add(1, Ordering::Relaxed) % n;
    let poisoned = || OnnxError::Run("an earlier run panicked".into());
    for i in 0..n {
        if let Some(s) = slots.get((start + i) % n) {
            match s.try_lock() {
                Ok(g) => return Ok(g),
                Err(std::sync::TryLockError::WouldBlock) => {}
                Err(std::sync::TryLockError::Poisoned(_)) => return Err(poisoned()),
            }
        }
    }
    slots
        .get(start)
        .ok_or_else(poisoned)?
        .lock()
        .map_err(|_| poisoned())
}

/// The checks before any runtime sees the model: file size, the scanner's protobuf walk,
/// node count. The node count.
fn precheck(bytes: &[u8], limits: &OnnxLimits) -> Result<u64, OnnxError> {
    if bytes.len() as u64 > limits.max_file {
        return Err(OnnxError::Refused(format!(
            "the model is {} bytes, more than the {} an ONNX model may have",
            bytes.len(),
            limits.max_file
        )));
    }
    let walked =
        rampart_scan::formats::onnx::walk(&mut std::io::Cursor::new(bytes), bytes.len() as u64);
    if let Some((rule, message)) = walked.problems.first() {
        return Err(OnnxError::Refused(format!("{rule}: {message}")));
    }
    if walked.nodes > limits.max_nodes {
        return Err(OnnxError::Refused(format!(
            "the graph has {} nodes, more than the {} an ONNX model may have",
            walked.nodes, limits.max_nodes
        )));
    }
    Ok(walked.nodes)
}

/// How many sessions, and how many threads each.
fn plan(bytes: &[u8], limits: &OnnxLimits) -> (usize, usize) {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let count = match limits.sessions {
        0 if bytes.len() as u64 <= SMALL_MODEL => cores,
        0 => 1,
        n => n,
    };
    let threads = match limits.threads {
        0 => (cores / count).max(1),
        n => n,
    };
    (count, threads)
}

fn options_terminated(e: &ort::Error) -> bool {
    let m = e.message().to_ascii_lowercase();
    m.contains("terminate")
}

fn shape_of(s: &ort::value::Shape) -> Vec<usize> {
    s.iter().map(|d| usize::try_from(*d).unwrap_or(0)).collect()
}

fn render_output(name: &str, kind: &OutputKind, v: &DynValue) -> Result<Tensor, String> {
    let err = |e: ort::Error| format!("output {name}: {}", e.message());
    let tensor = |shape: Vec<usize>, data: Data| Tensor {
        name: name.to_owned(),
        shape,
        data,
        parameters: None,
    };
    match kind {
        OutputKind::Tensor(dt) => {
            macro_rules! take {
                ($t:ty, $variant:ident) => {{
                    let (s, d) = v.try_extract_tensor::<$t>().map_err(err)?;
                    tensor(shape_of(s), Data::$variant(d.to_vec()))
                }};
            }
            Ok(match dt {
                Datatype::Fp32 => take!(f32, Fp32),
                Datatype::Fp64 => take!(f64, Fp64),
                Datatype::Int64 => take!(i64, Int64),
                Datatype::Int32 => take!(i32, Int32),
                Datatype::Bool => take!(bool, Bool),
                Datatype::Bytes => {
                    let (s, d) = v.try_extract_strings().map_err(err)?;
                    tensor(shape_of(s), Data::Bytes(d))
                }
            })
        }
        OutputKind::ClassMaps { string_keys } => {
            let maps = v
                .try_extract_sequence::<ort::value::DynMapValueType>()
                .map_err(err)?;
            let mut classes: Vec<Value> = Vec::new();
            let mut probs = Vec::new();
            for (row, m) in maps.iter().enumerate() {
                let pairs: Vec<(Value, f32)> = if *string_keys {
                    m.try_extract_key_values::<String, f32>()
                        .map_err(err)?
                        .into_iter()
                        .map(|(k, p)| (json!(k), p))
                        .collect()
                } else {
                    let mut kv = m.try_extract_key_values::<i64, f32>().map_err(err)?;
                    kv.sort_by_key(|(k, _)| *k);
                    kv.into_iter().map(|(k, p)| (json!(k), p)).collect()
                };
                let keys: Vec<Value> = pairs.iter().map(|(k, _)| k.clone()).collect();
                if row == 0 {
                    classes = keys;
                } else if keys != classes {
                    return Err(format!("output {name}: row {row} has other classes"));
                }
                probs.extend(pairs.into_iter().map(|(_, p)| p));
            }
            let mut t = tensor(vec![maps.len(), classes.len()], Data::Fp32(probs));
            t.parameters = Some(json!({"classes": classes}));
            Ok(t)
        }
    }
}

/// Terminates `options`' run at `deadline` unless it has finished (the request dropped its
/// options) by then. One thread serves every model; without it nothing runs (a run that
/// cannot be stopped is not started).
fn watchdog(deadline: Instant, options: &Arc<RunOptions>) -> Result<(), OnnxError> {
    type Job = (Instant, Weak<RunOptions>);
    static TX: OnceLock<Option<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
    let tx = TX.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("onnx-watchdog".into())
            .spawn(move || {
                let mut pending: Vec<Job> = Vec::new();
                loop {
                    let now = Instant::now();
                    pending.retain(|(at, w)| {
                        if w.strong_count() == 0 {
                            return false;
                        }
                        if *at <= now {
                            if let Some(o) = w.upgrade() {
                                let _ = o.terminate();
                            }
                            return false;
                        }
                        true
                    });
                    let next = pending.iter().map(|(at, _)| *at).min();
                    let got = match next {
                        Some(at) => rx.recv_timeout(at.saturating_duration_since(now)),
                        None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                    };
                    match got {
                        Ok(job) => pending.push(job),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
            });
        spawned.ok().map(|_| Mutex::new(tx))
    });
    let sent = tx
        .as_ref()
        .and_then(|tx| tx.lock().ok())
        .is_some_and(|tx| tx.send((deadline, Arc::downgrade(options))).is_ok());
    if sent {
        Ok(())
    } else {
        Err(OnnxError::Run(
            "the run's time limit cannot be enforced (no watchdog thread); refused".into(),
        ))
    }
}
