#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use jiff::Timestamp;
use liaison_core::request::{Amount, Target, TargetValue};
use liaison_core::{CountryCode, DataCategory, RequestKind, Urgency};
use liaison_law::{AssessmentInput, RulePacks};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

pub fn rules_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"))
}

pub fn packs() -> &'static RulePacks {
    static P: OnceLock<RulePacks> = OnceLock::new();
    P.get_or_init(|| RulePacks::load(&rules_dir()).unwrap())
}

pub fn ts(s: &str) -> Timestamp {
    if s.len() == 10 {
        format!("{s}T00:00:00Z").parse().unwrap()
    } else {
        s.parse().unwrap()
    }
}

pub fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

pub fn input(from: &str, to: &str, kind: RequestKind, offences: &[&str], as_of: &str) -> AssessmentInput {
    AssessmentInput {
        requesting: cc(from),
        requested: cc(to),
        kind,
        urgency: Urgency::Routine,
        offences: offences.iter().map(|s| s.to_string()).collect(),
        conduct: vec![],
        amount: None,
        categories: vec![],
        targets: vec![],
        as_of: ts(as_of),
        observed_durations: BTreeMap::new(),
    }
}

pub fn with_conduct(mut i: AssessmentInput, conduct: &[&str]) -> AssessmentInput {
    i.conduct = conduct.iter().map(|s| s.to_string()).collect();
    i
}

pub fn with_amount(mut i: AssessmentInput, value: f64, currency: &str) -> AssessmentInput {
    i.amount = Some(Amount {
        value: liaison_core::money::Decimal::parse(&value.to_string()).expect("a plain test amount"),
        currency: currency.into(),
    });
    i
}

pub fn with_target(mut i: AssessmentInput, from: &str, until: &str, cats: &[DataCategory]) -> AssessmentInput {
    i.targets.push(Target {
        value: TargetValue::Ip {
            address: "198.51.100.7".parse().unwrap(),
            port: Some(443),
            observed_at: ts(until),
            zone: None,
        },
        from: ts(from),
        until: ts(until),
        provider: None,
    });
    i.categories = cats.to_vec();
    i
}
