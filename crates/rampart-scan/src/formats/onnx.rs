//! ONNX: a streaming protobuf walk of `ModelProto` that reports custom operator domains
//! (which make the runtime load a native library) and external-data paths that escape the
//! model's directory. Tensor payloads are skipped by seeking, never read.

use std::io::{Read, Seek, SeekFrom};

/// Deepest message nesting followed (subgraphs in attributes).
pub const MAX_DEPTH: usize = 32;

/// What the walk found, as `(rule, message)`.
pub type Problem = (&'static str, String);

/// Operator domains that ship with ONNX runtimes.
const STANDARD_DOMAINS: &[&str] = &[
    "",
    "ai.onnx",
    "ai.onnx.ml",
    "ai.onnx.training",
    "ai.onnx.preview.training",
    "com.microsoft",
    "com.microsoft.nchwc",
    "com.microsoft.experimental",
];

struct W<'a, R: Read + Seek> {
    r: &'a mut R,
    problems: Vec<Problem>,
    nodes: u64,
    domains: std::collections::BTreeSet<String>,
}

/// Why a protobuf walk stopped: the `onnx-malformed` finding's message.
#[derive(Debug, thiserror::Error)]
enum Malformed {
    #[error("{0}")]
    Read(#[from] std::io::Error),
    #[error("varint too long")]
    Varint,
    #[error("length {0} overflows")]
    Length(u64),
    #[error("messages nested too deeply")]
    Depth,
    #[error("field runs past its message")]
    PastMessage,
    #[error("wire type {0} is not valid")]
    Wire(u64),
}

fn varint<R: Read>(r: &mut R) -> Result<u64, Malformed> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let mut b = [0u8];
        r.read_exact(&mut b)?;
        v |= u64::from(b[0] & 0x7f) << shift.min(63);
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Malformed::Varint)
}

impl<R: Read + Seek> W<'_, R> {
    fn pos(&mut self) -> Result<u64, Malformed> {
        Ok(self.r.stream_position()?)
    }

    fn string(&mut self, len: u64) -> Result<String, Malformed> {
        if len > 1 << 20 {
            self.r.seek(SeekFrom::Current(
                i64::try_from(len).map_err(|_| Malformed::Length(len))?,
            ))?;
            return Ok(String::new());
        }
        let mut b = vec![0u8; usize::try_from(len).unwrap_or(0)];
        self.r.read_exact(&mut b)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// Walks a message ending at `end`; `kind` picks which fields matter.
    fn message(&mut self, end: u64, kind: Kind, depth: usize) -> Result<(), Malformed> {
        if depth > MAX_DEPTH {
            return Err(Malformed::Depth);
        }
        let mut ext_key = String::new();
        let mut ext_value = String::new();
        let mut op_type = String::new();
        while self.pos()? < end {
            let tag = varint(self.r)?;
            let (field, wire) = (tag >> 3, tag & 7);
            match wire {
                0 => {
                    varint(self.r)?;
                }
                1 => {
                    self.r.seek(SeekFrom::Current(8))?;
                }
                5 => {
                    self.r.seek(SeekFrom::Current(4))?;
                }
                2 => {
                    let len = varint(self.r)?;
                    let start = self.pos()?;
                    let stop = start
                        .checked_add(len)
                        .filter(|s| *s <= end)
                        .ok_or(Malformed::PastMessage)?;
                    match (kind, field) {
                        (Kind::Model, 7) | (Kind::Function, 7) => {
                            self.message(stop, Kind::Graph, depth + 1)?;
                        }
                        (Kind::Model, 8) => self.message(stop, Kind::OpsetId, depth + 1)?,
                        (Kind::Model, 25) => self.message(stop, Kind::Function, depth + 1)?,
                        (Kind::Graph, 1) | (Kind::Function, 5) => {
                            self.message(stop, Kind::Node, depth + 1)?;
                        }
                        (Kind::Graph, 5) => self.message(stop, Kind::Tensor, depth + 1)?,
                        (Kind::Graph, 15) => self.message(stop, Kind::Sparse, depth + 1)?,
                        (Kind::Sparse, 1 | 2) => self.message(stop, Kind::Tensor, depth + 1)?,
                        (Kind::Node, 5) => self.message(stop, Kind::Attribute, depth + 1)?,
                        (Kind::Attribute, 6 | 11) => self.message(stop, Kind::Graph, depth + 1)?,
                        (Kind::Attribute, 5 | 10) => self.message(stop, Kind::Tensor, depth + 1)?,
                        (Kind::Tensor, 13) => self.message(stop, Kind::Entry, depth + 1)?,
                        (Kind::Node, 4) => op_type = self.string(len)?,
                        (Kind::Node, 7) | (Kind::OpsetId, 1) | (Kind::Function, 1) => {
                            let domain = self.string(len)?;
                            if !STANDARD_DOMAINS.contains(&domain.as_str()) {
                                self.domains.insert(domain);
                            }
                        }
                        (Kind::Entry, 1) => ext_key = self.string(len)?,
                        (Kind::Entry, 2) => ext_value = self.string(len)?,
                        _ => {}
                    }
                    self.r.seek(SeekFrom::Start(stop))?;
                }
                w => return Err(Malformed::Wire(w)),
            }
        }
        if kind == Kind::Node {
            self.nodes += 1;
            let _ = op_type;
        }
        if kind == Kind::Entry && ext_key == "location" {
            let escapes = ext_value.starts_with('/')
                || ext_value.starts_with('\\')
                || ext_value.contains(':')
                || ext_value.split(['/', '\\']).any(|c| c == "..");
            if escapes {
                self.problems.push(("onnx-external-data-traversal", format!("external data location {ext_value:?} escapes the model directory: loading reads (or, on save, writes) a file elsewhere")));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Model,
    Graph,
    Node,
    Attribute,
    Tensor,
    Sparse,
    Entry,
    OpsetId,
    Function,
}

/// Whether the start of some content parses as an ONNX `ModelProto` (an `ir_version` varint
/// first, then valid fields including a graph or an opset import).
#[must_use]
pub fn looks_like_onnx(head: &[u8]) -> bool {
    let mut c = std::io::Cursor::new(head);
    let Ok(8) = varint(&mut c) else { return false };
    if !varint(&mut c).is_ok_and(|v| (1..=20).contains(&v)) {
        return false;
    }
    loop {
        let Ok(tag) = varint(&mut c) else {
            return false;
        };
        let (field, wire) = (tag >> 3, tag & 7);
        if field == 0 || field > 30 {
            return false;
        }
        if wire == 2 && matches!(field, 7 | 8) {
            return true;
        }
        let skip = match wire {
            0 => varint(&mut c).map(|_| 0),
            2 => varint(&mut c),
            _ => return false,
        };
        let Ok(skip) = skip else { return false };
        if c.seek(SeekFrom::Current(i64::try_from(skip).unwrap_or(i64::MAX)))
            .is_err()
            || c.position() > head.len() as u64
        {
            return false;
        }
    }
}

/// Walks a model of `len` bytes.
pub fn check<R: Read + Seek>(r: &mut R, len: u64) -> Vec<Problem> {
    walk(r, len).problems
}

/// What a walk of a model found: its problems and how many graph nodes it holds (those of
/// subgraphs included), for a loader that bounds what it will build.
#[derive(Debug, Clone, Default)]
pub struct Walked {
    /// The findings, as [`check`] reports them.
    pub problems: Vec<Problem>,
    /// Nodes seen, across the main graph and every subgraph, up to where the walk stopped.
    pub nodes: u64,
}

/// Walks a model of `len` bytes, counting its nodes.
pub fn walk<R: Read + Seek>(r: &mut R, len: u64) -> Walked {
    let mut w = W {
        r,
        problems: Vec::new(),
        nodes: 0,
        domains: Default::default(),
    };
    if w.r.seek(SeekFrom::Start(0)).is_err() {
        return Walked {
            problems: vec![("onnx-malformed", "cannot seek".into())],
            nodes: 0,
        };
    }
    if let Err(e) = w.message(len, Kind::Model, 0) {
        w.problems
            .push(("onnx-malformed", format!("not a valid ONNX model: {e}")));
    }
    for d in &w.domains {
        w.problems.push(("onnx-custom-operator", format!("operators from the custom domain {d:?}: running the model loads a native library that implements them")));
    }
    Walked {
        problems: w.problems,
        nodes: w.nodes,
    }
}
