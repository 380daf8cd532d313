//! Sigstore bundles from untrusted files: parsing and offline verification (log entry, proof,
//! checkpoint, SCT, chain) never panic, never allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_crypto::dsse::UnverifiedBundle;
use rampart_crypto::sigstore::{Identity, TrustedRoot};

fuzz_target!(|data: &[u8]| {
    let Ok(root) = TrustedRoot::public_good() else {
        return;
    };
    let ids = [Identity {
        identity: "stefanb@us.ibm.com".into(),
        issuer: "https://sigstore.verify.ibm.com/oauth2".into(),
    }];
    if let Ok(b) = UnverifiedBundle::parse(data) {
        let _ = b.verify_sigstore(&root, &ids);
    }
    let _ = TrustedRoot::from_json(data);
});
