//! The formal letter (schema migration 14): the officer's free text per language
//! (`request_texts`: a translation of the summary, the purpose, the necessity of preservation)
//! and each request's letter reference (`request_letters`: agency code, year, sequence),
//! assigned once, when the first letter of the request is produced, and stable after.

use crate::{Result, Store, StoreError, audit, ms, unique};

pub(crate) const MIGRATION_14: &str = r#"
CREATE TABLE request_texts (
    request_id TEXT NOT NULL REFERENCES requests(id),
    field TEXT NOT NULL,
    lang TEXT NOT NULL,
    text TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (request_id, field, lang)
);
CREATE TABLE request_letters (
    request_id TEXT PRIMARY KEY REFERENCES requests(id),
    agency_code TEXT NOT NULL,
    year BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (agency_code, year, seq)
)
"#;

/// One stored text of a request in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestText {
    pub field: String,
    pub lang: String,
    pub text: String,
    pub updated_at: jiff::Timestamp,
    pub updated_by: String,
}

/// A request's letter reference, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterRef {
    pub agency_code: String,
    pub year: i64,
    pub seq: i64,
}

impl Store {
    /// Sets (or replaces) a request's text `field` in `lang`, with its audit entry
    /// (`request.text`, the text's SHA-256), in one transaction.
    pub async fn set_request_text(
        &self,
        request: &str,
        field: &str,
        lang: &str,
        text: &str,
        by: &str,
        at: jiff::Timestamp,
    ) -> Result<()> {
        let mut w = self.write().await?;
        sqlx::query(
            "INSERT INTO request_texts (request_id, field, lang, text, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (request_id, field, lang) DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(request)
        .bind(field)
        .bind(lang)
        .bind(text)
        .bind(ms(at))
        .bind(by)
        .execute(w.conn().await?)
        .await?;
        let detail = serde_json::json!({
            "field": field,
            "lang": lang,
            "sha256": audit::digest(text),
        });
        audit::append(&mut w, at, by, "request.text", request, &detail).await?;
        w.commit().await
    }

    /// A request's stored texts, by field and language.
    pub async fn request_texts(&self, request: &str) -> Result<Vec<RequestText>> {
        let rows: Vec<(String, String, String, i64, String)> = sqlx::query_as(
            "SELECT field, lang, text, updated_at, updated_by FROM request_texts WHERE request_id = $1 ORDER BY field, lang",
        )
        .bind(request)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(field, lang, text, at, updated_by)| {
                Ok(RequestText {
                    field,
                    lang,
                    text,
                    updated_at: jiff::Timestamp::from_millisecond(at).map_err(StoreError::corrupt)?,
                    updated_by,
                })
            })
            .collect()
    }

    /// The request's letter reference: the stored one, else a new one (the next sequence
    /// number of `agency_code` in `year`), assigned in one transaction. Two processes racing
    /// for the same number: the loser's insert breaks the unique key and it tries again.
    pub async fn letter_reference(
        &self,
        request: &str,
        agency_code: &str,
        year: i64,
        at: jiff::Timestamp,
    ) -> Result<LetterRef> {
        for _ in 0..5 {
            if let Some(r) = self.stored_letter_reference(request).await? {
                return Ok(r);
            }
            let mut w = self.write().await?;
            let inserted = sqlx::query(
                "INSERT INTO request_letters (request_id, agency_code, year, seq, created_at) \
                 SELECT $1, $2, $3, COALESCE(MAX(seq), 0) + 1, $4 FROM request_letters WHERE agency_code = $2 AND year = $3",
            )
            .bind(request)
            .bind(agency_code)
            .bind(year)
            .bind(ms(at))
            .execute(w.conn().await?)
            .await
            .map_err(|e| unique(e, format!("letter reference of request {request}")));
            match inserted {
                Ok(_) => {
                    w.commit().await?;
                }
                Err(StoreError::Duplicate(_)) => {
                    drop(w);
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        self.stored_letter_reference(request)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("no letter reference could be assigned to request {request}")))
    }

    async fn stored_letter_reference(&self, request: &str) -> Result<Option<LetterRef>> {
        let row: Option<(String, i64, i64)> =
            sqlx::query_as("SELECT agency_code, year, seq FROM request_letters WHERE request_id = $1")
                .bind(request)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(agency_code, year, seq)| LetterRef { agency_code, year, seq }))
    }
}
