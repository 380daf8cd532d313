//! ONNX models in worker processes, each under a memory ceiling.
//!
//! ONNX Runtime cannot be told, through its safe interface, to stop a graph that allocates
//! without bound: a `ConstantOfShape` or `Expand` fed a large shape asks for gigabytes, and
//! in the gateway's process that is the gateway's memory (or the kernel's OOM killer taking
//! the gateway). With an [`Isolation`], each session of a model runs in a worker process of
//! its own, started from a command the caller names (the `rampart` binary's `onnx-worker`),
//! that:
//!
//! - limits its own data memory (`RLIMIT_DATA`: heap and private writable mappings, which is
//!   where ONNX Runtime's tensors live) to [`Isolation::memory`] before it reads the model,
//!   and writes no core file;
//! - sets no-new-privileges and gets an environment holding only where ONNX Runtime's library
//!   is (none of the gateway's secrets);
//! - once the library is loaded, and before the model is built, confines itself
//!   ([`rampart_sandbox::confine::confine_self`]): Landlock with no path allowed (no file
//!   opened, no TCP port bound or connected) and the trainer sandbox's seccomp filters on
//!   every thread (no ptrace, mount, namespaces…), and no new socket of any family, no
//!   `connect` or `bind`: it keeps the one it was given;
//! - talks to the gateway over a socket pair on its standard input, and exits when the
//!   gateway closes it.
//!
//! A run that passes the ceiling fails inside the worker (ONNX Runtime's allocation error)
//! or ends it; either way the request gets an error naming the allowance, the gateway is
//! untouched, and a worker that ended is started again for the next request. A worker that
//! does not answer within the run's time limit (plus a grace) is killed.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::tensor::{Port, Request, Tensor};
use crate::wire::{self, In, Out};
use crate::{LIBRARY_ENV, OnnxError, OnnxLimits, OnnxModel, OutputPort};

/// The `rampart` subcommand that runs a worker ([`serve_stdin`]).
pub const COMMAND: &str = "onnx-worker";

/// The environment variable carrying a worker's memory allowance in bytes.
pub const MEMORY_ENV: &str = "RAMPART_ONNX_WORKER_MEMORY";

/// Beyond the run's own time limit (which the worker enforces), how long the gateway waits
/// for an answer before it kills the worker.
const GRACE: Duration = Duration::from_secs(2);

/// Most bytes one request frame may have (the gateway's own body limits are far lower).
const MAX_REQUEST: u64 = 4 << 30;

/// How a model's sessions are put in worker processes.
#[derive(Clone)]
pub struct Isolation {
    /// Most bytes of data memory (heap, tensors) one worker may hold, the model included.
    pub memory: u64,
    /// Longest a worker may take to start and build the model.
    pub load_timeout: Duration,
    command: Arc<dyn Fn() -> Command + Send + Sync>,
    env: Vec<(OsString, OsString)>,
}

impl std::fmt::Debug for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Isolation")
            .field("memory", &self.memory)
            .field("program", &(self.command)().get_program())
            .finish_non_exhaustive()
    }
}

impl Isolation {
    /// Workers started by `command` (a program that calls [`serve_stdin`]), each holding at
    /// most `memory` bytes. The command's environment is cleared before it starts.
    pub fn new(memory: u64, command: impl Fn() -> Command + Send + Sync + 'static) -> Self {
        Self {
            memory,
            load_timeout: Duration::from_secs(120),
            command: Arc::new(command),
            env: Vec::new(),
        }
    }

    /// Workers that are the running program itself, with these arguments.
    ///
    /// # Errors
    /// When the running program's path cannot be read.
    pub fn current_exe(memory: u64, args: &[&str]) -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        Ok(Self::new(memory, move || {
            let mut c = Command::new(&exe);
            c.args(&args);
            c
        }))
    }

    /// Workers that are the running program's [`COMMAND`] (the `rampart` binary's).
    ///
    /// # Errors
    /// When the running program's path cannot be read.
    pub fn rampart(memory: u64) -> std::io::Result<Self> {
        Self::current_exe(memory, &[COMMAND])
    }

    /// Also gives each worker this environment variable.
    #[must_use]
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn mib(&self) -> u64 {
        self.memory >> 20
    }
}

/// What a worker says about the model once it has built it.
pub(crate) struct Loaded {
    pub nodes: u64,
    pub inputs: Vec<Port>,
    pub outputs: Vec<OutputPort>,
}

/// One worker process and the gateway's end of its socket.
struct Worker {
    child: Child,
    stream: UnixStream,
    /// The socket's read and write timeout now.
    timeout: Option<Duration>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Worker {
    /// Sends a frame and reads the answer within `timeout`.
    fn call(&mut self, frame: &mut Out, timeout: Duration, max: u64) -> std::io::Result<Vec<u8>> {
        if self.timeout != Some(timeout) {
            self.stream.set_write_timeout(Some(timeout))?;
            self.stream.set_read_timeout(Some(timeout))?;
            self.timeout = Some(timeout);
        }
        frame.send(&mut self.stream)?;
        wire::read_frame(&mut self.stream, max)?
            .ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into())
    }

    /// Whether the worker has ended (or is ending): its end of the socket is closed.
    fn exited(&self) -> bool {
        use nix::sys::socket::{MsgFlags, recv};
        use std::os::fd::AsRawFd;
        let mut byte = [0u8; 1];
        // Nothing is waiting to be read between requests: a worker that is alive makes this
        // would-block; one whose socket closed reads end-of-file.
        !matches!(
            recv(
                self.stream.as_raw_fd(),
                &mut byte,
                MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT
            ),
            Err(nix::errno::Errno::EAGAIN)
        )
    }

    /// Ends the worker (it stays in its slot, dead: the next request replaces it) and says
    /// how it ended.
    fn stop(&mut self) -> String {
        let _ = self.child.kill();
        self.child
            .wait()
            .map_or_else(|e| e.to_string(), |s| s.to_string())
    }
}

/// Starts workers for one model.
struct Spawner {
    model: Vec<u8>,
    limits: OnnxLimits,
    isolation: Isolation,
    library: OsString,
}

impl Spawner {
    fn spawn(&self) -> Result<(Worker, Loaded), OnnxError> {
        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| OnnxError::Runtime(format!("cannot make the worker's socket: {e}")))?;
        let mut cmd = (self.isolation.command)();
        cmd.env_clear()
            .env(LIBRARY_ENV, &self.library)
            .env(MEMORY_ENV, self.isolation.memory.to_string())
            .envs(self.isolation.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().map_err(|e| {
            OnnxError::Runtime(format!(
                "cannot start the ONNX worker {}: {e}",
                cmd.get_program().to_string_lossy()
            ))
        })?;
        drop(cmd);
        let mut worker = Worker {
            child,
            stream: ours,
            timeout: None,
        };
        let mut frame = wire::load(&self.limits, &self.model);
        let reply = match worker.call(&mut frame, self.isolation.load_timeout, 64 << 20) {
            Ok(r) => r,
            Err(e) => {
                let timed_out = is_timeout(&e);
                let how = worker.stop();
                return Err(if timed_out {
                    OnnxError::Worker(format!(
                        "the ONNX worker did not build the model within {:?} and was stopped",
                        self.isolation.load_timeout
                    ))
                } else {
                    OnnxError::Worker(format!(
                        "the ONNX worker stopped ({how}) while building the model; it may need \
                         more than its memory allowance of {} MiB (--onnx-memory)",
                        self.isolation.mib()
                    ))
                });
            }
        };
        let loaded = read_loaded(&reply).map_err(|e| match e {
            Reply::Refused(e) => e,
            Reply::Malformed(m) => malformed(&m.0),
        })?;
        Ok((worker, loaded))
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

enum Reply {
    Refused(OnnxError),
    Malformed(wire::Malformed),
}

/// A worker's answer that does not follow the protocol: the worker is not used again.
fn malformed(what: &str) -> OnnxError {
    OnnxError::Worker(format!(
        "the ONNX worker's answer is malformed ({what}); the worker was stopped and a new one \
         takes the next request"
    ))
}

fn open_reply(frame: &[u8]) -> Result<In<'_>, Reply> {
    let (tag, mut i) = In::open(frame).map_err(Reply::Malformed)?;
    match tag {
        wire::OK => Ok(i),
        wire::ERR => Err(i.error().map_or_else(Reply::Malformed, Reply::Refused)),
        _ => Err(Reply::Malformed(wire::Malformed(
            "a frame of unknown kind".into(),
        ))),
    }
}

fn read_loaded(frame: &[u8]) -> Result<Loaded, Reply> {
    let mut i = open_reply(frame)?;
    let read = |i: &mut In<'_>| -> Result<Loaded, wire::Malformed> {
        let nodes = i.u64()?;
        let inputs = i.list(In::port)?;
        let outputs = i.list(In::output)?;
        i.end()?;
        Ok(Loaded {
            nodes,
            inputs,
            outputs,
        })
    };
    read(&mut i).map_err(Reply::Malformed)
}

/// The workers answering for one model.
pub(crate) struct Pool {
    slots: Vec<Mutex<Option<Worker>>>,
    next: AtomicUsize,
    spawner: Spawner,
}

impl Pool {
    /// Starts `count` workers; what the first says about the model.
    pub fn start(
        model: &[u8],
        limits: OnnxLimits,
        isolation: &Isolation,
        library: OsString,
        count: usize,
    ) -> Result<(Self, Loaded), OnnxError> {
        let spawner = Spawner {
            model: model.to_vec(),
            limits,
            isolation: isolation.clone(),
            library,
        };
        let (first, loaded) = spawner.spawn()?;
        let mut slots = vec![Mutex::new(Some(first))];
        for _ in 1..count.max(1) {
            slots.push(Mutex::new(Some(spawner.spawn()?.0)));
        }
        Ok((
            Self {
                slots,
                next: AtomicUsize::new(0),
                spawner,
            },
            loaded,
        ))
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The process ids of the workers running now.
    pub fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .filter_map(|s| s.lock().ok()?.as_ref().map(|w| w.child.id()))
            .collect()
    }

    pub fn memory(&self) -> u64 {
        self.spawner.isolation.memory
    }

    /// Runs a request on a free worker, starting one where the last has ended.
    pub fn infer(&self, req: &Request) -> Result<Vec<Tensor>, OnnxError> {
        let mut slot = crate::take(&self.slots, &self.next)?;
        let live = slot.take().filter(|w| !w.exited());
        let worker = match live {
            Some(w) => w,
            None => self.spawner.spawn()?.0,
        };
        let slot = slot.insert(worker);
        let mut o = Out::new(wire::INFER);
        o.u64(req.rows as u64);
        o.list(&req.inputs, Out::tensor);
        let timeout = self.spawner.limits.run_timeout + GRACE;
        let reply = match slot.call(&mut o, timeout, self.memory().max(1 << 20)) {
            Ok(r) => r,
            Err(e) => return Err(self.ended(slot, &e)),
        };
        let read = |frame: &[u8]| -> Result<Vec<Tensor>, Reply> {
            let mut i = open_reply(frame)?;
            let out = i.list(In::tensor).map_err(Reply::Malformed)?;
            i.end().map_err(Reply::Malformed)?;
            Ok(out)
        };
        match read(&reply) {
            Ok(out) => Ok(out),
            Err(Reply::Refused(e)) => Err(e),
            Err(Reply::Malformed(m)) => {
                slot.stop();
                Err(malformed(&m.0))
            }
        }
    }

    /// Ends a worker that failed to answer; the error the request gets.
    fn ended(&self, slot: &mut Worker, e: &std::io::Error) -> OnnxError {
        let how = slot.stop();
        if is_timeout(e) {
            return OnnxError::Timeout(self.spawner.limits.run_timeout);
        }
        if e.kind() == std::io::ErrorKind::InvalidData {
            return malformed(&e.to_string());
        }
        OnnxError::Worker(format!(
            "the ONNX worker stopped ({how}) while running this request, which may need more \
             than the model's memory allowance of {} MiB (--onnx-memory); a new worker takes \
             the next request",
            self.spawner.isolation.mib()
        ))
    }
}

/// Why a worker process stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Standard input is not the socket the gateway gives its workers.
    #[error(
        "onnx-worker is started by `rampart serve` for each ONNX model; its standard input \
         must be the socket the gateway gives it"
    )]
    NotStarted,
    /// The process could not bound itself before reading a model.
    #[error("{0}")]
    Confine(String),
    /// The gateway's first frame was not a well-formed load.
    #[error("a malformed load frame ({0})")]
    Load(wire::Malformed),
    /// The socket to the gateway failed.
    #[error("the gateway's socket: {0}")]
    Socket(#[from] std::io::Error),
}

/// The worker's side: serves the gateway on the socket that is its standard input (what the
/// `rampart onnx-worker` command runs).
///
/// # Errors
/// When standard input is not a socket, the memory allowance cannot be set, or the socket
/// fails; the worker then exits.
pub fn serve_stdin() -> Result<(), WorkerError> {
    use std::os::unix::fs::FileTypeExt;
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|_| WorkerError::NotStarted)?;
    let file = std::fs::File::from(fd);
    let socket = file.metadata().is_ok_and(|m| m.file_type().is_socket());
    if !socket {
        return Err(WorkerError::NotStarted);
    }
    serve(&mut UnixStream::from(OwnedFd::from(file)))
}

/// Bounds this process before it reads a model: data memory, no core file, no new privileges.
fn confine() -> Result<u64, WorkerError> {
    use nix::sys::resource::{Resource, setrlimit};
    let failed = |what: &str, e: nix::Error| WorkerError::Confine(format!("cannot {what}: {e}"));
    let memory: u64 = std::env::var(MEMORY_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            WorkerError::Confine(format!(
                "{MEMORY_ENV} must give the worker's memory allowance in bytes"
            ))
        })?;
    setrlimit(Resource::RLIMIT_DATA, memory, memory)
        .map_err(|e| failed("limit the worker's memory", e))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(|e| failed("turn core files off", e))?;
    nix::sys::prctl::set_no_new_privs().map_err(|e| failed("set no-new-privileges", e))?;
    Ok(memory)
}

/// The worker's loop on `stream`: one load frame, then requests until the gateway closes it.
///
/// # Errors
/// When the memory allowance cannot be set or the socket fails.
pub fn serve(stream: &mut UnixStream) -> Result<(), WorkerError> {
    let memory = confine()?;
    let Some(frame) = wire::read_frame(stream, MAX_REQUEST)? else {
        return Ok(());
    };
    let (tag, mut i) = In::open(&frame).map_err(WorkerError::Load)?;
    if tag != wire::LOAD {
        return Err(WorkerError::Load(wire::Malformed(
            "the first frame must load a model".into(),
        )));
    }
    let (limits, bytes) = wire::read_load(&mut i).map_err(WorkerError::Load)?;
    // The library is loaded while files can still be opened; then nothing new can be opened,
    // bound or connected before the model is built and run (an exploit of the runtime gets
    // no more than this process holds). ONNX Runtime's environment, and the threads it
    // starts, come after: Landlock binds only threads started once it is in force.
    let confined = crate::load_library().and_then(|()| {
        rampart_sandbox::confine::confine_self(&[], false)
            .map_err(|e| OnnxError::Runtime(format!("the worker cannot confine itself: {e}")))
    });
    if let Err(e) = confined {
        return Ok(Out::error(&e).send(stream)?);
    }
    let model = match OnnxModel::load(bytes, limits) {
        Ok(m) => m,
        Err(e) => {
            return Ok(Out::error(&with_allowance(e, memory)).send(stream)?);
        }
    };
    drop(frame);
    let mut o = Out::new(wire::OK);
    o.u64(model.nodes());
    o.list(model.inputs(), Out::port);
    o.list(&model.outputs, Out::output);
    o.send(stream)?;
    while let Some(frame) = wire::read_frame(stream, MAX_REQUEST)? {
        let mut reply = match read_request(&frame) {
            Ok(req) => match model.infer(&req) {
                Ok(out) => {
                    let mut o = Out::new(wire::OK);
                    o.list(&out, Out::tensor);
                    o
                }
                Err(e) => Out::error(&with_allowance(e, memory)),
            },
            Err(m) => Out::error(&OnnxError::Run(format!("a malformed request ({m})"))),
        };
        drop(frame);
        reply.send(stream)?;
    }
    Ok(())
}

fn read_request(frame: &[u8]) -> Result<Request, wire::Malformed> {
    let (tag, mut i) = In::open(frame)?;
    if tag != wire::INFER {
        return Err(wire::Malformed("expected a request".into()));
    }
    let rows = usize::try_from(i.u64()?).map_err(|_| wire::Malformed("rows".into()))?;
    let inputs = i.list(In::tensor)?;
    i.end()?;
    Ok(Request {
        id: None,
        inputs,
        rows,
    })
}

/// ONNX Runtime's allocation failures, with the allowance that caused them.
fn with_allowance(e: OnnxError, memory: u64) -> OnnxError {
    let note = |m: String| {
        if m.to_ascii_lowercase().contains("alloc") {
            format!(
                "{m} (past the model's memory allowance of {} MiB; --onnx-memory raises it)",
                memory >> 20
            )
        } else {
            m
        }
    };
    match e {
        OnnxError::Run(m) => OnnxError::Run(note(m)),
        OnnxError::Build(m) => OnnxError::Build(note(m)),
        other => other,
    }
}
