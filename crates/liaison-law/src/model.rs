//! The vocabulary of an assessment: citations, confidence, verdicts, and the assessment itself.
//!
//! Everything here is plain data that serialises to JSON; the engine fills it, the server stores
//! it next to the request, and readers see [`Assessment::render`] in their language.

pub use crate::i18n::{Lang, Message};
use jiff::Timestamp;
use liaison_core::{CountryCode, DataCategory, RequestKind, Urgency};
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
    /// A verbatim quote of the primary source that states the fact (required for
    /// `confirmed` rules by `liaison rules check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<Arc<str>>,
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

    /// The snake_case code (catalogue key `verdict.<code>`).
    pub fn code(self) -> &'static str {
        match self {
            Verdict::Satisfied => "satisfied",
            Verdict::Conditional => "conditional",
            Verdict::Unknown => "unknown",
            Verdict::NotSatisfied => "not_satisfied",
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
    /// The snake_case code (catalogue key `dc_required.<code>`).
    pub fn code(self) -> &'static str {
        match self {
            DcRequirement::NotRequired => "not_required",
            DcRequirement::Discretionary => "discretionary",
            DcRequirement::Required => "required",
        }
    }

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
    /// The snake_case code (catalogue key `ground.<code>`).
    pub fn code(self) -> &'static str {
        match self {
            RefusalGround::PoliticalOffence => "political_offence",
            RefusalGround::EssentialInterests => "essential_interests",
            RefusalGround::MilitaryOffence => "military_offence",
            RefusalGround::DualCriminality => "dual_criminality",
            RefusalGround::FundamentalRights => "fundamental_rights",
        }
    }

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
    /// Why, in order (the catalogue renders each; pack notes are quoted as written).
    pub reasons: Vec<Message>,
    /// Statutory maximum penalty in the requested state, where the pack knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_penalty_years: Option<f64>,
    pub citations: Vec<Arc<Citation>>,
}

impl DualCriminality {
    /// The reasons in one language, joined.
    pub fn explanation(&self, lang: Lang) -> String {
        join(&self.reasons, lang)
    }
}

fn join(ms: &[Message], lang: Lang) -> String {
    let sep = match lang {
        Lang::En => " ",
        Lang::Zh => "",
    };
    ms.iter().map(|m| m.render(lang)).collect::<Vec<_>>().join(sep)
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
    pub name_zh: Arc<str>,
    /// Whether the channel can compel a provider (police-to-police cannot).
    pub coercive: bool,
    pub dual_criminality: DcRequirement,
    pub expected_days: f64,
    pub duration_source: DurationSource,
    /// How long data is kept once preserved through this channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preservation_days: Option<u32>,
    /// Usable for a significant and imminent risk to life or safety, and how fast then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_days: Option<f64>,
    /// For orders the requesting state issues itself (CLOUD Act agreements, e-Evidence): the
    /// instrument under the requesting state's own law.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuing_instrument: Option<Arc<str>>,
    /// The pack's note on the channel, as written (English).
    pub note: Arc<str>,
    /// Conditions of the channel the request may not meet (penalty floors and the like).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Message>,
    pub citations: Vec<Arc<Citation>>,
}

impl ChannelOption {
    /// The channel's name in `lang`.
    pub fn name_in(&self, lang: Lang) -> &str {
        match lang {
            Lang::Zh if !self.name_zh.is_empty() => &self.name_zh,
            _ => &self.name,
        }
    }

    /// Whether a warning says the request does not (or may not) meet the channel's conditions.
    pub fn conditions_doubtful(&self) -> bool {
        !self.warnings.is_empty()
    }
}

/// Why a channel the two states will have is not open on the date assessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnavailableReason {
    /// The treaty is not in force (too few ratifications).
    TreatyNotInForce,
    /// The instrument applies only from a later date.
    NotYetApplicable,
}

impl UnavailableReason {
    pub fn code(self) -> &'static str {
        match self {
            UnavailableReason::TreatyNotInForce => "treaty_not_in_force",
            UnavailableReason::NotYetApplicable => "not_yet_applicable",
        }
    }
}

/// A channel shown as "not yet available" so officers know it is coming.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnavailableChannel {
    pub id: Arc<str>,
    pub kind: ChannelKind,
    pub name: Arc<str>,
    pub name_zh: Arc<str>,
    pub reason: UnavailableReason,
    /// When it becomes available, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<jiff::civil::Date>,
    pub note: Arc<str>,
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
    pub warnings: Vec<Message>,
    pub citations: Vec<Arc<Citation>>,
}

/// How a retention period binds the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// Keep at least this long: the data may exist longer.
    Minimum,
    /// Keep no longer than this: deletion is due after it.
    Maximum,
    /// Keep exactly this long, then delete.
    Fixed,
    /// No retention duty.
    None,
}

impl PeriodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Minimum => "minimum",
            PeriodKind::Maximum => "maximum",
            PeriodKind::Fixed => "fixed",
            PeriodKind::None => "none",
        }
    }
}

/// How likely it is that data still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionStatus {
    /// Within the retention period with margin beyond the main channel's expected duration.
    Available,
    /// Will pass the retention period before the main channel is expected to deliver.
    AtRisk,
    /// A minimum period has passed: the provider may (not must) have deleted the data.
    MayBeDeleted,
    /// The oldest part of the window is already past a fixed or maximum period.
    PartiallyPurged,
    /// The whole window is past a fixed or maximum period.
    LikelyPurged,
    /// No retention duty: the provider's own practice decides.
    NoDuty,
    /// The pack has no retention rule.
    Unknown,
}

impl RetentionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionStatus::Available => "available",
            RetentionStatus::AtRisk => "at_risk",
            RetentionStatus::MayBeDeleted => "may_be_deleted",
            RetentionStatus::PartiallyPurged => "partially_purged",
            RetentionStatus::LikelyPurged => "likely_purged",
            RetentionStatus::NoDuty => "no_duty",
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
    /// How the period binds (minimum, maximum, fixed), where the pack has a rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_kind: Option<PeriodKind>,
    /// The retention period in force when the data was generated, as written in the pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Arc<str>>,
    /// When the newest data of the window reaches the end of the period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_purge: Option<Timestamp>,
    /// Days until the oldest data of the window reaches the end of the period (negative: past).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// Send a preservation request now.
    pub preserve_now: bool,
    pub reason: Message,
    /// The pack's note on the rule, as written.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub note: Arc<str>,
    pub citations: Vec<Arc<Citation>>,
}

/// How serious a refusal risk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    High,
    Low,
}

impl RiskLevel {
    pub fn code(self) -> &'static str {
        match self {
            RiskLevel::High => "high",
            RiskLevel::Low => "low",
        }
    }
}

/// A ground on which the requested state may refuse, with the clause that allows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalRisk {
    pub ground: RefusalGround,
    pub level: RiskLevel,
    pub channel: Arc<str>,
    pub clause: Arc<str>,
    pub reason: Message,
    pub citations: Vec<Arc<Citation>>,
}

/// What a plan step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// Risk to life: the emergency path, before anything else.
    EmergencyRequest,
    Preserve,
    ConfirmData,
    Reframe,
    EstablishFacts,
    /// The production request (or the order the requesting state issues itself).
    Send,
    /// The formal request that must follow a preservation.
    FollowUp,
    Include,
    ObtainApproval,
    NoChannel,
}

impl StepAction {
    pub fn as_str(self) -> &'static str {
        match self {
            StepAction::EmergencyRequest => "emergency_request",
            StepAction::Preserve => "preserve",
            StepAction::ConfirmData => "confirm_data",
            StepAction::Reframe => "reframe",
            StepAction::EstablishFacts => "establish_facts",
            StepAction::Send => "send",
            StepAction::FollowUp => "follow_up",
            StepAction::Include => "include",
            StepAction::ObtainApproval => "obtain_approval",
            StepAction::NoChannel => "no_channel",
        }
    }
}

/// One step of the recommended plan, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub order: u32,
    pub action: StepAction,
    /// What to do.
    pub what: Message,
    /// Why the step is there, and why in this place.
    pub why: Message,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Arc<str>>,
    pub citations: Vec<Arc<Citation>>,
}

/// The shape of [`Assessment`] (stored assessments of an older shape are re-assessed).
pub const ASSESSMENT_FORMAT: u32 = 2;

/// The result of [`crate::assess`]: everything known in advance about a request's legal fate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// [`ASSESSMENT_FORMAT`].
    pub format: u32,
    /// `RulePacks::content_hash()` of the packs used: store it with the request.
    pub rule_pack_version: Arc<str>,
    pub requesting: CountryCode,
    pub requested: CountryCode,
    pub kind: RequestKind,
    pub urgency: Urgency,
    /// The date whose law was applied (a stored request: its submission).
    pub as_of: Timestamp,
    pub dual_criminality: Vec<DualCriminality>,
    pub channels: Vec<ChannelOption>,
    /// Channels that exist on paper but are not open yet (treaties not in force).
    #[serde(default)]
    pub unavailable: Vec<UnavailableChannel>,
    pub categories: Vec<CategoryRequirement>,
    pub retention: Vec<RetentionRisk>,
    pub refusal_risks: Vec<RefusalRisk>,
    pub plan: Vec<Step>,
    /// Facts the packs do not know (unknown treaty status and the like).
    pub notes: Vec<Message>,
}

impl Assessment {
    /// English lines for the CLI (see [`Assessment::render`]).
    pub fn summary_lines(&self) -> Vec<String> {
        self.render(Lang::En)
    }

    /// Human-readable lines in `lang`, one fact per line, citations in brackets: the title
    /// line, then [`Assessment::sections`] as text.
    pub fn render(&self, lang: Lang) -> Vec<String> {
        let mut out = vec![self.title(lang)];
        for sec in self.sections(lang) {
            let notes = sec.code == "notes";
            if !notes {
                // The heading as the catalogue writes it, colon included (`head.<code>`).
                out.push(crate::i18n::term(&format!("head.{}", sec.code), lang).to_string());
            }
            for f in &sec.findings {
                let target = match f.target {
                    Some(n) => format!("{} {n} ", crate::i18n::term("label.target", lang)),
                    None => String::new(),
                };
                if notes {
                    out.push(format!("{}: {}", sec.title, f.text));
                } else {
                    out.push(format!("  {target}{}{}", f.text, cites(&f.citations)));
                }
                for d in &f.details {
                    out.push(format!("    {d}"));
                }
            }
        }
        out
    }

    /// The first line: the pair, the kind, the urgency, the date and the rule packs' version.
    pub fn title(&self, lang: Lang) -> String {
        Message::new("head.title")
            .with_str("from", self.requesting.as_str())
            .with_str("to", self.requested.as_str())
            .term("kind", "kind", self.kind.as_str())
            .term("urgency", "urgency", self.urgency.as_str())
            .with("date", day(self.as_of).to_string())
            .with_str("version", short(&self.rule_pack_version))
            .render(lang)
    }

    /// The findings by section, in `lang`, with their sources: dual criminality, channels,
    /// evidence, retention (when any), refusal risks (when any), the plan, notes (when any).
    /// [`Assessment::render`] prints them; the web page shows them with the sources as links.
    pub fn sections(&self, lang: Lang) -> Vec<Section> {
        let t = |k: &str| crate::i18n::term(k, lang).to_string();
        let r = |m: &Message| m.render(lang);
        let head = |code: &'static str, key: &str| Section {
            code,
            title: t(key).trim_end_matches([':', '：']).to_string(),
            findings: Vec::new(),
        };
        let mut out = Vec::new();

        let mut sec = head("dual_criminality", "head.dual_criminality");
        for d in &self.dual_criminality {
            let name = match lang {
                Lang::Zh => &d.name_zh,
                Lang::En => &d.name_en,
            };
            sec.findings.push(Finding::new(
                format!(
                    "{} {name}: {} [{}] — {}",
                    d.offence,
                    t(&format!("verdict.{}", d.verdict.code())),
                    t(&format!("dc_required.{}", d.required.code())),
                    d.explanation(lang)
                ),
                &d.citations,
            ));
        }
        out.push(sec);

        let mut sec = head("channels", "head.channels");
        if self.channels.is_empty() {
            sec.findings.push(Finding::new(t("channels.none"), &[]));
        }
        for c in &self.channels {
            let src = match c.duration_source {
                DurationSource::PackDefault => t("duration.pack_default"),
                DurationSource::Observed { samples } => Message::new("duration.observed")
                    .with("samples", samples.to_string())
                    .render(lang),
            };
            let mut f = Finding::new(
                format!(
                    "{} ({}{}): ~{} {} ({src})",
                    c.name_in(lang),
                    t(&format!("channel_kind.{}", c.kind.as_str())),
                    if c.coercive {
                        String::new()
                    } else {
                        format!(", {}", t("channel.not_coercive"))
                    },
                    days_text(c.expected_days),
                    t("unit.days"),
                ),
                &c.citations,
            );
            if let Some(i) = &c.issuing_instrument {
                f.details
                    .push(Message::new("channel.issuing").with("instrument", i).render(lang));
            }
            for w in &c.warnings {
                f.details.push(format!("{}: {}", t("label.warning"), r(w)));
            }
            sec.findings.push(f);
        }
        for u in &self.unavailable {
            let name = match lang {
                Lang::Zh if !u.name_zh.is_empty() => &u.name_zh,
                _ => &u.name,
            };
            let m = match u.from {
                Some(d) => Message::new("channel.unavailable_from").with("date", d.to_string()),
                None => Message::new("channel.unavailable").term("why", "unavailable", u.reason.code()),
            };
            sec.findings
                .push(Finding::new(m.with("channel", name).render(lang), &[]));
        }
        out.push(sec);

        let mut sec = head("evidence", "head.evidence");
        for c in &self.categories {
            let cat = t(&format!("category.{}", c.category));
            let mut f = match (&c.instrument, &c.standard) {
                (Some(i), Some(st)) => Finding::new(format!("{cat}: {i}; {}: {st}", t("label.standard")), &c.citations),
                _ => Finding::new(format!("{cat}: {}", t("evidence.unknown")), &[]),
            };
            for m in &c.must_contain {
                f.details.push(format!("{}: {m}", t("label.must_contain")));
            }
            for a in &c.approvals {
                f.details
                    .push(format!("{}: {} [{}]", t("label.approval"), a.requirement, a.citation));
            }
            for w in &c.warnings {
                f.details.push(format!("{}: {}", t("label.warning"), r(w)));
            }
            sec.findings.push(f);
        }
        out.push(sec);

        if !self.retention.is_empty() {
            let mut sec = head("retention", "head.retention");
            for x in &self.retention {
                let mut f = Finding::new(
                    format!(
                        "{}: {}{} — {}{}",
                        t(&format!("category.{}", x.category)),
                        t(&format!("retention.{}", x.status.as_str())),
                        if x.preserve_now {
                            format!(" ({})", t("retention.preserve_now"))
                        } else {
                            String::new()
                        },
                        r(&x.reason),
                        if x.note.is_empty() {
                            String::new()
                        } else {
                            format!(" ({}: {})", t("label.pack_note"), x.note)
                        },
                    ),
                    &x.citations,
                );
                f.target = Some(x.target);
                sec.findings.push(f);
            }
            out.push(sec);
        }

        if !self.refusal_risks.is_empty() {
            let mut sec = head("refusal", "head.refusal");
            for x in &self.refusal_risks {
                sec.findings.push(Finding::new(
                    format!(
                        "{} {} — {} ({}): {}",
                        t(&format!("risk.{}", x.level.code())),
                        t(&format!("ground.{}", x.ground.code())),
                        x.channel,
                        x.clause,
                        r(&x.reason)
                    ),
                    &x.citations,
                ));
            }
            out.push(sec);
        }

        let mut sec = head("plan", "head.plan");
        for st in &self.plan {
            let mut f = Finding::new(format!("{}. {}", st.order, r(&st.what)), &st.citations);
            f.details.push(format!("{}: {}", t("label.why"), r(&st.why)));
            sec.findings.push(f);
        }
        out.push(sec);

        if !self.notes.is_empty() {
            let mut sec = head("notes", "label.note");
            for n in &self.notes {
                sec.findings.push(Finding::new(r(n), &[]));
            }
            out.push(sec);
        }
        out
    }
}

/// A section of an assessment ([`Assessment::sections`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// `dual_criminality`, `channels`, `evidence`, `retention`, `refusal`, `plan` or `notes`.
    pub code: &'static str,
    /// The heading in the reader's language, without a colon.
    pub title: String,
    pub findings: Vec<Finding>,
}

/// One finding: its sentence, the lines under it, and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub text: String,
    pub details: Vec<String>,
    pub citations: Vec<Arc<Citation>>,
    /// The request's target the finding is about (its index in the request's targets).
    pub target: Option<usize>,
}

impl Finding {
    /// A finding with its sources, each instrument and article once.
    fn new(text: String, citations: &[Arc<Citation>]) -> Finding {
        let mut unique: Vec<Arc<Citation>> = Vec::with_capacity(citations.len());
        for c in citations {
            if !unique
                .iter()
                .any(|u| u.instrument == c.instrument && u.article == c.article)
            {
                unique.push(c.clone());
            }
        }
        Finding {
            text,
            details: Vec::new(),
            citations: unique,
            target: None,
        }
    }
}

/// Whole days for display.
pub(crate) fn days_text(d: f64) -> i64 {
    d.round() as i64
}

/// The UTC calendar day of an instant (`2026-08-18`).
pub(crate) fn day(t: Timestamp) -> jiff::civil::Date {
    jiff::tz::TimeZone::UTC.to_datetime(t).date()
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

/// A particular that a formal request (the letter) must contain under the requested side's law
/// or the instrument used: the rule packs list them per channel (`[[request_contents]]` in
/// `rules/treaties.toml`), the letter maps each to the request's data, and whatever the request
/// lacks is a missing particular. Words: `particular.<code>` in the message catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Particular {
    /// The authority making the request (and conducting the investigation).
    RequestingAuthority,
    /// The authority to which the request is addressed.
    RequestedAuthority,
    /// The requesting side's own case number.
    CaseReference,
    /// The offences under investigation, by name.
    Offences,
    /// A summary of the facts (officer's free text, in every language of the letter).
    SummaryOfFacts,
    /// The evidence, information or other assistance sought.
    AssistanceSought,
    /// The purpose for which it is sought (officer's free text, in every language).
    Purpose,
    /// The identity and location of the persons, accounts or machines concerned.
    Targets,
    /// The period for which data is sought.
    Period,
    /// The stored data to be preserved and its relation to the offence (Budapest Art 29(2)(c)).
    DataToPreserve,
    /// What identifies the custodian of the data or the location of the system (Art 29(2)(d)).
    Custodian,
    /// Why preservation is necessary (Art 29(2)(e); officer's free text, in every language).
    Necessity,
    /// That a request for mutual assistance will follow (Art 29(2)(f)).
    IntentToFollowUp,
    /// The legal basis of the request (instrument, domestic law).
    LegalBasis,
    /// Urgency and any time limit.
    Urgency,
    /// Confidentiality required (the marking).
    Confidentiality,
}

impl Particular {
    pub const ALL: &'static [Particular] = &[
        Particular::RequestingAuthority,
        Particular::RequestedAuthority,
        Particular::CaseReference,
        Particular::Offences,
        Particular::SummaryOfFacts,
        Particular::AssistanceSought,
        Particular::Purpose,
        Particular::Targets,
        Particular::Period,
        Particular::DataToPreserve,
        Particular::Custodian,
        Particular::Necessity,
        Particular::IntentToFollowUp,
        Particular::LegalBasis,
        Particular::Urgency,
        Particular::Confidentiality,
    ];

    /// The snake_case code (JSON, the catalogue key `particular.<code>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Particular::RequestingAuthority => "requesting_authority",
            Particular::RequestedAuthority => "requested_authority",
            Particular::CaseReference => "case_reference",
            Particular::Offences => "offences",
            Particular::SummaryOfFacts => "summary_of_facts",
            Particular::AssistanceSought => "assistance_sought",
            Particular::Purpose => "purpose",
            Particular::Targets => "targets",
            Particular::Period => "period",
            Particular::DataToPreserve => "data_to_preserve",
            Particular::Custodian => "custodian",
            Particular::Necessity => "necessity",
            Particular::IntentToFollowUp => "intent_to_follow_up",
            Particular::LegalBasis => "legal_basis",
            Particular::Urgency => "urgency",
            Particular::Confidentiality => "confidentiality",
        }
    }
}

impl fmt::Display for Particular {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[request_contents]]` rule: what a request on a channel must contain, with its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentsRule {
    pub id: Arc<str>,
    pub particulars: Vec<Particular>,
    /// The pack's note (what could not be confirmed).
    pub note: Arc<str>,
    pub citation: Arc<Citation>,
}
