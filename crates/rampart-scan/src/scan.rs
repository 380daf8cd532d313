//! The scan engine: sniff content, recurse into containers with depth and size limits, and
//! turn analyses into findings.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::blob::Blob;
use crate::finding::{Finding, Severity};
use crate::formats::{export, gguf, hf, keras, msgpack, numpy, onnx, safetensors, torchscript};
use crate::pickle::{self, Class, ReadSource};
use crate::sniff::{Kind, sniff};
use crate::zip;

mod containers;

/// Limits on the work one file may cause.
#[derive(Debug, Clone)]
pub struct ScanLimits {
    /// Per-pickle limits.
    pub pickle: pickle::Limits,
    /// Container nesting (zip in gzip in zip …).
    pub max_depth: usize,
    /// Total bytes decompressed or extracted for one file.
    pub max_extracted: u64,
    /// Decompression stops as a bomb once its output passes `ratio_after` bytes at more than
    /// this many output bytes per input byte.
    pub max_ratio: u64,
    /// See `max_ratio`.
    pub ratio_after: u64,
}

impl Default for ScanLimits {
    fn default() -> Self {
        Self {
            pickle: pickle::Limits::default(),
            max_depth: 8,
            max_extracted: 8 << 30,
            max_ratio: 250,
            ratio_after: 1 << 20,
        }
    }
}

/// Counts the compressed bytes a decoder has *consumed* (not merely buffered), so the ratio
/// guard sees the true compression ratio from the first kilobyte on.
struct Counting<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: io::BufRead> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

impl<R: io::BufRead> io::BufRead for Counting<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        self.count.set(self.count.get() + n as u64);
        self.inner.consume(n);
    }
}

/// Ends a decoder's output early (as if at end of stream) when the compression ratio says bomb.
struct RatioGuard<R> {
    inner: R,
    input: std::rc::Rc<std::cell::Cell<u64>>,
    output: u64,
    max_ratio: u64,
    after: u64,
    tripped: bool,
}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.output > self.after && self.output / self.input.get().max(1) > self.max_ratio {
            self.tripped = true;
            return Ok(0);
        }
        // Small reads, so the ratio is checked every 64 KiB of output, not once per huge read.
        let cap = buf.len().min(64 * 1024);
        let n = self.inner.read(buf.get_mut(..cap).unwrap_or_default())?;
        self.output += n as u64;
        Ok(n)
    }
}

/// Input buffer for compressed streams.
const COMPRESSED_BUF: usize = 64 * 1024;

/// What to allow and how hard to work.
#[derive(Debug, Clone, Default)]
pub struct ScanConfig {
    /// Imports allowed in addition to the built-in allowlist (`module.name`, or `module.*`).
    pub allow: Vec<String>,
    /// Extension-registry codes → (module, name), as the loading application registers them.
    pub extensions: HashMap<i64, (String, String)>,
    /// Limits.
    pub limits: ScanLimits,
    /// The severity of an `unanalysable` finding (default medium): a file with a model's
    /// extension whose content is no format the scanner knows.
    pub unanalysable: Option<Severity>,
    /// Severity per rule id, from the policy's `[scan.severity]` (applied to every finding of
    /// that rule, nested ones included).
    pub severity: HashMap<String, Severity>,
}

/// Extensions model files are saved under. A file so named that the scanner cannot parse is
/// `unanalysable`, never clean; other unrecognised files (config, tokenizer, README) are only
/// noted (`format-unrecognised`, info).
pub const MODEL_EXTENSIONS: &[&str] = &[
    "pkl",
    "pickle",
    "dill",
    "pt",
    "pth",
    "pt2",
    "bin",
    "ckpt",
    "joblib",
    "jbl",
    "sav",
    "npy",
    "npz",
    "h5",
    "hdf5",
    "keras",
    "onnx",
    "gguf",
    "ggml",
    "safetensors",
    "pb",
    "tflite",
    "msgpack",
    "mlmodel",
    "mar",
    "model",
];

/// Whether `path` carries a model file's extension.
#[must_use]
pub fn model_like(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MODEL_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// One import seen in a pickle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportRecord {
    /// Container entries from the outside in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub location: Vec<String>,
    /// Byte offset of the importing opcode.
    pub offset: u64,
    /// The opcode.
    pub opcode: &'static str,
    /// `module.name`.
    pub import: String,
    /// The verdict.
    pub class: Class,
}

/// The scan of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The path scanned.
    pub path: PathBuf,
    /// The detected format (`pytorch`, `pickle`, `safetensors`, …).
    pub format: String,
    /// Its size.
    pub size: u64,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Every import of every pickle in it.
    pub imports: Vec<ImportRecord>,
    /// Set when the file could not be scanned (a gate must treat it as not clean).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FileReport {
    /// The most severe finding's severity.
    #[must_use]
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// Opens `path` for reading only if it is a regular file, judged on the opened descriptor, and
/// returns it with its length. Non-blocking: opening a FIFO for reading would otherwise wait for
/// a writer forever. Every file the scanner reads — the one scanned and the ones beside it
/// (shards, graphs, configs) — goes through here.
pub(crate) fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if meta.is_file() {
        Ok((f, meta.len()))
    } else {
        Err(io::Error::other(format!(
            "not a regular file ({})",
            kind_of(&meta.file_type())
        )))
    }
}

/// Scans one file.
#[must_use]
pub fn scan_file(path: &Path, cfg: &ScanConfig) -> FileReport {
    let mut report = FileReport {
        path: path.to_path_buf(),
        format: "unknown".into(),
        size: 0,
        findings: Vec::new(),
        imports: Vec::new(),
        error: None,
    };
    let (file, len) = match open_regular(path) {
        Ok(x) => x,
        Err(e) => {
            report.error = Some(format!("cannot read {}: {e}", path.display()));
            report.findings.push(Finding::new(
                "file-unreadable",
                format!("cannot read the file: {e}"),
                &[],
            ));
            return report;
        }
    };
    report.size = len;
    let mut engine = Engine {
        cfg,
        findings: Vec::new(),
        imports: Vec::new(),
        extracted: 0,
        format: None,
        archive_classes: Vec::new(),
    };
    let mut blob = Blob::File(file, len);
    if let Err(e) = engine.scan_blob(&mut blob, &mut Vec::new(), 0) {
        report.error = Some(format!("error while scanning {}: {e}", path.display()));
        engine.findings.push(Finding::new(
            "file-unreadable",
            format!("scanning stopped: {e}"),
            &[],
        ));
    }
    report.format = engine.format.unwrap_or_else(|| "unknown".into());
    let mut findings = engine.findings;
    if report.format == "unknown"
        && let Some(format) = recognise_beside_weights(path, &mut findings)
    {
        report.format = format.into();
        findings.retain(|f| !(f.rule == "format-unrecognised" && f.location.is_empty()));
    }
    if report.format == "unknown" && model_like(path) {
        // What cannot be analysed is never reported clean.
        for f in findings
            .iter_mut()
            .filter(|f| f.rule == "format-unrecognised" && f.location.is_empty())
        {
            let mut u = Finding::new(
                "unanalysable",
                format!(
                    "named like a model file (.{}) but no format the scanner knows: it cannot be analysed, so it is not known to be clean",
                    path.extension()
                        .and_then(|e| e.to_str())
                        .unwrap_or_default()
                ),
                &[],
            );
            u.severity = cfg.unanalysable.unwrap_or(Severity::Medium);
            *f = u;
        }
    }
    for f in &mut findings {
        if let Some(s) = cfg.severity.get(f.rule) {
            f.severity = *s;
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.location.cmp(&b.location))
            .then(a.offset.cmp(&b.offset))
    });
    report.findings = findings;
    report.imports = engine.imports;
    report
}

/// The files of a model directory that are not weights (`formats::hf`): a side file, a
/// SentencePiece model, a sharded checkpoint's index, model code. Pushes what they carry and
/// returns the format, or `None` when the file is none of them.
fn recognise_beside_weights(path: &Path, findings: &mut Vec<Finding>) -> Option<&'static str> {
    let mut push = |problems: Vec<hf::Problem>| {
        for (rule, message) in problems {
            findings.push(Finding::new(rule, message, &[]));
        }
    };
    if let Some(problems) = hf::check_index(path) {
        push(problems);
        let pytorch = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(".bin."));
        return Some(if pytorch {
            "pytorch-index"
        } else {
            "safetensors-index"
        });
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if ext == "msgpack"
        && let Ok((f, len)) = open_regular(path)
        && msgpack::is_msgpack(&mut BufReader::new(f), len).unwrap_or(false)
    {
        return Some("msgpack");
    }
    // OpenVINO IR: `model.bin` holds the raw weights that `model.xml` (the graph) describes.
    if ext == "bin"
        && let Ok((f, _)) = open_regular(&path.with_extension("xml"))
    {
        let mut xml = Vec::new();
        let _ = f.take(4096).read_to_end(&mut xml);
        if xml.windows(5).any(|w| w == b"<net ") {
            return Some("openvino-weights");
        }
    }
    let mut head = [0u8; 1];
    let read = open_regular(path)
        .and_then(|(mut f, _)| f.read(&mut head))
        .unwrap_or(0);
    if hf::is_sentencepiece(path, head.get(..read).unwrap_or_default()) {
        return Some("sentencepiece");
    }
    let python = hf::check_python(path);
    if !python.is_empty() {
        push(python);
        return Some("python-source");
    }
    let kind = hf::side_kind(path)?;
    if !hf::side_file_ok(path) {
        return None;
    }
    if path.file_name().is_some_and(|n| n == "config.json") {
        push(hf::check_config(path));
    }
    Some(kind)
}

/// What a non-regular file is, for messages ("a FIFO", "a socket", …).
#[must_use]
pub fn kind_of(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Scans a file, or every file under a directory (in parallel), sorted by path. Inside a
/// directory, links to regular files are scanned as those files, and anything else that is
/// not a directory (a FIFO, a socket, a device, a link to one of those or to a directory) is
/// reported as a file that could not be read: never skipped, so it cannot pass as clean.
///
/// # Errors
/// When the path cannot be listed, or is neither a regular file nor a directory (a FIFO given
/// as an argument is refused at once, not read).
pub fn scan_path(
    path: &Path,
    cfg: &ScanConfig,
    on_file: &(dyn Fn(&FileReport) + Sync),
) -> io::Result<Vec<FileReport>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        if !meta.is_file() {
            return Err(io::Error::other(format!(
                "{} is {}: only regular files and directories are scanned",
                path.display(),
                kind_of(&meta.file_type())
            )));
        }
        let r = scan_file(path, cfg);
        on_file(&r);
        return Ok(vec![r]);
    }
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else {
                // Regular files, links (followed by the scan, never recursed into) and special
                // files alike: the scan reports what it cannot read.
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files
        .par_iter()
        .map(|p| {
            let r = scan_file(p, cfg);
            on_file(&r);
            r
        })
        .collect())
}

struct Engine<'a> {
    cfg: &'a ScanConfig,
    findings: Vec<Finding>,
    imports: Vec<ImportRecord>,
    extracted: u64,
    format: Option<String>,
    /// `__torch__.…` classes the TorchScript archive under scan defines in its `code/`.
    archive_classes: Vec<String>,
}

const HEAD: usize = 64 * 1024;

impl Engine<'_> {
    fn set_format(&mut self, depth: usize, name: &str) {
        if depth == 0 || self.format.is_none() {
            self.format = Some(name.to_owned());
        }
    }

    fn scan_blob(
        &mut self,
        blob: &mut Blob,
        loc: &mut Vec<String>,
        depth: usize,
    ) -> io::Result<()> {
        if depth > self.cfg.limits.max_depth {
            self.findings.push(Finding::new(
                "archive-bomb",
                format!(
                    "nesting deeper than {} containers; the rest was not scanned",
                    self.cfg.limits.max_depth
                ),
                loc,
            ));
            return Ok(());
        }
        let head = blob.read_range(0, HEAD)?;
        let kind = sniff(&head, blob.len());
        if depth == 0 || kind != Kind::Unknown {
            self.set_format(depth, kind.name());
        }
        match kind {
            Kind::Zip => self.scan_zip(blob, loc, depth),
            Kind::Gzip
            | Kind::Bzip2
            | Kind::Xz
            | Kind::Lzma
            | Kind::Lz4
            | Kind::Zstd
            | Kind::Zlib => self.scan_compressed(kind, blob, loc, depth),
            Kind::Pickle => self.scan_pickles(blob, 0, loc),
            Kind::Numpy => self.scan_numpy(blob, &head, loc),
            Kind::Safetensors => {
                let n = u64::from_le_bytes(
                    head.get(..8)
                        .and_then(|b| b.try_into().ok())
                        .unwrap_or([0; 8]),
                );
                let header = if n <= safetensors::MAX_HEADER {
                    blob.read_range(8, usize::try_from(n).unwrap_or(0))?
                } else {
                    Vec::new()
                };
                for (rule, message) in safetensors::check(n, &header, blob.len()) {
                    self.findings.push(Finding::new(rule, message, loc));
                }
                Ok(())
            }
            Kind::Hdf5 => {
                // Stream the file in windows that overlap by the needle length.
                let mut at = 0;
                let mut lambdas = 0;
                while at < blob.len() {
                    let window = blob.read_range(at, 1 << 20)?;
                    lambdas += keras::h5_lambda_count(&window);
                    at += (1 << 20) - 64;
                }
                if lambdas > 0 {
                    self.set_format(depth, "keras-h5");
                    self.findings.push(Finding::new("keras-lambda-layer", format!("{lambdas} Lambda layer(s) in the model config: marshalled Python bytecode runs when the model is loaded"), loc));
                }
                Ok(())
            }
            Kind::Gguf => {
                let len = blob.len();
                let mut reader = blob.reader_from(0)?;
                for (rule, message) in gguf::check(&mut reader, len) {
                    self.findings.push(Finding::new(rule, message, loc));
                }
                Ok(())
            }
            Kind::Onnx => {
                let len = blob.len();
                blob.seek(SeekFrom::Start(0))?;
                for (rule, message) in onnx::check(blob, len) {
                    self.findings.push(Finding::new(rule, message, loc));
                }
                Ok(())
            }
            Kind::Tar => self.scan_tar(blob, loc, depth),
            Kind::SevenZ => self.scan_7z(blob, loc, depth),
            Kind::Unknown => {
                if depth == 0 {
                    self.findings.push(Finding::new("format-unrecognised", "not a model format the scanner knows; no pickle, archive or tensor container was found", loc));
                }
                Ok(())
            }
        }
    }

    fn budget(&self) -> u64 {
        self.cfg.limits.max_extracted.saturating_sub(self.extracted)
    }

    /// Captures a decoded stream into a blob within the extraction budget.
    fn capture(&mut self, r: &mut dyn Read, loc: &[String]) -> io::Result<Blob> {
        let (blob, more) = Blob::capture(r, self.budget())?;
        self.account(&blob, more, loc);
        Ok(blob)
    }

    /// Charges extracted content to the budget; `more` means the budget cut it short.
    fn account(&mut self, blob: &Blob, more: bool, loc: &[String]) {
        self.extracted += blob.len();
        if more {
            self.findings.push(Finding::new(
                "archive-bomb",
                format!(
                    "more than {} bytes extracted from this file; the rest was not scanned",
                    self.cfg.limits.max_extracted
                ),
                loc,
            ));
        }
    }

    fn guarded<'r>(
        &self,
        decoder: Box<dyn Read + 'r>,
        input: std::rc::Rc<std::cell::Cell<u64>>,
    ) -> RatioGuard<Box<dyn Read + 'r>> {
        RatioGuard {
            inner: decoder,
            input,
            output: 0,
            max_ratio: self.cfg.limits.max_ratio,
            after: self.cfg.limits.ratio_after,
            tripped: false,
        }
    }

    fn ratio_finding(&mut self, what: &str, loc: &[String]) {
        self.findings.push(Finding::new("archive-bomb", format!("{what} decompresses at more than {}:1; decompression stopped after {} MiB and the rest was not scanned", self.cfg.limits.max_ratio, self.cfg.limits.ratio_after >> 20), loc));
    }

    /// A declared uncompressed size (gzip's trailer, a zip entry's header) that already says
    /// bomb. A stream that under-declares is still caught by the runtime ratio guard.
    fn declared_bomb(&self, declared: u64, compressed: u64) -> bool {
        declared > self.cfg.limits.ratio_after
            && declared / compressed.max(1) > self.cfg.limits.max_ratio
    }

    fn scan_compressed(
        &mut self,
        kind: Kind,
        blob: &mut Blob,
        loc: &mut Vec<String>,
        depth: usize,
    ) -> io::Result<()> {
        let label = format!("({})", kind.name());
        if kind == Kind::Gzip && blob.len() >= 18 {
            let tail = blob.read_range(blob.len() - 4, 4)?;
            let declared = u64::from(u32::from_le_bytes(
                tail.as_slice().try_into().unwrap_or([0; 4]),
            ));
            if self.declared_bomb(declared, blob.len()) {
                self.findings.push(Finding::new("archive-bomb", format!("the gzip stream declares {declared} bytes from {} compressed (more than {}:1); it was not decompressed", blob.len(), self.cfg.limits.max_ratio), loc));
                return Ok(());
            }
        }
        let inner = if matches!(kind, Kind::Xz | Kind::Lzma) {
            let mut reader = blob.reader_from(0)?;
            let budget = self.budget();
            let mut sink = BoundedSpill::new(budget)?;
            let result = if kind == Kind::Xz {
                lzma_rs::xz_decompress(&mut reader, &mut sink)
            } else {
                lzma_rs::lzma_decompress(&mut reader, &mut sink)
            };
            let (blob, more) = sink.finish()?;
            self.extracted += blob.len();
            if more {
                self.findings.push(Finding::new(
                    "archive-bomb",
                    format!(
                        "{} stream larger than the extraction limit; the rest was not scanned",
                        kind.name()
                    ),
                    loc,
                ));
                Ok(blob)
            } else {
                result
                    .map(|()| blob)
                    .map_err(|e| io::Error::other(format!("{}: {e}", kind.name())))
            }
        } else {
            let count = std::rc::Rc::new(std::cell::Cell::new(0u64));
            blob.seek(SeekFrom::Start(0))?;
            let reader = Counting {
                inner: BufReader::with_capacity(COMPRESSED_BUF, &mut *blob),
                count: count.clone(),
            };
            let decoder: io::Result<Box<dyn Read + '_>> = match kind {
                Kind::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader))),
                Kind::Zlib => Ok(Box::new(flate2::bufread::ZlibDecoder::new(reader))),
                Kind::Bzip2 => Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(reader))),
                Kind::Lz4 => Ok(Box::new(lz4_flex::frame::FrameDecoder::new(reader))),
                _ => ruzstd::decoding::StreamingDecoder::new(reader)
                    .map(|d| Box::new(d) as Box<dyn Read + '_>)
                    .map_err(|e| io::Error::other(e.to_string())),
            };
            match decoder {
                Ok(d) => {
                    let mut guard = self.guarded(d, count);
                    let captured = self.capture(&mut guard, loc);
                    if guard.tripped {
                        self.ratio_finding(&format!("the {} stream", kind.name()), loc);
                    }
                    captured
                }
                Err(e) => Err(e),
            }
        };
        let mut inner = match inner {
            Ok(b) => b,
            Err(e) => {
                self.findings.push(Finding::new(
                    "file-unreadable",
                    format!("cannot decompress the {} stream: {e}", kind.name()),
                    loc,
                ));
                return Ok(());
            }
        };
        loc.push(label);
        let r = self.scan_blob(&mut inner, loc, depth + 1);
        loc.pop();
        r
    }

    fn scan_numpy(&mut self, blob: &mut Blob, head: &[u8], loc: &[String]) -> io::Result<()> {
        match numpy::parse(head) {
            Ok(h) if h.object => {
                self.findings.push(Finding::new("numpy-object-array", format!("dtype {} holds Python objects: loading it (allow_pickle=True) unpickles the data", h.descr), loc));
                self.scan_pickles(blob, h.data_offset, loc)
            }
            Ok(_) => Ok(()),
            Err(e) => {
                self.findings.push(Finding::new(
                    "numpy-malformed",
                    format!("invalid .npy header: {e}"),
                    loc,
                ));
                Ok(())
            }
        }
    }

    /// The allowlist: the policy's, plus the classes the TorchScript archive being scanned
    /// defines in its own code.
    fn allow_here(&self) -> Vec<String> {
        let mut allow = self.cfg.allow.clone();
        allow.extend(self.archive_classes.iter().cloned());
        allow
    }

    fn scan_pickles(&mut self, blob: &mut Blob, start: u64, loc: &[String]) -> io::Result<()> {
        let reader = blob.reader_from(start)?;
        let mut src = ReadSource::new(reader);
        let (analyses, trailing) = pickle::analyse_stream(
            &mut src,
            &self.cfg.limits.pickle,
            &self.allow_here(),
            &self.cfg.extensions,
        );
        let mut joblib = false;
        for a in &analyses {
            self.report_analysis(a, start, loc);
            joblib |= a.imports.iter().any(|i| i.module.starts_with("joblib."));
        }
        if joblib && self.format.as_deref() == Some("pickle") {
            self.format = Some("joblib".into());
        }
        if analyses.len() >= 3
            && self.format.as_deref() == Some("pickle")
            && analyses
                .iter()
                .any(|a| a.imports.iter().any(|i| i.module.starts_with("torch")))
        {
            self.format = Some("pytorch-legacy".into());
        }
        if let Some(at) = trailing {
            self.findings.push(
                Finding::new(
                    "pickle-trailing-data",
                    format!(
                        "{} pickle(s), then bytes that are not a pickle from offset {}",
                        analyses.len(),
                        at + start
                    ),
                    loc,
                )
                .at(at + start),
            );
        }
        Ok(())
    }

    fn report_analysis(&mut self, a: &pickle::Analysis, base: u64, loc: &[String]) {
        let mut grouped: HashMap<(Class, String), (u64, usize)> = HashMap::new();
        for i in &a.imports {
            self.imports.push(ImportRecord {
                location: loc.to_vec(),
                offset: i.offset + base,
                opcode: i.opcode,
                import: i.full_name(),
                class: i.class,
            });
            if i.class != Class::Safe {
                let e = grouped
                    .entry((i.class, i.full_name()))
                    .or_insert((i.offset + base, 0));
                e.1 += 1;
            }
        }
        let mut grouped: Vec<_> = grouped.into_iter().collect();
        grouped.sort_by_key(|(_, (offset, _))| *offset);
        for ((class, name), (offset, count)) in grouped {
            let (rule, verdict) = if class == Class::Dangerous {
                ("pickle-dangerous-import", "a dangerous callable")
            } else {
                (
                    "pickle-unknown-import",
                    "something not on the allowlist (allow it with --allow if you trust it)",
                )
            };
            let times = if count > 1 {
                format!(" ({count} times)")
            } else {
                String::new()
            };
            self.findings.push(
                Finding::new(rule, format!("imports {name}: {verdict}{times}"), loc)
                    .at(offset)
                    .import(name),
            );
        }
        for c in a
            .calls
            .iter()
            .filter(|c| c.class == Class::Dangerous)
            .take(50)
        {
            self.findings.push(
                Finding::new(
                    "pickle-dangerous-call",
                    format!(
                        "calls {}{} when loaded ({})",
                        c.callee,
                        if c.args.starts_with('(') {
                            c.args.clone()
                        } else {
                            format!("({})", c.args)
                        },
                        c.opcode
                    ),
                    loc,
                )
                .at(c.offset + base)
                .import(c.callee.clone()),
            );
        }
        for an in &a.anomalies {
            let rule = match an.kind {
                "unresolved-import" => "pickle-unresolved-import",
                "unknown-extension" => "pickle-unknown-extension",
                "persistent-id" => "pickle-persistent-id",
                "limit" => "pickle-limit",
                _ => "pickle-malformed",
            };
            self.findings
                .push(Finding::new(rule, an.message.clone(), loc).at(an.offset + base));
        }
    }
}

/// A `Write` that keeps at most `limit` bytes (memory, then a temporary file) and remembers
/// whether more was offered — for decoders that only write (xz).
struct BoundedSpill {
    mem: Vec<u8>,
    file: Option<File>,
    written: u64,
    limit: u64,
    overflow: bool,
}

impl BoundedSpill {
    fn new(limit: u64) -> io::Result<Self> {
        Ok(Self {
            mem: Vec::new(),
            file: None,
            written: 0,
            limit,
            overflow: false,
        })
    }

    fn finish(self) -> io::Result<(Blob, bool)> {
        Ok(match self.file {
            Some(mut f) => {
                f.seek(SeekFrom::Start(0))?;
                (Blob::Temp(f, self.written), self.overflow)
            }
            None => (Blob::Mem(io::Cursor::new(self.mem)), self.overflow),
        })
    }
}

impl io::Write for BoundedSpill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = usize::try_from(self.limit - self.written).unwrap_or(usize::MAX);
        if buf.len() > room {
            self.overflow = true;
            return Err(io::Error::other("extraction limit reached"));
        }
        if self.file.is_none() && self.mem.len() + buf.len() > crate::blob::SPILL_BYTES {
            let mut f = tempfile::tempfile()?;
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(buf)?,
            None => self.mem.extend_from_slice(buf),
        }
        self.written += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
