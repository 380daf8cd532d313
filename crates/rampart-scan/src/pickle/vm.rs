//! A symbolic pickle machine: it runs the stack and memo semantics of the unpickler without
//! importing or calling anything, so it knows what `GLOBAL`, `STACK_GLOBAL`, `INST`, `OBJ`,
//! `NEWOBJ(_EX)`, `REDUCE`, `BUILD` and `EXT*` would import and call — also when module and
//! name strings come from the memo. Malformed input is recorded and the machine goes on where
//! it can, so a payload before a deliberate error is still reported.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

use super::ops::{Arg, DisError, next_op};
use super::policy::{self, Class};
use crate::source::{Source, SourceError};

/// Bounds on the work one pickle may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Opcodes per pickle.
    pub max_ops: u64,
    /// Stack depth (values and marks).
    pub max_stack: usize,
    /// Memo entries.
    pub max_memo: usize,
    /// Imports recorded per pickle.
    pub max_imports: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ops: 50_000_000,
            max_stack: 1 << 20,
            max_memo: 1 << 20,
            max_imports: 100_000,
        }
    }
}

/// One import the pickle performs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Import {
    /// Offset of the opcode that imports.
    pub offset: u64,
    /// `GLOBAL`, `STACK_GLOBAL`, `INST` or `EXT1/2/4`.
    pub opcode: &'static str,
    /// Module, after protocol-2 remapping.
    pub module: String,
    /// Name (possibly a dotted attribute chain).
    pub name: String,
    /// The verdict.
    pub class: Class,
}

impl Import {
    /// `module.name`.
    #[must_use]
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// A call the unpickler would make on an imported callable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Call {
    /// Offset of the calling opcode.
    pub offset: u64,
    /// `REDUCE`, `NEWOBJ`, `OBJ`, `INST`, `BUILD`, …
    pub opcode: &'static str,
    /// What is called (`os.system`).
    pub callee: String,
    /// The callee's verdict.
    pub class: Class,
    /// A short rendering of the arguments.
    pub args: String,
}

/// Something wrong with the stream itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Anomaly {
    /// Where.
    pub offset: u64,
    /// Stable kind: `malformed`, `unresolved-import`, `unknown-extension`, `limit`, `persistent-id`.
    pub kind: &'static str,
    /// For people.
    pub message: String,
}

/// What one pickle (up to its `STOP`) does.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Analysis {
    /// Offset of its first opcode.
    pub start: u64,
    /// Offset just past its last byte read.
    pub end: u64,
    /// Highest `PROTO` seen.
    pub protocol: Option<u8>,
    /// Opcodes executed.
    pub ops: u64,
    /// Whether it ended with `STOP`.
    pub complete: bool,
    /// Every import.
    pub imports: Vec<Import>,
    /// Every call of an imported callable.
    pub calls: Vec<Call>,
    /// Problems with the stream.
    pub anomalies: Vec<Anomaly>,
}

#[derive(Debug, Clone)]
enum Val {
    None,
    Bool(bool),
    Int(i64),
    Num,
    Str(Rc<str>),
    Bytes(u64),
    Global(Rc<(String, String, Class)>),
    Called(Rc<(String, Val)>),
    Seq(Rc<Vec<Val>>),
    Dict(Rc<Vec<(Val, Val)>>),
    Unknown,
}

const KEPT_ITEMS: usize = 8;
const KEPT_PAIRS: usize = 32;

/// joblib pickles arrays as these wrappers and writes the array bytes right after the
/// wrapper's `BUILD`, inside the pickle stream.
const JOBLIB_WRAPPERS: &[&str] = &[
    "joblib.numpy_pickle.NumpyArrayWrapper",
    "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
];

fn dict_get<'v>(d: &'v Val, key: &str) -> Option<&'v Val> {
    let Val::Dict(pairs) = d else { return None };
    pairs
        .iter()
        .find(|(k, _)| matches!(k, Val::Str(s) if &**s == key))
        .map(|(_, v)| v)
}

/// Bytes per element of a NumPy dtype string (`f8`, `<i4`, `U5`, `M8[ns]`); `None` for
/// object arrays and anything unrecognised.
fn itemsize(code: &str) -> Option<u64> {
    let code = code.trim_start_matches(['<', '>', '|', '=']);
    let code = code.split('[').next().unwrap_or(code);
    let (kind, digits) = code.split_at(
        code.find(|c: char| c.is_ascii_digit())
            .unwrap_or(code.len()),
    );
    let n: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    match (kind, n) {
        ("?" | "b" | "B", 0) => Some(1),
        ("f" | "i" | "u" | "c" | "b" | "M" | "m" | "V" | "S" | "a", n) if n > 0 => Some(n),
        ("U", n) if n > 0 => n.checked_mul(4),
        _ => None,
    }
}

fn seq(items: Vec<Val>) -> Val {
    let mut items = items;
    items.truncate(KEPT_ITEMS);
    Val::Seq(Rc::new(items))
}

fn render(v: &Val, out: &mut String, depth: usize) {
    if out.len() > 200 {
        return;
    }
    match v {
        Val::None => out.push_str("None"),
        Val::Bool(b) => out.push_str(if *b { "True" } else { "False" }),
        Val::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Val::Num => out.push_str("<number>"),
        Val::Str(s) => {
            let short: String = s.chars().take(120).collect();
            let _ = write!(out, "{short:?}");
        }
        Val::Bytes(n) => {
            let _ = write!(out, "<{n} bytes>");
        }
        Val::Global(g) => {
            let _ = write!(out, "{}.{}", g.0, g.1);
        }
        Val::Called(c) => {
            let _ = write!(out, "{}(…)", c.0);
        }
        Val::Dict(items) if depth < 3 => {
            out.push('{');
            for (i, (k, v)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(k, out, depth + 1);
                out.push_str(": ");
                render(v, out, depth + 1);
            }
            out.push('}');
        }
        Val::Seq(items) if depth < 3 => {
            out.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(item, out, depth + 1);
            }
            out.push(')');
        }
        Val::Seq(_) | Val::Dict(_) | Val::Unknown => out.push('…'),
    }
}

fn describe(v: &Val) -> String {
    let mut s = String::new();
    render(v, &mut s, 0);
    s
}

/// Runs one pickle from the source's current position to its `STOP` (or the first fatal
/// error). `ext` resolves extension-registry codes.
pub fn analyse(
    src: &mut dyn Source,
    limits: &Limits,
    allow: &[String],
    ext: &HashMap<i64, (String, String)>,
) -> Analysis {
    let mut m = Machine {
        a: Analysis {
            start: src.offset(),
            ..Analysis::default()
        },
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        limits,
        allow,
        ext,
    };
    loop {
        if m.a.ops >= limits.max_ops {
            m.anomaly(
                src.offset(),
                "limit",
                format!("more than {} opcodes", limits.max_ops),
            );
            break;
        }
        let op = match next_op(src) {
            Ok(Some(op)) => op,
            Ok(None) => {
                m.anomaly(
                    src.offset(),
                    "malformed",
                    "the pickle ends without STOP".into(),
                );
                break;
            }
            Err(e) => {
                let offset = match &e {
                    DisError::UnknownOpcode { offset, .. }
                    | DisError::BadArg { offset, .. }
                    | DisError::Source { offset, .. } => *offset,
                };
                m.anomaly(offset, "malformed", e.to_string());
                break;
            }
        };
        m.a.ops += 1;
        if op.code == b'.' {
            m.a.complete = true;
            break;
        }
        if let Err(stop) = m.step(&op, src) {
            m.anomaly(op.offset, "limit", stop.to_string());
            break;
        }
    }
    m.a.end = src.offset();
    m.a
}

/// Why the machine stopped before the end of the stream: recorded as a `limit` anomaly.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("stack deeper than {0}")]
    Stack(usize),
    #[error("too many MARKs")]
    Marks,
    #[error("memo larger than {0}")]
    Memo(usize),
    #[error("joblib array {0}")]
    Joblib(String),
    #[error("joblib array data: {0}")]
    JoblibData(SourceError),
    #[error("{0}")]
    Source(#[from] SourceError),
}

struct Machine<'a> {
    a: Analysis,
    stack: Vec<Val>,
    marks: Vec<Vec<Val>>,
    memo: HashMap<i64, Val>,
    limits: &'a Limits,
    allow: &'a [String],
    ext: &'a HashMap<i64, (String, String)>,
}

impl Machine<'_> {
    fn set_items(&mut self, items: Vec<Val>) {
        if let Some(Val::Dict(d)) = self.stack.last_mut() {
            let d = Rc::make_mut(d);
            let mut it = items.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                if d.len() < KEPT_PAIRS {
                    d.push((k, v));
                }
            }
        }
    }

    /// Consumes the raw array joblib wrote after a `NumpyArrayWrapper`'s `BUILD`: alignment
    /// padding, then the bytes — or, for an object array, a nested pickle, analysed in turn.
    fn joblib_array(&mut self, off: u64, state: &Val, src: &mut dyn Source) -> Result<(), Stop> {
        let shape: Option<u64> = match dict_get(state, "shape") {
            Some(Val::Seq(dims)) => dims.iter().try_fold(1u64, |acc, d| match d {
                Val::Int(n) => acc.checked_mul(u64::try_from(*n).ok()?),
                _ => None,
            }),
            Some(Val::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        let dtype = match dict_get(state, "dtype") {
            Some(Val::Called(c)) => match &c.1 {
                Val::Seq(args) => match args.first() {
                    Some(Val::Str(code)) => Some(code.to_string()),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        let unknown = |m: &mut Self, why: &str| {
            m.anomaly(
                off,
                "limit",
                format!("joblib array {why}: the rest of the stream was not analysed"),
            );
            Err::<(), Stop>(Stop::Joblib(why.to_owned()))
        };
        let (Some(count), Some(code)) = (shape, dtype) else {
            return unknown(self, "of unknown shape or dtype");
        };
        if let Some(Val::Int(align)) = dict_get(state, "numpy_array_alignment_bytes")
            && *align > 0
        {
            let pad = src.take(1)?;
            src.skip(u64::from(*pad.first().unwrap_or(&0)))?;
        }
        if code
            .trim_start_matches(['<', '>', '|', '='])
            .starts_with('O')
        {
            let nested = analyse(src, self.limits, self.allow, self.ext);
            self.a.imports.extend(nested.imports);
            self.a.calls.extend(nested.calls);
            self.a.anomalies.extend(nested.anomalies);
            return Ok(());
        }
        let Some(bytes) = itemsize(&code).and_then(|s| s.checked_mul(count)) else {
            return unknown(self, &format!("with dtype {code:?}"));
        };
        src.skip(bytes).map_err(Stop::JoblibData)
    }

    fn anomaly(&mut self, offset: u64, kind: &'static str, message: String) {
        if self.a.anomalies.len() < 100 {
            self.a.anomalies.push(Anomaly {
                offset,
                kind,
                message,
            });
        }
    }

    fn pop(&mut self, offset: u64, op: &str) -> Val {
        self.stack.pop().unwrap_or_else(|| {
            self.anomaly(offset, "malformed", format!("{op} on an empty stack"));
            Val::Unknown
        })
    }

    fn pop_mark(&mut self, offset: u64, op: &str) -> Vec<Val> {
        match self.marks.pop() {
            Some(below) => std::mem::replace(&mut self.stack, below),
            None => {
                self.anomaly(offset, "malformed", format!("{op} without a MARK"));
                std::mem::take(&mut self.stack)
            }
        }
    }

    fn push(&mut self, v: Val) -> Result<(), Stop> {
        if self.stack.len() + self.marks.len() >= self.limits.max_stack {
            return Err(Stop::Stack(self.limits.max_stack));
        }
        self.stack.push(v);
        Ok(())
    }

    fn import(&mut self, offset: u64, opcode: &'static str, module: &str, name: &str) -> Val {
        let (module, name) = policy::normalise(module.trim(), name.trim());
        let class = policy::classify(&module, &name, self.allow);
        if self.a.imports.len() < self.limits.max_imports {
            self.a.imports.push(Import {
                offset,
                opcode,
                module: module.clone(),
                name: name.clone(),
                class,
            });
        }
        Val::Global(Rc::new((module, name, class)))
    }

    fn call(&mut self, offset: u64, opcode: &'static str, callee: &Val, args: &Val) -> Val {
        let (name, class) = match callee {
            Val::Global(g) => (format!("{}.{}", g.0, g.1), g.2),
            Val::Called(c) => (format!("{}(…)", c.0), Class::Unknown),
            other => (describe(other), Class::Unknown),
        };
        if self.a.calls.len() < self.limits.max_imports {
            self.a.calls.push(Call {
                offset,
                opcode,
                callee: name.clone(),
                class,
                args: describe(args),
            });
        }
        Val::Called(Rc::new((name, args.clone())))
    }

    #[allow(clippy::too_many_lines)]
    fn step(&mut self, op: &super::ops::Op, src: &mut dyn Source) -> Result<(), Stop> {
        let off = op.offset;
        let name = op.name();
        match (op.code, &op.arg) {
            (0x80, Arg::Int(p)) => self.a.protocol = Some(u8::try_from(*p).unwrap_or(u8::MAX)),
            (0x95, _) => {}
            (b'(', _) => {
                if self.stack.len() + self.marks.len() >= self.limits.max_stack {
                    return Err(Stop::Marks);
                }
                let below = std::mem::take(&mut self.stack);
                self.marks.push(below);
            }
            (b'0', _) => {
                self.pop(off, name);
            }
            (b'1', _) => {
                self.pop_mark(off, name);
            }
            (b'2', _) => {
                let top = self.stack.last().cloned().unwrap_or(Val::Unknown);
                self.push(top)?;
            }
            (b'N', _) => self.push(Val::None)?,
            (0x88, _) => self.push(Val::Bool(true))?,
            (0x89, _) => self.push(Val::Bool(false))?,
            (_, Arg::Int(v))
                if matches!(op.code, b'I' | b'J' | b'K' | b'M' | b'L' | 0x8a | 0x8b) =>
            {
                self.push(Val::Int(*v))?;
            }
            (_, Arg::BigInt(_) | Arg::Float(_)) => self.push(Val::Num)?,
            (b'P', Arg::Str { text, .. }) => {
                self.anomaly(off, "persistent-id", format!("persistent id {text:?}: the loader's persistent_load decides what it becomes"));
                self.push(Val::Unknown)?;
            }
            (b'Q', _) => {
                let pid = self.pop(off, name);
                if !matches!(&pid, Val::Seq(items) if matches!(items.first(), Some(Val::Str(s)) if &**s == "storage"))
                {
                    self.anomaly(off, "persistent-id", format!("persistent id {}: the loader's persistent_load decides what it becomes", describe(&pid)));
                }
                self.push(Val::Unknown)?;
            }
            (_, Arg::Str { text, .. }) => self.push(Val::Str(text.as_str().into()))?,
            (_, Arg::Bytes { len, .. }) => self.push(Val::Bytes(*len))?,
            (b'c', Arg::Pair(module, n)) => {
                let g = self.import(off, "GLOBAL", module, n);
                self.push(g)?;
            }
            (0x93, _) => {
                let n = self.pop(off, name);
                let module = self.pop(off, name);
                let v = match (&module, &n) {
                    (Val::Str(m), Val::Str(n)) => self.import(off, "STACK_GLOBAL", m, n),
                    _ => {
                        self.anomaly(off, "unresolved-import", format!(
                            "STACK_GLOBAL with a module/name that is not a plain string ({}, {}): the import cannot be known without running the pickle",
                            describe(&module), describe(&n)));
                        Val::Unknown
                    }
                };
                self.push(v)?;
            }
            (b'i', Arg::Pair(module, n)) => {
                let args = self.pop_mark(off, name);
                let g = self.import(off, "INST", module, n);
                let r = self.call(off, "INST", &g, &seq(args));
                self.push(r)?;
            }
            (0x82..=0x84, Arg::Int(code)) => {
                let v = if let Some((m, n)) = self.ext.get(code).cloned() {
                    self.import(off, name, &m, &n)
                } else {
                    self.anomaly(off, "unknown-extension", format!("{name} code {code} is not in the extension registry; the loader's copyreg registry decides what it imports"));
                    Val::Unknown
                };
                self.push(v)?;
            }
            (b'R', _) => {
                let args = self.pop(off, name);
                let f = self.pop(off, name);
                let r = self.call(off, "REDUCE", &f, &args);
                self.push(r)?;
            }
            (0x81, _) => {
                let args = self.pop(off, name);
                let cls = self.pop(off, name);
                let r = self.call(off, "NEWOBJ", &cls, &args);
                self.push(r)?;
            }
            (0x92, _) => {
                let kwargs = self.pop(off, name);
                let args = self.pop(off, name);
                let cls = self.pop(off, name);
                let r = self.call(off, "NEWOBJ_EX", &cls, &seq(vec![args, kwargs]));
                self.push(r)?;
            }
            (b'o', _) => {
                let mut items = self.pop_mark(off, name);
                let cls = if items.is_empty() {
                    Val::Unknown
                } else {
                    items.remove(0)
                };
                let r = self.call(off, "OBJ", &cls, &seq(items));
                self.push(r)?;
            }
            (b'b', _) => {
                let state = self.pop(off, name);
                // BUILD calls __setstate__ on the object (or updates its __dict__); when the
                // object is a bare imported callable, that is a call on it.
                match self.stack.last().cloned() {
                    Some(obj @ Val::Global(_)) => {
                        self.call(off, "BUILD", &obj, &state);
                    }
                    Some(Val::Called(c)) if JOBLIB_WRAPPERS.contains(&c.0.as_str()) => {
                        self.joblib_array(off, &state, src)?;
                    }
                    _ => {}
                }
            }
            (b'd', _) => {
                let items = self.pop_mark(off, name);
                let mut pairs = Vec::new();
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    if pairs.len() < KEPT_PAIRS {
                        pairs.push((k, v));
                    }
                }
                self.push(Val::Dict(Rc::new(pairs)))?;
            }
            (b'}', _) => self.push(Val::Dict(Rc::new(Vec::new())))?,
            (b't' | b'l' | 0x91, _) => {
                let items = self.pop_mark(off, name);
                self.push(seq(items))?;
            }
            (b')' | b']' | 0x8f, _) => self.push(seq(Vec::new()))?,
            (0x85..=0x87, _) => {
                let n = usize::from(op.code - 0x84);
                let mut items: Vec<Val> = (0..n).map(|_| self.pop(off, name)).collect();
                items.reverse();
                self.push(seq(items))?;
            }
            (b'a', _) => {
                self.pop(off, name);
            }
            (b's', _) => {
                let v = self.pop(off, name);
                let k = self.pop(off, name);
                self.set_items(vec![k, v]);
            }
            (b'u', _) => {
                let items = self.pop_mark(off, name);
                self.set_items(items);
            }
            (b'e' | 0x90, _) => {
                self.pop_mark(off, name);
            }
            (b'g' | b'h' | b'j', Arg::Int(idx)) => {
                let v = self.memo.get(idx).cloned().unwrap_or_else(|| {
                    self.anomaly(
                        off,
                        "malformed",
                        format!("{name} {idx}: no such memo entry"),
                    );
                    Val::Unknown
                });
                self.push(v)?;
            }
            (b'p' | b'q' | b'r', Arg::Int(idx)) => {
                if self.memo.len() >= self.limits.max_memo {
                    return Err(Stop::Memo(self.limits.max_memo));
                }
                let top = self.stack.last().cloned().unwrap_or(Val::Unknown);
                self.memo.insert(*idx, top);
            }
            (0x94, _) => {
                if self.memo.len() >= self.limits.max_memo {
                    return Err(Stop::Memo(self.limits.max_memo));
                }
                let top = self.stack.last().cloned().unwrap_or(Val::Unknown);
                let idx = i64::try_from(self.memo.len()).unwrap_or(i64::MAX);
                self.memo.insert(idx, top);
            }
            (0x97, _) => self.push(Val::Unknown)?,
            (0x98, _) => {}
            _ => self.anomaly(
                off,
                "malformed",
                format!("{name} with an unexpected argument"),
            ),
        }
        Ok(())
    }
}
