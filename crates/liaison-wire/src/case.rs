//! Payloads of joint cases over federation (docs/federation.md §13, protocol version 7).
//!
//! - `case_update`: the case's home node (the node serving its lead agency) sends a member
//!   agency's node the events of the case that node's agencies may see, in the order of the
//!   case's log, and the answers to that node's actions.
//! - `case_action`: a member agency's node asks the home node for a change (accept or decline
//!   an invitation, leave, link or share an item, write a note). Nothing changes until the home
//!   node has checked it against the case and appended it; its answer comes in a `case_update`.
//!
//! Both are checked field by field ([`CaseUpdatePayload::check`], [`CaseActionPayload::check`])
//! before anything is stored; the rules of the case itself are `liaison_core::case`.

use jiff::Timestamp;
use liaison_core::case::{CaseChange, CaseEvent, check_text, check_word};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Most events one `case_update` carries; a longer log travels in several.
pub const MAX_UPDATE_EVENTS: usize = 200;
/// Most answers one `case_update` carries.
pub const MAX_ANSWERS: usize = 200;
/// Longest reason of a refusal (characters).
pub const MAX_REASON_CHARS: usize = 1000;

/// Events of a case for the recipient node's agencies, and answers to its actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseUpdatePayload {
    pub case_id: Uuid,
    /// In increasing `seq` (gaps: events the recipient's agencies may not see).
    pub events: Vec<CaseEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<CaseAnswer>,
}

/// What the home node did with an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseAnswer {
    pub action: Uuid,
    /// `true`: appended as the event that names it in `action`; `false`: refused.
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A change a member agency's node asks of the case's home node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseActionPayload {
    pub case_id: Uuid,
    pub action: Uuid,
    pub at: Timestamp,
    /// The acting user on the sending node (qualified with the node by the receiver).
    pub actor: String,
    /// The acting agency, served by the sending node.
    pub agency: String,
    /// One of `joined`, `declined`, `left`, `linked`, `shared`, `note`.
    pub change: CaseChange,
}

impl CaseUpdatePayload {
    /// Checks the sizes and words; the events' rules are checked against the case.
    pub fn check(&self) -> Result<(), String> {
        if self.events.len() > MAX_UPDATE_EVENTS {
            return Err(format!("events: {} (at most {MAX_UPDATE_EVENTS})", self.events.len()));
        }
        if self.answers.len() > MAX_ANSWERS {
            return Err(format!("answers: {} (at most {MAX_ANSWERS})", self.answers.len()));
        }
        if self.events.is_empty() && self.answers.is_empty() {
            return Err("an update carries events or answers".into());
        }
        for w in self.events.windows(2) {
            if w[1].seq <= w[0].seq {
                return Err(format!("events: seq {} follows {}", w[1].seq, w[0].seq));
            }
        }
        for (i, e) in self.events.iter().enumerate() {
            check_word(&format!("events/{i}/agency"), &e.agency).map_err(|e| e.to_string())?;
            check_word(&format!("events/{i}/actor"), &e.actor).map_err(|e| e.to_string())?;
        }
        for (i, a) in self.answers.iter().enumerate() {
            if let Some(r) = &a.reason {
                check_text(&format!("answers/{i}/reason"), r, MAX_REASON_CHARS, true).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

impl CaseActionPayload {
    /// Checks the words and that the change is one a member node may ask for.
    pub fn check(&self) -> Result<(), String> {
        check_word("agency", &self.agency).map_err(|e| e.to_string())?;
        check_word("actor", &self.actor).map_err(|e| e.to_string())?;
        match &self.change {
            CaseChange::Joined { .. }
            | CaseChange::Declined { .. }
            | CaseChange::Left { .. }
            | CaseChange::Linked { .. }
            | CaseChange::Shared { .. }
            | CaseChange::Note { .. } => Ok(()),
            other => Err(format!(
                "change: '{}' is decided by the case's lead agency on its own node",
                other.kind()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn actions_a_member_may_not_ask_for_are_refused() {
        let t = Timestamp::from_second(1_790_000_000).unwrap();
        let mut a = CaseActionPayload {
            case_id: Uuid::nil(),
            action: Uuid::nil(),
            at: t,
            actor: "li".into(),
            agency: "CN-MPS".into(),
            change: CaseChange::Joined {
                agency: "CN-MPS".into(),
            },
        };
        a.check().unwrap();
        a.change = CaseChange::Invited {
            agency: "DE-BKA".into(),
        };
        assert!(a.check().unwrap_err().contains("invited"));
        a.change = CaseChange::Reopened;
        assert!(a.check().is_err());
        a.change = CaseChange::Joined {
            agency: "CN-MPS".into(),
        };
        a.actor = "two words".into();
        assert!(a.check().is_err());
    }

    #[test]
    fn updates_are_in_order_and_bounded() {
        let t = Timestamp::from_second(1_790_000_000).unwrap();
        let ev = |seq| CaseEvent {
            seq,
            at: t,
            actor: "u".into(),
            agency: "FBI".into(),
            change: CaseChange::Reopened,
            action: None,
        };
        let mut u = CaseUpdatePayload {
            case_id: Uuid::nil(),
            events: vec![ev(1), ev(3)],
            answers: vec![],
        };
        u.check().unwrap();
        u.events = vec![ev(3), ev(3)];
        assert!(u.check().is_err());
        u.events = (1..=(MAX_UPDATE_EVENTS as u64 + 1)).map(ev).collect();
        assert!(u.check().is_err());
        u.events.clear();
        assert!(u.check().is_err());
    }
}
