//! Provenance attestations: an in-toto Statement v1 carrying a SLSA Provenance v1 predicate,
//! signed into the same Sigstore bundle / DSSE envelope as model signatures.
//!
//! Subjects are the outputs (model files) by SHA-256; resolved dependencies are the inputs
//! (dataset, base model) by SHA-256; external parameters are the run's parameters; the builder
//! is rampart with its version.

use serde_json::{Value, json};

use crate::dsse::{self, BundleError, UnverifiedBundle};
use crate::{Digest, Fingerprint, PublicKey, SigningKey};

/// SLSA Provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// A named artifact with its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Name (a file name or a model-relative path).
    pub name: String,
    /// SHA-256.
    pub digest: Digest,
    /// Optional URI (e.g. `file:…`, `rampart:dataset/…`).
    pub uri: Option<String>,
}

impl Artifact {
    /// An artifact without a URI.
    #[must_use]
    pub fn new(name: impl Into<String>, digest: Digest) -> Self {
        Self {
            name: name.into(),
            digest,
            uri: None,
        }
    }
}

/// What a provenance statement says.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// Outputs.
    pub subjects: Vec<Artifact>,
    /// A URI naming the kind of build (e.g. `https://rampart.dev/train/random-forest/v1`).
    pub build_type: String,
    /// The run's parameters (hyperparameters, config).
    pub external_parameters: Value,
    /// Inputs: datasets, base models.
    pub resolved_dependencies: Vec<Artifact>,
    /// The builder's id.
    pub builder_id: String,
    /// The builder's version.
    pub builder_version: String,
    /// A unique id of this run.
    pub invocation_id: String,
    /// RFC 3339 start time.
    pub started_on: String,
    /// RFC 3339 end time.
    pub finished_on: String,
    /// Other outputs worth keeping (metrics, logs), as SLSA byproducts.
    pub byproducts: Vec<Value>,
}

fn descriptor(a: &Artifact) -> Value {
    let mut v = json!({"name": a.name, "digest": {"sha256": a.digest.to_hex()}});
    if let (Some(uri), Value::Object(o)) = (&a.uri, &mut v) {
        o.insert("uri".into(), json!(uri));
    }
    v
}

impl Provenance {
    /// The in-toto statement as JSON.
    #[must_use]
    pub fn statement(&self) -> Value {
        json!({
            "_type": crate::oms::STATEMENT_TYPE,
            "subject": self.subjects.iter().map(|s| json!({"name": s.name, "digest": {"sha256": s.digest.to_hex()}})).collect::<Vec<_>>(),
            "predicateType": SLSA_PROVENANCE_V1,
            "predicate": {
                "buildDefinition": {
                    "buildType": self.build_type,
                    "externalParameters": self.external_parameters,
                    "resolvedDependencies": self.resolved_dependencies.iter().map(descriptor).collect::<Vec<_>>(),
                },
                "runDetails": {
                    "builder": {"id": self.builder_id, "version": {"rampart": self.builder_version}},
                    "metadata": {
                        "invocationId": self.invocation_id,
                        "startedOn": self.started_on,
                        "finishedOn": self.finished_on,
                    },
                    "byproducts": self.byproducts,
                },
            },
        })
    }

    /// Signs the statement into a bundle (JSON bytes).
    #[must_use]
    pub fn sign(&self, key: &SigningKey) -> Vec<u8> {
        let payload = serde_json::to_vec_pretty(&self.statement()).unwrap_or_default();
        dsse::sign_bundle(key, &payload)
    }
}

/// Why an attestation does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The bundle or its signature.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The statement is not valid.
    #[error("the attestation's statement is invalid: {0}")]
    Statement(String),
}

/// A verified attestation.
#[derive(Debug, Clone)]
pub struct VerifiedAttestation {
    /// Who signed it.
    pub key: Fingerprint,
    /// The predicate type.
    pub predicate_type: String,
    /// Subjects by name and digest.
    pub subjects: Vec<Artifact>,
    /// For SLSA provenance, the resolved dependencies.
    pub dependencies: Vec<Artifact>,
    /// For SLSA provenance, the builder id.
    pub builder_id: Option<String>,
    /// For SLSA provenance, the build type.
    pub build_type: Option<String>,
    /// The whole statement.
    pub statement: Value,
}

impl VerifiedAttestation {
    /// Whether `digest` is one of the subjects.
    #[must_use]
    pub fn covers(&self, digest: &Digest) -> bool {
        self.subjects.iter().any(|s| &s.digest == digest)
    }
}

fn artifacts(list: Option<&Value>, what: &str) -> Result<Vec<Artifact>, AttestError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| AttestError::Statement(format!("{what} is not a list")))?;
    list.iter()
        .map(|item| {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let hex = item
                .get("digest")
                .and_then(|d| d.get("sha256"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    AttestError::Statement(format!("{what} entry {name:?} has no sha256 digest"))
                })?;
            let digest = Digest::from_hex(hex)
                .map_err(|e| AttestError::Statement(format!("{what} entry {name:?}: {e}")))?;
            let uri = item.get("uri").and_then(Value::as_str).map(str::to_owned);
            Ok(Artifact { name, digest, uri })
        })
        .collect()
}

/// Verifies a signed attestation bundle with one of `keys` and checks the statement's shape
/// (for SLSA Provenance v1: build type and builder id present).
///
/// # Errors
/// [`AttestError`] when the signature or the statement is not valid.
pub fn verify_attestation(
    bundle: &[u8],
    keys: &[PublicKey],
) -> Result<VerifiedAttestation, AttestError> {
    let verified = UnverifiedBundle::parse(bundle)?.verify(keys)?;
    let statement: Value = serde_json::from_slice(&verified.payload)
        .map_err(|e| AttestError::Statement(e.to_string()))?;
    let bad = |m: &str| AttestError::Statement(m.to_owned());
    if statement.get("_type").and_then(Value::as_str) != Some(crate::oms::STATEMENT_TYPE) {
        return Err(bad("_type is not an in-toto Statement v1"));
    }
    let predicate_type = statement
        .get("predicateType")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no predicateType"))?
        .to_owned();
    let subjects = artifacts(statement.get("subject"), "subject")?;
    if subjects.is_empty() {
        return Err(bad("no subject"));
    }
    let predicate = statement.get("predicate");
    let (dependencies, builder_id, build_type) = if predicate_type == SLSA_PROVENANCE_V1 {
        let def = predicate
            .and_then(|p| p.get("buildDefinition"))
            .ok_or_else(|| bad("no buildDefinition"))?;
        let build_type = def
            .get("buildType")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no buildType"))?
            .to_owned();
        let builder = predicate
            .and_then(|p| p.pointer("/runDetails/builder/id"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no runDetails.builder.id"))?
            .to_owned();
        (
            artifacts(def.get("resolvedDependencies"), "resolvedDependencies")?,
            Some(builder),
            Some(build_type),
        )
    } else {
        (Vec::new(), None, None)
    };
    Ok(VerifiedAttestation {
        key: verified.key.fingerprint(),
        predicate_type,
        subjects,
        dependencies,
        builder_id,
        build_type,
        statement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Provenance {
        Provenance {
            subjects: vec![Artifact::new("model.safetensors", crate::sha256(b"model"))],
            build_type: "https://rampart.dev/train/random-forest/v1".into(),
            external_parameters: json!({"trees": 100, "seed": 7}),
            resolved_dependencies: vec![Artifact {
                name: "train.csv".into(),
                digest: crate::sha256(b"data"),
                uri: Some("rampart:dataset/train".into()),
            }],
            builder_id: "https://rampart.dev/builder".into(),
            builder_version: "0.1.0".into(),
            invocation_id: "run-1".into(),
            started_on: "2026-11-22T00:00:00Z".into(),
            finished_on: "2026-11-22T00:01:00Z".into(),
            byproducts: vec![json!({"name": "metrics", "content": {"accuracy": 0.97}})],
        }
    }

    #[test]
    fn provenance_round_trip() {
        let key = SigningKey::generate();
        let bundle = sample().sign(&key);
        let v = verify_attestation(&bundle, &[key.public_key()]).unwrap();
        assert_eq!(v.predicate_type, SLSA_PROVENANCE_V1);
        assert!(v.covers(&crate::sha256(b"model")));
        assert!(!v.covers(&crate::sha256(b"other")));
        assert_eq!(v.dependencies[0].digest, crate::sha256(b"data"));
        assert_eq!(
            v.dependencies[0].uri.as_deref(),
            Some("rampart:dataset/train")
        );
        assert_eq!(
            v.statement["predicate"]["buildDefinition"]["externalParameters"]["trees"],
            100
        );
        let other = SigningKey::generate();
        assert!(verify_attestation(&bundle, &[other.public_key()]).is_err());
    }

    #[test]
    fn statement_shape_is_checked() {
        let key = SigningKey::generate();
        let mut st = sample().statement();
        st["predicate"]["buildDefinition"]
            .as_object_mut()
            .unwrap()
            .remove("buildType");
        let bundle = dsse::sign_bundle(&key, &serde_json::to_vec(&st).unwrap());
        assert!(matches!(
            verify_attestation(&bundle, &[key.public_key()]),
            Err(AttestError::Statement(_))
        ));
    }
}
