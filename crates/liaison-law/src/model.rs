//! The vocabulary of an assessment: citations, confidence, verdicts, and the assessment itself.
//!
//! Everything here is plain data that serialises to JSON; the engine fills it, the server stores
//! it next to the request, and the CLI prints [`Assessment::summary_lines`].

use jiff::Timestamp;
use liaison_core::{CountryCode, DataCategory, RequestKind};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// How sure the rule pack is of a fact (legal-facts.md labels C / P / UNCONFIRMED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Read in the primary text.
    Confirmed,
    /// Secondary source, or only part of the fact seen in the primary text.
    Partial,
    /// From general knowledge; verify before relying on it.
    Unconfirmed,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Confirmed => "confirmed",
            Confidence::Partial => "partial",
            Confidence::Unconfirmed => "unconfirmed",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    /// The rule's id in the pack (`cn.dc.bc-09.possession`).
    pub rule: Arc<str>,
    pub instrument: Arc<str>,
    pub article: Arc<str>,
    pub url: Arc<str>,
    pub confidence: Confidence,
}

impl fmt::Display for Citation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {} [{}]", self.instrument, self.article, self.confidence)
    }
}

/// Outcome of the dual-criminality test for one offence in the requested state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The conduct is a criminal offence in the requested state.
    Satisfied,
    /// Criminal only above a threshold, or depending on a sub-national state's law.
    Conditional,
    /// The pack has no answer, or the law is unclear. Never a guess.
    Unknown,
    /// The conduct is not a criminal offence in the requested state.
    NotSatisfied,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Satisfied => "satisfied",
            Verdict::Conditional => "conditional",
            Verdict::Unknown => "unknown",
            Verdict::NotSatisfied => "not satisfied",
        }
    }

    /// Ranks verdicts so that conduct-based matching can keep the most favourable one
    /// (Budapest Art 25(5): one criminal conduct is enough).
    pub(crate) fn rank(self) -> u8 {
        match self {
            Verdict::Satisfied => 0,
            Verdict::Conditional => 1,
            Verdict::Unknown => 2,
            Verdict::NotSatisfied => 3,
        }
    }
}

/// Whether the channel used demands dual criminality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DcRequirement {
    /// Not a condition (for example Budapest Art 29(3) preservation).
    NotRequired,
    /// The requested state may refuse if dual criminality fails.
    Discretionary,
    /// The requested state must refuse if dual criminality fails.
    Required,
}

impl DcRequirement {
    pub fn as_str(self) -> &'static str {
        match self {
            DcRequirement::NotRequired => "not required",
            DcRequirement::Discretionary => "ground for discretionary refusal",
            DcRequirement::Required => "required",
        }
    }
}

/// The family a channel belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// 24/7 network of contact points (Budapest Art 35): preservation, traffic disclosure.
    #[serde(rename = "network_24_7")]
    Network247,
    /// Mutual legal assistance under a bilateral treaty or agreement.
    TreatyMla,
    /// Mutual legal assistance under the Budapest Convention (Arts 25-34, 27 absent a treaty).
    BudapestMla,
    /// European Production Order (Reg (EU) 2023/1543).
    Epoc,
    /// European Preservation Order (Reg (EU) 2023/1543).
    EpocPr,
    /// European Investigation Order (Directive 2014/41/EU).
    Eio,
    /// Direct order or request to a provider abroad (CLOUD Act agreement, voluntary disclosure).
    DirectProvider,
    /// Police-to-police (INTERPOL, liaison officers): information only, no coercive measures.
    PoliceToPolice,
    /// Letters rogatory / diplomatic channel, based on comity and reciprocity.
    LettersRogatory,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Network247 => "network_24_7",
            ChannelKind::TreatyMla => "treaty_mla",
            ChannelKind::BudapestMla => "budapest_mla",
            ChannelKind::Epoc => "epoc",
            ChannelKind::EpocPr => "epoc_pr",
            ChannelKind::Eio => "eio",
            ChannelKind::DirectProvider => "direct_provider",
            ChannelKind::PoliceToPolice => "police_to_police",
            ChannelKind::LettersRogatory => "letters_rogatory",
        }
    }
}

/// Grounds on which a requested state may refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalGround {
    PoliticalOffence,
    EssentialInterests,
    MilitaryOffence,
    DualCriminality,
    FundamentalRights,
}

impl RefusalGround {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalGround::PoliticalOffence => "political offence",
            RefusalGround::EssentialInterests => "sovereignty, security, ordre public or other essential interests",
            RefusalGround::MilitaryOffence => "military offence",
            RefusalGround::DualCriminality => "dual criminality",
            RefusalGround::FundamentalRights => "fundamental rights",
        }
    }
}

/// One offence, tested in the requested state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DualCriminality {
    pub offence: Arc<str>,
    pub name_en: Arc<str>,
    pub name_zh: Arc<str>,
    /// Whether the request kind and channel make dual criminality a condition at all.
    pub required: DcRequirement,
    pub verdict: Verdict,
    pub explanation: String,
    /// Statutory maximum penalty in the requested state, where the pack knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_penalty_years: Option<f64>,
    pub citations: Vec<Arc<Citation>>,
}

/// Where an expected duration comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "source")]
pub enum DurationSource {
    /// The rule pack's default (statute deadline or published average).
    PackDefault,
    /// Liaison's own observed median over `samples` answered requests.
    Observed { samples: u32 },
}

/// A channel that can carry the request between the two states on the date assessed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelOption {
    pub id: Arc<str>,
    pub kind: ChannelKind,
    pub name: Arc<str>,
    /// Whether the channel can compel a provider (police-to-police cannot).
    pub coercive: bool,
    pub dual_criminality: DcRequirement,
    pub expected_days: f64,
    pub duration_source: DurationSource,
    /// How long data is kept once preserved through this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preservation_days: Option<u32>,
    pub note: Arc<str>,
    /// Conditions of the channel the request may not meet (penalty floors and the like).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub citations: Vec<Arc<Citation>>,
}

/// A formal approval the requested state requires before evidence leaves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub requirement: Arc<str>,
    pub citation: Arc<Citation>,
}

/// What the requested state needs to obtain one data category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryRequirement {
    pub category: DataCategory,
    /// `None` when the pack has no rule: unknown, not "nothing needed".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instrument: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standard: Option<Arc<str>>,
    /// What the request must therefore contain.
    pub must_contain: Vec<Arc<str>>,
    pub approvals: Vec<Approval>,
    /// Problems found (for example a penalty floor the offence does not meet).
    pub warnings: Vec<String>,
    pub citations: Vec<Arc<Citation>>,
}

/// How likely it is that data still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionStatus {
    /// Within the retention period with margin beyond the main channel's expected duration.
    Available,
    /// Will pass the retention period before the main channel is expected to deliver.
    AtRisk,
    /// The oldest part of the window is already past the retention period.
    PartiallyPurged,
    /// The whole window is past the retention period.
    LikelyPurged,
    /// No retention duty known: the provider's practice decides.
    Unknown,
}

impl RetentionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionStatus::Available => "available",
            RetentionStatus::AtRisk => "at risk",
            RetentionStatus::PartiallyPurged => "partially purged",
            RetentionStatus::LikelyPurged => "likely already purged",
            RetentionStatus::Unknown => "unknown",
        }
    }
}

/// Retention risk for one target and one data category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionRisk {
    /// Index into the input's targets.
    pub target: usize,
    pub category: DataCategory,
    pub status: RetentionStatus,
    /// The retention period in force when the data was generated, as written in the pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Arc<str>>,
    /// When the newest data of the window is expected to be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_purge: Option<Timestamp>,
    /// Days until the oldest data of the window is expected to be deleted (negative: past).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// Send a preservation request now.
    pub preserve_now: bool,
    pub explanation: String,
    pub citations: Vec<Arc<Citation>>,
}

/// How serious a refusal risk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    High,
    Low,
}

/// A ground on which the requested state may refuse, with the clause that allows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalRisk {
    pub ground: RefusalGround,
    pub level: RiskLevel,
    pub channel: Arc<str>,
    pub clause: Arc<str>,
    pub explanation: String,
    pub citations: Vec<Arc<Citation>>,
}

/// What a plan step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    Preserve,
    ConfirmData,
    Reframe,
    EstablishFacts,
    Send,
    Include,
    ObtainApproval,
    NoChannel,
}

/// One step of the recommended plan, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub order: u32,
    pub action: StepAction,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Arc<str>>,
    pub citations: Vec<Arc<Citation>>,
}

/// The result of [`crate::assess`]: everything known in advance about a request's legal fate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// `RulePacks::content_hash()` of the packs used: store it with the request.
    pub rule_pack_version: Arc<str>,
    pub requesting: CountryCode,
    pub requested: CountryCode,
    pub kind: RequestKind,
    pub as_of: Timestamp,
    pub dual_criminality: Vec<DualCriminality>,
    pub channels: Vec<ChannelOption>,
    pub categories: Vec<CategoryRequirement>,
    pub retention: Vec<RetentionRisk>,
    pub refusal_risks: Vec<RefusalRisk>,
    pub plan: Vec<Step>,
    /// Facts the packs do not know (unknown treaty status and the like).
    pub notes: Vec<String>,
}

impl Assessment {
    /// Human-readable lines for the CLI, one fact per line, citations in brackets.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.push(format!(
            "{} -> {}: {} (law as of {}, rule packs {})",
            self.requesting,
            self.requested,
            self.kind,
            self.as_of,
            short(&self.rule_pack_version)
        ));
        out.push("Dual criminality:".to_string());
        for d in &self.dual_criminality {
            out.push(format!(
                "  {} {} ({}): {} [{}] — {}{}",
                d.offence,
                d.name_en,
                d.name_zh,
                d.verdict.as_str(),
                d.required.as_str(),
                d.explanation,
                cites(&d.citations)
            ));
        }
        out.push("Channels:".to_string());
        if self.channels.is_empty() {
            out.push("  none available".to_string());
        }
        for c in &self.channels {
            let src = match c.duration_source {
                DurationSource::PackDefault => "pack default".to_string(),
                DurationSource::Observed { samples } => format!("observed, n={samples}"),
            };
            out.push(format!(
                "  {} ({}{}): ~{} days ({src}){}",
                c.name,
                c.kind.as_str(),
                if c.coercive { "" } else { ", no coercive measures" },
                c.expected_days.round() as i64,
                cites(&c.citations)
            ));
            for w in &c.warnings {
                out.push(format!("    warning: {w}"));
            }
        }
        out.push("Evidence:".to_string());
        for c in &self.categories {
            match (&c.instrument, &c.standard) {
                (Some(i), Some(s)) => out.push(format!("  {}: {i}; standard: {s}{}", c.category, cites(&c.citations))),
                _ => out.push(format!("  {}: unknown (no rule in the pack)", c.category)),
            }
            for m in &c.must_contain {
                out.push(format!("    must contain: {m}"));
            }
            for a in &c.approvals {
                out.push(format!("    approval: {} [{}]", a.requirement, a.citation));
            }
            for w in &c.warnings {
                out.push(format!("    warning: {w}"));
            }
        }
        if !self.retention.is_empty() {
            out.push("Retention:".to_string());
        }
        for r in &self.retention {
            out.push(format!(
                "  target {} {}: {}{} — {}{}",
                r.target,
                r.category,
                r.status.as_str(),
                if r.preserve_now {
                    " (send a preservation request now)"
                } else {
                    ""
                },
                r.explanation,
                cites(&r.citations)
            ));
        }
        if !self.refusal_risks.is_empty() {
            out.push("Refusal risks:".to_string());
        }
        for r in &self.refusal_risks {
            out.push(format!(
                "  {:?} {} via {} ({}): {}",
                r.level,
                r.ground.as_str(),
                r.channel,
                r.clause,
                r.explanation
            ));
        }
        out.push("Plan:".to_string());
        for s in &self.plan {
            out.push(format!("  {}. {}", s.order, s.text));
        }
        for n in &self.notes {
            out.push(format!("Note: {n}"));
        }
        out
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn cites(c: &[Arc<Citation>]) -> String {
    if c.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = c.iter().map(|c| c.to_string()).collect();
    format!(" [{}]", parts.join("; "))
}
