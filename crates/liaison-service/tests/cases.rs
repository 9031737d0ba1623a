#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Joint cases on one node (issue #19, docs/cases.md): FBI leads, CN-MPS and DE-BKA are
//! invited, a fourth agency is not. Who sees what of the timeline and the links, the
//! originator's consent before an item reaches a member that is not a party to it, RED notes,
//! leaving, closing, statistics and the audit log — on SQLite and, when it answers, PostgreSQL.
//! Cases across nodes: crates/liaison-cli/tests/cases.rs.

use jiff::Timestamp;
use liaison_core::case::{CaseChange, ItemKind, MemberStatus};
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::record::Principal;
use liaison_core::request::RequestKind;
use liaison_core::{Marking, RequestId, Role, Tlp};
use liaison_service::ServiceError;
use liaison_service::cases::{CaseView, ItemRef};
use liaison_service::fixtures::{self, TwoAgencies};

async fn submitted(f: &TwoAgencies, summary: &str, marking: Marking, now: Timestamp) -> RequestId {
    let officer = f.who("FBI", Role::Officer);
    let mut d = f.draft(RequestKind::SubscriberInformation);
    d.summary = summary.into();
    d.marking_set = Some(marking);
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

fn titles(v: &CaseView) -> Vec<Option<String>> {
    v.links
        .iter()
        .map(|l| l.link.item.as_ref().map(|i| i.title.clone()))
        .collect()
}

fn has_text(v: &CaseView, s: &str) -> bool {
    serde_json::to_string(v).unwrap().contains(s)
}

#[tokio::test]
async fn joint_cases_on_every_backend() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        scenario(&f).await;
    }
}

async fn scenario(f: &TwoAgencies) {
    let now = Timestamp::now();
    let bka = fixtures::agency("DE-BKA", "DE", "Europe/Berlin").unwrap();
    let bka_officer = f.add_agency(&bka, "bka.officer", Role::Officer).await.unwrap();
    let nl = fixtures::agency("NL-POL", "NL", "Europe/Amsterdam").unwrap();
    let stranger = f.add_agency(&nl, "nl.officer", Role::Officer).await.unwrap();
    let fbi = f.who("FBI", Role::Officer);
    let mps = f.who("CN-MPS", Role::Officer);
    let node = &f.node;

    // Opening: only drafting roles; the reference is unique for the lead; CLEAR is refused.
    let desk = f.who("FBI", Role::Desk);
    let e = node.case_create(desk, "Lantern", "JTF-1", None, &[], now).await;
    assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    let e = node
        .case_create(fbi, "Lantern", "JTF-1", Some(Marking::new(Tlp::Clear)), &[], now)
        .await;
    assert!(matches!(e, Err(ServiceError::Invalid(_))), "{e:?}");
    let e = node.case_create(fbi, "Lantern", "JTF 1", None, &[], now).await;
    assert!(
        matches!(e, Err(ServiceError::Invalid(_))),
        "a reference with a space: {e:?}"
    );
    let e = node
        .case_create(fbi, "Lantern", "JTF-1", None, &["XX-NONE".into()], now)
        .await;
    assert!(matches!(e, Err(ServiceError::Invalid(_))), "an unknown agency: {e:?}");
    let case = node
        .case_create(
            fbi,
            "Operation Lantern",
            "JTF-1",
            Some(Marking::new(Tlp::Amber)),
            &["CN-MPS".into(), "DE-BKA".into()],
            now,
        )
        .await
        .unwrap();
    let id = case.id.clone();
    assert_eq!(case.status, MemberStatus::Active);
    assert_eq!(case.members.len(), 3);
    let e = node.case_create(fbi, "Again", "JTF-1", None, &[], now).await;
    assert!(matches!(e, Err(ServiceError::Conflict(_))), "{e:?}");

    // Invitees see the case and its members; a stranger nothing, not even that it exists.
    let listed = node.cases(mps).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, MemberStatus::Invited);
    assert!(node.cases(&stranger).await.unwrap().is_empty());
    let e = node.case(&stranger, &id, now).await;
    assert!(matches!(e, Err(ServiceError::NotFound(_))), "{e:?}");
    let e = node.case(&stranger, "not-a-uuid", now).await;
    assert!(matches!(e, Err(ServiceError::NotFound(_))), "{e:?}");

    // CN-MPS joins; an invitee may not link or write before it has.
    let r_strict = submitted(f, "SECRET-STRICT wallet drained", Marking::new(Tlp::AmberStrict), now).await;
    let r_red = submitted(f, "SECRET-RED source", Marking::new(Tlp::Red), now).await;
    let item = |id: RequestId| ItemRef {
        kind: ItemKind::Request,
        id: id.to_string(),
    };
    let e = node.case_note(mps, &id, "hello", None, now).await;
    assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    node.case_answer(mps, &id, true, None, now).await.unwrap();
    node.case_answer(&bka_officer, &id, true, None, now).await.unwrap();

    // CN-MPS links the request FBI sent it (a party, not the originator): it may not share it.
    let e = node.case_link(mps, &id, &item(r_strict), true, now).await;
    assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    let v = node.case_link(mps, &id, &item(r_strict), false, now).await.unwrap();
    assert_eq!(titles(&v), vec![Some("SECRET-STRICT wallet drained".to_string())]);
    let e = node.case_link(fbi, &id, &item(r_strict), false, now).await;
    assert!(matches!(e, Err(ServiceError::Conflict(_))), "linked twice: {e:?}");
    // DE-BKA, a member but no party, sees that a request was linked, not which.
    let v = node.case(&bka_officer, &id, now).await.unwrap();
    assert_eq!(titles(&v), vec![None]);
    assert!(!has_text(&v, "SECRET-STRICT"));
    assert!(!has_text(&v, &r_strict.to_string()));
    assert!(v.timeline.iter().any(|e| matches!(
        e.change,
        CaseChange::Withheld {
            item_kind: ItemKind::Request
        }
    )));
    let s = node.case_stats(&bka_officer, &id, now).await.unwrap();
    assert_eq!((s.requests, s.withheld), (0, 1));
    // A RED request is never linked; a request of no member... is not visible to link.
    let e = node.case_link(fbi, &id, &item(r_red), true, now).await;
    assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    let e = node.case_link(&bka_officer, &id, &item(r_strict), false, now).await;
    assert!(matches!(e, Err(ServiceError::NotFound(_))), "{e:?}");

    // The originator shares it: its consent is an event, and DE-BKA now sees it.
    let e = node.case_share(mps, &id, &item(r_strict), now).await;
    assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    node.case_share(fbi, &id, &item(r_strict), now).await.unwrap();
    let v = node.case(&bka_officer, &id, now).await.unwrap();
    assert_eq!(titles(&v), vec![Some("SECRET-STRICT wallet drained".to_string())]);
    assert!(
        v.timeline
            .iter()
            .any(|e| matches!(&e.change, CaseChange::Shared { .. }) && e.agency == "FBI")
    );
    // DE-BKA is no party to the request itself: no live state, and the request stays hidden.
    assert!(v.links[0].live.is_none());
    assert!(node.request(&bka_officer, r_strict, now).await.is_err());
    // The request knows its cases, for those who see the link.
    let of = node.cases_of_request(fbi, r_strict).await.unwrap();
    assert_eq!(of.iter().map(|c| c.reference.as_str()).collect::<Vec<_>>(), ["JTF-1"]);
    assert!(node.cases_of_request(&stranger, r_strict).await.unwrap().is_empty());
    // For the parties, the live state and whether its answer may be used in this case.
    let v = node.case(fbi, &id, now).await.unwrap();
    let live = v.links[0].live.as_ref().unwrap();
    assert_eq!(live.state, "received");
    assert!(
        !live.usable_in_case,
        "made for FBI-2026-0001, not JTF-1, and no consent"
    );
    let s = node.case_stats(fbi, &id, now).await.unwrap();
    assert_eq!(s.requests, 1);
    assert_eq!(s.requests_by_state.get("received"), Some(&1));
    assert_eq!(s.open_deadlines.len(), 1);
    assert_eq!(s.open_deadlines[0].deadline, "acknowledge");

    // A RED note naming one user of CN-MPS.
    let red = Marking {
        tlp: Tlp::Red,
        recipients: vec![format!("CN-MPS:{}", mps.username)],
    };
    let bare = Marking {
        tlp: Tlp::Red,
        recipients: vec![mps.username.clone()],
    };
    let e = node.case_note(fbi, &id, "x", Some(bare), now).await;
    assert!(
        matches!(e, Err(ServiceError::Invalid(_))),
        "a user is named with its agency: {e:?}"
    );
    node.case_note(fbi, &id, "SECRET-NOTE informant", Some(red), now)
        .await
        .unwrap();
    assert!(has_text(&node.case(mps, &id, now).await.unwrap(), "SECRET-NOTE"));
    assert!(!has_text(
        &node.case(f.who("CN-MPS", Role::Desk), &id, now).await.unwrap(),
        "SECRET-NOTE"
    ));
    assert!(!has_text(
        &node.case(&bka_officer, &id, now).await.unwrap(),
        "SECRET-NOTE"
    ));
    assert!(has_text(
        &node.case(f.who("FBI", Role::Analyst), &id, now).await.unwrap(),
        "SECRET-NOTE"
    ));
    // Analysts and auditors read but do not write; the lead's changes need a drafting role.
    let e = node.case_note(f.who("FBI", Role::Analyst), &id, "x", None, now).await;
    assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    let e = node.case_invite(f.who("FBI", Role::Desk), &id, "NL-POL", now).await;
    assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    let e = node.case_invite(mps, &id, "NL-POL", now).await;
    assert!(
        matches!(e, Err(ServiceError::Forbidden(_))),
        "only the lead invites: {e:?}"
    );

    // DE-BKA leaves: what comes after does not reach it.
    let e = node.case_leave(fbi, &id, None, now).await;
    assert!(
        matches!(e, Err(ServiceError::Forbidden(_))),
        "the lead cannot leave: {e:?}"
    );
    node.case_leave(&bka_officer, &id, Some("resources".into()), now)
        .await
        .unwrap();
    node.case_note(fbi, &id, "AFTER-LEAVING plan", None, now).await.unwrap();
    let v = node.case(&bka_officer, &id, now).await.unwrap();
    assert_eq!(v.status, MemberStatus::Left);
    assert!(!has_text(&v, "AFTER-LEAVING"));
    assert!(has_text(&v, "SECRET-STRICT"), "what it saw before it left stays");
    assert!(has_text(&node.case(mps, &id, now).await.unwrap(), "AFTER-LEAVING"));

    // Closing: the lead only; a closed case takes no links or notes until reopened.
    let e = node.case_close(mps, &id, false, None, now).await;
    assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    node.case_close(fbi, &id, false, Some("charges filed".into()), now)
        .await
        .unwrap();
    // DE-BKA left before: it sees the case as it was then (open), not the closing.
    let then = node.case(&bka_officer, &id, now).await.unwrap();
    assert_eq!(then.state, liaison_core::case::CaseState::Open);
    assert_eq!(
        node.cases(&bka_officer).await.unwrap()[0].state,
        liaison_core::case::CaseState::Open
    );
    let e = node.case_note(mps, &id, "late", None, now).await;
    assert!(matches!(e, Err(ServiceError::Conflict(_))), "{e:?}");
    node.case_close(fbi, &id, true, None, now).await.unwrap();
    node.case_note(mps, &id, "back on", None, now).await.unwrap();

    // A RED case: only the users it names at member agencies, and the lead's.
    let e = node
        .case_set_marking(mps, &id, Marking::new(Tlp::AmberStrict), now)
        .await;
    assert!(matches!(e, Err(ServiceError::Forbidden(_))), "{e:?}");
    let named = Marking {
        tlp: Tlp::Red,
        recipients: vec![format!("CN-MPS:{}", mps.username)],
    };
    node.case_set_marking(fbi, &id, named, now).await.unwrap();
    assert_eq!(node.cases(mps).await.unwrap().len(), 1);
    assert!(node.cases(f.who("CN-MPS", Role::Desk)).await.unwrap().is_empty());
    let e = node.case(f.who("CN-MPS", Role::Desk), &id, now).await;
    assert!(matches!(e, Err(ServiceError::NotFound(_))), "{e:?}");

    // Two changes at once: both are appended, one after the other (a write decided from a
    // stale read is decided again).
    let (x, y) = tokio::join!(
        node.case_note(fbi, &id, "PARALLEL-ONE", None, now),
        node.case_note(mps, &id, "PARALLEL-TWO", None, now)
    );
    x.unwrap();
    y.unwrap();
    let v = node.case(fbi, &id, now).await.unwrap();
    assert!(has_text(&v, "PARALLEL-ONE") && has_text(&v, "PARALLEL-TWO"));

    // The log is one audit entry per event, and the chain holds.
    let audit = node.verify_audit(f.who("FBI", Role::Auditor)).await.unwrap();
    assert_eq!(audit.first_bad, None);
    let seen: &Principal = fbi;
    let v = node.case(seen, &id, now).await.unwrap();
    assert_eq!(v.timeline.last().unwrap().seq, v.timeline.len() as u64);
}
