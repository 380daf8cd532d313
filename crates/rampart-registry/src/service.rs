//! Register and promote as services over a [`Session`]: the trusted keys and anchors, the
//! scanner settings and the gates come from the session's policy, and every outcome —
//! refusals included — is in the session's audit log before it is returned.

use std::path::Path;

use rampart_audit::{Action, Outcome, Unrecorded};
use rampart_home::Session;
use serde_json::Value;

use crate::candidate::{self, Sources};
use crate::gates::{self, Check, GateContext};
use crate::{LineageEntry, Registry, RegistryError, Stage, Transition, VersionInfo};

/// What to register.
#[derive(Debug, Clone, Copy)]
pub struct RegisterRequest<'a> {
    /// The model file or directory (a training run's directory is recognised).
    pub path: &'a Path,
    /// The model's name.
    pub name: &'a str,
    /// Its signature, when not in the usual place.
    pub signature: Option<&'a Path>,
    /// Its provenance, when not in the usual place.
    pub provenance: Option<&'a Path>,
    /// Its metrics, when not in the usual place.
    pub metrics: Option<&'a Path>,
}

/// How a promotion ended.
#[derive(Debug, Clone)]
pub enum Promotion {
    /// The version moved.
    Promoted {
        /// The version.
        version: VersionInfo,
        /// Its stage change.
        transition: Transition,
        /// Every gate, all passed.
        checks: Vec<Check>,
    },
    /// A gate failed; nothing moved.
    Refused {
        /// The version.
        version: VersionInfo,
        /// Every gate, some failed.
        checks: Vec<Check>,
    },
}

fn unrecorded(e: Unrecorded<RegistryError>) -> RegistryError {
    match e {
        Unrecorded::Audit(a) => RegistryError::Audit(a),
        Unrecorded::Change(c) => c,
    }
}

/// Appends a refusal's record; a failure to record is returned in the refusal's place.
fn refusal(s: &Session<'_>, event: rampart_audit::Event, e: RegistryError) -> RegistryError {
    match s.audit.refusal(event) {
        Some(a) => RegistryError::Audit(a),
        None => e,
    }
}

/// The input schema of a rampart model (features, classes, training statistics), if one of
/// its files is one.
fn input_schema(src: &Sources) -> Option<Value> {
    let files: Vec<std::path::PathBuf> = if src.model.is_file() {
        vec![src.model.clone()]
    } else {
        std::fs::read_dir(&src.model)
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    files.iter().find_map(|path| {
        let small = std::fs::metadata(path).is_ok_and(|m| m.len() <= 256 << 20);
        if !small || path.extension().is_none_or(|e| e != "safetensors") {
            return None;
        }
        let bytes = std::fs::read(path).ok()?;
        let model = rampart_ml::Model::from_bytes(&bytes).ok()?;
        serde_json::to_value(&model.meta).ok()
    })
}

/// Registers a model: its signature (by a trusted key, certificate authority or Sigstore
/// identity), provenance and scan are checked and its files stored before the version is
/// written; the registering key must be one the home trusts.
///
/// # Errors
/// [`RegistryError::Refused`] when a check fails (audited), the home's and the database's
/// errors.
pub fn register(
    s: &Session<'_>,
    reg: &mut Registry,
    req: &RegisterRequest<'_>,
) -> Result<VersionInfo, RegistryError> {
    let keys: Vec<_> = s.policy.trusted_public_keys();
    let (key, _) = s.home.signing_key()?;
    let registrant = key.public_key().fingerprint().to_string();
    let src = Sources::locate(req.path, req.signature, req.provenance, req.metrics);
    let user = s.audit.actor();
    let path_text = req.path.display().to_string();
    let denied = |reason: String| {
        s.audit
            .event(Action::ModelRegister, Outcome::Denied)
            .subject_path(&path_text)
            .detail("name", req.name.to_owned())
            .detail("reason", reason)
    };
    // The registrant is an identity the home trusts: a throwaway key would make every real
    // key "not the registrant" and so eligible to approve under the two-person rule.
    if !keys
        .iter()
        .any(|k| k.fingerprint().to_string() == registrant)
    {
        let reason = format!(
            "the registering key {registrant} is not trusted by this home; register with the home key or a trusted one (rampart trust add)"
        );
        return Err(refusal(
            s,
            denied(reason.clone()),
            RegistryError::Refused(reason),
        ));
    }
    let anchors = s.home.anchors(s.policy)?;
    let checked = candidate::check_and_store(
        reg.blobs(),
        &src,
        &keys,
        &anchors,
        &s.policy.scan.config(),
        s.policy.scan.fail_on,
        user,
        &registrant,
        input_schema(&src),
    )
    .map_err(|e| refusal(s, denied(e.to_string()), e))?;
    s.audit
        .recorded(|rec| {
            reg.insert_version(req.name, &checked.version, user, "register", &mut |r| {
                rec.write(
                    s.audit
                        .event(Action::ModelRegister, Outcome::Ok)
                        .subject_path(format!("{}@{}", r.name, r.version))
                        .subject_digest(r.root.reference())
                        .detail("source", path_text.clone())
                        .detail("signer", r.signer.clone())
                        .detail(
                            "signer_identity",
                            r.signer_identity.clone().unwrap_or_default(),
                        )
                        .detail("files", r.files)
                        .detail("provenance", r.provenance),
                )
            })
        })
        .map_err(unrecorded)
}

/// The stages a version may come from to enter `to`.
const fn sources(to: Stage) -> &'static [Stage] {
    match to {
        Stage::Production => &[Stage::Staging],
        _ => &[Stage::None, Stage::Archived],
    }
}

/// Promotes a version: every gate of the target stage (from the policy) is evaluated from the
/// stored blobs; when all pass the stage changes, on record. `lineage` says whether a dataset
/// the provenance names is one this home ingested.
///
/// # Errors
/// The reference does not resolve; the home's, the database's and the audit log's errors.
/// Failing gates are not an error: they are [`Promotion::Refused`] (audited).
pub fn promote(
    s: &Session<'_>,
    reg: &mut Registry,
    reference: &str,
    to: Stage,
    lineage: &dyn Fn(&LineageEntry) -> bool,
) -> Result<Promotion, RegistryError> {
    let keys: Vec<_> = s.policy.trusted_public_keys();
    let v = reg.resolve(reference)?;
    let gate = gates::for_stage(&s.policy.gates, to);
    let checks = gates::evaluate(
        reg,
        &v,
        to,
        gate,
        &GateContext {
            keys: &keys,
            anchors: &s.home.anchors(s.policy)?,
            scan: &s.policy.scan.config(),
            fail_on: s.policy.scan.fail_on,
            lineage,
        },
    )?;
    let subject = format!("{}@{}", v.name, v.version);
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.gate, c.detail))
        .collect();
    if !failed.is_empty() {
        let event = s
            .audit
            .event(Action::ModelPromote, Outcome::Denied)
            .subject_path(&subject)
            .subject_digest(v.root.reference())
            .detail("to", to.as_str())
            .detail("failed", failed.join("; "));
        if let Some(a) = s.audit.refusal(event) {
            return Err(a.into());
        }
        return Ok(Promotion::Refused { version: v, checks });
    }
    let gate_names = checks.iter().map(|c| c.gate).collect::<Vec<_>>().join(",");
    let moved = s.audit.recorded(|rec| {
        reg.set_stage(&v, to, sources(to), s.audit.actor(), "promote", &mut |c| {
            let mut event = s
                .audit
                .event(Action::ModelPromote, Outcome::Ok)
                .subject_path(format!("{}@{}", c.name, c.transition.version))
                .subject_digest(c.root.reference())
                .detail("from", c.transition.from.as_str())
                .detail("to", c.transition.to.as_str())
                .detail("gates", gate_names.clone());
            if let Some(d) = c.transition.displaced {
                event = event.detail("displaced", d);
            }
            rec.write(event)
        })
    });
    match moved.map_err(unrecorded) {
        Ok(transition) => Ok(Promotion::Promoted {
            version: v,
            transition,
            checks,
        }),
        Err(e) => {
            let event = s
                .audit
                .event(Action::ModelPromote, Outcome::Denied)
                .subject_path(&subject)
                .detail("to", to.as_str())
                .detail("reason", e.to_string());
            Err(refusal(s, event, e))
        }
    }
}
