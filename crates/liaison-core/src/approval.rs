//! Four eyes: a second person of the requesting agency approves a draft before it is sent
//! (docs/lifecycle.md, "Four eyes").
//!
//! The step lives inside the `draft` state and never crosses the border: the requested agency
//! sees a request only once it is sent, whether or not a second person approved it, so the
//! states and the federation protocol are unchanged. A draft is *asked for approval* (by its
//! author or a colleague who may draft); from then on only an approver who is not the person
//! who asked may send it, and only the content that was asked about: editing the draft voids
//! the call. An approver may also send it back with a reason. The node names the kinds that
//! must be approved (`[approval] kinds`) and the roles that approve (`[approval] approvers`,
//! supervisors by default); asking is open for every kind, so an officer may ask a supervisor
//! to look at a draft the node does not require it for.

use crate::lifecycle::{Actor, Role, Side, State};
use crate::request::RequestKind;
use serde::{Deserialize, Serialize};

/// `[approval]` in `liaison.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalPolicy {
    /// The request kinds whose drafts are sent only once a second person approves them
    /// (empty: four eyes is off, though anyone may still ask).
    pub kinds: Vec<RequestKind>,
    /// The roles of the requesting agency that approve.
    pub approvers: Vec<Role>,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            kinds: Vec::new(),
            approvers: vec![Role::Supervisor],
        }
    }
}

impl ApprovalPolicy {
    /// Whether a draft of this kind must be approved before it is sent.
    pub fn required(&self, kind: RequestKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Checks the configuration: approvers are roles that may send requests at all.
    pub fn validate(&self) -> Result<(), String> {
        if self.approvers.is_empty() {
            return Err("approval.approvers: name at least one role (officer or supervisor)".into());
        }
        for r in &self.approvers {
            if !r.may_draft() {
                return Err(format!(
                    "approval.approvers: a {r} cannot send requests, so cannot approve them; use officer or supervisor"
                ));
            }
        }
        Ok(())
    }
}

/// A draft's open call for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalAsked {
    /// The user who asked.
    pub by: String,
    pub at: jiff::Timestamp,
    /// The draft's version when approval was asked: what the approver approves.
    pub version: i64,
}

/// Why an approval step is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    /// The node requires approval for this kind and none was asked (409).
    #[error("a {kind} request is sent only once a second person approves it (four eyes): ask for approval first")]
    NeedsApproval { kind: RequestKind },
    /// The person who asked may not approve (403).
    #[error("{who} asked for this approval, so a second person must give it")]
    OwnApproval { who: String },
    /// Not an approving role, or not of the requesting agency (403).
    #[error("approving drafts is for the requesting agency's {roles}; {actor} may not")]
    NotApprover { actor: String, roles: String },
    /// The draft was edited after approval was asked (409).
    #[error("the draft changed after approval was asked (version {asked}, now {now}); ask again")]
    Stale { asked: i64, now: i64 },
    /// Only a draft is approved (409).
    #[error("only a draft is asked for approval; this request is {state}")]
    NotADraft { state: State },
    /// Approval is already asked (409).
    #[error("approval was already asked by {by}")]
    AlreadyAsked { by: String },
    /// Nothing to send back (409).
    #[error("no approval is asked for this draft")]
    NotAsked,
    /// Asking, taking back or sending back is for the requesting agency's officers and
    /// supervisors (403).
    #[error("{actor} may not ask for or give approval; that is for the requesting agency's officer or supervisor")]
    NotRequesting { actor: String },
}

impl ApprovalError {
    /// The HTTP status class: `true` for "not you" (403), `false` for "not now" (409).
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            ApprovalError::OwnApproval { .. } | ApprovalError::NotApprover { .. } | ApprovalError::NotRequesting { .. }
        )
    }
}

fn requesting_role(actor: Actor) -> Result<Role, ApprovalError> {
    match actor {
        Actor::User {
            role,
            side: Side::Requesting,
        } if role.may_draft() => Ok(role),
        other => Err(ApprovalError::NotRequesting { actor: describe(other) }),
    }
}

fn describe(actor: Actor) -> String {
    match actor {
        Actor::System => "the node (system)".into(),
        Actor::User {
            role,
            side: Side::Requesting,
        } => format!("a {role} of the requesting agency"),
        Actor::User {
            role,
            side: Side::Requested,
        } => format!("a {role} of the requested agency"),
    }
}

/// Checks asking for approval of a draft.
pub fn check_ask(state: State, actor: Actor, asked: Option<&ApprovalAsked>) -> Result<(), ApprovalError> {
    if state != State::Draft {
        return Err(ApprovalError::NotADraft { state });
    }
    requesting_role(actor)?;
    match asked {
        Some(a) => Err(ApprovalError::AlreadyAsked { by: a.by.clone() }),
        None => Ok(()),
    }
}

/// Checks ending a call for approval without sending: an approver sends the draft back, or
/// the person who asked takes the call back.
pub fn check_return(
    policy: &ApprovalPolicy,
    state: State,
    actor: Actor,
    who: &str,
    asked: Option<&ApprovalAsked>,
) -> Result<(), ApprovalError> {
    if state != State::Draft {
        return Err(ApprovalError::NotADraft { state });
    }
    let role = requesting_role(actor)?;
    let Some(a) = asked else {
        return Err(ApprovalError::NotAsked);
    };
    if a.by == who || policy.approvers.contains(&role) {
        Ok(())
    } else {
        Err(not_approver(policy, actor))
    }
}

fn not_approver(policy: &ApprovalPolicy, actor: Actor) -> ApprovalError {
    ApprovalError::NotApprover {
        actor: describe(actor),
        roles: policy
            .approvers
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// Checks sending a draft (`draft` → `submitted`) as far as four eyes goes; the lifecycle
/// table ([`crate::lifecycle::check`]) is checked besides. `Ok(true)`: the send approves an
/// open call; `Ok(false)`: no approval is involved.
pub fn check_send(
    policy: &ApprovalPolicy,
    kind: RequestKind,
    version: i64,
    actor: Actor,
    who: &str,
    asked: Option<&ApprovalAsked>,
) -> Result<bool, ApprovalError> {
    let Some(a) = asked else {
        return if policy.required(kind) {
            Err(ApprovalError::NeedsApproval { kind })
        } else {
            Ok(false)
        };
    };
    if a.version != version {
        return Err(ApprovalError::Stale {
            asked: a.version,
            now: version,
        });
    }
    let role = requesting_role(actor)?;
    if a.by == who {
        return Err(ApprovalError::OwnApproval { who: a.by.clone() });
    }
    if !policy.approvers.contains(&role) {
        return Err(not_approver(policy, actor));
    }
    Ok(true)
}

/// What a user may do about a draft's approval now (for the pages' buttons).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ApprovalMoves {
    /// Ask for approval.
    pub ask: bool,
    /// Approve and send.
    pub approve: bool,
    /// Send back (an approver) or take back (the person who asked).
    pub send_back: bool,
    /// Send without approval (none is required and none is asked).
    pub send: bool,
}

/// The approval moves open to `actor` (user `who`) on a request in `state`.
pub fn moves(
    policy: &ApprovalPolicy,
    state: State,
    kind: RequestKind,
    version: i64,
    actor: Actor,
    who: &str,
    asked: Option<&ApprovalAsked>,
) -> ApprovalMoves {
    if state != State::Draft || requesting_role(actor).is_err() {
        return ApprovalMoves::default();
    }
    let sends = check_send(policy, kind, version, actor, who, asked);
    ApprovalMoves {
        ask: check_ask(state, actor, asked).is_ok(),
        approve: sends == Ok(true),
        send_back: check_return(policy, state, actor, who, asked).is_ok(),
        send: sends == Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFICER: Actor = Actor::User {
        role: Role::Officer,
        side: Side::Requesting,
    };
    const SUPERVISOR: Actor = Actor::User {
        role: Role::Supervisor,
        side: Side::Requesting,
    };

    fn policy() -> ApprovalPolicy {
        ApprovalPolicy {
            kinds: vec![RequestKind::StoredContent],
            ..ApprovalPolicy::default()
        }
    }

    fn asked(by: &str, version: i64) -> ApprovalAsked {
        ApprovalAsked {
            by: by.into(),
            at: jiff::Timestamp::UNIX_EPOCH,
            version,
        }
    }

    #[test]
    fn a_required_kind_is_sent_only_by_a_second_approver() {
        let p = policy();
        let k = RequestKind::StoredContent;
        assert_eq!(
            check_send(&p, k, 1, OFFICER, "ann", None),
            Err(ApprovalError::NeedsApproval { kind: k })
        );
        // Other kinds go straight out.
        assert_eq!(
            check_send(&p, RequestKind::ExpeditedPreservation, 1, OFFICER, "ann", None),
            Ok(false)
        );
        let a = asked("ann", 3);
        // Not the asker, not an officer, not an old version.
        assert!(matches!(
            check_send(&p, k, 3, SUPERVISOR, "ann", Some(&a)),
            Err(ApprovalError::OwnApproval { .. })
        ));
        let e = check_send(&p, k, 3, OFFICER, "bob", Some(&a)).unwrap_err();
        assert!(e.is_forbidden() && e.to_string().contains("supervisor"), "{e}");
        assert_eq!(
            check_send(&p, k, 4, SUPERVISOR, "sue", Some(&a)),
            Err(ApprovalError::Stale { asked: 3, now: 4 })
        );
        assert_eq!(check_send(&p, k, 3, SUPERVISOR, "sue", Some(&a)), Ok(true));
        // An asked approval binds even where the node requires none.
        assert!(check_send(&ApprovalPolicy::default(), k, 3, OFFICER, "ann", Some(&a)).is_err());
    }

    #[test]
    fn asking_and_sending_back() {
        let p = policy();
        assert_eq!(check_ask(State::Draft, OFFICER, None), Ok(()));
        assert!(check_ask(State::Submitted, OFFICER, None).is_err());
        let desk = Actor::User {
            role: Role::Desk,
            side: Side::Requesting,
        };
        assert!(check_ask(State::Draft, desk, None).unwrap_err().is_forbidden());
        let theirs = Actor::User {
            role: Role::Supervisor,
            side: Side::Requested,
        };
        assert!(check_ask(State::Draft, theirs, None).is_err());
        let a = asked("ann", 1);
        assert!(matches!(
            check_ask(State::Draft, OFFICER, Some(&a)),
            Err(ApprovalError::AlreadyAsked { .. })
        ));
        // The asker takes it back; an approver sends it back; another officer does neither.
        assert_eq!(check_return(&p, State::Draft, OFFICER, "ann", Some(&a)), Ok(()));
        assert_eq!(check_return(&p, State::Draft, SUPERVISOR, "sue", Some(&a)), Ok(()));
        assert!(check_return(&p, State::Draft, OFFICER, "bob", Some(&a)).is_err());
        assert_eq!(
            check_return(&p, State::Draft, OFFICER, "ann", None),
            Err(ApprovalError::NotAsked)
        );
    }

    #[test]
    fn moves_offer_one_way_out() {
        let p = policy();
        let k = RequestKind::StoredContent;
        let m = moves(&p, State::Draft, k, 1, OFFICER, "ann", None);
        assert!(m.ask && !m.send && !m.approve && !m.send_back);
        let m = moves(
            &p,
            State::Draft,
            RequestKind::ExpeditedPreservation,
            1,
            OFFICER,
            "ann",
            None,
        );
        assert!(m.ask && m.send);
        let a = asked("ann", 1);
        let m = moves(&p, State::Draft, k, 1, SUPERVISOR, "sue", Some(&a));
        assert!(m.approve && m.send_back && !m.ask && !m.send);
        let m = moves(&p, State::Draft, k, 1, SUPERVISOR, "ann", Some(&a));
        assert!(!m.approve && m.send_back);
        assert_eq!(
            moves(&p, State::Submitted, k, 1, SUPERVISOR, "sue", Some(&a)),
            ApprovalMoves::default()
        );
    }

    #[test]
    fn approvers_must_be_roles_that_send() {
        assert!(ApprovalPolicy::default().validate().is_ok());
        let bad = ApprovalPolicy {
            kinds: vec![],
            approvers: vec![Role::Analyst],
        };
        assert!(bad.validate().unwrap_err().contains("analyst"));
    }
}
