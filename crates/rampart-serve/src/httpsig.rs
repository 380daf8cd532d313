//! HTTP Message Signatures (RFC 9421), `hmac-sha256`, with `Content-Digest` (RFC 9530).
//!
//! A signed request carries `Signature-Input: sig=("@method" "@authority" "@path" "@query"
//! "content-digest");created=…;keyid="<api key id>";nonce="…"` and `Signature: sig=:<b64>:`.
//! The server requires at least those five components, recomputes the body's SHA-256 for
//! `content-digest`, accepts `created` within ±[`WINDOW_SECS`], refuses a `(keyid, nonce)`
//! seen in that window, and uses HMAC-SHA256 whatever the request's `alg` says (the algorithm
//! belongs to the key; a different `alg` is refused). The HMAC key of an API key is
//! `SHA-256("rampart-http-signature-v1\0" ‖ token)`: the client derives it from its token,
//! the server keeps it encrypted to the home's age identity.

use std::collections::HashMap;
use std::sync::Mutex;

pub use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rampart_crypto::Sha256Hasher;

/// Seconds a signature's `created` may differ from the server's clock.
pub const WINDOW_SECS: i64 = 300;
/// The components every signature must cover.
pub const REQUIRED: &[&str] = &["@method", "@authority", "@path", "@query", "content-digest"];
/// Most nonces remembered at once (beyond that, signed requests are refused until some age out).
pub const MAX_NONCES: usize = 1_000_000;

/// The HMAC key of an API key token.
#[must_use]
pub fn hmac_key(token: &str) -> [u8; 32] {
    let mut h = Sha256Hasher::new();
    h.update(b"rampart-http-signature-v1\0");
    h.update(token.as_bytes());
    *h.finish().as_bytes()
}

/// `sha-256=:<b64>:` of a body.
#[must_use]
pub fn content_digest(body: &[u8]) -> String {
    let mut h = Sha256Hasher::new();
    h.update(body);
    format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD.encode(h.finish().as_bytes())
    )
}

/// Why a signature does not authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// The fields do not parse.
    Malformed(String),
    /// A required component is not covered.
    Uncovered(String),
    /// `created` outside the window.
    Stale,
    /// The nonce was seen (by this server or another of the home, before or after a restart).
    Replayed,
    /// The nonce could not be recorded where every server sees it: refused, not let through.
    NonceStore(String),
    /// `@authority` is not one of this server's public names.
    Authority(String),
    /// `alg` other than hmac-sha256.
    Algorithm,
    /// No such key (or it has no signing key).
    UnknownKey,
    /// `Content-Digest` missing or not the body's.
    Digest,
    /// The HMAC does not match.
    Bad,
}

impl SigError {
    /// The metric and audit label.
    #[must_use]
    pub fn reason(&self) -> String {
        match self {
            Self::Malformed(m) => format!("signature malformed: {m}"),
            Self::Uncovered(c) => format!("signature does not cover {c}"),
            Self::Stale => format!("signature created more than {WINDOW_SECS} s away"),
            Self::Replayed => "signature nonce replayed".into(),
            Self::NonceStore(e) => format!("signature nonce not recorded ({e}); refused"),
            Self::Authority(a) => {
                format!("signature is for {a:?}, not one of this server's public names")
            }
            Self::Algorithm => "signature algorithm is not hmac-sha256".into(),
            Self::UnknownKey => "signature keyid unknown".into(),
            Self::Digest => "content-digest does not match the body".into(),
            Self::Bad => "signature does not verify".into(),
        }
    }
}

/// What the request looks like, for the signature base.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// `GET`, `POST`.
    pub method: &'a str,
    /// The `Host` (authority) as sent.
    pub authority: &'a str,
    /// The path.
    pub path: &'a str,
    /// The query, without `?`.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

/// A parsed `Signature-Input` member.
#[derive(Debug, Clone)]
struct Input {
    label: String,
    components: Vec<String>,
    /// The member's value after `label=`, exactly as sent: the `@signature-params` line.
    params: String,
    created: Option<i64>,
    keyid: Option<String>,
    nonce: Option<String>,
    alg: Option<String>,
}

fn parse_input(text: &str) -> Result<Input, SigError> {
    let bad = |m: &str| SigError::Malformed(m.to_owned());
    // One signature (the first dictionary member).
    let (label, rest) = text.split_once('=').ok_or_else(|| bad("no label"))?;
    let label = label.trim().to_owned();
    let rest = rest.trim();
    let rest = rest.split(", ").next().unwrap_or(rest);
    let inner = rest
        .strip_prefix('(')
        .ok_or_else(|| bad("no component list"))?;
    let (list, params) = inner
        .split_once(')')
        .ok_or_else(|| bad("unclosed component list"))?;
    let mut components = Vec::new();
    for item in list.split_whitespace() {
        let c = item
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .ok_or_else(|| bad("components are quoted strings"))?;
        components.push(c.to_owned());
    }
    let mut input = Input {
        label,
        components,
        params: rest.to_owned(),
        created: None,
        keyid: None,
        nonce: None,
        alg: None,
    };
    for p in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| bad("parameter without a value"))?;
        let s = || {
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_owned)
        };
        match k {
            "created" => {
                input.created = Some(v.parse().map_err(|_| bad("created is not an integer"))?);
            }
            "keyid" => input.keyid = Some(s().ok_or_else(|| bad("keyid is a string"))?),
            "nonce" => input.nonce = Some(s().ok_or_else(|| bad("nonce is a string"))?),
            "alg" => input.alg = Some(s().ok_or_else(|| bad("alg is a string"))?),
            _ => {}
        }
    }
    Ok(input)
}

fn signature_value(text: &str, label: &str) -> Result<Vec<u8>, SigError> {
    for member in text.split(',') {
        let member = member.trim();
        if let Some((l, v)) = member.split_once('=')
            && l.trim() == label
        {
            let b = v
                .trim()
                .strip_prefix(':')
                .and_then(|v| v.strip_suffix(':'))
                .ok_or_else(|| SigError::Malformed("signature is a byte sequence".into()))?;
            return base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| SigError::Malformed("signature is not base64".into()));
        }
    }
    Err(SigError::Malformed(format!(
        "no signature labelled {label}"
    )))
}

/// The signature base (RFC 9421 §2.5).
fn base(parts: &Parts<'_>, input: &Input) -> Result<String, SigError> {
    let mut out = String::new();
    for c in &input.components {
        let value = match c.as_str() {
            "@method" => parts.method.to_ascii_uppercase(),
            "@authority" => parts.authority.to_ascii_lowercase(),
            "@path" => parts.path.to_owned(),
            "@query" => format!("?{}", parts.query.unwrap_or("")),
            name if name.starts_with('@') => {
                return Err(SigError::Malformed(format!(
                    "component {name} is not supported"
                )));
            }
            name => {
                let vals: Vec<&str> = parts
                    .headers
                    .get_all(name)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .map(str::trim)
                    .collect();
                if vals.is_empty() {
                    return Err(SigError::Malformed(format!(
                        "covered header {name} is absent"
                    )));
                }
                vals.join(", ")
            }
        };
        out.push_str(&format!("\"{c}\": {value}\n"));
    }
    out.push_str(&format!("\"@signature-params\": {}", input.params));
    Ok(out)
}

/// Remembered nonces, each until its window closes. In memory only by default; with
/// [`Nonces::shared`], also in a SQLite database that every server of a home opens, so a
/// request captured on one server is refused by another and after a restart.
#[derive(Debug, Default)]
pub struct Nonces {
    seen: Mutex<HashMap<String, i64>>,
    store: Option<Mutex<rusqlite::Connection>>,
}

impl Nonces {
    /// Nonces kept in `path` (created, mode 0600) as well as in memory.
    ///
    /// # Errors
    /// When the database cannot be opened.
    pub fn shared(path: &std::path::Path) -> Result<Self, crate::ServeError> {
        let state = |at: &std::path::Path, e: &dyn std::fmt::Display| crate::ServeError::State {
            path: at.to_path_buf(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| state(dir, &e))?;
        }
        let db = rusqlite::Connection::open(path).map_err(|e| state(path, &e))?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        db.busy_timeout(std::time::Duration::from_secs(5))
            .and_then(|()| db.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| db.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| {
                db.execute_batch(
                    "CREATE TABLE IF NOT EXISTS nonces (k TEXT PRIMARY KEY, until INTEGER NOT NULL) WITHOUT ROWID;",
                )
            })
            .map_err(|e| state(path, &e))?;
        Ok(Self {
            seen: Mutex::new(HashMap::new()),
            store: Some(Mutex::new(db)),
        })
    }

    /// Records `(keyid, nonce)` until `now` + twice the window.
    ///
    /// # Errors
    /// [`SigError::Replayed`] if it was already there (or the memory cache is full),
    /// [`SigError::NonceStore`] if the shared store cannot record it.
    pub fn fresh(&self, keyid: &str, nonce: &str, now: i64) -> Result<(), SigError> {
        let k = format!("{keyid}\0{nonce}");
        let until = now + 2 * WINDOW_SECS;
        {
            let mut m = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if m.len() >= MAX_NONCES / 2 {
                m.retain(|_, until| *until > now);
            }
            if m.len() >= MAX_NONCES || m.get(&k).is_some_and(|u| *u > now) {
                return Err(SigError::Replayed);
            }
            m.insert(k.clone(), until);
        }
        let Some(store) = &self.store else {
            return Ok(());
        };
        let db = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One statement: inserted, or an expired row taken over; a live row is a replay.
        let n = db
            .prepare_cached(
                "INSERT INTO nonces (k, until) VALUES (?1, ?2)
                 ON CONFLICT (k) DO UPDATE SET until = excluded.until WHERE nonces.until <= ?3",
            )
            .and_then(|mut st| st.execute(rusqlite::params![k, until, now]))
            .map_err(|e| SigError::NonceStore(e.to_string()))?;
        if n == 0 {
            return Err(SigError::Replayed);
        }
        // Expired rows are dropped now and then (about one request in 256).
        if rand_core::RngCore::next_u32(&mut rand_core::OsRng).is_multiple_of(256) {
            let _ = db.execute("DELETE FROM nonces WHERE until <= ?1", [now]);
        }
        Ok(())
    }
}

/// Where seen `(keyid, nonce)` pairs are kept until their window closes. [`Nonces`] is the
/// local one (memory, and optionally a SQLite file every server of a home opens); a store
/// every replica reaches makes a captured request fail on all of them.
/// [`nonce_conformance::run`] is what any implementation must pass.
pub trait NonceStore: Send + Sync + std::fmt::Debug {
    /// Records `(keyid, nonce)` as seen at `now`, until `now + 2 ×` [`WINDOW_SECS`].
    ///
    /// # Errors
    /// [`SigError::Replayed`] if the pair is still remembered (or the store is full),
    /// [`SigError::NonceStore`] if the store cannot record it (the request is refused).
    fn fresh(&self, keyid: &str, nonce: &str, now: i64) -> Result<(), SigError>;
}

impl<T: NonceStore + ?Sized> NonceStore for std::sync::Arc<T> {
    fn fresh(&self, keyid: &str, nonce: &str, now: i64) -> Result<(), SigError> {
        (**self).fresh(keyid, nonce, now)
    }
}

impl NonceStore for Nonces {
    fn fresh(&self, keyid: &str, nonce: &str, now: i64) -> Result<(), SigError> {
        Self::fresh(self, keyid, nonce, now)
    }
}

/// What every [`NonceStore`] must do.
pub mod nonce_conformance {
    use super::{NonceStore, SigError, WINDOW_SECS};

    pub use rampart_audit::conformance::Failure;

    fn expect(case: &'static str, got: Result<(), SigError>, replay: bool) -> Result<(), Failure> {
        match (got, replay) {
            (Ok(()), false) | (Err(SigError::Replayed), true) => Ok(()),
            (other, _) => Err(Failure::new(
                case,
                format!(
                    "{other:?}, expected {}",
                    if replay { "a replay" } else { "fresh" }
                ),
            )),
        }
    }

    /// Runs every case against an empty store. `other` is a second handle on the same
    /// store (another replica's), or `None` for a store that is one process's only.
    ///
    /// # Errors
    /// The first case the store fails.
    pub fn run(store: &dyn NonceStore, other: Option<&dyn NonceStore>) -> Result<(), Failure> {
        let now = 1_000_000;
        expect("fresh", store.fresh("k1", "n1", now), false)?;
        expect("replay", store.fresh("k1", "n1", now + 1), true)?;
        // The pair is the unit: the same nonce under another key is another request.
        expect("per key", store.fresh("k2", "n1", now), false)?;
        expect("per nonce", store.fresh("k1", "n2", now), false)?;
        // Still remembered at the end of its window, forgotten after it (a request that old
        // is refused as stale before its nonce is looked at).
        expect(
            "window",
            store.fresh("k1", "n1", now + 2 * WINDOW_SECS - 1),
            true,
        )?;
        expect(
            "expiry",
            store.fresh("k1", "n1", now + 2 * WINDOW_SECS + 1),
            false,
        )?;
        // Concurrent first uses of one pair: exactly one wins.
        let wins = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| store.fresh("k3", "race", now).is_ok()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(false))
                .filter(|won| *won)
                .count()
        });
        if wins != 1 {
            return Err(Failure::new(
                "race",
                format!("{wins} concurrent uses of one nonce were accepted"),
            ));
        }
        if let Some(other) = other {
            expect("shared", other.fresh("k1", "n2", now + 1), true)?;
            expect("shared fresh", other.fresh("k4", "n1", now), false)?;
            expect("shared back", store.fresh("k4", "n1", now + 1), true)?;
        }
        Ok(())
    }
}

/// Verifies a signed request; returns the key id.
///
/// # Errors
/// [`SigError`].
pub fn verify(
    parts: &Parts<'_>,
    key_for: &dyn Fn(&str) -> Option<zeroize::Zeroizing<Vec<u8>>>,
    nonces: &dyn NonceStore,
    authorities: &[String],
    now: i64,
) -> Result<String, SigError> {
    let h = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let input = parse_input(
        h("signature-input").ok_or_else(|| SigError::Malformed("no Signature-Input".into()))?,
    )?;
    let sig = signature_value(
        h("signature").ok_or_else(|| SigError::Malformed("no Signature".into()))?,
        &input.label,
    )?;
    for r in REQUIRED {
        if !input.components.iter().any(|c| c == r) {
            return Err(SigError::Uncovered((*r).to_owned()));
        }
    }
    if input.alg.as_deref().is_some_and(|a| a != "hmac-sha256") {
        return Err(SigError::Algorithm);
    }
    let created = input
        .created
        .ok_or_else(|| SigError::Malformed("no created parameter".into()))?;
    if (now - created).abs() > WINDOW_SECS {
        return Err(SigError::Stale);
    }
    let keyid = input
        .keyid
        .clone()
        .ok_or_else(|| SigError::Malformed("no keyid parameter".into()))?;
    let nonce = input
        .nonce
        .clone()
        .ok_or_else(|| SigError::Malformed("no nonce parameter".into()))?;
    if nonce.is_empty() || nonce.len() > 128 {
        return Err(SigError::Malformed("nonce is 1-128 characters".into()));
    }
    if h("content-digest") != Some(content_digest(parts.body).as_str()) {
        return Err(SigError::Digest);
    }
    let key = key_for(&keyid).ok_or(SigError::UnknownKey)?;
    let base = base(parts, &input)?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).map_err(|_| SigError::UnknownKey)?;
    mac.update(base.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&sig).map_err(|_| SigError::Bad)?;
    // A request signed for another server (another authority) is not for us, even with a
    // valid signature. An empty list accepts any (library callers that check elsewhere).
    let authority = parts.authority.to_ascii_lowercase();
    if !authorities.is_empty() && !authorities.contains(&authority) {
        return Err(SigError::Authority(authority));
    }
    // Only a valid signature consumes its nonce.
    nonces.fresh(&keyid, &nonce, now)?;
    Ok(keyid)
}

/// Signs a request the way [`verify`] expects (for clients and tests): returns the
/// `Signature-Input`, `Signature` and `Content-Digest` values.
#[must_use]
pub fn sign(
    parts: &Parts<'_>,
    key: &[u8],
    keyid: &str,
    created: i64,
    nonce: &str,
) -> (String, String, String) {
    let digest = content_digest(parts.body);
    let params = format!(
        "(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created={created};keyid=\"{keyid}\";nonce=\"{nonce}\";alg=\"hmac-sha256\""
    );
    let mut headers = parts.headers.clone();
    if let Ok(v) = axum::http::HeaderValue::from_str(&digest) {
        headers.insert("content-digest", v);
    }
    let p = Parts {
        headers: &headers,
        ..*parts
    };
    let input = parse_input(&format!("sig={params}")).unwrap_or_else(|_| Input {
        label: "sig".into(),
        components: Vec::new(),
        params: params.clone(),
        created: None,
        keyid: None,
        nonce: None,
        alg: None,
    });
    let base = base(&p, &input).unwrap_or_default();
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return (String::new(), String::new(), digest);
    };
    mac.update(base.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (format!("sig={params}"), format!("sig=:{sig}:"), digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(h: &'a HeaderMap, body: &'a [u8]) -> Parts<'a> {
        Parts {
            method: "POST",
            authority: "127.0.0.1:8080",
            path: "/v2/models/m/infer",
            query: None,
            headers: h,
            body,
        }
    }

    fn signed(key: &[u8], created: i64, nonce: &str, body: &[u8]) -> HeaderMap {
        let h = HeaderMap::new();
        let (input, sig, digest) = sign(&parts(&h, body), key, "abcd", created, nonce);
        let mut h = HeaderMap::new();
        h.insert("signature-input", input.parse().unwrap());
        h.insert("signature", sig.parse().unwrap());
        h.insert("content-digest", digest.parse().unwrap());
        h
    }

    /// A nonce kept in the shared store is refused by a second server of the home and by the
    /// first after a restart; a request signed for another authority is refused.
    #[test]
    fn replays_across_servers_and_restarts_and_other_authorities() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("serve/nonces.db");
        let key = hmac_key("rk_abcd_secret");
        let lookup = |id: &str| (id == "abcd").then(|| zeroize::Zeroizing::new(key.to_vec()));
        let names = vec!["127.0.0.1:8080".to_owned()];
        let body = br#"{"inputs": []}"#;
        let h = signed(&key, 1000, "once", body);
        let first = Nonces::shared(&db).unwrap();
        let second = Nonces::shared(&db).unwrap();
        assert_eq!(
            verify(&parts(&h, body), &lookup, &first, &names, 1000).unwrap(),
            "abcd"
        );
        assert_eq!(
            verify(&parts(&h, body), &lookup, &second, &names, 1001).unwrap_err(),
            SigError::Replayed
        );
        drop(first);
        let restarted = Nonces::shared(&db).unwrap();
        assert_eq!(
            verify(&parts(&h, body), &lookup, &restarted, &names, 1002).unwrap_err(),
            SigError::Replayed
        );
        // Once the window has passed the row may be reused (the signature is stale anyway).
        assert!(
            restarted
                .fresh("abcd", "once", 1003 + 2 * WINDOW_SECS)
                .is_ok()
        );
        // Signed for another name: refused, and its nonce is not consumed.
        let h = signed(&key, 1000, "elsewhere", body);
        let others = vec!["api.example.com".to_owned()];
        assert_eq!(
            verify(&parts(&h, body), &lookup, &second, &others, 1000).unwrap_err(),
            SigError::Authority("127.0.0.1:8080".into())
        );
        assert!(verify(&parts(&h, body), &lookup, &second, &names, 1000).is_ok());
        // A store that cannot record refuses rather than letting the request through.
        restarted
            .store
            .as_ref()
            .unwrap()
            .lock()
            .unwrap()
            .pragma_update(None, "query_only", "ON")
            .unwrap();
        let h = signed(&key, 1000, "unrecorded", body);
        assert!(matches!(
            verify(&parts(&h, body), &lookup, &restarted, &names, 1000).unwrap_err(),
            SigError::NonceStore(_)
        ));
    }

    #[test]
    fn good_stale_replayed_tampered_and_uncovered() {
        let key = hmac_key("rk_abcd_secret");
        let lookup = |id: &str| (id == "abcd").then(|| zeroize::Zeroizing::new(key.to_vec()));
        let nonces = Nonces::default();
        let body = br#"{"inputs": []}"#;
        let h = signed(&key, 1000, "n1", body);
        assert_eq!(
            verify(&parts(&h, body), &lookup, &nonces, &[], 1100).unwrap(),
            "abcd"
        );
        assert_eq!(
            verify(&parts(&h, body), &lookup, &nonces, &[], 1100).unwrap_err(),
            SigError::Replayed
        );
        let h = signed(&key, 1000, "n2", body);
        assert_eq!(
            verify(&parts(&h, body), &lookup, &nonces, &[], 1400).unwrap_err(),
            SigError::Stale
        );
        assert_eq!(
            verify(&parts(&h, b"{}"), &lookup, &nonces, &[], 1000).unwrap_err(),
            SigError::Digest
        );
        let mut other = parts(&h, body);
        other.path = "/v2/models/other/infer";
        assert_eq!(
            verify(&other, &lookup, &nonces, &[], 1000).unwrap_err(),
            SigError::Bad
        );
        let wrong = hmac_key("rk_abcd_other");
        let h = signed(&wrong, 1000, "n3", body);
        assert_eq!(
            verify(&parts(&h, body), &lookup, &nonces, &[], 1000).unwrap_err(),
            SigError::Bad
        );
        let mut h = signed(&key, 1000, "n4", body);
        let input = h
            .get("signature-input")
            .unwrap()
            .to_str()
            .unwrap()
            .replace(" \"content-digest\"", "");
        h.insert("signature-input", input.parse().unwrap());
        assert_eq!(
            verify(&parts(&h, body), &lookup, &nonces, &[], 1000).unwrap_err(),
            SigError::Uncovered("content-digest".into())
        );
        let mut h = signed(&key, 1000, "n5", body);
        let input = h
            .get("signature-input")
            .unwrap()
            .to_str()
            .unwrap()
            .replace("hmac-sha256", "rsa-pss-sha512");
        h.insert("signature-input", input.parse().unwrap());
        assert_eq!(
            verify(&parts(&h, body), &lookup, &nonces, &[], 1000).unwrap_err(),
            SigError::Algorithm
        );
    }

    #[test]
    fn both_nonce_stores_pass_the_conformance_suite_and_it_can_fail() {
        super::nonce_conformance::run(&Nonces::default(), None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("nonces.db");
        let (a, b) = (Nonces::shared(&db).unwrap(), Nonces::shared(&db).unwrap());
        super::nonce_conformance::run(&a, Some(&b)).unwrap();
        // Two in-memory stores are not one shared store: the suite says so.
        let (a, b) = (Nonces::default(), Nonces::default());
        let err = super::nonce_conformance::run(&a, Some(&b)).unwrap_err();
        assert_eq!(err.case, "shared");
        // A store that forgets is caught.
        #[derive(Debug)]
        struct Forgetful;
        impl super::NonceStore for Forgetful {
            fn fresh(&self, _: &str, _: &str, _: i64) -> Result<(), SigError> {
                Ok(())
            }
        }
        let err = super::nonce_conformance::run(&Forgetful, None).unwrap_err();
        assert_eq!(err.case, "replay");
    }
}
