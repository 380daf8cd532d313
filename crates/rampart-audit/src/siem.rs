//! Shipping audit records to a SIEM as RFC 5424 syslog messages over TCP (RFC 6587 octet
//! counting) or TLS (RFC 5425): `[storage] siem = "syslog+tcp://HOST:PORT"` or
//! `"syslog+tls://HOST:PORT"` (optionally `?ca=/path/ca.pem`, else the web PKI's roots).
//!
//! The local hash chain stays the record of truth: a record is shipped after it was appended,
//! by a background thread, so a slow or absent collector never holds an action up. Records
//! wait in a bounded queue ([`QUEUE`]) while the collector is unreachable (reconnecting every
//! [`RETRY`]); past the bound they are counted as dropped ([`Syslog::dropped`]), never silently
//! — and the chain still has them for `rampart audit verify` and a later re-send. When the
//! forwarder is dropped (a command ends) it waits up to [`FLUSH`] for the queue to drain.
//!
//! Each message: `<PRI>1 TIME HOST rampart PID ACTION - RECORD`, facility 13 (log audit),
//! severity notice for `ok`, warning for `denied`/`failed`, error for `error`; TIME is the
//! record's own; the message is the record's canonical JSON line (hash and `prev` included,
//! so the collector can check the chain too).

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::{Outcome, Record};

/// Records waiting to be sent, at most.
pub const QUEUE: usize = 10_000;

/// How long to wait before connecting again after a failure.
pub const RETRY: Duration = Duration::from_secs(1);

/// How long a dropped forwarder waits for its queue to drain.
pub const FLUSH: Duration = Duration::from_secs(3);

/// How long connecting and each write may take.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a SIEM URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SiemError(pub String);

/// Where records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`.
    pub addr: String,
    /// The host name (checked against the certificate over TLS).
    pub host: String,
    /// TLS, and the CA file to trust (`None`: the web PKI's roots).
    pub tls: Option<Option<PathBuf>>,
}

impl Target {
    /// Reads `syslog+tcp://HOST:PORT` or `syslog+tls://HOST:PORT[?ca=PATH]`.
    ///
    /// # Errors
    /// [`SiemError`] naming what is wrong and the forms accepted.
    pub fn parse(url: &str) -> Result<Self, SiemError> {
        let bad = |why: &str| {
            SiemError(format!(
                "{url}: {why} (syslog+tcp://HOST:PORT, or syslog+tls://HOST:PORT[?ca=/path/ca.pem])"
            ))
        };
        let (tls, rest) = if let Some(r) = url.strip_prefix("syslog+tcp://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("syslog+tls://") {
            (true, r)
        } else {
            return Err(bad("not a syslog URL"));
        };
        let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
        if addr.contains('@') || addr.contains('/') {
            return Err(bad("no user, password or path belongs here"));
        }
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad("the host or port is not valid"));
        }
        let mut ca = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("ca", path)) if tls && !path.is_empty() => ca = Some(PathBuf::from(path)),
                _ => return Err(bad(&format!("unknown or misplaced parameter `{pair}`"))),
            }
        }
        Ok(Self {
            addr: addr.to_owned(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            tls: tls.then_some(ca),
        })
    }
}

/// One record as an RFC 5424 message (without the octet-count frame).
#[must_use]
pub fn rfc5424(record: &Record, host: &str, pid: u32) -> String {
    let severity = match record.outcome {
        Outcome::Ok => 5,
        Outcome::Denied | Outcome::Failed => 4,
        Outcome::Error => 3,
    };
    let pri = 13 * 8 + severity;
    format!(
        "<{pri}>1 {} {} rampart {pid} {} - {}",
        printable(&record.time, 128),
        printable(host, 255),
        printable(&record.action, 32),
        record.to_line()
    )
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, `-` if empty.
fn printable(text: &str, max: usize) -> String {
    let s: String = text
        .chars()
        .filter(char::is_ascii_graphic)
        .take(max)
        .collect();
    if s.is_empty() { "-".into() } else { s }
}

/// This machine's name, for the messages' HOSTNAME.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "-".into())
}

/// A forwarder: [`Syslog::send`] queues, a thread ships.
pub struct Syslog {
    tx: Option<SyncSender<Vec<u8>>>,
    done: std::sync::Mutex<Receiver<()>>,
    closing: Arc<std::sync::atomic::AtomicBool>,
    dropped: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    shown: String,
    host: String,
}

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Syslog({})", self.shown)
    }
}

trait Conn: Write + Send {}
impl<T: Write + Send> Conn for T {}

fn connect(target: &Target) -> Result<Box<dyn Conn>, String> {
    use std::net::ToSocketAddrs as _;
    let addr = target
        .addr
        .to_socket_addrs()
        .map_err(|e| format!("{}: {e}", target.addr))?
        .next()
        .ok_or_else(|| format!("{}: no address", target.addr))?;
    let tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let Some(ca) = &target.tls else {
        return Ok(Box::new(tcp));
    };
    use rampart_postgres::rustls;
    let config =
        rampart_postgres::client_config(ca.as_deref(), "siem ca").map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from(target.host.clone())
        .map_err(|e| format!("{}: {e}", target.host))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // Complete the handshake now, so a bad certificate is a connection failure.
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| e.to_string())?;
    }
    Ok(Box::new(tls))
}

/// Connects to `target` once (and completes the TLS handshake): whether records could be
/// shipped now.
///
/// # Errors
/// [`SiemError`] with why not.
pub fn probe(target: &Target) -> Result<(), SiemError> {
    connect(target)
        .map(drop)
        .map_err(|e| SiemError(format!("cannot reach the SIEM at {}: {e}", target.addr)))
}

impl Syslog {
    /// Starts a forwarder to `target` (connecting in the background: an unreachable collector
    /// is not an error here, its records wait).
    ///
    /// # Errors
    /// [`SiemError`] when the thread cannot be started.
    pub fn start(target: Target) -> Result<Self, SiemError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUE);
        let (done_tx, done) = std::sync::mpsc::sync_channel::<()>(1);
        let sent = Arc::new(AtomicU64::new(0));
        let shown = format!(
            "syslog+{}://{}",
            if target.tls.is_some() { "tls" } else { "tcp" },
            target.addr
        );
        let counter = Arc::clone(&sent);
        let closing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = Arc::clone(&closing);
        std::thread::Builder::new()
            .name("rampart-siem".into())
            .spawn(move || {
                ship(&target, &rx, &counter, &stop);
                let _ = done_tx.send(());
            })
            .map_err(|e| SiemError(format!("cannot start the SIEM forwarder: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            done: std::sync::Mutex::new(done),
            closing,
            dropped: Arc::new(AtomicU64::new(0)),
            sent,
            shown,
            host: hostname(),
        })
    }

    /// Queues `record` (never blocks: a full queue counts it as dropped).
    pub fn send(&self, record: &Record) {
        let msg = rfc5424(record, &self.host, std::process::id());
        let frame = format!("{} {msg}", msg.len()).into_bytes();
        let Some(tx) = &self.tx else { return };
        match tx.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records not shipped because the queue was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records written to the collector so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Where records go, for people.
    #[must_use]
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish what is queued, then stop.
        self.closing.store(true, Ordering::Relaxed);
        drop(self.tx.take());
        if let Ok(done) = self.done.lock() {
            let _ = done.recv_timeout(FLUSH);
        }
    }
}

/// The thread: sends each frame, reconnecting after a failure (the frame is kept).
fn ship(
    target: &Target,
    rx: &Receiver<Vec<u8>>,
    sent: &AtomicU64,
    closing: &std::sync::atomic::AtomicBool,
) {
    let mut conn: Option<Box<dyn Conn>> = None;
    let mut pending: Option<Vec<u8>> = None;
    let mut down_since: Option<Instant> = None;
    loop {
        let frame = match pending.take() {
            Some(f) => f,
            None => match rx.recv_timeout(RETRY) {
                Ok(f) => f,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        if conn.is_none() {
            match connect(target) {
                Ok(c) => {
                    conn = Some(c);
                    down_since = None;
                }
                Err(e) => {
                    if down_since.is_none() {
                        eprintln!(
                            "rampart: the SIEM at {} cannot be reached ({e}); audit records wait \
                             (at most {QUEUE}) and are retried every {} s",
                            target.addr,
                            RETRY.as_secs()
                        );
                        down_since = Some(Instant::now());
                    }
                    pending = Some(frame);
                    // A closing forwarder gives up once it has tried for its flush time (the
                    // records stay in the local chain).
                    if closing.load(Ordering::Relaxed)
                        && down_since.is_some_and(|d| d.elapsed() >= FLUSH)
                    {
                        return;
                    }
                    std::thread::sleep(RETRY);
                    continue;
                }
            }
        }
        let written = conn
            .as_mut()
            .map(|c| c.write_all(&frame).and_then(|()| c.flush()));
        match written {
            Some(Ok(())) => {
                sent.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                conn = None;
                pending = Some(frame);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_or_refused_by_name() {
        let t = Target::parse("syslog+tcp://siem.example:514").unwrap();
        assert_eq!(t.addr, "siem.example:514");
        assert_eq!(t.tls, None);
        let t = Target::parse("syslog+tls://127.0.0.1:6514?ca=/etc/ca.pem").unwrap();
        assert_eq!(t.tls, Some(Some(PathBuf::from("/etc/ca.pem"))));
        assert_eq!(t.host, "127.0.0.1");
        for bad in [
            "tcp://h:514",
            "syslog+tcp://h",
            "syslog+tcp://user:pw@h:514",
            "syslog+tcp://h:514?ca=/x",
            "syslog+tls://h:99999",
            "syslog+tls://h:6514?cert=/x",
        ] {
            let e = Target::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains(bad) && e.contains("syslog+tcp://HOST:PORT"),
                "{e}"
            );
        }
    }

    #[test]
    fn a_record_becomes_one_rfc5424_message() {
        let event =
            crate::Event::new("root", "serve.auth", Outcome::Denied).detail("why", "bad key");
        let record = Record::seal(7, "2026-12-06T10:00:00Z".into(), event, "0".repeat(64));
        let msg = rfc5424(&record, "gw 1", 42);
        assert!(
            msg.starts_with("<108>1 2026-12-06T10:00:00Z gw1 rampart 42 serve.auth - {"),
            "{msg}"
        );
        assert!(msg.ends_with(&record.to_line()));
        let ok = Record::seal(
            8,
            "t".into(),
            crate::Event::new("root", "x", Outcome::Ok),
            "0".repeat(64),
        );
        assert!(rfc5424(&ok, "h", 1).starts_with("<109>1 "));
    }
}

/// A syslog collector for tests: Debian's `rsyslogd` in the foreground on a free loopback
/// port, plain TCP or TLS (`rsyslog-gnutls`, a test CA from openssl), writing what it parses
/// of each message to a file as `APP-NAME|MSGID|PROCID|HOSTNAME|MSG`; stopped when dropped.
pub mod testing {
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// The collector could not be started, and why.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{0}")]
    pub struct Unavailable(pub String);

    /// A running collector.
    pub struct Rsyslog {
        child: Option<Child>,
        dir: tempfile::TempDir,
        tls: bool,
        /// Its port on 127.0.0.1.
        pub port: u16,
    }

    impl Drop for Rsyslog {
        fn drop(&mut self) {
            self.stop();
        }
    }

    fn free_port() -> Result<u16, Unavailable> {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| Unavailable(format!("no free port: {e}")))
    }

    impl Rsyslog {
        /// One on a free port; with `tls`, over TLS with a new test CA ([`Rsyslog::ca`]).
        ///
        /// # Errors
        /// When rsyslogd (or, for TLS, openssl or rsyslog-gnutls) is missing or does not
        /// listen within 10 s.
        pub fn new(tls: bool) -> Result<Self, Unavailable> {
            Self::on(free_port()?, tls)
        }

        /// One on `port`.
        ///
        /// # Errors
        /// As [`Rsyslog::new`].
        pub fn on(port: u16, tls: bool) -> Result<Self, Unavailable> {
            let dir = tempfile::tempdir().map_err(|e| Unavailable(e.to_string()))?;
            if tls {
                rampart_postgres::testing::test_certificates(dir.path())
                    .map_err(|e| Unavailable(e.0))?;
            }
            let mut r = Self {
                child: None,
                dir,
                tls,
                port,
            };
            r.start()?;
            Ok(r)
        }

        /// The CA file its certificate is signed by (TLS).
        #[must_use]
        pub fn ca(&self) -> PathBuf {
            self.dir.path().join("ca.pem")
        }

        /// The URL to ship to.
        #[must_use]
        pub fn url(&self) -> String {
            if self.tls {
                format!(
                    "syslog+tls://localhost:{}?ca={}",
                    self.port,
                    self.ca().display()
                )
            } else {
                format!("syslog+tcp://127.0.0.1:{}", self.port)
            }
        }

        fn out(&self) -> PathBuf {
            self.dir.path().join("received.log")
        }

        /// The messages from rampart received so far (not rsyslogd's own), each split into
        /// its fields.
        #[must_use]
        pub fn received(&self) -> Vec<Vec<String>> {
            std::fs::read_to_string(self.out())
                .unwrap_or_default()
                .lines()
                .map(|l| l.splitn(5, '|').map(str::to_owned).collect::<Vec<_>>())
                .filter(|f| f.first().is_some_and(|a| a == "rampart"))
                .collect()
        }

        /// Waits up to `limit` for `n` messages.
        #[must_use]
        pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Vec<String>> {
            let deadline = Instant::now() + limit;
            loop {
                let got = self.received();
                if got.len() >= n || Instant::now() > deadline {
                    return got;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }

        fn config(&self, dir: &Path) -> String {
            let tls = if self.tls {
                format!(
                    "global(DefaultNetstreamDriver=\"gtls\" \
                     DefaultNetstreamDriverCAFile=\"{d}/ca.pem\" \
                     DefaultNetstreamDriverCertFile=\"{d}/server.pem\" \
                     DefaultNetstreamDriverKeyFile=\"{d}/server.key\")\n\
                     module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" \
                     StreamDriver.AuthMode=\"anon\")\n",
                    d = dir.display()
                )
            } else {
                "module(load=\"imtcp\")\n".into()
            };
            format!(
                "global(workDirectory=\"{d}\" maxMessageSize=\"128k\")\n{tls}\
                 input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\")\n\
                 template(name=\"fields\" type=\"string\" \
                 string=\"%app-name%|%msgid%|%procid%|%hostname%|%msg%\\n\")\n\
                 *.* action(type=\"omfile\" file=\"{out}\" template=\"fields\")\n",
                d = dir.display(),
                port = self.port,
                out = self.out().display()
            )
        }

        /// Starts it (again) on its port.
        ///
        /// # Errors
        /// As [`Rsyslog::new`].
        pub fn start(&mut self) -> Result<(), Unavailable> {
            let dir = self.dir.path().to_path_buf();
            let conf = dir.join("rsyslog.conf");
            std::fs::write(&conf, self.config(&dir)).map_err(|e| Unavailable(e.to_string()))?;
            // Debian puts it in /usr/sbin, which a user's PATH may not hold.
            let bin = if Path::new("/usr/sbin/rsyslogd").exists() {
                "/usr/sbin/rsyslogd"
            } else {
                "rsyslogd"
            };
            let child = Command::new(bin)
                .arg("-n")
                .arg("-f")
                .arg(&conf)
                .arg("-i")
                .arg(dir.join("rsyslogd.pid"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| {
                    Unavailable(format!(
                        "rsyslogd: {e} (install Debian's rsyslog and rsyslog-gnutls; .ci/run does)"
                    ))
                })?;
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                if let Some(c) = self.child.as_mut()
                    && let Ok(Some(status)) = c.try_wait()
                {
                    return Err(Unavailable(format!("rsyslogd exited: {status}")));
                }
                if Instant::now() > deadline {
                    return Err(Unavailable("rsyslogd did not listen within 10 s".into()));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(())
        }

        /// Stops it.
        pub fn stop(&mut self) {
            if let Some(mut c) = self.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
