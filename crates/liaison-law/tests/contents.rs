#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What a formal request must contain (`[[request_contents]]`, the letter): chosen by channel,
//! request kind, requested state and date; every particular has words in both languages; a
//! list naming an unknown channel stops the packs from loading.

mod common;

use common::*;
use liaison_core::RequestKind;
use liaison_law::*;

fn ids(v: &[ContentsRule]) -> Vec<&str> {
    v.iter().map(|r| &*r.id).collect()
}

#[test]
fn lists_are_chosen_by_channel_kind_and_date() {
    let p = packs();
    let now = ts("2026-06-01");
    let mlaa = p.request_contents(Some("us-cn-mlaa"), RequestKind::SubscriberInformation, cc("CN"), now);
    // To the PRC, its own law's list applies on top of the MLAA's.
    assert_eq!(ids(&mlaa), ["us-cn-mlaa.art4", "cn.icjal.art13"]);
    let to_us = p.request_contents(Some("us-cn-mlaa"), RequestKind::SubscriberInformation, cc("US"), now);
    assert_eq!(ids(&to_us), ["us-cn-mlaa.art4"]);
    assert!(mlaa[0].particulars.contains(&Particular::Purpose));
    let preservation = p.request_contents(Some("budapest-24-7"), RequestKind::ExpeditedPreservation, cc("DE"), now);
    assert_eq!(ids(&preservation), ["budapest.art29-2"]);
    assert_eq!(
        preservation[0].particulars,
        [
            Particular::RequestingAuthority,
            Particular::Offences,
            Particular::SummaryOfFacts,
            Particular::DataToPreserve,
            Particular::Custodian,
            Particular::Necessity,
            Particular::IntentToFollowUp
        ]
    );
    assert_eq!(preservation[0].citation.article.as_ref(), "Art 29(2)");
    let mla = p.request_contents(Some("budapest-mla"), RequestKind::StoredContent, cc("DE"), now);
    assert_eq!(ids(&mla), ["budapest.art25-27"]);
    // No channel, or one without a list of its own: the generic list.
    let none = p.request_contents(None, RequestKind::StoredContent, cc("DE"), now);
    assert_eq!(ids(&none), ["generic.mla"]);
    // Before the MLAA (and the generic list's source) were in force: nothing.
    let early = p.request_contents(
        Some("us-cn-mlaa"),
        RequestKind::StoredContent,
        cc("CN"),
        ts("2000-06-01"),
    );
    assert!(early.is_empty(), "{early:?}");
}

#[test]
fn every_particular_has_words_in_both_languages() {
    for p in Particular::ALL {
        let key = format!("particular.{p}");
        assert!(has_term(&key), "{key} missing from messages/en.toml");
        assert_ne!(term(&key, Lang::Zh), term(&key, Lang::En), "{key}: no Chinese wording");
    }
    assert!(catalogue_problems().is_empty(), "{:?}", catalogue_problems());
}

#[test]
fn a_list_naming_an_unknown_channel_is_refused() {
    let dir = std::env::temp_dir().join(format!("liaison-law-contents-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(rules_dir()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    let t = dir.join("treaties.toml");
    let src = std::fs::read_to_string(&t).unwrap();
    std::fs::write(
        &t,
        format!(
            "{src}\n[[request_contents]]\nid = \"x\"\nchannels = [\"no-such-channel\"]\nparticulars = [\"purpose\"]\neffective_from = 2020-01-01\nconfidence = \"unconfirmed\"\ncitation = {{ instrument = \"X\", article = \"1\", url = \"https://example.invalid\" }}\n"
        ),
    )
    .unwrap();
    let err = RulePacks::load(&dir).unwrap_err();
    let text = err
        .diagnostics()
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("unknown channel 'no-such-channel'"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
