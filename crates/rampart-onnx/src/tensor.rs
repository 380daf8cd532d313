//! Tensors as the Open Inference Protocol (KServe V2) names them: what goes into and comes out
//! of an [`OnnxModel`](crate::OnnxModel). Parsing a V2 request into them (with its refusals)
//! is the gateway's.

use serde_json::{Value, json};

/// An element type a V2 client can send or receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    /// `BOOL`.
    Bool,
    /// `INT32`.
    Int32,
    /// `INT64`.
    Int64,
    /// `FP32`.
    Fp32,
    /// `FP64`.
    Fp64,
    /// `BYTES` (UTF-8 strings: ONNX `tensor(string)`).
    Bytes,
}

impl Datatype {
    /// The V2 name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bool => "BOOL",
            Self::Int32 => "INT32",
            Self::Int64 => "INT64",
            Self::Fp32 => "FP32",
            Self::Fp64 => "FP64",
            Self::Bytes => "BYTES",
        }
    }

    /// The datatype a V2 name (`FP32`, …) stands for.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Bool,
            Self::Int32,
            Self::Int64,
            Self::Fp32,
            Self::Fp64,
            Self::Bytes,
        ]
        .into_iter()
        .find(|d| d.name() == s)
    }
}

/// A tensor's elements, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// `BOOL`.
    Bool(Vec<bool>),
    /// `INT32`.
    Int32(Vec<i32>),
    /// `INT64`.
    Int64(Vec<i64>),
    /// `FP32`.
    Fp32(Vec<f32>),
    /// `FP64`.
    Fp64(Vec<f64>),
    /// `BYTES`.
    Bytes(Vec<String>),
}

impl Data {
    /// How many elements.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Bool(v) => v.len(),
            Self::Int32(v) => v.len(),
            Self::Int64(v) => v.len(),
            Self::Fp32(v) => v.len(),
            Self::Fp64(v) => v.len(),
            Self::Bytes(v) => v.len(),
        }
    }

    /// Whether it has no elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its element type.
    #[must_use]
    pub const fn datatype(&self) -> Datatype {
        match self {
            Self::Bool(_) => Datatype::Bool,
            Self::Int32(_) => Datatype::Int32,
            Self::Int64(_) => Datatype::Int64,
            Self::Fp32(_) => Datatype::Fp32,
            Self::Fp64(_) => Datatype::Fp64,
            Self::Bytes(_) => Datatype::Bytes,
        }
    }

    fn json(&self) -> Value {
        match self {
            Self::Bool(v) => json!(v),
            Self::Int32(v) => json!(v),
            Self::Int64(v) => json!(v),
            Self::Fp32(v) => json!(v),
            Self::Fp64(v) => json!(v),
            Self::Bytes(v) => json!(v),
        }
    }
}

/// A named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The graph input or output it is.
    pub name: String,
    /// Its dimensions.
    pub shape: Vec<usize>,
    /// Its elements.
    pub data: Data,
    /// Extra facts a client may read (the class of each column of a probability tensor).
    pub parameters: Option<Value>,
}

impl Tensor {
    /// As a V2 output object.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "datatype": self.data.datatype().name(),
            "shape": self.shape,
            "data": self.data.json(),
        });
        if let (Some(p), Value::Object(o)) = (&self.parameters, &mut v) {
            o.insert("parameters".into(), p.clone());
        }
        v
    }
}

/// A declared graph input or output: dimensions are `-1` where the graph leaves them open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Its name in the graph.
    pub name: String,
    /// Its element type.
    pub datatype: Datatype,
    /// Its dimensions, `-1` for a dynamic one; `None` when the graph does not say its rank.
    pub shape: Option<Vec<i64>>,
}

impl Port {
    /// As a V2 metadata object.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "datatype": self.datatype.name(),
            "shape": self.shape.clone().unwrap_or_else(|| vec![-1]),
        })
    }
}

/// A checked inference request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The request's `id`, echoed.
    pub id: Option<String>,
    /// One tensor per graph input, in the graph's order.
    pub inputs: Vec<Tensor>,
    /// Rows in the batch (the first dimension of the first input; 1 for a scalar input).
    pub rows: usize,
}
