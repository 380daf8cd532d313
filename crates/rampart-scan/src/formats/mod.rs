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

/// A file that does not parse as the format it claims: what is wrong, for the finding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

impl From<&str> for FormatError {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for FormatError {
    fn from(s: String) -> Self {
        Self(s)
    }
}
