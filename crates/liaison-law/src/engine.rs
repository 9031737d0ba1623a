//! The assessment engine: a pure, deterministic function of the rule packs and the input.

use crate::i18n::Val;
use crate::model::*;
use crate::model::{day, days_text};
use crate::pack::{
    Channel, CriminalityRule, FloorWarning, Jurisdiction, LawVerdict, Membership, MembershipStatus, Reach, RulePacks,
};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use liaison_core::request::{Amount, RequestDraft, Target};
use liaison_core::{CountryCode, DataCategory, RequestKind, Urgency};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Observed durations are used instead of pack defaults from this many answered requests on.
pub const MIN_OBSERVED_SAMPLES: u32 = 5;

/// Liaison's own statistics for a channel: median days to answer over `samples` requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ObservedDuration {
    pub median_days: f64,
    pub samples: u32,
}

/// What the engine needs to know about a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessmentInput {
    pub requesting: CountryCode,
    pub requested: CountryCode,
    pub kind: RequestKind,
    pub urgency: Urgency,
    /// Offence codes from the taxonomy.
    pub offences: Vec<String>,
    /// Conduct qualifiers (`possession_only`, `distribution`, ...).
    #[serde(default)]
    pub conduct: Vec<String>,
    #[serde(default)]
    pub amount: Option<Amount>,
    /// Data sought; empty means the kind's default categories.
    #[serde(default)]
    pub categories: Vec<DataCategory>,
    #[serde(default)]
    pub targets: Vec<Target>,
    /// The date whose law applies (usually now; earlier for a what-if or an audit).
    pub as_of: Timestamp,
    /// Observed median durations by channel id (`budapest-mla`, `us-cn-mlaa`, ...).
    #[serde(default)]
    pub observed_durations: BTreeMap<String, ObservedDuration>,
}

impl AssessmentInput {
    /// Builds the input from a request draft.
    pub fn from_draft(draft: &RequestDraft, requesting: CountryCode, requested: CountryCode, as_of: Timestamp) -> Self {
        AssessmentInput {
            requesting,
            requested,
            kind: draft.kind,
            urgency: draft.urgency,
            offences: draft.offences.clone(),
            conduct: draft.conduct.clone(),
            amount: draft.amount.clone(),
            categories: draft.effective_categories(),
            targets: draft.targets.clone(),
            as_of,
            observed_durations: BTreeMap::new(),
        }
    }
}

/// The input names something the rule packs do not know (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("no rule pack for jurisdiction(s): {}", join_codes(.0))]
    UnknownJurisdictions(Vec<CountryCode>),
    #[error("unknown offence code(s): {} (see rules/offences.toml)", .0.join(", "))]
    UnknownOffences(Vec<String>),
    #[error("requesting and requested state are both {0}")]
    SameJurisdiction(CountryCode),
}

fn join_codes(c: &[CountryCode]) -> String {
    c.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

/// Assesses a request against the law in force on `input.as_of`.
pub fn assess(packs: &RulePacks, input: &AssessmentInput) -> Result<Assessment, InputError> {
    let inner = &*packs.inner;
    let mut unknown_j = Vec::new();
    for c in [input.requesting, input.requested] {
        if !inner.jurisdictions.contains_key(&c) && !unknown_j.contains(&c) {
            unknown_j.push(c);
        }
    }
    if !unknown_j.is_empty() {
        return Err(InputError::UnknownJurisdictions(unknown_j));
    }
    let unknown_o: Vec<String> = input
        .offences
        .iter()
        .filter(|o| !inner.taxonomy.contains(o))
        .cloned()
        .collect();
    if !unknown_o.is_empty() {
        return Err(InputError::UnknownOffences(unknown_o));
    }
    if input.requesting == input.requested {
        return Err(InputError::SameJurisdiction(input.requested));
    }
    let Some(requested) = inner.jurisdictions.get(&input.requested) else {
        return Err(InputError::UnknownJurisdictions(vec![input.requested]));
    };
    let t = input.as_of;
    let mut notes = Vec::new();

    let members = Members::new(packs, input);
    let channels = channels_for(packs, &members, input, input.kind);
    let unavailable = unavailable_for(packs, &members, input, input.kind);
    treaty_notes(packs, &members, t, &mut notes);
    for c in &input.conduct {
        let known = input
            .offences
            .iter()
            .filter_map(|o| inner.taxonomy.get(o))
            .any(|o| o.conduct.iter().any(|k| k == c));
        if !known {
            notes.push(Message::new("note.conduct_ignored").with_str("conduct", c));
        }
    }

    // The channel that carries the request itself.
    let production = if input.kind.is_preservation() {
        None
    } else {
        production_pick(channels.iter().map(|c| &c.option))
    };
    let categories: Vec<DataCategory> = if input.categories.is_empty() {
        input.kind.default_categories().to_vec()
    } else {
        input.categories.clone()
    };

    // Retention per target and stored category, against the main channel's expected duration.
    let main_days = match production {
        Some(p) => p.expected_days,
        None => channels
            .iter()
            .map(|c| c.expected_days)
            .min_by(f64::total_cmp)
            .unwrap_or(365.0),
    };
    let preservation_channels: Vec<Avail<'_>> = if input.kind.is_preservation() || input.targets.is_empty() {
        Vec::new()
    } else {
        channels_for(packs, &members, input, RequestKind::ExpeditedPreservation)
    };
    let can_preserve = input.kind.is_preservation() || !preservation_channels.is_empty();
    let mut retention = Vec::new();
    for (i, target) in input.targets.iter().enumerate() {
        for cat in &categories {
            if matches!(cat, DataCategory::RealtimeTrafficData | DataCategory::RealtimeContent) {
                continue;
            }
            retention.push(retention_risk(
                requested,
                i,
                target,
                *cat,
                t,
                main_days,
                input.kind,
                can_preserve,
            ));
        }
    }
    // The oldest data's deadline among the categories that need preserving.
    let earliest = retention
        .iter()
        .filter(|r| r.preserve_now || input.kind.is_preservation())
        .filter_map(|r| r.days_left)
        .min();
    let preserve_now = retention.iter().any(|r| r.preserve_now);
    let preservation: Option<ChannelOption> = if input.kind.is_preservation() {
        preservation_pick(channels.iter().map(|c| &c.option), earliest).cloned()
    } else if preserve_now {
        preservation_pick(preservation_channels.iter().map(|c| &c.option), earliest).cloned()
    } else {
        None
    };
    // The channel whose conditions decide dual criminality: the preservation for a
    // preservation request, the production channel otherwise.
    let main: Option<&ChannelOption> = if input.kind.is_preservation() {
        preservation.as_ref()
    } else {
        production
    };

    // Dual criminality per offence.
    let reservation_29_4 = has_reservation(packs, input.requested, "budapest", "29(4)", t);
    let mut dual = Vec::with_capacity(input.offences.len());
    for code in &input.offences {
        let Some(off) = inner.taxonomy.get(code) else { continue };
        let (verdict, mut reasons, max_penalty, cites) = dual_criminality(requested, &off.code, input);
        let required = match main {
            Some(c)
                if c.dual_criminality == DcRequirement::NotRequired
                    && c.kind == ChannelKind::Network247
                    && reservation_29_4
                    && !off.is_budapest() =>
            {
                reasons.push(Message::new("dc.reservation_29_4").with_str("state", input.requested.as_str()));
                DcRequirement::Discretionary
            }
            Some(c) => c.dual_criminality,
            None => DcRequirement::Required,
        };
        let mut citations = cites;
        if let Some(c) = main
            && required == DcRequirement::NotRequired
        {
            citations.extend(c.citations.iter().cloned());
        }
        dual.push(DualCriminality {
            offence: off.code.clone(),
            name_en: off.name_en.clone(),
            name_zh: off.name_zh.clone(),
            required,
            verdict,
            reasons,
            max_penalty_years: max_penalty,
            citations,
        });
    }

    let mut cat_out = Vec::with_capacity(categories.len());
    for cat in &categories {
        cat_out.push(category_requirement(requested, *cat, &dual, t));
    }

    // Refusal risks.
    let mut refusal_risks = Vec::new();
    for ch in &channels {
        for r in ch.refusal {
            for code in &input.offences {
                let Some(off) = inner.taxonomy.get(code) else { continue };
                if off.refusal_flags.contains(&r.ground) {
                    refusal_risks.push(RefusalRisk {
                        ground: r.ground,
                        level: RiskLevel::High,
                        channel: ch.option.id.clone(),
                        clause: r.clause.clone(),
                        reason: Message::new("refusal.offence_flag")
                            .with("offence", &off.code)
                            .with("name", &off.name_en)
                            .with("name_zh", &off.name_zh),
                        citations: ch.option.citations.clone(),
                    });
                }
            }
            if r.ground == RefusalGround::DualCriminality {
                for d in &dual {
                    if ch.option.dual_criminality == DcRequirement::NotRequired {
                        continue;
                    }
                    let (level, code) = match d.verdict {
                        Verdict::NotSatisfied => (RiskLevel::High, "refusal.dc_not_satisfied"),
                        Verdict::Conditional => (RiskLevel::Low, "refusal.dc_conditional"),
                        Verdict::Unknown => (RiskLevel::Low, "refusal.dc_unknown"),
                        Verdict::Satisfied => continue,
                    };
                    refusal_risks.push(RefusalRisk {
                        ground: r.ground,
                        level,
                        channel: ch.option.id.clone(),
                        clause: r.clause.clone(),
                        reason: Message::new(code)
                            .with("offence", &d.offence)
                            .with("name", &d.name_en)
                            .with("name_zh", &d.name_zh)
                            .with_str("state", input.requested.as_str()),
                        citations: d.citations.clone(),
                    });
                }
            }
        }
    }

    // After a preservation, the formal request that must follow it.
    // (the same choice as a production request: a channel whose conditions, such as a
    // penalty floor, the request is not shown to miss comes first).
    let follow_up = if input.kind.is_preservation() {
        let production = channels_for(packs, &members, input, RequestKind::StoredContent);
        production_pick(
            production
                .iter()
                .map(|c| &c.option)
                .filter(|c| c.preservation_days.is_none()),
        )
        .filter(|c| c.coercive)
        .cloned()
    } else {
        None
    };
    let emergency = if input.urgency == Urgency::Emergency {
        emergency_pick(channels.iter().map(|c| &c.option))
    } else {
        None
    };
    if input.urgency == Urgency::Emergency && emergency.is_none() {
        notes.push(Message::new("note.no_emergency_path"));
    }
    let plan = build_plan(
        input,
        &dual,
        &Picks {
            emergency,
            preservation: preservation.as_ref(),
            production,
            follow_up: follow_up.as_ref(),
        },
        &cat_out,
        &retention,
    );
    Ok(Assessment {
        format: ASSESSMENT_FORMAT,
        rule_pack_version: Arc::from(inner.hash.as_str()),
        requesting: input.requesting,
        requested: input.requested,
        kind: input.kind,
        urgency: input.urgency,
        as_of: t,
        dual_criminality: dual,
        channels: channels.into_iter().map(|c| c.option).collect(),
        unavailable,
        categories: cat_out,
        retention,
        refusal_risks,
        plan,
        notes,
    })
}

#[derive(Clone)]
struct Avail<'p> {
    option: ChannelOption,
    refusal: &'p [crate::pack::Refusal],
}

impl std::ops::Deref for Avail<'_> {
    type Target = ChannelOption;
    fn deref(&self) -> &ChannelOption {
        &self.option
    }
}

/// Both states' memberships in force on the date assessed, indexed by treaty position.
struct Members<'p> {
    requesting: Vec<Option<&'p Membership>>,
    requested: Vec<Option<&'p Membership>>,
}

impl<'p> Members<'p> {
    fn new(packs: &'p RulePacks, input: &AssessmentInput) -> Self {
        let n = packs.inner.treaty_list.len();
        let table = |c: CountryCode| {
            let mut v: Vec<Option<&'p Membership>> = vec![None; n];
            for m in packs.inner.memberships.get(&c).map(Vec::as_slice).unwrap_or_default() {
                if m.meta.in_force(input.as_of)
                    && let Some(slot) = v.get_mut(m.treaty_idx)
                {
                    *slot = Some(m);
                }
            }
            v
        };
        Members {
            requesting: table(input.requesting),
            requested: table(input.requested),
        }
    }

    fn pair(&self, treaty: usize) -> (Option<&'p Membership>, Option<&'p Membership>) {
        (
            self.requesting.get(treaty).copied().flatten(),
            self.requested.get(treaty).copied().flatten(),
        )
    }

    /// Whether both states are bound by the treaty at position `treaty`.
    fn both_bound(&self, treaty: usize) -> bool {
        matches!(self.pair(treaty), (Some(a), Some(b)) if is_bound(a.status) && is_bound(b.status))
    }
}

fn has_reservation(packs: &RulePacks, party: CountryCode, treaty: &str, reservation: &str, t: Timestamp) -> bool {
    packs.inner.memberships.get(&party).is_some_and(|ms| {
        ms.iter()
            .any(|m| &*m.treaty == treaty && m.meta.in_force(t) && m.reservations.iter().any(|r| r == reservation))
    })
}

/// Notes on membership statuses the packs do not know.
fn treaty_notes(packs: &RulePacks, members: &Members<'_>, t: Timestamp, notes: &mut Vec<Message>) {
    for (idx, tr) in packs.inner.treaty_list.iter().enumerate() {
        if !tr.meta.in_force(t) {
            continue;
        }
        let (a, b) = members.pair(idx);
        for m in [a, b].into_iter().flatten() {
            if m.status == MembershipStatus::Unknown {
                notes.push(
                    Message::new("note.status_unknown")
                        .with("treaty", &tr.name)
                        .with("treaty_zh", zh_or(&tr.name_zh, &tr.name))
                        .with("rule", &m.meta.id)
                        .with("note", &m.note),
                );
            }
        }
    }
}

fn zh_or(zh: &Arc<str>, en: &Arc<str>) -> Arc<str> {
    if zh.is_empty() { en.clone() } else { zh.clone() }
}

fn is_bound(status: MembershipStatus) -> bool {
    matches!(status, MembershipStatus::Party | MembershipStatus::Member)
}

/// The providers the targets name (the request's own, not guessed).
fn providers(input: &AssessmentInput) -> impl Iterator<Item = &liaison_core::Provider> + Clone {
    input.targets.iter().filter_map(|t| t.provider.as_ref())
}

/// Whether the channel's provider condition holds: a direct-provider path needs a provider
/// established where the path's law allows it (the requested state, when no target names one).
fn provider_ok(ch: &Channel, input: &AssessmentInput) -> bool {
    let named = providers(input);
    let any_named = named.clone().next().is_some();
    if !ch.provider_established_in.is_empty() {
        return if any_named {
            named
                .clone()
                .any(|p| ch.provider_established_in.contains(&p.established_in))
        } else {
            ch.provider_established_in.contains(&input.requested)
        };
    }
    if ch.kind == ChannelKind::DirectProvider && ch.treaty.is_some() && any_named {
        // An executive agreement reaches the other party's providers.
        return named.clone().any(|p| p.established_in == input.requested);
    }
    true
}

fn same_sovereign(packs: &RulePacks, input: &AssessmentInput) -> bool {
    let j = |c: CountryCode| packs.inner.jurisdictions.get(&c).map_or(c, |j| j.sovereign);
    j(input.requesting) == j(input.requested)
}

/// Whether the channel's kinds, places and provider fit the request (not its dates or treaty).
fn shape_fits(ch: &Channel, input: &AssessmentInput, kind: RequestKind) -> bool {
    (ch.request_kinds.is_empty() || ch.request_kinds.contains(&kind))
        && (ch.requested_in.is_empty()
            || !ch.provider_established_in.is_empty()
            || ch.requested_in.contains(&input.requested))
        && provider_ok(ch, input)
}

/// Whether the treaty binds what it must for this channel: both states, or for a Union-wide
/// reach the requesting state and a provider offering services in the Union.
fn treaty_binds(ch: &Channel, members: &Members<'_>, input: &AssessmentInput, treaty: usize) -> bool {
    match ch.reach {
        Some(Reach::UnionProvider) => {
            let (a, b) = members.pair(treaty);
            a.is_some_and(|a| is_bound(a.status))
                && (b.is_some_and(|b| is_bound(b.status)) || providers(input).any(|p| p.offers_services_in_eu))
        }
        None => members.both_bound(treaty),
    }
}

/// If the channel is open for this pair, kind and date: the memberships' citations.
fn channel_applies(
    packs: &RulePacks,
    members: &Members<'_>,
    ch: &Channel,
    input: &AssessmentInput,
    kind: RequestKind,
) -> Option<Option<(Arc<Citation>, Arc<Citation>)>> {
    let t = input.as_of;
    if !ch.meta.in_force(t) || !shape_fits(ch, input, kind) {
        return None;
    }
    if ch.kind == ChannelKind::LettersRogatory && same_sovereign(packs, input) {
        // No diplomatic channel between parts of one state (the Mainland, Hong Kong, Macau).
        return None;
    }
    let Some(treaty) = ch.treaty_idx else { return Some(None) };
    let tr = packs.inner.treaty_list.get(treaty)?;
    if !tr.in_force || !tr.meta.in_force(t) || !treaty_binds(ch, members, input, treaty) {
        return None;
    }
    match members.pair(treaty) {
        (Some(a), Some(b)) => Some(Some((a.meta.citation.clone(), b.meta.citation.clone()))),
        (Some(a), None) => Some(Some((a.meta.citation.clone(), a.meta.citation.clone()))),
        _ => Some(None),
    }
}

/// Channels that fit the request but are not open yet: a treaty not in force that both states
/// could use (Parties of what it is open to, or signatories), or an instrument that applies
/// from a later date.
fn unavailable_for(
    packs: &RulePacks,
    members: &Members<'_>,
    input: &AssessmentInput,
    kind: RequestKind,
) -> Vec<UnavailableChannel> {
    let t = input.as_of;
    let inner = &*packs.inner;
    let mut out = Vec::new();
    for ch in &inner.channels {
        if ch.meta.until.is_some_and(|u| u <= t) || !shape_fits(ch, input, kind) {
            continue;
        }
        let tr = ch.treaty_idx.and_then(|i| inner.treaty_list.get(i).map(|tr| (i, tr)));
        let reason = match tr {
            Some((idx, tr)) if !tr.in_force && tr.meta.in_force(t) => {
                let eligible = match tr
                    .open_to
                    .as_deref()
                    .and_then(|o| inner.treaty_list.iter().position(|x| &*x.meta.id == o))
                {
                    Some(parent) => members.both_bound(parent),
                    None => matches!(members.pair(idx), (Some(a), Some(b))
                        if a.status != MembershipStatus::NotParty && b.status != MembershipStatus::NotParty),
                };
                if !eligible {
                    continue;
                }
                (UnavailableReason::TreatyNotInForce, None, tr.note.clone())
            }
            Some((idx, tr))
                if ch.meta.from > t && tr.in_force && tr.meta.in_force(t) && treaty_binds(ch, members, input, idx) =>
            {
                (
                    UnavailableReason::NotYetApplicable,
                    Some(day(ch.meta.from)),
                    ch.note.clone(),
                )
            }
            None if ch.meta.from > t => (
                UnavailableReason::NotYetApplicable,
                Some(day(ch.meta.from)),
                ch.note.clone(),
            ),
            _ => continue,
        };
        out.push(UnavailableChannel {
            id: ch.meta.id.clone(),
            kind: ch.kind,
            name: ch.name.clone(),
            name_zh: ch.name_zh.clone(),
            reason: reason.0,
            from: reason.1,
            note: reason.2,
            citations: vec![ch.meta.citation.clone()],
        });
    }
    out
}

fn coercive_then_fastest(a: &ChannelOption, b: &ChannelOption) -> std::cmp::Ordering {
    b.coercive
        .cmp(&a.coercive)
        .then(a.expected_days.total_cmp(&b.expected_days))
        .then_with(|| a.id.cmp(&b.id))
}

/// A preservation that takes longer than this is no expedited preservation, whatever the
/// retention period (used when the targets give no purge date).
const PRESERVATION_HORIZON_DAYS: f64 = 30.0;

/// The channel that can freeze the data in time: among channels expected before the oldest
/// data may go (and within the horizon), a binding one first, then the fastest; when none is
/// in time, the fastest of all.
fn preservation_pick<'a>(
    options: impl Iterator<Item = &'a ChannelOption> + Clone,
    days_left: Option<i64>,
) -> Option<&'a ChannelOption> {
    let limit = days_left.map_or(PRESERVATION_HORIZON_DAYS, |d| {
        (d.max(0) as f64).min(PRESERVATION_HORIZON_DAYS)
    });
    options
        .clone()
        .filter(|c| c.expected_days <= limit)
        .min_by(|a, b| coercive_then_fastest(a, b))
        .or_else(|| {
            options.min_by(|a, b| {
                a.expected_days
                    .total_cmp(&b.expected_days)
                    .then_with(|| b.coercive.cmp(&a.coercive))
                    .then_with(|| a.id.cmp(&b.id))
            })
        })
}

/// The production channel: one that can compel and whose conditions the request meets, the
/// fastest first; then one that can compel with doubtful conditions; then any.
fn production_pick<'a>(options: impl Iterator<Item = &'a ChannelOption> + Clone) -> Option<&'a ChannelOption> {
    let fastest = |it: &mut dyn Iterator<Item = &'a ChannelOption>| {
        it.min_by(|a, b| {
            a.expected_days
                .total_cmp(&b.expected_days)
                .then_with(|| a.id.cmp(&b.id))
        })
    };
    fastest(&mut options.clone().filter(|c| c.coercive && !c.conditions_doubtful()))
        .or_else(|| fastest(&mut options.clone().filter(|c| c.coercive)))
        .or_else(|| fastest(&mut options.clone()))
}

/// The fastest emergency path (channels with an emergency duration).
fn emergency_pick<'a>(options: impl Iterator<Item = &'a ChannelOption>) -> Option<&'a ChannelOption> {
    options.filter(|c| c.emergency_days.is_some()).min_by(|a, b| {
        a.expected_days
            .total_cmp(&b.expected_days)
            .then_with(|| b.coercive.cmp(&a.coercive))
            .then_with(|| a.id.cmp(&b.id))
    })
}

fn channels_for<'p>(
    packs: &'p RulePacks,
    members: &Members<'_>,
    input: &AssessmentInput,
    kind: RequestKind,
) -> Vec<Avail<'p>> {
    let inner = &*packs.inner;
    let mut out: Vec<Avail<'p>> = Vec::new();
    for ch in &inner.channels {
        let Some(members) = channel_applies(packs, members, ch, input, kind) else {
            continue;
        };
        let mut citations = Vec::with_capacity(3);
        citations.push(ch.meta.citation.clone());
        if let Some((a, b)) = members {
            citations.push(a);
            if b != citations[1] {
                citations.push(b);
            }
        }
        let mut opt = option(ch, input, citations);
        if let Some(floor) = &ch.penalty_floor {
            penalty_floor_warnings(packs, input, kind, floor, &mut opt.warnings);
        }
        out.push(Avail {
            option: opt,
            refusal: &ch.refusal_grounds,
        });
    }
    out.sort_by(|a, b| coercive_then_fastest(a, b));
    out
}

/// Warns when a channel's penalty floor (in the requesting state) is not shown to be met.
fn penalty_floor_warnings(
    packs: &RulePacks,
    input: &AssessmentInput,
    kind: RequestKind,
    floor: &crate::pack::PenaltyFloor,
    out: &mut Vec<Message>,
) {
    let cats: &[DataCategory] = if input.categories.is_empty() {
        kind.default_categories()
    } else {
        &input.categories
    };
    if !cats.iter().any(|c| floor.categories.contains(c)) {
        return;
    }
    let Some(requesting) = packs.inner.jurisdictions.get(&input.requesting) else {
        return;
    };
    let (unmet, unknown) = match floor.warning {
        FloorWarning::PenaltyFloor => ("warning.penalty_floor_unmet", "warning.penalty_floor_unknown"),
        FloorWarning::SeriousCrime => ("warning.not_serious_crime", "warning.serious_crime_unknown"),
    };
    for code in &input.offences {
        if floor.exempt_offences.iter().any(|e| e == code) {
            continue;
        }
        let (_, _, max, _) = dual_criminality(requesting, code, input);
        let years = num(floor.min_years);
        match max {
            Some(m) if m >= floor.min_years => {}
            Some(m) => out.push(
                Message::new(unmet)
                    .with_str("offence", code)
                    .with("penalty", num(m))
                    .with_str("state", input.requesting.as_str())
                    .with("years", years),
            ),
            None => out.push(
                Message::new(unknown)
                    .with_str("offence", code)
                    .with_str("state", input.requesting.as_str())
                    .with("years", years),
            ),
        }
    }
}

/// A number of years or days as people write it (`3`, `0.5`).
fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

fn option(ch: &Channel, input: &AssessmentInput, citations: Vec<Arc<Citation>>) -> ChannelOption {
    let (expected_days, duration_source) = match input.observed_durations.get(&*ch.meta.id) {
        Some(o) if o.samples >= MIN_OBSERVED_SAMPLES && o.median_days.is_finite() && o.median_days >= 0.0 => {
            (o.median_days, DurationSource::Observed { samples: o.samples })
        }
        _ => {
            let d = match (input.urgency, ch.emergency_days) {
                (Urgency::Emergency, Some(e)) => e,
                _ => ch.default_days,
            };
            (d, DurationSource::PackDefault)
        }
    };
    ChannelOption {
        id: ch.meta.id.clone(),
        kind: ch.kind,
        name: ch.name.clone(),
        name_zh: ch.name_zh.clone(),
        coercive: ch.coercive,
        dual_criminality: ch.dual_criminality,
        expected_days,
        duration_source,
        preservation_days: ch.preservation_days,
        emergency_days: ch.emergency_days,
        issuing_instrument: ch
            .issuing_instrument
            .iter()
            .find(|(c, _)| *c == input.requesting)
            .map(|(_, i)| i.clone()),
        note: ch.note.clone(),
        warnings: Vec::new(),
        citations,
    }
}

fn conduct_matches(rule: &CriminalityRule, conduct: &[String]) -> bool {
    rule.conduct.iter().any(|c| conduct.iter().any(|i| i == c))
}

type DcOutcome = (Verdict, Vec<Message>, Option<f64>, Vec<Arc<Citation>>);

fn dual_criminality(j: &Jurisdiction, code: &str, input: &AssessmentInput) -> DcOutcome {
    let t = input.as_of;
    let Some(rules) = j.criminality.get(code) else {
        return (
            Verdict::Unknown,
            vec![
                Message::new("dc.no_rule")
                    .with_str("jurisdiction", j.code.as_str())
                    .with_str("offence", code),
            ],
            None,
            Vec::new(),
        );
    };
    let in_force = || rules.iter().filter(|r| r.meta.in_force(t));
    let any_specific = in_force().any(|r| conduct_matches(r, &input.conduct));
    let candidates = || {
        in_force().filter(|r| {
            if any_specific {
                conduct_matches(r, &input.conduct)
            } else {
                r.conduct.is_empty()
            }
        })
    };
    // The most favourable rule (Budapest Art 25(5)) and its verdict.
    let mut best: Option<(&CriminalityRule, Verdict, Vec<Message>)> = None;
    for r in candidates() {
        let (v, why) = evaluate(r, input.amount.as_ref());
        if best.as_ref().is_none_or(|b| v.rank() < b.1.rank()) {
            best = Some((r, v, why));
        }
    }
    match best {
        Some((r, v, why)) => (v, why, r.max_penalty_years, vec![r.meta.citation.clone()]),
        None => {
            let mut known: Vec<&str> = in_force().flat_map(|r| r.conduct.iter().map(String::as_str)).collect();
            known.sort_unstable();
            known.dedup();
            let msg = if known.is_empty() {
                Message::new("dc.no_rule_on_date")
                    .with_str("jurisdiction", j.code.as_str())
                    .with_str("offence", code)
            } else {
                Message::new("dc.depends_on_conduct").with("options", known.join(", "))
            };
            (Verdict::Unknown, vec![msg], None, Vec::new())
        }
    }
}

fn same_currency(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        if s.eq_ignore_ascii_case("RMB") {
            "CNY".to_string()
        } else {
            s.to_ascii_uppercase()
        }
    };
    norm(a) == norm(b)
}

fn note(text: &Arc<str>) -> Option<Message> {
    (!text.trim().is_empty()).then(|| Message::new("pack.note").with("note", text))
}

fn evaluate(r: &CriminalityRule, amount: Option<&Amount>) -> (Verdict, Vec<Message>) {
    let with_note = |m: Option<Message>| -> Vec<Message> { m.into_iter().chain(note(&r.note)).collect() };
    let base = match r.verdict {
        LawVerdict::Criminal => Verdict::Satisfied,
        LawVerdict::NotCriminal => return (Verdict::NotSatisfied, with_note(None)),
        LawVerdict::Conditional => Verdict::Conditional,
        LawVerdict::Unknown => return (Verdict::Unknown, with_note(None)),
    };
    let Some(th) = &r.threshold else {
        return (base, with_note(None));
    };
    let amount_msg = |code: &'static str, a: &Amount| {
        Message::new(code)
            .with("amount", a.value.to_string())
            .with_str("currency", &a.currency)
            .with("threshold", &th.description)
    };
    match (th.amount_min, &th.currency, amount) {
        (Some(min), Some(cur), Some(a)) if same_currency(&a.currency, cur) => {
            if a.value.below(min) {
                (
                    Verdict::NotSatisfied,
                    with_note(Some(amount_msg("dc.below_threshold", a))),
                )
            } else if th.amount_certain.is_some_and(|c| a.value.below(c)) {
                (
                    Verdict::Conditional,
                    with_note(Some(amount_msg("dc.between_thresholds", a))),
                )
            } else {
                (base, with_note(Some(amount_msg("dc.meets_threshold", a))))
            }
        }
        (Some(_), Some(cur), Some(a)) => (
            Verdict::Conditional,
            with_note(Some(
                Message::new("dc.other_currency")
                    .with("threshold", &th.description)
                    .with_str("currency", &a.currency)
                    .with("pack_currency", cur),
            )),
        ),
        _ => (
            Verdict::Conditional,
            with_note(Some(Message::new("dc.threshold").with("threshold", &th.description))),
        ),
    }
}

fn category_requirement(
    j: &Jurisdiction,
    cat: DataCategory,
    dual: &[DualCriminality],
    t: Timestamp,
) -> CategoryRequirement {
    let mut out = CategoryRequirement {
        category: cat,
        instrument: None,
        standard: None,
        must_contain: Vec::new(),
        approvals: Vec::new(),
        warnings: Vec::new(),
        citations: Vec::new(),
    };
    if let Some(rule) = j
        .instruments
        .get(&cat)
        .and_then(|rs| rs.iter().find(|r| r.meta.in_force(t)))
    {
        out.instrument = Some(rule.instrument.clone());
        out.standard = Some(rule.standard.clone());
        out.must_contain.clone_from(&rule.must_contain);
        out.citations.push(rule.meta.citation.clone());
        if let Some(floor) = rule.penalty_over_years {
            for d in dual {
                let m = |code: &'static str| {
                    Message::new(code)
                        .with("offence", &d.offence)
                        .with_str("jurisdiction", j.code.as_str())
                        .with("years", num(floor))
                };
                if d.verdict == Verdict::NotSatisfied {
                    out.warnings.push(m("evidence.not_an_offence"));
                    continue;
                }
                match d.max_penalty_years {
                    Some(p) if p > floor => {}
                    Some(p) => out.warnings.push(m("evidence.penalty_too_low").with("penalty", num(p))),
                    None => out.warnings.push(m("evidence.penalty_unknown")),
                }
            }
        }
    } else {
        out.warnings.push(
            Message::new("evidence.no_rule")
                .with_str("jurisdiction", j.code.as_str())
                .term("category", "category", cat.as_str()),
        );
    }
    for a in &j.approvals {
        if a.meta.in_force(t) && (a.categories.is_empty() || a.categories.contains(&cat)) {
            out.approvals.push(Approval {
                requirement: a.requirement.clone(),
                citation: a.meta.citation.clone(),
            });
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn retention_risk(
    j: &Jurisdiction,
    index: usize,
    target: &Target,
    cat: DataCategory,
    t: Timestamp,
    main_days: f64,
    kind: RequestKind,
    can_preserve: bool,
) -> RetentionRisk {
    let mut out = RetentionRisk {
        target: index,
        category: cat,
        status: RetentionStatus::Unknown,
        period_kind: None,
        period: None,
        estimated_purge: None,
        days_left: None,
        preserve_now: false,
        reason: Message::new("retention.reason.no_rule"),
        note: Arc::from(""),
        citations: Vec::new(),
    };
    let wants_preservation = !kind.is_preservation() && can_preserve;
    // The law in force when the newest data of the window was generated.
    let Some(rule) = j
        .retention
        .get(&cat)
        .and_then(|rs| rs.iter().find(|r| r.meta.in_force(target.until)))
    else {
        out.reason = Message::new("retention.reason.no_rule")
            .with_str("jurisdiction", j.code.as_str())
            .term("category", "category", cat.as_str());
        out.preserve_now = wants_preservation;
        return out;
    };
    out.citations.push(rule.meta.citation.clone());
    out.period = rule.period.clone();
    out.period_kind = Some(rule.kind);
    out.note = rule.note.clone();
    let add = |ts: Timestamp| -> Option<Timestamp> {
        let z = ts.to_zoned(TimeZone::UTC);
        let r = match (rule.days, rule.months) {
            (Some(d), _) => z.checked_add(i64::from(d).days()),
            (None, Some(m)) => z.checked_add(i64::from(m).months()),
            (None, None) => return None,
        };
        r.ok().map(|z| z.timestamp())
    };
    let (Some(purge_first), Some(purge_last)) = (add(target.from), add(target.until)) else {
        out.status = RetentionStatus::NoDuty;
        out.reason = Message::new("retention.reason.no_duty")
            .with_str("jurisdiction", j.code.as_str())
            .term("category", "category", cat.as_str());
        out.preserve_now = wants_preservation;
        return out;
    };
    let days = |a: Timestamp| a.duration_since(t).as_secs().div_euclid(86_400);
    out.estimated_purge = Some(purge_last);
    let left_first = days(purge_first);
    out.days_left = Some(left_first);
    let period = rule.period.clone().map_or(Val::Static(""), Val::Shared);
    let m = |code: &'static str| {
        Message::new(code)
            .with("period", period.clone())
            .term("period_kind", "period_kind", rule.kind.as_str())
    };
    if rule.kind == PeriodKind::Minimum && t >= purge_first {
        // A minimum period says when the duty ends, not when the data goes.
        out.status = RetentionStatus::MayBeDeleted;
        out.reason = m("retention.reason.may_be_deleted").with("date", day(purge_first).to_string());
        out.preserve_now = wants_preservation;
    } else if t >= purge_last {
        out.status = RetentionStatus::LikelyPurged;
        out.reason = m("retention.reason.likely_purged").with("date", day(purge_last).to_string());
    } else if t >= purge_first {
        out.status = RetentionStatus::PartiallyPurged;
        out.reason = m("retention.reason.partially_purged")
            .with("date", day(purge_last).to_string())
            .with("days", days(purge_last).to_string());
        out.preserve_now = wants_preservation;
    } else if (left_first as f64) < main_days {
        out.status = RetentionStatus::AtRisk;
        out.reason = m(if rule.kind == PeriodKind::Minimum {
            "retention.reason.at_risk_minimum"
        } else {
            "retention.reason.at_risk"
        })
        .with("date", day(purge_first).to_string())
        .with("days", left_first.to_string())
        .with("expected", days_text(main_days).to_string());
        out.preserve_now = wants_preservation;
    } else {
        out.status = RetentionStatus::Available;
        out.reason = m("retention.reason.available")
            .with("date", day(purge_first).to_string())
            .with("days", left_first.to_string());
    }
    out
}

/// The channels the plan uses.
struct Picks<'a> {
    emergency: Option<&'a ChannelOption>,
    preservation: Option<&'a ChannelOption>,
    production: Option<&'a ChannelOption>,
    follow_up: Option<&'a ChannelOption>,
}

fn ch_msg(code: &'static str, c: &ChannelOption) -> Message {
    Message::new(code)
        .with("channel", &c.name)
        .with("channel_zh", zh_or(&c.name_zh, &c.name))
        .with("days", days_text(c.expected_days).to_string())
}

/// A "no channel" step's what and why for this pair and kind.
fn no_channel(input: &AssessmentInput, what: &'static str, why: &'static str) -> (Message, Message) {
    (
        Message::new(what)
            .with_str("from", input.requesting.as_str())
            .with_str("to", input.requested.as_str())
            .term("kind", "kind", input.kind.as_str()),
        Message::new(why),
    )
}

fn build_plan(
    input: &AssessmentInput,
    dual: &[DualCriminality],
    picks: &Picks<'_>,
    cats: &[CategoryRequirement],
    retention: &[RetentionRisk],
) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut push =
        |action: StepAction, what: Message, why: Message, channel: Option<Arc<str>>, citations: Vec<Arc<Citation>>| {
            let order = steps.len() as u32 + 1;
            steps.push(Step {
                order,
                action,
                what,
                why,
                channel,
                citations,
            });
        };

    // 1. Risk to life comes before everything else.
    if let Some(e) = picks.emergency {
        push(
            StepAction::EmergencyRequest,
            ch_msg(
                if e.coercive {
                    "plan.emergency"
                } else {
                    "plan.emergency_informal"
                },
                e,
            ),
            Message::new("why.emergency"),
            Some(e.id.clone()),
            e.citations.clone(),
        );
    }

    // 2. Freeze the data before it may go.
    let preserve = input.kind.is_preservation() || retention.iter().any(|r| r.preserve_now);
    if preserve && let Some(p) = picks.preservation {
        let what = match (p.coercive, p.preservation_days) {
            (true, Some(keep)) => ch_msg("plan.preserve_keep", p).with("keep", keep.to_string()),
            (true, None) => ch_msg("plan.preserve", p),
            (false, _) => ch_msg("plan.preserve_informal", p),
        };
        let oldest = retention
            .iter()
            .filter(|r| r.preserve_now || input.kind.is_preservation())
            .filter_map(|r| r.days_left)
            .min();
        // Past the estimate first: a negative count would read "may go in -158 days".
        let why = match oldest {
            Some(d) if d < 0 => Message::new("why.preserve_may_be_gone"),
            Some(d) if (d as f64) < p.expected_days => {
                Message::new("why.preserve_too_slow").with("days", d.to_string())
            }
            Some(d) => Message::new("why.preserve_before").with("days", d.to_string()),
            None if input.kind.is_preservation() => Message::new("why.preserve_request"),
            None => Message::new("why.preserve_unknown"),
        };
        push(StepAction::Preserve, what, why, Some(p.id.clone()), p.citations.clone());
    }

    // 3. Data that is gone for good (fixed or maximum periods).
    for r in retention.iter().filter(|r| r.status == RetentionStatus::LikelyPurged) {
        push(
            StepAction::ConfirmData,
            Message::new("plan.confirm_data")
                .with("target", r.target.to_string())
                .term("category", "category", r.category.as_str()),
            Message::new("why.confirm_data"),
            None,
            r.citations.clone(),
        );
    }

    // 4. Dual criminality that needs work before sending.
    for d in dual {
        let m = |code: &'static str| {
            Message::new(code)
                .with("offence", &d.offence)
                .with("name", &d.name_en)
                .with("name_zh", &d.name_zh)
                .with_str("state", input.requested.as_str())
        };
        match (d.verdict, d.required) {
            (_, DcRequirement::NotRequired) | (Verdict::Satisfied, _) => {}
            (Verdict::NotSatisfied, _) => push(
                StepAction::Reframe,
                m("plan.reframe"),
                m("why.reframe"),
                None,
                d.citations.clone(),
            ),
            (Verdict::Conditional, _) => push(
                StepAction::EstablishFacts,
                m("plan.establish_facts"),
                m("why.establish_facts"),
                None,
                d.citations.clone(),
            ),
            (Verdict::Unknown, _) => push(
                StepAction::EstablishFacts,
                m("plan.ask_dual_criminality"),
                m("why.dc_unknown"),
                None,
                d.citations.clone(),
            ),
        }
    }

    // 5. The production request (or, after a preservation request, the formal follow-up).
    let own_law_order = picks.production.and_then(|c| c.issuing_instrument.clone());
    if input.kind.is_preservation() {
        if picks.preservation.is_none() {
            let (what, why) = no_channel(input, "plan.no_channel", "why.no_channel");
            push(StepAction::NoChannel, what, why, None, Vec::new());
        }
        if let Some(f) = picks.follow_up {
            let within = picks.preservation.and_then(|p| p.preservation_days);
            let what = match within {
                Some(w) => ch_msg("plan.follow_up_within", f).with("within", w.to_string()),
                None => ch_msg("plan.follow_up", f),
            };
            push(
                StepAction::FollowUp,
                what,
                Message::new("why.follow_up"),
                Some(f.id.clone()),
                f.citations.clone(),
            );
        }
    } else {
        if let Some(c) = picks.production
            && !c.coercive
            && !input.kind.default_categories().is_empty()
        {
            // Data from a provider needs a channel that can compel it; none exists.
            let (what, why) = no_channel(input, "plan.no_coercive_channel", "why.no_coercive_channel");
            push(StepAction::NoChannel, what, why, None, Vec::new());
        }
        match picks.production {
            Some(c) => {
                let within = if preserve {
                    picks.preservation.and_then(|p| p.preservation_days)
                } else {
                    None
                };
                let what = match (&own_law_order, within) {
                    (Some(i), _) => ch_msg("plan.order_own_law", c).with("instrument", i),
                    (None, Some(w)) => ch_msg("plan.send_within", c)
                        .term("kind", "kind", input.kind.as_str())
                        .with("within", w.to_string()),
                    (None, None) => ch_msg("plan.send", c).term("kind", "kind", input.kind.as_str()),
                };
                let why = if !c.coercive {
                    Message::new("why.send_informal")
                } else if c.conditions_doubtful() {
                    Message::new("why.send_doubtful")
                } else if picks.emergency.is_some_and(|e| e.id != c.id) {
                    Message::new("why.send_after_emergency")
                } else if own_law_order.is_some() {
                    Message::new("why.order_own_law")
                } else {
                    Message::new("why.send_coercive")
                };
                push(StepAction::Send, what, why, Some(c.id.clone()), c.citations.clone());
            }
            None => {
                let (what, why) = no_channel(input, "plan.no_channel", "why.no_channel");
                push(StepAction::NoChannel, what, why, None, Vec::new());
            }
        }
    }

    // 6. What the requested state's own instruments need (not for orders under the requesting
    // state's own law).
    if own_law_order.is_none() {
        for c in cats {
            if !c.must_contain.is_empty() {
                let parts: Vec<&str> = c.must_contain.iter().map(|s| &**s).collect();
                push(
                    StepAction::Include,
                    Message::new("plan.include")
                        .term("category", "category", c.category.as_str())
                        .with("instrument", c.instrument.clone().map_or(Val::Static("?"), Val::Shared))
                        .with("items", parts.join("; ")),
                    Message::new("why.include").with_str("state", input.requested.as_str()),
                    None,
                    c.citations.clone(),
                );
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for c in cats {
            for a in &c.approvals {
                if !seen.contains(&&*a.citation.rule) {
                    seen.push(&a.citation.rule);
                    push(
                        StepAction::ObtainApproval,
                        Message::new("plan.approval").with("requirement", &a.requirement),
                        Message::new("why.approval").with_str("state", input.requested.as_str()),
                        None,
                        vec![a.citation.clone()],
                    );
                }
            }
        }
    }
    steps
}
