//! Four eyes: a draft's open call for approval (`liaison_core::approval`). One row per draft
//! that waits for a second person; the row goes when the call ends (sent, sent back, taken
//! back, or voided by an edit of the draft). The request's history keeps every step.

use crate::requests::insert_event;
use crate::{Result, Store, StoreError, audit, ms, ts};
use liaison_core::RequestId;
use liaison_core::approval::ApprovalAsked;

pub(crate) const MIGRATION_28: &str = r#"
CREATE TABLE approvals (
    request_id TEXT CONSTRAINT approvals_pk PRIMARY KEY CONSTRAINT approvals_request_fk REFERENCES requests(id),
    asked_by TEXT NOT NULL,
    asked_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
"#;

/// How a call for approval ended without the draft being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalEnd {
    /// An approver sent the draft back to its author.
    SentBack,
    /// The person who asked took the call back.
    TakenBack,
}

impl ApprovalEnd {
    fn step(self) -> &'static str {
        match self {
            ApprovalEnd::SentBack => "sent_back",
            ApprovalEnd::TakenBack => "taken_back",
        }
    }
}

impl Store {
    /// The draft's open call for approval, if any.
    pub async fn approval(&self, id: RequestId) -> Result<Option<ApprovalAsked>> {
        let row: Option<(String, i64, i64)> =
            sqlx::query_as("SELECT asked_by, asked_at, version FROM approvals WHERE request_id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(by, at, version)| {
            Ok(ApprovalAsked {
                by,
                at: ts(at)?,
                version,
            })
        })
        .transpose()
    }

    /// Records a call for approval of the draft at `version` (refused if the draft has moved
    /// on or a call is open), with its history event and audit entry.
    pub async fn ask_approval(&self, id: RequestId, version: i64, by: &str, at: jiff::Timestamp) -> Result<()> {
        let mut w = self.write().await?;
        let cur: Option<(String, i64)> = sqlx::query_as("SELECT state, version FROM requests WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(w.conn().await?)
            .await?;
        match cur {
            None => return Err(StoreError::NotFound(format!("request {id}"))),
            Some((state, v)) if state != "draft" || v != version => {
                return Err(StoreError::Conflict(format!(
                    "request {id} is at version {v} in state {state} (you sent version {version}); reload it and try again"
                )));
            }
            Some(_) => {}
        }
        let r = sqlx::query(
            "INSERT INTO approvals (request_id, asked_by, asked_at, version) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(by)
        .bind(ms(at))
        .bind(version)
        .execute(w.conn().await?)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "approval of request {id} was already asked"
            )));
        }
        let data = serde_json::json!({"step": "asked"});
        insert_event(&mut w, id, at, by, "approval", None, None, None, Some(&data)).await?;
        audit::append(&mut w, at, by, "request.approval", &id.to_string(), &data).await?;
        w.commit().await?;
        Ok(())
    }

    /// Ends an open call for approval without sending the draft.
    pub async fn end_approval(
        &self,
        id: RequestId,
        how: ApprovalEnd,
        by: &str,
        reason: Option<&str>,
        at: jiff::Timestamp,
    ) -> Result<()> {
        let mut w = self.write().await?;
        let r = sqlx::query("DELETE FROM approvals WHERE request_id = $1")
            .bind(id.to_string())
            .execute(w.conn().await?)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("no approval of request {id} is asked")));
        }
        let data = serde_json::json!({"step": how.step()});
        insert_event(&mut w, id, at, by, "approval", None, None, reason, Some(&data)).await?;
        audit::append(&mut w, at, by, "request.approval", &id.to_string(), &data).await?;
        w.commit().await?;
        Ok(())
    }
}

/// In an edit of a draft or its sending: ends the open call, if any (`step`: `voided` by an
/// edit, `approved` by the send). Returns whether there was one.
pub(crate) async fn close_in(
    w: &mut crate::WriteTx,
    id: RequestId,
    step: &str,
    by: &str,
    at: jiff::Timestamp,
) -> Result<bool> {
    let r = sqlx::query("DELETE FROM approvals WHERE request_id = $1")
        .bind(id.to_string())
        .execute(w.conn().await?)
        .await?;
    if r.rows_affected() == 0 {
        return Ok(false);
    }
    let data = serde_json::json!({"step": step});
    insert_event(w, id, at, by, "approval", None, None, None, Some(&data)).await?;
    Ok(true)
}
