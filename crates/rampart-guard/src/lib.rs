//! Guardrails for LLM applications: a check in front of the model and one behind it.
//!
//! * **Input rail** ([`Guard::check_input`]): the text is normalised ([`normalize`]), payloads
//!   hidden in it are decoded ([`decode`]), and the injection and jailbreak [`rules`] run on
//!   every view of the text and of each payload; the [`classifier`] (hashed n-grams and a
//!   logistic regression) scores the text and each payload; the weights of the rules that fire
//!   and the classifier's probability combine into one score, blocked at the policy's
//!   threshold. Denied [`topics`] refuse with their
//!   canned message.
//! * **Output rail** ([`Guard::check_output`]): personal data and secrets (rampart-pii's
//!   engine: redacted or blocked), a leaked canary token, banned lexicon entries, links to
//!   domains not on the allowed list; with [`Guard::check_answer`], answers that restate the
//!   request's system prompt ([`leak`]: copied, encoded, paraphrased or translated).
//! * **Tool-call rail** ([`Guard::check_tool_call`], [`tools`]): a call the model proposes
//!   must name an allowed tool, send to allowed hosts, carry no conversation text in a URL,
//!   and send to no address that only a document gave.
//!
//! Findings name the rail, rule and family, never the matched secret.

pub mod batch;
pub mod classifier;
pub mod decode;
pub mod harm;
pub mod leak;
pub mod lexicon;
pub mod normalize;
pub mod output;
pub mod rules;
pub mod tools;
pub mod topics;

use serde::Serialize;

/// Guard settings (from `[guard]` in `rampart.toml`).
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Input texts scoring at or above this are blocked.
    pub threshold: f64,
    /// Denied topics.
    pub topics: Vec<topics::Topic>,
    /// Output rails.
    pub output: output::OutputConfig,
    /// Decoding limits.
    pub decode: decode::Limits,
    /// Longest text checked, in bytes; longer ones are blocked as such.
    pub max_bytes: usize,
    /// Whether the learned classifier scores input texts (the rules always run).
    pub classifier: bool,
    /// The tool-call rail (`[guard.tools]`).
    pub tools: tools::ToolPolicy,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            topics: Vec::new(),
            output: output::OutputConfig::default(),
            decode: decode::Limits::default(),
            max_bytes: 1 << 20,
            classifier: true,
            tools: tools::ToolPolicy::default(),
        }
    }
}

/// One reason in a verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// `injection`, `obfuscation`, `topic`, `pii`, `canary`, `leak`, `banned`, `link`, `size`.
    pub rail: &'static str,
    /// The rule (or entity, topic, lexicon entry id).
    pub rule: String,
    /// The rule's family, for injection findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<&'static str>,
    /// Where or how it matched, for people (never the secret itself).
    pub detail: String,
    /// Its weight in the score (1 for findings that block by themselves).
    pub weight: f64,
}

/// What the guard decided about one text.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Whether the text must not pass.
    pub blocked: bool,
    /// The injection score in [0, 1] (input) or 1/0 (output).
    pub score: f64,
    /// Why.
    pub findings: Vec<Finding>,
    /// What normalisation changed (input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalisation: Option<normalize::Changes>,
    /// The text with redactions applied, when something was redacted and nothing blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
    /// The message to answer with instead, when blocked by a topic rail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// The redactions as edits of the checked text (output rail): byte ranges of it, sorted
    /// and disjoint, each with its replacement; applied in order they give
    /// [`Verdict::redacted`]. `None` when the redaction was made on the text's reading view
    /// (other scripts' digits, invisible characters), whose offsets are not the text's: a
    /// caller that must place the edits itself (a stream) then withholds instead.
    #[serde(skip)]
    pub edits: Option<Vec<output::Edit>>,
}

/// Errors building a guard.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A rule, topic or lexicon entry that does not compile, or a PII engine failure.
    #[error("{0}")]
    Config(String),
}

impl From<String> for GuardError {
    fn from(s: String) -> Self {
        Self::Config(s)
    }
}

impl From<&str> for GuardError {
    fn from(s: &str) -> Self {
        Self::Config(s.to_owned())
    }
}

/// The compiled rails.
#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    rules: rules::Rules,
    topics: topics::Topics,
    output: output::OutputRails,
    tools: tools::ToolRail,
    classifier: Option<classifier::Classifier>,
}

impl Guard {
    /// Compiles the rails.
    ///
    /// # Errors
    /// [`GuardError::Config`] for a policy that does not compile.
    pub fn new(config: GuardConfig) -> Result<Self, GuardError> {
        let model = if config.classifier {
            Some(classifier::Classifier::builtin()?)
        } else {
            None
        };
        Self::with_classifier(config, model)
    }

    /// Compiles the rails with another classifier (or none).
    ///
    /// # Errors
    /// [`GuardError::Config`] for a policy that does not compile.
    pub fn with_classifier(
        config: GuardConfig,
        classifier: Option<classifier::Classifier>,
    ) -> Result<Self, GuardError> {
        Ok(Self {
            classifier,
            rules: rules::Rules::new()?,
            topics: topics::Topics::new(&config.topics)?,
            output: output::OutputRails::new(&config.output)?,
            tools: tools::ToolRail::new(config.tools.clone())?,
            config,
        })
    }

    /// The settings.
    #[must_use]
    pub const fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// The input rail: injection and jailbreak rules on every view of `text` and of every
    /// payload decoded from it, then the topic rails.
    #[must_use]
    pub fn check_input(&self, text: &str) -> Verdict {
        self.input(text, rules::Reading::User)
    }

    /// The input rail on content the model is handed to read rather than told by its user —
    /// a tool's result, a function's output, a retrieved document or web page: everything the
    /// user's rail reads, and instructions planted for the model ("note to the AI", "do not
    /// tell the user", data sent out) weigh enough to block alone.
    #[must_use]
    pub fn check_document(&self, text: &str) -> Verdict {
        self.input(text, rules::Reading::Document)
    }

    /// The input rail on instructions a deployment writes rather than what a user types —
    /// system and developer prompts, tool descriptions: the injection and jailbreak rules on
    /// every view and every decoded payload, without the classifier (trained on what users
    /// type, it reads any instruction, "You are a helpful bot.", as one) and without the
    /// topic rails (a system prompt names the topics it avoids).
    #[must_use]
    pub fn check_instructions(&self, text: &str) -> Verdict {
        self.input(text, rules::Reading::Instructions)
    }

    fn input(&self, text: &str, reading: rules::Reading) -> Verdict {
        let user = reading != rules::Reading::Instructions;
        if text.len() > self.config.max_bytes {
            return too_long(text.len(), self.config.max_bytes);
        }
        let v = normalize::views(text);
        let mut hits = Vec::new();
        self.rules.scan(&v, "", reading, &mut hits);
        let mut findings = Vec::new();
        let classifier = self.classifier.as_ref().filter(|_| user);
        let mut learned = classifier.map(|c| (c.probability(&v.plain), String::from("the text")));
        let payloads = decode::payloads(text, &self.config.decode);
        for p in &payloads {
            let label = p
                .chain
                .iter()
                .map(|e| e.name())
                .collect::<Vec<_>>()
                .join("+");
            let before = hits.len();
            let pv = normalize::views(&p.text);
            self.rules.scan(&pv, &label, reading, &mut hits);
            if let (Some(c), Some((best, at))) = (classifier, &mut learned) {
                let q = c.probability(&pv.plain);
                if q > *best {
                    (*best, *at) = (q, format!("a payload in {label}"));
                }
            }
            if hits.len() > before {
                findings.push(Finding {
                    rail: "obfuscation",
                    rule: "obfuscation.encoded-instructions".into(),
                    family: Some(rules::Family::Obfuscation.name()),
                    detail: format!("instructions hidden in {label}"),
                    weight: 0.5,
                });
            }
        }
        if payloads
            .iter()
            .any(|p| p.chain.first() == Some(&decode::Encoding::UnicodeTags))
        {
            // Text no one sees on screen but a model reads has no honest use in a prompt.
            findings.push(Finding {
                rail: "obfuscation",
                rule: "obfuscation.hidden-tag-text".into(),
                family: Some(rules::Family::Obfuscation.name()),
                detail: "text written in invisible Unicode tag characters".into(),
                weight: 0.5,
            });
        }
        if v.changes.invisible > 0 {
            findings.push(Finding {
                rail: "obfuscation",
                rule: "obfuscation.invisible-characters".into(),
                family: Some(rules::Family::Obfuscation.name()),
                detail: format!("{} invisible characters removed", v.changes.invisible),
                // Alone it does not block (emoji sequences use joiners); with a rule it adds.
                weight: if hits.is_empty() { 0.1 } else { 0.3 },
            });
        }
        for h in &hits {
            findings.push(Finding {
                rail: "injection",
                rule: h.rule.to_owned(),
                family: Some(h.family.name()),
                detail: format!("matched in the {} view", h.view),
                weight: h.weight,
            });
        }
        if let Some((p, at)) = learned {
            // Listed when it matters; always part of the score.
            findings.push(Finding {
                rail: "injection",
                rule: "classifier.injection".into(),
                family: Some(rules::Family::Classifier.name()),
                detail: format!("probability {p:.3} on {at}"),
                weight: p,
            });
        }
        // One rule counts once, whichever views and payloads it fired in.
        let mut best: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
        for f in &findings {
            let w = best.entry(f.rule.as_str()).or_default();
            *w = w.max(f.weight);
        }
        let score = rules::combine(best.values().copied());
        let mut blocked = score >= self.config.threshold;
        // A classifier probability too small to matter is not worth a line in the verdict.
        findings.retain(|f| f.rule != "classifier.injection" || f.weight >= 0.05);
        let mut refusal = None;
        // Topics are what a user may ask about; a document on one is no request.
        if let Some((topic, why)) = self
            .topics
            .matches(&v)
            .filter(|_| reading == rules::Reading::User)
        {
            blocked = true;
            refusal = Some(topic.refusal.clone());
            findings.push(Finding {
                rail: "topic",
                rule: format!("topic.{}", topic.name),
                family: None,
                detail: why,
                weight: 1.0,
            });
        }
        Verdict {
            blocked,
            score,
            findings,
            normalisation: Some(v.changes),
            redacted: None,
            refusal,
            edits: None,
        }
    }

    /// The output rail on a model's answer; `canary` is the token planted in the system
    /// prompt, if any.
    #[must_use]
    pub fn check_output(&self, text: &str, canary: Option<&str>) -> Verdict {
        if text.len() > self.config.max_bytes {
            return too_long(text.len(), self.config.max_bytes);
        }
        self.output.check(text, canary)
    }

    /// The tool-call rail.
    #[must_use]
    pub const fn tools(&self) -> &tools::ToolRail {
        &self.tools
    }

    /// The tool-call rail on one call the model proposes, with the request's conversation
    /// (none: only the policy's tools and domains are checked).
    #[must_use]
    pub fn check_tool_call(
        &self,
        name: &str,
        arguments: &str,
        secret: &Confidential,
    ) -> Option<Verdict> {
        let empty = tools::Conversation::default();
        let conv = secret.conversation.as_ref().unwrap_or(&empty);
        self.tools
            .check_call(name, arguments, conv)
            .map(|f| Verdict {
                blocked: true,
                score: 1.0,
                findings: vec![f],
                normalisation: None,
                redacted: None,
                refusal: None,
                edits: None,
            })
    }

    /// The output rail on (the next window of) an answer to a request whose system prompt
    /// is `secret`: [`Guard::check_output`] with its canary, and, when that passes, the
    /// prompt-leak rail ([`leak`]) with what earlier windows showed in `seen`.
    #[must_use]
    pub fn check_answer(
        &self,
        text: &str,
        secret: &Confidential,
        seen: &mut leak::Seen,
    ) -> Verdict {
        let mut v = self.check_output(text, Some(&secret.canary));
        if v.blocked {
            return v;
        }
        if let Some(leak) = secret.print.as_ref().and_then(|p| p.check(text, seen)) {
            v.blocked = true;
            v.score = 1.0;
            v.redacted = None;
            v.edits = None;
            v.findings.push(Finding {
                rail: "leak",
                rule: format!("leak.system-prompt-{}", leak.how),
                family: None,
                detail: leak.detail,
                weight: 1.0,
            });
        }
        v
    }
}

/// What one request keeps from its answer: the canary planted in its system prompt, and the
/// fingerprint of the prompt itself.
#[derive(Debug, Clone)]
pub struct Confidential {
    /// The canary token.
    pub canary: String,
    /// The system prompt's fingerprint; `None` without one (or too short to recognise).
    pub print: Option<leak::PromptPrint>,
    /// The conversation's destinations and text, for the tool-call rail.
    pub conversation: Option<tools::Conversation>,
}

impl From<String> for Confidential {
    fn from(canary: String) -> Self {
        Self::canary(canary)
    }
}

impl From<&str> for Confidential {
    fn from(canary: &str) -> Self {
        Self::canary(canary)
    }
}

impl Confidential {
    /// The canary alone.
    #[must_use]
    pub fn canary(canary: impl Into<String>) -> Self {
        Self {
            canary: canary.into(),
            print: None,
            conversation: None,
        }
    }

    /// The canary and the system prompt the proxy forwards.
    #[must_use]
    pub fn new(canary: impl Into<String>, system_prompt: &str) -> Self {
        Self {
            canary: canary.into(),
            print: leak::PromptPrint::new(system_prompt),
            conversation: None,
        }
    }
}

fn too_long(len: usize, max: usize) -> Verdict {
    Verdict {
        blocked: true,
        score: 1.0,
        findings: vec![Finding {
            rail: "size",
            rule: "size.too-long".into(),
            family: None,
            detail: format!("{len} bytes; at most {max} are checked"),
            weight: 1.0,
        }],
        normalisation: None,
        redacted: None,
        refusal: None,
        edits: None,
    }
}
