//! The assessment engine: a pure, deterministic function of the rule packs and the input.

use crate::model::*;
use crate::pack::{Channel, CriminalityRule, Jurisdiction, LawVerdict, Membership, MembershipStatus, RulePacks};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use liaison_core::request::{Amount, RequestDraft, Target};
use liaison_core::{CountryCode, DataCategory, RequestKind, Urgency};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
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

    // Channels for the request itself, and for preservation (used by the plan).
    let members = Members::new(packs, input);
    let channels = channels_for(packs, &members, input, input.kind);
    let main = channels.iter().find(|c| c.coercive).or(channels.first());
    treaty_notes(packs, &members, t, &mut notes);
    for c in &input.conduct {
        let known = input
            .offences
            .iter()
            .filter_map(|o| inner.taxonomy.get(o))
            .any(|o| o.conduct.iter().any(|k| k == c));
        if !known {
            notes.push(format!(
                "conduct qualifier '{c}' is not distinguished by the packs for these offences and was ignored"
            ));
        }
    }

    // Dual criminality per offence.
    let reservation_29_4 = has_reservation(packs, input.requested, "budapest", "29(4)", t);
    let mut dual = Vec::with_capacity(input.offences.len());
    for code in &input.offences {
        let Some(off) = inner.taxonomy.get(code) else { continue };
        let (verdict, explanation, max_penalty, cites) = dual_criminality(requested, &off.code, input);
        let (required, extra) = match main {
            Some(c) if c.dual_criminality == DcRequirement::NotRequired && reservation_29_4 && !off.is_budapest() => (
                DcRequirement::Discretionary,
                Some(format!(
                    "{} made the Budapest Art 29(4) reservation: preservation may be refused for offences outside Arts 2-11 if dual criminality cannot be met at disclosure",
                    input.requested
                )),
            ),
            Some(c) => (c.dual_criminality, None),
            None => (DcRequirement::Required, None),
        };
        let mut explanation = explanation;
        if let Some(e) = extra {
            explanation.push_str("; ");
            explanation.push_str(&e);
        }
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
            explanation,
            max_penalty_years: max_penalty,
            citations,
        });
    }

    // Evidence instruments per category.
    let categories: Vec<DataCategory> = if input.categories.is_empty() {
        input.kind.default_categories().to_vec()
    } else {
        input.categories.clone()
    };
    let mut cat_out = Vec::with_capacity(categories.len());
    for cat in &categories {
        cat_out.push(category_requirement(requested, *cat, &dual, t));
    }

    // Retention per target and stored category.
    let main_days = main.map(|c| c.expected_days).unwrap_or(365.0);
    let mut retention = Vec::new();
    let can_preserve =
        !input.targets.is_empty() && has_channel(packs, &members, input, RequestKind::ExpeditedPreservation);
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
                        explanation: format!(
                            "{} ({}) is typically treated as touching this ground",
                            off.code, off.name_en
                        ),
                        citations: ch.option.citations.clone(),
                    });
                }
            }
            if r.ground == RefusalGround::DualCriminality {
                for d in &dual {
                    if ch.option.dual_criminality == DcRequirement::NotRequired {
                        continue;
                    }
                    let (level, why) = match d.verdict {
                        Verdict::NotSatisfied => (RiskLevel::High, "is not an offence"),
                        Verdict::Conditional => (RiskLevel::Low, "is an offence only under conditions"),
                        Verdict::Unknown => (RiskLevel::Low, "may not be an offence (unknown)"),
                        Verdict::Satisfied => continue,
                    };
                    refusal_risks.push(RefusalRisk {
                        ground: r.ground,
                        level,
                        channel: ch.option.id.clone(),
                        clause: r.clause.clone(),
                        explanation: format!(
                            "{} ({}) {why} in {} (see dual criminality)",
                            d.offence, d.name_en, input.requested
                        ),
                        citations: d.citations.clone(),
                    });
                }
            }
        }
    }

    // Preservation goes through the fastest channel that takes it, coercive or not.
    let fastest_preservation: Option<ChannelOption> = if input.kind.is_preservation() {
        channels
            .iter()
            .min_by(|a, b| fastest_first(a, b))
            .map(|c| c.option.clone())
    } else if retention.iter().any(|r| r.preserve_now) {
        best_channel(
            packs,
            &members,
            input,
            RequestKind::ExpeditedPreservation,
            |_| true,
            fastest_first,
        )
    } else {
        None
    };
    // After a preservation, the formal request that must follow it.
    let follow_up = if input.kind.is_preservation() {
        best_channel(
            packs,
            &members,
            input,
            RequestKind::StoredContent,
            |c| c.coercive && c.preservation_days.is_none(),
            coercive_then_fastest,
        )
    } else {
        None
    };
    let plan = build_plan(
        input,
        &dual,
        channels.iter().map(|c| &c.option),
        fastest_preservation.as_ref(),
        follow_up.as_ref(),
        &cat_out,
        &retention,
    );
    Ok(Assessment {
        rule_pack_version: Arc::from(inner.hash.as_str()),
        requesting: input.requesting,
        requested: input.requested,
        kind: input.kind,
        as_of: t,
        dual_criminality: dual,
        channels: channels.into_iter().map(|c| c.option).collect(),
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
}

fn has_reservation(packs: &RulePacks, party: CountryCode, treaty: &str, reservation: &str, t: Timestamp) -> bool {
    packs.inner.memberships.get(&party).is_some_and(|ms| {
        ms.iter()
            .any(|m| &*m.treaty == treaty && m.meta.in_force(t) && m.reservations.iter().any(|r| r == reservation))
    })
}

/// Notes on treaties both states have signed but that are not in force, and on membership
/// statuses the packs do not know.
fn treaty_notes(packs: &RulePacks, members: &Members<'_>, t: Timestamp, notes: &mut Vec<String>) {
    for (idx, tr) in packs.inner.treaty_list.iter().enumerate() {
        if !tr.meta.in_force(t) {
            continue;
        }
        let (a, b) = members.pair(idx);
        if !tr.in_force
            && let (Some(a), Some(b)) = (a, b)
            && a.status != MembershipStatus::NotParty
            && b.status != MembershipStatus::NotParty
        {
            notes.push(format!("{} binds neither state yet: {}", tr.name, tr.note));
        }
        for m in [a, b].into_iter().flatten() {
            if m.status == MembershipStatus::Unknown {
                notes.push(format!(
                    "status under {} unknown in the packs ({}): {}",
                    tr.name, m.meta.id, m.note
                ));
            }
        }
    }
}

fn is_bound(status: MembershipStatus) -> bool {
    matches!(status, MembershipStatus::Party | MembershipStatus::Member)
}

/// Whether any channel takes requests of `kind` between the two states (no allocation).
fn has_channel(packs: &RulePacks, members: &Members<'_>, input: &AssessmentInput, kind: RequestKind) -> bool {
    packs
        .inner
        .channels
        .iter()
        .any(|ch| channel_applies(packs, members, ch, input, kind).is_some())
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
    if !ch.meta.in_force(t)
        || (!ch.request_kinds.is_empty() && !ch.request_kinds.contains(&kind))
        || (!ch.requested_in.is_empty() && !ch.requested_in.contains(&input.requested))
    {
        return None;
    }
    let Some(treaty) = ch.treaty_idx else { return Some(None) };
    let tr = packs.inner.treaty_list.get(treaty)?;
    if !tr.in_force || !tr.meta.in_force(t) {
        return None;
    }
    match members.pair(treaty) {
        (Some(a), Some(b)) if is_bound(a.status) && is_bound(b.status) => {
            Some(Some((a.meta.citation.clone(), b.meta.citation.clone())))
        }
        _ => None,
    }
}

fn fastest_first(a: &ChannelOption, b: &ChannelOption) -> std::cmp::Ordering {
    a.expected_days
        .total_cmp(&b.expected_days)
        .then_with(|| b.coercive.cmp(&a.coercive))
        .then_with(|| a.id.cmp(&b.id))
}

fn coercive_then_fastest(a: &ChannelOption, b: &ChannelOption) -> std::cmp::Ordering {
    b.coercive
        .cmp(&a.coercive)
        .then(a.expected_days.total_cmp(&b.expected_days))
        .then_with(|| a.id.cmp(&b.id))
}

/// The best channel for `kind` by `order` among those passing `keep`, built without
/// materialising the others' citations.
fn best_channel(
    packs: &RulePacks,
    members: &Members<'_>,
    input: &AssessmentInput,
    kind: RequestKind,
    keep: impl Fn(&Channel) -> bool,
    order: fn(&ChannelOption, &ChannelOption) -> std::cmp::Ordering,
) -> Option<ChannelOption> {
    let mut best: Option<(ChannelOption, &Channel)> = None;
    for ch in &packs.inner.channels {
        if !keep(ch) || channel_applies(packs, members, ch, input, kind).is_none() {
            continue;
        }
        let light = option(ch, input, Vec::new());
        if best.as_ref().is_none_or(|(b, _)| order(&light, b).is_lt()) {
            best = Some((light, ch));
        }
    }
    let (mut opt, ch) = best?;
    if let Some(Some((a, b))) = channel_applies(packs, members, ch, input, kind) {
        opt.citations = vec![ch.meta.citation.clone(), a.clone()];
        if b != a {
            opt.citations.push(b);
        }
    } else {
        opt.citations = vec![ch.meta.citation.clone()];
    }
    Some(opt)
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
    out: &mut Vec<String>,
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
    for code in &input.offences {
        if floor.exempt_offences.iter().any(|e| e == code) {
            continue;
        }
        let (_, _, max, _) = dual_criminality(requesting, code, input);
        match max {
            Some(m) if m >= floor.min_years => {}
            Some(m) => out.push(format!(
                "{code}: punishable by at most {m} years in {}, below the {} years this channel needs for these categories",
                input.requesting, floor.min_years
            )),
            None => out.push(format!(
                "{code}: this channel needs an offence punishable by at least {} years in {} for these categories; the pack does not know the penalty",
                floor.min_years, input.requesting
            )),
        }
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
        coercive: ch.coercive,
        dual_criminality: ch.dual_criminality,
        expected_days,
        duration_source,
        preservation_days: ch.preservation_days,
        note: ch.note.clone(),
        warnings: Vec::new(),
        citations,
    }
}

fn conduct_matches(rule: &CriminalityRule, conduct: &[String]) -> bool {
    rule.conduct.iter().any(|c| conduct.iter().any(|i| i == c))
}

fn dual_criminality(
    j: &Jurisdiction,
    code: &str,
    input: &AssessmentInput,
) -> (Verdict, String, Option<f64>, Vec<Arc<Citation>>) {
    let t = input.as_of;
    let Some(rules) = j.criminality.get(code) else {
        return (
            Verdict::Unknown,
            format!("the {} pack has no rule for {code}", j.code),
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
    let mut best: Option<(Verdict, String, Option<f64>, Arc<Citation>)> = None;
    for r in candidates() {
        let (v, why) = evaluate(r, input.amount.as_ref());
        if best.as_ref().is_none_or(|b| v.rank() < b.0.rank()) {
            best = Some((v, why, r.max_penalty_years, r.meta.citation.clone()));
        }
    }
    match best {
        Some((v, why, p, c)) => (v, why, p, vec![c]),
        None => {
            let mut known: Vec<&str> = in_force().flat_map(|r| r.conduct.iter().map(String::as_str)).collect();
            known.sort_unstable();
            known.dedup();
            let msg = if known.is_empty() {
                format!("the {} pack has no rule for {code} in force on this date", j.code)
            } else {
                format!("the answer depends on the conduct: state one of {}", known.join(", "))
            };
            (Verdict::Unknown, msg, None, Vec::new())
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

fn evaluate(r: &CriminalityRule, amount: Option<&Amount>) -> (Verdict, String) {
    let base = match r.verdict {
        LawVerdict::Criminal => Verdict::Satisfied,
        LawVerdict::NotCriminal => return (Verdict::NotSatisfied, r.note.to_string()),
        LawVerdict::Conditional => Verdict::Conditional,
        LawVerdict::Unknown => return (Verdict::Unknown, r.note.to_string()),
    };
    let Some(th) = &r.threshold else {
        return (base, r.note.to_string());
    };
    match (th.amount_min, &th.currency, amount) {
        (Some(min), Some(cur), Some(a)) if same_currency(&a.currency, cur) => {
            if a.value.below(min) {
                (
                    Verdict::NotSatisfied,
                    format!(
                        "{} {} is below the criminal threshold ({}): administrative matter only, coercive criminal measures unavailable. {}",
                        a.value, a.currency, th.description, r.note
                    ),
                )
            } else if th.amount_certain.is_some_and(|c| a.value.below(c)) {
                (
                    Verdict::Conditional,
                    format!(
                        "{} {} is above the national floor but below the highest regional threshold ({}): criminal only where the local threshold is met. {}",
                        a.value, a.currency, th.description, r.note
                    ),
                )
            } else {
                (
                    base,
                    format!(
                        "{} {} meets the threshold ({}). {}",
                        a.value, a.currency, th.description, r.note
                    ),
                )
            }
        }
        (Some(_), Some(cur), Some(a)) => (
            Verdict::Conditional,
            format!(
                "criminal only above a threshold ({}); the amount is in {}, not {cur}: convert at the date of the offence. {}",
                th.description, a.currency, r.note
            ),
        ),
        _ => (
            Verdict::Conditional,
            format!("criminal only above a threshold ({}); {}", th.description, r.note),
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
                if d.verdict == Verdict::NotSatisfied {
                    out.warnings.push(format!(
                        "{}: not an offence in {}, so this instrument (offences punishable by more than {floor} year(s)) is unavailable",
                        d.offence, j.code
                    ));
                    continue;
                }
                match d.max_penalty_years {
                    Some(p) if p > floor => {}
                    Some(p) => out.warnings.push(format!(
                        "{}: maximum penalty {p} years in {} does not exceed {floor} year(s), so this instrument is unavailable",
                        d.offence, j.code
                    )),
                    None => out.warnings.push(format!(
                        "{}: this instrument needs an offence punishable by more than {floor} year(s) in {}; the pack does not know the penalty",
                        d.offence, j.code
                    )),
                }
            }
        }
    } else {
        out.warnings.push(format!(
            "the {} pack has no rule for {cat} on this date: requirements unknown",
            j.code
        ));
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
        period: None,
        estimated_purge: None,
        days_left: None,
        preserve_now: false,
        explanation: String::new(),
        citations: Vec::new(),
    };
    let wants_preservation = !kind.is_preservation() && can_preserve;
    // The law in force when the newest data of the window was generated.
    let Some(rule) = j
        .retention
        .get(&cat)
        .and_then(|rs| rs.iter().find(|r| r.meta.in_force(target.until)))
    else {
        out.explanation = format!(
            "the {} pack has no retention rule for {cat} at the time of the data",
            j.code
        );
        out.preserve_now = wants_preservation;
        return out;
    };
    out.citations.push(rule.meta.citation.clone());
    out.period = rule.period.clone();
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
        out.explanation = format!("no retention duty for {cat} in {}: {}", j.code, rule.note);
        out.preserve_now = wants_preservation;
        return out;
    };
    let days = |a: Timestamp| a.duration_since(t).as_secs().div_euclid(86_400);
    out.estimated_purge = Some(purge_last);
    let left_first = days(purge_first);
    out.days_left = Some(left_first);
    let period = rule.period.as_deref().unwrap_or("the retention period");
    let mut e = String::new();
    if t >= purge_last {
        out.status = RetentionStatus::LikelyPurged;
        let _ = write!(
            e,
            "retention {period} ended on {}: data likely already purged",
            day(purge_last)
        );
    } else if t >= purge_first {
        out.status = RetentionStatus::PartiallyPurged;
        let _ = write!(
            e,
            "the oldest data passed the retention {period}; the rest will go by {} ({} days)",
            day(purge_last),
            days(purge_last)
        );
        out.preserve_now = wants_preservation;
    } else if (left_first as f64) < main_days {
        out.status = RetentionStatus::AtRisk;
        let _ = write!(
            e,
            "retention {period}: data goes from {} ({left_first} days), before the request is expected to be answered (~{} days)",
            day(purge_first),
            days_text(main_days)
        );
        out.preserve_now = wants_preservation;
    } else {
        out.status = RetentionStatus::Available;
        let _ = write!(
            e,
            "retention {period}: data kept until at least {} ({left_first} days)",
            day(purge_first)
        );
    }
    let _ = write!(e, ". {}", rule.note);
    out.explanation = e;
    out
}

/// Whole days for display (avoids float formatting on the hot path).
pub(crate) fn days_text(d: f64) -> i64 {
    d.round() as i64
}

/// The UTC calendar day of an instant (`2026-08-18`).
fn day(t: Timestamp) -> jiff::civil::Date {
    TimeZone::UTC.to_datetime(t).date()
}

fn build_plan<'a>(
    input: &AssessmentInput,
    dual: &[DualCriminality],
    channels: impl Iterator<Item = &'a ChannelOption> + Clone,
    preservation: Option<&ChannelOption>,
    follow_up: Option<&ChannelOption>,
    cats: &[CategoryRequirement],
    retention: &[RetentionRisk],
) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut push = |action: StepAction, text: String, channel: Option<Arc<str>>, citations: Vec<Arc<Citation>>| {
        let order = steps.len() as u32 + 1;
        steps.push(Step {
            order,
            action,
            text,
            channel,
            citations,
        });
    };
    let main = channels
        .clone()
        .find(|c| c.coercive)
        .or_else(|| channels.clone().next());
    let preserve = retention.iter().any(|r| r.preserve_now);
    if preserve && let Some(p) = preservation {
        let keep = p
            .preservation_days
            .map(|d| format!("; data kept for at least {d} days"))
            .unwrap_or_default();
        let informal = if p.coercive {
            ""
        } else {
            " (informal request: no coercive measures, the provider may decline)"
        };
        let late = retention
            .iter()
            .filter(|r| r.preserve_now)
            .filter_map(|r| r.days_left)
            .any(|d| (d as f64) < p.expected_days);
        let late = if late {
            "; this channel may be too slow for the oldest data"
        } else {
            ""
        };
        push(
            StepAction::Preserve,
            format!(
                "Preserve now via {}{informal} (~{} days){keep}{late}",
                p.name,
                days_text(p.expected_days)
            ),
            Some(p.id.clone()),
            p.citations.clone(),
        );
    }
    for r in retention.iter().filter(|r| r.status == RetentionStatus::LikelyPurged) {
        push(
            StepAction::ConfirmData,
            format!(
                "Target {} ({}): data likely already purged; confirm with the provider or look for other sources before drafting",
                r.target, r.category
            ),
            None,
            r.citations.clone(),
        );
    }
    for d in dual {
        match (d.verdict, d.required) {
            (_, DcRequirement::NotRequired) => {}
            (Verdict::NotSatisfied, _) => push(
                StepAction::Reframe,
                format!(
                    "{} ({}): dual criminality fails in {}; expect refusal unless the request is built on conduct that is criminal there",
                    d.offence, d.name_en, input.requested
                ),
                None,
                d.citations.clone(),
            ),
            (Verdict::Conditional, _) => push(
                StepAction::EstablishFacts,
                format!(
                    "{} ({}): state the facts that meet the condition — {}",
                    d.offence, d.name_en, d.explanation
                ),
                None,
                d.citations.clone(),
            ),
            (Verdict::Unknown, _) => push(
                StepAction::EstablishFacts,
                format!(
                    "{} ({}): dual criminality unknown — {}; ask the requested central authority before sending",
                    d.offence, d.name_en, d.explanation
                ),
                None,
                d.citations.clone(),
            ),
            (Verdict::Satisfied, _) => {}
        }
    }
    match main {
        Some(c) => {
            let within = match (preserve, preservation.and_then(|p| p.preservation_days)) {
                (true, Some(d)) if !input.kind.is_preservation() => format!(" within {d} days of the preservation"),
                _ => String::new(),
            };
            push(
                StepAction::Send,
                format!(
                    "Send the {} request via {}{within} (expected ~{} days)",
                    input.kind,
                    c.name,
                    days_text(c.expected_days)
                ),
                Some(c.id.clone()),
                c.citations.clone(),
            );
            if let (Some(days), Some(f)) = (c.preservation_days, follow_up) {
                push(
                    StepAction::Send,
                    format!(
                        "Follow with a formal request via {} for the preserved data within {days} days (expected ~{} days)",
                        f.name,
                        days_text(f.expected_days)
                    ),
                    Some(f.id.clone()),
                    f.citations.clone(),
                );
            }
        }
        None => push(
            StepAction::NoChannel,
            format!(
                "No channel between {} and {} for {} in the packs",
                input.requesting, input.requested, input.kind
            ),
            None,
            Vec::new(),
        ),
    }
    for c in cats {
        if !c.must_contain.is_empty() {
            let parts: Vec<&str> = c.must_contain.iter().map(|s| &**s).collect();
            push(
                StepAction::Include,
                format!(
                    "For {} ({}): include {}",
                    c.category,
                    c.instrument.as_deref().unwrap_or("instrument unknown"),
                    parts.join("; ")
                ),
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
                    format!("Expect: {}", a.requirement),
                    None,
                    vec![a.citation.clone()],
                );
            }
        }
    }
    steps
}
