//! Plain benchmark (no harness): rule-pack loading time and assessments per second on one core.
//!
//! `CARGO_TARGET_DIR=... cargo bench -p liaison-law --bench assess`

use liaison_core::request::{Amount, Target, TargetValue};
use liaison_core::{CountryCode, DataCategory, RequestKind, Urgency};
use liaison_law::{AssessmentInput, RulePacks, assess};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

fn inputs() -> Vec<AssessmentInput> {
    let target = |from: &str, until: &str| Target {
        value: TargetValue::Ip {
            address: "198.51.100.7".parse().unwrap_or_else(|e| panic!("{e}")),
            port: None,
            observed_at: ts(until),
            zone: None,
        },
        from: ts(from),
        until: ts(until),
        provider: None,
    };
    let base = |from: &str, to: &str, kind: RequestKind, offences: &[&str], cats: &[DataCategory]| AssessmentInput {
        requesting: cc(from),
        requested: cc(to),
        kind,
        urgency: Urgency::Routine,
        offences: offences.iter().map(|s| s.to_string()).collect(),
        conduct: vec![],
        amount: None,
        categories: cats.to_vec(),
        targets: vec![target("2026-09-01T00:00:00Z", "2026-09-02T00:00:00Z")],
        as_of: ts("2026-11-22T00:00:00Z"),
        observed_durations: BTreeMap::new(),
    };
    let mut v = vec![
        base(
            "US",
            "CN",
            RequestKind::TrafficData,
            &["BC-08"],
            &[DataCategory::TrafficData],
        ),
        base(
            "CN",
            "US",
            RequestKind::StoredContent,
            &["OBSCENE-DISSEMINATION"],
            &[DataCategory::StoredContent],
        ),
        base("DE", "FR", RequestKind::ExpeditedPreservation, &["BC-02"], &[]),
        base(
            "GB",
            "US",
            RequestKind::SubscriberInformation,
            &["BC-09", "BC-11"],
            &[DataCategory::SubscriberInformation, DataCategory::IdentificationData],
        ),
    ];
    // The paths issue #16 added: a CN->US preservation with the provider named (direct
    // preservation first, the MLAA as follow-up) and an emergency US->KR request.
    let mut pres = base("CN", "US", RequestKind::ExpeditedPreservation, &["FRAUD-TELECOM"], &[]);
    pres.targets[0].provider = Some(liaison_core::Provider {
        name: "ExampleMail Inc.".into(),
        established_in: cc("US"),
        offers_services_in_eu: true,
    });
    v.push(pres);
    let mut emergency = base(
        "US",
        "KR",
        RequestKind::SubscriberInformation,
        &["BC-02"],
        &[DataCategory::SubscriberInformation],
    );
    emergency.urgency = Urgency::Emergency;
    v.push(emergency);
    v[0].amount = Some(Amount {
        value: liaison_core::money::Decimal::from_units(2000),
        currency: "CNY".into(),
    });
    v[3].conduct = vec!["possession_only".into()];
    v
}

fn main() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules"));

    // Loading: parse + validate + index every pack.
    let runs = 50;
    let mut best = Duration::MAX;
    let start = Instant::now();
    for _ in 0..runs {
        let t = Instant::now();
        let p = RulePacks::load(&dir).unwrap_or_else(|e| panic!("{e}"));
        black_box(&p);
        best = best.min(t.elapsed());
    }
    let mean = start.elapsed() / runs;
    println!(
        "rule-pack load: mean {:.2} ms, best {:.2} ms ({runs} runs)",
        mean.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e3
    );

    let packs = RulePacks::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let inputs = inputs();
    // Warm up.
    for i in &inputs {
        black_box(assess(&packs, i).unwrap_or_else(|e| panic!("{e}")));
    }
    for (name, set) in [
        ("mixed (6 request shapes)", &inputs[..]),
        ("US->CN traffic data, fraud", &inputs[..1]),
    ] {
        let n = 200_000usize;
        let t = Instant::now();
        for k in 0..n {
            let a = assess(&packs, black_box(&set[k % set.len()]));
            black_box(a.ok());
        }
        let el = t.elapsed();
        println!(
            "assess {name}: {n} in {:.3} s = {:.0} assessments/s ({:.2} µs each), one thread",
            el.as_secs_f64(),
            n as f64 / el.as_secs_f64(),
            el.as_secs_f64() * 1e6 / n as f64
        );
    }
}
