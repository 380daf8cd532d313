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

/// What an approval request came to (audited either way).
#[derive(Debug)]
pub enum Approval {
    /// The approval is stored.
    Approved {
        /// The version.
        version: VersionInfo,
        /// The approving key's fingerprint.
        approver_key: String,
    },
    /// It does not count, and nothing was stored.
    Refused {
        /// The version.
        version: VersionInfo,
        /// The approving key's fingerprint.
        approver_key: String,
        /// Why.
        reason: String,
    },
}

/// Signs and stores an approval of `reference` for `stage` with `key`: refused when the key
/// is not one this home trusts, when the stage's two-person rule applies and the key
/// registered, signed or trained the version, or when the key already approved it. A stored
/// approval under the key that no longer verifies is replaced.
///
/// # Errors
/// The reference does not resolve; the database's, the home's and the audit log's errors.
/// A refusal is [`Approval::Refused`] (audited), not an error.
pub fn approve(
    s: &Session<'_>,
    reg: &mut Registry,
    reference: &str,
    stage: Stage,
    key: &rampart_crypto::SigningKey,
) -> Result<Approval, RegistryError> {
    let keys = s.policy.trusted_public_keys();
    let v = reg.resolve(reference)?;
    let fp = key.public_key().fingerprint().to_string();
    let subject = format!("{}@{}", v.name, v.version);
    let refuse = |v: VersionInfo, reason: String| -> Result<Approval, RegistryError> {
        let event = s
            .audit
            .event(Action::ModelApprove, Outcome::Denied)
            .subject_path(&subject)
            .detail("approver_key", fp.clone())
            .detail("reason", reason.clone());
        if let Some(a) = s.audit.refusal(event) {
            return Err(a.into());
        }
        Ok(Approval::Refused {
            version: v,
            approver_key: fp.clone(),
            reason,
        })
    };
    if !keys.iter().any(|k| k.fingerprint().to_string() == fp) {
        return refuse(
            v,
            format!("key {fp} is not trusted by this home (rampart trust add)"),
        );
    }
    if gates::for_stage(&s.policy.gates, stage).two_person_rule {
        let roles: Vec<&str> = gates::producers(reg, &v, &keys)
            .into_iter()
            .filter(|(k, _)| *k == fp)
            .map(|(_, role)| role)
            .collect();
        if !roles.is_empty() {
            let reason = format!(
                "key {fp} {} this version; the two-person rule needs someone else",
                roles.join(" and ")
            );
            return refuse(v, reason);
        }
    }
    let approver = s.audit.actor();
    let bundle = crate::approval::sign(&v, stage.as_str(), approver, key);
    crate::approval::verify(&bundle, &v, stage.as_str(), &keys)
        .map_err(|e| RegistryError::Refused(format!("the new approval does not verify: {e}")))?;
    // A row under this key that does not verify (forged, or for another model) is replaced;
    // a valid one means this key already approved.
    let existing = reg.approvals(&v)?;
    let mut replace = false;
    if let Some(r) = existing.iter().find(|r| r.approver_key == fp) {
        if crate::approval::verify(&r.bundle, &v, stage.as_str(), &keys).is_ok() {
            return refuse(v, format!("key {fp} already approved this version"));
        }
        replace = true;
    }
    let added = s.audit.recorded(|rec| {
        reg.add_approval(&v, &fp, approver, &bundle, replace, &mut |a| {
            rec.write(
                s.audit
                    .event(Action::ModelApprove, Outcome::Ok)
                    .subject_path(format!("{}@{}", a.name, a.version))
                    .subject_digest(a.root.reference())
                    .detail("approver_key", a.approver_key.clone())
                    .detail("stage", stage.as_str()),
            )
        })
    });
    match added.map_err(unrecorded) {
        Ok(()) => Ok(Approval::Approved {
            version: v,
            approver_key: fp,
        }),
        Err(
            e @ (RegistryError::Refused(_)
            | RegistryError::Conflict(_)
            | RegistryError::NotFound(_)
            | RegistryError::BadReference(_)),
        ) => refuse(v, e.to_string()),
        Err(e) => Err(e),
    }
}

/// What a rollback came to (audited either way).
#[derive(Debug)]
pub enum Rollback {
    /// Production is the previous version again.
    RolledBack(Transition),
    /// The previous version may not come back (its files or signature no longer verify);
    /// nothing moved.
    Refused {
        /// The version that would have come back.
        version: Box<VersionInfo>,
        /// Why.
        reason: String,
    },
}

/// Puts the previous production version of `name` back in production, after re-checking
/// its signature and files with the home's trusted keys; the current one is archived.
///
/// # Errors
/// No previous production version; the database's, the home's and the audit log's errors.
/// A version that may not come back is [`Rollback::Refused`] (audited).
pub fn rollback(
    s: &Session<'_>,
    reg: &mut Registry,
    name: &str,
) -> Result<Rollback, RegistryError> {
    let keys = s.policy.trusted_public_keys();
    let previous = reg.previous_production(name)?;
    let checks = gates::evaluate(
        reg,
        &previous,
        Stage::Production,
        &gates::GatePolicy::signature_only(),
        &GateContext {
            keys: &keys,
            anchors: &s.home.anchors(s.policy)?,
            scan: &rampart_scan::ScanConfig::default(),
            fail_on: rampart_scan::Severity::Critical,
            lineage: &|_| true,
        },
    )?;
    if let Some(bad) = checks.iter().find(|c| !c.ok) {
        let event = s
            .audit
            .event(Action::ModelRollback, Outcome::Denied)
            .subject_path(name)
            .detail("reason", bad.detail.clone());
        if let Some(a) = s.audit.refusal(event) {
            return Err(a.into());
        }
        return Ok(Rollback::Refused {
            reason: bad.detail.clone(),
            version: Box::new(previous),
        });
    }
    let moved = s.audit.recorded(|rec| {
        reg.rollback(name, s.audit.actor(), &mut |c| {
            rec.write(
                s.audit
                    .event(Action::ModelRollback, Outcome::Ok)
                    .subject_path(format!("{}@{}", c.name, c.transition.version))
                    .subject_digest(c.root.reference())
                    .detail("from_version", c.transition.displaced.unwrap_or_default()),
            )
        })
    });
    moved.map_err(unrecorded).map(Rollback::RolledBack)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The version exported.
    pub version: VersionInfo,
    /// The fingerprint of the home's key that signed the archive (the importing home must
    /// trust it).
    pub key: String,
}

/// Writes `reference` as a signed archive at `out` (complete or not at all: a temporary file
/// beside it, synced, renamed), signed with the home's key.
///
/// # Errors
/// An unknown reference; the archive could not be written (audited as a failed export).
pub fn export(
    s: &Session<'_>,
    reg: &Registry,
    reference: &str,
    out: &Path,
) -> Result<Exported, RegistryError> {
    let v = reg.resolve(reference)?;
    let (key, _) = s.home.signing_key()?;
    let fingerprint = key.public_key().fingerprint().to_string();
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let subject = format!("{}@{}", v.name, v.version);
    let written = tempfile::Builder::new()
        .prefix(".rampart-export-")
        .tempfile_in(dir)
        .map_err(io(dir))
        .and_then(|mut tmp| {
            crate::transfer::export(reg, &v, &key, s.audit.actor(), tmp.as_file_mut())?;
            tmp.as_file().sync_all().map_err(io(out))?;
            tmp.persist(out).map_err(|e| io(out)(e.error))?;
            Ok(())
        });
    if let Err(e) = written {
        let event = s
            .audit
            .event(Action::ModelExport, Outcome::Failed)
            .subject_path(&subject)
            .detail("reason", e.to_string());
        return Err(refusal(s, event, e));
    }
    s.audit.record(
        s.audit
            .event(Action::ModelExport, Outcome::Ok)
            .subject_path(&subject)
            .subject_digest(v.root.reference())
            .detail("archive", out.display().to_string())
            .detail("key", fingerprint.clone()),
    )?;
    Ok(Exported {
        version: v,
        key: fingerprint,
    })
}

/// What [`import`] stored.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The new version in this registry.
    pub version: VersionInfo,
    /// The archive's manifest (its name and version in the exporting home).
    pub manifest: crate::transfer::ExportManifest,
    /// The fingerprint of the key that signed the archive.
    pub exporter: String,
}

/// Imports an archive written by [`export`] as the next version of `name` (or the archive's
/// own name): the archive's signature must be by a key the home trusts, and the model's own
/// signature, blobs, scan (at the policy's settings) and provenance are checked before the
/// version is written, on record.
///
/// # Errors
/// [`RegistryError::Refused`] and the archive's other faults, audited as a denied import;
/// the database's, the home's and the audit log's errors.
pub fn import(
    s: &Session<'_>,
    reg: &mut Registry,
    archive: &Path,
    name: Option<&str>,
) -> Result<Imported, RegistryError> {
    let keys = s.policy.trusted_public_keys();
    let imported = s
        .home
        .anchors(s.policy)
        .map_err(RegistryError::from)
        .and_then(|anchors| {
            s.audit
                .recorded(|rec| {
                    crate::transfer::import(
                        reg,
                        archive,
                        name,
                        &keys,
                        &anchors,
                        &s.policy.scan.config(),
                        s.policy.scan.fail_on,
                        s.audit.actor(),
                        &mut |r| {
                            rec.write(
                                s.audit
                                    .event(Action::ModelImport, Outcome::Ok)
                                    .subject_path(format!("{}@{}", r.name, r.version))
                                    .subject_digest(r.root.reference())
                                    .detail("archive", archive.display().to_string())
                                    .detail("source", r.source.clone())
                                    .detail("reason", r.reason.clone()),
                            )
                        },
                    )
                })
                .map_err(unrecorded)
        });
    match imported {
        Ok((version, manifest, exporter)) => Ok(Imported {
            version,
            manifest,
            exporter,
        }),
        Err(e) => {
            let event = s
                .audit
                .event(Action::ModelImport, Outcome::Denied)
                .subject_path(archive.display().to_string())
                .detail("reason", e.to_string());
            Err(refusal(s, event, e))
        }
    }
}

/// Writes `reference` as a directory a verifier or server reads: `out/model/` (every file
/// re-hashed against the registry's record as it is written), `out/model.sig` and
/// `out/provenance.json`. `out` must not exist or be empty; on failure nothing half-written is
/// left (a directory this call made is removed).
///
/// # Errors
/// [`RegistryError::Request`] when `out` is not empty; a damaged blob (audited as a failed
/// checkout).
pub fn checkout(
    s: &Session<'_>,
    reg: &Registry,
    reference: &str,
    out: &Path,
) -> Result<VersionInfo, RegistryError> {
    let v = reg.resolve(reference)?;
    let subject = format!("{}@{}", v.name, v.version);
    if out.exists() && std::fs::read_dir(out).map_or(true, |mut d| d.next().is_some()) {
        return Err(RegistryError::Request(format!(
            "{} exists and is not an empty directory",
            out.display()
        )));
    }
    let created = !out.exists();
    let model = out.join("model");
    let result = std::fs::create_dir_all(&model)
        .map_err(io(&model))
        .and_then(|()| reg.materialise(&v, &model))
        .and_then(|()| {
            let sidecar = crate::MAX_BUNDLE_BYTES;
            reg.blobs()
                .copy_to(&v.signature, &out.join("model.sig"), sidecar)?;
            if let Some(p) = &v.provenance {
                reg.blobs()
                    .copy_to(p, &out.join("provenance.json"), sidecar)?;
            }
            Ok(())
        });
    if let Err(e) = result {
        if created {
            let _ = std::fs::remove_dir_all(out);
        } else {
            let _ = std::fs::remove_dir_all(&model);
            let _ = std::fs::remove_file(out.join("model.sig"));
            let _ = std::fs::remove_file(out.join("provenance.json"));
        }
        let event = s
            .audit
            .event(Action::ModelCheckout, Outcome::Failed)
            .subject_path(&subject)
            .subject_digest(v.root.reference())
            .detail("reason", e.to_string());
        return Err(refusal(s, event, e));
    }
    s.audit.record(
        s.audit
            .event(Action::ModelCheckout, Outcome::Ok)
            .subject_path(&subject)
            .subject_digest(v.root.reference())
            .detail("to", out.display().to_string()),
    )?;
    Ok(v)
}
