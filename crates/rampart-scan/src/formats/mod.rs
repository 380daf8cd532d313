//! Checks for the non-pickle formats.

pub mod keras;
pub mod numpy;
pub mod safetensors;
