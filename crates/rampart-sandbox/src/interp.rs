//! The user's interpreter, resolved before the sandbox starts.
//!
//! Inside the sandbox only the planned paths exist, so a program has to be found outside
//! first, with everything its installation needs. [`resolve_program`] follows what people put
//! on `PATH`:
//! - **pyenv shims** (a script that execs `pyenv exec NAME`): the version comes from
//!   `PYENV_VERSION`, a `.python-version` file in the working directory or a parent, or
//!   `PYENV_ROOT/version`, as pyenv picks it; `system` means the next `NAME` on `PATH`;
//! - **asdf shims** (`asdf exec`, `# asdf-plugin: NAME VERSION` lines): the version from
//!   `.tool-versions` (working directory upwards, then `HOME`) or the shim's only plugin line;
//! - **symbolic links**, to the real binary;
//! - **virtual environments** (`pyvenv.cfg`, venv, virtualenv and uv): the environment and
//!   the base interpreter named by its `home` key;
//! - **conda environments** (`conda-meta/`): the environment's prefix;
//! - **scripts**: the interpreter on their first line (`#!/usr/bin/env python3` included).
//!
//! Nothing is executed to find out: only files are read.

use std::ffi::OsStr;
use std::io::Read as _;
use std::path::{Path, PathBuf};

/// What kind of installation the program belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvKind {
    /// A system or plain installation.
    Plain,
    /// A virtual environment (`pyvenv.cfg`).
    Venv,
    /// A uv-managed virtual environment.
    Uv,
    /// A conda environment.
    Conda,
}

/// A program resolved for the sandbox.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// What to execute: the real file behind any shim.
    pub program: PathBuf,
    /// Directories (or files) the installation needs readable.
    pub read: Vec<PathBuf>,
    /// Directories to put first on the sandbox's `PATH`, so `#!/usr/bin/env python3` and
    /// subprocesses find the same interpreter.
    pub path_dirs: Vec<PathBuf>,
    /// The installation's kind.
    pub kind: EnvKind,
    /// How it was found, for the report (`pyenv shim … → …`).
    pub via: Vec<String>,
}

/// The environment variables resolution may consult.
pub trait Env {
    /// One variable.
    fn var(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Most bytes of a file read to recognise a shim or a script.
const HEAD_BYTES: u64 = 8192;

fn head(path: &Path) -> Option<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(HEAD_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    bytes
        .starts_with(b"#!")
        .then(|| String::from_utf8_lossy(&bytes).into_owned())
}

fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn search_path(name: &OsStr, path_var: Option<&str>, skip: Option<&Path>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .filter(|d| skip.is_none_or(|s| d != s))
        .map(|d| d.join(name))
        .find(|p| is_executable_file(p))
}

/// Reads a version file: the first whitespace-separated words, `#` comments skipped.
fn version_words(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let words: Vec<String> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect();
    (!words.is_empty()).then_some(words)
}

fn find_upwards(start: &Path, file: &str) -> Option<PathBuf> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let p = d.join(file);
        if p.is_file() {
            return Some(p);
        }
        dir = d.parent();
    }
    None
}

/// Follows a pyenv shim to the binary pyenv would run.
fn follow_pyenv(
    shim: &Path,
    text: &str,
    cwd: &Path,
    path_var: Option<&str>,
    env: &dyn Env,
) -> Result<(PathBuf, String), String> {
    let name = shim.file_name().ok_or("a shim without a name")?;
    let shim_dir = shim.parent().map(Path::to_path_buf);
    let root = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("export PYENV_ROOT=")
                .map(|v| v.trim_matches(|c| c == '"' || c == '\'').to_owned())
        })
        .or_else(|| env.var("PYENV_ROOT"))
        .map(PathBuf::from)
        .or_else(|| {
            shim_dir
                .as_deref()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
        })
        .ok_or("cannot tell the pyenv root")?;
    let (versions, from) = if let Some(v) = env.var("PYENV_VERSION").filter(|v| !v.is_empty()) {
        (
            v.split(':').map(str::to_owned).collect::<Vec<_>>(),
            "PYENV_VERSION".to_owned(),
        )
    } else if let Some((f, w)) =
        find_upwards(cwd, ".python-version").and_then(|f| Some((f.clone(), version_words(&f)?)))
    {
        (w, f.display().to_string())
    } else if let Some(w) = version_words(&root.join("version")) {
        (w, root.join("version").display().to_string())
    } else {
        (vec!["system".to_owned()], "the default".to_owned())
    };
    for v in &versions {
        if v == "system" {
            if let Some(p) = search_path(name, path_var, shim_dir.as_deref()) {
                return Ok((
                    p,
                    format!("pyenv shim {} → system ({from})", shim.display()),
                ));
            }
            continue;
        }
        let candidate = root.join("versions").join(v).join("bin").join(name);
        if is_executable_file(&candidate) {
            return Ok((
                candidate,
                format!("pyenv shim {} → {v} ({from})", shim.display()),
            ));
        }
    }
    Err(format!(
        "{} is a pyenv shim, and none of the versions {} (from {from}) has {}; install it with pyenv, or name the interpreter with --python PATH",
        shim.display(),
        versions.join(", "),
        name.to_string_lossy()
    ))
}

/// Follows an asdf shim to the binary asdf would run.
fn follow_asdf(
    shim: &Path,
    text: &str,
    cwd: &Path,
    env: &dyn Env,
) -> Result<(PathBuf, String), String> {
    let name = shim.file_name().ok_or("a shim without a name")?;
    let plugins: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# asdf-plugin:"))
        .filter_map(|rest| {
            let mut w = rest.split_whitespace();
            Some((w.next()?.to_owned(), w.next()?.to_owned()))
        })
        .collect();
    let data = env
        .var("ASDF_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| shim.parent().and_then(Path::parent).map(Path::to_path_buf))
        .ok_or("cannot tell the asdf data directory")?;
    let mut files: Vec<PathBuf> = find_upwards(cwd, ".tool-versions").into_iter().collect();
    if let Some(home) = env.var("HOME") {
        files.push(Path::new(&home).join(".tool-versions"));
    }
    // Where asdf installs `tool` at `version`, if that version has the program.
    let installed = |tool: &str, version: &str| {
        let c = data
            .join("installs")
            .join(tool)
            .join(version)
            .join("bin")
            .join(name);
        is_executable_file(&c).then_some(c)
    };
    for f in &files {
        let Ok(t) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in t.lines() {
            let mut w = line.split_whitespace();
            let (Some(tool), Some(version)) = (w.next(), w.next()) else {
                continue;
            };
            if plugins.iter().any(|(p, _)| p == tool)
                && let Some(c) = installed(tool, version)
            {
                let via = format!(
                    "asdf shim {} → {tool} {version} ({})",
                    shim.display(),
                    f.display()
                );
                return Ok((c, via));
            }
        }
    }
    if let [(tool, version)] = plugins.as_slice()
        && let Some(c) = installed(tool, version)
    {
        return Ok((
            c,
            format!("asdf shim {} → {tool} {version}", shim.display()),
        ));
    }
    Err(format!(
        "{} is an asdf shim and no installed version could be chosen; set one in .tool-versions, or name the interpreter with --python PATH",
        shim.display()
    ))
}

fn prefix_of(bin_file: &Path) -> Option<PathBuf> {
    let dir = bin_file.parent()?;
    let prefix = if dir.file_name() == Some(OsStr::new("bin")) {
        dir.parent().unwrap_or(dir)
    } else {
        dir
    };
    (prefix != Path::new("/")).then(|| prefix.to_path_buf())
}

fn push_unique(v: &mut Vec<PathBuf>, p: PathBuf) {
    if !v.contains(&p) {
        v.push(p);
    }
}

/// Finds `program` (a path, or a name looked up in `path_var`), follows shims and links,
/// and returns what the sandbox needs to run it.
///
/// # Errors
/// A [`ResolveError`] when it cannot be found, or a shim names nothing installed; the message
/// says what to do.
pub fn resolve_program(
    program: &Path,
    path_var: Option<&OsStr>,
    cwd: &Path,
    env: &dyn Env,
) -> Result<Resolved, ResolveError> {
    resolve_depth(program, path_var.and_then(OsStr::to_str), cwd, env, 0).map_err(ResolveError)
}

/// A trainer program that cannot be resolved: what was looked for, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

fn resolve_depth(
    program: &Path,
    path_var: Option<&str>,
    cwd: &Path,
    env: &dyn Env,
    depth: u8,
) -> Result<Resolved, String> {
    let mut found = if program.components().count() > 1 || program.is_absolute() {
        std::path::absolute(cwd.join(program)).map_err(|e| e.to_string())?
    } else {
        search_path(program.as_os_str(), path_var, None)
            .ok_or_else(|| format!("{}: no such program (looked in PATH)", program.display()))?
    };
    if !found.is_file() {
        return Err(format!("{}: no such program", found.display()));
    }
    let mut via = Vec::new();
    // A shim (never more than a few in a row).
    for _ in 0..4 {
        let Some(text) = head(&found) else { break };
        let next = if text.contains("libexec/pyenv\" exec") || text.contains("pyenv exec") {
            follow_pyenv(&found, &text, cwd, path_var, env)?
        } else if text.contains("# asdf-plugin:") {
            follow_asdf(&found, &text, cwd, env)?
        } else {
            break;
        };
        via.push(next.1);
        found = next.0;
    }
    let real = found
        .canonicalize()
        .map_err(|e| format!("{}: {e}", found.display()))?;
    if real != found {
        via.push(format!("{} → {}", found.display(), real.display()));
    }
    let mut read = Vec::new();
    let mut path_dirs = Vec::new();
    let mut kind = EnvKind::Plain;
    for p in [&found, &real] {
        if let Some(prefix) = prefix_of(p) {
            let cfg = prefix.join("pyvenv.cfg");
            if cfg.is_file() {
                let text = std::fs::read_to_string(&cfg).unwrap_or_default();
                kind = if text.lines().any(|l| l.trim_start().starts_with("uv")) {
                    EnvKind::Uv
                } else {
                    EnvKind::Venv
                };
                // The base interpreter the environment was made from.
                if let Some(home) = text.lines().find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    (k.trim() == "home").then(|| v.trim().to_owned())
                }) {
                    let home = PathBuf::from(home);
                    for h in [home.clone(), home.canonicalize().unwrap_or(home)] {
                        if let Some(base) = prefix_of(&h.join("python")) {
                            push_unique(&mut read, base);
                        }
                    }
                }
                via.push(format!("virtual environment {}", prefix.display()));
            } else if prefix.join("conda-meta").is_dir() {
                kind = EnvKind::Conda;
                via.push(format!("conda environment {}", prefix.display()));
            }
            push_unique(&mut read, prefix);
        }
        if let Some(dir) = p.parent() {
            push_unique(&mut path_dirs, dir.to_path_buf());
        }
    }
    // A script: its interpreter too.
    if depth == 0
        && let Some(text) = head(&real)
        && let Some(line) = text.lines().next()
    {
        let mut words = line.trim_start_matches("#!").split_whitespace();
        if let Some(first) = words.next() {
            let interp = if Path::new(first).file_name() == Some(OsStr::new("env")) {
                words.find(|w| !w.starts_with('-')).map(PathBuf::from)
            } else {
                Some(PathBuf::from(first))
            };
            if let Some(i) = interp
                && let Ok(r) = resolve_depth(&i, path_var, cwd, env, depth + 1)
            {
                for p in r.read {
                    push_unique(&mut read, p);
                }
                for p in r.path_dirs {
                    push_unique(&mut path_dirs, p);
                }
                via.extend(r.via);
            }
        }
    }
    Ok(Resolved {
        program: found,
        read,
        path_dirs,
        kind,
        via,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn exe(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_pyenv_shim_is_followed_by_version_file() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("pyenv");
        let shim = root.join("shims/python3");
        exe(
            &shim,
            &format!(
                "#!/usr/bin/env bash\nset -e\nprogram=\"${{0##*/}}\"\nexport PYENV_ROOT=\"{}\"\nexec \"{}/libexec/pyenv\" exec \"$program\" \"$@\"\n",
                root.display(),
                root.display()
            ),
        );
        exe(&root.join("versions/3.12.1/bin/python3"), "\x7fELF");
        exe(&root.join("versions/3.11.7/bin/python3"), "\x7fELF");
        std::fs::write(root.join("version"), "3.12.1\n").unwrap();
        let path = format!("{}:/usr/bin", root.join("shims").display());
        let project = t.path().join("project/sub");
        std::fs::create_dir_all(&project).unwrap();
        let resolve = |env: &dyn Env| {
            resolve_program(Path::new("python3"), Some(OsStr::new(&path)), &project, env)
        };
        let r = resolve(&no_env).unwrap();
        assert_eq!(r.program, root.join("versions/3.12.1/bin/python3"));
        assert!(
            r.read.contains(&root.join("versions/3.12.1")),
            "{:?}",
            r.read
        );
        // A .python-version in a parent wins over the global file; PYENV_VERSION over both.
        std::fs::write(t.path().join("project/.python-version"), "3.11.7\n").unwrap();
        let r = resolve(&no_env).unwrap();
        assert_eq!(r.program, root.join("versions/3.11.7/bin/python3"));
        let env = |k: &str| (k == "PYENV_VERSION").then(|| "3.12.1".to_owned());
        let r = resolve(&env).unwrap();
        assert_eq!(r.program, root.join("versions/3.12.1/bin/python3"));
        // A version that is not installed is an error that says what to do.
        let env = |k: &str| (k == "PYENV_VERSION").then(|| "3.99.0".to_owned());
        let e = resolve(&env).unwrap_err().0;
        assert!(e.contains("3.99.0") && e.contains("--python"), "{e}");
    }

    #[test]
    fn a_venv_brings_its_base_interpreter() {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().join("base");
        exe(&base.join("bin/python3.11"), "\x7fELF");
        let venv = t.path().join("venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::os::unix::fs::symlink(base.join("bin/python3.11"), venv.join("bin/python3")).unwrap();
        std::fs::write(
            venv.join("pyvenv.cfg"),
            format!(
                "home = {}\ninclude-system-site-packages = false\n",
                base.join("bin").display()
            ),
        )
        .unwrap();
        let r = resolve_program(&venv.join("bin/python3"), None, t.path(), &no_env).unwrap();
        assert_eq!(r.kind, EnvKind::Venv);
        assert!(
            r.read.contains(&venv) && r.read.contains(&base),
            "{:?}",
            r.read
        );
        assert_eq!(r.path_dirs[0], venv.join("bin"));
    }

    #[test]
    fn an_asdf_shim_is_followed_by_tool_versions() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("asdf");
        let shim = data.join("shims/python3");
        exe(
            &shim,
            "#!/usr/bin/env bash\n# asdf-plugin: python 3.12.1\n# asdf-plugin: python 3.11.7\nexec asdf exec \"python3\" \"$@\"\n",
        );
        exe(&data.join("installs/python/3.12.1/bin/python3"), "\x7fELF");
        exe(&data.join("installs/python/3.11.7/bin/python3"), "\x7fELF");
        let project = t.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(
            project.join(".tool-versions"),
            "nodejs 20.0.0\npython 3.11.7\n",
        )
        .unwrap();
        let path = data.join("shims").display().to_string();
        let r = resolve_program(
            Path::new("python3"),
            Some(OsStr::new(&path)),
            &project,
            &no_env,
        )
        .unwrap();
        assert_eq!(r.program, data.join("installs/python/3.11.7/bin/python3"));
        assert!(r.via[0].contains("asdf shim"), "{:?}", r.via);
        // Two versions installed and none chosen: an error that says what to do.
        let elsewhere = t.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let e = resolve_program(
            Path::new("python3"),
            Some(OsStr::new(&path)),
            &elsewhere,
            &no_env,
        )
        .unwrap_err()
        .0;
        assert!(e.contains(".tool-versions"), "{e}");
    }

    #[test]
    fn a_conda_interpreter_brings_its_environment() {
        let t = tempfile::tempdir().unwrap();
        let env = t.path().join("miniconda3/envs/ml");
        exe(&env.join("bin/python3.12"), "\x7fELF");
        std::os::unix::fs::symlink("python3.12", env.join("bin/python")).unwrap();
        std::fs::create_dir_all(env.join("conda-meta")).unwrap();
        let r = resolve_program(&env.join("bin/python"), None, t.path(), &no_env).unwrap();
        assert_eq!(r.kind, EnvKind::Conda);
        assert_eq!(r.read, vec![env.clone()]);
        assert_eq!(r.program, env.join("bin/python"));
    }

    #[test]
    fn a_script_brings_its_interpreter_from_path() {
        let t = tempfile::tempdir().unwrap();
        let conda = t.path().join("conda/envs/ml");
        exe(&conda.join("bin/python3"), "\x7fELF");
        std::fs::create_dir_all(conda.join("conda-meta")).unwrap();
        let script = t.path().join("train.py");
        exe(&script, "#!/usr/bin/env -S python3 -u\nprint(1)\n");
        let path = conda.join("bin").display().to_string();
        let r = resolve_program(&script, Some(OsStr::new(&path)), t.path(), &no_env).unwrap();
        assert!(r.read.contains(&conda), "{:?}", r.read);
        assert!(
            r.path_dirs.contains(&conda.join("bin")),
            "{:?}",
            r.path_dirs
        );
    }
}
