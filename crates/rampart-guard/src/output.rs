//! The output rails: what a model's answer must not carry.
//!
//! * secrets (keys, tokens, private keys, JWTs, high-entropy assignments) block the answer;
//! * personal data is redacted (`<EMAIL>`) or blocks, as the policy says;
//! * the canary token planted in the system prompt blocks (the prompt leaked), also when it
//!   is spaced out or hidden with invisible characters, reversed, or written in base64, hex,
//!   rot13, HTML character references or URL escapes;
//! * banned lexicon entries (whole words, normalised) block;
//! * links to hosts outside the allowed domains are removed, or block;
//! * harmful content ([`crate::harm`]) blocks or is flagged, per category.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rampart_pii::{Detector, DetectorOptions, Entity, Operator, Redactor};
use regex::Regex;

use crate::{Finding, Verdict};

/// What personal data in an answer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiAction {
    /// Not checked.
    Off,
    /// Replaced by its entity name.
    Redact,
    /// Blocks the answer.
    Block,
}

/// What a link outside the allowed domains does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    /// Replaced by `<link removed>`.
    Redact,
    /// Blocks the answer.
    Block,
}

/// Output-rail settings.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    /// Personal data.
    pub pii: PiiAction,
    /// Banned words and phrases.
    pub banned: Vec<String>,
    /// Hosts links may point to (a domain allows its subdomains); empty: any.
    pub allowed_domains: Vec<String>,
    /// What other links do.
    pub links: LinkAction,
    /// Harmful content, per category.
    pub harm: crate::harm::HarmPolicy,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            pii: PiiAction::Redact,
            banned: Vec::new(),
            allowed_domains: Vec::new(),
            links: LinkAction::Redact,
            harm: crate::harm::HarmPolicy::default(),
        }
    }
}

/// The compiled output rails.
pub struct OutputRails {
    config: OutputConfig,
    detector: Detector,
    banned: Option<AhoCorasick>,
    url: Regex,
    harm: crate::harm::HarmRail,
}

impl std::fmt::Debug for OutputRails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputRails")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

const fn is_secret(e: Entity) -> bool {
    matches!(
        e,
        Entity::AwsAccessKey | Entity::PrivateKey | Entity::Jwt | Entity::ApiToken | Entity::Secret
    )
}

impl OutputRails {
    /// The harm categories of an answer, its leet view and its decoded payloads; `None` if
    /// any of them is too full of lexicon words to read.
    fn harms(&self, text: &str, views: &crate::normalize::Views) -> Option<Vec<crate::harm::Harm>> {
        let mut all = self.harm.check(&views.plain)?;
        let mut more = Vec::new();
        if views.leet != views.plain {
            more.push(views.leet.clone());
        }
        for p in crate::decode::payloads(text, &crate::decode::Limits::default()) {
            more.push(crate::normalize::views(&p.text).leet);
        }
        for t in more {
            for h in self.harm.check(&t)? {
                if !all.iter().any(|a| a.category == h.category) {
                    all.push(h);
                }
            }
        }
        Some(all)
    }
}

/// Whether `host` is `domain` or one of its subdomains.
#[must_use]
pub fn host_allowed(host: &str, domains: &[String]) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    domains.iter().any(|d| {
        let d = d.trim_start_matches('.').to_ascii_lowercase();
        host == d
            || host
                .strip_suffix(&d)
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

impl OutputRails {
    /// Compiles the rails.
    ///
    /// # Errors
    /// A message if the PII engine or the lexicon does not compile.
    pub fn new(config: &OutputConfig) -> Result<Self, crate::GuardError> {
        let banned: Vec<String> = config
            .banned
            .iter()
            .map(|b| crate::normalize::views(b).plain.trim().to_owned())
            .filter(|b| !b.is_empty())
            .collect();
        Ok(Self {
            detector: Detector::new(DetectorOptions::default()).map_err(|e| e.to_string())?,
            banned: if banned.is_empty() {
                None
            } else {
                Some(
                    AhoCorasickBuilder::new()
                        .match_kind(MatchKind::LeftmostLongest)
                        .build(&banned)
                        .map_err(|e| e.to_string())?,
                )
            },
            url: Regex::new(r#"(?i)\b(?:https?://|www\.)([a-z0-9.-]+)(?::\d+)?[^\s<>"')\]]*"#)
                .map_err(|e| e.to_string())?,
            harm: crate::harm::HarmRail::new()?,
            config: config.clone(),
        })
    }

    /// Checks one answer.
    #[must_use]
    pub fn check(&self, text: &str, canary: Option<&str>) -> Verdict {
        let mut findings = Vec::new();
        let mut blocked = false;
        let views = crate::normalize::views(text);
        if let Some(c) = canary.filter(|c| !c.is_empty())
            && canary_leaked(text, &views.plain, c)
        {
            blocked = true;
            findings.push(Finding {
                rail: "canary",
                rule: "canary.system-prompt-leak".into(),
                family: None,
                detail: "the answer contains the system prompt's canary token".into(),
                weight: 1.0,
            });
        }
        if let Some(ac) = &self.banned {
            for m in ac.find_iter(&views.plain) {
                let t = &views.plain;
                let edge = |c: Option<char>| !c.is_some_and(char::is_alphanumeric);
                if edge(t.get(..m.start()).and_then(|s| s.chars().next_back()))
                    && edge(t.get(m.end()..).and_then(|s| s.chars().next()))
                {
                    blocked = true;
                    findings.push(Finding {
                        rail: "banned",
                        rule: format!("banned.{}", m.pattern().as_usize() + 1),
                        family: None,
                        detail: format!(
                            "banned lexicon entry {} of the policy",
                            m.pattern().as_usize() + 1
                        ),
                        weight: 1.0,
                    });
                    break;
                }
            }
        }
        // Harm is read in the answer, its leetspeak folded, and every payload decoded from it
        // (an answer asked for in base64 or hex is still the answer); not at all when every
        // category is off.
        let harm = &self.config.harm;
        let active = harm.default != crate::harm::HarmAction::Off
            || harm
                .categories
                .values()
                .any(|a| *a != crate::harm::HarmAction::Off);
        let harms = if active {
            self.harms(text, &views)
        } else {
            Some(Vec::new())
        };
        if harms.is_none() {
            blocked = true;
            findings.push(Finding {
                rail: "harm",
                rule: "harm.unreadable".into(),
                family: None,
                detail: "more harm-lexicon words than the rail reads in one answer".into(),
                weight: 1.0,
            });
        }
        for h in harms.unwrap_or_default() {
            let action = self.config.harm.action(h.category);
            if action == crate::harm::HarmAction::Off {
                continue;
            }
            let block = action == crate::harm::HarmAction::Block;
            blocked |= block;
            findings.push(Finding {
                rail: "harm",
                rule: format!("harm.{}", h.category.name()),
                family: None,
                detail: format!("{}{}", h.why, if block { "" } else { " (flagged)" }),
                weight: if block { 1.0 } else { 0.5 },
            });
        }
        // Personal data and secrets; URLs are the link rail's. The answer is also read as a
        // reader reads it (`normalize::reading_view`: no invisible characters, fullwidth and
        // other scripts' digits as ASCII digits, any dash as `-`, no marks drawn over
        // digits): when that shows more, it is what is checked and redacted, so none of
        // those carries data past the rail.
        let keep = |f: &rampart_pii::Finding| {
            if self.config.pii == PiiAction::Off {
                is_secret(f.entity)
            } else {
                f.entity != Entity::Url
            }
        };
        let raw: Vec<_> = self.detector.scan(text).into_iter().filter(keep).collect();
        let seen = crate::normalize::reading_view(text);
        let (basis, pii): (&str, Vec<_>) = if seen == text {
            (text, raw)
        } else {
            let shown: Vec<_> = self.detector.scan(&seen).into_iter().filter(keep).collect();
            if shown.len() > raw.len() {
                (&seen, shown)
            } else {
                (text, raw)
            }
        };
        for f in &pii {
            let secret = is_secret(f.entity);
            if secret || self.config.pii == PiiAction::Block {
                blocked = true;
            }
            findings.push(Finding {
                rail: "pii",
                rule: format!("pii.{}", f.entity.name().to_ascii_lowercase()),
                family: None,
                detail: format!(
                    "{} ({}) at bytes {}..{}",
                    f.entity.name(),
                    f.rule,
                    f.start,
                    f.end
                ),
                weight: if secret { 1.0 } else { 0.5 },
            });
        }
        // The edits, in `basis`'s offsets: personal data replaced by its entity's name,
        // disallowed links removed. A link covers any personal data inside it.
        let redactor = Redactor::new(Operator::Replace);
        let mut links = Vec::new();
        if !self.config.allowed_domains.is_empty() {
            for c in self.url.captures_iter(basis) {
                if let (Some(all), Some(host)) = (c.get(0), c.get(1))
                    && !host_allowed(host.as_str(), &self.config.allowed_domains)
                {
                    // Sentence punctuation after a link is not part of it.
                    let kept = all
                        .as_str()
                        .trim_end_matches(['.', ',', ';', ':', '!', '?']);
                    links.push(Edit {
                        start: all.start(),
                        end: all.start() + kept.len(),
                        with: "<link removed>".into(),
                    });
                    findings.push(Finding {
                        rail: "link",
                        rule: "link.domain-not-allowed".into(),
                        family: None,
                        detail: format!(
                            "a link to {}, which is not an allowed domain",
                            host.as_str()
                        ),
                        weight: 1.0,
                    });
                    if self.config.links == LinkAction::Block {
                        blocked = true;
                    }
                }
            }
        }
        let mut edits: Vec<Edit> = Vec::new();
        for f in &pii {
            if links.iter().any(|l| l.start < f.end && f.start < l.end) {
                continue;
            }
            let mut with = String::new();
            let value = basis.get(f.start..f.end).unwrap_or_default();
            if redactor
                .apply(&mut with, f.entity, value, Operator::Replace)
                .is_err()
            {
                with = "<answer withheld>".into();
            }
            edits.push(Edit {
                start: f.start,
                end: f.end,
                with,
            });
        }
        if self.config.links == LinkAction::Redact {
            edits.extend(links);
        }
        edits.sort_by_key(|e| (e.start, e.end));
        let redacted = apply_edits(basis, &edits);
        let changed = redacted != text;
        Verdict {
            blocked,
            score: if blocked { 1.0 } else { 0.0 },
            findings,
            normalisation: None,
            redacted: (changed && !blocked).then_some(redacted),
            refusal: None,
            edits: std::ptr::eq(basis, text).then_some(edits),
        }
    }
}

/// One redaction: the bytes `start..end` of the checked text become `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// First byte replaced.
    pub start: usize,
    /// One past the last byte replaced.
    pub end: usize,
    /// The replacement.
    pub with: String,
}

/// `text` with `edits` (sorted, disjoint, on char boundaries) applied; an edit that overlaps
/// the one before it or does not lie in `text` is skipped.
#[must_use]
pub fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in edits {
        let (Some(before), true) = (text.get(at..e.start), text.get(e.start..e.end).is_some())
        else {
            continue;
        };
        out.push_str(before);
        out.push_str(&e.with);
        at = e.end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out
}

/// The shortest canary (letters and digits) looked for reversed, encoded or escaped.
const MIN_TRANSFORMED_CANARY: usize = 8;

/// Letters and digits only, lower case (no leet folding: a canary is mostly digits).
fn squeeze(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// HTML character references (`&#114;`, `&#x72;`, and the five named ones) decoded.
fn html_decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or_default());
        rest = rest.get(i..).unwrap_or_default();
        let end = rest.bytes().take(12).position(|b| b == b';');
        let decoded = end.and_then(|e| {
            let name = rest.get(1..e)?;
            let c = match name {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let num = name.strip_prefix('#')?;
                    let v = match num.strip_prefix(['x', 'X']) {
                        Some(h) => u32::from_str_radix(h, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(v)?
                }
            };
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = rest.get(len..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = rest.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// The base64 of `canary` as it appears inside a longer base64 text, for each of the three
/// alignments: the characters that only the canary's bits decide.
fn base64_needles(canary: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    let n = canary.len();
    (0..3)
        .filter_map(|k| {
            let mut bytes = vec![0u8; k];
            bytes.extend_from_slice(canary);
            bytes.extend_from_slice(&[0, 0]);
            let enc = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
            // Character i holds bits 6i..6i+6; the canary's are 8k..8(k+n).
            let first = (8 * k).div_ceil(6);
            let last = (8 * (k + n)).checked_sub(6)? / 6;
            enc.get(first..=last).map(str::to_owned)
        })
        .filter(|needle| needle.len() >= 8)
        .collect()
}

/// Whether the answer carries the canary, as written, normalised, spaced out, reversed, or in
/// base64, hex, rot13, HTML character references or URL escapes.
fn canary_leaked(text: &str, plain: &str, canary: &str) -> bool {
    let c_plain = crate::normalize::views(canary).plain;
    let c_squeezed = squeeze(&c_plain);
    if text.contains(canary) || (!c_plain.is_empty() && plain.contains(&c_plain)) {
        return true;
    }
    let squeezed = squeeze(plain);
    if c_squeezed.is_empty() {
        return false;
    }
    if squeezed.contains(&c_squeezed) {
        return true;
    }
    // Transformed forms only for a canary long enough not to occur by chance.
    if c_squeezed.chars().count() < MIN_TRANSFORMED_CANARY {
        return false;
    }
    let reversed: String = c_squeezed.chars().rev().collect();
    let rot13 = crate::decode::rot13(&c_squeezed);
    if [&reversed, &rot13]
        .iter()
        .any(|needle| squeezed.contains(needle.as_str()))
    {
        return true;
    }
    // Hex, also written byte by byte as `0x72 0x6b` or `\x72\x6b`: the prefixes go, then
    // everything that is not a hex digit.
    let hex: String = canary.bytes().map(|b| format!("{b:02x}")).collect();
    let hex_digits: String = text
        .to_lowercase()
        .replace("0x", "")
        .replace("\\x", "")
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    if hex_digits.contains(&hex) {
        return true;
    }
    // Escaped forms, decoded, then compared as above.
    let html = text.contains('&').then(|| html_decode(text));
    let url = text
        .contains('%')
        .then(|| String::from_utf8_lossy(&crate::decode::percent_decode(text)).into_owned());
    if [html, url]
        .iter()
        .flatten()
        .any(|u| u != text && squeeze(&crate::normalize::views(u).plain).contains(&c_squeezed))
    {
        return true;
    }
    // Base64, in either alphabet, with line breaks and spaces removed.
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    base64_needles(canary.as_bytes())
        .iter()
        .any(|needle| compact.contains(needle.as_str()))
}
