//! Redaction operators, chosen per entity or per column.
//!
//! * `replace`: `<TYPE>`.
//! * `mask` / `mask:N`: letters and digits become `*` but the last N (default 4); punctuation
//!   stays, so `***-**-6789` still reads as an SSN.
//! * `remove`: the value disappears.
//! * `hash`: `<TYPE:16 hex>`, the first 64 bits of HMAC-SHA256 under the pseudonymisation key
//!   over the entity and the value, so the same value gets the same pseudonym in every row and
//!   every file redacted with that key, and nobody without the key can test a guess.
//! * `encrypt`: `<TYPE:age:BASE64>`, the value encrypted with age to the given recipients;
//!   [`reveal`] turns it back with a matching identity (reversible pseudonymisation).
//! * `keep`: leave it (an explicit exception).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Entity, Finding, PiiError};

/// How a finding is redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operator {
    /// Leave the value as it is.
    Keep,
    /// Replace with `<TYPE>`.
    Replace,
    /// Mask all but the last N letters and digits.
    Mask(usize),
    /// Remove the value.
    Remove,
    /// A keyed-hash pseudonym (HMAC-SHA256).
    Hash,
    /// Encrypt with age (reversible).
    Encrypt,
}

impl FromStr for Operator {
    type Err = PiiError;
    fn from_str(s: &str) -> Result<Self, PiiError> {
        let bad = || {
            PiiError::Config(format!(
                "unknown redaction operator {s:?}: use replace, mask, mask:N, remove, hash, encrypt or keep"
            ))
        };
        Ok(match s.to_ascii_lowercase().as_str() {
            "keep" => Self::Keep,
            "replace" => Self::Replace,
            "mask" => Self::Mask(4),
            "remove" => Self::Remove,
            "hash" => Self::Hash,
            "encrypt" => Self::Encrypt,
            other => match other.strip_prefix("mask:") {
                Some(n) => Self::Mask(n.parse().map_err(|_| bad())?),
                None => return Err(bad()),
            },
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keep => f.write_str("keep"),
            Self::Replace => f.write_str("replace"),
            Self::Mask(n) => write!(f, "mask:{n}"),
            Self::Remove => f.write_str("remove"),
            Self::Hash => f.write_str("hash"),
            Self::Encrypt => f.write_str("encrypt"),
        }
    }
}

/// Domain separation for the pseudonym HMAC.
const HMAC_DOMAIN: &[u8] = b"rampart-pii-pseudonym-v1\0";
/// The shortest pseudonymisation key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// Applies operators to findings.
pub struct Redactor {
    default: Operator,
    entities: BTreeMap<Entity, Operator>,
    hash_key: Option<Zeroizing<Vec<u8>>>,
    recipients: Vec<age::x25519::Recipient>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("default", &self.default)
            .field("entities", &self.entities)
            .field("hash_key", &self.hash_key.as_ref().map(|_| "…"))
            .field("recipients", &self.recipients.len())
            .finish()
    }
}

impl Redactor {
    /// A redactor applying `default` to every entity.
    #[must_use]
    pub const fn new(default: Operator) -> Self {
        Self {
            default,
            entities: BTreeMap::new(),
            hash_key: None,
            recipients: Vec::new(),
        }
    }

    /// Uses `op` for `entity`.
    #[must_use]
    pub fn entity(mut self, entity: Entity, op: Operator) -> Self {
        self.entities.insert(entity, op);
        self
    }

    /// The pseudonymisation key for `hash`.
    ///
    /// # Errors
    /// [`PiiError::Config`] for a key shorter than [`MIN_KEY_BYTES`].
    pub fn hash_key(mut self, key: Zeroizing<Vec<u8>>) -> Result<Self, PiiError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(PiiError::Config(format!(
                "the pseudonymisation key must be at least {MIN_KEY_BYTES} bytes"
            )));
        }
        self.hash_key = Some(key);
        Ok(self)
    }

    /// The age recipients for `encrypt`.
    #[must_use]
    pub fn recipients(mut self, recipients: Vec<age::x25519::Recipient>) -> Self {
        self.recipients = recipients;
        self
    }

    /// Whether some entity (or `extra`, the column operators) uses `op`.
    #[must_use]
    pub fn uses(&self, op: Operator, extra: &[Operator]) -> bool {
        self.default == op || self.entities.values().any(|o| *o == op) || extra.contains(&op)
    }

    /// Checks that every operator in use has what it needs (`extra`: column operators).
    ///
    /// # Errors
    /// [`PiiError::Config`] when `hash` has no key or `encrypt` no recipient.
    pub fn check(&self, extra: &[Operator]) -> Result<(), PiiError> {
        if self.uses(Operator::Hash, extra) && self.hash_key.is_none() {
            return Err(PiiError::Config(
                "the hash operator needs a pseudonymisation key".into(),
            ));
        }
        if self.uses(Operator::Encrypt, extra) && self.recipients.is_empty() {
            return Err(PiiError::Config(
                "the encrypt operator needs an age recipient".into(),
            ));
        }
        Ok(())
    }

    /// The operator for `entity`, unless the column names one.
    #[must_use]
    pub fn operator(&self, entity: Entity, column: Option<Operator>) -> Operator {
        column.unwrap_or_else(|| self.entities.get(&entity).copied().unwrap_or(self.default))
    }

    /// `text` with every finding redacted. Findings must not overlap (as the detector returns
    /// them) and lie on char boundaries.
    ///
    /// # Errors
    /// [`PiiError::Config`] when an operator lacks its key, [`PiiError::Crypto`] when
    /// encryption fails.
    pub fn redact(
        &self,
        text: &str,
        findings: &[Finding],
        column: Option<Operator>,
    ) -> Result<String, PiiError> {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for f in findings {
            let (Some(before), Some(value)) = (text.get(at..f.start), text.get(f.start..f.end))
            else {
                continue;
            };
            out.push_str(before);
            self.apply(&mut out, f.entity, value, self.operator(f.entity, column))?;
            at = f.end;
        }
        out.push_str(text.get(at..).unwrap_or_default());
        Ok(out)
    }

    /// Appends `value` redacted by `op` to `out`.
    ///
    /// # Errors
    /// As [`Redactor::redact`].
    pub fn apply(
        &self,
        out: &mut String,
        entity: Entity,
        value: &str,
        op: Operator,
    ) -> Result<(), PiiError> {
        match op {
            Operator::Keep => out.push_str(value),
            Operator::Replace => {
                out.push('<');
                out.push_str(entity.name());
                out.push('>');
            }
            Operator::Mask(keep) => out.push_str(&mask(value, keep)),
            Operator::Remove => {}
            Operator::Hash => {
                let p = self.pseudonym(entity, value)?;
                out.push_str(&format!("<{}:{p}>", entity.name()));
            }
            Operator::Encrypt => {
                let c = self.encrypt(value)?;
                out.push_str(&format!("<{}:age:{c}>", entity.name()));
            }
        }
        Ok(())
    }

    /// The keyed-hash pseudonym of `value`: 16 hex digits.
    ///
    /// # Errors
    /// [`PiiError::Config`] without a key.
    pub fn pseudonym(&self, entity: Entity, value: &str) -> Result<String, PiiError> {
        let key = self.hash_key.as_ref().ok_or_else(|| {
            PiiError::Config("the hash operator needs a pseudonymisation key".into())
        })?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|_| PiiError::Config("bad pseudonymisation key".into()))?;
        mac.update(HMAC_DOMAIN);
        mac.update(entity.name().as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        let tag = mac.finalize().into_bytes();
        Ok(hex::encode(tag.get(..8).unwrap_or_default()))
    }

    fn encrypt(&self, value: &str) -> Result<String, PiiError> {
        if self.recipients.is_empty() {
            return Err(PiiError::Config(
                "the encrypt operator needs an age recipient".into(),
            ));
        }
        let enc = age::Encryptor::with_recipients(
            self.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| PiiError::Crypto(e.to_string()))?;
        let mut buf = Vec::with_capacity(value.len() + 256);
        let mut w = enc
            .wrap_output(&mut buf)
            .map_err(|e| PiiError::Crypto(e.to_string()))?;
        w.write_all(value.as_bytes())?;
        w.finish()?;
        Ok(base64::engine::general_purpose::STANDARD_NO_PAD.encode(&buf))
    }
}

/// Letters and digits but the last `keep` become `*`.
#[must_use]
pub fn mask(value: &str, keep: usize) -> String {
    let total = value.chars().filter(|c| c.is_alphanumeric()).count();
    let mut seen = 0;
    value
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                seen += 1;
                if seen + keep > total { c } else { '*' }
            } else {
                c
            }
        })
        .collect()
}

/// The longest `<TYPE:age:…>` token [`reveal`] decrypts, in bytes.
const MAX_TOKEN: usize = 64 << 10;

/// Decrypts every `<TYPE:age:BASE64>` token in `text` with `identities`.
///
/// # Errors
/// [`PiiError::Crypto`] naming the token's position when it does not decode or no identity
/// opens it.
pub fn reveal(text: &str, identities: &[age::x25519::Identity]) -> Result<String, PiiError> {
    reveal_with(text, identities, false)
}

/// [`reveal`]; with `safe_csv`, a revealed value a spreadsheet would read as a formula gets a
/// leading `'` ([`crate::safe_csv`]).
///
/// # Errors
/// As [`reveal`].
pub fn reveal_with(
    text: &str,
    identities: &[age::x25519::Identity],
    safe_csv: bool,
) -> Result<String, PiiError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find(":age:") {
        let head = rest.get(..i).unwrap_or_default();
        let Some(open) = head.rfind('<') else {
            out.push_str(rest.get(..i + 5).unwrap_or_default());
            rest = rest.get(i + 5..).unwrap_or_default();
            offset += i + 5;
            continue;
        };
        let ty = head.get(open + 1..).unwrap_or_default();
        let tail = rest.get(i + 5..).unwrap_or_default();
        let close = tail.find('>').filter(|&c| c <= MAX_TOKEN);
        let (Some(close), true) = (close, ty.parse::<Entity>().is_ok()) else {
            out.push_str(rest.get(..i + 5).unwrap_or_default());
            rest = tail;
            offset += i + 5;
            continue;
        };
        let b64 = tail.get(..close).unwrap_or_default();
        let bad = |why: String| PiiError::Crypto(format!("token at byte {}: {why}", offset + open));
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|e| bad(e.to_string()))?;
        let dec = age::Decryptor::new(&bytes[..]).map_err(|e| bad(e.to_string()))?;
        let mut r = dec
            .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
            .map_err(|e| bad(e.to_string()))?;
        let mut plain = Vec::new();
        r.by_ref().take(MAX_TOKEN as u64).read_to_end(&mut plain)?;
        out.push_str(head.get(..open).unwrap_or_default());
        if safe_csv && crate::safe_csv::is_formula(&plain) {
            out.push('\'');
        }
        out.push_str(&String::from_utf8(plain).map_err(|_| bad("not UTF-8".into()))?);
        let used = i + 5 + close + 1;
        rest = rest.get(used..).unwrap_or_default();
        offset += used;
    }
    out.push_str(rest);
    Ok(out)
}
