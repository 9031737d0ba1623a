#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Four eyes (docs/lifecycle.md "Four eyes"), on SQLite and, when it answers, PostgreSQL: a
//! kind the node names is sent only by a second person of an approving role; the person who
//! asked cannot approve; an edit voids the call; an approver sends back with a reason; the
//! person who asked takes the call back; other kinds go straight out unless approval was asked;
//! every step is in the history and the audit log.

use jiff::Timestamp;
use liaison_core::approval::ApprovalPolicy;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::{RequestKind, Role};
use liaison_service::fixtures::{self, TwoAgencies};
use liaison_service::{Principal, ServiceError};

fn to(s: State) -> TransitionInput {
    TransitionInput {
        to: Some(s),
        ..Default::default()
    }
}

#[tokio::test]
async fn four_eyes_on_every_backend() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let node = node.with_approval(ApprovalPolicy {
            kinds: vec![RequestKind::StoredContent],
            approvers: vec![Role::Supervisor],
        });
        let f = TwoAgencies::on(node).await.unwrap();
        let admin = f.who("FBI", Role::Admin);
        let now = Timestamp::now();
        let u = f
            .node
            .create_user(admin, "fbi.officer2", "Second officer", "FBI", Role::Officer, now)
            .await
            .unwrap();
        let officer2 = Principal {
            user: u.id,
            username: u.username,
            agency: f.fbi.id,
            role: Role::Officer,
            token: None,
        };
        required_kind(&f, &officer2).await;
        other_kinds(&f).await;
    }
}

async fn required_kind(f: &TwoAgencies, officer2: &Principal) {
    let n = &f.node;
    let officer = f.who("FBI", Role::Officer);
    let sup = f.who("FBI", Role::Supervisor);
    let now = Timestamp::now();
    let r = n
        .create_request(officer, f.draft(RequestKind::StoredContent), now)
        .await
        .unwrap();
    let id = r.request.id;
    // Not sent without approval, and the page offers no send.
    let e = n
        .transition(officer, id, 1, to(State::Submitted), now)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ServiceError::Conflict(m) if m.contains("four eyes")),
        "{e}"
    );
    assert!(!n.allowed(officer, id, now).await.unwrap().contains(&State::Submitted));
    let v = n.approval(officer, id, now).await.unwrap();
    assert!(v.required && v.asked.is_none() && v.moves.ask && !v.moves.send);
    // The requested agency does not see the draft at all.
    assert!(matches!(
        n.approval(f.who("CN-MPS", Role::Supervisor), id, now).await,
        Err(ServiceError::NotFound(_))
    ));
    // A stale version is refused; then asked.
    assert!(matches!(
        n.ask_approval(officer, id, 7, now).await,
        Err(ServiceError::Conflict(_))
    ));
    let v = n.ask_approval(officer, id, 1, now).await.unwrap();
    assert_eq!(
        v.asked.as_ref().map(|a| (a.by.as_str(), a.version)),
        Some(("fbi.officer", 1))
    );
    assert!(matches!(
        n.ask_approval(officer, id, 1, now).await,
        Err(ServiceError::Conflict(_))
    ));
    // The one who asked cannot approve, nor can an officer who is no approver.
    assert!(matches!(
        n.transition(officer, id, 1, to(State::Submitted), now).await,
        Err(ServiceError::Forbidden(_))
    ));
    let e = n
        .transition(officer2, id, 1, to(State::Submitted), now)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ServiceError::Forbidden(m) if m.contains("supervisor")),
        "{e}"
    );
    // An approver sends back only with a reason; another officer cannot.
    assert!(matches!(
        n.end_approval(sup, id, Some("  "), now).await,
        Err(ServiceError::Invalid(_))
    ));
    assert!(matches!(
        n.end_approval(officer2, id, Some("no"), now).await,
        Err(ServiceError::Forbidden(_))
    ));
    let v = n
        .end_approval(sup, id, Some("Name the provider of each account"), now)
        .await
        .unwrap();
    assert!(v.asked.is_none());
    // Asked again, then the draft is edited: the call is void.
    n.ask_approval(officer, id, 1, now).await.unwrap();
    let mut d = f.draft(RequestKind::StoredContent);
    d.summary = "Edited after asking".into();
    let r = n.update_draft(officer, id, 1, d, now).await.unwrap();
    assert_eq!(r.request.version, 2);
    assert!(n.approval(sup, id, now).await.unwrap().asked.is_none());
    assert!(matches!(
        n.transition(sup, id, 2, to(State::Submitted), now).await,
        Err(ServiceError::Conflict(_))
    ));
    // Asked again: the supervisor approves by sending.
    n.ask_approval(officer, id, 2, now).await.unwrap();
    assert!(n.allowed(sup, id, now).await.unwrap().contains(&State::Submitted));
    let v = n.approval(sup, id, now).await.unwrap();
    assert!(v.moves.approve && v.moves.send_back && !v.moves.ask);
    let sent = n.transition(sup, id, 2, to(State::Submitted), now).await.unwrap();
    assert_ne!(sent.request.state, State::Draft);
    assert!(n.approval(sup, id, now).await.unwrap().asked.is_none());
    // The history tells every step; the send names who asked and who approved.
    let events = n.events(officer, id, now).await.unwrap();
    let steps: Vec<String> = events
        .iter()
        .filter(|e| e.event == "approval")
        .map(|e| e.data.as_ref().unwrap()["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(steps, ["asked", "sent_back", "asked", "voided", "asked"]);
    let back = events
        .iter()
        .find(|e| e.data.as_ref().is_some_and(|d| d["step"] == "sent_back"))
        .unwrap();
    assert_eq!(back.reason.as_deref(), Some("Name the provider of each account"));
    assert_eq!(back.actor, "fbi.supervisor");
    let send = events.iter().find(|e| e.to_state == Some(State::Submitted)).unwrap();
    let data = send.data.as_ref().unwrap();
    assert_eq!(
        (data["approved_by"].as_str(), data["asked_by"].as_str()),
        (Some("fbi.supervisor"), Some("fbi.officer"))
    );
    let audit = fixtures::audit_actions(n).await.unwrap();
    assert_eq!(
        audit.iter().filter(|a| *a == "request.approval").count(),
        4,
        "{audit:?}"
    );
}

async fn other_kinds(f: &TwoAgencies) {
    let n = &f.node;
    let officer = f.who("FBI", Role::Officer);
    let sup = f.who("FBI", Role::Supervisor);
    let now = Timestamp::now();
    // A kind the node does not name goes straight out.
    let r = n
        .create_request(officer, f.draft(RequestKind::ExpeditedPreservation), now)
        .await
        .unwrap();
    assert!(n.approval(officer, r.request.id, now).await.unwrap().moves.send);
    n.transition(officer, r.request.id, 1, to(State::Submitted), now)
        .await
        .unwrap();
    // Asked anyway: then it binds, until the one who asked takes it back.
    let r = n
        .create_request(officer, f.draft(RequestKind::SubscriberInformation), now)
        .await
        .unwrap();
    let id = r.request.id;
    n.ask_approval(officer, id, 1, now).await.unwrap();
    assert!(matches!(
        n.transition(officer, id, 1, to(State::Submitted), now).await,
        Err(ServiceError::Forbidden(_))
    ));
    // Taking back needs no reason.
    n.end_approval(officer, id, None, now).await.unwrap();
    assert!(n.approval(sup, id, now).await.unwrap().asked.is_none());
    n.transition(officer, id, 1, to(State::Submitted), now).await.unwrap();
    // Not a draft any more: nothing to ask.
    assert!(matches!(
        n.ask_approval(officer, id, 2, now).await,
        Err(ServiceError::Conflict(_))
    ));
}
