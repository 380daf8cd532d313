//! Convert PyTorch checkpoints to safetensors **without Python and without running anything
//! from the file**.
//!
//! A restricted pickle machine builds only what a state dict is made of: plain containers,
//! `collections.OrderedDict`, tensors rebuilt by `torch._utils._rebuild_tensor(_v2, _v3)` /
//! `_rebuild_parameter`, dtype objects, and typed or untyped storages named by persistent ids.
//! Every dtype torch saves is understood; those safetensors cannot hold (quantized, complex128,
//! the fnuz float8 variants) are refused with the reason. Any other import is refused by
//! name — nothing is imported, nothing is called. Tensors are written with the same names
//! (nested dicts flattened with dots), dtypes, shapes and bytes; non-contiguous views are
//! materialised element by element. The output is streamed, so memory stays bounded by the
//! largest non-contiguous view, not by the checkpoint.
//!
//! Inputs: the zip layout (`torch.save` default) and the legacy layout (several pickles back to
//! back, then raw storages).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::rc::Rc;

use crate::blob::Blob;
use crate::pickle::ops::{Arg, next_op};
use crate::pickle::{ReadSource, Source};
use crate::sniff::{Kind, sniff};

/// The largest pickle (data.pkl) read into memory.
pub const MAX_PICKLE_BYTES: u64 = 256 << 20;
/// The largest span of a storage read to materialise one non-contiguous view.
pub const MAX_VIEW_SPAN_BYTES: u64 = 2 << 30;
/// Most pickle opcodes executed.
pub const MAX_OPS: u64 = 100_000_000;
/// Most values on the stack, in the memo, or in one container.
pub const MAX_VALUES: usize = 10_000_000;

/// Why a conversion did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The checkpoint imports something outside the allowlist: refused, nothing imported.
    #[error(
        "refused: the checkpoint imports {import} (at offset {offset} of {entry}), which is not a tensor, storage or container rebuild; nothing was imported or run"
    )]
    Refused {
        /// `module.name`.
        import: String,
        /// Which pickle.
        entry: String,
        /// Byte offset of the import.
        offset: u64,
    },
    /// The input is not a checkpoint this converter reads.
    #[error("{0}")]
    Unsupported(String),
    /// The checkpoint is malformed.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// Reading or writing failed.
    #[error("{action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Which file.
        path: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn bad(msg: impl Into<String>) -> ConvertError {
    ConvertError::Malformed(msg.into())
}

/// What was converted.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Converted {
    /// The input layout: `pytorch` or `pytorch-legacy`.
    pub layout: String,
    /// Tensors written, by name.
    pub tensors: Vec<(String, String, Vec<u64>)>,
    /// Non-tensor values that were left out, by name.
    pub skipped: Vec<String>,
    /// Bytes of tensor data written.
    pub bytes: u64,
}

/// One torch dtype: its name, its legacy storage class, its safetensors name (when safetensors
/// can hold it) and its element size in bytes.
#[derive(Debug, PartialEq, Eq)]
struct DtypeInfo {
    torch: &'static str,
    storage: Option<&'static str>,
    safetensors: Option<&'static str>,
    size: u64,
}

type Dtype = &'static DtypeInfo;

const fn dt(
    torch: &'static str,
    storage: Option<&'static str>,
    safetensors: Option<&'static str>,
    size: u64,
) -> DtypeInfo {
    DtypeInfo {
        torch,
        storage,
        safetensors,
        size,
    }
}

/// Every dtype torch saves. Those without a safetensors name are read (so the checkpoint is
/// understood) but refused at conversion with the reason.
static DTYPES: &[DtypeInfo] = &[
    dt("float64", Some("DoubleStorage"), Some("F64"), 8),
    dt("float32", Some("FloatStorage"), Some("F32"), 4),
    dt("float16", Some("HalfStorage"), Some("F16"), 2),
    dt("bfloat16", Some("BFloat16Storage"), Some("BF16"), 2),
    dt("int64", Some("LongStorage"), Some("I64"), 8),
    dt("int32", Some("IntStorage"), Some("I32"), 4),
    dt("int16", Some("ShortStorage"), Some("I16"), 2),
    dt("int8", Some("CharStorage"), Some("I8"), 1),
    dt("uint8", Some("ByteStorage"), Some("U8"), 1),
    dt("bool", Some("BoolStorage"), Some("BOOL"), 1),
    dt("complex64", Some("ComplexFloatStorage"), Some("C64"), 8),
    dt("float8_e4m3fn", None, Some("F8_E4M3"), 1),
    dt("float8_e5m2", None, Some("F8_E5M2"), 1),
    dt("float8_e8m0fnu", None, Some("F8_E8M0"), 1),
    dt("uint16", None, Some("U16"), 2),
    dt("uint32", None, Some("U32"), 4),
    dt("uint64", None, Some("U64"), 8),
    dt("complex128", Some("ComplexDoubleStorage"), None, 16),
    dt("complex32", None, None, 4),
    dt("float8_e4m3fnuz", None, None, 1),
    dt("float8_e5m2fnuz", None, None, 1),
    dt("float4_e2m1fn_x2", None, None, 1),
    dt("qint8", Some("QInt8Storage"), None, 1),
    dt("quint8", Some("QUInt8Storage"), None, 1),
    dt("qint32", Some("QInt32Storage"), None, 4),
    dt("quint4x2", Some("QUInt4x2Storage"), None, 1),
    dt("quint2x4", Some("QUInt2x4Storage"), None, 1),
    dt("bits8", None, None, 1),
    dt("bits16", None, None, 2),
];

/// Why safetensors cannot hold a dtype.
fn unconvertible_reason(d: Dtype) -> &'static str {
    match d.torch {
        "complex128" | "complex32" => "safetensors has no complex type but complex64 (C64)",
        t if t.starts_with('q') => {
            "quantized tensors carry a scale and zero point that safetensors cannot hold; dequantize them in torch first"
        }
        t if t.ends_with("fnuz") => {
            "safetensors has only the OCP float8 formats (F8_E4M3, F8_E5M2, F8_E8M0), not the fnuz variants"
        }
        "float4_e2m1fn_x2" => {
            "packed float4 pairs have no safetensors type this writer can vouch for"
        }
        _ => "safetensors has no type for it",
    }
}

fn dtype_named(torch: &str) -> Option<Dtype> {
    DTYPES.iter().find(|d| d.torch == torch)
}

fn dtype_of_storage(class: &str) -> Option<Dtype> {
    DTYPES.iter().find(|d| d.storage == Some(class))
}

#[derive(Debug)]
struct Storage {
    key: String,
    /// Element size of the storage class (1 for `UntypedStorage`): legacy files record storage
    /// lengths in these elements.
    elem: u64,
    /// The storage class's dtype (`None` for `UntypedStorage`).
    typed: Option<Dtype>,
    /// Length in bytes.
    nbytes: u64,
    /// Offset in bytes within the root storage (legacy views).
    base: u64,
}

#[derive(Debug)]
struct Tensor {
    storage: Rc<Storage>,
    dtype: Dtype,
    /// Offset in elements of `dtype`.
    offset: u64,
    shape: Vec<u64>,
    stride: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Callable {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildParameter,
    RebuildParameterWithState,
    StorageType(Dtype),
    UntypedStorage,
    /// A dtype object (`torch.float8_e4m3fn`): an argument, never called.
    DtypeValue(Dtype),
    /// A vetted torch constant that is only passed as an argument (`torch.per_tensor_affine`).
    Constant,
    /// A torch rebuild this converter knows but safetensors cannot hold: the reason.
    Unconvertible(&'static str),
    Size,
}

#[derive(Debug, Clone)]
enum V {
    None,
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Bytes,
    Tuple(Rc<Vec<V>>),
    List(Rc<RefCell<Vec<V>>>),
    Dict(Rc<RefCell<Vec<(V, V)>>>),
    Callable(Callable),
    Storage(Rc<Storage>),
    Tensor(Rc<Tensor>),
}

fn allowed(module: &str, name: &str) -> Option<Callable> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => Callable::OrderedDict,
        ("torch._utils", "_rebuild_tensor") => Callable::RebuildTensor,
        ("torch._utils", "_rebuild_tensor_v2") => Callable::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor_v3") => Callable::RebuildTensorV3,
        ("torch._utils", "_rebuild_parameter") => Callable::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Callable::RebuildParameterWithState,
        ("torch._utils", "_rebuild_qtensor") => Callable::Unconvertible(
            "a quantized tensor (torch._utils._rebuild_qtensor): quantized tensors carry a scale and zero point that safetensors cannot hold; dequantize them in torch first",
        ),
        ("torch._utils", "_rebuild_sparse_tensor" | "_rebuild_sparse_csr_tensor") => {
            Callable::Unconvertible(
                "a sparse tensor: safetensors holds dense tensors only; call .to_dense() in torch first",
            )
        }
        ("torch._utils", "_rebuild_nested_tensor") => {
            Callable::Unconvertible("a nested tensor: safetensors holds dense tensors only")
        }
        ("torch._utils", "_rebuild_meta_tensor_no_storage") => {
            Callable::Unconvertible("a meta tensor: it has a shape but no data to convert")
        }
        ("torch._utils", "_rebuild_wrapper_subclass" | "_rebuild_device_tensor_from_numpy") => {
            Callable::Unconvertible(
                "a tensor subclass or device tensor this converter does not read",
            )
        }
        ("torch.storage", "UntypedStorage") => Callable::UntypedStorage,
        ("torch", "Size") => Callable::Size,
        (
            "torch",
            "per_tensor_affine"
            | "per_channel_affine"
            | "per_tensor_symmetric"
            | "per_channel_symmetric"
            | "per_channel_affine_float_qparams",
        ) => Callable::Constant,
        ("torch", n) => dtype_named(n).map_or_else(
            || dtype_of_storage(n).map(Callable::StorageType),
            |d| Some(Callable::DtypeValue(d)),
        )?,
        _ => return None,
    })
}

fn as_u64(v: &V, what: &str) -> Result<u64, ConvertError> {
    match v {
        V::Int(i) => u64::try_from(*i).map_err(|_| bad(format!("{what} is negative"))),
        _ => Err(bad(format!("{what} is not an integer"))),
    }
}

fn as_dims(v: &V, what: &str) -> Result<Vec<u64>, ConvertError> {
    match v {
        V::Tuple(items) => items.iter().map(|d| as_u64(d, what)).collect(),
        V::List(items) => items.borrow().iter().map(|d| as_u64(d, what)).collect(),
        _ => Err(bad(format!("{what} is not a tuple"))),
    }
}

fn tuple_items(v: &V) -> Result<Vec<V>, ConvertError> {
    match v {
        V::Tuple(items) => Ok(items.as_ref().clone()),
        _ => Err(bad("arguments are not a tuple")),
    }
}

/// Runs the restricted machine over one pickle.
fn load(src: &mut dyn Source, entry: &str) -> Result<V, ConvertError> {
    let mut stack: Vec<V> = Vec::new();
    let mut marks: Vec<Vec<V>> = Vec::new();
    let mut memo: HashMap<i64, V> = HashMap::new();
    let mut ops = 0u64;
    let underflow = || bad(format!("{entry}: stack underflow"));
    loop {
        ops += 1;
        if ops > MAX_OPS || stack.len() + marks.len() > MAX_VALUES || memo.len() > MAX_VALUES {
            return Err(bad(format!("{entry}: exceeds the conversion limits")));
        }
        let op = next_op(src)
            .map_err(|e| bad(format!("{entry}: {e}")))?
            .ok_or_else(|| bad(format!("{entry}: ends without STOP")))?;
        let off = op.offset;
        let refuse = |import: String| ConvertError::Refused {
            import,
            entry: entry.to_owned(),
            offset: off,
        };
        macro_rules! pop {
            () => {
                stack.pop().ok_or_else(underflow)?
            };
        }
        match (op.code, op.arg) {
            (b'.', _) => return stack.pop().ok_or_else(underflow),
            (0x80 | 0x95, _) => {}
            (b'(', _) => marks.push(std::mem::take(&mut stack)),
            (b'0', _) => {
                pop!();
            }
            (b'1', _) => stack = marks.pop().ok_or_else(underflow)?,
            (b'2', _) => {
                let top = stack.last().cloned().ok_or_else(underflow)?;
                stack.push(top);
            }
            (b'N', _) => stack.push(V::None),
            (0x88 | 0x89, _) => stack.push(V::Bool),
            (b'g' | b'h' | b'j', Arg::Int(i)) => stack.push(
                memo.get(&i)
                    .cloned()
                    .ok_or_else(|| bad(format!("{entry}: memo {i} missing")))?,
            ),
            (b'p' | b'q' | b'r', Arg::Int(i)) => {
                memo.insert(i, stack.last().cloned().ok_or_else(underflow)?);
            }
            (0x94, _) => {
                let i = i64::try_from(memo.len()).unwrap_or(i64::MAX);
                memo.insert(i, stack.last().cloned().ok_or_else(underflow)?);
            }
            (_, Arg::Int(i))
                if matches!(op.code, b'I' | b'J' | b'K' | b'M' | b'L' | 0x8a | 0x8b) =>
            {
                stack.push(V::Int(i));
            }
            (_, Arg::BigInt(_) | Arg::Float(_)) => stack.push(V::Float),
            (b'S' | b'T' | b'U' | b'V' | b'X' | 0x8c | 0x8d, Arg::Str { text, truncated }) => {
                if truncated {
                    return Err(bad(format!("{entry}: a string longer than the limit")));
                }
                stack.push(V::Str(text.into()));
            }
            (_, Arg::Bytes { .. }) => stack.push(V::Bytes),
            (b')', _) => stack.push(V::Tuple(Rc::new(Vec::new()))),
            (b']', _) => stack.push(V::List(Rc::default())),
            (b'}', _) => stack.push(V::Dict(Rc::default())),
            (0x85..=0x87, _) => {
                let n = usize::from(op.code - 0x84);
                if stack.len() < n {
                    return Err(underflow());
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(V::Tuple(Rc::new(items)));
            }
            (b't', _) => {
                let items = std::mem::replace(&mut stack, marks.pop().ok_or_else(underflow)?);
                stack.push(V::Tuple(Rc::new(items)));
            }
            (b'l', _) => {
                let items = std::mem::replace(&mut stack, marks.pop().ok_or_else(underflow)?);
                stack.push(V::List(Rc::new(RefCell::new(items))));
            }
            (b'd', _) => {
                let items = std::mem::replace(&mut stack, marks.pop().ok_or_else(underflow)?);
                let pairs = items
                    .chunks(2)
                    .filter_map(|c| Some((c.first()?.clone(), c.get(1)?.clone())))
                    .collect();
                stack.push(V::Dict(Rc::new(RefCell::new(pairs))));
            }
            (b'a', _) => {
                let v = pop!();
                match stack.last() {
                    Some(V::List(l)) => l.borrow_mut().push(v),
                    _ => return Err(bad(format!("{entry}: APPEND to a non-list"))),
                }
            }
            (b'e', _) => {
                let items = std::mem::replace(&mut stack, marks.pop().ok_or_else(underflow)?);
                match stack.last() {
                    Some(V::List(l)) if l.borrow().len() + items.len() <= MAX_VALUES => {
                        l.borrow_mut().extend(items);
                    }
                    _ => return Err(bad(format!("{entry}: APPENDS to a non-list"))),
                }
            }
            (b's', _) => {
                let v = pop!();
                let k = pop!();
                match stack.last() {
                    Some(V::Dict(d)) => d.borrow_mut().push((k, v)),
                    _ => return Err(bad(format!("{entry}: SETITEM on a non-dict"))),
                }
            }
            (b'u', _) => {
                let items = std::mem::replace(&mut stack, marks.pop().ok_or_else(underflow)?);
                match stack.last() {
                    Some(V::Dict(d)) if d.borrow().len() + items.len() / 2 <= MAX_VALUES => {
                        d.borrow_mut().extend(
                            items
                                .chunks(2)
                                .filter_map(|c| Some((c.first()?.clone(), c.get(1)?.clone()))),
                        );
                    }
                    _ => return Err(bad(format!("{entry}: SETITEMS on a non-dict"))),
                }
            }
            (b'c', Arg::Pair(m, n)) => {
                let (m, n) = crate::pickle::policy::normalise(&m, &n);
                stack.push(V::Callable(
                    allowed(&m, &n).ok_or_else(|| refuse(format!("{m}.{n}")))?,
                ));
            }
            (0x93, _) => {
                let n = pop!();
                let m = pop!();
                match (m, n) {
                    (V::Str(m), V::Str(n)) => {
                        let (m, n) = crate::pickle::policy::normalise(&m, &n);
                        stack.push(V::Callable(
                            allowed(&m, &n).ok_or_else(|| refuse(format!("{m}.{n}")))?,
                        ));
                    }
                    _ => return Err(refuse("a dynamically built import".into())),
                }
            }
            (b'Q', _) => {
                let pid = pop!();
                stack.push(
                    persistent(&pid).map_err(|e| bad(format!("{entry} at offset {off}: {e}")))?,
                );
            }
            (b'R', _) => {
                let args = pop!();
                let f = pop!();
                let V::Callable(c) = f else {
                    return Err(refuse("a call of a non-allowlisted value".into()));
                };
                stack.push(call(c, &args).map_err(|e| match e {
                    ConvertError::Malformed(m) => bad(format!("{entry} at offset {off}: {m}")),
                    other => other,
                })?);
            }
            (b'b', _) => {
                // __setstate__ on a dict subclass (OrderedDict's _metadata) or a parameter: the
                // state is not tensor data; keep the object.
                let _state = pop!();
                if !matches!(stack.last(), Some(V::Dict(_) | V::Tensor(_))) {
                    return Err(refuse("a BUILD on a non-container object".into()));
                }
            }
            (code, _) => {
                let name = crate::pickle::ops::name(code).unwrap_or("UNKNOWN");
                return Err(refuse(format!(
                    "the {name} opcode (object construction outside the allowlist)"
                )));
            }
        }
    }
}

fn persistent(pid: &V) -> Result<V, String> {
    let V::Tuple(items) = pid else {
        return Err("persistent id is not a tuple".into());
    };
    let (
        Some(V::Str(kind)),
        Some(V::Callable(class)),
        Some(V::Str(key)),
        Some(_loc),
        Some(V::Int(numel)),
    ) = (
        items.first(),
        items.get(1),
        items.get(2),
        items.get(3),
        items.get(4),
    )
    else {
        return Err("persistent id is not ('storage', type, key, location, numel)".into());
    };
    if &**kind != "storage" {
        return Err(format!("persistent id of kind {kind:?}"));
    }
    let elem = match class {
        Callable::StorageType(d) => d.size,
        Callable::UntypedStorage => 1,
        _ => return Err("persistent id names no storage class".into()),
    };
    let numel = u64::try_from(*numel).map_err(|_| "negative storage size")?;
    // Legacy: a sixth element describes a view into a larger storage.
    let (key, base, numel) = match items.get(5) {
        None | Some(V::None) => (key.to_string(), 0, numel),
        Some(V::Tuple(view)) => match (view.first(), view.get(1), view.get(2)) {
            (Some(V::Str(_view_key)), Some(V::Int(offset)), Some(V::Int(size))) => (
                key.to_string(),
                u64::try_from(*offset).map_err(|_| "negative view offset")?,
                u64::try_from(*size).map_err(|_| "negative view size")?,
            ),
            _ => return Err("malformed storage view".into()),
        },
        Some(_) => return Err("malformed storage view".into()),
    };
    Ok(V::Storage(Rc::new(Storage {
        key,
        elem,
        typed: match class {
            Callable::StorageType(d) => Some(*d),
            _ => None,
        },
        nbytes: numel.checked_mul(elem).ok_or("storage size overflows")?,
        base: base
            .checked_mul(elem)
            .ok_or("storage view offset overflows")?,
    })))
}

fn call(c: Callable, args: &V) -> Result<V, ConvertError> {
    let a = tuple_items(args)?;
    match c {
        Callable::OrderedDict => Ok(V::Dict(Rc::default())),
        Callable::Size => Ok(a.first().cloned().unwrap_or(V::Tuple(Rc::new(Vec::new())))),
        Callable::StorageType(_) | Callable::UntypedStorage => {
            Err(bad("storage types are only valid in persistent ids"))
        }
        Callable::DtypeValue(_) | Callable::Constant => {
            Err(bad("a dtype or torch constant is called"))
        }
        Callable::Unconvertible(why) => Err(ConvertError::Unsupported(format!(
            "the checkpoint holds {why}; nothing was written"
        ))),
        Callable::RebuildParameter | Callable::RebuildParameterWithState => match a.first() {
            Some(t @ V::Tensor(_)) => Ok(t.clone()),
            _ => Err(bad("_rebuild_parameter without a tensor")),
        },
        Callable::RebuildTensor | Callable::RebuildTensorV2 | Callable::RebuildTensorV3 => {
            let (Some(V::Storage(storage)), Some(offset), Some(shape), Some(stride)) =
                (a.first(), a.get(1), a.get(2), a.get(3))
            else {
                return Err(bad(
                    "_rebuild_tensor arguments are not (storage, offset, size, stride, …)",
                ));
            };
            // v3 names the dtype (the storage is untyped bytes); earlier versions take it from
            // the storage class.
            let dtype = if c == Callable::RebuildTensorV3 {
                match a.get(6) {
                    Some(V::Callable(Callable::DtypeValue(d))) => *d,
                    _ => return Err(bad("_rebuild_tensor_v3 without a dtype")),
                }
            } else {
                storage
                    .typed
                    .ok_or_else(|| bad("a tensor on an untyped storage names no dtype"))?
            };
            let shape = as_dims(shape, "size")?;
            let stride = as_dims(stride, "stride")?;
            if shape.len() != stride.len() || shape.len() > 64 {
                return Err(bad("size and stride have different lengths"));
            }
            let offset = as_u64(offset, "storage offset")?;
            // Every byte the view touches must lie inside the storage.
            if shape.iter().all(|d| *d > 0) {
                let end = shape
                    .iter()
                    .zip(&stride)
                    .try_fold(offset, |acc, (d, s)| {
                        (d - 1).checked_mul(*s).and_then(|x| acc.checked_add(x))
                    })
                    .and_then(|last| last.checked_add(1))
                    .and_then(|n| n.checked_mul(dtype.size));
                if end.is_none_or(|e| e > storage.nbytes) {
                    return Err(bad(format!(
                        "a tensor view reaches past its storage of {} bytes",
                        storage.nbytes
                    )));
                }
            }
            Ok(V::Tensor(Rc::new(Tensor {
                storage: storage.clone(),
                dtype,
                offset,
                shape,
                stride,
            })))
        }
    }
}

fn flatten(
    prefix: &str,
    v: &V,
    out: &mut BTreeMap<String, Rc<Tensor>>,
    skipped: &mut Vec<String>,
    depth: usize,
) -> Result<(), ConvertError> {
    if depth > 64 {
        return Err(bad("state dict nested too deeply"));
    }
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        V::Tensor(t) => {
            if out.insert(prefix.to_owned(), t.clone()).is_some() {
                return Err(bad(format!("two tensors are named {prefix:?}")));
            }
        }
        V::Dict(d) => {
            for (k, x) in d.borrow().iter() {
                let key = match k {
                    V::Str(s) => s.to_string(),
                    V::Int(i) => i.to_string(),
                    _ => return Err(bad(format!("a key under {prefix:?} is not a string"))),
                };
                flatten(&join(&key), x, out, skipped, depth + 1)?;
            }
        }
        V::List(l) => {
            for (i, x) in l.borrow().iter().enumerate() {
                flatten(&join(&i.to_string()), x, out, skipped, depth + 1)?;
            }
        }
        V::Tuple(items) => {
            for (i, x) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), x, out, skipped, depth + 1)?;
            }
        }
        _ => skipped.push(prefix.to_owned()),
    }
    Ok(())
}

/// Where storage bytes come from.
trait Storages {
    /// Reads `len` bytes at byte `offset` of storage `key`.
    fn read(&mut self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, ConvertError>;
}

struct ZipStorages<'a> {
    blob: &'a mut Blob,
    /// key → (data offset in the file, stored length).
    entries: HashMap<String, (u64, u64)>,
}

impl Storages for ZipStorages<'_> {
    fn read(&mut self, key: &str, offset: u64, len: u64) -> Result<Vec<u8>, ConvertError> {
        let (start, size) = *self
            .entries
            .get(key)
            .ok_or_else(|| bad(format!("storage {key:?} has no data entry")))?;
        if offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(bad(format!(
                "storage {key:?} is shorter than its tensors need"
            )));
        }
        self.blob
            .read_range(
                start + offset,
                usize::try_from(len).map_err(|_| bad("too large"))?,
            )
            .map_err(|e| bad(e.to_string()))
    }
}

/// Finds each storage's data (offset, length) once the model pickle has been read.
type StorageIndex = Box<dyn FnOnce(&mut Blob) -> Result<HashMap<String, (u64, u64)>, ConvertError>>;

/// Converts `input` to safetensors at `output` (written atomically).
///
/// # Errors
/// [`ConvertError::Refused`] when the checkpoint imports anything outside the allowlist;
/// other variants for unsupported or malformed input and I/O failures.
pub fn convert(input: &Path, output: &Path) -> Result<Converted, ConvertError> {
    let io_err = |action: &'static str, p: &Path| {
        let path = p.display().to_string();
        move |source| ConvertError::Io {
            action,
            path,
            source,
        }
    };
    let file = File::open(input).map_err(io_err("cannot open", input))?;
    let len = file.metadata().map_err(io_err("cannot stat", input))?.len();
    let mut blob = Blob::File(file, len);
    let head = blob
        .read_range(0, 64 * 1024)
        .map_err(io_err("cannot read", input))?;
    let mut result = Converted::default();
    let (root, storages): (V, StorageIndex) = match sniff(&head, len) {
        Kind::Zip => {
            result.layout = "pytorch".into();
            let listing = crate::zip::list(&mut blob, len).map_err(io_err("cannot read", input))?;
            if let Some(q) = listing
                .quirks
                .iter()
                .find(|q| q.rule != "zip-path-traversal")
            {
                return Err(bad(format!(
                    "the archive is not well-formed ({}): {}; scan it with `rampart scan`",
                    q.rule, q.message
                )));
            }
            let has = |tail: &str| {
                listing
                    .entries
                    .iter()
                    .any(|e| e.name == tail || e.name.ends_with(&format!("/{tail}")))
            };
            if has("constants.pkl") || listing.entries.iter().any(|e| e.name.contains("/code/")) {
                return Err(ConvertError::Unsupported(
                    "a TorchScript archive: its tensors are attributes of compiled modules, not a state dict; load it with torch.jit.load and save model.state_dict(), then convert that".into(),
                ));
            }
            if has("archive_format")
                || listing
                    .entries
                    .iter()
                    .any(|e| e.name.contains("/models/") && e.name.ends_with(".json"))
            {
                return Err(ConvertError::Unsupported(
                    "a torch.export program (.pt2): its weights belong to an exported graph; load it with torch.export.load and save the module's state_dict(), then convert that".into(),
                ));
            }
            let data = listing
                .entries
                .iter()
                .find(|e| e.name.ends_with("/data.pkl") || e.name == "data.pkl")
                .ok_or_else(|| {
                    ConvertError::Unsupported(
                        "a zip without data.pkl is not a PyTorch checkpoint".into(),
                    )
                })?;
            let prefix = data.name.strip_suffix("data.pkl").unwrap_or("").to_owned();
            if let Some(bo) = listing
                .entries
                .iter()
                .find(|e| e.name == format!("{prefix}byteorder"))
            {
                let text = blob
                    .read_range(bo.data_offset, 16)
                    .map_err(io_err("cannot read", input))?;
                if bo.method == 0 && String::from_utf8_lossy(&text).trim() == "big" {
                    return Err(ConvertError::Unsupported(
                        "big-endian checkpoints are not supported".into(),
                    ));
                }
            }
            let pkl = read_entry(&mut blob, data)?;
            let mut src = ReadSource::new(&pkl[..]);
            let root = load(&mut src, &data.name)?;
            let entries: HashMap<String, (u64, u64)> = listing
                .entries
                .iter()
                .filter_map(|e| {
                    let key = e.name.strip_prefix(&prefix)?.strip_prefix("data/")?;
                    Some((key.to_owned(), e))
                })
                .map(|(k, e)| {
                    if e.method == 0 {
                        Ok((k, (e.data_offset, e.compressed)))
                    } else {
                        Err(ConvertError::Unsupported(format!(
                            "storage {k:?} is compressed; torch writes storages uncompressed"
                        )))
                    }
                })
                .collect::<Result<_, _>>()?;
            (root, Box::new(move |_| Ok(entries)))
        }
        Kind::Pickle => {
            result.layout = "pytorch-legacy".into();
            let mut reader = blob.reader_from(0).map_err(io_err("cannot read", input))?;
            let mut src = ReadSource::new(&mut reader);
            // magic number, protocol version, sys_info, the model, the storage keys.
            let mut parts = Vec::new();
            for i in 0..5 {
                parts.push(load(&mut src, &format!("pickle {}", i + 1))?);
            }
            let data_start = src.offset();
            let keys: Vec<String> = match parts.get(4) {
                Some(V::List(l)) => l
                    .borrow()
                    .iter()
                    .map(|k| match k {
                        V::Str(s) => Ok(s.to_string()),
                        _ => Err(bad("storage keys are not strings")),
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    return Err(ConvertError::Unsupported(
                        "not a legacy PyTorch checkpoint (no storage key list after the model)"
                            .into(),
                    ));
                }
            };
            let root = parts.swap_remove(3);
            let mut sizes: HashMap<String, u64> = HashMap::new();
            collect_storage_sizes(&root, &mut sizes, 0);
            (
                root,
                Box::new(move |blob: &mut Blob| {
                    let mut entries = HashMap::new();
                    let mut at = data_start;
                    for key in keys {
                        let header = blob.read_range(at, 8).map_err(|e| bad(e.to_string()))?;
                        let numel = u64::from_le_bytes(
                            header
                                .as_slice()
                                .try_into()
                                .map_err(|_| bad("truncated storage record"))?,
                        );
                        let es = *sizes.get(&key).ok_or_else(|| {
                            bad(format!("storage {key:?} is not used by any tensor"))
                        })?;
                        let bytes = numel
                            .checked_mul(es)
                            .ok_or_else(|| bad("storage size overflows"))?;
                        entries.insert(key, (at + 8, bytes));
                        at = at
                            .checked_add(8 + bytes)
                            .filter(|a| *a <= blob.len())
                            .ok_or_else(|| bad("storage data runs past the end of the file"))?;
                    }
                    Ok(entries)
                }),
            )
        }
        other => {
            return Err(ConvertError::Unsupported(format!(
                "{} files are not PyTorch checkpoints",
                other.name()
            )));
        }
    };
    let entries = storages(&mut blob)?;
    let mut tensors = BTreeMap::new();
    flatten("", &root, &mut tensors, &mut result.skipped, 0)?;
    if tensors.is_empty() {
        return Err(ConvertError::Unsupported(
            "the checkpoint holds no tensors".into(),
        ));
    }
    let mut src = ZipStorages {
        blob: &mut blob,
        entries,
    };
    write_safetensors(&tensors, &mut src, output, &mut result)?;
    Ok(result)
}

fn collect_storage_sizes(v: &V, out: &mut HashMap<String, u64>, depth: usize) {
    if depth > 64 {
        return;
    }
    match v {
        V::Tensor(t) => {
            out.insert(t.storage.key.clone(), t.storage.elem);
        }
        V::Dict(d) => d
            .borrow()
            .iter()
            .for_each(|(_, x)| collect_storage_sizes(x, out, depth + 1)),
        V::List(l) => l
            .borrow()
            .iter()
            .for_each(|x| collect_storage_sizes(x, out, depth + 1)),
        V::Tuple(items) => items
            .iter()
            .for_each(|x| collect_storage_sizes(x, out, depth + 1)),
        _ => {}
    }
}

fn read_entry(blob: &mut Blob, e: &crate::zip::Entry) -> Result<Vec<u8>, ConvertError> {
    if e.uncompressed > MAX_PICKLE_BYTES || e.compressed > MAX_PICKLE_BYTES {
        return Err(bad(format!(
            "{} is larger than {MAX_PICKLE_BYTES} bytes",
            e.name
        )));
    }
    blob.seek(SeekFrom::Start(e.data_offset))
        .map_err(|x| bad(x.to_string()))?;
    let raw = io::BufReader::new(Read::take(&mut *blob, e.compressed));
    let mut out = Vec::new();
    let mut reader: Box<dyn Read> = match e.method {
        0 => Box::new(raw),
        8 => Box::new(flate2::bufread::DeflateDecoder::new(raw)),
        m => {
            return Err(ConvertError::Unsupported(format!(
                "{} uses compression method {m}",
                e.name
            )));
        }
    };
    reader
        .by_ref()
        .take(MAX_PICKLE_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|x| bad(x.to_string()))?;
    if out.len() as u64 > MAX_PICKLE_BYTES {
        return Err(bad(format!(
            "{} is larger than {MAX_PICKLE_BYTES} bytes",
            e.name
        )));
    }
    Ok(out)
}

fn is_contiguous(shape: &[u64], stride: &[u64]) -> bool {
    let mut expect = 1u64;
    for (d, s) in shape.iter().zip(stride).rev() {
        if *d != 1 && *s != expect {
            return false;
        }
        expect = expect.saturating_mul(*d);
    }
    true
}

fn write_safetensors(
    tensors: &BTreeMap<String, Rc<Tensor>>,
    src: &mut dyn Storages,
    output: &Path,
    result: &mut Converted,
) -> Result<(), ConvertError> {
    // Header first: names, dtypes, shapes, offsets.
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt", "converted_by": concat!("rampart ", env!("CARGO_PKG_VERSION"))}));
    let mut offset = 0u64;
    for (name, t) in tensors {
        let numel = t
            .shape
            .iter()
            .try_fold(1u64, |a, d| a.checked_mul(*d))
            .ok_or_else(|| bad(format!("{name}: shape overflows")))?;
        let bytes = numel
            .checked_mul(t.dtype.size)
            .ok_or_else(|| bad(format!("{name}: size overflows")))?;
        let Some(st) = t.dtype.safetensors else {
            return Err(ConvertError::Unsupported(format!(
                "tensor {name:?} has dtype torch.{}: {}; nothing was written",
                t.dtype.torch,
                unconvertible_reason(t.dtype)
            )));
        };
        header.insert(name.clone(), serde_json::json!({"dtype": st, "shape": t.shape, "data_offsets": [offset, offset + bytes]}));
        result
            .tensors
            .push((name.clone(), st.into(), t.shape.clone()));
        offset += bytes;
    }
    result.bytes = offset;
    let mut text = serde_json::to_string(&serde_json::Value::Object(header))
        .map_err(|e| bad(e.to_string()))?;
    while text.len() % 8 != 0 {
        text.push(' ');
    }
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|source| ConvertError::Io {
        action: "cannot create a file in",
        path: dir.display().to_string(),
        source,
    })?;
    let wio = |source| ConvertError::Io {
        action: "cannot write",
        path: output.display().to_string(),
        source,
    };
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file());
        w.write_all(&(text.len() as u64).to_le_bytes())
            .map_err(wio)?;
        w.write_all(text.as_bytes()).map_err(wio)?;
        for (name, t) in tensors {
            let es = t.dtype.size;
            let numel: u64 = t.shape.iter().product();
            if numel == 0 {
                continue;
            }
            let base = t.storage.base + t.offset * es;
            if is_contiguous(&t.shape, &t.stride) {
                let mut done = 0u64;
                let total = numel * es;
                while done < total {
                    let chunk = (total - done).min(8 << 20);
                    w.write_all(&src.read(&t.storage.key, base + done, chunk)?)
                        .map_err(wio)?;
                    done += chunk;
                }
            } else {
                // Read the span the view touches, then gather in row-major order.
                let last: u64 = t
                    .shape
                    .iter()
                    .zip(&t.stride)
                    .map(|(d, s)| (d - 1) * s)
                    .sum();
                let span = (last + 1) * es;
                if span > MAX_VIEW_SPAN_BYTES {
                    return Err(ConvertError::Unsupported(format!(
                        "{name}: a non-contiguous view spanning {span} bytes is over the limit"
                    )));
                }
                let data = src.read(&t.storage.key, base, span)?;
                let mut index = vec![0u64; t.shape.len()];
                for _ in 0..numel {
                    let at: u64 = index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<u64>() * es;
                    let bytes = data
                        .get(
                            usize::try_from(at).unwrap_or(usize::MAX)
                                ..usize::try_from(at + es).unwrap_or(usize::MAX),
                        )
                        .ok_or_else(|| bad(format!("{name}: view out of range")))?;
                    w.write_all(bytes).map_err(wio)?;
                    for d in (0..index.len()).rev() {
                        if let (Some(i), Some(n)) = (index.get_mut(d), t.shape.get(d)) {
                            *i += 1;
                            if *i < *n {
                                break;
                            }
                            *i = 0;
                        }
                    }
                }
            }
        }
        w.flush().map_err(wio)?;
    }
    tmp.as_file().sync_all().map_err(wio)?;
    tmp.persist(output).map_err(|e| wio(e.error))?;
    Ok(())
}
