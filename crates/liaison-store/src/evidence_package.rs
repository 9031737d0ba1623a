//! What the evidence package (docs/evidence.md, "Evidence package") reads from the federation
//! tables: the messages sent and received about one request. Read-only; the federation tables
//! are written by `federation.rs` only.

use crate::{Result, Store};

/// A message sent or received, as the package needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageMessage {
    pub message_id: String,
    /// `sent` (outbox) or `received` (inbox).
    pub direction: &'static str,
    pub payload_type: String,
    pub payload: String,
}

impl Store {
    /// Messages (outbox and inbox, at most `limit` of each) whose payload mentions `needle` (a
    /// request id): candidates, which the caller parses and checks exactly.
    pub async fn package_messages_mentioning(&self, needle: &str, limit: i64) -> Result<Vec<PackageMessage>> {
        let pattern = format!("%{}%", needle.replace(['%', '_', '\\'], ""));
        let mut out = Vec::new();
        for (direction, sql) in [
            (
                "sent",
                "SELECT message_id, payload_type, payload FROM outbox WHERE payload LIKE $1 ORDER BY created_at, message_id LIMIT $2",
            ),
            (
                "received",
                "SELECT i.message_id, i.header, i.payload FROM inbox i WHERE i.payload LIKE $1 ORDER BY i.applied_at, i.message_id LIMIT $2",
            ),
        ] {
            let rows: Vec<(String, String, String)> = sqlx::query_as(sql)
                .bind(&pattern)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
            for (message_id, kind_or_header, payload) in rows {
                // The inbox keeps the signed header, not the payload type alone.
                let payload_type = if direction == "sent" {
                    kind_or_header
                } else {
                    serde_json::from_str::<serde_json::Value>(&kind_or_header)
                        .ok()
                        .and_then(|h| h.get("payload_type").and_then(|t| t.as_str()).map(str::to_string))
                        .unwrap_or_default()
                };
                out.push(PackageMessage {
                    message_id,
                    direction,
                    payload_type,
                    payload,
                });
            }
        }
        Ok(out)
    }
}
