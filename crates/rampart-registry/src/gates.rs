//! Promotion gates, evaluated from the stored blobs (never from what the version row claims):
//! signature, scan, provenance, lineage, metrics, approvals. Every gate is evaluated, so a
//! refusal lists every failing condition at once.

use std::collections::BTreeMap;

use rampart_crypto::PublicKey;
use rampart_crypto::oms;
use rampart_crypto::provenance::verify_attestation;
use rampart_scan::{ScanConfig, Severity};
use serde::Serialize;

use crate::candidate::{check_against_signature, scan_one};
use crate::{LineageEntry, MAX_BUNDLE_BYTES, Registry, RegistryError, Stage, VersionInfo};

/// What a stage requires: the policy's `[gates.<stage>]`, one type for the policy and the
/// registry.
pub use rampart_home::GatePolicy;

/// The gates for entering `stage`: production's for production, staging's otherwise.
#[must_use]
pub const fn for_stage(gates: &rampart_home::GatesPolicy, stage: Stage) -> &GatePolicy {
    match stage {
        Stage::Production => &gates.production,
        _ => &gates.staging,
    }
}

/// What the gates are checked with.
pub struct GateContext<'a> {
    /// Trusted keys (signatures, provenance, approvals).
    pub keys: &'a [PublicKey],
    /// Trusted certificate authorities and Sigstore identities, for models signed with the
    /// certificate or Sigstore method.
    pub anchors: &'a oms::Anchors,
    /// Scanner settings.
    pub scan: &'a ScanConfig,
    /// Scanner threshold.
    pub fail_on: Severity,
    /// Whether a dataset named by the provenance was ingested into this home (verified
    /// lineage).
    pub lineage: &'a dyn Fn(&LineageEntry) -> bool,
}

/// One gate's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The gate (`signature`, `scan`, `provenance`, `lineage`, `metrics`, `approvals`).
    pub gate: &'static str,
    /// Passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

fn check(gate: &'static str, r: Result<String, String>) -> Check {
    match r {
        Ok(detail) => Check {
            gate,
            ok: true,
            detail,
        },
        Err(detail) => Check {
            gate,
            ok: false,
            detail,
        },
    }
}

fn signature(
    reg: &Registry,
    v: &VersionInfo,
    keys: &[PublicKey],
    anchors: &oms::Anchors,
) -> Result<String, String> {
    let bundle = reg
        .blobs()
        .read(&v.signature, MAX_BUNDLE_BYTES)
        .map_err(|e| e.to_string())?;
    let (signed, key) =
        oms::verify_bundle_signer(&bundle, keys, anchors).map_err(|e| e.to_string())?;
    if signed.subject_digest != v.root {
        return Err(format!(
            "the signature is over sha256:{}, not this version's root",
            signed.subject_digest
        ));
    }
    let expectations = oms::file_expectations(&signed).map_err(|e| e.to_string())?;
    check_against_signature(reg.blobs(), &v.files, &expectations).map_err(|e| e.to_string())?;
    Ok(format!("signed by {key}; {} file(s) match", v.files.len()))
}

fn scan(
    reg: &Registry,
    v: &VersionInfo,
    cfg: &ScanConfig,
    fail_on: Severity,
) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    for (i, f) in v.files.iter().enumerate() {
        let path = dir.path().join(format!("{i}"));
        match reg.blobs().copy_to(&f.sha256, &path, f.size) {
            Err(e) => problems.push(format!("{}: {e}", f.name)),
            Ok(_) => {
                if let Err(e) = scan_one(&path, &f.name, cfg, fail_on) {
                    problems.push(e);
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{} file(s) clean at {}",
            v.files.len(),
            fail_on.as_str()
        ))
    } else {
        Err(problems.join("; "))
    }
}

/// The version's provenance, read from its stored bundle and verified with `keys`.
fn verified_provenance(
    reg: &Registry,
    v: &VersionInfo,
    keys: &[PublicKey],
) -> Result<rampart_crypto::provenance::VerifiedAttestation, String> {
    let d = v
        .provenance
        .ok_or("no provenance was registered with this version")?;
    let bytes = reg
        .blobs()
        .read(&d, MAX_BUNDLE_BYTES)
        .map_err(|e| e.to_string())?;
    verify_attestation(&bytes, keys).map_err(|e| e.to_string())
}

fn provenance(reg: &Registry, v: &VersionInfo, keys: &[PublicKey]) -> Result<String, String> {
    let att = verified_provenance(reg, v, keys)?;
    let missing: Vec<&str> = v
        .files
        .iter()
        .filter(|f| !att.covers(&f.sha256))
        .map(|f| f.name.as_str())
        .collect();
    if missing.is_empty() {
        Ok(format!("{} signed by {}", att.predicate_type, att.key))
    } else {
        Err(format!(
            "the provenance does not name {}",
            missing.join(", ")
        ))
    }
}

fn lineage(v: &VersionInfo, ingested: &dyn Fn(&LineageEntry) -> bool) -> Result<String, String> {
    let datasets: Vec<&LineageEntry> = v
        .lineage
        .iter()
        .filter(|l| {
            l.name == "dataset"
                || l.uri
                    .as_deref()
                    .is_some_and(|u| u.starts_with("rampart:dataset/"))
        })
        .collect();
    if datasets.is_empty() {
        return Err("the provenance names no dataset".into());
    }
    let mut problems = Vec::new();
    for d in &datasets {
        if !ingested(d) {
            problems.push(format!(
                "sha256:{}: not a dataset ingested into this home",
                d.sha256
            ));
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "dataset {} verified",
            datasets
                .iter()
                .map(|d| d.sha256.reference().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    } else {
        Err(problems.join("; "))
    }
}

/// The metrics recorded in the version's signed provenance, read from the stored bundle after
/// it verifies: the only metrics a gate believes. Those rampart computed on held-out rows
/// count; the trainer's self-reported `metrics.json` counts only where the stage does not
/// require computed ones. The version row's `metrics` is for display.
fn signed_metrics(
    reg: &Registry,
    v: &VersionInfo,
    keys: &[PublicKey],
) -> Result<rampart_ml::metrics::Recorded, String> {
    if v.provenance.is_none() {
        return Err("no signed provenance holds this version's metrics (an unsigned metrics file does not count)".into());
    }
    let att = verified_provenance(reg, v, keys)
        .map_err(|e| format!("the provenance holding the metrics does not verify: {e}"))?;
    Ok(rampart_ml::metrics::Recorded::of(&att.statement))
}

fn metrics(
    reg: &Registry,
    v: &VersionInfo,
    keys: &[PublicKey],
    min: &BTreeMap<String, f64>,
    require_computed: bool,
) -> Result<String, String> {
    let recorded = signed_metrics(reg, v, keys)?;
    let (signed, source) = recorded
        .for_gate(require_computed)
        .map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    // A bound is a floor, or a ceiling for a metric where lower is better (log_loss, …).
    for (name, want) in min {
        let check = rampart_ml::metrics::BoundCheck::of(signed, name, *want);
        if check.ok() {
            seen.push(check.to_string());
        } else {
            problems.push(check.to_string());
        }
    }
    if problems.is_empty() {
        Ok(format!("{} ({source})", seen.join(", ")))
    } else {
        Err(format!("{} ({source})", problems.join("; ")))
    }
}

fn approvals(
    reg: &Registry,
    v: &VersionInfo,
    stage: Stage,
    need: u32,
    two_person: bool,
    keys: &[PublicKey],
) -> Result<String, String> {
    let records = reg.approvals(v).map_err(|e| e.to_string())?;
    let producers = if two_person {
        producers(reg, v, keys)
    } else {
        Vec::new()
    };
    let mut valid = std::collections::BTreeSet::new();
    let mut rejected = Vec::new();
    for r in &records {
        match crate::approval::verify(&r.bundle, v, stage.as_str(), keys) {
            Ok(fp) if producers.iter().any(|(k, _)| *k == fp) => {
                let roles: Vec<&str> = producers
                    .iter()
                    .filter(|(k, _)| *k == fp)
                    .map(|(_, role)| *role)
                    .collect();
                rejected.push(format!(
                    "{}'s key {} this version (two-person rule)",
                    r.approver,
                    roles.join(" and ")
                ));
            }
            Ok(fp) => {
                valid.insert(fp);
            }
            Err(e) => rejected.push(format!("{}: {e}", r.approver)),
        }
    }
    let n = u32::try_from(valid.len()).unwrap_or(u32::MAX);
    let mut text = format!("{n} of {need} valid approval(s)");
    if !rejected.is_empty() {
        text.push_str(&format!(" (not counted: {})", rejected.join("; ")));
    }
    if n >= need { Ok(text) } else { Err(text) }
}

/// The keys that produced `v`, each with what it did: the registrant, the signer of the model,
/// and the signer of its provenance (read from the stored, verified bundle). Under the
/// two-person rule none of them may approve.
#[must_use]
pub fn producers(
    reg: &Registry,
    v: &VersionInfo,
    keys: &[PublicKey],
) -> Vec<(String, &'static str)> {
    let mut out = vec![
        (v.registrant_key.clone(), "registered"),
        (v.signer.clone(), "signed"),
    ];
    if let Ok(att) = verified_provenance(reg, v, keys) {
        out.push((att.key.to_string(), "signed the provenance of"));
    }
    out
}

/// Evaluates every required gate for moving `v` into `stage`.
///
/// # Errors
/// Only for database errors; failing gates are results.
pub fn evaluate(
    reg: &Registry,
    v: &VersionInfo,
    stage: Stage,
    g: &GatePolicy,
    ctx: &GateContext<'_>,
) -> Result<Vec<Check>, RegistryError> {
    let mut out = Vec::new();
    if g.require_signature {
        out.push(check("signature", signature(reg, v, ctx.keys, ctx.anchors)));
    }
    if g.require_scan_clean {
        out.push(check("scan", scan(reg, v, ctx.scan, ctx.fail_on)));
    }
    if g.require_provenance {
        out.push(check("provenance", provenance(reg, v, ctx.keys)));
    }
    if g.require_lineage {
        out.push(check("lineage", lineage(v, ctx.lineage)));
    }
    if !g.min_metrics.is_empty() {
        out.push(check(
            "metrics",
            metrics(reg, v, ctx.keys, &g.min_metrics, g.require_computed_metrics),
        ));
    }
    if g.approvals > 0 {
        out.push(check(
            "approvals",
            approvals(reg, v, stage, g.approvals, g.two_person_rule, ctx.keys),
        ));
    }
    Ok(out)
}
