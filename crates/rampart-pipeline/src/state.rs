//! The step state of one pipeline: what each step last did, from which inputs, producing which
//! files. A re-run skips a step only when its input fingerprint is unchanged *and* every
//! artifact it recorded still has its recorded SHA-256 (the caller then re-verifies the
//! signatures too); an artifact that changed is tampering, reported, never silently rebuilt.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rampart_crypto::Sha256Hasher;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::PipelineError;

/// Largest state file read.
pub const MAX_STATE_BYTES: u64 = 16 << 20;
/// The state format.
pub const STATE_TYPE: &str = "rampart.pipeline.state/v1";

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// It ran (or was reused) and its outputs are recorded.
    Ok,
    /// It failed; `error` says why, and nothing after it ran.
    Failed,
}

/// One file a step produced, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Where it is.
    pub path: PathBuf,
    /// `sha256:HEX` of its bytes.
    pub sha256: String,
    /// Its size.
    pub size: u64,
}

impl Artifact {
    /// Hashes a file (streaming, no size limit: these are our own outputs).
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let (sha256, size) = hash_file(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            sha256,
            size,
        })
    }

    /// Every regular file under `dir`, in path order.
    ///
    /// # Errors
    /// A file cannot be read; a symlink or special file is refused.
    pub fn all_in(dir: &Path) -> std::io::Result<Vec<Self>> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let entry = entry?;
                let t = entry.file_type()?;
                let p = entry.path();
                if t.is_dir() {
                    stack.push(p);
                } else if t.is_file() {
                    out.push(Self::of(&p)?);
                } else {
                    return Err(std::io::Error::other(format!(
                        "{} is not a regular file",
                        p.display()
                    )));
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Whether the file is still what was recorded.
    ///
    /// # Errors
    /// What changed: missing, not a file, unreadable, other bytes.
    pub fn verify(&self) -> Result<(), ArtifactChanged> {
        let path = self.path.clone();
        let meta =
            std::fs::symlink_metadata(&self.path).map_err(|source| ArtifactChanged::Gone {
                path: path.clone(),
                source,
            })?;
        if !meta.is_file() {
            return Err(ArtifactChanged::NotAFile { path });
        }
        let (sha256, size) =
            hash_file(&self.path).map_err(|source| ArtifactChanged::Unreadable {
                path: path.clone(),
                source,
            })?;
        if size != self.size || sha256 != self.sha256 {
            return Err(ArtifactChanged::Content {
                path,
                sha256,
                size,
                recorded_sha256: self.sha256.clone(),
                recorded_size: self.size,
            });
        }
        Ok(())
    }
}

/// How a recorded artifact no longer matches its record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactChanged {
    /// It is gone.
    #[error("{} is gone ({source})", path.display())]
    Gone {
        /// The file.
        path: PathBuf,
        /// Why it cannot be seen.
        source: std::io::Error,
    },
    /// It is no longer a regular file.
    #[error("{} is no longer a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// It cannot be read.
    #[error("{} cannot be read ({source})", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Its bytes changed.
    #[error("{} changed after the step produced it: {sha256} ({size} bytes), recorded {recorded_sha256} ({recorded_size} bytes)", path.display())]
    Content {
        /// The file.
        path: PathBuf,
        /// What it hashes to now.
        sha256: String,
        /// Its size now.
        size: u64,
        /// What was recorded.
        recorded_sha256: String,
        /// The recorded size.
        recorded_size: u64,
    },
}

/// `sha256:HEX` and the size of a file.
///
/// # Errors
/// The file cannot be read.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256Hasher::new();
    let n = std::io::copy(&mut f, &mut h)?;
    Ok((h.finish().reference().to_string(), n))
}

/// What one step last did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    /// Ok or failed.
    pub status: StepStatus,
    /// The digest of everything the step read ([`fingerprint`]).
    pub fingerprint: String,
    /// Its inputs, by name (what the fingerprint covers, for people).
    pub inputs: BTreeMap<String, String>,
    /// When it started and finished (RFC 3339).
    pub started: String,
    /// When it finished.
    pub finished: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// What it produced (digests, versions, summaries).
    #[serde(default)]
    pub outputs: Value,
    /// The files it produced.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The spec file last run.
    pub spec: PathBuf,
    /// How many runs have started.
    pub runs: u64,
    /// The last run's id.
    #[serde(default)]
    pub last_run: Option<String>,
    /// Each step's record, by name.
    pub steps: BTreeMap<String, StepRecord>,
}

impl State {
    /// A state with no steps yet.
    #[must_use]
    pub fn new(pipeline: &str, spec: &Path) -> Self {
        Self {
            kind: STATE_TYPE.to_owned(),
            pipeline: pipeline.to_owned(),
            spec: spec.to_path_buf(),
            runs: 0,
            last_run: None,
            steps: BTreeMap::new(),
        }
    }

    /// Reads the state file, or `None` if there is none.
    ///
    /// # Errors
    /// Unreadable, too large, or not a state file.
    pub fn load(path: &Path) -> Result<Option<Self>, PipelineError> {
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(PipelineError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut bytes = Vec::new();
        f.take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| PipelineError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        let damaged = |reason: String| PipelineError::State {
            path: path.to_path_buf(),
            reason,
        };
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(damaged(format!("larger than {MAX_STATE_BYTES} bytes")));
        }
        let s: Self = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        if s.kind != STATE_TYPE {
            return Err(damaged(format!("type {:?}, expected {STATE_TYPE}", s.kind)));
        }
        Ok(Some(s))
    }

    /// The state as the file holds it.
    ///
    /// # Errors
    /// Only if serialisation fails (it cannot for this type; never written as an empty file).
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut b = serde_json::to_vec_pretty(self)?;
        b.push(b'\n');
        Ok(b)
    }
}

/// A step's input fingerprint: SHA-256 over a domain tag, the step name and each named input
/// (name and value length-prefixed, in name order), so no two input sets collide by
/// concatenation.
#[must_use]
pub fn fingerprint(step: &str, inputs: &BTreeMap<String, String>) -> String {
    let mut h = Sha256Hasher::new();
    let mut put = |s: &str| {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    put("rampart-pipeline-step-v1");
    put(step);
    for (k, v) in inputs {
        put(k);
        put(v);
    }
    h.finish().reference().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::{Artifact, State, StepRecord, StepStatus, fingerprint};

    #[test]
    fn fingerprints_separate_inputs() {
        let a = BTreeMap::from([("x".to_owned(), "ab".to_owned()), ("y".into(), "c".into())]);
        let b = BTreeMap::from([("x".to_owned(), "a".to_owned()), ("y".into(), "bc".into())]);
        assert_ne!(fingerprint("train", &a), fingerprint("train", &b));
        assert_ne!(fingerprint("train", &a), fingerprint("ingest", &a));
        assert_eq!(fingerprint("train", &a), fingerprint("train", &a.clone()));
    }

    #[test]
    fn artifacts_notice_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.bin");
        std::fs::write(&p, b"model bytes").unwrap();
        let a = Artifact::of(&p).unwrap();
        a.verify().unwrap();
        std::fs::write(&p, b"model bytEs").unwrap();
        assert!(
            a.verify()
                .unwrap_err()
                .to_string()
                .contains("changed after the step")
        );
        std::fs::write(&p, b"model bytes!").unwrap();
        assert!(a.verify().unwrap_err().to_string().contains("12 bytes"));
        std::fs::remove_file(&p).unwrap();
        assert!(a.verify().unwrap_err().to_string().contains("is gone"));
    }

    #[test]
    fn state_round_trips_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert!(State::load(&p).unwrap().is_none());
        let mut s = State::new("demo", dir.path());
        s.steps.insert(
            "ingest".into(),
            StepRecord {
                status: StepStatus::Ok,
                fingerprint: "sha256:00".into(),
                inputs: BTreeMap::new(),
                started: "t0".into(),
                finished: "t1".into(),
                seconds: 1.5,
                outputs: serde_json::json!({"dataset": "sha256:ab"}),
                artifacts: Vec::new(),
                error: None,
            },
        );
        std::fs::write(&p, s.to_bytes().unwrap()).unwrap();
        let back = State::load(&p).unwrap().unwrap();
        assert_eq!(back.steps["ingest"].outputs["dataset"], "sha256:ab");
        std::fs::write(&p, b"{\"type\":\"other\"}").unwrap();
        assert!(State::load(&p).unwrap_err().to_string().contains("damaged"));
    }
}
