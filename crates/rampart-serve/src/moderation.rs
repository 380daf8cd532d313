//! The optional external moderation hook of the guard proxy (`[guard.moderation]`): an
//! answer that passed rampart's own output rails is sent to an OpenAI-compatible
//! `/v1/moderations` endpoint (`{"input": TEXT, "model": M}` → `results[].categories`), and
//! each category it flags blocks the answer or is flagged and logged, as the policy says per
//! category. An endpoint that fails, times out or answers out of shape blocks (fail closed),
//! unless the policy says `on_error = "flag"`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

/// What a flagged category does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// The answer is withheld.
    Block,
    /// The answer passes; the category is audited.
    Flag,
}

impl Act {
    /// `block` or `flag`.
    ///
    /// # Errors
    /// Anything else, named.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "block" => Ok(Self::Block),
            "flag" => Ok(Self::Flag),
            other => Err(format!(
                "{other:?}: a moderation action is \"block\" or \"flag\""
            )),
        }
    }
}

/// Most answer text sent to the endpoint, in bytes (the end of a longer answer is sent too).
pub const MAX_INPUT: usize = 64 << 10;
/// Most of the endpoint's answer read, in bytes.
pub const MAX_ANSWER: usize = 1 << 20;

/// The hook.
pub struct Moderation {
    /// The endpoint, `…/v1/moderations`.
    pub url: String,
    /// Its bearer key (from the environment; never logged).
    pub key: Option<zeroize::Zeroizing<String>>,
    /// The `model` field, if any.
    pub model: Option<String>,
    /// How long an answer may take.
    pub timeout: Duration,
    /// Actions by category (`self-harm` also covers `self-harm/intent` unless that is listed).
    pub categories: BTreeMap<String, Act>,
    /// The action of a category not listed.
    pub default: Act,
    /// What an endpoint that cannot answer does.
    pub on_error: Act,
}

impl std::fmt::Debug for Moderation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moderation")
            .field("url", &self.url)
            .field("key", &self.key.as_ref().map(|_| "…"))
            .field("model", &self.model)
            .field("categories", &self.categories)
            .field("default", &self.default)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

/// What the endpoint said.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Categories that block.
    pub blocked: Vec<String>,
    /// Categories flagged and logged.
    pub flagged: Vec<String>,
    /// Why the endpoint could not be used, when it could not.
    pub error: Option<String>,
}

impl Outcome {
    /// Whether the answer must be withheld.
    #[must_use]
    pub fn blocks(&self, on_error: Act) -> bool {
        !self.blocked.is_empty() || (self.error.is_some() && on_error == Act::Block)
    }
}

impl Moderation {
    /// The action for `category`: its own, else its parent's, else the default.
    #[must_use]
    pub fn act(&self, category: &str) -> Act {
        let mut c = category;
        loop {
            if let Some(a) = self.categories.get(c) {
                return *a;
            }
            match c.rsplit_once('/') {
                Some((parent, _)) => c = parent,
                None => return self.default,
            }
        }
    }

    /// Sends `text` to the endpoint and sorts what it flags.
    pub async fn check(&self, client: &reqwest::Client, text: &str) -> Outcome {
        let input = if text.len() > MAX_INPUT {
            let half = MAX_INPUT / 2;
            let head = text
                .get(..text.floor_char_boundary(half))
                .unwrap_or_default();
            let tail = text
                .get(text.ceil_char_boundary(text.len() - half)..)
                .unwrap_or_default();
            vec![head, tail]
        } else {
            vec![text]
        };
        let body = match &self.model {
            Some(m) => json!({"input": input, "model": m}),
            None => json!({"input": input}),
        };
        let mut req = client
            .post(&self.url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(k) = &self.key {
            req = req.bearer_auth(k.as_str());
        }
        let fail = |why: String| Outcome {
            error: Some(why),
            ..Outcome::default()
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return fail(format!(
                    "the moderation endpoint did not answer: {}",
                    e.without_url()
                ));
            }
        };
        let status = resp.status();
        if !status.is_success() {
            return fail(format!("the moderation endpoint answered {status}"));
        }
        let Ok(bytes) = crate::upstream::read_bounded(resp, MAX_ANSWER).await else {
            return fail("the moderation endpoint's answer is too long or cut".into());
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            return fail("the moderation endpoint's answer is not JSON".into());
        };
        let Some(results) = v
            .get("results")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
        else {
            return fail("the moderation endpoint's answer has no \"results\"".into());
        };
        let mut out = Outcome::default();
        for r in results {
            let Some(cats) = r.get("categories").and_then(Value::as_object) else {
                return fail("a moderation result has no \"categories\" object".into());
            };
            for (name, on) in cats {
                if on.as_bool() != Some(true) {
                    continue;
                }
                let list = match self.act(name) {
                    Act::Block => &mut out.blocked,
                    Act::Flag => &mut out.flagged,
                };
                if !list.contains(name) {
                    list.push(name.clone());
                }
            }
            // Flagged without a category this side knows: the endpoint's verdict stands.
            if r.get("flagged").and_then(Value::as_bool) == Some(true)
                && out.blocked.is_empty()
                && out.flagged.is_empty()
                && self.default == Act::Block
            {
                out.blocked.push("flagged".into());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_takes_its_own_action_else_its_parents_else_the_default() {
        let m = Moderation {
            url: "http://127.0.0.1:9/v1/moderations".into(),
            key: Some(zeroize::Zeroizing::new("sk-secret".into())),
            model: None,
            timeout: Duration::from_millis(50),
            categories: BTreeMap::from([
                ("self-harm".to_owned(), Act::Flag),
                ("self-harm/instructions".to_owned(), Act::Block),
            ]),
            default: Act::Block,
            on_error: Act::Block,
        };
        assert_eq!(m.act("self-harm/intent"), Act::Flag);
        assert_eq!(m.act("self-harm/instructions"), Act::Block);
        assert_eq!(m.act("violence"), Act::Block);
        assert!(Act::parse("allow").is_err());
        assert!(!format!("{m:?}").contains("sk-secret"));
        // Nothing listens on port 9: the endpoint fails, and that blocks.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let out = rt.block_on(m.check(&reqwest::Client::new(), "hello"));
        assert!(out.error.is_some() && out.blocks(Act::Block) && !out.blocks(Act::Flag));
    }
}
