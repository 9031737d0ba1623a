//! Prints the assessment of a sample request (US asks China for traffic data about a fraud).
//!
//! `cargo run -p liaison-law --example assess -- rules US CN BC-08 2000`

use liaison_core::request::{Amount, Target, TargetValue};
use liaison_core::{CountryCode, RequestKind, Urgency};
use liaison_law::{AssessmentInput, RulePacks, assess};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_string());
    let packs = RulePacks::load(&PathBuf::from(arg(1, "rules")))?;
    let as_of: jiff::Timestamp = "2026-11-22T00:00:00Z".parse()?;
    let event: jiff::Timestamp = "2026-07-01T08:00:00Z".parse()?;
    let input = AssessmentInput {
        requesting: CountryCode::parse(&arg(2, "US"))?,
        requested: CountryCode::parse(&arg(3, "CN"))?,
        kind: RequestKind::TrafficData,
        urgency: Urgency::Routine,
        offences: vec![arg(4, "BC-08")],
        conduct: args.get(6).map(|c| vec![c.clone()]).unwrap_or_default(),
        amount: Some(Amount {
            value: arg(5, "2000").parse()?,
            currency: "CNY".into(),
        }),
        categories: vec![],
        targets: vec![Target {
            value: TargetValue::Ip {
                address: "203.0.113.9".parse()?,
                port: Some(51_000),
                observed_at: event,
                zone: None,
            },
            from: event,
            until: event,
            provider: None,
        }],
        as_of,
        observed_durations: BTreeMap::new(),
    };
    for line in assess(&packs, &input)?.summary_lines() {
        println!("{line}");
    }
    Ok(())
}
