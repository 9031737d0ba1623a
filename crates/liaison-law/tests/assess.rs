#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use liaison_core::{DataCategory, RequestKind, Urgency};
use liaison_law::*;

#[test]
fn dual_criminality_table() {
    use RequestKind::*;
    // (name, input, offence index, expected verdict, text the explanation must contain)
    let cases: Vec<(&str, AssessmentInput, Verdict, &str)> = vec![
        (
            "CN->US adult pornography dissemination",
            input("CN", "US", StoredContent, &["OBSCENE-DISSEMINATION"], "2026-11-01"),
            Verdict::NotSatisfied,
            "not a crime in the US",
        ),
        (
            "CN->US legally obscene material",
            with_conduct(
                input("CN", "US", StoredContent, &["OBSCENE-DISSEMINATION"], "2026-11-01"),
                &["legally_obscene"],
            ),
            Verdict::Satisfied,
            "1460",
        ),
        (
            "US->CN possession of CSAM",
            with_conduct(
                input("US", "CN", SubscriberInformation, &["BC-09"], "2026-11-01"),
                &["possession_only"],
            ),
            Verdict::NotSatisfied,
            "possession",
        ),
        (
            "US->CN distribution of CSAM",
            with_conduct(
                input("US", "CN", SubscriberInformation, &["BC-09"], "2026-11-01"),
                &["distribution"],
            ),
            Verdict::Satisfied,
            "dissemin",
        ),
        (
            "US->CN CSAM without conduct qualifier",
            input("US", "CN", SubscriberInformation, &["BC-09"], "2026-11-01"),
            Verdict::Unknown,
            "possession_only",
        ),
        (
            "US->CN fraud below RMB 3,000",
            with_amount(
                input("US", "CN", SubscriberInformation, &["BC-08"], "2026-11-01"),
                2000.0,
                "CNY",
            ),
            Verdict::NotSatisfied,
            "administrative",
        ),
        (
            "US->CN fraud between national floor and provincial maximum",
            with_amount(
                input("US", "CN", SubscriberInformation, &["BC-08"], "2026-11-01"),
                5000.0,
                "RMB",
            ),
            Verdict::Conditional,
            "regional",
        ),
        (
            "US->CN fraud above every threshold",
            with_amount(
                input("US", "CN", SubscriberInformation, &["BC-08"], "2026-11-01"),
                50_000.0,
                "CNY",
            ),
            Verdict::Satisfied,
            "meets the threshold",
        ),
        (
            "US->CN fraud amount in USD",
            with_amount(
                input("US", "CN", SubscriberInformation, &["BC-08"], "2026-11-01"),
                500.0,
                "USD",
            ),
            Verdict::Conditional,
            "convert",
        ),
        (
            "US->CN telecom fraud below RMB 3,000",
            with_amount(
                input("US", "CN", SubscriberInformation, &["FRAUD-TELECOM"], "2026-11-01"),
                2999.0,
                "CNY",
            ),
            Verdict::NotSatisfied,
            "below the criminal threshold",
        ),
        (
            "CN->US hacking",
            input("CN", "US", TrafficData, &["BC-02"], "2026-11-01"),
            Verdict::Satisfied,
            "1030",
        ),
        (
            "US->CN hacking has quantity thresholds",
            input("US", "CN", TrafficData, &["BC-02"], "2026-11-01"),
            Verdict::Conditional,
            "500",
        ),
        (
            "CN->US defamation (criminal libel only in some states, actual malice)",
            input("CN", "US", StoredContent, &["DEFAMATION"], "2026-11-01"),
            Verdict::Conditional,
            "Garrison",
        ),
        (
            "CN->US online gambling is state-dependent",
            input("CN", "US", TrafficData, &["GAMBLING-ONLINE"], "2026-11-01"),
            Verdict::Conditional,
            "state",
        ),
        (
            "US->CN computer forgery unknown",
            input("US", "CN", TrafficData, &["BC-07"], "2026-11-01"),
            Verdict::Unknown,
            "forgery",
        ),
        (
            "US->DE hacking",
            input("US", "DE", TrafficData, &["BC-02"], "2026-11-01"),
            Verdict::Satisfied,
            "202a",
        ),
        (
            "US->RU CSAM unknown in pack",
            input("US", "RU", TrafficData, &["BC-09"], "2026-11-01"),
            Verdict::Unknown,
            "possession",
        ),
        (
            "US->GB gambling: no rule",
            input("US", "GB", TrafficData, &["GAMBLING-ONLINE"], "2026-11-01"),
            Verdict::Unknown,
            "no rule",
        ),
        (
            "US->CN fraud before the 2011 interpretation",
            input("US", "CN", TrafficData, &["BC-08"], "2005-01-01"),
            Verdict::Unknown,
            "no rule",
        ),
    ];
    for (name, inp, want, text) in cases {
        let a = assess(packs(), &inp).unwrap();
        let d = &a.dual_criminality[0];
        assert_eq!(d.verdict, want, "{name}: {d:?}");
        let explanation = d.explanation(Lang::En);
        assert!(
            explanation.contains(text),
            "{name}: explanation {explanation:?} lacks {text:?}"
        );
        assert!(!d.explanation(Lang::Zh).is_empty());
        if want != Verdict::Unknown || !d.citations.is_empty() {
            assert!(d.citations.iter().all(|c| !c.url.is_empty()), "{name}");
        }
    }
}

#[test]
fn cn_to_us_pornography_plan_says_reframe_and_risk() {
    let a = assess(
        packs(),
        &input(
            "CN",
            "US",
            RequestKind::StoredContent,
            &["OBSCENE-DISSEMINATION"],
            "2026-11-01",
        ),
    )
    .unwrap();
    assert_eq!(a.dual_criminality[0].required, DcRequirement::Discretionary);
    assert!(a.plan.iter().any(|s| s.action == StepAction::Reframe));
    assert!(
        a.refusal_risks
            .iter()
            .any(|r| r.ground == RefusalGround::DualCriminality && r.clause.contains("3(1)(a)"))
    );
    assert_eq!(a.channels[0].id.as_ref(), "us-cn-mlaa");
    let content = &a.categories[0];
    assert!(content.standard.as_deref().unwrap().contains("probable cause"));
}

#[test]
fn us_to_cn_requires_prc_approval() {
    let a = assess(
        packs(),
        &input("US", "CN", RequestKind::SubscriberInformation, &["BC-02"], "2026-11-01"),
    )
    .unwrap();
    let rules: Vec<&str> = a.categories[0].approvals.iter().map(|a| &*a.citation.rule).collect();
    assert_eq!(rules, ["cn.ap.icjal-4", "cn.ap.dsl-36", "cn.ap.pipl-41"]);
    assert!(a.plan.iter().any(|s| s.action == StepAction::ObtainApproval));
    // Before the ICJAL (2018) no approval rule applies.
    let old = assess(
        packs(),
        &input("US", "CN", RequestKind::SubscriberInformation, &["BC-02"], "2015-01-01"),
    )
    .unwrap();
    assert!(old.categories[0].approvals.is_empty());
    // Political refusal risk for defamation.
    let d = assess(
        packs(),
        &input("CN", "US", RequestKind::StoredContent, &["DEFAMATION"], "2026-11-01"),
    )
    .unwrap();
    assert!(
        d.refusal_risks
            .iter()
            .any(|r| r.ground == RefusalGround::PoliticalOffence && r.level == RiskLevel::High)
    );
    assert!(
        d.refusal_risks
            .iter()
            .any(|r| r.ground == RefusalGround::EssentialInterests && r.clause.contains("3(1)(c)"))
    );
}

#[test]
fn cn_log_retention_order_82_vs_csl() {
    use DataCategory::TrafficData;
    let cases = [
        // (name, event day, as_of, expected status, rule id)
        (
            "7 months old under Order 82 (2016)",
            "2016-03-01",
            "2016-10-01",
            RetentionStatus::MayBeDeleted,
            "cn.ret.logs.mps82",
        ),
        (
            "7 months old under CSL (2018)",
            "2018-01-01",
            "2018-08-01",
            RetentionStatus::MayBeDeleted,
            "cn.ret.logs.csl21",
        ),
        (
            "5 months old under Order 82 (2016)",
            "2016-01-01",
            "2016-06-01",
            RetentionStatus::MayBeDeleted,
            "cn.ret.logs.mps82",
        ),
        (
            "5 months old under CSL (2018)",
            "2018-01-01",
            "2018-06-01",
            RetentionStatus::AtRisk,
            "cn.ret.logs.csl21",
        ),
        (
            "1 week old under CSL, fast channel not available",
            "2018-05-25",
            "2018-06-01",
            RetentionStatus::AtRisk,
            "cn.ret.logs.csl21",
        ),
    ];
    for (name, event, as_of, want, rule) in cases {
        let i = with_target(
            input("US", "CN", RequestKind::TrafficData, &["BC-02"], as_of),
            event,
            event,
            &[TrafficData],
        );
        let a = assess(packs(), &i).unwrap();
        let r = &a.retention[0];
        assert_eq!(r.status, want, "{name}: {r:?}");
        assert_eq!(&*r.citations[0].rule, rule, "{name}");
        match want {
            // Both are minimum periods: the data may still be there, so preservation stays
            // first and nothing says it is gone (issue #16).
            RetentionStatus::MayBeDeleted => {
                assert!(r.preserve_now, "{name}");
                assert!(r.days_left.unwrap() < 0, "{name}");
                assert_eq!(r.period_kind, Some(PeriodKind::Minimum), "{name}");
                assert!(!a.plan.iter().any(|s| s.action == StepAction::ConfirmData), "{name}");
                assert!(a.plan[0].action == StepAction::Preserve, "{name}: {:?}", a.plan);
                assert!(r.reason.render(Lang::En).contains("may delete"), "{name}");
                // Past the estimate, the plan says so; it never counts "-N days" ahead.
                let why = a.plan[0].why.render(Lang::En);
                assert!(why.starts_with("The retention period has passed"), "{name}: {why}");
                assert!(!why.contains('-'), "{name}: {why}");
            }
            _ => {
                assert!(r.preserve_now, "{name}");
                assert!(r.days_left.unwrap() > 0, "{name}");
                assert!(a.plan[0].action == StepAction::Preserve, "{name}: {:?}", a.plan);
            }
        }
    }
}

#[test]
fn retention_purge_date_and_unknown() {
    let i = with_target(
        input("US", "CN", RequestKind::TrafficData, &["BC-02"], "2018-03-01"),
        "2018-01-01",
        "2018-01-15",
        &[
            DataCategory::TrafficData,
            DataCategory::StoredContent,
            DataCategory::RealtimeContent,
        ],
    );
    let a = assess(packs(), &i).unwrap();
    assert_eq!(a.retention.len(), 2, "real-time categories have no retention");
    assert_eq!(a.retention[0].estimated_purge, Some(ts("2018-07-15")));
    assert_eq!(a.retention[0].days_left, Some(122));
    // Stored content: no retention duty known (the pack has a placeholder or nothing).
    assert!(matches!(
        a.retention[1].status,
        RetentionStatus::Unknown | RetentionStatus::NoDuty
    ));
    // The US has no mandatory retention: no duty, the provider decides; preserve now.
    let us = with_target(
        input("CN", "US", RequestKind::TrafficData, &["BC-02"], "2026-01-10"),
        "2026-01-01",
        "2026-01-02",
        &[DataCategory::TrafficData],
    );
    let a = assess(packs(), &us).unwrap();
    assert_eq!(a.retention[0].status, RetentionStatus::NoDuty);
    assert!(a.retention[0].preserve_now);
}

#[test]
fn preservation_needs_no_dual_criminality() {
    // Both Budapest Parties: Art 29(3).
    let a = assess(
        packs(),
        &input(
            "GB",
            "US",
            RequestKind::ExpeditedPreservation,
            &["OBSCENE-DISSEMINATION"],
            "2026-11-01",
        ),
    )
    .unwrap();
    let d = &a.dual_criminality[0];
    assert_eq!(d.verdict, Verdict::NotSatisfied);
    assert_eq!(d.required, DcRequirement::NotRequired);
    assert!(d.citations.iter().any(|c| c.article.contains("29(3)")));
    assert_eq!(a.channels[0].id.as_ref(), "budapest-24-7");
    assert_eq!(a.channels[0].preservation_days, Some(60));
    assert!(!a.plan.iter().any(|s| s.action == StepAction::Reframe));
    assert!(
        !a.refusal_risks
            .iter()
            .any(|r| r.ground == RefusalGround::DualCriminality && r.channel.as_ref() == "budapest-24-7")
    );
    // China is not a Budapest Party: preservation goes through the MLAA, where dual criminality may be invoked.
    let c = assess(
        packs(),
        &input("US", "CN", RequestKind::ExpeditedPreservation, &["BC-02"], "2026-11-01"),
    )
    .unwrap();
    assert_eq!(c.dual_criminality[0].required, DcRequirement::Discretionary);
    assert!(c.channels.iter().all(|ch| ch.kind != ChannelKind::Network247));
}

#[test]
fn budapest_membership_depends_on_date() {
    // GB became a Party in 2011 (unconfirmed date in the pack): no 24/7 channel with the US before.
    let before = assess(
        packs(),
        &input("GB", "US", RequestKind::ExpeditedPreservation, &["BC-02"], "2010-01-01"),
    )
    .unwrap();
    assert!(before.channels.iter().all(|c| c.id.as_ref() != "budapest-24-7"));
    let after = assess(
        packs(),
        &input("GB", "US", RequestKind::ExpeditedPreservation, &["BC-02"], "2012-01-01"),
    )
    .unwrap();
    assert!(after.channels.iter().any(|c| c.id.as_ref() == "budapest-24-7"));
}

#[test]
fn eu_e_evidence_from_18_august_2026() {
    let cases = [
        (
            "DE->FR content before",
            RequestKind::StoredContent,
            "2026-08-17",
            "eu-epoc",
            false,
        ),
        (
            "DE->FR content after",
            RequestKind::StoredContent,
            "2026-08-18",
            "eu-epoc",
            true,
        ),
        (
            "DE->FR preservation before",
            RequestKind::ExpeditedPreservation,
            "2026-08-17",
            "eu-epoc-pr",
            false,
        ),
        (
            "DE->FR preservation after",
            RequestKind::ExpeditedPreservation,
            "2026-08-18",
            "eu-epoc-pr",
            true,
        ),
        (
            "DE->GB after Brexit",
            RequestKind::StoredContent,
            "2026-09-01",
            "eu-epoc",
            false,
        ),
    ];
    for (name, kind, day, channel, present) in cases {
        let to = if name.contains("GB") { "GB" } else { "FR" };
        let a = assess(packs(), &input("DE", to, kind, &["BC-02"], day)).unwrap();
        let ids: Vec<&str> = a.channels.iter().map(|c| &*c.id).collect();
        assert_eq!(ids.contains(&channel), present, "{name}: {ids:?}");
    }
    // Before: the EIO is the coercive EU channel.
    let a = assess(
        packs(),
        &input("DE", "FR", RequestKind::StoredContent, &["BC-02"], "2026-08-17"),
    )
    .unwrap();
    assert_eq!(a.channels[0].id.as_ref(), "eu-eio");
    let b = assess(
        packs(),
        &input("DE", "FR", RequestKind::StoredContent, &["BC-02"], "2026-08-18"),
    )
    .unwrap();
    assert_eq!(b.channels[0].id.as_ref(), "eu-epoc");
    assert_eq!(b.channels[0].expected_days, 10.0);
}

#[test]
fn emergency_and_observed_durations() {
    let mut i = input("DE", "FR", RequestKind::StoredContent, &["BC-02"], "2026-09-01");
    i.urgency = Urgency::Emergency;
    let a = assess(packs(), &i).unwrap();
    assert!(a.channels[0].expected_days < 1.0, "EPOC emergency: 8 hours");
    let mut j = input("CN", "US", RequestKind::StoredContent, &["BC-02"], "2026-11-01");
    j.observed_durations.insert(
        "us-cn-mlaa".into(),
        ObservedDuration {
            median_days: 420.0,
            samples: MIN_OBSERVED_SAMPLES,
        },
    );
    let a = assess(packs(), &j).unwrap();
    let ch = a.channels.iter().find(|c| c.id.as_ref() == "us-cn-mlaa").unwrap();
    assert_eq!(ch.expected_days, 420.0);
    assert_eq!(
        ch.duration_source,
        DurationSource::Observed {
            samples: MIN_OBSERVED_SAMPLES
        }
    );
    j.observed_durations.insert(
        "us-cn-mlaa".into(),
        ObservedDuration {
            median_days: 420.0,
            samples: MIN_OBSERVED_SAMPLES - 1,
        },
    );
    let a = assess(packs(), &j).unwrap();
    let ch = a.channels.iter().find(|c| c.id.as_ref() == "us-cn-mlaa").unwrap();
    assert_eq!(ch.expected_days, 300.0);
    assert_eq!(ch.duration_source, DurationSource::PackDefault);
}

#[test]
fn us_3512_penalty_floor() {
    let a = assess(
        packs(),
        &input(
            "CN",
            "US",
            RequestKind::StoredContent,
            &["BC-02", "BC-11"],
            "2026-11-01",
        ),
    )
    .unwrap();
    let w = &a.categories[0].warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].code, "evidence.penalty_unknown");
    assert_eq!(
        w[0].param("offence").as_deref(),
        Some("BC-11"),
        "BC-11 has no known penalty: {w:?}"
    );
}

#[test]
fn input_errors_name_the_unknowns() {
    let e = assess(
        packs(),
        &input("CN", "NZ", RequestKind::TrafficData, &["BC-02"], "2026-11-01"),
    )
    .unwrap_err();
    assert_eq!(e, InputError::UnknownJurisdictions(vec![cc("NZ")]));
    assert!(e.to_string().contains("NZ"));
    let e = assess(
        packs(),
        &input(
            "CN",
            "US",
            RequestKind::TrafficData,
            &["BC-02", "HACKING", "X-1"],
            "2026-11-01",
        ),
    )
    .unwrap_err();
    assert_eq!(e, InputError::UnknownOffences(vec!["HACKING".into(), "X-1".into()]));
    assert!(e.to_string().contains("HACKING, X-1"));
    let e = assess(
        packs(),
        &input("CN", "CN", RequestKind::TrafficData, &["BC-02"], "2026-11-01"),
    )
    .unwrap_err();
    assert!(matches!(e, InputError::SameJurisdiction(_)));
}

#[test]
fn deterministic_serialisable_and_printable() {
    let i = with_target(
        with_amount(
            input(
                "US",
                "CN",
                RequestKind::TrafficData,
                &["BC-08", "DEFAMATION"],
                "2026-11-01",
            ),
            2000.0,
            "CNY",
        ),
        "2026-09-01",
        "2026-09-02",
        &[DataCategory::TrafficData, DataCategory::SubscriberInformation],
    );
    let a = assess(packs(), &i).unwrap();
    let b = assess(packs(), &i).unwrap();
    assert_eq!(a, b);
    assert_eq!(&*a.rule_pack_version, packs().content_hash());
    let json = serde_json::to_string(&a).unwrap();
    let back: Assessment = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
    let lines = a.summary_lines();
    assert!(lines.iter().any(|l| l.contains("BC-08") && l.contains("not satisfied")));
    assert!(lines.iter().any(|l| l.contains("Plan:")));
    assert!(!a.unavailable.iter().any(|u| u.id.starts_with("un-")));
    let zh = a.render(Lang::Zh);
    assert!(zh.iter().any(|l| l.contains("不满足")), "{zh:?}");
    assert!(zh.iter().any(|l| l.contains("行动方案")), "{zh:?}");
}

#[test]
fn from_draft_uses_effective_categories() {
    let draft: liaison_core::request::RequestDraft = serde_json::from_str(
        r#"{"kind":"stored_content","urgency":"routine","requesting_agency":"0190a0b0-0000-7000-8000-000000000001","requested_agency":"0190a0b0-0000-7000-8000-000000000002","case_reference":"x","offences":["BC-09"],"conduct":["possession_only"],"summary":"s"}"#,
    )
    .unwrap();
    let i = AssessmentInput::from_draft(&draft, cc("US"), cc("CN"), ts("2026-11-01"));
    assert_eq!(i.categories, vec![DataCategory::StoredContent]);
    let a = assess(packs(), &i).unwrap();
    assert_eq!(a.dual_criminality[0].verdict, Verdict::NotSatisfied);
}

#[test]
fn un_convention_channels_are_not_yet_available_between_signatories() {
    let a = assess(
        packs(),
        &input("CN", "RU", RequestKind::TrafficData, &["BC-02"], "2026-11-01"),
    );
    // RU has a pack; CN and RU both signed the UN Convention, which is not in force.
    let a = a.unwrap();
    let un: Vec<&str> = a.unavailable.iter().map(|u| &*u.id).collect();
    assert_eq!(un, ["un-mla"], "{:?}", a.unavailable);
    assert_eq!(a.unavailable[0].reason, UnavailableReason::TreatyNotInForce);
    assert!(a.render(Lang::En).iter().any(|l| l.contains("not yet available")));
    // Korea is not a Budapest Party: no 24/7 network, no note about an unknown status.
    let k = assess(
        packs(),
        &input("US", "KR", RequestKind::ExpeditedPreservation, &["BC-02"], "2026-11-01"),
    )
    .unwrap();
    assert!(
        !k.channels.iter().any(|c| c.id.starts_with("budapest")),
        "{:?}",
        k.channels
    );
    assert!(k.notes.is_empty(), "{:?}", k.notes);
}

#[test]
fn preservation_plan_names_the_follow_up() {
    let a = assess(
        packs(),
        &input("US", "DE", RequestKind::ExpeditedPreservation, &["BC-02"], "2026-11-01"),
    )
    .unwrap();
    let texts: Vec<String> = a.plan.iter().map(|s| s.what.render(Lang::En)).collect();
    assert!(texts[0].contains("Budapest 24/7"), "{texts:?}");
    assert_eq!(a.plan[0].action, StepAction::Preserve);
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Follow with a formal request via") && t.contains("within 60 days")),
        "{texts:?}"
    );
    assert!(a.plan.iter().all(|s| !s.why.render(Lang::Zh).is_empty()));
}

#[test]
fn epoc_penalty_floor_for_content() {
    // DE->FR content for copyright infringement: StGB/UrhG 5 years in DE (pack), floor met.
    let ok = assess(
        packs(),
        &input("DE", "FR", RequestKind::StoredContent, &["BC-10"], "2026-11-01"),
    )
    .unwrap();
    let epoc = ok.channels.iter().find(|c| c.id.as_ref() == "eu-epoc").unwrap();
    assert!(epoc.warnings.is_empty(), "{:?}", epoc.warnings);
    // FR->DE content for illegal interception: FR art. 226-15, 1 year in the FR pack, but the
    // offence is exempt (attacks on information systems).
    let exempt = assess(
        packs(),
        &input("FR", "DE", RequestKind::StoredContent, &["BC-03"], "2026-11-01"),
    )
    .unwrap();
    assert!(
        exempt
            .channels
            .iter()
            .find(|c| c.id.as_ref() == "eu-epoc")
            .unwrap()
            .warnings
            .is_empty()
    );
    // FR->DE content for forgery (3 years in FR): floor met; attempt (no known penalty): warning.
    let w = assess(
        packs(),
        &input("FR", "DE", RequestKind::StoredContent, &["BC-11"], "2026-11-01"),
    )
    .unwrap();
    let epoc = w.channels.iter().find(|c| c.id.as_ref() == "eu-epoc").unwrap();
    assert_eq!(epoc.warnings.len(), 1, "{:?}", epoc.warnings);
    // Subscriber data has no floor.
    let s = assess(
        packs(),
        &input("FR", "DE", RequestKind::SubscriberInformation, &["BC-11"], "2026-11-01"),
    )
    .unwrap();
    assert!(
        s.channels
            .iter()
            .find(|c| c.id.as_ref() == "eu-epoc")
            .unwrap()
            .warnings
            .is_empty()
    );
}

#[test]
#[ignore = "prints sample assessments: cargo test -p liaison-law --test assess show -- --ignored --nocapture"]
fn show() {
    for (from, to, kind, off, conduct, day) in [
        (
            "DE",
            "FR",
            RequestKind::ExpeditedPreservation,
            "BC-02",
            "",
            "2026-09-01",
        ),
        (
            "US",
            "CN",
            RequestKind::StoredContent,
            "BC-09",
            "possession_only",
            "2026-11-01",
        ),
        ("CN", "US", RequestKind::StoredContent, "DEFAMATION", "", "2026-11-01"),
    ] {
        let mut i = input(from, to, kind, &[off], day);
        if !conduct.is_empty() {
            i = with_conduct(i, &[conduct]);
        }
        i = with_target(i, "2026-07-01", "2026-07-02", &[]);
        for l in assess(packs(), &i).unwrap().summary_lines() {
            println!("{l}");
        }
        println!();
    }
}

#[test]
fn unknown_conduct_qualifiers_are_noted() {
    let a = assess(
        packs(),
        &with_conduct(
            input("US", "CN", RequestKind::TrafficData, &["BC-09"], "2026-11-01"),
            &["distribution", "juggling"],
        ),
    )
    .unwrap();
    assert_eq!(a.dual_criminality[0].verdict, Verdict::Satisfied);
    let notes: Vec<String> = a.notes.iter().map(|n| n.render(Lang::En)).collect();
    assert!(notes.iter().any(|n| n.contains("'juggling'")), "{notes:?}");
    assert!(!notes.iter().any(|n| n.contains("'distribution'")), "{notes:?}");
}

/// The headline: one word, the deciding reasons most serious first, the first step.
#[test]
fn headline_names_the_outlook_and_its_reasons() {
    let d = assess(
        packs(),
        &input("CN", "US", RequestKind::StoredContent, &["DEFAMATION"], "2026-11-01"),
    )
    .unwrap();
    let h = d.headline(Lang::En);
    assert_eq!(h.outlook, Outlook::LikelyRefused);
    assert!(
        h.reasons.iter().any(|r| r.starts_with("political offence: ")),
        "{:?}",
        h.reasons
    );
    let mut unique = h.reasons.clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        h.reasons.len(),
        "a ground stated for several channels once"
    );
    assert!(h.reasons.len() <= TOP_REASONS);
    let zh = d.headline(Lang::Zh);
    assert_eq!(zh.outlook, Outlook::LikelyRefused);
    assert!(zh.reasons.iter().any(|r| r.starts_with("政治犯罪")), "{:?}", zh.reasons);

    // Possession only is no crime in China: a required condition fails.
    let p = assess(
        packs(),
        &with_conduct(
            input("US", "CN", RequestKind::SubscriberInformation, &["BC-09"], "2026-11-01"),
            &["possession_only"],
        ),
    )
    .unwrap();
    let h = p.headline(Lang::En);
    assert_eq!(h.outlook, Outlook::LikelyRefused);
    assert_eq!(h.reasons.len(), 1, "{:?}", h.reasons);
    assert!(
        h.reasons[0].contains("not satisfied") && h.reasons[0].contains("possession"),
        "{:?}",
        h.reasons
    );
    assert!(
        h.first_step
            .as_deref()
            .unwrap_or("")
            .contains("dual criminality fails in CN")
    );
    // Without the conduct qualifier the answer is not known: a condition, not a refusal.
    let u = assess(
        packs(),
        &input("US", "CN", RequestKind::SubscriberInformation, &["BC-09"], "2026-11-01"),
    )
    .unwrap();
    let h = u.headline(Lang::En);
    assert_eq!(h.outlook, Outlook::Conditional);
    assert!(h.reasons[0].contains("state one of distribution"), "{:?}", h.reasons);
    // The fastest lawful channel, in the reader's language.
    let c = assess(
        packs(),
        &input("US", "CN", RequestKind::SubscriberInformation, &["BC-02"], "2026-11-01"),
    )
    .unwrap();
    let (name, days) = c.headline(Lang::Zh).channel.unwrap();
    assert_eq!((name.as_str(), days > 0.0), (c.channels[0].name_zh.as_ref(), true));
}
