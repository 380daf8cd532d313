//! Sigstore bundle / DSSE / OMS statement / provenance parsing: never panics, never allocates
//! without bound. The first byte picks the layer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_crypto::{SigningKey, dsse, oms, provenance};
use std::sync::OnceLock;

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(SigningKey::generate)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        // Untrusted bundle bytes, verified with a key that did not sign them.
        0 => {
            if let Ok(b) = dsse::UnverifiedBundle::parse(rest) {
                let _ = b.verify(&[key().public_key()]);
            }
        }
        // A statement that a trusted key signed: the parsers behind the signature.
        1 => {
            let _ = oms::decode_statement(rest);
        }
        _ => {
            let bundle = dsse::sign_bundle(key(), rest);
            let _ = provenance::verify_attestation(&bundle, &[key().public_key()]);
        }
    }
});
