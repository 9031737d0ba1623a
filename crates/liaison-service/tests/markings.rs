#![allow(clippy::unwrap_used, clippy::expect_used)]
//! TLP 2.0 markings on requests and comments (docs/markings.md, issue #14): defaults, the
//! upgrade default, RED to named recipients only, changes by the originator only, comments
//! never below their request — on SQLite and, when it answers, PostgreSQL.

use jiff::Timestamp;
use liaison_core::lifecycle::{State, TransitionInput};
use liaison_core::marking::MarkingConfig;
use liaison_core::record::RequestFilter;
use liaison_core::request::RequestKind;
use liaison_core::{Marking, Role, Tlp};
use liaison_service::fixtures::{self, TwoAgencies};
use liaison_service::{Node, ServiceError};

fn red(names: &[&str]) -> Marking {
    Marking {
        tlp: Tlp::Red,
        recipients: names.iter().map(|s| s.to_string()).collect(),
    }
}

async fn submitted(f: &TwoAgencies, marking: Option<Marking>, now: Timestamp) -> liaison_core::RequestId {
    let officer = f.who("FBI", Role::Officer);
    let mut d = f.draft(RequestKind::SubscriberInformation);
    d.marking_set = marking;
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

async fn listed(node: &Node, p: &liaison_core::record::Principal, now: Timestamp) -> Vec<liaison_core::RequestId> {
    node.list(p, RequestFilter::default(), now)
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.id)
        .collect()
}

#[tokio::test]
async fn markings_on_every_backend() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let now = Timestamp::now();
        defaults(&f, now).await;
        red_reaches_named_recipients_only(&f, now).await;
        only_the_originator_changes_it(&f, now).await;
        comments_are_never_below_their_request(&f, now).await;
        let audit = f.node.verify_audit(f.who("FBI", Role::Auditor)).await.unwrap();
        assert_eq!(
            audit.first_bad, None,
            "audit log and request digests intact after marking changes"
        );
    }
}

async fn defaults(f: &TwoAgencies, now: Timestamp) {
    // No marking given: the node's default (AMBER+STRICT unless configured).
    let id = submitted(f, None, now).await;
    let r = f.node.request(f.who("CN-MPS", Role::Desk), id, now).await.unwrap();
    assert_eq!(r.request.draft.marking(), Marking::new(Tlp::AmberStrict));
    let s = f
        .node
        .list(f.who("FBI", Role::Officer), RequestFilter::default(), now)
        .await
        .unwrap();
    assert!(s.items.iter().any(|s| s.id == id && s.marking.tlp == Tlp::AmberStrict));

    // A configured default applies to new drafts; a public default is refused.
    let green = MarkingConfig {
        request: Tlp::Green,
        ..Default::default()
    };
    let node = f.node.clone().with_markings(green).unwrap();
    let r = node
        .create_request(f.who("FBI", Role::Officer), f.draft(RequestKind::TrafficData), now)
        .await
        .unwrap();
    assert_eq!(r.request.draft.marking().tlp, Tlp::Green);
    let clear = MarkingConfig {
        request: Tlp::Clear,
        ..Default::default()
    };
    let e = f
        .node
        .clone()
        .with_markings(clear)
        .err()
        .expect("CLEAR default refused");
    assert!(e.to_string().contains("TLP:CLEAR"), "{e}");

    // A bad marking names the field.
    let mut d = f.draft(RequestKind::TrafficData);
    d.marking_set = Some(Marking {
        tlp: Tlp::Amber,
        recipients: vec!["cn-mps.desk".into()],
    });
    match f.node.create_request(f.who("FBI", Role::Officer), d, now).await {
        Err(ServiceError::Invalid(errs)) => {
            assert!(
                errs.iter()
                    .any(|e| e.field == "marking" && e.message.contains("TLP:RED")),
                "{errs:?}"
            )
        }
        other => panic!("expected a field error, got {other:?}"),
    }
}

async fn red_reaches_named_recipients_only(f: &TwoAgencies, now: Timestamp) {
    let id = submitted(f, Some(red(&["cn-mps.desk"])), now).await;
    let desk = f.who("CN-MPS", Role::Desk);
    let other = f.who("CN-MPS", Role::Officer);
    // The named user reads it, the originator's users read it.
    assert!(f.node.request(desk, id, now).await.is_ok());
    assert!(f.node.request(f.who("FBI", Role::Analyst), id, now).await.is_ok());
    assert!(listed(&f.node, desk, now).await.contains(&id));
    // Another user of the recipient organisation finds nothing, by any path.
    assert!(matches!(
        f.node.request(other, id, now).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        f.node.events(other, id, now).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        f.node.comment(other, id, "can I see it?", None, now).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(matches!(
        f.node.allowed(other, id, now).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(!listed(&f.node, other, now).await.contains(&id));
    let full = f.node.list_full(other, RequestFilter::default(), now).await.unwrap();
    assert!(full.items.iter().all(|r| r.request.id != id));
    // RED naming nobody: the requested agency as a whole is the named recipient.
    let id2 = submitted(f, Some(red(&[])), now).await;
    assert!(f.node.request(other, id2, now).await.is_ok());
}

async fn only_the_originator_changes_it(f: &TwoAgencies, now: Timestamp) {
    let id = submitted(f, Some(red(&["cn-mps.desk"])), now).await;
    let desk = f.who("CN-MPS", Role::Desk);
    let other = f.who("CN-MPS", Role::Officer);
    // The recipient may not lower it, not even the named user; a user it does not name
    // does not even find it.
    let e = f
        .node
        .set_marking(desk, id, Marking::new(Tlp::Green), now)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::Forbidden(_)), "{e:?}");
    let e = f
        .node
        .set_marking(f.who("CN-MPS", Role::Supervisor), id, Marking::new(Tlp::Green), now)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::NotFound(_)), "{e:?}");
    // An analyst of the originator may read but not change it.
    let e = f
        .node
        .set_marking(f.who("FBI", Role::Analyst), id, Marking::new(Tlp::Amber), now)
        .await
        .unwrap_err();
    assert!(matches!(e, ServiceError::Forbidden(_)), "{e:?}");
    // The originator lowers it: now the whole recipient organisation reads it.
    let r = f
        .node
        .set_marking(f.who("FBI", Role::Officer), id, Marking::new(Tlp::Amber), now)
        .await
        .unwrap();
    assert_eq!(r.request.draft.marking().tlp, Tlp::Amber);
    assert!(f.node.request(other, id, now).await.is_ok());
    let ev = f.node.events(other, id, now).await.unwrap();
    let m = ev.iter().find(|e| e.event == "marking").expect("a marking event");
    assert_eq!(m.data.as_ref().unwrap()["previous"], "TLP:RED");
    // And can recall it to RED again.
    f.node
        .set_marking(f.who("FBI", Role::Supervisor), id, red(&["cn-mps.desk"]), now)
        .await
        .unwrap();
    assert!(f.node.request(other, id, now).await.is_err());
}

async fn comments_are_never_below_their_request(f: &TwoAgencies, now: Timestamp) {
    let id = submitted(f, Some(Marking::new(Tlp::Amber)), now).await;
    let desk = f.who("CN-MPS", Role::Desk);
    // Asked GREEN on an AMBER request: stored AMBER.
    let c = f
        .node
        .comment(desk, id, "Provider contacted.", Some(Marking::new(Tlp::Green)), now)
        .await
        .unwrap();
    assert_eq!(liaison_service::markings::comment_marking(&c).tlp, Tlp::Amber);
    // A RED comment of the requested side names users of the requesting agency.
    f.node
        .comment(desk, id, "For the case officer only.", Some(red(&["fbi.officer"])), now)
        .await
        .unwrap();
    let seen = |p| {
        let node = f.node.clone();
        async move {
            node.events(p, id, now)
                .await
                .unwrap()
                .iter()
                .filter(|e| e.event == "comment")
                .map(|e| e.reason.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(seen(f.who("FBI", Role::Officer)).await.len(), 2);
    assert_eq!(seen(desk).await.len(), 2, "its author's agency reads it");
    let supervisor = seen(f.who("FBI", Role::Supervisor)).await;
    assert_eq!(supervisor, vec!["Provider contacted.".to_string()]);
}
