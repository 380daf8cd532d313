//! The redactor a policy and a request's overrides describe, with the keys it needs.

use std::collections::BTreeMap;

use rampart_data::pii::{Entity, Operator, Redactor};
use rampart_home::{Home, PiiPolicy};

use crate::IngestError;

/// What a request changes over the policy's `[data.pii]`.
#[derive(Debug, Clone, Default)]
pub struct RedactOverrides {
    /// The default operator instead of the policy's.
    pub default: Option<String>,
    /// `ENTITY=OP` pairs, over the policy's.
    pub entities: Vec<String>,
    /// `COLUMN=OP` pairs, over the policy's.
    pub columns: Vec<String>,
    /// The age recipients `encrypt` writes to (the home's identity when empty).
    pub recipients: Vec<String>,
}

fn op(s: &str, what: &str) -> Result<Operator, IngestError> {
    s.parse::<Operator>()
        .map_err(|e| IngestError::Redaction(format!("{what}: {e}")))
}

fn pair(s: &str, flag: &str) -> Result<(String, String), IngestError> {
    s.split_once('=')
        .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
        .ok_or_else(|| IngestError::Redaction(format!("{flag} {s:?}: expected NAME=OPERATOR")))
}

/// The redactor and the per-column operators; the pseudonym key and the age recipients are
/// loaded from the home only when an operator needs them.
///
/// # Errors
/// [`IngestError::Redaction`] for an unknown operator or entity, a malformed pair, or an
/// operator without its key; the home's errors loading a key.
pub fn redactor(
    home: &Home,
    policy: &PiiPolicy,
    o: &RedactOverrides,
) -> Result<(Redactor, BTreeMap<String, Operator>), IngestError> {
    let mut r = Redactor::new(op(
        o.default.as_deref().unwrap_or(&policy.default),
        "the default operator",
    )?);
    let mut entities: Vec<(String, String)> = policy
        .entities
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for e in &o.entities {
        entities.push(pair(e, "--entity")?);
    }
    for (name, text) in &entities {
        let entity = name
            .parse::<Entity>()
            .map_err(|e| IngestError::Redaction(format!("entity operator: {e}")))?;
        r = r.entity(entity, op(text, &format!("the operator for {name}"))?);
    }
    let mut columns = BTreeMap::new();
    for (k, v) in &policy.columns {
        columns.insert(k.clone(), op(v, &format!("the operator for column {k}"))?);
    }
    for c in &o.columns {
        let (k, v) = pair(c, "--column")?;
        let parsed = op(&v, &format!("the operator for column {k}"))?;
        columns.insert(k, parsed);
    }
    let col_ops: Vec<Operator> = columns.values().copied().collect();
    if r.uses(Operator::Hash, &col_ops) {
        let (key, _) = home.pii_key()?;
        r = r
            .hash_key(key)
            .map_err(|e| IngestError::Redaction(e.to_string()))?;
    }
    if r.uses(Operator::Encrypt, &col_ops) {
        let list: Vec<String> = if o.recipients.is_empty() {
            let (id, _) = home.age_identity()?;
            vec![id.recipient()]
        } else {
            o.recipients.clone()
        };
        let parsed = list
            .iter()
            .map(|s| {
                s.trim().parse::<age::x25519::Recipient>().map_err(|_| {
                    IngestError::Redaction(format!("{s:?} is not an age recipient (age1…)"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        r = r.recipients(parsed);
    }
    r.check(&col_ops)
        .map_err(|e| IngestError::Redaction(e.to_string()))?;
    Ok((r, columns))
}
