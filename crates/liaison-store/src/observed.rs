//! Read-only queries that feed the node's own experience back into legal assessments.

use crate::{Result, Store, ms, ts};

/// An answered request with the assessment it was sent under.
#[derive(Debug, Clone)]
pub struct AnsweredSample {
    pub assessment: String,
    pub submitted_at: jiff::Timestamp,
    pub answered_at: jiff::Timestamp,
}

impl Store {
    /// Answered requests submitted since `since` that carry an assessment, newest first, at most `limit`.
    pub async fn answered_samples(&self, since: jiff::Timestamp, limit: i64) -> Result<Vec<AnsweredSample>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT a.assessment, r.submitted_at, r.answered_at FROM requests r JOIN request_assessments a ON a.request_id = r.id \
             WHERE r.submitted_at IS NOT NULL AND r.answered_at IS NOT NULL AND r.submitted_at >= $1 \
             ORDER BY r.submitted_at DESC LIMIT $2",
        )
        .bind(ms(since))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(a, s, e)| {
                Ok(AnsweredSample {
                    assessment: a,
                    submitted_at: ts(s)?,
                    answered_at: ts(e)?,
                })
            })
            .collect()
    }
}
