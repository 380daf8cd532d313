//! Which files a model consists of: the enumeration rules of model_signing 1.1.1.
//!
//! * A file model is one resource named `"."`; a directory is walked recursively, regular
//!   files only (empty directories contribute nothing), hidden files included.
//! * Ignored: the top-level `.git`, `.github`, `.gitignore`, `.gitattributes` (unless turned
//!   off), and every ignore path — an exact model-relative path or anything under it,
//!   component-wise, never a basename elsewhere.
//! * Symlinks are an error unless allowed; allowed ones are followed and hashed under the
//!   link's name (a link to a directory is still refused).
//! * FIFOs, sockets and devices are errors; so are names that are not UTF-8 (JSON cannot
//!   carry them losslessly).

use std::fs;
use std::path::{Path, PathBuf};

use super::OmsError;

/// Paths ignored at the top level of every model, as model_signing does.
pub const GIT_IGNORES: [&str; 4] = [".git", ".github", ".gitignore", ".gitattributes"];
/// The most files a model may have.
pub const MAX_FILES: usize = 1_000_000;
/// The deepest directory nesting walked.
pub const MAX_DEPTH: usize = 128;

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    /// Model-relative name with `/` separators (`"."` for a single-file model).
    pub name: String,
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its size when enumerated.
    pub size: u64,
}

/// An ignore list of model-relative paths, matched component-wise.
#[derive(Debug, Clone, Default)]
pub struct IgnoreSet {
    entries: Vec<Vec<String>>,
}

impl IgnoreSet {
    /// Adds a model-relative path (`a/b`). Empty or `.` entries are dropped: they would
    /// otherwise ignore everything.
    pub fn add(&mut self, rel: &str) {
        let parts: Vec<String> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_owned)
            .collect();
        if !parts.is_empty() && !self.entries.contains(&parts) {
            self.entries.push(parts);
        }
    }

    /// Whether `components` is an ignored path or lies under one.
    #[must_use]
    pub fn matches(&self, components: &[&str]) -> bool {
        self.entries
            .iter()
            .any(|e| e.len() <= components.len() && e.iter().zip(components).all(|(a, b)| a == b))
    }

    /// The entries as `/`-joined strings, for the manifest.
    #[must_use]
    pub fn to_strings(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.join("/")).collect()
    }
}

/// The model-relative form of `path` if it lies inside `root` (both resolved), else `None`.
/// Paths that do not exist yet are resolved through their parent.
#[must_use]
pub fn relative_to_root(root: &Path, path: &Path) -> Option<String> {
    let root = fs::canonicalize(root).ok()?;
    let resolved = fs::canonicalize(path).ok().or_else(|| {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(fs::canonicalize(parent).ok()?.join(path.file_name()?))
    })?;
    let rel = resolved.strip_prefix(&root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// The subject name: the model path's final component (resolved for `.` and `..`).
#[must_use]
pub fn model_name(path: &Path) -> String {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n != "." && *n != "..");
    match named {
        Some(n) => n.to_owned(),
        None => fs::canonicalize(path)
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .unwrap_or_else(|| "model".into()),
    }
}

/// Lists the model's files, sorted component-wise by name.
///
/// # Errors
/// Symlinks (unless allowed), special files, non-UTF-8 names, limits, I/O.
pub fn enumerate(
    root: &Path,
    ignore: &IgnoreSet,
    allow_symlinks: bool,
) -> Result<Vec<ModelFile>, OmsError> {
    let meta = fs::symlink_metadata(root).map_err(OmsError::io("cannot read", root))?;
    let meta = if meta.file_type().is_symlink() {
        // The model path itself may be a link (as with `pathlib.resolve`), pointing anywhere.
        fs::metadata(root).map_err(OmsError::io("cannot follow", root))?
    } else {
        meta
    };
    if meta.is_file() {
        return Ok(vec![ModelFile {
            name: ".".into(),
            path: root.to_path_buf(),
            size: meta.len(),
        }]);
    }
    if !meta.is_dir() {
        return Err(OmsError::NotAFile { path: root.into() });
    }
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, Vec<String>)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        if prefix.len() > MAX_DEPTH {
            return Err(OmsError::Limit(format!(
                "directory nesting deeper than {MAX_DEPTH} at {}",
                dir.display()
            )));
        }
        for entry in fs::read_dir(&dir).map_err(OmsError::io("cannot list", &dir))? {
            let entry = entry.map_err(OmsError::io("cannot list", &dir))?;
            let path = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| OmsError::NonUtf8Name { path: path.clone() })?;
            let mut components = prefix.clone();
            components.push(name);
            let refs: Vec<&str> = components.iter().map(String::as_str).collect();
            if ignore.matches(&refs) {
                continue;
            }
            let file_type = entry
                .file_type()
                .map_err(OmsError::io("cannot stat", &path))?;
            let meta = if file_type.is_symlink() {
                if !allow_symlinks {
                    return Err(OmsError::Symlink { path });
                }
                let target =
                    fs::metadata(&path).map_err(OmsError::io("cannot follow symlink", &path))?;
                if !target.is_file() {
                    return Err(OmsError::NotAFile { path });
                }
                target
            } else {
                entry
                    .metadata()
                    .map_err(OmsError::io("cannot stat", &path))?
            };
            if meta.is_dir() {
                stack.push((path, components));
            } else if meta.is_file() {
                if out.len() >= MAX_FILES {
                    return Err(OmsError::Limit(format!("more than {MAX_FILES} files")));
                }
                out.push(ModelFile {
                    name: components.join("/"),
                    path,
                    size: meta.len(),
                });
            } else {
                return Err(OmsError::NotAFile { path });
            }
        }
    }
    out.sort_by(|a, b| component_order(&a.name, &b.name));
    Ok(out)
}

/// model_signing's order: by path components, each compared by code point (`a/b` < `a-c`).
#[must_use]
pub fn component_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Rejects names a signer could use to point outside the model: absolute, `..`, `\`, NUL,
/// empty components. `"."` alone is the single-file name.
#[must_use]
pub fn is_safe_name(name: &str) -> bool {
    if name == "." {
        return true;
    }
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_order_matches_model_signing() {
        let mut names = vec![
            "tokenizer-meta.json",
            "tokenizer/vocab.txt",
            "model.safetensors",
            "config.json",
            "a.txt",
            "B.txt",
            ".notes",
            "README.md",
            "a-c",
            "a/b",
        ];
        names.sort_by(|a, b| component_order(a, b));
        assert_eq!(
            names,
            [
                ".notes",
                "B.txt",
                "README.md",
                "a/b",
                "a-c",
                "a.txt",
                "config.json",
                "model.safetensors",
                "tokenizer/vocab.txt",
                "tokenizer-meta.json"
            ]
        );
    }

    #[test]
    fn ignore_set_is_component_wise() {
        let mut set = IgnoreSet::default();
        set.add("sub/dir");
        set.add("");
        set.add(".");
        assert!(set.matches(&["sub", "dir"]));
        assert!(set.matches(&["sub", "dir", "x"]));
        assert!(!set.matches(&["sub", "directory"]));
        assert!(!set.matches(&["other", "sub", "dir"]));
        assert_eq!(set.to_strings(), ["sub/dir"]);
    }

    #[test]
    fn unsafe_names() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a\\b",
            "a/./b",
            "x\0",
        ] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
        for good in [".", "a", "a/b.txt", ".hidden/x"] {
            assert!(is_safe_name(good), "{good:?}");
        }
    }

    #[test]
    fn enumerate_follows_model_signing_rules() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("sub/.git")).unwrap();
        fs::create_dir_all(root.join(".git/objects")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        for f in [
            "a.txt",
            "sub/.git/x",
            ".git/objects/o",
            ".gitignore",
            ".gitmodules",
            "sub/b",
        ] {
            fs::write(root.join(f), f).unwrap();
        }
        let mut ignore = IgnoreSet::default();
        for g in GIT_IGNORES {
            ignore.add(g);
        }
        let files = enumerate(root, &ignore, false).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, [".gitmodules", "a.txt", "sub/.git/x", "sub/b"]);
        std::os::unix::fs::symlink(root.join("a.txt"), root.join("link")).unwrap();
        assert!(matches!(
            enumerate(root, &ignore, false),
            Err(OmsError::Symlink { .. })
        ));
        let files = enumerate(root, &ignore, true).unwrap();
        assert!(files.iter().any(|f| f.name == "link" && f.size == 5));
    }
}
