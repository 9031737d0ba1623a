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
    /// Answered requests submitted since `since` that carry an assessment, newest first, at
    /// most `limit`, each handed to `keep` as it is read; returns what `keep` kept. An
    /// assessment is about 10 KB of JSON, so they are never all held at once.
    pub async fn answered_samples<T>(
        &self,
        since: jiff::Timestamp,
        limit: i64,
        mut keep: impl FnMut(AnsweredSample) -> Option<T>,
    ) -> Result<Vec<T>> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT a.assessment, r.submitted_at, r.answered_at FROM requests r JOIN request_assessments a ON a.request_id = r.id \
             WHERE r.submitted_at IS NOT NULL AND r.answered_at IS NOT NULL AND r.submitted_at >= $1 \
             ORDER BY r.submitted_at DESC LIMIT $2",
        )
        .bind(ms(since))
        .bind(limit)
        .fetch(&self.pool);
        let mut kept = Vec::new();
        while let Some((assessment, s, e)) = rows.try_next().await? {
            let sample = AnsweredSample {
                assessment,
                submitted_at: ts(s)?,
                answered_at: ts(e)?,
            };
            kept.extend(keep(sample));
        }
        Ok(kept)
    }
}
