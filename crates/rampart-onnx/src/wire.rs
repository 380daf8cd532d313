//! The frames between the gateway and an ONNX worker process: a little-endian length, then a
//! tag and fields. Every count is checked against the bytes that remain before anything is
//! allocated, so a frame of `n` bytes never costs more than a few times `n` to read.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::Value;

use crate::tensor::{Data, Datatype, Port, Tensor};
use crate::{OnnxError, OnnxLimits, OutputKind, OutputPort};

/// Parent to worker: load this model.
pub const LOAD: u8 = b'L';
/// Parent to worker: run this request.
pub const INFER: u8 = b'I';
/// Worker to parent: done (the model's description, or the outputs).
pub const OK: u8 = b'K';
/// Worker to parent: refused or failed.
pub const ERR: u8 = b'E';

/// Writes one frame (the length, then `payload`).
#[cfg(test)]
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&(payload.len() as u64).to_le_bytes())?;
    w.write_all(payload)
}

/// The first read's buffer: a small frame (a row in, probabilities out) arrives in one read.
const FIRST_READ: usize = 4096;

/// Reads one frame of at most `max` bytes; `None` when the other side closed cleanly before
/// a frame began. The buffer grows as bytes arrive, never to a length only claimed. The
/// protocol has one frame in flight, so bytes past the frame are an error.
pub fn read_frame(r: &mut impl Read, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let eof = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut buf = vec![0u8; FIRST_READ];
    let mut filled = 0;
    while filled < 8 {
        let n = r.read(buf.get_mut(filled..).unwrap_or_default())?;
        if n == 0 {
            return if filled == 0 { Ok(None) } else { Err(eof()) };
        }
        filled += n;
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(buf.get(..8).unwrap_or(&[0; 8]));
    let len = u64::from_le_bytes(len);
    if len > max {
        return Err(invalid(format!(
            "a frame of {len} bytes, more than the {max} allowed"
        )));
    }
    let total = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(8))
        .ok_or_else(|| invalid("a frame too long for this machine".into()))?;
    if filled > total {
        return Err(invalid("bytes after the frame".into()));
    }
    while filled < total {
        if buf.len() == filled {
            let grown = buf.len().saturating_mul(2).min(total);
            buf.resize(grown, 0);
        }
        let end = buf.len().min(total);
        let n = r.read(buf.get_mut(filled..end).unwrap_or_default())?;
        if n == 0 {
            return Err(eof());
        }
        filled += n;
    }
    buf.truncate(total);
    buf.drain(..8);
    Ok(Some(buf))
}

/// A frame being written.
pub struct Out(Vec<u8>);

impl Out {
    /// A frame with this tag (after room for its length).
    pub fn new(tag: u8) -> Self {
        let mut v = Vec::with_capacity(256);
        v.extend_from_slice(&[0; 8]);
        v.push(tag);
        Self(v)
    }

    /// The payload, without its length.
    #[cfg(test)]
    pub fn finish(mut self) -> Vec<u8> {
        self.0.split_off(8)
    }

    /// A count, then each item written by `each`.
    pub fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.len(items.len());
        for item in items {
            each(self, item);
        }
    }

    /// Writes the frame (its length, then the payload) in one call.
    pub fn send(&mut self, w: &mut impl Write) -> std::io::Result<()> {
        let len = self.0.len().saturating_sub(8) as u64;
        if let Some(head) = self.0.get_mut(..8) {
            head.copy_from_slice(&len.to_le_bytes());
        }
        w.write_all(&self.0)
    }

    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn datatype(&mut self, d: Datatype) {
        self.u8(match d {
            Datatype::Bool => 0,
            Datatype::Int32 => 1,
            Datatype::Int64 => 2,
            Datatype::Fp32 => 3,
            Datatype::Fp64 => 4,
            Datatype::Bytes => 5,
        });
    }

    pub fn port(&mut self, p: &Port) {
        self.str(&p.name);
        self.datatype(p.datatype);
        match &p.shape {
            None => self.u8(0),
            Some(dims) => {
                self.u8(1);
                self.len(dims.len());
                for d in dims {
                    self.0.extend_from_slice(&d.to_le_bytes());
                }
            }
        }
    }

    pub fn output(&mut self, o: &OutputPort) {
        self.port(&o.port);
        self.u8(match o.kind {
            OutputKind::Tensor(_) => 0,
            OutputKind::ClassMaps { string_keys: false } => 1,
            OutputKind::ClassMaps { string_keys: true } => 2,
        });
    }

    pub fn tensor(&mut self, t: &Tensor) {
        self.str(&t.name);
        self.datatype(t.data.datatype());
        self.len(t.shape.len());
        for d in &t.shape {
            self.len(*d);
        }
        self.len(t.data.len());
        macro_rules! each {
            ($v:expr) => {
                for x in $v {
                    self.0.extend_from_slice(&x.to_le_bytes());
                }
            };
        }
        match &t.data {
            Data::Bool(v) => self.0.extend(v.iter().map(|b| u8::from(*b))),
            Data::Int32(v) => each!(v),
            Data::Int64(v) => each!(v),
            Data::Fp32(v) => each!(v),
            Data::Fp64(v) => each!(v),
            Data::Bytes(v) => v.iter().for_each(|s| self.str(s)),
        }
        match &t.parameters {
            None => self.u8(0),
            Some(p) => {
                self.u8(1);
                self.str(&p.to_string());
            }
        }
    }

    pub fn error(e: &OnnxError) -> Self {
        let mut o = Self::new(ERR);
        let (code, message) = match e {
            OnnxError::Runtime(m) => (0, m.clone()),
            OnnxError::Refused(m) => (1, m.clone()),
            OnnxError::Build(m) => (2, m.clone()),
            OnnxError::Timeout(d) => (3, d.as_millis().to_string()),
            OnnxError::Run(m) => (4, m.clone()),
            OnnxError::Worker(m) => (5, m.clone()),
        };
        o.u8(code);
        o.str(&message);
        o
    }
}

/// A frame being read.
pub struct In<'a>(&'a [u8]);

/// A frame that does not follow the protocol: what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn bad(what: &str) -> Malformed {
    Malformed(what.to_owned())
}

impl<'a> In<'a> {
    /// The frame's tag and the rest.
    pub fn open(frame: &'a [u8]) -> Result<(u8, Self), Malformed> {
        match frame.split_first() {
            Some((tag, rest)) => Ok((*tag, Self(rest))),
            None => Err(bad("an empty frame")),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if n > self.0.len() {
            return Err(bad("a truncated frame"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        self.take(N)?
            .try_into()
            .map_err(|_| bad("a truncated frame"))
    }

    pub fn u8(&mut self) -> Result<u8, Malformed> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub fn u64(&mut self) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count of items of at least `each` bytes, which must fit in what remains.
    fn count(&mut self, each: usize) -> Result<usize, Malformed> {
        let n = usize::try_from(self.u64()?).map_err(|_| bad("a count past this machine"))?;
        if n.saturating_mul(each.max(1)) > self.0.len() {
            return Err(bad("a count larger than the frame"));
        }
        Ok(n)
    }

    /// A count, then that many items read by `each` (each at least one byte).
    pub fn list<T>(
        &mut self,
        mut each: impl FnMut(&mut Self) -> Result<T, Malformed>,
    ) -> Result<Vec<T>, Malformed> {
        let n = self.count(1)?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(each(self)?);
        }
        Ok(out)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.count(1)?;
        self.take(n)
    }

    pub fn str(&mut self) -> Result<String, Malformed> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("text that is not UTF-8"))
    }

    pub fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(bad("bytes after the end of the frame"))
        }
    }

    fn datatype(&mut self) -> Result<Datatype, Malformed> {
        Ok(match self.u8()? {
            0 => Datatype::Bool,
            1 => Datatype::Int32,
            2 => Datatype::Int64,
            3 => Datatype::Fp32,
            4 => Datatype::Fp64,
            5 => Datatype::Bytes,
            _ => return Err(bad("an unknown datatype")),
        })
    }

    pub fn port(&mut self) -> Result<Port, Malformed> {
        let name = self.str()?;
        let datatype = self.datatype()?;
        let shape = match self.u8()? {
            0 => None,
            _ => {
                let n = self.count(8)?;
                let mut dims = Vec::with_capacity(n);
                for _ in 0..n {
                    dims.push(i64::from_le_bytes(self.array()?));
                }
                Some(dims)
            }
        };
        Ok(Port {
            name,
            datatype,
            shape,
        })
    }

    pub fn output(&mut self) -> Result<OutputPort, Malformed> {
        let port = self.port()?;
        let kind = match self.u8()? {
            0 => OutputKind::Tensor(port.datatype),
            1 => OutputKind::ClassMaps { string_keys: false },
            2 => OutputKind::ClassMaps { string_keys: true },
            _ => return Err(bad("an unknown output kind")),
        };
        Ok(OutputPort { port, kind })
    }

    pub fn tensor(&mut self) -> Result<Tensor, Malformed> {
        let name = self.str()?;
        let datatype = self.datatype()?;
        let rank = self.count(8)?;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(
                usize::try_from(self.u64()?).map_err(|_| bad("a dimension past this machine"))?,
            );
        }
        macro_rules! each {
            ($t:ty, $variant:ident) => {{
                const W: usize = std::mem::size_of::<$t>();
                let n = self.count(W)?;
                let raw = self.take(n * W)?;
                Data::$variant(
                    raw.chunks_exact(W)
                        .map(|c| {
                            <[u8; W]>::try_from(c).map_or(<$t>::default(), <$t>::from_le_bytes)
                        })
                        .collect(),
                )
            }};
        }
        let data = match datatype {
            Datatype::Bool => {
                let n = self.count(1)?;
                Data::Bool(self.take(n)?.iter().map(|b| *b != 0).collect())
            }
            Datatype::Int32 => each!(i32, Int32),
            Datatype::Int64 => each!(i64, Int64),
            Datatype::Fp32 => each!(f32, Fp32),
            Datatype::Fp64 => each!(f64, Fp64),
            Datatype::Bytes => {
                let n = self.count(8)?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.str()?);
                }
                Data::Bytes(v)
            }
        };
        // Whoever reads `shape` (to size a buffer, to split rows) may trust it.
        let elements = shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
        if elements != Some(data.len()) {
            return Err(bad(&format!(
                "tensor {name}: shape {shape:?} for {} elements",
                data.len()
            )));
        }
        let parameters = match self.u8()? {
            0 => None,
            _ => Some(
                serde_json::from_slice::<Value>(self.bytes()?)
                    .map_err(|_| bad("parameters that are not JSON"))?,
            ),
        };
        Ok(Tensor {
            name,
            shape,
            data,
            parameters,
        })
    }

    pub fn error(&mut self) -> Result<OnnxError, Malformed> {
        let code = self.u8()?;
        let m = self.str()?;
        Ok(match code {
            0 => OnnxError::Runtime(m),
            1 => OnnxError::Refused(m),
            2 => OnnxError::Build(m),
            3 => OnnxError::Timeout(Duration::from_millis(m.parse().unwrap_or(0))),
            4 => OnnxError::Run(m),
            _ => OnnxError::Worker(m),
        })
    }
}

/// The load frame: the limits the worker's one session keeps, then the model.
pub fn load(limits: &OnnxLimits, model: &[u8]) -> Out {
    let mut o = Out::new(LOAD);
    o.u64(u64::try_from(limits.run_timeout.as_millis()).unwrap_or(u64::MAX));
    o.u64(limits.threads as u64);
    o.u64(limits.max_nodes);
    o.u64(limits.max_file);
    o.bytes(model);
    o
}

/// Reads a load frame (after its tag).
pub fn read_load<'a>(i: &mut In<'a>) -> Result<(OnnxLimits, &'a [u8]), Malformed> {
    let run_timeout = Duration::from_millis(i.u64()?);
    let threads = usize::try_from(i.u64()?)
        .map_err(|_| bad("threads"))?
        .max(1);
    let max_nodes = i.u64()?;
    let max_file = i.u64()?;
    let model = i.bytes()?;
    i.end()?;
    Ok((
        OnnxLimits {
            max_file,
            max_nodes,
            run_timeout,
            threads,
            sessions: 1,
        },
        model,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    fn tensors() -> Vec<Tensor> {
        vec![
            Tensor {
                name: "p".into(),
                shape: vec![2, 2],
                data: Data::Fp32(vec![0.25, 0.75, f32::NAN, -0.0]),
                parameters: Some(serde_json::json!({"classes": ["a", "b"]})),
            },
            Tensor {
                name: "d".into(),
                shape: vec![1],
                data: Data::Fp64(vec![1e300]),
                parameters: None,
            },
            Tensor {
                name: "i".into(),
                shape: vec![3],
                data: Data::Int64(vec![i64::MIN, 0, i64::MAX]),
                parameters: None,
            },
            Tensor {
                name: "j".into(),
                shape: vec![1],
                data: Data::Int32(vec![-7]),
                parameters: None,
            },
            Tensor {
                name: "b".into(),
                shape: vec![2],
                data: Data::Bool(vec![true, false]),
                parameters: None,
            },
            Tensor {
                name: "s".into(),
                shape: vec![2],
                data: Data::Bytes(vec!["héllo".into(), String::new()]),
                parameters: None,
            },
        ]
    }

    fn frame() -> Vec<u8> {
        let mut o = Out::new(OK);
        o.list(&tensors(), Out::tensor);
        o.finish()
    }

    fn read(frame: &[u8]) -> Result<Vec<Tensor>, Malformed> {
        let (_, mut i) = In::open(frame)?;
        let out = i.list(In::tensor)?;
        i.end()?;
        Ok(out)
    }

    #[test]
    fn every_tensor_type_comes_back_as_it_went() {
        let got = read(&frame()).unwrap();
        let want = tensors();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            if let (Data::Fp32(a), Data::Fp32(b)) = (&g.data, &w.data) {
                // NaN and -0.0 keep their bits.
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(b));
                assert_eq!(g.parameters, w.parameters);
            } else {
                assert_eq!(g, w);
            }
        }
    }

    #[test]
    fn a_cut_or_lying_frame_is_an_error_not_a_panic_or_an_allocation() {
        let f = frame();
        for cut in 0..f.len() {
            assert!(read(&f[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = f.clone();
        longer.push(0);
        assert!(read(&longer).is_err());
        // A tensor claiming 2^60 floats in a frame of a few bytes.
        let mut o = Out::new(OK);
        o.u64(1);
        o.str("x");
        o.u8(3);
        o.u64(1);
        o.u64(1 << 60);
        o.u64(1 << 60);
        assert!(read(&o.finish()).unwrap_err().0.contains("count"));
        // A shape claiming 2^40 rows for two elements: whoever sizes a buffer by the shape
        // would allocate terabytes.
        let mut o = Out::new(OK);
        o.u64(1);
        o.str("p");
        o.u8(3);
        o.u64(2);
        o.u64(1 << 40);
        o.u64(2);
        o.u64(2);
        o.0.extend_from_slice(&[0; 8]);
        o.u8(0);
        assert!(
            read(&o.finish()).unwrap_err().0.contains("shape"),
            "a lying shape"
        );
        // A frame length over the bound is refused before it is read.
        let mut wire = Vec::new();
        write_frame(&mut wire, &f).unwrap();
        let e = read_frame(&mut wire.as_slice(), 8).unwrap_err();
        assert!(e.to_string().contains("more than the 8 allowed"), "{e}");
        assert_eq!(
            read_frame(&mut wire.as_slice(), 1 << 20).unwrap().unwrap(),
            f
        );
        assert!(read_frame(&mut &wire[..wire.len() - 1], 1 << 20).is_err());
        assert!(read_frame(&mut &[][..], 8).unwrap().is_none());
    }

    #[test]
    fn errors_keep_their_kind() {
        for e in [
            OnnxError::Runtime("r".into()),
            OnnxError::Refused("f".into()),
            OnnxError::Build("b".into()),
            OnnxError::Timeout(Duration::from_millis(1500)),
            OnnxError::Run("u".into()),
            OnnxError::Worker("w".into()),
        ] {
            let f = Out::error(&e).finish();
            let (tag, mut i) = In::open(&f).unwrap();
            assert_eq!(tag, ERR);
            let back = i.error().unwrap();
            assert_eq!(format!("{back:?}"), format!("{e:?}"));
        }
    }
}
