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

    fn scan_7z(&mut self, blob: &mut Blob, loc: &mut Vec<String>, depth: usize) -> io::Result<()> {
        blob.seek(SeekFrom::Start(0))?;
        let mut budget = self.budget();
        let mut entries: Vec<(String, Blob, bool)> = Vec::new();
        let mut problem: Option<String> = None;
        match sevenz_rust2::ArchiveReader::new(&mut *blob, sevenz_rust2::Password::empty()) {
            Ok(mut archive) => {
                let result = archive.for_each_entries(|entry, reader| {
                    if entry.is_directory() {
                        return Ok(true);
                    }
                    let (inner, more) = Blob::capture(reader, budget)?;
                    budget = budget.saturating_sub(inner.len());
                    entries.push((entry.name().to_owned(), inner, more));
                    Ok(!more)
                });
                if let Err(e) = result {
                    problem = Some(e.to_string());
                }
            }
            Err(e) => problem = Some(e.to_string()),
        }
        self.set_format(depth, "7z");
        if let Some(p) = problem {
            // Encrypted or corrupt: what could not be read is not known to be clean.
            self.findings.push(Finding::new("archive-not-analysed", format!("the 7z archive could not be fully read ({p}); its contents are not known to be clean"), loc));
        }
        for (name, mut inner, more) in entries {
            self.account(&inner, more, loc);
            loc.push(name);
            self.scan_blob(&mut inner, loc, depth + 1)?;
            loc.pop();
        }
        Ok(())
    }

    fn scan_tar(&mut self, blob: &mut Blob, loc: &mut Vec<String>, depth: usize) -> io::Result<()> {
        let names: Vec<String>;
        {
            let reader = blob.reader_from(0)?;
            let mut archive = tar::Archive::new(reader);
            let mut found = Vec::new();
            let mut entries: Vec<(String, Blob)> = Vec::new();
            for entry in archive.entries()? {
                let mut entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        self.findings.push(Finding::new(
                            "file-unreadable",
                            format!("corrupt tar archive: {e}"),
                            loc,
                        ));
                        break;
                    }
                };
                let name = entry
                    .path()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                if name.starts_with('/') || name.split('/').any(|c| c == "..") {
                    self.findings.push(Finding::new(
                        "zip-path-traversal",
                        format!("tar entry name {name:?} escapes the archive"),
                        loc,
                    ));
                }
                let inner = self.capture(&mut entry, loc)?;
                found.push(name.clone());
                entries.push((name, inner));
            }
            names = found;
            let legacy = ["sys_info", "pickle", "storages", "tensors"]
                .iter()
                .all(|n| names.iter().any(|x| x == n));
            self.set_format(depth, if legacy { "pytorch-legacy-tar" } else { "tar" });
            for (name, mut inner) in entries {
                loc.push(name);
                self.scan_blob(&mut inner, loc, depth + 1)?;
                loc.pop();
            }
        }
        Ok(())
    }

    fn scan_zip(&mut self, blob: &mut Blob, loc: &mut Vec<String>, depth: usize) -> io::Result<()> {
        let len = blob.len();
        let listing = zip::list(blob, len)?;
        // A TorchScript archive's own classes are allowed only inside it.
        let outer_classes = self.archive_classes.clone();
        for q in &listing.quirks {
            self.findings
                .push(Finding::new(q.rule, q.message.clone(), loc));
        }
        let names: Vec<&str> = listing.entries.iter().map(|e| e.name.as_str()).collect();
        let is_torch = names
            .iter()
            .any(|n| *n == "data.pkl" || n.ends_with("/data.pkl"));
        let is_keras = names.contains(&"config.json")
            && (names.contains(&"metadata.json")
                || names.iter().any(|n| n.ends_with(".weights.h5")));
        let is_npz = !names.is_empty() && names.iter().all(|n| n.ends_with(".npy"));
        // torch.export (.pt2): `<root>/archive_format` beside `models/` and `data/`.
        let export_roots: Vec<&str> = names
            .iter()
            .filter_map(|n| n.strip_suffix("archive_format"))
            .filter(|p| p.is_empty() || p.ends_with('/'))
            .filter(|p| names.iter().any(|n| n.starts_with(&format!("{p}models/"))))
            .collect();
        let is_export = !export_roots.is_empty();
        self.set_format(
            depth,
            if is_export {
                "pytorch-export"
            } else if is_torch && names.iter().any(|n| n.ends_with("constants.pkl")) {
                "torchscript"
            } else if is_torch {
                "pytorch"
            } else if is_keras {
                "keras"
            } else if is_npz {
                "npz"
            } else {
                "zip"
            },
        );
        // The directories that hold a `data.pkl`: their `data/<N>` (and `constants/<N>`)
        // entries are tensor storages, raw bytes that torch.load maps through the pickle's
        // persistent ids and never parses. Sniffing them as files found "headers" and
        // "pickles" in random weights.
        let torch_roots: Vec<&str> = names
            .iter()
            .filter_map(|n| n.strip_suffix("data.pkl"))
            .filter(|p| p.is_empty() || p.ends_with('/'))
            .collect();
        let is_storage = |name: &str| {
            // torch.export keeps weights and constants as raw bytes (or, flagged in their
            // config, as pickles — which are still looked into below).
            let export_storage = export_roots.iter().any(|root| {
                name.strip_prefix(root)
                    .and_then(|rest| {
                        rest.strip_prefix("data/weights/")
                            .or_else(|| rest.strip_prefix("data/constants/"))
                    })
                    .is_some_and(|n| !n.is_empty() && !n.ends_with(".json"))
            });
            export_storage
                || is_torch
                    && torch_roots.iter().any(|root| {
                        name.strip_prefix(root)
                            .and_then(|rest| {
                                rest.strip_prefix("data/")
                                    .or_else(|| rest.strip_prefix("constants/"))
                            })
                            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    })
        };
        let code: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| (n.contains("/code/") || n.starts_with("code/")) && !n.ends_with('/'))
            .collect();
        if is_torch && !code.is_empty() {
            self.findings.push(Finding::new("torchscript-code", format!("TorchScript archive with {} code file(s) (e.g. {}) that run when torch.jit.load loads it", code.len(), code.first().unwrap_or(&"")), loc));
            // What that code reaches outside torch: operators and classes a library registered.
            let mut natives = std::collections::BTreeSet::new();
            let mut classes = Vec::new();
            for entry in listing
                .entries
                .iter()
                .filter(|e| code.contains(&e.name.as_str()) && e.name.ends_with(".py"))
            {
                let mut text = Vec::new();
                let mut r = entry_reader(blob, entry, &self.cfg.limits)?;
                if r.by_ref().take(16 << 20).read_to_end(&mut text).is_ok() {
                    natives.extend(torchscript::foreign_natives(&text));
                    classes.extend(torchscript::defined_classes(&entry.name, &text));
                }
            }
            // The archive's pickles name these classes (`__torch__.Net`): torch.jit.load
            // builds them from the code above, it never imports a Python module for them.
            self.archive_classes = classes;
            if !natives.is_empty() {
                let list: Vec<String> = natives.into_iter().collect();
                self.findings.push(Finding::new("torchscript-custom-op", format!("the TorchScript code calls {} outside torch's namespaces ({}): native code a library registered, which torch.jit.load needs loaded", list.len(), list.join(", ")), loc));
            }
        }
        for entry in &listing.entries {
            if entry.name.ends_with('/') && entry.compressed == 0 {
                continue;
            }
            if entry.flags & 0x01 != 0 {
                // The flag alone proves nothing: some loaders ignore it, so an attacker can set
                // it to make scanners skip a plain payload. Report it and scan the data anyway.
                self.findings.push(Finding::new(
                    "zip-encrypted-entry",
                    format!("{:?} is marked encrypted; its data was scanned as if it were not, and cannot be vouched for if it really is", entry.name),
                    loc,
                ));
            }
            if !matches!(entry.method, 0 | 8 | 12 | 93) {
                self.findings.push(Finding::new(
                    "zip-unsupported-compression",
                    format!("{:?} uses compression method {}", entry.name, entry.method),
                    loc,
                ));
                continue;
            }
            let storage = is_storage(&entry.name);
            let force_pickle = entry.name.ends_with(".pkl") || entry.name.ends_with(".pickle");
            let keras_config = is_keras && entry.name == "config.json";
            let export_graph = export_roots.iter().any(|root| {
                entry
                    .name
                    .strip_prefix(root)
                    .and_then(|rest| rest.strip_prefix("models/"))
                    .is_some_and(|n| n.ends_with(".json"))
            });
            // Look at the start of every entry; extract only what needs analysis.
            let head = {
                let mut r = entry_reader(blob, entry, &self.cfg.limits)?;
                let mut h = Vec::new();
                if let Err(e) = r.by_ref().take(HEAD as u64).read_to_end(&mut h) {
                    self.findings.push(Finding::new(
                        "file-unreadable",
                        format!("cannot decompress {:?}: {e}", entry.name),
                        loc,
                    ));
                    continue;
                }
                h
            };
            let kind = sniff(&head, entry.uncompressed.max(head.len() as u64));
            if kind == Kind::Unknown && !force_pickle && !keras_config && !export_graph {
                continue;
            }
            // A storage is looked into only when it is a pickle (a payload planted for a loader
            // other than torch's), and only what such a payload would do is reported.
            if storage && kind != Kind::Pickle {
                continue;
            }
            let before = self.findings.len();
            if entry.method != 0 && self.declared_bomb(entry.uncompressed, entry.compressed) {
                let message = format!(
                    "{:?} declares {} bytes from {} compressed (more than {}:1); it was not decompressed",
                    entry.name, entry.uncompressed, entry.compressed, self.cfg.limits.max_ratio
                );
                self.findings
                    .push(Finding::new("archive-bomb", message, loc));
                continue;
            }
            let (mut inner, crc_ok) = {
                let mut r = CrcReader {
                    inner: entry_reader(blob, entry, &self.cfg.limits)?,
                    crc: crc32fast::Hasher::new(),
                };
                let captured = self.capture(&mut r, loc);
                if r.inner.tripped {
                    let what = format!("entry {:?}", entry.name);
                    self.ratio_finding(&what, loc);
                }
                let mut inner = match captured {
                    Ok(b) => b,
                    Err(e) => {
                        self.findings.push(Finding::new(
                            "file-unreadable",
                            format!("cannot decompress {:?}: {e}", entry.name),
                            loc,
                        ));
                        continue;
                    }
                };
                let whole = inner.len() as u64 == entry.uncompressed || entry.flags & 0x08 != 0;
                let ok = !whole || r.crc.clone().finalize() == entry.crc || entry.crc == 0;
                inner.seek(SeekFrom::Start(0))?;
                (inner, ok)
            };
            if !crc_ok {
                self.findings.push(Finding::new(
                    "zip-crc-mismatch",
                    format!("{:?}: data does not match its CRC-32", entry.name),
                    loc,
                ));
            }
            loc.push(entry.name.clone());
            if keras_config {
                let text = inner.read_range(0, 64 << 20)?;
                match serde_json::from_slice::<serde_json::Value>(&text) {
                    Ok(v) => {
                        let f = keras::check_config(&v);
                        for l in &f.lambdas {
                            self.findings.push(Finding::new("keras-lambda-layer", format!("Lambda layer {l:?}: marshalled Python bytecode runs when the model is loaded"), loc));
                        }
                        for m in &f.modules {
                            self.findings.push(Finding::new("keras-custom-object", format!("loads objects from {m}, outside Keras: Keras imports that module when it loads the model"), loc));
                        }
                    }
                    Err(e) => self.findings.push(Finding::new(
                        "keras-invalid-config",
                        format!("config.json is not JSON: {e}"),
                        loc,
                    )),
                }
            } else if export_graph {
                let text = inner.read_range(0, 64 << 20)?;
                match serde_json::from_slice::<serde_json::Value>(&text) {
                    Ok(v) => {
                        for (target, rule) in export::unusual_targets(&v) {
                            let message = if rule == "export-custom-op" {
                                format!(
                                    "the exported graph calls {target}, an operator outside torch's own namespaces: torch.export.load resolves it only if a library the loading program imported registered it"
                                )
                            } else {
                                format!(
                                    "the exported graph names {target} as a call target, which is neither a torch operator nor a vetted builtin"
                                )
                            };
                            self.findings.push(Finding::new(rule, message, loc));
                        }
                    }
                    Err(e) => self.findings.push(Finding::new(
                        "export-invalid-graph",
                        format!("the exported graph is not JSON: {e}"),
                        loc,
                    )),
                }
            } else if force_pickle && kind == Kind::Unknown {
                self.scan_pickles(&mut inner, 0, loc)?;
            } else {
                self.scan_blob(&mut inner, loc, depth + 1)?;
            }
            if storage {
                // Weights that merely look like a pickle are noise; a dangerous import or
                // call is not.
                let mut i = before;
                while i < self.findings.len() {
                    if self
                        .findings
                        .get(i)
                        .is_some_and(|f| f.rule.starts_with("pickle-dangerous"))
                    {
                        i += 1;
                    } else {
                        self.findings.remove(i);
                    }
                }
            }
            loc.pop();
        }
        self.archive_classes = outer_classes;
        Ok(())
    }
}

/// An entry's decoded data, behind the compression-ratio guard.
fn entry_reader<'b>(
    blob: &'b mut Blob,
    e: &zip::Entry,
    limits: &ScanLimits,
) -> io::Result<RatioGuard<Box<dyn Read + 'b>>> {
    blob.seek(SeekFrom::Start(e.data_offset))?;
    let count = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let raw = Counting {
        inner: BufReader::with_capacity(COMPRESSED_BUF, Read::take(blob, e.compressed)),
        count: count.clone(),
    };
    let inner: Box<dyn Read + 'b> = match e.method {
        8 => Box::new(flate2::bufread::DeflateDecoder::new(raw)),
        12 => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
        93 => match ruzstd::decoding::StreamingDecoder::new(raw) {
            Ok(d) => Box::new(d),
            Err(e) => return Err(io::Error::other(e.to_string())),
        },
        _ => Box::new(raw),
    };
    Ok(RatioGuard {
        inner,
        input: count,
        output: 0,
        max_ratio: limits.max_ratio,
        after: limits.ratio_after,
        tripped: false,
    })
}

struct CrcReader<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(buf.get(..n).unwrap_or_default());
        Ok(n)
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
