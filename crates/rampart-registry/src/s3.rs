//! Registry blobs in S3-compatible object storage (`[storage] blobs = "s3://BUCKET/PREFIX"`),
//! through the `object_store` crate; endpoint, region and credentials the AWS SDK way
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP` for a plain-HTTP endpoint).
//!
//! Objects are named `PREFIX/sha256/<2 hex>/<64 hex>`, like the local store's files, and are
//! write-once: a put streams the bytes into a local temporary file while hashing them, then
//! creates the object only if it does not exist (`If-None-Match: *`); an object already there
//! is re-hashed, and one whose bytes are not its name is an error, never overwritten. Blobs
//! over [`MULTIPART_OVER`] go up in parts (S3 has no conditional multipart completion here:
//! the object is looked up first, and a racing writer can only write the same bytes, since the
//! name is their hash). Every read re-hashes what it returns.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore as _, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use rampart_crypto::{Digest, Sha256Hasher};

use crate::blob::{BlobError, BlobStore};

/// Blobs larger than this are uploaded in parts.
pub const MULTIPART_OVER: u64 = 64 * 1024 * 1024;

/// The size of each part.
const PART: usize = 16 * 1024 * 1024;

/// An S3 store that cannot be configured, and why (never with the URL's credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct S3ConfigError(pub String);

/// Blobs in an S3 bucket.
pub struct S3BlobStore {
    store: Arc<AmazonS3>,
    prefix: String,
    shown: String,
    spool: PathBuf,
    multipart_over: u64,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3BlobStore({})", self.shown)
    }
}

fn remote(shown: &str, e: &object_store::Error) -> BlobError {
    BlobError::Remote {
        store: shown.to_owned(),
        reason: e.to_string(),
    }
}

impl S3BlobStore {
    /// The store `url` (`s3://BUCKET` or `s3://BUCKET/PREFIX`) names, configured from the
    /// environment; puts are spooled through files in `spool`.
    ///
    /// # Errors
    /// A URL that is not `s3://…`, or a configuration `object_store` refuses.
    pub fn open(url: &str, spool: &Path) -> Result<Self, S3ConfigError> {
        Self::open_with(url, spool, &[])
    }

    /// As [`S3BlobStore::open`], with `config` (object_store's AWS keys: `aws_endpoint`,
    /// `aws_region`, `aws_access_key_id`, …) over the environment's.
    ///
    /// # Errors
    /// As [`S3BlobStore::open`]; an unknown key.
    pub fn open_with(
        url: &str,
        spool: &Path,
        config: &[(&str, &str)],
    ) -> Result<Self, S3ConfigError> {
        Self::configured(url, spool, config).map_err(S3ConfigError)
    }

    fn configured(url: &str, spool: &Path, config: &[(&str, &str)]) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url} is not an S3 URL (s3://BUCKET/PREFIX)"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if url.contains('@') || url.contains('?') {
            return Err(
                "give s3://BUCKET/PREFIX without credentials or parameters; credentials come \
                 from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never the URL"
                    .into(),
            );
        }
        if bucket.is_empty() {
            return Err(format!("{url}: give s3://BUCKET/PREFIX"));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        // The AWS SDKs' name for a custom endpoint; object_store reads AWS_ENDPOINT.
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            builder = builder.with_endpoint(endpoint);
        }
        for (k, v) in config {
            let key: object_store::aws::AmazonS3ConfigKey =
                k.parse().map_err(|e| format!("{k}: {e}"))?;
            builder = builder.with_config(key, *v);
        }
        let store = builder.build().map_err(|e| format!("{url}: {e}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("{url}: cannot start the S3 client's runtime: {e}"))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: prefix.trim_matches('/').to_owned(),
            shown: url.to_owned(),
            spool: spool.to_path_buf(),
            multipart_over: MULTIPART_OVER,
            rt,
        })
    }

    /// Uploads blobs larger than `bytes` in parts (default [`MULTIPART_OVER`]).
    #[must_use]
    pub const fn with_multipart_over(mut self, bytes: u64) -> Self {
        self.multipart_over = bytes;
        self
    }

    fn key(&self, digest: &Digest) -> ObjectPath {
        let hex = digest.to_hex();
        let name = format!("sha256/{}/{hex}", hex.get(..2).unwrap_or("00"));
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Streams a blob into `sink` (at most `limit` bytes), re-hashing it; the byte count.
    fn fetch(
        &self,
        digest: &Digest,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64, BlobError> {
        let key = self.key(digest);
        self.rt.block_on(async {
            let got = match self.store.get(&key).await {
                Ok(g) => g,
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(BlobError::Missing(*digest));
                }
                Err(e) => return Err(remote(&self.shown, &e)),
            };
            if got.meta.size > limit {
                return Err(BlobError::TooLarge(*digest, limit));
            }
            let mut hasher = Sha256Hasher::new();
            let mut n = 0u64;
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| remote(&self.shown, &e))?;
                n += chunk.len() as u64;
                if n > limit {
                    return Err(BlobError::TooLarge(*digest, limit));
                }
                hasher.update(&chunk);
                sink(&chunk).map_err(|source| BlobError::Io {
                    path: PathBuf::from(&self.shown),
                    source,
                })?;
            }
            let actual = hasher.finish();
            if actual == *digest {
                Ok(n)
            } else {
                Err(BlobError::Corrupted {
                    expected: *digest,
                    actual,
                })
            }
        })
    }

    /// Spools `reader` into a temporary file while hashing it.
    fn spool(
        &self,
        reader: &mut dyn Read,
    ) -> Result<(tempfile::NamedTempFile, Digest, u64), BlobError> {
        std::fs::create_dir_all(&self.spool).map_err(|source| BlobError::Io {
            path: self.spool.clone(),
            source,
        })?;
        let io = |source| BlobError::Io {
            path: self.spool.clone(),
            source,
        };
        let mut tmp = tempfile::NamedTempFile::new_in(&self.spool).map_err(io)?;
        let mut hasher = Sha256Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            let k = reader.read(&mut buf).map_err(io)?;
            if k == 0 {
                break;
            }
            let chunk = buf.get(..k).unwrap_or_default();
            hasher.update(chunk);
            tmp.write_all(chunk).map_err(io)?;
            n += k as u64;
        }
        tmp.flush().map_err(io)?;
        Ok((tmp, hasher.finish(), n))
    }
}

impl BlobStore for S3BlobStore {
    fn put(&self, reader: &mut dyn Read) -> Result<Digest, BlobError> {
        let (tmp, digest, size) = self.spool(reader)?;
        let key = self.key(&digest);
        let io = |source| BlobError::Io {
            path: tmp.path().to_path_buf(),
            source,
        };
        if size <= self.multipart_over {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            File::open(tmp.path())
                .and_then(|mut f| f.read_to_end(&mut bytes))
                .map_err(io)?;
            let created = self.rt.block_on(self.store.put_opts(
                &key,
                PutPayload::from(bytes),
                PutOptions {
                    mode: PutMode::Create,
                    ..PutOptions::default()
                },
            ));
            match created {
                Ok(_) => return Ok(digest),
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(remote(&self.shown, &e)),
            }
        } else if !self.contains(&digest) {
            let mut file = File::open(tmp.path()).map_err(io)?;
            self.rt.block_on(async {
                let upload = self
                    .store
                    .put_multipart(&key)
                    .await
                    .map_err(|e| remote(&self.shown, &e))?;
                let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
                let mut buf = vec![0u8; PART];
                loop {
                    let k = file.read(&mut buf).map_err(io)?;
                    if k == 0 {
                        break;
                    }
                    writer
                        .wait_for_capacity(2)
                        .await
                        .map_err(|e| remote(&self.shown, &e))?;
                    writer.write(buf.get(..k).unwrap_or_default());
                }
                writer.finish().await.map_err(|e| remote(&self.shown, &e))?;
                Ok::<(), BlobError>(())
            })?;
            return Ok(digest);
        }
        // An object of that name exists: it must be these bytes.
        self.verify(&digest)?;
        Ok(digest)
    }

    fn contains(&self, digest: &Digest) -> bool {
        self.rt.block_on(self.store.head(&self.key(digest))).is_ok()
    }

    fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, BlobError> {
        let mut out = Vec::new();
        self.fetch(digest, limit, &mut |c| {
            out.extend_from_slice(c);
            Ok(())
        })?;
        Ok(out)
    }

    fn copy_to(&self, digest: &Digest, to: &Path, limit: u64) -> Result<u64, BlobError> {
        crate::blob::write_new(to, |sink| self.fetch(digest, limit, sink))
    }

    fn verify(&self, digest: &Digest) -> Result<u64, BlobError> {
        self.fetch(digest, u64::MAX, &mut |_| Ok(()))
    }
}

/// An S3 server for tests: moto's (PyPI `moto[server]`, installed into
/// `target/tmp/venv-moto` on first use) on a free loopback port, with the bucket
/// `rampart-test`; stopped when dropped.
pub mod testing {
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use object_store::ObjectStoreExt as _;

    /// The server could not be started or used, and why.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{0}")]
    pub struct Unavailable(pub String);

    /// A running server.
    pub struct Moto {
        child: Child,
        /// Its port on 127.0.0.1.
        pub port: u16,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl Moto {
        /// Starts one (installing moto first if needed) and makes the bucket.
        ///
        /// # Errors
        /// When moto cannot be installed or does not answer within 30 s.
        pub fn new() -> Result<Self, Unavailable> {
            Self::started().map_err(Unavailable)
        }

        fn started() -> Result<Self, String> {
            let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/venv-moto");
            let server = venv.join("bin/moto_server");
            if !server.exists() {
                let made = Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv)
                    .status()
                    .is_ok_and(|s| s.success())
                    && Command::new(venv.join("bin/pip"))
                        .args(["install", "--quiet", "moto[server]==5.1.18"])
                        .status()
                        .is_ok_and(|s| s.success());
                if !made {
                    return Err(format!(
                        "cannot install moto[server] into {}",
                        venv.display()
                    ));
                }
            }
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| format!("no free port: {e}"))?;
            let child = Command::new(&server)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("{}: {e}", server.display()))?;
            let moto = Self { child, port };
            let deadline = Instant::now() + Duration::from_secs(30);
            // The bucket, made with a plain request (moto does not check signatures).
            loop {
                let made = Command::new("curl")
                    .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
                    .arg(format!("http://127.0.0.1:{port}/rampart-test"))
                    .output()
                    .map_err(|e| format!("curl: {e}"))?;
                if made.stdout == b"200" {
                    return Ok(moto);
                }
                if Instant::now() > deadline {
                    return Err("moto did not start".into());
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        /// The environment a process needs to reach it, the AWS way.
        #[must_use]
        pub fn env(&self) -> Vec<(&'static str, String)> {
            vec![
                (
                    "AWS_ENDPOINT_URL",
                    format!("http://127.0.0.1:{}", self.port),
                ),
                ("AWS_ALLOW_HTTP", "true".into()),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID", "test".into()),
                ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ]
        }

        /// The same as object_store configuration.
        #[must_use]
        pub fn config(&self) -> Vec<(&'static str, String)> {
            vec![
                ("aws_endpoint", format!("http://127.0.0.1:{}", self.port)),
                ("aws_allow_http", "true".into()),
                ("aws_region", "us-east-1".into()),
                ("aws_access_key_id", "test".into()),
                ("aws_secret_access_key", "test".into()),
            ]
        }

        /// Writes `bytes` at `key` behind any store's back (what anyone with write access to
        /// the bucket can do).
        ///
        /// # Errors
        /// The server's.
        pub fn overwrite(&self, key: &str, bytes: &[u8]) -> Result<(), Unavailable> {
            self.put_raw(key, bytes).map_err(Unavailable)
        }

        fn put_raw(&self, key: &str, bytes: &[u8]) -> Result<(), String> {
            let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name("rampart-test");
            for (k, v) in self.config() {
                b = b.with_config(k.parse().map_err(|e| format!("{e}"))?, v);
            }
            let raw = b.build().map_err(|e| e.to_string())?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(raw.put(&object_store::path::Path::from(key), bytes.to_vec().into()))
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}
