//! Re-signs the statement of an existing bundle through a private test Sigstore, for
//! benchmarks: writes `OUT/model.sig` (a Sigstore bundle for identity `bench@example.com`,
//! issuer `https://issuer.invalid`, logged now) and `OUT/trusted_root.json`.
//!
//! `cargo run -p rampart-crypto --features testing --example test_sigstore_bundle -- IN.sig OUT`

use base64::Engine as _;
use rampart_crypto::sigstore_testing::TestSigstore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, out] = args.as_slice() else {
        return Err("usage: test_sigstore_bundle IN.sig OUTDIR".into());
    };
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(input).map_err(|e| format!("{input}: {e}"))?)
            .map_err(|e| format!("{input}: {e}"))?;
    let payload = bundle
        .pointer("/dsseEnvelope/payload")
        .and_then(serde_json::Value::as_str)
        .ok_or("the bundle has no DSSE payload")?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let test = TestSigstore::new("bench")?;
    let signer = test.issue(
        "bench@example.com",
        "https://issuer.invalid",
        now - 60,
        now + 540,
    )?;
    let out = std::path::Path::new(out);
    std::fs::write(out.join("model.sig"), test.bundle(&signer, &payload, now)?)
        .map_err(|e| e.to_string())?;
    std::fs::write(out.join("trusted_root.json"), test.trusted_root_json()?)
        .map_err(|e| e.to_string())?;
    Ok(())
}
