//! Where a command's output file goes: a regular file written atomically (never replacing one
//! unless forced), a device or FIFO written directly, or standard output for `-`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use rampart_home::secure_fs::AtomicFile;

use crate::error::CliError;

/// Whether a path names standard input or output (`-`).
pub fn is_stdio(p: &Path) -> bool {
    p.as_os_str() == "-"
}

/// Where an output goes: a regular file written atomically (mode 0600), or, for an existing
/// device or FIFO such as `/dev/null`, straight into it (renaming over a device would replace
/// it).
pub enum Sink {
    Atomic(AtomicFile),
    Direct(File),
}

impl Sink {
    /// Opens OUT, refusing to replace an existing regular file unless `force`.
    pub fn open(out: &Path, force: bool) -> Result<Self, CliError> {
        match std::fs::metadata(out) {
            Ok(m) if !m.is_file() && !m.is_dir() => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(out)
                    .map_err(|e| {
                        CliError::input(
                            anyhow::Error::new(e).context(format!("cannot open {}", out.display())),
                        )
                    })?;
                return Ok(Self::Direct(f));
            }
            Ok(_) if !force => {
                return Err(CliError::input(anyhow::anyhow!(
                    "{} exists; refusing to overwrite it",
                    out.display()
                ))
                .hint("pass --force to replace it, or -o another path"));
            }
            _ => {}
        }
        Ok(Self::Atomic(AtomicFile::create(out, 0o600)?))
    }

    pub fn file(&mut self) -> &mut File {
        match self {
            Self::Atomic(a) => a.file(),
            Self::Direct(f) => f,
        }
    }

    /// Makes the output visible (atomic rename for regular files).
    pub fn commit(self, force: bool) -> Result<(), CliError> {
        match self {
            Self::Atomic(a) => Ok(a.commit(force)?),
            Self::Direct(_) => Ok(()),
        }
    }
}

/// Runs `write` into OUT (see [`Sink`]), or into standard output for `-`.
pub fn write_output<T>(
    out: &Path,
    force: bool,
    write: impl FnOnce(&mut dyn Write) -> Result<T, CliError>,
) -> Result<T, CliError> {
    if is_stdio(out) {
        let mut stdout = BufWriter::new(io::stdout().lock());
        let value = write(&mut stdout)?;
        stdout
            .flush()
            .map_err(|e| CliError::internal(anyhow::Error::new(e)))?;
        return Ok(value);
    }
    let mut sink = Sink::open(out, force)?;
    let value = {
        let mut w = BufWriter::new(sink.file());
        let value = write(&mut w)?;
        w.flush().map_err(|e| {
            CliError::internal(
                anyhow::Error::new(e).context(format!("cannot write {}", out.display())),
            )
        })?;
        value
    };
    sink.commit(force)?;
    Ok(value)
}
