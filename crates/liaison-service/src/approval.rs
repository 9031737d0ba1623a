//! Four eyes: asking a second person to approve a draft, sending it back, and the check made
//! when a draft is sent (`liaison_core::approval`; docs/lifecycle.md, "Four eyes").

use crate::error::{Result, ServiceError};
use crate::node::Node;
use jiff::Timestamp;
use liaison_core::approval::{self, ApprovalAsked, ApprovalError, ApprovalMoves, ApprovalPolicy};
use liaison_core::record::{Principal, StoredRequest};
use liaison_core::{Actor, RequestId, Side};
use liaison_store::ApprovalEnd;

/// A draft's approval as a reader sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApprovalView {
    /// Whether the node requires approval for the request's kind.
    pub required: bool,
    /// The open call for approval, if any.
    pub asked: Option<ApprovalAsked>,
    /// What the reader may do about it now.
    pub moves: ApprovalMoves,
}

pub(crate) fn refused(e: ApprovalError) -> ServiceError {
    if e.is_forbidden() {
        ServiceError::Forbidden(e.to_string())
    } else {
        ServiceError::Conflict(e.to_string())
    }
}

impl Node {
    /// Sets `[approval]` (which kinds need a second approver, and who approves).
    pub fn with_approval(mut self, c: ApprovalPolicy) -> Self {
        self.approval = std::sync::Arc::new(c);
        self
    }

    /// The node's four-eyes rules.
    pub fn approval_policy(&self) -> &ApprovalPolicy {
        &self.approval
    }

    /// The request's approval as `p` sees it (a request that is no longer a draft has none).
    pub async fn approval(&self, p: &Principal, id: RequestId, now: Timestamp) -> Result<ApprovalView> {
        let (r, side) = self.visible(p, id, now).await?;
        self.approval_view(p, &r, side).await
    }

    pub(crate) async fn approval_view(&self, p: &Principal, r: &StoredRequest, side: Side) -> Result<ApprovalView> {
        let q = &r.request;
        let asked = if q.state == liaison_core::State::Draft {
            self.store.approval(q.id).await?
        } else {
            None
        };
        let moves = approval::moves(
            &self.approval,
            q.state,
            q.draft.kind,
            q.version,
            Actor::User { role: p.role, side },
            &p.username,
            asked.as_ref(),
        );
        Ok(ApprovalView {
            required: self.approval.required(q.draft.kind),
            asked,
            moves,
        })
    }

    /// Asks a second person to approve the draft at `version`.
    pub async fn ask_approval(
        &self,
        p: &Principal,
        id: RequestId,
        version: i64,
        now: Timestamp,
    ) -> Result<ApprovalView> {
        let (r, side) = self.visible_for(p, id, now, "asking for approval").await?;
        let asked = self.store.approval(id).await?;
        approval::check_ask(r.request.state, Actor::User { role: p.role, side }, asked.as_ref()).map_err(refused)?;
        if version != r.request.version {
            return Err(ServiceError::Conflict(format!(
                "request {id} is at version {} (you sent {version}); reload it and try again",
                r.request.version
            )));
        }
        self.store.ask_approval(id, version, &p.username, now).await?;
        self.approval(p, id, now).await
    }

    /// Ends the open call for approval without sending: an approver sends the draft back
    /// (with a reason), or the person who asked takes the call back.
    pub async fn end_approval(
        &self,
        p: &Principal,
        id: RequestId,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<ApprovalView> {
        let (r, side) = self.visible_for(p, id, now, "sending a draft back").await?;
        let asked = self.store.approval(id).await?;
        approval::check_return(
            &self.approval,
            r.request.state,
            Actor::User { role: p.role, side },
            &p.username,
            asked.as_ref(),
        )
        .map_err(refused)?;
        let own = asked.as_ref().is_some_and(|a| a.by == p.username);
        let reason = reason.map(str::trim).filter(|s| !s.is_empty());
        if !own && reason.is_none() {
            return Err(ServiceError::invalid(
                "reason",
                "say why the draft goes back, so its author can put it right",
            ));
        }
        if reason.is_some_and(|s| s.len() > 20_000) {
            return Err(ServiceError::invalid("reason", "must be at most 20000 bytes"));
        }
        let how = if own {
            ApprovalEnd::TakenBack
        } else {
            ApprovalEnd::SentBack
        };
        self.store.end_approval(id, how, &p.username, reason, now).await?;
        self.approval(p, id, now).await
    }

    /// The four-eyes check of sending a draft; `Some(asker)` when the send approves a call.
    pub(crate) async fn check_send(&self, r: &StoredRequest, actor: Actor, who: &str) -> Result<Option<String>> {
        let asked = self.store.approval(r.request.id).await?;
        let approves = approval::check_send(
            &self.approval,
            r.request.draft.kind,
            r.request.version,
            actor,
            who,
            asked.as_ref(),
        )
        .map_err(refused)?;
        Ok(if approves { asked.map(|a| a.by) } else { None })
    }
}
