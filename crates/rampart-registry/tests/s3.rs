//! Registry blobs in S3-compatible storage, against a real server: moto's S3 server (PyPI
//! `moto[server]`, installed into `target/tmp/venv-moto` on first use), or the endpoint
//! `RAMPART_TEST_S3_ENDPOINT` names (with bucket `rampart-test` and AWS credentials in the
//! environment).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;

use rampart_crypto::sha256;
use rampart_registry::blob::{BlobError, BlobStore, conformance};
use rampart_registry::s3::S3BlobStore;
use rampart_registry::s3::testing::Moto;

fn store(m: &Moto, url: &str, spool: &std::path::Path) -> S3BlobStore {
    let c = m.config();
    let pairs: Vec<(&str, &str)> = c.iter().map(|(k, v)| (*k, v.as_str())).collect();
    S3BlobStore::open_with(url, spool, &pairs).unwrap()
}

fn key_of(prefix: &str, d: &rampart_crypto::Digest) -> String {
    let hex = d.to_hex();
    format!("{prefix}/sha256/{}/{hex}", &hex[..2])
}

#[test]
fn s3_blobs_pass_the_blob_store_conformance_suite() {
    let m = Moto::new().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let s = store(&m, "s3://rampart-test/conformance", spool.path());
    let corrupt = |d: &rampart_crypto::Digest| {
        m.overwrite(&key_of("conformance", d), b"not what it was")
            .unwrap();
    };
    conformance::run(&s, &corrupt, scratch.path()).unwrap();
}

#[test]
fn an_object_with_other_bytes_is_never_overwritten_and_large_blobs_go_up_in_parts() {
    let m = Moto::new().unwrap();
    let spool = tempfile::tempdir().unwrap();
    let s = store(&m, "s3://rampart-test/models", spool.path()).with_multipart_over(1 << 20);
    // Someone put other bytes under the name of a blob about to be stored.
    let bytes = b"the real model".to_vec();
    let d = sha256(&bytes);
    m.overwrite(&key_of("models", &d), b"a planted object")
        .unwrap();
    match s.put(&mut Cursor::new(&bytes)) {
        Err(BlobError::Corrupted { expected, .. }) if expected == d => {}
        other => panic!("{other:?}"),
    }
    match s.read(&d, 1 << 20) {
        Err(BlobError::Corrupted { .. }) => {}
        other => panic!("the planted object was served: {other:?}"),
    }
    // 20 MiB with parts over 1 MiB: uploaded in parts, read back whole and verified.
    let big: Vec<u8> = (0..20u32 << 20)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect();
    let d = s.put(&mut Cursor::new(&big)).unwrap();
    assert_eq!(d, sha256(&big));
    assert_eq!(s.verify(&d).unwrap(), big.len() as u64);
    let out = spool.path().join("big.out");
    assert_eq!(
        s.copy_to(&d, &out, big.len() as u64).unwrap(),
        big.len() as u64
    );
    assert_eq!(std::fs::read(&out).unwrap(), big);
    // Putting it again is a no-op that re-checks what is there.
    assert_eq!(s.put(&mut Cursor::new(&big)).unwrap(), d);
    // No spooled file is left behind.
    let left: Vec<_> = std::fs::read_dir(spool.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "big.out")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn urls_that_carry_credentials_or_are_not_s3_are_refused() {
    let spool = tempfile::tempdir().unwrap();
    for bad in [
        "s3://AKIA:secret@bucket/x",
        "https://bucket/x",
        "s3://",
        "s3://b/x?k=v",
    ] {
        assert!(S3BlobStore::open(bad, spool.path()).is_err(), "{bad}");
    }
}
