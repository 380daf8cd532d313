//! Denied topics: keywords (whole words, on the normalised text) and example phrases (a
//! prompt that shares most of an example's word pairs is on that topic), each topic with its
//! canned refusal.

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// A denied topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Its name (`financial-advice`).
    pub name: String,
    /// Words or phrases that put a prompt on the topic.
    pub keywords: Vec<String>,
    /// Example prompts on the topic.
    pub examples: Vec<String>,
    /// What the user is told instead.
    pub refusal: String,
}

/// A prompt is on an example's topic when it holds this share of the example's word pairs.
pub const EXAMPLE_OVERLAP: f64 = 0.6;

/// The compiled topics.
#[derive(Debug)]
pub struct Topics {
    topics: Vec<Topic>,
    keywords: Option<AhoCorasick>,
    /// Keyword index → topic index.
    owner: Vec<usize>,
    /// Per topic, per example: its word pairs.
    examples: Vec<Vec<BTreeSet<(String, String)>>>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn pairs(text: &str) -> BTreeSet<(String, String)> {
    let w = words(text);
    w.windows(2)
        .filter_map(|p| match p {
            [a, b] => Some((a.clone(), b.clone())),
            _ => None,
        })
        .collect()
}

impl Topics {
    /// Compiles `topics`.
    ///
    /// # Errors
    /// A message naming a topic without keywords or examples, or without a refusal.
    pub fn new(topics: &[Topic]) -> Result<Self, crate::GuardError> {
        let mut kws = Vec::new();
        let mut owner = Vec::new();
        let mut examples = Vec::new();
        for (i, t) in topics.iter().enumerate() {
            if t.keywords.is_empty() && t.examples.is_empty() {
                return Err(
                    format!("topic {}: give keywords or examples (or both)", t.name).into(),
                );
            }
            if t.refusal.trim().is_empty() {
                return Err(format!("topic {}: give a refusal message", t.name).into());
            }
            for k in &t.keywords {
                let k = crate::normalize::views(k).plain;
                if !k.trim().is_empty() {
                    kws.push(k.trim().to_owned());
                    owner.push(i);
                }
            }
            examples.push(
                t.examples
                    .iter()
                    .map(|e| pairs(&crate::normalize::views(e).plain))
                    .filter(|p| !p.is_empty())
                    .collect(),
            );
        }
        let keywords = if kws.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(&kws)
                    .map_err(|e| e.to_string())?,
            )
        };
        Ok(Self {
            topics: topics.to_vec(),
            keywords,
            owner,
            examples,
        })
    }

    /// The first denied topic `v` is on, with why.
    #[must_use]
    pub fn matches(&self, v: &crate::normalize::Views) -> Option<(&Topic, String)> {
        if let Some(ac) = &self.keywords {
            for text in [&v.plain, &v.leet] {
                for m in ac.find_iter(text.as_str()) {
                    let edge = |i: Option<char>| !i.is_some_and(char::is_alphanumeric);
                    let before = text.get(..m.start()).and_then(|t| t.chars().next_back());
                    let after = text.get(m.end()..).and_then(|t| t.chars().next());
                    if edge(before)
                        && edge(after)
                        && let Some(t) = self
                            .owner
                            .get(m.pattern().as_usize())
                            .and_then(|&i| self.topics.get(i))
                    {
                        return Some((t, format!("keyword {:?}", text.get(m.range())?)));
                    }
                }
            }
        }
        let have = pairs(&v.plain);
        for (t, exs) in self.topics.iter().zip(&self.examples) {
            for (n, ex) in exs.iter().enumerate() {
                let shared = ex.intersection(&have).count();
                #[allow(clippy::cast_precision_loss)]
                let share = shared as f64 / ex.len().max(1) as f64;
                if share >= EXAMPLE_OVERLAP {
                    return Some((
                        t,
                        format!(
                            "{:.0}% of the word pairs of example {}",
                            share * 100.0,
                            n + 1
                        ),
                    ));
                }
            }
        }
        None
    }
}
