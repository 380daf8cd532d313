//! The container walkers: 7z, tar and zip (and the zip-based formats: PyTorch checkpoints,
//! TorchScript, Keras, NumPy `.npz`), each entry extracted within the file's extraction budget
//! behind the compression-ratio guard and scanned as a blob of its own, one level deeper.

use super::*;

impl Engine<'_> {
    pub(super) fn scan_7z(
        &mut self,
        blob: &mut Blob,
        loc: &mut Vec<String>,
        depth: usize,
    ) -> io::Result<()> {
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

    pub(super) fn scan_tar(
        &mut self,
        blob: &mut Blob,
        loc: &mut Vec<String>,
        depth: usize,
    ) -> io::Result<()> {
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

    pub(super) fn scan_zip(
        &mut self,
        blob: &mut Blob,
        loc: &mut Vec<String>,
        depth: usize,
    ) -> io::Result<()> {
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
