//! Checks for the non-pickle formats.

pub mod export;
pub mod gguf;
pub mod hf;
pub mod keras;
pub mod msgpack;
pub mod numpy;
pub mod onnx;
pub mod safetensors;
pub mod torchscript;
