#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The formal letter as a use case (docs/letter.md), on SQLite and PostgreSQL: the particulars
//! come from the rule packs by channel, what the request lacks is listed (never printed blank),
//! translations are per language, only the requesting agency writes its letter, the reference
//! is stable per request and numbered per agency and year. The PDF itself (fonts, text) is
//! tested through the real CLI in crates/liaison-cli/tests/letter.rs.

use jiff::Timestamp;
use liaison_core::Role;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::request::{Provider, RequestKind, Target, TargetValue};
use liaison_core::{CountryCode, RequestId};
use liaison_service::ServiceError;
use liaison_service::fixtures::{self, TwoAgencies};
use liaison_service::letter::LetterOptions;

fn target(provider: bool) -> Target {
    Target {
        value: TargetValue::Ip {
            address: "203.0.113.7".parse().unwrap(),
            port: Some(443),
            observed_at: "2026-11-02T10:00:00Z".parse().unwrap(),
            zone: None,
        },
        from: "2026-10-01T00:00:00Z".parse().unwrap(),
        until: "2026-11-30T00:00:00Z".parse().unwrap(),
        provider: provider.then(|| Provider {
            name: "Example Cloud Co.".into(),
            established_in: CountryCode::parse("CN").unwrap(),
            offers_services_in_eu: false,
        }),
    }
}

fn opts(draft: bool) -> LetterOptions {
    LetterOptions {
        langs: vec!["en,zh-CN".into()],
        draft,
        ..Default::default()
    }
}

fn missing_fields(e: ServiceError) -> Vec<String> {
    match e {
        ServiceError::Incomplete(v) => {
            let mut f: Vec<String> = v.into_iter().map(|e| e.field).collect();
            f.sort();
            f
        }
        other => panic!("expected missing particulars, got {other:?}"),
    }
}

async fn submitted(f: &TwoAgencies, kind: RequestKind, to: liaison_core::AgencyId, provider: bool) -> RequestId {
    let officer = f.who("FBI", Role::Officer);
    let mut d = f.draft(kind);
    d.requested_agency = to;
    d.targets = vec![target(provider)];
    let now = Timestamp::now();
    let r = f.node.create_request(officer, d, now).await.unwrap();
    let submit = TransitionInput {
        to: Some(State::Submitted),
        ..Default::default()
    };
    f.node
        .transition(officer, r.request.id, r.request.version, submit, now)
        .await
        .unwrap();
    r.request.id
}

fn font_available() -> bool {
    let ok = std::path::Path::new("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc").is_file()
        || std::path::Path::new("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc").is_file();
    if !ok {
        assert!(
            std::env::var_os("LIAISON_REQUIRE_BROWSER").is_none(),
            "LIAISON_REQUIRE_BROWSER is set but no CJK font is installed (apt-get install fonts-wqy-zenhei)"
        );
        eprintln!("SKIPPED the PDF part: no CJK font (apt-get install fonts-wqy-zenhei)");
    }
    ok
}

#[tokio::test]
async fn mlaa_letter_lists_what_is_missing_then_is_produced_with_a_stable_reference() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let officer = f.who("FBI", Role::Officer);
        let now = Timestamp::now();
        let id = submitted(&f, RequestKind::SubscriberInformation, f.mps.id, true).await;

        // US -> CN goes through the MLAA: Art 4 asks for the purpose, and every free text is
        // needed in both languages. The draft's summary counts as English (source_lang).
        let e = f.node.request_letter(officer, id, &opts(false), now).await.unwrap_err();
        assert_eq!(
            missing_fields(e),
            [
                "particulars.purpose[en]",
                "particulars.purpose[zh-CN]",
                "particulars.summary_of_facts[zh-CN]"
            ]
        );
        // An English-only letter still needs the English purpose.
        let en = LetterOptions {
            langs: vec!["en".into()],
            ..Default::default()
        };
        let e = f.node.request_letter(officer, id, &en, now).await.unwrap_err();
        assert_eq!(missing_fields(e), ["particulars.purpose[en]"]);

        // Texts: checked, and only the requesting agency writes them.
        for (field, lang, text) in [
            ("facts", "en", "x"),
            ("purpose", "fr", "x"),
            ("purpose", "en", "   "),
            ("purpose", "en", "bad\u{0}text"),
        ] {
            let e = f
                .node
                .set_request_text(officer, id, field, lang, text, now)
                .await
                .unwrap_err();
            assert!(matches!(e, ServiceError::Invalid(_)), "{field}/{lang}: {e:?}");
        }
        let long = "x".repeat(liaison_service::letter::MAX_TEXT_CHARS + 1);
        let e = f
            .node
            .set_request_text(officer, id, "purpose", "en", &long, now)
            .await
            .unwrap_err();
        assert!(matches!(e, ServiceError::Invalid(_)), "{e:?}");
        let theirs = f.who("CN-MPS", Role::Officer);
        let e = f
            .node
            .set_request_text(theirs, id, "purpose", "zh-CN", "x", now)
            .await
            .unwrap_err();
        assert!(matches!(e, ServiceError::Forbidden(_)), "{e:?}");
        let e = f.node.request_letter(theirs, id, &opts(true), now).await.unwrap_err();
        assert!(matches!(e, ServiceError::Forbidden(_)), "{e:?}");
        let analyst = f.who("FBI", Role::Analyst);
        let e = f.node.request_letter(analyst, id, &opts(true), now).await.unwrap_err();
        assert!(matches!(e, ServiceError::Forbidden(_)), "{e:?}");
        let e = f
            .node
            .request_letter(
                officer,
                id,
                &LetterOptions {
                    langs: vec!["fr".into()],
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, ServiceError::Invalid(_)), "{e:?}");

        f.node
            .set_request_text(officer, id, "summary", "zh-CN", "勒索软件团伙使用上海的服务器。", now)
            .await
            .unwrap();
        f.node
            .set_request_text(
                officer,
                id,
                "purpose",
                "en",
                "To identify the renter of the server.",
                now,
            )
            .await
            .unwrap();
        // A second write replaces the first.
        f.node
            .set_request_text(officer, id, "purpose", "zh-CN", "草稿", now)
            .await
            .unwrap();
        f.node
            .set_request_text(officer, id, "purpose", "zh-CN", "查明租用该服务器的人员。", now)
            .await
            .unwrap();
        let texts = f.node.request_texts(officer, id, now).await.unwrap();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(texts.contains(&("purpose".into(), "zh-CN".into(), "查明租用该服务器的人员。".into())));

        if !font_available() {
            continue;
        }
        let a = f.node.request_letter(officer, id, &opts(false), now).await.unwrap();
        let year = now.to_zoned(jiff::tz::TimeZone::UTC).year();
        assert_eq!(a.reference, format!("FBI/{year}/0001"));
        assert!(a.missing.is_empty());
        assert!(a.pdf.starts_with(b"%PDF-"));
        // The same letter again: the same reference. Another request: the next number.
        let b = f.node.request_letter(officer, id, &opts(true), now).await.unwrap();
        assert_eq!(b.reference, a.reference);
        let other = submitted(&f, RequestKind::SubscriberInformation, f.mps.id, true).await;
        let c = f.node.request_letter(officer, other, &opts(true), now).await.unwrap();
        assert_eq!(c.reference, format!("FBI/{year}/0002"));
        assert!(!c.missing.is_empty(), "a draft lists what is missing");
        // Every letter's hash is in the audit log, and the chain still verifies.
        let auditor = f.who("FBI", Role::Auditor);
        let report = f.node.verify_audit(auditor).await.unwrap();
        assert_eq!(report.problems, 0, "{report:?}");
    }
}

#[tokio::test]
async fn a_budapest_preservation_letter_asks_for_art_29_2() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let bka = fixtures::agency("DE-BKA", "DE", "Europe/Berlin").unwrap();
        f.add_agency(&bka, "bka.officer", Role::Officer).await.unwrap();
        let officer = f.who("FBI", Role::Officer);
        let now = Timestamp::now();
        // No provider named: Art 29(2)(d) (custodian) is missing, as is (e) (necessity).
        let id = submitted(&f, RequestKind::ExpeditedPreservation, bka.id, false).await;
        let e = f.node.request_letter(officer, id, &opts(false), now).await.unwrap_err();
        assert_eq!(
            missing_fields(e),
            [
                "particulars.custodian",
                "particulars.necessity[en]",
                "particulars.necessity[zh-CN]",
                "particulars.summary_of_facts[zh-CN]"
            ]
        );
    }
}
