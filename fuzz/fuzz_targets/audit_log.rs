//! Audit log verification over hostile file contents: reports, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_audit::AuditLog;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open(dir.path()).expect("open");
    let cut = data.len() / 2;
    std::fs::write(log.log_path(), &data[..cut]).expect("write");
    std::fs::write(log.checkpoints_path(), &data[cut..]).expect("write");
    let key = rampart_crypto::SigningKey::generate().public_key();
    let _ = log.verify(&[key]);
});
