#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A stored request is assessed under the law of its submission date; when the node's rule
//! packs change, its assessment is flagged as outdated and a re-assessment renews it (issue #16).

use jiff::{SignedDuration, Timestamp};
use liaison_core::Role;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::request::RequestKind;
use liaison_service::ServiceError;
use liaison_service::fixtures::{self, TwoAgencies};
use liaison_service::legal::Legal;
use std::path::{Path, PathBuf};

/// A copy of the shipped rule packs with one byte more in a comment: same law, new version.
fn changed_packs() -> (PathBuf, Legal) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let to = std::env::temp_dir().join(format!("liaison-reassess-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(&to).unwrap();
    for e in std::fs::read_dir(&from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
    let us = to.join("us.toml");
    let src = std::fs::read_to_string(&us).unwrap();
    std::fs::write(&us, format!("{src}\n# a later edition of the pack\n")).unwrap();
    let legal = Legal::load(&to).unwrap();
    (to, legal)
}

#[tokio::test]
async fn an_assessment_under_older_packs_is_flagged_and_renewed_for_the_submission_date() {
    let f = TwoAgencies::on(fixtures::sqlite_node().await.unwrap()).await.unwrap();
    let officer = f.who("FBI", Role::Officer);
    let submitted_at: Timestamp = "2025-03-01T09:00:00Z".parse().unwrap();
    let r = f
        .node
        .create_request(officer, f.draft(RequestKind::TrafficData), submitted_at)
        .await
        .unwrap();
    let id = r.request.id;

    // A draft has nothing to renew.
    let e = f.node.reassess(officer, id, submitted_at).await.unwrap_err();
    assert!(matches!(e, ServiceError::Invalid(_)), "{e:?}");

    let submit = TransitionInput {
        to: Some(State::Submitted),
        ..Default::default()
    };
    let r = f
        .node
        .transition(officer, id, r.request.version, submit, submitted_at)
        .await
        .unwrap();
    let a: liaison_law::Assessment = r.assessment.as_ref().unwrap().value().unwrap();
    assert_eq!(a.as_of, submitted_at, "assessed under the law of the submission date");
    assert!(!f.node.assessment_outdated(&r));

    // Later, the node runs a newer edition of the packs.
    let (dir, legal) = changed_packs();
    let mut node = f.node.clone();
    node.legal = legal;
    let later = submitted_at + SignedDuration::from_hours(24 * 400);
    let r = node.request(officer, id, later).await.unwrap();
    assert!(node.assessment_outdated(&r));
    assert_ne!(r.rule_pack_version.as_deref(), Some(node.legal_version()));

    // A what-if assessment of the stored request also applies the submission date's law.
    let w = node.assess(officer, None, Some(id), None, later).await.unwrap();
    assert_eq!(w.as_of, submitted_at);

    // An analyst may read but not renew.
    let e = node.reassess(f.who("FBI", Role::Analyst), id, later).await.unwrap_err();
    assert!(matches!(e, ServiceError::Forbidden(_)), "{e:?}");

    // The requested side's legal reviewer may renew it.
    let r2 = node
        .reassess(f.who("CN-MPS", Role::LegalReviewer), id, later)
        .await
        .unwrap();
    assert_eq!(r2.rule_pack_version.as_deref(), Some(node.legal_version()));
    assert!(!node.assessment_outdated(&r2));
    assert_eq!(r2.request.version, r.request.version, "nothing agreed on moves");
    let a2: liaison_law::Assessment = r2.assessment.as_ref().unwrap().value().unwrap();
    assert_eq!(a2.as_of, submitted_at);
    assert_eq!(&*a2.rule_pack_version, node.legal_version());

    let events = node.events(officer, id, later).await.unwrap();
    let ev = events
        .iter()
        .find(|e| e.event == "assessment")
        .expect("an assessment event");
    assert_eq!(ev.actor, "cn-mps.legal_reviewer");
    let data = ev.data.as_ref().unwrap();
    assert_eq!(data["rule_pack_version"], node.legal_version());
    assert_eq!(data["previous_rule_pack_version"], f.node.legal_version());

    // The audit chain covers the re-assessment.
    let report = node.verify_audit(f.who("FBI", Role::Auditor)).await.unwrap();
    assert!(report.first_bad.is_none(), "{report:?}");
    let _ = std::fs::remove_dir_all(dir);
}
