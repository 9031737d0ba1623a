//! The expected-verdict corpus (`tests/corpus/cases.toml`): each case is a request, what the law
//! says should come of it, and the sources for that expectation. Written before the rules
//! changed (issue #16); the engine and the packs must agree with it. Every failing case is
//! reported, with its sources, not just the first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use liaison_core::request::{Amount, Target, TargetValue};
use liaison_core::{DataCategory, Provider, RequestKind, Urgency};
use liaison_law::*;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    id: String,
    title: String,
    why: String,
    sources: Vec<String>,
    input: In,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct In {
    requesting: String,
    requested: String,
    kind: RequestKind,
    #[serde(default = "routine")]
    urgency: Urgency,
    #[serde(default)]
    offences: Vec<String>,
    #[serde(default)]
    conduct: Vec<String>,
    #[serde(default)]
    amount: Option<InAmount>,
    #[serde(default)]
    categories: Vec<DataCategory>,
    as_of: String,
    #[serde(default)]
    targets: Vec<InTarget>,
}

fn routine() -> Urgency {
    Urgency::Routine
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InAmount {
    value: String,
    currency: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InTarget {
    from: String,
    until: String,
    #[serde(default)]
    provider: Option<Provider>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    dual_criminality: BTreeMap<String, String>,
    #[serde(default)]
    offered: Vec<String>,
    #[serde(default)]
    not_offered: Vec<String>,
    #[serde(default)]
    not_yet_available: Vec<String>,
    #[serde(default)]
    first_step: Option<StepWant>,
    #[serde(default)]
    steps: Vec<StepWant>,
    #[serde(default)]
    never_via: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    retention: Vec<RetWant>,
    #[serde(default)]
    warnings: Vec<WarnWant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepWant {
    action: String,
    #[serde(default)]
    channel: Option<String>,
}

impl StepWant {
    fn matches(&self, s: &Step) -> bool {
        s.action.as_str() == self.action && self.channel.as_deref().is_none_or(|c| s.channel.as_deref() == Some(c))
    }
}

impl std::fmt::Display for StepWant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.channel {
            Some(c) => write!(f, "{} via {c}", self.action),
            None => f.write_str(&self.action),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetWant {
    target: usize,
    category: DataCategory,
    status: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WarnWant {
    channel: String,
    code: String,
}

fn load() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/cases.toml");
    let src = std::fs::read_to_string(path).unwrap();
    toml::from_str::<File>(&src)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .case
}

fn to_input(c: &In) -> AssessmentInput {
    let mut i = input(
        &c.requesting,
        &c.requested,
        c.kind,
        &c.offences.iter().map(String::as_str).collect::<Vec<_>>(),
        &c.as_of,
    );
    i.urgency = c.urgency;
    i.conduct.clone_from(&c.conduct);
    i.categories.clone_from(&c.categories);
    i.amount = c.amount.as_ref().map(|a| Amount {
        value: liaison_core::money::Decimal::parse(&a.value).unwrap(),
        currency: a.currency.clone(),
    });
    for t in &c.targets {
        i.targets.push(Target {
            value: TargetValue::Account {
                service: "corpus".into(),
                identifier: "target".into(),
            },
            from: ts(&t.from),
            until: ts(&t.until),
            provider: t.provider.clone(),
        });
    }
    i
}

/// What the assessment got wrong for one case (empty: it agrees).
fn check_case(c: &Case, a: &Assessment) -> Vec<String> {
    let mut bad = Vec::new();
    let e = &c.expect;
    for (off, want) in &e.dual_criminality {
        match a.dual_criminality.iter().find(|d| &*d.offence == off) {
            Some(d) if d.verdict.code() == want => {}
            Some(d) => bad.push(format!(
                "dual criminality {off}: {} (expected {want}) — {}",
                d.verdict.code(),
                d.explanation(Lang::En)
            )),
            None => bad.push(format!("dual criminality {off}: not assessed")),
        }
    }
    let offered: Vec<&str> = a.channels.iter().map(|c| &*c.id).collect();
    for id in &e.offered {
        if !offered.contains(&id.as_str()) {
            bad.push(format!("channel {id} not offered (offered: {offered:?})"));
        }
    }
    for id in &e.not_offered {
        if offered.contains(&id.as_str()) {
            bad.push(format!("channel {id} offered but must not be"));
        }
    }
    let later: Vec<&str> = a.unavailable.iter().map(|u| &*u.id).collect();
    for id in &e.not_yet_available {
        if !later.contains(&id.as_str()) {
            bad.push(format!(
                "channel {id} not shown as not yet available (shown: {later:?})"
            ));
        }
    }
    let plan: Vec<String> = a
        .plan
        .iter()
        .map(|s| format!("{} via {}", s.action.as_str(), s.channel.as_deref().unwrap_or("-")))
        .collect();
    if let Some(f) = &e.first_step
        && !a.plan.first().is_some_and(|s| f.matches(s))
    {
        bad.push(format!("first step is not {f}: plan {plan:?}"));
    }
    let mut at = 0;
    for want in &e.steps {
        match a.plan[at..].iter().position(|s| want.matches(s)) {
            Some(p) => at += p + 1,
            None => {
                bad.push(format!("no step {want} in order: plan {plan:?}"));
                break;
            }
        }
    }
    for (action, ids) in &e.never_via {
        for s in a.plan.iter().filter(|s| s.action.as_str() == action) {
            if let Some(ch) = &s.channel
                && ids.iter().any(|i| i == &**ch)
            {
                bad.push(format!("step {action} goes via {ch}, which it must not"));
            }
        }
    }
    for r in &e.retention {
        match a
            .retention
            .iter()
            .find(|x| x.target == r.target && x.category == r.category)
        {
            Some(x) if x.status.as_str() == r.status => {}
            Some(x) => bad.push(format!(
                "retention target {} {}: {} (expected {}) — {}",
                r.target,
                r.category,
                x.status.as_str(),
                r.status,
                x.reason.render(Lang::En)
            )),
            None => bad.push(format!("retention target {} {}: not assessed", r.target, r.category)),
        }
    }
    for w in &e.warnings {
        let code = format!("warning.{}", w.code);
        match a.channels.iter().find(|c| *c.id == *w.channel) {
            Some(ch) if ch.warnings.iter().any(|m| m.code == code) => {}
            Some(ch) => bad.push(format!(
                "channel {} lacks warning {} (has {:?})",
                w.channel,
                w.code,
                ch.warnings.iter().map(|m| &*m.code).collect::<Vec<_>>()
            )),
            None => bad.push(format!("channel {} (for warning {}) not offered", w.channel, w.code)),
        }
    }
    bad
}

#[test]
fn the_corpus_is_well_formed() {
    let cases = load();
    assert!(
        cases.len() >= 40,
        "the issue asks for at least 40 cases, found {}",
        cases.len()
    );
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "case ids must be unique");
    // Every channel id the corpus names exists in the packs.
    let known: Vec<&str> = packs().channel_ids().collect();
    for c in &cases {
        let e = &c.expect;
        let named = e
            .offered
            .iter()
            .chain(&e.not_offered)
            .chain(&e.not_yet_available)
            .chain(e.first_step.iter().chain(&e.steps).filter_map(|s| s.channel.as_ref()))
            .chain(e.never_via.values().flatten())
            .chain(e.warnings.iter().map(|w| &w.channel));
        for id in named {
            assert!(known.contains(&id.as_str()), "{}: unknown channel id {id}", c.id);
        }
    }
    for c in &cases {
        assert!(!c.sources.is_empty(), "{}: no source", c.id);
        assert!(!c.why.trim().is_empty() && !c.title.trim().is_empty(), "{}", c.id);
    }
}

#[test]
fn the_engine_agrees_with_the_corpus() {
    let cases = load();
    let mut failures = Vec::new();
    for c in &cases {
        let a = match assess(packs(), &to_input(&c.input)) {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{}: {e}", c.id));
                continue;
            }
        };
        let bad = check_case(c, &a);
        if !bad.is_empty() {
            failures.push(format!(
                "{} — {}\n    {}\n    sources: {}",
                c.id,
                c.title,
                bad.join("\n    "),
                c.sources.join("; ")
            ));
        }
        // Every case also renders in both languages without a raw code left over.
        for lang in [Lang::En, Lang::Zh] {
            for line in a.render(lang) {
                assert!(
                    !line.contains("{") && !line.contains("@kind.") && !line.contains("@category."),
                    "{}: unrendered text in {lang:?}: {line}",
                    c.id
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
