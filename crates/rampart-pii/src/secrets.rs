//! Keys and tokens of the providers people use, by their documented layout and, where the
//! provider publishes one, their checksum: OpenAI, Anthropic, Google, GitLab, Slack, Stripe,
//! SendGrid, Twilio, npm, Hugging Face, Discord webhooks and GitHub; Azure storage and
//! Service Bus keys, SAS signatures (`sig=` of 32 bytes) and Entra ID client secrets;
//! passwords inside connection strings and URLs.
//!
//! Documentation placeholders (`sk-...`, `hf_xxxx`, `AIzaSyXXXX…`, `postgres://user:password@`)
//! and test-mode keys (`sk_test_…`) are look-alikes, not leaks.

use crate::{Candidate, Entity, boundary_before, cand, char_classes, is_placeholder};

/// The alternatives of the detector's prefixed-token pattern that this module classifies:
/// each starts with a literal, so the pattern's prefilter still skips most of a text.
pub(crate) const PATTERN: &str = concat!(
    r"|(?:sk-[A-Za-z0-9_\-]{20,})",
    r"|(?:AIza[0-9A-Za-z_\-]{35})",
    r"|(?:GOCSPX-[A-Za-z0-9_\-]{28})",
    r"|(?:ya29\.[0-9A-Za-z_\-]{30,})",
    r"|(?:gl(?:pat|dt|ptt|rt|cbt|oas|ft|imt|soat|agent)-[0-9A-Za-z_\-.]{20,})",
    r"|(?:GR1348941[0-9A-Za-z_\-]{20})",
    r"|(?:xapp-[0-9]-[A-Za-z0-9\-]{20,})",
    r"|(?:xoxe\.xox[bp]-[A-Za-z0-9\-]{20,})",
    r"|(?:hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,32})",
    r"|(?:whsec_[A-Za-z0-9]{24,})",
    r"|(?:SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})",
    r"|(?:SK[0-9a-f]{32})",
    r"|(?:npm_[A-Za-z0-9]{36})",
    r"|(?:(?:hf_|api_org_)[A-Za-z]{34})",
    r"|(?:(?:AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{40,88}={0,2})",
    r"|(?:sig=[A-Za-z0-9%+/]{40,70})",
    r"|(?:discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_\-]{60,68})",
);

/// What a match of [`PATTERN`] (or of the GitHub alternatives before it) is, if anything:
/// entity, rule, confidence, and the length of the value when only part of the match is the
/// secret.
pub(crate) fn classify(s: &str, glued: bool) -> Option<(Entity, &'static str, f32, usize)> {
    let b = s.as_bytes();
    let token = |rule: &'static str, conf: f32| Some((Entity::ApiToken, rule, conf, s.len()));
    if s.starts_with("xox") || s.starts_with("sk_") || s.starts_with("rk_") {
        // A prefix inside an identifier (`mask_test_configuration…`) is no token: glued to a
        // word, the body must look random (digits and letters of both cases; a Slack token's
        // digits and letters).
        let body = b.get(4..).unwrap_or_default();
        let slack = s.starts_with("xox");
        let random = if slack {
            body.iter().any(u8::is_ascii_digit) && char_classes(body) >= 2
        } else {
            char_classes(body) >= 3
        };
        return ((!glued || random) && !is_placeholder(s)).then_some((
            Entity::ApiToken,
            if slack { "slack-token" } else { "stripe-key" },
            0.9,
            s.len(),
        ));
    }
    if placeholder(s) {
        return None;
    }
    if let Some(rest) = s.strip_prefix("sk-") {
        return openai_style(s, rest, glued);
    }
    if s.starts_with("gh") && b.get(3) == Some(&b'_') || s.starts_with("npm_") {
        // Classic GitHub tokens and npm's carry a CRC32 of their 30 random characters; a
        // longer body is a newer layout whose check is not published.
        let body = s.get(4..).unwrap_or_default();
        return match body.len() {
            36 if crc32_base62_valid(body) => token(
                if s.starts_with("npm_") {
                    "npm-token"
                } else {
                    "github-token"
                },
                0.95,
            ),
            36 => None,
            _ if s.starts_with("gh") => token("github-token", 0.85),
            _ => None,
        };
    }
    if s.starts_with("github_pat_") {
        return token("github-token", 0.9);
    }
    if s.starts_with("AIza") {
        return (char_classes(b) >= 3).then_some((
            Entity::ApiToken,
            "google-api-key",
            0.9,
            s.len(),
        ));
    }
    if s.starts_with("GOCSPX-") || s.starts_with("ya29.") {
        return (char_classes(b.get(5..).unwrap_or_default()) >= 2).then_some((
            Entity::ApiToken,
            "google-oauth",
            0.9,
            s.len(),
        ));
    }
    if s.starts_with("gl") || s.starts_with("GR1348941") {
        let t = s.trim_end_matches('.');
        let body = t.split_once('-').map_or(t, |(_, r)| r).as_bytes();
        return (char_classes(body) >= 2 && !glued).then_some((
            Entity::ApiToken,
            "gitlab-token",
            0.9,
            t.len(),
        ));
    }
    if s.starts_with("xapp-") || s.starts_with("hooks.slack.com") {
        return token("slack-token", 0.9);
    }
    if s.starts_with("whsec_") {
        return token("stripe-key", 0.9);
    }
    if s.starts_with("SG.") {
        return token("sendgrid-key", 0.95);
    }
    if s.starts_with("SK") {
        // Twilio API key SIDs: 32 lower-case hex digits, both letters and digits among them.
        let hex = b.get(2..).unwrap_or_default();
        return (!glued
            && hex.iter().any(u8::is_ascii_digit)
            && hex.iter().any(u8::is_ascii_alphabetic))
        .then_some((Entity::ApiToken, "twilio-api-key", 0.85, s.len()));
    }
    if s.starts_with("hf_") || s.starts_with("api_org_") {
        let body = s.rsplit('_').next().unwrap_or_default().as_bytes();
        return (char_classes(body) >= 2).then_some((
            Entity::ApiToken,
            "huggingface-token",
            0.9,
            s.len(),
        ));
    }
    if let Some(sig) = s.strip_prefix("sig=") {
        // An Azure shared access signature: the base64 of an HMAC-SHA256 (32 bytes), percent-
        // encoded in the URL. Anything else named `sig` is not one.
        let decoded = sig
            .replace("%2B", "+")
            .replace("%2b", "+")
            .replace("%2F", "/")
            .replace("%2f", "/")
            .replace("%3D", "=")
            .replace("%3d", "=");
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &decoded);
        return (!glued && bytes.is_ok_and(|b| b.len() == 32) && !placeholder(sig)).then_some((
            Entity::Secret,
            "azure-sas-signature",
            0.9,
            s.len(),
        ));
    }
    if s.starts_with("discord") {
        let token = s.rsplit('/').next().unwrap_or_default().as_bytes();
        return (char_classes(token) >= 3).then_some((
            Entity::ApiToken,
            "discord-webhook",
            0.95,
            s.len(),
        ));
    }
    if let Some((_, key)) = s.split_once('=') {
        // Azure storage account keys are 64 bytes (88 base64 characters), Service Bus and
        // Event Hubs keys 32 (44): the value after `AccountKey=` / `SharedAccessKey=`.
        let key = key.as_bytes();
        let whole = matches!(key.len(), 44 | 88) && key.ends_with(b"=");
        return (whole && char_classes(key) >= 3).then_some((
            Entity::Secret,
            "azure-key",
            0.95,
            s.len(),
        ));
    }
    None
}

/// OpenAI keys (`sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-`, marked by `T3BlbkFJ`, "OpenAI"
/// in base64), Anthropic keys (`sk-ant-api03-…AA`), and the `sk-` keys of the many services
/// that copied the layout: a random body of 32 characters or more.
fn openai_style(s: &str, rest: &str, glued: bool) -> Option<(Entity, &'static str, f32, usize)> {
    let b = rest.as_bytes();
    if rest.starts_with("ant-") && s.len() >= 90 && s.ends_with("AA") {
        return Some((Entity::ApiToken, "anthropic-key", 0.95, s.len()));
    }
    if rest.contains("T3BlbkFJ") {
        return Some((Entity::ApiToken, "openai-key", 0.95, s.len()));
    }
    let digits = b.iter().any(u8::is_ascii_digit);
    let letters = b.iter().any(u8::is_ascii_alphabetic);
    (!glued && b.len() >= 32 && digits && letters && crate::checks::entropy(b) >= 3.5).then_some((
        Entity::ApiToken,
        "openai-style-key",
        0.85,
        s.len(),
    ))
}

/// A documentation placeholder: runs of one character (`XXXX`, `0000`, `....`), words such as
/// `your`, `example`, `replace`, `dummy`, or the ellipsis of a shortened key.
fn placeholder(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    is_placeholder(s)
        || [
            "your",
            "replace",
            "dummy",
            "sample",
            "placeholder",
            "fake",
            "abcdef",
            "123456",
            "...",
        ]
        .iter()
        .any(|w| l.contains(w))
        || s.as_bytes()
            .windows(6)
            .any(|w| w.iter().all(|&c| c == w.first().copied().unwrap_or(0)))
}

/// Stripe's test-mode keys (they reach no real account) and publishable keys (public by
/// design), wherever they are assigned.
pub(crate) fn test_or_public_key(v: &str) -> bool {
    ["sk_test_", "rk_test_", "pk_test_", "pk_live_"]
        .iter()
        .any(|p| v.starts_with(p))
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// GitHub's and npm's token check: the last six characters are the CRC32 of the first 30,
/// in base 62 (digits, upper, lower), padded with zeros.
pub(crate) fn crc32_base62_valid(body: &str) -> bool {
    let (Some(random), Some(sum)) = (body.get(..30), body.get(30..)) else {
        return false;
    };
    if sum.len() != 6 {
        return false;
    }
    let mut value: u64 = 0;
    for c in sum.bytes() {
        let Some(d) = BASE62.iter().position(|&x| x == c) else {
            return false;
        };
        value = value * 62 + d as u64;
    }
    value == u64::from(crc32fast::hash(random.as_bytes()))
}

/// Passwords in connection strings and URLs (`postgres://app:S3cret@db`,
/// `https://user:pass@host`, `redis://:pass@cache`): the password is the finding, so a
/// redacted URL still names its host.
pub(crate) fn url_passwords(re: &regex::Regex, text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    if memchr::memmem::find(bytes, b"://").is_none() || memchr::memchr(b'@', bytes).is_none() {
        return;
    }
    for caps in re.captures_iter(text) {
        let (Some(scheme), Some(pass)) = (caps.get(1), caps.get(3)) else {
            continue;
        };
        if !boundary_before(bytes, scheme.start()) {
            continue;
        }
        let p = pass.as_str();
        let l = p.to_ascii_lowercase();
        let doc = [
            "password",
            "passwd",
            "pass",
            "pwd",
            "secret",
            "mypassword",
            "yourpassword",
            "your_password",
            "your-password",
            "changeme",
            "pw",
            "p",
            "x",
        ];
        if doc.contains(&l.as_str())
            || is_placeholder(p)
            || p.starts_with(['$', '{', '<', '%', '*', '['])
            || classify(p, false).is_some()
        {
            continue;
        }
        let web = matches!(
            scheme.as_str().to_ascii_lowercase().as_str(),
            "http" | "https" | "ftp" | "ftps" | "ws" | "wss"
        );
        let rule = if web {
            "url-credentials"
        } else {
            "connection-string-password"
        };
        out.push(cand(Entity::Secret, pass.start(), pass.end(), 0.95, rule));
    }
}

/// The pattern [`url_passwords`] runs: scheme, user (may be empty), password, `@` and a host.
pub(crate) const URL_PASSWORD: &str =
    r#"(?i)([a-z][a-z0-9+.\-]{1,20})://([^\s:/@"'<>]{0,64}):([^\s@/"'<>]{1,128})@[a-z0-9\[]"#;

/// Whether `at` follows the user name of a URL (`scheme://user:` then `at`): what looks like
/// an e-mail address there is a password and a host.
pub(crate) fn after_url_user(bytes: &[u8], at: usize) -> bool {
    if at == 0 || bytes.get(at - 1) != Some(&b':') {
        return false;
    }
    let from = at.saturating_sub(256);
    let head = bytes.get(from..at - 1).unwrap_or_default();
    let token = head
        .iter()
        .rposition(u8::is_ascii_whitespace)
        .map_or(head, |i| head.get(i + 1..).unwrap_or_default());
    memchr::memmem::find(token, b"://").is_some_and(|i| {
        token
            .get(i + 3..)
            .is_some_and(|user| !user.contains(&b'/') && !user.contains(&b'@'))
    })
}

/// Microsoft Entra ID (Azure AD) client secrets: three characters, a digit, `Q~`, then 31 to
/// 34 more (`abc8Q~…`).
pub(crate) fn entra_secrets(text: &str, out: &mut Vec<Candidate>) {
    let bytes = text.as_bytes();
    let ok = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'~' | b'.' | b'-');
    for q in memchr::memmem::find_iter(bytes, b"Q~") {
        let Some(start) = q.checked_sub(4) else {
            continue;
        };
        if !bytes.get(q - 1).is_some_and(u8::is_ascii_digit)
            || !bytes
                .get(start..q)
                .is_some_and(|h| h.iter().all(|&c| ok(c)))
            || (start > 0 && bytes.get(start - 1).is_some_and(|&c| ok(c)))
        {
            continue;
        }
        let mut end = q + 2;
        while bytes.get(end).is_some_and(|&c| ok(c)) && end - start < 48 {
            end += 1;
        }
        let len = end - start;
        let tail = bytes.get(q + 2..end).unwrap_or_default();
        if (37..=40).contains(&len)
            && !bytes.get(end).is_some_and(|&c| ok(c))
            && char_classes(tail) >= 3
            && !placeholder(text.get(start..end).unwrap_or_default())
        {
            out.push(cand(Entity::Secret, start, end, 0.9, "azure-client-secret"));
        }
    }
}
