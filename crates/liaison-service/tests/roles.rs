#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The role matrix, enforced by the service: every rule of the lifecycle table, tried by every
//! role on both sides (and by an agency that is not a party), against a stored request.

use jiff::Timestamp;
use liaison_core::lifecycle::{Actor, RULES, RefusalReason, Side, State, TransitionInput, allowed_for};
use liaison_core::request::{AssistanceRequest, RequestKind};
use liaison_core::{RequestId, Role};
use liaison_service::ServiceError;
use liaison_service::fixtures::{self, TwoAgencies};

fn kind_for(rule_kinds: &liaison_core::lifecycle::KindFilter) -> RequestKind {
    use liaison_core::lifecycle::KindFilter::*;
    match rule_kinds {
        Any | NotPreservation => RequestKind::StoredContent,
        PreservationOnly => RequestKind::ExpeditedPreservation,
        SpontaneousOnly => RequestKind::SpontaneousInformation,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_every_role_every_side() {
    for node in fixtures::nodes_on_every_backend().await.unwrap() {
        let f = TwoAgencies::on(node).await.unwrap();
        let now = Timestamp::now();
        let mut checked = 0;
        for rule in RULES {
            let kind = kind_for(&rule.kinds);
            for &role in Role::ALL {
                for (agency, side) in [("FBI", Some(Side::Requesting)), ("CN-MPS", Some(Side::Requested))] {
                    // A request already in `rule.from`, stored directly.
                    let mut draft = f.draft(kind);
                    draft.requesting_agency = f.fbi.id;
                    draft.requested_agency = f.mps.id;
                    let r = AssistanceRequest {
                        id: RequestId::new(),
                        draft,
                        state: rule.from,
                        version: 1,
                        created_at: now,
                        updated_at: now,
                        submitted_at: None,
                        acknowledged_at: None,
                        answered_at: None,
                        ack_due: None,
                        answer_due: None,
                        preserved_until: None,
                        information_due: None,
                    };
                    fixtures::insert_request_as_is(&f.node, &r).await.unwrap();
                    // A follow-up for conversions.
                    let mut fu = f.draft(RequestKind::StoredContent);
                    fu.related = vec![r.id];
                    let follow = f
                        .node
                        .create_request(f.who("FBI", Role::Officer), fu, now)
                        .await
                        .unwrap();
                    let input = TransitionInput {
                        to: Some(rule.to),
                        reason: Some("test reason".into()),
                        refusal_reason: Some(RefusalReason::DualCriminality),
                        preserved_until: None,
                        follow_up: Some(follow.request.id),
                    };
                    let p = f.who(agency, role);
                    let got = f.node.transition(p, r.id, 1, input, now).await;
                    let permitted = side.is_some_and(|s| s == rule.side && rule.roles.contains(&role));
                    if permitted {
                        let out = got.unwrap_or_else(|e| {
                            panic!("{:?} {} -> {} by {agency} {role}: {e}", kind, rule.from, rule.to)
                        });
                        assert!(
                            out.request.state == rule.to
                                || (rule.to == State::Submitted && out.request.state == State::Received)
                        );
                    } else if !role.may_read_requests() {
                        assert!(
                            matches!(got, Err(ServiceError::Forbidden(_))),
                            "{} -> {} by {agency} {role}: {got:?}",
                            rule.from,
                            rule.to
                        );
                    } else if rule.from == State::Draft && agency == "CN-MPS" {
                        // The requested side cannot even see the other side's drafts.
                        assert!(matches!(got, Err(ServiceError::NotFound(_))), "{got:?}");
                    } else {
                        assert!(
                            matches!(got, Err(ServiceError::Forbidden(_))),
                            "{} -> {} by {agency} {role}: {got:?}",
                            rule.from,
                            rule.to
                        );
                        // Nothing changed.
                        let reader = f.who("FBI", Role::Supervisor);
                        let now_state = f.node.request(reader, r.id, now).await.unwrap().request.state;
                        assert_eq!(now_state, rule.from);
                    }
                    // The allowed list the API returns agrees with the decision.
                    if let Some(side) = side
                        && role.may_read_requests()
                        && !(rule.from == State::Draft && side == Side::Requested)
                    {
                        let allowed = allowed_for(rule.from, kind, Actor::User { role, side });
                        assert_eq!(allowed.contains(&rule.to), permitted);
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, RULES.len() * Role::ALL.len() * 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_cannot_see_or_move_requests() {
    let f = TwoAgencies::on(fixtures::sqlite_node().await.unwrap()).await.unwrap();
    let now = Timestamp::now();
    // A third agency's officer.
    let third = liaison_core::directory::Agency {
        id: liaison_core::AgencyId::new(),
        code: "UK-NCA".into(),
        name_en: "National Crime Agency".into(),
        name_native: "National Crime Agency".into(),
        name_zh: String::new(),
        jurisdiction: liaison_core::CountryCode::parse("US").unwrap(),
        kind: liaison_core::directory::AgencyKind::Police,
        time_zone: "Europe/London".into(),
    };
    let outsider = f.add_agency(&third, "nca.officer", Role::Supervisor).await.unwrap();
    let r = f
        .node
        .create_request(
            f.who("FBI", Role::Officer),
            f.draft(RequestKind::SubscriberInformation),
            now,
        )
        .await
        .unwrap();
    let id = r.request.id;
    assert!(matches!(
        f.node.request(&outsider, id, now).await,
        Err(ServiceError::NotFound(_))
    ));
    let submit = TransitionInput {
        to: Some(State::Submitted),
        ..Default::default()
    };
    assert!(matches!(
        f.node.transition(&outsider, id, 1, submit, now).await,
        Err(ServiceError::NotFound(_))
    ));
    assert!(
        f.node
            .list(&outsider, Default::default(), now)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Drafting for another agency is refused.
    assert!(matches!(
        f.node
            .create_request(&outsider, f.draft(RequestKind::SubscriberInformation), now)
            .await,
        Err(ServiceError::Forbidden(_))
    ));
}
