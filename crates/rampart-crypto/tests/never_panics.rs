//! Property tests: hostile bundle and statement bytes give errors, never panics.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, missing_docs)]

use std::sync::OnceLock;

use proptest::prelude::*;
use rampart_crypto::{SigningKey, dsse, oms, provenance};

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(SigningKey::generate)
}

fn valid_bundle() -> Vec<u8> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/interop/model-signing/tiny-model/model.sig"
    );
    std::fs::read(dir).expect("shared vector")
}

/// Arbitrary JSON, biased towards the shapes the parsers look for.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        prop_oneof![
            Just("sha256".to_owned()),
            Just("files".to_owned()),
            Just("shards".to_owned()),
            Just("a:0:1".to_owned()),
            Just("https://in-toto.io/Statement/v1".to_owned()),
            Just("https://model_signing/signature/v1.0".to_owned()),
            Just("https://slsa.dev/provenance/v1".to_owned()),
            "[a-f0-9]{64}",
            ".{0,12}",
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("_type".to_owned()),
                    Just("subject".to_owned()),
                    Just("predicateType".to_owned()),
                    Just("predicate".to_owned()),
                    Just("serialization".to_owned()),
                    Just("resources".to_owned()),
                    Just("method".to_owned()),
                    Just("hash_type".to_owned()),
                    Just("shard_size".to_owned()),
                    Just("allow_symlinks".to_owned()),
                    Just("ignore_paths".to_owned()),
                    Just("name".to_owned()),
                    Just("digest".to_owned()),
                    Just("algorithm".to_owned()),
                    Just("sha256".to_owned()),
                    Just("buildDefinition".to_owned()),
                    Just("buildType".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(b) = dsse::UnverifiedBundle::parse(&bytes) {
            let _ = b.verify(&[key().public_key()]);
        }
        let _ = oms::decode_statement(&bytes);
    }

    #[test]
    fn mutated_valid_bundles_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut bundle = valid_bundle();
        let i = pos.index(bundle.len());
        bundle[i] = byte;
        let _ = dsse::UnverifiedBundle::parse(&bundle).map(|b| b.verify(&[key().public_key()]));
        let c = cut.index(bundle.len());
        let _ = dsse::UnverifiedBundle::parse(&bundle[..c]).map(|b| b.verify(&[key().public_key()]));
    }

    #[test]
    fn signed_hostile_statements_never_panic(value in json()) {
        let payload = serde_json::to_vec(&value).unwrap();
        let _ = oms::decode_statement(&payload);
        let bundle = dsse::sign_bundle(key(), &payload);
        let _ = provenance::verify_attestation(&bundle, &[key().public_key()]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Hostile certificate bytes (random, and a real certificate cut or bit-flipped) give an
    /// error, never a panic.
    #[test]
    fn certificate_chains_never_panic(
        junk in proptest::collection::vec(any::<u8>(), 0..2048),
        cut in 0usize..4096,
        flip in 0usize..4096,
    ) {
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../rampart/tests/fixtures/model-transparency/keys/certificate/signing-key-cert.pem"
        ))
        .unwrap();
        let real = rampart_crypto::x509::certificates_from_pem(&pem).unwrap().remove(0);
        let mut flipped = real.clone();
        let i = flip % flipped.len();
        flipped[i] ^= 0x5a;
        let cut = real[..cut.min(real.len())].to_vec();
        for chain in [vec![junk.clone()], vec![cut.clone(), real.clone()], vec![flipped.clone()]] {
            let _ = rampart_crypto::x509::verify_chain(&chain, std::slice::from_ref(&real));
            let _ = rampart_crypto::x509::verify_chain(std::slice::from_ref(&real), std::slice::from_ref(&flipped));
        }
        let _ = rampart_crypto::x509::certificates_from_pem(&String::from_utf8_lossy(&junk));
    }
}

fn sigstore_vector() -> serde_json::Value {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rampart/tests/fixtures/model-transparency/v1.1.0-sigstore/model.sig"
    );
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Verifies `bundle` as a Sigstore bundle against the public-good root; true if it verified.
fn sigstore_verifies(bundle: &[u8]) -> bool {
    static ROOT: OnceLock<rampart_crypto::sigstore::TrustedRoot> = OnceLock::new();
    let root = ROOT.get_or_init(|| rampart_crypto::sigstore::TrustedRoot::public_good().unwrap());
    let ids = [rampart_crypto::sigstore::Identity {
        identity: "stefanb@us.ibm.com".into(),
        issuer: "https://sigstore.verify.ibm.com/oauth2".into(),
    }];
    dsse::UnverifiedBundle::parse(bundle)
        .ok()
        .is_some_and(|b| b.verify_sigstore(root, &ids).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A real Sigstore bundle with one byte changed, or a log-entry field replaced by hostile
    /// JSON (huge indices and sizes, long proofs, junk checkpoints): an error, never a panic,
    /// and never a verification unless every verified part is unchanged.
    #[test]
    fn mutated_sigstore_bundles_never_panic_or_verify(
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        field in prop::sample::select(vec![
            "logIndex", "integratedTime", "canonicalizedBody", "inclusionPromise",
            "inclusionProof", "logId", "kindVersion",
        ]),
        value in json(),
        size in any::<u64>(),
        index in any::<u64>(),
        hashes in 0usize..80,
    ) {
        let original = sigstore_vector();
        let text = original.to_string().into_bytes();
        let mut mutated = text.clone();
        let i = pos.index(mutated.len());
        mutated[i] = byte;
        if sigstore_verifies(&mutated) {
            // Only a change that leaves every verified part as it was may still verify: JSON
            // whitespace, or the RFC 3161 timestamps, which are not used (the log's promise
            // gives the time).
            let strip = |mut v: serde_json::Value| {
                v["verificationMaterial"]
                    .as_object_mut()
                    .map(|m| m.remove("timestampVerificationData"));
                v
            };
            let a: Option<serde_json::Value> = serde_json::from_slice(&mutated).ok();
            prop_assert_eq!(a.map(strip), Some(strip(original.clone())));
        }
        let mut b = original.clone();
        b["verificationMaterial"]["tlogEntries"][0][field] = value;
        prop_assert!(!sigstore_verifies(b.to_string().as_bytes()));
        let mut b = original.clone();
        let proof = &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"];
        proof["treeSize"] = size.to_string().into();
        proof["logIndex"] = index.to_string().into();
        proof["hashes"] = serde_json::Value::Array(
            (0..hashes).map(|_| "3QNvaoVmW9zKz4+wKtXCFGjJN3AN0moSJUEo2TPm5Ro=".into()).collect(),
        );
        prop_assert!(!sigstore_verifies(b.to_string().as_bytes()));
    }
}
