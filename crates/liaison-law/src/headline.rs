//! The verdict a reader looks for first: the assessment in one word (clear, conditional,
//! likely refused), the reasons that decide it, most serious first, and what to do first.
//! Decided here, from the assessment's own findings, so every face (the request page, the
//! drafting page, the CLI) says the same.

use crate::i18n::{Lang, term};
use crate::model::{Assessment, DcRequirement, RetentionStatus, RiskLevel, Verdict};

/// The assessment in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outlook {
    /// Nothing found that stands in the way.
    Clear,
    /// Possible, with conditions to meet or facts to establish first.
    Conditional,
    /// A ground on which the requested state must or likely will refuse, or no channel.
    LikelyRefused,
}

impl Outlook {
    /// The snake_case code (`clear`, `conditional`, `likely_refused`).
    pub fn code(self) -> &'static str {
        match self {
            Outlook::Clear => "clear",
            Outlook::Conditional => "conditional",
            Outlook::LikelyRefused => "likely_refused",
        }
    }
}

/// The headline of an assessment, in one language.
#[derive(Debug, Clone, PartialEq)]
pub struct Headline {
    pub outlook: Outlook,
    /// The findings that decide the outlook, most serious first (at most [`TOP_REASONS`]).
    pub reasons: Vec<String>,
    /// How many findings were left out of `reasons`.
    pub more: usize,
    /// The first step of the plan, in words.
    pub first_step: Option<String>,
    /// The fastest lawful channel and its expected days.
    pub channel: Option<(String, f64)>,
}

/// Reasons a headline names at most.
pub const TOP_REASONS: usize = 3;

impl Assessment {
    /// The headline in `lang` (see [`Outlook`] for the rules).
    pub fn headline(&self, lang: Lang) -> Headline {
        // (severity, text): 2 stands in the way, 1 a condition.
        let mut found: Vec<(u8, String)> = Vec::new();
        let colon = match lang {
            Lang::Zh => "：",
            Lang::En => ": ",
        };
        // A refusal risk on the ground of dual criminality says what the offence's own
        // finding below says in more detail.
        for r in self
            .refusal_risks
            .iter()
            .filter(|r| r.ground != crate::model::RefusalGround::DualCriminality)
        {
            let ground = term(&format!("ground.{}", r.ground.code()), lang).to_string();
            let level = match r.level {
                RiskLevel::High => 2,
                RiskLevel::Low => 1,
            };
            found.push((level, format!("{ground}{colon}{}", r.reason.render(lang))));
        }
        for d in &self.dual_criminality {
            let name = match lang {
                Lang::Zh => &d.name_zh,
                Lang::En => &d.name_en,
            };
            // Where dual criminality is no condition, its finding decides nothing.
            let level = match (d.verdict, d.required) {
                (Verdict::Satisfied, _) | (_, DcRequirement::NotRequired) => continue,
                (Verdict::NotSatisfied, _) => 2,
                (Verdict::Conditional | Verdict::Unknown, _) => 1,
            };
            let verdict = term(&format!("verdict.{}", d.verdict.code()), lang).to_string();
            found.push((level, format!("{name}{colon}{verdict} — {}", d.explanation(lang))));
        }
        if self.channels.is_empty() {
            found.push((2, term("channels.none", lang).to_string()));
        }
        for r in self.retention.iter().filter(|r| {
            r.preserve_now
                || matches!(
                    r.status,
                    RetentionStatus::AtRisk | RetentionStatus::PartiallyPurged | RetentionStatus::LikelyPurged
                )
        }) {
            let text = r.reason.render(lang);
            if !found.iter().any(|(_, t)| *t == text) {
                found.push((1, text));
            }
        }
        // Most serious first; the order of the assessment within a level; a finding stated
        // for several channels once.
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        let mut seen = std::collections::HashSet::new();
        found.retain(|(_, text)| seen.insert(text.clone()));
        let outlook = match found.first().map(|f| f.0) {
            Some(2) => Outlook::LikelyRefused,
            Some(_) => Outlook::Conditional,
            None => Outlook::Clear,
        };
        let more = found.len().saturating_sub(TOP_REASONS);
        found.truncate(TOP_REASONS);
        Headline {
            outlook,
            reasons: found.into_iter().map(|f| f.1).collect(),
            more,
            first_step: self.plan.first().map(|s| s.what.render(lang)),
            channel: self
                .channels
                .first()
                .map(|c| (c.name_in(lang).to_string(), c.expected_days)),
        }
    }
}
