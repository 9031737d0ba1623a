//! The lifecycle of an assistance request: states, who may move a request between them, and
//! what each move must carry.
//!
//! The table in [`RULES`] is the single source of truth. Each rule names the side that acts
//! (the requesting or the requested agency), the roles on that side that may act, and whether
//! the node itself (`system`, for deliveries and expiries) may act. Everything not in the table
//! is illegal.

use crate::ids::RequestId;
use crate::request::{RequestKind, string_enum};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

string_enum! {
    /// Where a request stands.
    State {
        Draft = "draft",
        Submitted = "submitted",
        Received = "received",
        Acknowledged = "acknowledged",
        InReview = "in_review",
        NeedsInformation = "needs_information",
        Accepted = "accepted",
        Executing = "executing",
        AnsweredPartial = "answered_partial",
        Answered = "answered",
        Closed = "closed",
        Refused = "refused",
        Withdrawn = "withdrawn",
        Expired = "expired",
        Preserved = "preserved",
        Extended = "extended",
        Converted = "converted",
        Released = "released",
    }
}

impl State {
    /// No transition leaves a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Closed | State::Refused | State::Withdrawn | State::Expired | State::Released
        )
    }

    /// The request has been sent and the requested side has not yet answered, refused or preserved.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            State::Submitted
                | State::Received
                | State::Acknowledged
                | State::InReview
                | State::NeedsInformation
                | State::Accepted
                | State::Executing
        )
    }

    /// Whose move the request waits for in this state, for the queues "waiting on us" and
    /// "waiting on the partner" (`None`: a terminal state, nobody's). The requesting side
    /// drafts, supplies information asked for, closes an answer and converts a preservation
    /// (or lets it lapse); everything else is the requested side's move. A test checks that
    /// the side named has a move of its own out of the state in [`RULES`].
    pub fn awaits(self) -> Option<Side> {
        match self {
            State::Draft | State::NeedsInformation | State::Answered | State::Preserved | State::Extended => {
                Some(Side::Requesting)
            }
            s if s.is_terminal() => None,
            _ => Some(Side::Requested),
        }
    }

    /// The states that wait for `side`'s move ([`State::awaits`]).
    pub fn awaiting(side: Side) -> Vec<State> {
        State::ALL
            .iter()
            .copied()
            .filter(|s| s.awaits() == Some(side))
            .collect()
    }

    /// The requested side has given a substantive answer (data, partial data, or preservation).
    pub fn counts_as_answered(self) -> bool {
        matches!(
            self,
            State::AnsweredPartial
                | State::Answered
                | State::Closed
                | State::Preserved
                | State::Extended
                | State::Converted
                | State::Released
        )
    }
}

string_enum! {
    /// What a user may do; always scoped to the user's own agency.
    Role {
        /// Case officer: drafts, submits and follows requests; executes incoming ones.
        Officer = "officer",
        /// 24/7 desk officer: receives, acknowledges and preserves.
        Desk = "desk",
        /// Legal reviewer: reviews incoming requests, accepts or refuses them.
        LegalReviewer = "legal_reviewer",
        /// Supervisor: may do what officers, desk and reviewers do.
        Supervisor = "supervisor",
        /// Analyst: reads requests and statistics.
        Analyst = "analyst",
        /// Auditor: reads requests and the audit log.
        Auditor = "auditor",
        /// Node administrator: users, tokens and directory; no case work.
        Admin = "admin",
    }
}

impl Role {
    /// May comment on requests of the user's agency.
    pub fn may_comment(self) -> bool {
        matches!(
            self,
            Role::Officer | Role::Desk | Role::LegalReviewer | Role::Supervisor
        )
    }
    /// May create drafts for the user's agency.
    pub fn may_draft(self) -> bool {
        matches!(self, Role::Officer | Role::Supervisor)
    }
    /// May read requests of the user's agency.
    pub fn may_read_requests(self) -> bool {
        !matches!(self, Role::Admin)
    }
    /// May read cooperation statistics.
    pub fn may_read_statistics(self) -> bool {
        matches!(self, Role::Analyst | Role::Supervisor | Role::Auditor | Role::Admin)
    }
    /// May read and verify the audit log.
    pub fn may_audit(self) -> bool {
        matches!(self, Role::Auditor | Role::Admin)
    }
    /// May manage users, tokens and the directory.
    pub fn may_administer(self) -> bool {
        matches!(self, Role::Admin)
    }
}

/// The two parties to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Requesting,
    Requested,
}

/// Who attempts a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A user with a role, acting for the given side of the request.
    User { role: Role, side: Side },
    /// The node itself (delivery receipts, expiry timers).
    System,
}

/// Which request kinds a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KindFilter {
    Any,
    PreservationOnly,
    NotPreservation,
    SpontaneousOnly,
}

impl KindFilter {
    pub fn matches(self, kind: RequestKind) -> bool {
        match self {
            KindFilter::Any => true,
            KindFilter::PreservationOnly => kind.is_preservation(),
            KindFilter::NotPreservation => !kind.is_preservation() && kind != RequestKind::SpontaneousInformation,
            KindFilter::SpontaneousOnly => kind == RequestKind::SpontaneousInformation,
        }
    }
}

/// What a transition must carry besides the target state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// A free-text reason (withdrawal, request for information).
    Reason,
    /// A refusal reason code and an explanation.
    Refusal,
    /// The instant until which data is preserved (defaulted from the SLA policy if absent).
    PreservedUntil,
    /// The follow-up request that converts a preservation into production.
    FollowUp,
}

/// One legal move.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub from: State,
    pub to: State,
    pub kinds: KindFilter,
    pub side: Side,
    pub roles: &'static [Role],
    pub system: bool,
    pub needs: Needs,
}

use Role::*;
use State::*;

const REQUESTING_CASE: &[Role] = &[Officer, Supervisor];
const REQUESTED_INTAKE: &[Role] = &[Desk, Officer, Supervisor];
const REQUESTED_LEGAL: &[Role] = &[LegalReviewer, Supervisor];
const REQUESTED_EXEC: &[Role] = &[Officer, Supervisor];

const fn rule(from: State, to: State, side: Side, roles: &'static [Role]) -> Rule {
    Rule {
        from,
        to,
        kinds: KindFilter::Any,
        side,
        roles,
        system: false,
        needs: Needs::Nothing,
    }
}
const fn with(mut r: Rule, kinds: KindFilter, system: bool, needs: Needs) -> Rule {
    r.kinds = kinds;
    r.system = system;
    r.needs = needs;
    r
}

use KindFilter::{Any as AnyKind, NotPreservation, PreservationOnly, SpontaneousOnly};
use Side::{Requested as Rd, Requesting as Rg};

/// Every legal transition.
pub const RULES: &[Rule] = &[
    rule(Draft, Submitted, Rg, REQUESTING_CASE),
    with(
        rule(Draft, Withdrawn, Rg, REQUESTING_CASE),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(
        rule(Submitted, Received, Rd, REQUESTED_INTAKE),
        AnyKind,
        true,
        Needs::Nothing,
    ),
    rule(Received, Acknowledged, Rd, REQUESTED_INTAKE),
    with(
        rule(Acknowledged, InReview, Rd, REQUESTED_LEGAL),
        NotPreservation,
        false,
        Needs::Nothing,
    ),
    // Preservation needs no dual-criminality review (Budapest Art 29(3)): the 24/7 desk accepts it.
    with(
        rule(Acknowledged, Accepted, Rd, REQUESTED_INTAKE),
        PreservationOnly,
        false,
        Needs::Nothing,
    ),
    with(
        rule(Acknowledged, Refused, Rd, REQUESTED_LEGAL),
        PreservationOnly,
        false,
        Needs::Refusal,
    ),
    with(
        rule(Acknowledged, Closed, Rd, REQUESTED_INTAKE),
        SpontaneousOnly,
        false,
        Needs::Nothing,
    ),
    with(
        rule(InReview, NeedsInformation, Rd, REQUESTED_LEGAL),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(
        rule(NeedsInformation, InReview, Rg, REQUESTING_CASE),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(rule(NeedsInformation, Expired, Rd, &[]), AnyKind, true, Needs::Reason),
    rule(InReview, Accepted, Rd, REQUESTED_LEGAL),
    with(
        rule(InReview, Refused, Rd, REQUESTED_LEGAL),
        AnyKind,
        false,
        Needs::Refusal,
    ),
    with(
        rule(Accepted, Executing, Rd, REQUESTED_INTAKE),
        NotPreservation,
        false,
        Needs::Nothing,
    ),
    with(
        rule(Accepted, Preserved, Rd, REQUESTED_INTAKE),
        PreservationOnly,
        false,
        Needs::PreservedUntil,
    ),
    rule(Executing, AnsweredPartial, Rd, REQUESTED_EXEC),
    rule(Executing, Answered, Rd, REQUESTED_EXEC),
    rule(AnsweredPartial, Executing, Rd, REQUESTED_EXEC),
    rule(AnsweredPartial, Answered, Rd, REQUESTED_EXEC),
    rule(AnsweredPartial, Closed, Rg, REQUESTING_CASE),
    rule(Answered, Closed, Rg, REQUESTING_CASE),
    with(
        rule(Preserved, Extended, Rd, REQUESTED_INTAKE),
        PreservationOnly,
        false,
        Needs::PreservedUntil,
    ),
    with(
        rule(Extended, Extended, Rd, REQUESTED_INTAKE),
        PreservationOnly,
        false,
        Needs::PreservedUntil,
    ),
    with(
        rule(Preserved, Converted, Rg, REQUESTING_CASE),
        PreservationOnly,
        false,
        Needs::FollowUp,
    ),
    with(
        rule(Extended, Converted, Rg, REQUESTING_CASE),
        PreservationOnly,
        false,
        Needs::FollowUp,
    ),
    with(
        rule(Preserved, Released, Rd, REQUESTED_INTAKE),
        PreservationOnly,
        false,
        Needs::Reason,
    ),
    with(
        rule(Extended, Released, Rd, REQUESTED_INTAKE),
        PreservationOnly,
        false,
        Needs::Reason,
    ),
    with(
        rule(Converted, Released, Rd, REQUESTED_INTAKE),
        PreservationOnly,
        false,
        Needs::Reason,
    ),
    with(rule(Preserved, Expired, Rd, &[]), PreservationOnly, true, Needs::Reason),
    with(rule(Extended, Expired, Rd, &[]), PreservationOnly, true, Needs::Reason),
    with(
        rule(Submitted, Withdrawn, Rg, REQUESTING_CASE),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(
        rule(Received, Withdrawn, Rg, REQUESTING_CASE),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(
        rule(Acknowledged, Withdrawn, Rg, REQUESTING_CASE),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(
        rule(InReview, Withdrawn, Rg, REQUESTING_CASE),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(
        rule(NeedsInformation, Withdrawn, Rg, REQUESTING_CASE),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(
        rule(Accepted, Withdrawn, Rg, REQUESTING_CASE),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(
        rule(Executing, Withdrawn, Rg, REQUESTING_CASE),
        AnyKind,
        false,
        Needs::Reason,
    ),
    with(
        rule(Preserved, Withdrawn, Rg, REQUESTING_CASE),
        PreservationOnly,
        false,
        Needs::Reason,
    ),
    with(
        rule(Extended, Withdrawn, Rg, REQUESTING_CASE),
        PreservationOnly,
        false,
        Needs::Reason,
    ),
];

string_enum! {
    /// Why the requested side refuses (Budapest Arts 25(4), 27(4), 29(5); US–PRC MLAA Art 3).
    RefusalReason {
        DualCriminality = "dual_criminality",
        PoliticalOffence = "political_offence",
        EssentialInterests = "essential_interests",
        MilitaryOffence = "military_offence",
        InsufficientInformation = "insufficient_information",
        DataUnavailable = "data_unavailable",
        NotCompetent = "not_competent",
        Disproportionate = "disproportionate",
        Other = "other",
    }
}

/// A requested move, as the user sends it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionInput {
    pub to: Option<State>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal_reason: Option<RefusalReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserved_until: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<RequestId>,
}

/// Why a transition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// Not in the table at all from this state for this kind (HTTP 409).
    #[error("cannot go from {from} to {to}; allowed from {from}: {}", list(allowed))]
    Illegal {
        from: State,
        to: State,
        allowed: Vec<State>,
    },
    /// In the table, but not for this actor (HTTP 403).
    #[error("{actor} may not move a request from {from} to {to}; that is for {who}")]
    Forbidden {
        from: State,
        to: State,
        actor: String,
        who: String,
    },
    /// A required field is missing (HTTP 400).
    #[error("{field}: {message}")]
    Missing { field: &'static str, message: &'static str },
}

fn list(states: &[State]) -> String {
    if states.is_empty() {
        "nothing (final state)".into()
    } else {
        states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Target states reachable from `from` for a request of `kind`, by anybody.
pub fn reachable(from: State, kind: RequestKind) -> Vec<State> {
    let mut v: Vec<State> = RULES
        .iter()
        .filter(|r| r.from == from && r.kinds.matches(kind))
        .map(|r| r.to)
        .collect();
    v.dedup();
    v
}

/// Target states this actor may move to from `from`.
pub fn allowed_for(from: State, kind: RequestKind, actor: Actor) -> Vec<State> {
    RULES
        .iter()
        .filter(|r| r.from == from && r.kinds.matches(kind) && permits(r, actor))
        .map(|r| r.to)
        .collect()
}

fn permits(rule: &Rule, actor: Actor) -> bool {
    match actor {
        Actor::System => rule.system,
        Actor::User { role, side } => side == rule.side && rule.roles.contains(&role),
    }
}

fn describe(actor: Actor) -> String {
    match actor {
        Actor::System => "the node (system)".into(),
        Actor::User { role, side } => format!("a {role} of the {} agency", side_name(side)),
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Requesting => "requesting",
        Side::Requested => "requested",
    }
}

/// Checks a move and returns the rule that allows it.
pub fn check(
    from: State,
    kind: RequestKind,
    actor: Actor,
    input: &TransitionInput,
) -> Result<&'static Rule, TransitionError> {
    let Some(to) = input.to else {
        return Err(TransitionError::Missing {
            field: "to",
            message: "name the target state",
        });
    };
    let rule = RULES
        .iter()
        .find(|r| r.from == from && r.to == to && r.kinds.matches(kind))
        .ok_or_else(|| TransitionError::Illegal {
            from,
            to,
            allowed: reachable(from, kind),
        })?;
    if !permits(rule, actor) {
        let who = if rule.roles.is_empty() {
            "the node only".to_string()
        } else {
            format!(
                "the {} agency's {}",
                side_name(rule.side),
                rule.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(" or ")
            )
        };
        return Err(TransitionError::Forbidden {
            from,
            to,
            actor: describe(actor),
            who,
        });
    }
    let has_text = |o: &Option<String>| o.as_ref().is_some_and(|s| !s.trim().is_empty());
    match rule.needs {
        Needs::Nothing | Needs::PreservedUntil => {}
        Needs::Reason if !has_text(&input.reason) => {
            return Err(TransitionError::Missing {
                field: "reason",
                message: "this transition needs a reason",
            });
        }
        Needs::Refusal if input.refusal_reason.is_none() => {
            return Err(TransitionError::Missing {
                field: "refusal_reason",
                message: "a refusal needs a reason code (dual_criminality, political_offence, …)",
            });
        }
        Needs::Refusal if !has_text(&input.reason) => {
            return Err(TransitionError::Missing {
                field: "reason",
                message: "a refusal needs an explanation",
            });
        }
        Needs::FollowUp if input.follow_up.is_none() => {
            return Err(TransitionError::Missing {
                field: "follow_up",
                message: "name the follow-up request that converts this preservation",
            });
        }
        _ => {}
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_awaited_side_has_a_move_of_its_own() {
        for &s in State::ALL {
            match s.awaits() {
                None => assert!(s.is_terminal(), "{s} awaits nobody but is not terminal"),
                Some(side) => assert!(
                    RULES
                        .iter()
                        .any(|r| r.from == s && r.side == side && !r.roles.is_empty() && r.to != State::Withdrawn),
                    "{s} awaits the {side:?} side, which has no move out of it"
                ),
            }
        }
        // Submitted waits on the requested side (receipt), a draft on its author.
        assert_eq!(State::Submitted.awaits(), Some(Side::Requested));
        assert_eq!(State::Draft.awaits(), Some(Side::Requesting));
    }

    fn to(s: State) -> TransitionInput {
        TransitionInput {
            to: Some(s),
            reason: Some("because".into()),
            refusal_reason: Some(RefusalReason::Other),
            preserved_until: None,
            follow_up: Some(RequestId::new()),
        }
    }

    /// Every (state, target, role, side, kind) combination: the outcome matches the table exactly.
    #[test]
    fn every_combination_follows_the_table() {
        let mut allowed = 0;
        let mut checked = 0;
        for &kind in RequestKind::ALL {
            for &from in State::ALL {
                for &target in State::ALL {
                    let in_table = RULES
                        .iter()
                        .find(|r| r.from == from && r.to == target && r.kinds.matches(kind));
                    let mut actors: Vec<Actor> = vec![Actor::System];
                    for &role in Role::ALL {
                        for side in [Side::Requesting, Side::Requested] {
                            actors.push(Actor::User { role, side });
                        }
                    }
                    for actor in actors {
                        checked += 1;
                        let got = check(from, kind, actor, &to(target));
                        match in_table {
                            None => assert!(
                                matches!(got, Err(TransitionError::Illegal { .. })),
                                "{kind} {from}->{target} {actor:?}"
                            ),
                            Some(r) if permits(r, actor) => {
                                allowed += 1;
                                assert!(got.is_ok(), "{kind} {from}->{target} {actor:?}: {got:?}")
                            }
                            Some(_) => assert!(
                                matches!(got, Err(TransitionError::Forbidden { .. })),
                                "{kind} {from}->{target} {actor:?}"
                            ),
                        }
                    }
                }
            }
        }
        assert_eq!(
            checked,
            RequestKind::ALL.len() * State::ALL.len() * State::ALL.len() * (1 + Role::ALL.len() * 2)
        );
        assert!(allowed > 100);
    }

    #[test]
    fn terminal_states_have_no_exit() {
        for r in RULES {
            assert!(!r.from.is_terminal(), "{} is terminal but has a rule", r.from);
        }
        for &s in State::ALL {
            if !s.is_terminal() && s != State::Draft {
                assert!(RULES.iter().any(|r| r.from == s), "{s} is a dead end");
            }
        }
    }

    #[test]
    fn analysts_auditors_and_admins_never_move_requests() {
        for r in RULES {
            for role in [Role::Analyst, Role::Auditor, Role::Admin] {
                assert!(!r.roles.contains(&role));
            }
        }
    }

    #[test]
    fn illegal_move_lists_allowed_targets() {
        let e = check(
            State::Draft,
            RequestKind::TrafficData,
            Actor::User {
                role: Role::Officer,
                side: Side::Requesting,
            },
            &to(State::Answered),
        )
        .unwrap_err();
        assert_eq!(
            e,
            TransitionError::Illegal {
                from: State::Draft,
                to: State::Answered,
                allowed: vec![State::Submitted, State::Withdrawn]
            }
        );
        assert!(e.to_string().contains("submitted, withdrawn"));
    }

    #[test]
    fn wrong_side_is_forbidden() {
        let e = check(
            State::Received,
            RequestKind::TrafficData,
            Actor::User {
                role: Role::Desk,
                side: Side::Requesting,
            },
            &to(State::Acknowledged),
        )
        .unwrap_err();
        assert!(matches!(e, TransitionError::Forbidden { .. }));
        assert!(e.to_string().contains("requested agency"), "{e}");
    }

    #[test]
    fn refusal_needs_code_and_explanation() {
        let actor = Actor::User {
            role: Role::LegalReviewer,
            side: Side::Requested,
        };
        let mut input = to(State::Refused);
        input.refusal_reason = None;
        assert!(matches!(
            check(State::InReview, RequestKind::StoredContent, actor, &input),
            Err(TransitionError::Missing {
                field: "refusal_reason",
                ..
            })
        ));
        input.refusal_reason = Some(RefusalReason::DualCriminality);
        input.reason = Some("  ".into());
        assert!(matches!(
            check(State::InReview, RequestKind::StoredContent, actor, &input),
            Err(TransitionError::Missing { field: "reason", .. })
        ));
    }

    #[test]
    fn preservation_skips_legal_review() {
        let desk = Actor::User {
            role: Role::Desk,
            side: Side::Requested,
        };
        assert!(
            check(
                State::Acknowledged,
                RequestKind::ExpeditedPreservation,
                desk,
                &to(State::Accepted)
            )
            .is_ok()
        );
        assert!(
            check(
                State::Acknowledged,
                RequestKind::StoredContent,
                desk,
                &to(State::Accepted)
            )
            .is_err()
        );
    }
}

/// The transition table as Markdown (used to generate docs/lifecycle.md and keep it in sync).
pub fn markdown_table() -> String {
    let mut out =
        String::from("| from | to | kinds | acting side | roles | system | needs |\n|---|---|---|---|---|---|---|\n");
    for r in RULES {
        let kinds = match r.kinds {
            KindFilter::Any => "any",
            KindFilter::PreservationOnly => "preservation",
            KindFilter::NotPreservation => "not preservation / spontaneous",
            KindFilter::SpontaneousOnly => "spontaneous information",
        };
        let needs = match r.needs {
            Needs::Nothing => "",
            Needs::Reason => "reason",
            Needs::Refusal => "refusal_reason + reason",
            Needs::PreservedUntil => "preserved_until (default from policy)",
            Needs::FollowUp => "follow_up request",
        };
        let roles = r.roles.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.from,
            r.to,
            kinds,
            side_name(r.side),
            if roles.is_empty() { "—".to_string() } else { roles },
            if r.system { "yes" } else { "" },
            needs
        ));
    }
    out
}

#[cfg(test)]
mod doc_sync {
    #[test]
    fn docs_lifecycle_md_has_the_current_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/lifecycle.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        let table = super::markdown_table();
        assert!(
            doc.contains(&table),
            "docs/lifecycle.md is out of date; paste this table into it:\n{table}"
        );
    }
}
