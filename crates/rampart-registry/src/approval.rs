//! Signed approvals: an in-toto statement whose subject is the model's root digest, signed by
//! the approver's own key into the same DSSE bundle format as everything else.

use rampart_crypto::dsse::{UnverifiedBundle, sign_bundle};
use rampart_crypto::{PublicKey, SigningKey};
use serde_json::{Value, json};

use crate::VersionInfo;

/// The approval predicate type.
pub const APPROVAL_V1: &str = "https://rampart.dev/approval/v1";

/// Signs an approval of `v` for `stage` by `approver` with `key`; returns the bundle JSON.
#[must_use]
pub fn sign(v: &VersionInfo, stage: &str, approver: &str, key: &SigningKey) -> String {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": format!("{}@{}", v.name, v.version), "digest": {"sha256": v.root.to_hex()}}],
        "predicateType": APPROVAL_V1,
        "predicate": {
            "model": v.name,
            "version": v.version,
            "root": v.root.to_hex(),
            "stage": stage,
            "approver": approver,
            "time": crate::now(),
        },
    });
    let payload = serde_json::to_vec(&statement).unwrap_or_default();
    String::from_utf8(sign_bundle(key, &payload)).unwrap_or_default()
}

/// Checks an approval bundle: signed by one of `keys`, approving exactly this version (name,
/// number and root digest) for `stage`. Returns the signer's fingerprint.
///
/// # Errors
/// [`NotCounted`]: why it does not count.
pub fn verify(
    bundle: &str,
    v: &VersionInfo,
    stage: &str,
    keys: &[PublicKey],
) -> Result<String, NotCounted> {
    verify_reason(bundle, v, stage, keys).map_err(NotCounted)
}

/// Why an approval does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotCounted(pub String);

fn verify_reason(
    bundle: &str,
    v: &VersionInfo,
    stage: &str,
    keys: &[PublicKey],
) -> Result<String, String> {
    let verified = UnverifiedBundle::parse(bundle.as_bytes())
        .map_err(|e| e.to_string())?
        .verify(keys)
        .map_err(|e| format!("{e} (not signed by a trusted key)"))?;
    let st: Value = serde_json::from_slice(&verified.payload).map_err(|e| e.to_string())?;
    let field = |k: &str| {
        st.pointer(&format!("/predicate/{k}"))
            .cloned()
            .unwrap_or_default()
    };
    if st.get("predicateType").and_then(Value::as_str) != Some(APPROVAL_V1) {
        return Err("not an approval".into());
    }
    let (model, root) = (field("model"), field("root"));
    if model != v.name.as_str() || root != v.root.to_hex().as_str() {
        return Err(format!("it approves another model ({model} {root})"));
    }
    if field("version") != v.version {
        return Err(format!(
            "it approves {model}@{}, not {}@{}",
            field("version"),
            v.name,
            v.version
        ));
    }
    if field("stage") != stage {
        return Err(format!("it approves stage {}, not {stage}", field("stage")));
    }
    Ok(verified.key.fingerprint().to_string())
}
