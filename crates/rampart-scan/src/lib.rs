//! Find code-execution risks in model files without running them.
//!
//! Model files are programs: a pickle runs code when it is loaded. This crate finds that risk
//! in every common model format **without executing anything** — no Python, no imports, no
//! unpickling. Formats are recognised by content ([`sniff`]); containers (zip, gzip, bzip2,
//! xz, zstd, zlib) are opened recursively with depth and size limits; every pickle is
//! disassembled and run on a symbolic machine ([`pickle`]) that reports each import with its
//! byte offset and its verdict: dangerous, safe (allowlisted), or unknown (denied by default).
//!
//! ```no_run
//! use rampart_scan::{ScanConfig, scan_file};
//! let report = scan_file("model.pt".as_ref(), &ScanConfig::default());
//! for f in &report.findings {
//!     println!("{} {} {}", f.severity.as_str(), f.rule, f.message);
//! }
//! ```
//!
//! Crate rules: `forbid(unsafe_code)`; parsers read through bounded sources; every limit is a
//! named constant or a [`ScanLimits`] field; nothing here depends on another rampart crate.

pub mod blob;
pub mod convert;
pub mod finding;
pub mod formats;
pub mod pickle;
pub mod report;
mod scan;
pub mod sniff;
pub mod source;
pub mod zip;

pub use finding::{Finding, RULES, Severity};
pub use scan::{
    FileReport, ImportRecord, MODEL_EXTENSIONS, ScanConfig, ScanLimits, kind_of, model_like,
    scan_file, scan_path,
};
