//! A PostgreSQL server for tests: the one `RAMPART_TEST_POSTGRES` names (a URL whose user
//! may create databases), else a private one this process starts once — `initdb` and
//! `postgres` from `PATH` or Debian's `/usr/lib/postgresql/*/bin`, on a free loopback port,
//! password authentication, as the `postgres` user when run as root — and stops when the
//! process exits. Each caller gets a database of its own.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{Origin, Target};

/// The test server's admin URL, and what keeps the private server alive.
struct Server {
    admin: String,
    ca: Option<PathBuf>,
    _alive: Option<Mutex<std::process::ChildStdin>>,
}

/// No test server could be started or reached, and why (what to install or set).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

static SERVER: std::sync::OnceLock<Result<Server, String>> = std::sync::OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn find(tool: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(tool))
            .find(|c| c.is_file())
    });
    on_path.or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin").join(tool))
            .filter(|c| c.is_file())
            .collect();
        found.sort();
        found.pop()
    })
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("RAMPART_TEST_POSTGRES") {
        return Ok(Server {
            admin: url,
            ca: std::env::var_os("RAMPART_TEST_POSTGRES_CA").map(PathBuf::from),
            _alive: None,
        });
    }
    let missing = "PostgreSQL's initdb and postgres were not found (install Debian's \
                   postgresql package, or set RAMPART_TEST_POSTGRES to a server's URL)";
    let initdb = find("initdb").ok_or(missing)?;
    let postgres = find("postgres").ok_or(missing)?;
    let dir = std::env::temp_dir().join(format!(
        "rampart-pg-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // PostgreSQL will not run as root.
    let owner = if nix::unistd::geteuid().is_root() {
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .ok_or("running as root, and PostgreSQL needs a `postgres` user to run as")?;
        nix::unistd::chown(&dir, Some(user.uid), Some(user.gid))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Some((user.uid.as_raw(), user.gid.as_raw()))
    } else {
        None
    };
    let as_owner = |c: &mut Command| {
        if let Some((uid, gid)) = owner {
            c.uid(uid).gid(gid);
        }
    };
    let password = format!("t{:x}", rand_word());
    let pwfile = dir.join("pw");
    std::fs::write(&pwfile, &password).map_err(|e| e.to_string())?;
    if let Some((uid, gid)) = owner {
        let _ = nix::unistd::chown(
            &pwfile,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        );
    }
    let data = dir.join("data");
    let mut init = Command::new(&initdb);
    init.args([
        "-U",
        "rampart",
        "--auth=scram-sha-256",
        "-E",
        "UTF8",
        "--no-sync",
    ])
    .arg(format!("--pwfile={}", pwfile.display()))
    .arg("-D")
    .arg(&data)
    .current_dir(&dir)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    as_owner(&mut init);
    let out = init
        .output()
        .map_err(|e| format!("{}: {e}", initdb.display()))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let ca = certificates(&dir, owner)?;
    let port = free_port()?;
    // The shell stops the server (and removes its files) when this process's end of the pipe
    // closes, however the process ends.
    let script = format!(
        "{postgres} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off \
         -c max_connections=200 -c ssl=on -c ssl_cert_file={dir}/server.pem \
         -c ssl_key_file={dir}/server.key > {dir}/log 2>&1 & pid=$!; read _ ; kill -INT $pid; wait $pid; \
         rm -rf {dir}",
        postgres = quoted(&postgres),
        data = quoted(&data),
        dir = quoted(&dir),
    );
    let mut sh = Command::new("/bin/sh");
    sh.args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    as_owner(&mut sh);
    let mut child = sh.spawn().map_err(|e| format!("/bin/sh: {e}"))?;
    let stdin = child.stdin.take().ok_or("no pipe to the server's shell")?;
    let admin = format!("postgres://rampart:{password}@127.0.0.1:{port}/postgres");
    let target = Target::parse(&admin, Origin::Environment).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match target.connect() {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
                return Err(format!("the test PostgreSQL did not start: {e}\n{log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    Ok(Server {
        admin,
        ca: Some(ca),
        _alive: Some(Mutex::new(stdin)),
    })
}

/// A CA and a server certificate it signed for 127.0.0.1 and localhost (openssl), in `dir`
/// (`ca.pem`, `server.pem`, `server.key`, 0600); the CA's certificate file. For any test
/// server that speaks TLS.
///
/// # Errors
/// When openssl is missing or fails.
pub fn test_certificates(dir: &Path) -> Result<PathBuf, Unavailable> {
    certificates(dir, None).map_err(Unavailable)
}

/// As [`test_certificates`], the files given to `owner` (uid, gid).
fn certificates(dir: &Path, owner: Option<(u32, u32)>) -> Result<PathBuf, String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rampart test CA",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ])?;
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .map_err(|e| e.to_string())?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ])?;
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    if let Some((uid, gid)) = owner {
        for f in ["server.key", "server.pem", "ca.pem"] {
            nix::unistd::chown(
                &dir.join(f),
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| format!("{f}: {e}"))?;
        }
    }
    Ok(dir.join("ca.pem"))
}

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

fn rand_word() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The CA certificate the test server's TLS certificate chains to (the private server's own;
/// for `RAMPART_TEST_POSTGRES`, the file `RAMPART_TEST_POSTGRES_CA` names).
///
/// # Errors
/// When no server can be started, or the server named has no CA given.
pub fn ca_file() -> Result<PathBuf, Unavailable> {
    ca_file_of().map_err(Unavailable)
}

fn ca_file_of() -> Result<PathBuf, String> {
    let server = SERVER.get_or_init(start).as_ref().map_err(Clone::clone)?;
    server
        .ca
        .clone()
        .ok_or_else(|| "RAMPART_TEST_POSTGRES is set without RAMPART_TEST_POSTGRES_CA".into())
}

/// The URL (password included) of a new, empty database on the test server.
///
/// # Errors
/// When no server can be started or reached, saying what to install or set.
pub fn fresh_database() -> Result<String, Unavailable> {
    new_database().map_err(Unavailable)
}

fn new_database() -> Result<String, String> {
    let server = SERVER.get_or_init(start).as_ref().map_err(Clone::clone)?;
    let admin = Target::parse(&server.admin, Origin::Environment).map_err(|e| e.to_string())?;
    let mut client = admin.connect().map_err(|e| e.to_string())?;
    let name = format!(
        "rampart_test_{}_{}_{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand_word() & 0xffff_ffff
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .map_err(|e| crate::db_reason(&e))?;
    let (base, query) = match server.admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server.admin.as_str(), String::new()),
    };
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    Ok(format!("{root}/{name}{query}"))
}
